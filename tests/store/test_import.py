"""``labctl import``: real NEWARE and EC-Lab files, read in place, against their reference readings.

The files and references are in ``tests/data/vendor/`` (README there): each NEWARE file has
fastnda's reference ``.parquet`` beside it (BTSDA-derived: ``Voltage(mV)``, ``Current(uA)``,
``Total Time`` s, ``Cycle Index``, ``Step Count``, ``Date``) and ``interp-test.ndax`` has NEWARE's
own BTSDA CSV export; the EC-Lab ``.mpr`` has its EC-Lab log ``.mpl`` (start time, electrode
area, the GCPL settings).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from labctl.analysis import critical_current_density, step_overpotentials
from labctl.engine import SoftwareTimedExecutor
from labctl.store import RunFile, RunFileWriter
from labctl.store.importers import VendorFileError, import_vendor_file, read_vendor_file, write_run_file
from tests.cli.test_cli import labctl
from tests.conftest import VENDOR_DATA, make_smu
from tests.store.test_run_file import ATTRS, _program

VENDOR = VENDOR_DATA
NEWARE = VENDOR / "neware-fastnda"
ECLAB = VENDOR / "eclab-aurora"
GCPL = ECLAB / "250116_kigr_gen6_01_02_GCPL_CD8.mpr"

pl = pytest.importorskip("polars", reason="polars (a fastnda dependency) reads the reference .parquet files")

#: vendor file, its reference reading, rows (from the reference)
NEWARE_CASES = [
    ("TESTCELL0001-B2-2025-M50T_NewareNDA_Investigation.ndax", "TESTCELL0001-B2-2025-M50T_NewareNDA_Investigation.parquet"),
    ("21_10_7_85.ndax", "21_10_7_85.parquet"),
    ("nda_v23.nda.zip", "nda_v23.parquet"),
]


def _imported(tmp_path: Path, source: Path, **options) -> tuple[RunFile, dict]:
    result = import_vendor_file(source, tmp_path / (source.name + ".h5"), **options)
    run = RunFile(result.path)
    return run, run.columns(run.channels[0])


@pytest.mark.parametrize(("name", "reference"), NEWARE_CASES)
def test_neware_file_matches_its_reference_reading(tmp_path, name, reference):
    ref = pl.read_parquet(NEWARE / reference)
    run, cols = _imported(tmp_path, NEWARE / name)
    with run:
        n = ref.height
        assert len(cols["test_time_s"]) == n
        np.testing.assert_allclose(cols["test_time_s"], ref["Total Time"].to_numpy(), atol=1e-6)
        # Reference precision: float32 mV, and µA rounded to 1 µA (BTSDA).
        np.testing.assert_allclose(cols["voltage_V"], ref["Voltage(mV)"].to_numpy() / 1e3, atol=1e-4)
        np.testing.assert_allclose(cols["current_A"], ref["Current(uA)"].to_numpy() / 1e6, rtol=1e-6, atol=1e-6)
        assert cols["current_A"][0] == ref["Current(uA)"][0] / 1e6
        assert cols["voltage_V"][-1] == pytest.approx(ref["Voltage(mV)"][-1] / 1e3, abs=1e-4)
        np.testing.assert_array_equal(cols["cycle_index"], ref["Cycle Index"].to_numpy())
        step_count = ref["Step Count"].to_numpy().astype(np.int64)
        np.testing.assert_array_equal(np.diff(cols["step_index"]) != 0, np.diff(step_count) != 0)
        assert cols["step_index"][0] == 0 and cols["step_index"][-1] == len(np.unique(step_count)) - 1
        units = run.units(run.channels[0])
        assert (units["test_time_s"], units["voltage_V"], units["current_A"], units["charge_C"]) == ("s", "V", "A", "C")
        # BTSDA's Date is the instrument PC's local time: the run's UTC start differs by whole hours only.
        attrs = run.attrs
        start = _dt.datetime.fromisoformat(attrs["start_time_utc"]).timestamp()
        local = ref["Date"][0].replace(tzinfo=_dt.timezone.utc).timestamp()
        offset_h = (local - (start + cols["test_time_s"][0])) / 3600
        assert offset_h == pytest.approx(round(offset_h), abs=1e-6) and abs(offset_h) <= 14
        assert attrs["status"] == "imported" and attrs["simulated"] == 0
        assert attrs["vendor_reader"] == "fastnda" and attrs["vendor_reader_version"]
        assert attrs["vendor_file"].endswith(name) and len(attrs["vendor_file_sha256"]) == 64
        steps = run.steps()
        assert len(steps) == len(np.unique(step_count))
        assert sum(s["n_points"] for s in steps) == n


def test_neware_file_matches_neware_btsda_csv_export(tmp_path):
    """interp-test.csv is NEWARE BTSDA's own export of interp-test.ndax (0.1 mV, 1 µA, ms)."""
    lines = (NEWARE / "interp-test.csv").read_text(encoding="latin-1").splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:] if line]
    column = {name: np.array([r[i] for r in rows]) for i, name in enumerate(header)}
    hms = [t.split(":") for t in column["Total Time"]]
    total_s = np.array([int(h) * 3600 + int(m) * 60 + float(s) for h, m, s in hms])
    current_key = next(k for k in header if k.startswith("Current("))
    run, cols = _imported(tmp_path, NEWARE / "interp-test.ndax")
    with run:
        assert len(cols["test_time_s"]) == len(rows) == 333
        np.testing.assert_allclose(cols["test_time_s"], total_s, atol=1e-3)
        np.testing.assert_allclose(cols["voltage_V"] * 1e3, column["Voltage(mV)"].astype(float), atol=0.05 + 1e-9)
        np.testing.assert_allclose(cols["current_A"] * 1e6, column[current_key].astype(float), atol=0.5)
        assert cols["test_time_s"][-1] == 1800.0
        steps = run.steps()
        assert [(s["kind"], s["reason"]) for s in steps] == [("rest", "time")]  # the step file's Time limit


