"""The layout's conventions, the bounded-memory summary behind ``labctl inspect``, and the
resume points' refusal of non-finite values."""

from __future__ import annotations

import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from labctl.engine.delegated import DELEGATED_COLUMNS
from labctl.events import READING_COLUMNS, Detected, Readings, RunEnded, RunStarted
from labctl.store import RunFile, RunFileError, RunFileWriter, summarise, write_results
import labctl.store.layout as layout
from labctl.store.recover import attach_point, resume_point
from labctl.store.summary import summarise_column
from tests.conftest import REPO
from tests.store.test_lock import HOLDER


def _readings(channel: str, t: np.ndarray, extra=()) -> Readings:
    columns = {c.name: np.zeros(len(t), c.dtype) for c in (*READING_COLUMNS, *extra)}
    columns["test_time_s"] = t
    columns["voltage_V"] = np.sin(t / 100.0)
    columns["step_index"] = (t // 1000).astype(np.int32)
    columns["charge_C"] = t * 1e-3
    return Readings(channel, columns)


def _run(path, n=50_000, n_events=600, status="completed", extra=()) -> None:
    writer = RunFileWriter(path, ["smu"], {"protocol_kind": "test"}, extra_columns=extra)
    writer(RunStarted(0.0, "smu", "{}", 0, time.time()))
    t = np.arange(n, dtype=float)
    for start in range(0, n, 9_000):
        writer(_readings("smu", t[start:start + 9_000], extra))
    for k in range(n_events):
        writer(Detected(float(k), "smu", "compliance" if k % 2 else "run_started", f"event {k}", k))
    if status is not None:
        writer(RunEnded(float(n), "smu", status, "test", time.time()))


def test_the_summary_matches_the_whole_columns(tmp_path):
    path = tmp_path / "run.h5"
    _run(path)
    with h5py.File(path, "r+") as f:
        v = f["channels/smu/voltage_V"]
        v[123] = np.nan
        v[40_000] = np.inf
    write_results(path, {"ccd_mA_cm2": 1.8, "small": [1.0, 2.0], "big": np.arange(5000.0), "per_cycle": {"x": [1.0]}})
    summary = summarise(path)
    with h5py.File(path, "r") as f:
        v = f["channels/smu/voltage_V"][:]
    (channel,) = summary.channels
    volts = channel.columns["voltage_V"]
    finite = v[np.isfinite(v)]
    assert channel.n_readings == 50_000 == volts.n
    assert (volts.min, volts.max, volts.n_nonfinite) == (finite.min(), finite.max(), 2)
    assert channel.columns["test_time_s"].last == 49_999.0 and channel.columns["step_index"].last == 49
    assert summary.n_steps == 0 and summary.n_events == 602  # + run_started, run_ended
    kinds = [e["kind"] for e in summary.last_events]
    assert "run_started" not in kinds and len(kinds) == 8 and kinds[-1] == "run_ended"
    assert [e["message"] for e in summary.last_events[:-1]] == [f"event {k}" for k in range(587, 600, 2)]
    assert summary.results["ccd_mA_cm2"] == 1.8 and list(summary.results["small"]) == [1.0, 2.0]
    assert summary.results["big"] == "<dataset 5000 float64>" and summary.result_groups == ("per_cycle",)
    assert not summary.killed and not summary.live and summary.owner is None


def test_a_column_summary_does_not_depend_on_the_block_size(tmp_path):
    values = np.random.default_rng(3).normal(size=10_007)
    values[[5, 6000]] = np.nan
    with h5py.File(tmp_path / "c.h5", "w") as f:
        ds = f.create_dataset("v", data=values)
        whole = summarise_column(ds, len(values), block_rows=len(values))
        for rows in (1, 7, 1000, 4096):
            assert summarise_column(ds, len(values), block_rows=rows) == whole
        assert summarise_column(ds, 3, block_rows=2).last == values[2]
    assert whole.n_nonfinite == 2 and whole.min == np.nanmin(values) and whole.max == np.nanmax(values)


def test_a_live_file_and_a_killed_one(tmp_path):
    killed = tmp_path / "run.h5"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(killed)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "holding"
    live = summarise(killed)
    assert live.live and live.owner.pid == proc.pid and live.marked_open and not live.killed
    proc.kill()
    proc.wait(timeout=30)
    dead = summarise(killed)
    assert dead.killed and dead.marked_open and dead.owner is None and dead.stale_lock.pid == proc.pid
    assert dead.channels[0].n_readings == 10


def test_results_conventions(tmp_path):
    path = tmp_path / "r.h5"
    _run(path, n=10, n_events=0)
    write_results(path, {"n": 3, "note": None, "names": ["GB", "GI"], "empty": [], "nested": {"y_nm": [1.0]},
                         "current_map": {"current_A": np.ones((2, 3)), "x_nm": [0.0, 1.0, 2.0]},
                         "ratio_map": np.ones((2, 2))})
    with h5py.File(path, "r") as f:
        r = f["results"]
        assert r.attrs["n"] == 3 and r.attrs["note"] == "" and list(r["names"].asstr()[()]) == ["GB", "GI"]
        assert r["empty"].shape == (0,) and r["empty"].dtype == np.float64
        image = r["current_map/current_A"]
        assert (image.attrs["CLASS"], image.attrs["IMAGE_VERSION"], image.attrs["IMAGE_SUBCLASS"]) == (
            "IMAGE", "1.2", "IMAGE_GRAYSCALE")
        assert image.attrs["units"] == "A"
        assert r["ratio_map"].attrs["CLASS"] == "IMAGE" and "units" not in r["ratio_map"].attrs
        assert "CLASS" not in r["current_map/x_nm"].attrs
    with RunFile(path) as run:
        assert run.results()["names"] == ["GB", "GI"]


def test_each_missing_part_is_named(tmp_path):
    path = tmp_path / "r.h5"
    _run(path, n=10, n_events=0)
    for part, says in (("results", "results: missing"), ("channels/smu/step_index", "channels/smu/step_index: missing"),
                       ("channels", "channels: missing")):
        with h5py.File(path, "r+") as f:
            del f[part]
        with pytest.raises(RunFileError, match=f"r.h5: {says}"):
            RunFile(path)
        path.unlink()
        _run(path, n=10, n_events=0)
    with h5py.File(path, "r+") as f:  # a table of the wrong shape
        del f["steps"]
        f["steps"] = np.arange(3)
    with pytest.raises(RunFileError, match="r.h5: steps: not a table with the fields channel, step_index"):
        RunFile(path)


@pytest.mark.parametrize("column", ["test_time_s", "charge_C"])
@pytest.mark.parametrize("value", [np.nan, np.inf, 1e300])
def test_resume_point_refuses_non_finite_values(tmp_path, column, value):
    path = tmp_path / "r.h5"
    _run(path, n=3000, n_events=0, status="interrupted")
    with h5py.File(path, "r+") as f:
        f[layout.column_path("smu", column)][-1] = value
    with RunFile(path) as run, pytest.raises(RunFileError, match=f"r.h5: channels/smu/{column}\\[2999\\]"):
        resume_point(run, "smu")


def test_attach_point_refuses_non_finite_values(tmp_path):
    path = tmp_path / "d.h5"
    _run(path, n=3000, n_events=0, status="interrupted", extra=DELEGATED_COLUMNS)
    with RunFile(path) as run:
        point = attach_point(run, "smu")
    assert point.last_test_time_s == 2999.0 and len(point.since_checkpoint["test_time_s"]) == 3000
    with h5py.File(path, "r+") as f:
        f["channels/smu/test_time_s"][1500] = np.nan
    with RunFile(path) as run, pytest.raises(RunFileError, match=r"d.h5: channels/smu/test_time_s\[1500\]"):
        attach_point(run, "smu")
