"""HDF5 run files: round trip, reading while written (SWMR, another process), bad files."""

from __future__ import annotations

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from labctl.events import READING_COLUMNS, Readings, StepStarted
from labctl.steps import ConstantCurrent, SafetyLimits, StepProgram
from labctl.engine import SoftwareTimedExecutor
from labctl.store import RunFile, RunFileError, RunFileWriter, write_results
from tests.conftest import make_smu


def _program(n_steps=6, duration_s=120.0, j=1.0) -> StepProgram:
    steps = [ConstantCurrent(current_A=(-1) ** k * j * 1e-3, duration_s=duration_s, record_interval_s=1.0,
                             label=f"half-cycle {k}", cycle=k // 2 + 1) for k in range(n_steps)]
    return StepProgram(steps=steps, area_cm2=2.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.1))


ATTRS = {"protocol_text": "kind: test\n", "operator": "tester", "cell_area_cm2": 2.0, "cell_electrolyte": "LLZO",
         "station_text": "instruments: {}\n", "simulated_cell": {"ccd_mA_cm2": 9.0}}


def test_round_trip_of_readings_steps_events_and_results(tmp_path, clock):
    path = tmp_path / "run.h5"
    batches = []
    writer = RunFileWriter(path, ["smu"], ATTRS)
    engine = SoftwareTimedExecutor(make_smu(clock, ccd_mA_cm2=0.7, area_cm2=2.0), clock, channel="smu",
                    subscribers=[writer, lambda e: batches.append(e) if isinstance(e, Readings) else None],
                    batch_size=100)
    outcome = engine.run(_program(j=1.0))  # 1 mA on 2 cm²: 0.5 mA cm⁻², under the CCD
    assert outcome.status == "completed"
    write_results(path, {"ccd_mA_cm2": 1.5, "short_detected": False, "per_step": {"asr_ohm_cm2": [1.0, 2.0]},
                         "sites": {"site_class": ["GB", "GI"], "none_found": []}})

    with RunFile(path) as rf:
        attrs = rf.attrs
        assert attrs["status"] == "completed" and attrs["operator"] == "tester"
        assert attrs["cell_area_cm2"] == 2.0
        assert json.loads(attrs["simulated_cell"]) == {"ccd_mA_cm2": 9.0}
        assert json.loads(attrs["software_versions"])["labctl"]
        assert attrs["start_time_utc"] <= attrs["end_time_utc"]
        cols = rf.columns("smu")
        for name, values in cols.items():
            expected = np.concatenate([b.columns[name] for b in batches])
            np.testing.assert_array_equal(values, expected)
        assert len(cols["test_time_s"]) == outcome.n_readings == 6 * 121
        np.testing.assert_allclose(cols["current_density_mA_cm2"], cols["current_A"] * 1e3 / 2.0)
        units = rf.units("smu")
        assert units["voltage_V"] == "V" and units["test_time_s"] == "s" and units["current_density_mA_cm2"] == "mA cm-2"
        steps = rf.steps()
        assert [s["step_index"] for s in steps] == list(range(6))
        assert steps[3]["voltage_mean_V"] == pytest.approx(outcome.steps[3].voltage_mean_V)
        assert steps[0]["label"] == "half-cycle 0" and steps[0]["reason"] == "time"
        assert [e["kind"] for e in rf.events()] == ["run_started", "run_ended"]
        assert rf.channel_attrs("smu")["program_json"]
        results = rf.results()
        assert results["ccd_mA_cm2"] == 1.5 and results["short_detected"] == 0
        np.testing.assert_array_equal(results["per_step"]["asr_ohm_cm2"], [1.0, 2.0])
        assert results["sites"]["site_class"] == ["GB", "GI"]  # a string dataset, not JSON text
        assert results["sites"]["none_found"].shape == (0,)
    with h5py.File(path) as f:  # plain h5py, as any reader would
        assert f["channels/smu/voltage_V"].attrs["bdf_label"] == "Voltage / V"
        assert f["channels/smu/voltage_V"].chunks is not None
        assert list(f["results/sites/site_class"].asstr()[()]) == ["GB", "GI"]


def test_a_real_time_run_appending_a_reading_at_a_time_does_not_bloat_its_file(tmp_path, clock):
    """A run at one reading per record interval publishes one-row batches; in SWMR mode a
    compressed chunk rewritten by each append leaked its old space (34.6 MB per 3 000 rows)."""
    path = tmp_path / "run.h5"
    writer = RunFileWriter(path, ["smu"], ATTRS)
    engine = SoftwareTimedExecutor(make_smu(clock, ccd_mA_cm2=0.7, area_cm2=2.0), clock, channel="smu", subscribers=[writer],
                    batch_size=1)
    outcome = engine.run(_program(n_steps=10, duration_s=300.0, j=1.0))
    writer.close()
    assert outcome.n_readings == 10 * 301
    data_bytes = outcome.n_readings * sum(np.dtype(c.dtype).itemsize for c in READING_COLUMNS)
    assert path.stat().st_size < data_bytes + 1_000_000  # was > 30 MB


READER = """
import sys, h5py
with h5py.File(sys.argv[1], "r", swmr=True, libver="latest") as f:
    print(f["channels/smu/test_time_s"].shape[0], f.attrs["status"])
"""


def test_another_process_reads_the_file_while_it_is_written(tmp_path, clock):
    path = tmp_path / "live.h5"
    seen = []

    def peek(event):
        if isinstance(event, StepStarted) and event.step_index in (2, 4):
            out = subprocess.run([sys.executable, "-c", READER, str(path)], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            seen.append(out.stdout.split())

    writer = RunFileWriter(path, ["smu"], ATTRS)
    # publish_interval_s=0: every reading goes to the file at once (the default batches 0.25 s of wall time)
    SoftwareTimedExecutor(make_smu(clock, ccd_mA_cm2=50), clock, channel="smu", subscribers=[writer, peek],
           publish_interval_s=0.0).run(_program())
    # Everything of steps 0-1 (2 × 121 readings) was on disk and visible when step 2 began.
    assert seen == [["242", "running"], ["484", "running"]]


def test_an_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "run.h5"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="run.h5"):
        RunFileWriter(path, ["smu"], ATTRS)
    assert path.read_bytes() == b"precious"


def test_bad_files_give_one_clear_error(tmp_path, clock):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x00not hdf5 at all" * 100)
    with pytest.raises(RunFileError, match=r"garbage\.h5: not a readable HDF5 file"):
        RunFile(garbage)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    with pytest.raises(RunFileError, match=r"foreign\.h5: an HDF5 file, but not a labctl run file"):
        RunFile(foreign)
    with pytest.raises(RunFileError, match=r"missing\.h5: no such file"):
        RunFile(tmp_path / "missing.h5")
    # A run file cut short (a crash while the disk filled up) is reported, not a traceback.
    path = tmp_path / "run.h5"
    SoftwareTimedExecutor(make_smu(clock), clock, channel="smu", subscribers=[RunFileWriter(path, ["smu"], ATTRS)]).run(_program(2))
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(RunFileError, match=r"truncated\.h5"):
        RunFile(truncated)


HOLDER = """
import sys, time, h5py
f = h5py.File(sys.argv[1], "r", swmr=True, libver="latest")  # h5py's default file locking
print("holding", flush=True)
time.sleep(60)
"""


def test_a_reader_holding_the_file_does_not_stop_the_writer_finishing_it(tmp_path, clock):
    path = tmp_path / "watched.h5"
    writer = RunFileWriter(path, ["smu"], ATTRS)
    holders = []

    def open_reader(event):
        if isinstance(event, StepStarted) and event.step_index == 1:
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline().strip() == "holding"
            holders.append(holder)

    try:
        SoftwareTimedExecutor(make_smu(clock, ccd_mA_cm2=50), clock, channel="smu", subscribers=[writer, open_reader]).run(_program(2))
        write_results(path, {"ccd_mA_cm2": 1.0})
        assert holders[0].poll() is None  # still holding the file
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()
    with RunFile(path) as rf:
        assert rf.attrs["status"] == "completed" and rf.results()["ccd_mA_cm2"] == 1.0
