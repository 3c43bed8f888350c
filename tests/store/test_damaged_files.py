"""Damaged run files: every command that reads one answers in one line, exit 1, within seconds.

Issue 11 Deliver 7: a file cut to 1 kB used to hang ``inspect`` and ``resume`` in HDF5's SWMR
retry loop; ``Can't decode global heap prefix`` and ``KeyError`` escaped as tracebacks; a NaN
test time made ``resume`` write NaN readings forever.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.cli.test_cli import LABCTL, labctl

PROTOCOL = """
kind: symmetric_cycling
name: damaged-file source
current_density_mA_cm2: 0.5
half_cycle_s: 600
cycles: {cycles}
voltage_limit_V: 5.0
record_interval_s: 5
cell: {{area_cm2: 1.0, electrolyte: LLZO, electrolyte_thickness_um: 300, li_thickness_um: 100,
        stack_pressure_MPa: 0, temperature_C: 25}}
"""

COMMANDS = ("inspect", "report", "export", "resume", "close")


def _finished_run(directory: Path) -> Path:
    protocol = directory / "finished.yaml"
    protocol.write_text(PROTOCOL.format(cycles=2))
    path = directory / "finished.h5"
    proc = labctl("run", str(protocol), "--simulate", "--speed", "max", "--quiet", "-o", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


def _killed_run(directory: Path) -> Path:
    """A run SIGKILLed once its file holds a few hundred readings: HDF5's "open for write" mark set."""
    protocol = directory / "killed.yaml"
    protocol.write_text(PROTOCOL.format(cycles=1000))
    path = directory / "killed.h5"
    proc = subprocess.Popen([*LABCTL, "run", str(protocol), "--simulate", "--speed", "2000", "--quiet",
                             "-o", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _readings(path) < 300:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the run did not write its file"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    with h5py.File(path, "r", swmr=True, libver="latest") as f:  # marked open for write: SWMR only
        assert f["channels/smu/test_time_s"].shape[0] >= 300
    return path


def _readings(path: Path) -> int:
    """Readings in a run file being written (0 before it exists)."""
    if not path.exists():
        return 0
    with h5py.File(path, "r", swmr=True, libver="latest", locking=False) as f:
        return f["channels/smu/test_time_s"].shape[0]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("sources")
    return {"finished": _finished_run(directory), "killed": _killed_run(directory)}


def _truncate(source: Path, target: Path, size: int | None) -> None:
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2 if size is None else size])


def _delete(source: Path, target: Path, part: str) -> None:
    shutil.copy(source, target)
    with h5py.File(target, "r+") as f:
        del f[part]


def _foreign(_source: Path, target: Path) -> None:
    with h5py.File(target, "w") as f:
        f["x"] = [1, 2, 3]
        f.attrs["status"] = "running"


def _not_hdf5(_source: Path, target: Path) -> None:
    target.write_bytes(b"\x00not an HDF5 file " * 200)


#: name → (source run, how to damage it, what the one line says).
DAMAGE = {
    "truncated_to_1kB": ("finished", lambda s, t: _truncate(s, t, 1024), "truncated"),
    "truncated_to_half": ("finished", lambda s, t: _truncate(s, t, None), "truncated"),
    "killed_truncated_to_1kB": ("killed", lambda s, t: _truncate(s, t, 1024), "truncated"),
    "killed_truncated_to_half": ("killed", lambda s, t: _truncate(s, t, None), "truncated"),
    "foreign_hdf5": ("finished", _foreign, "not a labctl run file"),
    "not_hdf5": ("finished", _not_hdf5, "not a readable HDF5 file"),
    "events_deleted": ("finished", lambda s, t: _delete(s, t, "events"), "events: missing"),
    "steps_deleted": ("finished", lambda s, t: _delete(s, t, "steps"), "steps: missing"),
    "voltage_deleted": ("finished", lambda s, t: _delete(s, t, "channels/smu/voltage_V"),
                        "channels/smu/voltage_V: missing"),
}


@pytest.mark.timeout(20, func_only=True)  # the module's source runs are built outside the 20 s
@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_file_is_one_line_and_exit_1(sources, tmp_path, damage, command):
    source, make, says = DAMAGE[damage]
    path = tmp_path / f"{damage}.h5"
    make(sources[source], path)
    before = path.read_bytes()
    proc = subprocess.run([*LABCTL, command, str(path)], capture_output=True, text=True, timeout=15,
                          cwd=tmp_path)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and says in lines[0], lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert path.read_bytes() == before  # nothing was changed, moved or left beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def _nan_last_time(source: Path, target: Path) -> None:
    """A resumable run whose last reading's test time is NaN (as a failing instrument clock
    could leave it)."""
    shutil.copy(source, target)
    with h5py.File(target, "r+") as f:
        f.attrs["status"] = "interrupted"
        t = f["channels/smu/test_time_s"]
        t[-1] = np.nan


@pytest.mark.timeout(20, func_only=True)
def test_resume_refuses_a_non_finite_test_time_in_one_line(sources, tmp_path):
    path = tmp_path / "nan_time.h5"
    _nan_last_time(sources["finished"], path)
    proc = labctl("resume", str(path), "--speed", "max", "--quiet", timeout=15)
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "channels/smu/test_time_s" in lines[0], proc.stderr
    with h5py.File(path, "r") as f:  # nothing was written to it
        assert np.isnan(f["channels/smu/test_time_s"][-1])
        assert f.attrs["status"] == "interrupted"


def test_an_swmr_reader_of_a_damaged_file_gives_up_within_seconds(sources, tmp_path):
    """Where the truncation check cannot help (a live writer's file, here played by opening a
    cut file in SWMR mode on purpose), HDF5's metadata retries are bounded."""
    from labctl.store.layout import RunFileError, open_file

    path = tmp_path / "cut.h5"
    _truncate(sources["killed"], path, 1024)
    started = time.monotonic()
    with pytest.raises(RunFileError, match="cut.h5"):
        f = open_file(path, swmr=True, writer_alive=True)  # skips the check, as for a live writer
        try:
            from labctl.store.layout import check

            check(f)
        finally:
            f.close()
    assert time.monotonic() - started < 10


def test_the_killed_source_is_not_damaged(sources, tmp_path):
    """Control for the truncated killed files: the whole killed file opens and closes."""
    path = tmp_path / "whole.h5"
    shutil.copy(sources["killed"], path)
    assert labctl("inspect", str(path)).returncode == 0
    assert os.path.getsize(path) > 1024
