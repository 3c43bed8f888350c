"""Real EC-Lab files (``tests/data/real/eclab-yadg``: PEIS, GEIS, LSV, CV, CA, CP, OCV) import,
and agree column by column with EC-Lab's own text export (``.mpt``) beside each, within the
export's precision; the imported PEIS spectrum fits as an independent impedance.py fit of the
``.mpt`` does."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from labctl.analysis import fit_spectrum
from labctl.store import RunFile
from labctl.store.importers import import_vendor_file
from labctl.store.spectra import SPECTRUM_COLUMNS, read_spectra, split_spectra
from tests.cli.test_cli import labctl
from tests.conftest import REAL_DATA

REAL = REAL_DATA / "eclab-yadg"

#: .mpt columns printed "%.7E" (8 significant digits): half a unit in the last place, relative.
MPT_RTOL = 5e-8 * 10


def read_mpt(path: Path) -> pd.DataFrame:
    """EC-Lab's text export: header line count on line 2, tab-separated, latin-1."""
    with path.open(encoding="latin-1") as fh:
        fh.readline()
        header_lines = int(re.search(r"(\d+)", fh.readline()).group(1))
    frame = pd.read_csv(path, sep="\t", skiprows=header_lines - 1, encoding="latin-1")
    return frame.loc[:, [c for c in frame.columns if not c.startswith("Unnamed")]]


def _close(actual, expected, name):
    expected = np.asarray(expected, dtype=np.float64)
    scale = np.max(np.abs(expected)) if len(expected) else 1.0
    np.testing.assert_allclose(actual, expected, rtol=MPT_RTOL, atol=1e-12 * scale + 1e-15, err_msg=name)


TIME_SERIES = [
    # file, potential column, current column (mA) or None (OCV: 0 by definition), charge column
    ("lsv", "Ewe/V", "<I>/mA", "(Q-Qo)/C"),
    ("cv", "Ewe/V", "<I>/mA", "(Q-Qo)/C"),
    ("ca", "Ewe/V", "I/mA", "(Q-Qo)/C"),
    ("cp", "<Ewe>/V", "I/mA", "(Q-Qo)/C"),
    ("ocv", "Ewe/V", None, None),
]


@pytest.mark.parametrize(("name", "potential", "current", "charge"), TIME_SERIES)
def test_time_series_match_the_eclab_text_export(tmp_path, name, potential, current, charge):
    mpt = read_mpt(REAL / f"{name}.mpt")
    result = import_vendor_file(REAL / f"{name}.mpr", tmp_path / f"{name}.h5")
    with RunFile(result.path) as run:
        (channel,) = run.channels
        cols = run.columns(channel)
        assert len(cols["test_time_s"]) == len(mpt) == result.n_readings
        np.testing.assert_allclose(cols["test_time_s"], mpt["time/s"], rtol=1e-12, atol=1e-9)
        _close(cols["voltage_V"], mpt[potential], potential)
        if current is None:
            assert not any(c.startswith(("I/", "<I>")) for c in mpt.columns)
            assert (cols["current_A"] == 0).all() and (cols["charge_C"] == 0).all()
            assert any("OCV" in note for note in result.notes)
        else:
            _close(cols["current_A"] * 1e3, mpt[current], current)
            _close(cols["charge_C"], mpt[charge], charge)
        if "cycle number" in mpt.columns and name == "cv":
            np.testing.assert_array_equal(cols["cycle_index"], mpt["cycle number"].to_numpy().astype(int))
        assert np.isfinite(cols["voltage_V"]).all() and np.isfinite(cols["current_A"]).all()
        assert result.n_spectra == 0 and run.attrs["status"] == "imported"


def test_cp_with_mean_potential_column_is_not_refused(tmp_path):
    """CP records ``<Ewe>/V`` (no ``Ewe/V``): imported, the steps constant current at −100 mA."""
    result = import_vendor_file(REAL / "cp.mpr", tmp_path / "cp.h5")
    with RunFile(result.path) as run:
        (step,) = run.steps()
        assert step["kind"] == "constant_current"
        assert step["current_A"] == pytest.approx(-0.1, rel=2e-3)


