"""``labctl export RUN.h5 --format bdf``: Battery Data Format CSV, one file per channel."""

from __future__ import annotations

import csv
import datetime as _dt
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from labctl.engine import SoftwareTimedExecutor
from labctl.events import Readings, RunEnded, RunStarted
from labctl.events import READING_COLUMNS
from labctl.store import RunFile, RunFileError, RunFileWriter
from labctl.store.export import BDF_COLUMN_ORDER, export_bdf
from labctl.store.importers import import_vendor_file
from tests.cli.test_cli import labctl
from tests.conftest import make_smu
from tests.store.test_run_file import ATTRS, _program

VENDOR = Path(os.environ.get("LABCTL_VENDOR_DATA")
              or Path(__file__).resolve().parents[2].parent / "shared" / "data" / "vendor")
#: BDF preferred labels, spelled out as in cyclers-data-formats.md §2 (not taken from our code).
EXPECTED_HEADER = ["Test Time / s", "Voltage / V", "Current / A", "Unix Time / s", "Cycle Count / 1",
                   "Step Count / 1", "Net Capacity / Ah"]


def _read_csv(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    return header, {label: np.array([float(r[i]) for r in body]) for i, label in enumerate(header)}


@pytest.fixture
def simulated_run(tmp_path, clock) -> Path:
    path = tmp_path / "run.h5"
    SoftwareTimedExecutor(make_smu(clock, ccd_mA_cm2=0.7, area_cm2=2.0), clock, channel="smu",
           subscribers=[RunFileWriter(path, ["smu"], ATTRS)], batch_size=100).run(_program(4, duration_s=60.0))
    return path


def test_round_trip_of_a_simulated_run(simulated_run):
    (out,) = export_bdf(simulated_run)
    assert out.name == "run.bdf.csv" and out.parent == simulated_run.parent
    header, table = _read_csv(out)
    assert header == EXPECTED_HEADER == list(BDF_COLUMN_ORDER)
    with RunFile(simulated_run) as run:
        cols = run.columns("smu")
        attrs = run.attrs
        start = attrs.get("start_unix_time_s") or _dt.datetime.fromisoformat(attrs["start_time_utc"]).timestamp()
    assert len(table["Test Time / s"]) == len(cols["test_time_s"]) == 4 * 61
    # Shortest round-trip text: every value comes back bit for bit.
    np.testing.assert_array_equal(table["Test Time / s"], cols["test_time_s"])
    np.testing.assert_array_equal(table["Voltage / V"], cols["voltage_V"])
    np.testing.assert_array_equal(table["Current / A"], cols["current_A"])
    np.testing.assert_array_equal(table["Cycle Count / 1"], cols["cycle_index"])
    np.testing.assert_array_equal(table["Step Count / 1"], cols["step_index"])
    np.testing.assert_array_equal(table["Unix Time / s"], start + cols["test_time_s"])
    np.testing.assert_array_equal(table["Net Capacity / Ah"], cols["charge_C"] / 3600)
    # Sign: positive = charging (= plating onto the working electrode); the program's first
    # half-cycle is +1 mA, and so is the exported current.
    first = table["Current / A"][table["Step Count / 1"] == 0]
    assert np.all(first > 0) and first.mean() == pytest.approx(1e-3, rel=1e-3)
    assert table["Net Capacity / Ah"][np.flatnonzero(table["Step Count / 1"] == 0)[-1]] > 0


def test_output_passes_batterydf_validation(simulated_run):
    bdf = pytest.importorskip("bdf", reason="batterydf (the Battery Data Alliance's package) is a test extra")
    (out,) = export_bdf(simulated_run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no legacy-label or non-monotonic-time warnings either
        df = bdf.read(str(out))
        report = bdf.validate_df(df)
    assert report["ok"] and report["missing"] == [] and report["extras"] == [] and report["legacy_labels"] == []
    assert report["time_stats"]["monotonic"]
    assert list(df.columns) == EXPECTED_HEADER and len(df) == 4 * 61


def test_multichannel_run_gives_one_file_per_cell(tmp_path):
    path = tmp_path / "multi.h5"
    writer = RunFileWriter(path, ["ch1", "ch2"], ATTRS)
    dtypes = {c.name: c.dtype for c in READING_COLUMNS}
    for k, channel in enumerate(["ch1", "ch2"]):
        n = 5 + k
        writer(RunStarted(0.0, channel, "", 0, 0.0))
        cols = {name: np.zeros(n, dtype=dtype) for name, dtype in dtypes.items()}
        cols["test_time_s"] = np.arange(n, dtype="f8")
        cols["voltage_V"] = np.full(n, 0.1 * (k + 1))
        cols["current_A"] = np.full(n, -1e-3 * (k + 1))
        writer(Readings(channel, cols))
    for channel in ["ch1", "ch2"]:
        writer(RunEnded(5.0, channel, "completed", "done", 0.0))
    written = export_bdf(path, tmp_path / "out" / "cells.bdf.csv")
    assert [p.name for p in written] == ["cells.ch1.bdf.csv", "cells.ch2.bdf.csv"]
    for k, out in enumerate(written):
        header, table = _read_csv(out)
        assert header == EXPECTED_HEADER
        assert len(table["Voltage / V"]) == 5 + k
        assert set(table["Voltage / V"]) == {0.1 * (k + 1)} and set(table["Current / A"]) == {-1e-3 * (k + 1)}


@pytest.mark.skipif(not (VENDOR / "neware-fastnda").is_dir(), reason=f"vendor test files not found at {VENDOR} "
                    "(set LABCTL_VENDOR_DATA to the shared/data/vendor folder)")
def test_imported_neware_file_exports_to_bdf_matching_the_reference(tmp_path):
    pl = pytest.importorskip("polars", reason="polars (a fastnda dependency) reads the reference .parquet")
    fastnda = pytest.importorskip("fastnda")
    source = VENDOR / "neware-fastnda" / "TESTCELL0001-B2-2025-M50T_NewareNDA_Investigation.ndax"
    run = import_vendor_file(source, tmp_path / "neware.h5").path
    (out,) = export_bdf(run, tmp_path / "neware.csv")
    header, table = _read_csv(out)
    assert header == EXPECTED_HEADER
    ref = pl.read_parquet(source.with_suffix(".parquet"))
    assert len(table["Test Time / s"]) == ref.height
    np.testing.assert_allclose(table["Test Time / s"], ref["Total Time"].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(table["Voltage / V"], ref["Voltage(mV)"].to_numpy() / 1e3, atol=1e-4)
    np.testing.assert_allclose(table["Current / A"], ref["Current(uA)"].to_numpy() / 1e6, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(table["Cycle Count / 1"], ref["Cycle Index"].to_numpy())
    # NEWARE charges with positive current (BDF: positive = charging): the CCCV charges are > 0.
    charging = ref["Step Type"].cast(str).to_numpy() == "CCCV Chg"  # BTSDA's spelling
    assert np.all(table["Current / A"][charging] >= 0) and table["Current / A"][charging].max() > 0
    # Unix time: fastnda's own time stamps, to the ms.
    np.testing.assert_allclose(table["Unix Time / s"], fastnda.read(source)["unix_time_s"].to_numpy(), atol=1e-3)


def test_bad_input_gives_one_clear_line(tmp_path, simulated_run):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x00not hdf5" * 100)
    with pytest.raises(RunFileError, match=r"garbage\.h5: not a readable HDF5 file"):
        export_bdf(garbage)
    proc = labctl("export", str(garbage))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1 and "garbage.h5" in proc.stderr
    proc = labctl("export", str(simulated_run), "--format", "xlsx")
    assert proc.returncode == 1 and "--format: unknown format 'xlsx'; known: bdf" in proc.stderr
    proc = labctl("export", str(simulated_run), "-o", str(tmp_path / "a.bdf.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "a.bdf.csv" in proc.stdout
    again = labctl("export", str(simulated_run), "-o", str(tmp_path / "a.bdf.csv"))
    assert again.returncode == 1 and "a.bdf.csv: exists" in again.stderr