def _mpl() -> str:
    return GCPL.with_suffix(".mpl").read_text(encoding="latin-1")


def test_eclab_gcpl_matches_its_eclab_log(tmp_path):
    mpl = _mpl()
    started = re.search(r"Acquisition started on : (\S+ \S+)", mpl).group(1)
    start = _dt.datetime.strptime(started, "%m/%d/%Y %H:%M:%S.%f").replace(tzinfo=_dt.timezone.utc)
    area = float(re.search(r"Electrode surface area : ([0-9.]+)", mpl).group(1))
    capacity_mAh = float(re.search(r"Battery capacity : ([0-9.]+) mA.h", mpl).group(1))
    run, cols = _imported(tmp_path, GCPL)
    with run:
        attrs = run.attrs
        assert _dt.datetime.fromisoformat(attrs["start_time_utc"]) == start
        assert attrs["start_unix_time_s"] == pytest.approx(start.timestamp(), abs=1e-6)
        assert attrs["cell_area_cm2"] == area == 0.95 and attrs["cell_area_source"].endswith("Electrode surface area")
        assert attrs["vendor_reader"] == "galvani" and attrs["instrument_idn"] == "BioLogic BCS-805 (SN 0709)"
        n = len(cols["test_time_s"])
        assert n == 3791
        assert cols["test_time_s"][0] == pytest.approx(43213.762, abs=1e-3)  # the second file of a linked run
        assert (cols["voltage_V"][0], cols["voltage_V"][-1]) == (0.2883639, 3.838288)
        assert cols["voltage_V"].max() <= 4.9 + 1e-3  # EM (V) of the GCPL charge, from the .mpl
        # Galvanostatic current: Set I/C = C / N with N = 2 → capacity / 2.
        steps = run.steps()
        assert [s["kind"] for s in steps] == ["rest"] + ["cccv", "constant_current"] * 3 + ["rest"]
        for s in steps[1:-1]:
            assert abs(s["current_A"]) == pytest.approx(capacity_mAh / 2 * 1e-3, rel=1e-6)
            assert abs(s["current_density_mA_cm2"]) == pytest.approx(capacity_mAh / 2 / area, rel=1e-6)
        assert [s["cycle"] for s in steps] == [0, 0, 0, 1, 1, 2, 2, 2]
        assert [s["reason"] for s in steps] == ["next_step"] * 7 + ["end_of_file"]
        # The current mapping integrates to EC-Lab's own charge counter (Q-Qo) to 0.1 %.
        q = np.concatenate([[0.0], np.cumsum(cols["current_A"][1:] * np.diff(cols["test_time_s"]))])
        charge = cols["charge_C"] - cols["charge_C"][0]
        assert np.max(np.abs(q - charge)) < 1e-3 * np.max(np.abs(charge))
    run2, _ = _imported(tmp_path / "offset", GCPL, utc_offset_h=1.0)
    with run2:
        assert _dt.datetime.fromisoformat(run2.attrs["start_time_utc"]) == start - _dt.timedelta(hours=1)