# GEIS: 61 sweeps of 41 points, the last stopped after 39 (the file ends there).
@pytest.mark.parametrize(("name", "points"), [("peis", [32]), ("geis", [41] * 60 + [39])])
def test_impedance_files_import_as_spectra_matching_the_export(tmp_path, name, points):
    n_spectra = len(points)
    mpt = read_mpt(REAL / f"{name}.mpt")
    impedance_rows = mpt[mpt["freq/Hz"] > 0]
    result = import_vendor_file(REAL / f"{name}.mpr", tmp_path / f"{name}.h5")
    assert result.n_spectra == n_spectra
    spectra = read_spectra(result.path, "eclab")
    assert len(spectra["frequency_Hz"]) == len(impedance_rows) == sum(points)
    for mpr_name, column in (("frequency_Hz", "freq/Hz"), ("z_real_ohm", "Re(Z)/Ohm"),
                             ("z_imag_neg_ohm", "-Im(Z)/Ohm"), ("z_abs_ohm", "|Z|/Ohm"), ("phase_deg", "Phase(Z)/deg")):
        _close(spectra[mpr_name], impedance_rows[column], column)
    np.testing.assert_allclose(spectra["test_time_s"], impedance_rows["time/s"], rtol=1e-12)
    np.testing.assert_array_equal(spectra["cycle_index"], impedance_rows["cycle number"].to_numpy().astype(int))
    parts = split_spectra(spectra)
    assert [len(p["frequency_Hz"]) for p in parts] == points
    for part in parts:  # each a sweep from the highest frequency down
        assert (np.diff(part["frequency_Hz"]) < 0).all()
    # units attributes, and the time series of the record (mean <Ewe>, <I> per point) beside it
    import h5py

    with h5py.File(result.path) as f:
        group = f["spectra/eclab"]
        assert {name: group[name].attrs["units"] for name in group} == {
            c.name: c.units for c in SPECTRUM_COLUMNS if c.name != "step_index"}  # no executed steps in an import
    with RunFile(result.path) as run:
        assert run.steps()[0]["kind"] == "impedance"
        assert len(run.columns("eclab")["test_time_s"]) == len(mpt)


def test_imported_peis_fit_agrees_with_an_independent_fit_of_the_text_export(tmp_path):
    """labctl's fit of the imported spectrum (its own initial guesses) vs impedance.py fitted
    directly to the .mpt numbers from a hand-chosen start: R_b and R_arc within 5 %.

    The file (an SP-240 cell under −110 mA) is noise below ~100 Hz (Re Z jumps between 1 and
    30 Ω), so both fits use f ≥ 100 Hz, and the single-arc circuit R_b + (R‖CPE).
    """
    from impedance.models.circuits import CustomCircuit

    result = import_vendor_file(REAL / "peis.mpr", tmp_path / "peis.h5")
    spec = read_spectra(result.path, "eclab")
    ours = fit_spectrum(spec["frequency_Hz"], spec["z_real_ohm"], spec["z_imag_neg_ohm"], circuit="Rb-(Rgb|CPE)",
                        f_min_Hz=100.0)
    mpt = read_mpt(REAL / "peis.mpt")
    keep = mpt["freq/Hz"] >= 100.0
    f = mpt["freq/Hz"][keep].to_numpy()
    z = mpt["Re(Z)/Ohm"][keep].to_numpy() - 1j * mpt["-Im(Z)/Ohm"][keep].to_numpy()
    independent = CustomCircuit("R0-p(R1,CPE1)", initial_guess=[10.0, 5.0, 1e-3, 0.8])
    independent.fit(f, z, weight_by_modulus=True)
    r0, r1 = independent.parameters_[:2]
    assert ours.bulk_resistance_ohm == pytest.approx(r0, rel=0.05)
    assert ours.grain_boundary_resistance_ohm == pytest.approx(r1, rel=0.05)
    # The values themselves (for the report): R_b ≈ 10.8 Ω, arc ≈ 8 Ω, residual rms ≈ 5 %.
    assert 10.0 < ours.bulk_resistance_ohm < 11.5 and 5.0 < ours.grain_boundary_resistance_ohm < 12.0
    assert ours.relative_residual_rms < 0.08 and ours.n_points == int(keep.sum())


def test_geis_spectra_fit_a_semicircle():
    """GEIS of a 1.13 cm² cell (the .mpt header): one arc of ≈ 130 Ω on ≈ 8 Ω."""
    mpt = read_mpt(REAL / "geis.mpt")
    first = mpt[(mpt["cycle number"] == 1) & (mpt["freq/Hz"] > 0)]
    fit = fit_spectrum(first["freq/Hz"], first["Re(Z)/Ohm"], first["-Im(Z)/Ohm"], circuit="Rb-(Rct|CPE)",
                       area_cm2=1.13, f_max_Hz=2e5)
    assert fit.bulk_resistance_ohm == pytest.approx(8.0, rel=0.1)
    assert fit.charge_transfer_resistance_ohm == pytest.approx(133.8, rel=0.05)
    assert fit.as_results()["charge_transfer_resistance_ohm_cm2"] == pytest.approx(133.8 * 1.13, rel=0.05)


def test_cli_imports_a_spectrum_file(tmp_path):
    out = tmp_path / "geis.h5"
    proc = labctl("import", str(REAL / "geis.mpr"), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "2528 readings" in text and "61 impedance spectra" in text
