"""``labctl close``: a killed run's file becomes a finished one that every HDF5 reader opens;
``labctl inspect`` says whether ``resume`` or ``close`` applies."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from labctl.store import RunFile, RunFileError, finalise, summarise
from labctl.store.recover import WRITER_DIED
from tests.cli.test_cli import LABCTL, labctl
from tests.conftest import EXAMPLES


def _steps_recorded(path: Path) -> int:
    if not path.exists():
        return 0
    with h5py.File(path, "r", swmr=True, libver="latest", locking=False) as f:
        return f["steps"].shape[0]


def _kill_after(args: list[str], path: Path, steps: int) -> None:
    """Run ``labctl run ARGS -o PATH``; SIGKILL it once ``steps`` steps are recorded."""
    proc = subprocess.Popen([*LABCTL, "run", *args, "--quiet", "-o", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        while _steps_recorded(path) < steps:
            assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()}"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert path.with_name(path.name + ".lock").exists()  # left behind by the dead writer


#: name → (labctl run arguments, steps to wait for, which command inspect advises, report figures).
RUNS = {
    "cycling_2400": (["--simulate", "--speed", "3600", str(EXAMPLES / "cycling_llzo_0p8.yaml")], 3,
                     "resume with `labctl resume", ("timeseries", "overpotential")),
    "cafm": (["--simulate", "--speed", "20", str(EXAMPLES / "cafm_gb_vs_gi.yaml")], 3,
             "finish with `labctl close", ("iv", "trigger_hist")),
    "simulated_cycler": (["--simulate", "--cycler", "neware", "--speed", "3600", str(EXAMPLES / "cycling_llzo_0p8.yaml")],
                         3, "finish with `labctl close", ("timeseries", "overpotential")),
}


@pytest.mark.parametrize("kind", list(RUNS))
def test_a_killed_run_is_closed_and_then_reported_and_exported(tmp_path, kind):
    args, steps, advice, figures = RUNS[kind]
    path = tmp_path / f"{kind}.h5"
    _kill_after(args, path, steps)
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")  # what every other HDF5 reader meets
    inspect = labctl("inspect", str(path))
    assert inspect.returncode == 0, inspect.stderr
    assert advice in _text(inspect.stdout), inspect.stdout

    closed = labctl("close", str(path))
    assert closed.returncode == 0, closed.stderr
    assert f"closed {path}: status interrupted" in _text(closed.stdout)
    with h5py.File(path, "r") as f:  # plain h5py opens it now
        assert f.attrs["status"] == "interrupted" and f.attrs["end_time_utc"]
        lengths = {ds.shape[0] for ds in f["channels/smu"].values()}
        assert len(lengths) == 1 and lengths.pop() > 0
        events = f["events"][:]
        last = events[-1]
        assert last["kind"].decode() == WRITER_DIED
        t_last = f["channels/smu/test_time_s"][-1]
        assert last["t_s"] == t_last and f"last reading at test time {t_last:.1f} s" in last["message"].decode()
        assert "the file was last written" in last["message"].decode()
        assert f["results"].attrs["run_status"] == "interrupted"
        assert f["steps"].shape[0] >= steps
    assert not path.with_name(path.name + ".lock").exists()
    assert not path.with_name(f".{path.name}.staging").exists()

    report = labctl("report", str(path), "-o", str(tmp_path / "figures"))
    assert report.returncode == 0, report.stderr
    written = [Path(line.removeprefix("wrote ")) for line in report.stdout.splitlines()]
    assert {str(tmp_path / "figures" / f"{kind}_{name}.png") for name in figures} <= set(map(str, written))
    assert all(p.stat().st_size > 10_000 for p in written)
    export = labctl("export", str(path))
    assert export.returncode == 0, export.stderr
    assert len((tmp_path / f"{kind}.bdf.csv").read_text().splitlines()) == 1 + _n(path)

    again = labctl("close", str(path))
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"error: {path}: the run is finished (status 'interrupted'); nothing to close"]


def _text(output: str) -> str:
    """Console output with the terminal's line wrapping undone."""
    return " ".join(output.split())


def _n(path: Path) -> int:
    with RunFile(path) as run:
        return run.n_rows("smu")


def _finished_but_running(source: Path, target: Path) -> None:
    """A run killed between its last flush and its status write: the file is closed (no HDF5
    mark), its events hold ``run_ended``, its status still says ``running``."""
    shutil.copy(source, target)
    with h5py.File(target, "r+") as f:
        f.attrs["status"] = "running"
        f.attrs["end_time_utc"] = ""


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("finished") / "ccd.h5"
    proc = labctl("run", str(EXAMPLES / "ccd_llzo.yaml"), "--simulate", "--speed", "max", "--quiet", "-o", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


def test_a_run_killed_before_its_status_write_is_advised_to_close(finished_run, tmp_path):
    path = tmp_path / "unfinished.h5"
    _finished_but_running(finished_run, path)
    summary = summarise(path)
    assert summary.killed and summary.ended_in_file and not summary.marked_open
    inspect = labctl("inspect", str(path))
    assert "the run had ended; only its status was not written" in _text(inspect.stdout)
    assert "finish with `labctl close" in _text(inspect.stdout)
    closed = finalise(path)
    assert closed.was_marked is False and closed.taken_over is None
    with RunFile(path) as run:
        assert run.attrs["status"] == "interrupted"
        assert run.events()[-1]["kind"] == WRITER_DIED
        before = run.n_rows("smu")
    with RunFile(finished_run) as run:
        assert run.n_rows("smu") == before  # nothing lost


def test_finalise_refuses_a_finished_run_and_leaves_it_alone(finished_run, tmp_path):
    path = tmp_path / "done.h5"
    shutil.copy(finished_run, path)
    data = path.read_bytes()
    with pytest.raises(RunFileError, match=r"done\.h5: the run is finished \(status 'short'\); nothing to close"):
        finalise(path)
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done.h5"]


def test_finalise_stores_the_analysis_it_is_given(finished_run, tmp_path):
    path = tmp_path / "analysed.h5"
    _finished_but_running(finished_run, path)
    finalise(path, "power cut", analyse=lambda run: {"n_readings": run.n_rows("smu"),
                                                     "map_A": np.ones((3, 4))})
    with h5py.File(path, "r") as f:
        results = f["results"]
        assert results.attrs["run_status"] == "interrupted" and results.attrs["run_end_reason"] == "power cut"
        assert results.attrs["n_readings"] == f["channels/smu/voltage_V"].shape[0]
        image = results["map_A"]
        assert image.attrs["CLASS"] == "IMAGE" and image.attrs["units"] == "A"
        assert f.attrs["end_reason"] == "power cut"
        assert f["events"][-1]["message"].decode().startswith("power cut: last reading at test time")