def test_imported_layout_is_that_of_a_labctl_run(tmp_path, clock):
    native = tmp_path / "native.h5"
    SoftwareTimedExecutor(make_smu(clock), clock, channel="smu", subscribers=[RunFileWriter(native, ["smu"], ATTRS)]).run(_program(2))
    imported = import_vendor_file(GCPL, tmp_path / "imported.h5").path

    def layout(path):
        with h5py.File(path) as f:
            (group,) = f["channels"].values()
            return ({name: (ds.dtype.str, ds.attrs["units"], ds.attrs.get("bdf_label"), ds.chunks, ds.compression)
                     for name, ds in group.items()}, f["steps"].dtype, f["events"].dtype, set(f) - {"channels"})

    assert layout(imported) == layout(native)
    with RunFile(imported) as run:
        assert run.attrs["end_time_utc"] > run.attrs["start_time_utc"]


def test_ccd_and_overpotential_analyses_run_on_imported_steps(tmp_path):
    tables = {}
    for source, area in ((NEWARE / NEWARE_CASES[0][0], 1.5), (GCPL, None)):
        with RunFile(import_vendor_file(source, tmp_path / f"{source.stem}.h5", area_cm2=area).path) as run:
            steps = tables[source.suffix] = run.steps()
        densities = sorted({round(abs(s["current_density_mA_cm2"]), 9) for s in steps if s["current_density_mA_cm2"]})
        result = critical_current_density(steps, densities)
        assert not result.short_detected and result.ccd_is_lower_bound
        assert result.ccd_mA_cm2 in [0.0, *densities]
        over = step_overpotentials(steps)
        flowing = [s for s in steps if s["current_density_mA_cm2"] != 0]
        assert over["step_index"] == [s["step_index"] for s in flowing]
        for s, asr in zip(flowing, over["cell_asr_ohm_cm2"]):  # at the stated point: the step's end
            assert asr == pytest.approx(abs(s["voltage_end_V"]) * 1e3 / abs(s["current_density_mA_cm2"]))
    # NEWARE: the step file inside the .ndax says why each step ended: rests on their Time, the CC
    # discharges on Stop_Volt 2.5 V, the CCCV charges on Stop_Curr; the test was stopped in the last rest.
    neware = tables[".ndax"]
    by_type = {}
    for s in neware[:-1]:
        by_type.setdefault(s["label"].split()[-1], set()).add(s["reason"])
    assert by_type == {"Rest": {"time"}, "CC_DChg": {"voltage"}, "CCCV_Chg": {"current"}}
    assert neware[-1]["reason"] == "end_of_file"
    assert all(abs(s["voltage_end_V"] - 2.5) < 2e-3 for s in neware if s["reason"] == "voltage")


def test_a_short_in_old_data_is_found_by_the_replayed_detection(tmp_path):
    """Real EC-Lab data with the voltage of the 2nd discharge collapsing midway (a hard short)."""
    rec = read_vendor_file(GCPL)
    steps = np.cumsum(np.r_[0, np.diff(rec.step_number) != 0])
    rows = np.flatnonzero(steps == 4)  # EC-Lab Ns 2, half cycle 3: constant-current discharge
    voltage = rec.voltage_V.copy()
    collapse = rows[len(rows) // 2:]
    voltage[collapse] = 1e-4
    result = write_run_file(dataclasses.replace(rec, voltage_V=voltage), tmp_path / "shorted.h5")
    assert result.n_shorts == 1
    with RunFile(result.path) as run:
        table = run.steps()
        assert table[4]["reason"] == "short"
        (event,) = [e for e in run.events() if e["kind"] == "short"]
        # the collapse must last ShortDetection.drop_points (3) readings: found at the third
        assert event["step_index"] == 4 and event["t_s"] == pytest.approx(rec.test_time_s[collapse[2]])
    ccd = critical_current_density(table, [])
    assert ccd.short_detected and ccd.short_step_index == 4
    assert ccd.short_current_density_mA_cm2 == pytest.approx(1.2065 / 0.95, rel=1e-6)
    assert ccd.ccd_mA_cm2 == 0.0  # the earlier half-cycles ended "next_step", not known to be completed


def test_area_is_required_for_densities_and_flagged(tmp_path):
    run, cols = _imported(tmp_path, NEWARE / "21_10_7_85.ndax")
    with run:
        assert np.isnan(cols["current_density_mA_cm2"]).all()
        assert run.attrs["cell_area_cm2"] == "" and "--area-cm2" in run.attrs["cell_area_source"]
    with pytest.raises(VendorFileError, match=r"21_10_7_85\.ndax: --area-cm2 must be > 0"):
        import_vendor_file(NEWARE / "21_10_7_85.ndax", tmp_path / "x.h5", area_cm2=0)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("broken.ndax", None, r"broken\.ndax: not a readable NEWARE file"),
    ("broken.mpr", b"BIO-LOGIC MODULAR FILE\x1a" + b"\x00" * 40, r"broken\.mpr: not a readable EC-Lab \.mpr file"),
    ("garbage.nda", b"\x00garbage" * 64, r"garbage\.nda: not a readable NEWARE file"),
    ("notes.txt", b"hello", r"notes\.txt: unsupported file type '\.txt'"),
    ("empty.nda.zip", b"PK\x05\x06" + b"\x00" * 18, r"empty\.nda\.zip: expected one \.nda/\.ndax inside the zip, found 0"),
])
def test_corrupt_or_unsupported_files_give_one_line_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if content is not None else (NEWARE / "21_10_7_85.ndax").read_bytes()[:1500])
    with pytest.raises(VendorFileError, match=message) as info:
        import_vendor_file(path, tmp_path / "out.h5")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.h5").exists()


def test_impedance_spectra_import_into_the_spectra_group(tmp_path):
    """The aurora PEIS.mpr (a coin cell, four spectra of 61 points, 10 kHz → 10 mHz)."""
    from labctl.store.spectra import read_spectra, split_spectra

    result = import_vendor_file(ECLAB / "PEIS.mpr", tmp_path / "peis.h5")
    assert result.n_spectra == 4
    parts = split_spectra(read_spectra(result.path, "eclab"))
    assert [len(p["frequency_Hz"]) for p in parts] == [61] * 4
    assert [int(p["cycle_index"][0]) for p in parts] == [1, 2, 3, 4]
    assert all(p["frequency_Hz"][0] > 1e3 and p["frequency_Hz"][-1] < 0.02 for p in parts)
    with pytest.raises(VendorFileError, match=r"missing\.ndax: no such file"):
        import_vendor_file(tmp_path / "missing.ndax", tmp_path / "x.h5")


def test_cli_import_then_inspect_and_errors(tmp_path):
    out = tmp_path / "gcpl.h5"
    proc = labctl("import", str(GCPL), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "3791 readings, 8 steps (galvani)" in text and "area 0.95 cm²" in text
    assert labctl("inspect", str(out)).returncode == 0
    again = labctl("import", str(GCPL), "-o", str(out))
    assert again.returncode == 1 and "a run file already exists there" in again.stderr
    broken = tmp_path / "broken.mpr"
    broken.write_bytes(b"BIO-LOGIC MODULAR FILE\x1a" + b"\x00" * 40)
    bad = labctl("import", str(broken), "-o", str(tmp_path / "p.h5"))
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    (line,) = bad.stderr.strip().splitlines()
    assert line.startswith("error: ") and "broken.mpr: not a readable EC-Lab .mpr file" in line
