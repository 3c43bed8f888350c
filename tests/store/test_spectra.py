"""The spectrum dataset: written from plain arrays, appended in SWMR mode while a reader follows,
read back with units; bad arrays refused naming the array."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from labctl.analysis import fit_spectrum
from labctl.store import RunFile, RunFileWriter
from labctl.store.spectra import (
    SpectrumError,
    append_spectrum,
    create_spectra,
    read_spectra,
    spectra_channels,
    spectrum_columns,
    split_spectra,
    write_spectra,
)
from tests.analysis.test_impedance import FSE, synthetic
from tests.store.test_run_file import ATTRS


def test_write_read_and_fit_a_spectrum_from_a_run_file(tmp_path):
    path = tmp_path / "run.h5"
    RunFileWriter(path, ["cell"], ATTRS).close()
    f, zr, zi = synthetic("R0-p(R1,CPE1)-p(R2,CPE2)", FSE, seed=21)
    assert write_spectra(path, "cell", f, zr, zi, spectrum_index=0, test_time_s=np.linspace(0, 60, len(f)),
                         cycle_index=3) == len(f)
    write_spectra(path, "cell", f, zr * 1.1, zi * 1.1, spectrum_index=1, test_time_s=np.linspace(100, 160, len(f)),
                  cycle_index=4)
    assert spectra_channels(path) == ["cell"]
    columns = read_spectra(path, "cell")
    assert len(columns["frequency_Hz"]) == 2 * len(f)
    np.testing.assert_allclose(columns["z_abs_ohm"][: len(f)], np.hypot(zr, zi))
    np.testing.assert_allclose(columns["phase_deg"][: len(f)], np.degrees(np.arctan2(-zi, zr)))
    assert (columns["phase_deg"][: len(f)][zi > 0] < 0).all()  # capacitive: negative phase, as EC-Lab
    first, second = split_spectra(columns)
    assert first["cycle_index"][0] == 3 and second["cycle_index"][0] == 4
    fit = fit_spectrum(first["frequency_Hz"], first["z_real_ohm"], first["z_imag_neg_ohm"], area_cm2=1.13)
    assert fit.as_results()["charge_transfer_resistance_ohm_cm2"] == pytest.approx(46, rel=0.03)
    with h5py.File(path) as h5:
        assert {n: h5["spectra/cell"][n].attrs["units"] for n in ("frequency_Hz", "z_real_ohm", "phase_deg")} == {
            "frequency_Hz": "Hz", "z_real_ohm": "Ohm", "phase_deg": "deg"}
    with RunFile(path) as run:  # still a run file, the spectra beside the channels
        assert run.channels == ["cell"]


def test_appending_in_swmr_mode_while_a_reader_follows(tmp_path):
    path = tmp_path / "live.h5"
    f, zr, zi = synthetic("R0-p(R1,CPE1)", [10.0, 50.0, 1e-6, 0.9])
    with h5py.File(path, "w", libver="latest", locking=False) as w:
        group = create_spectra(w, "cell", with_time=False, with_cycle=False)
        w.swmr_mode = True
        with h5py.File(path, "r", swmr=True, libver="latest", locking=False) as r:
            for k in range(3):
                append_spectrum(group, spectrum_columns(f, zr, zi, spectrum_index=k))
                w.flush()
                seen = read_spectra(r, "cell")
                assert len(seen["frequency_Hz"]) == (k + 1) * len(f)
                assert seen["spectrum_index"][-1] == k
        with pytest.raises(SpectrumError, match="missing test_time_s|not in the group test_time_s"):
            append_spectrum(group, spectrum_columns(f, zr, zi, test_time_s=f * 0))


@pytest.mark.parametrize(("change", "message"), [
    ({"z_real_ohm": np.nan}, r"z_real_ohm: 1 non-finite value"),
    ({"frequency_Hz": 0.0}, r"frequency_Hz: 1 value\(s\) ≤ 0"),
    ({"test_time_s": np.inf}, r"test_time_s: 1 non-finite value"),
    ({"spectrum_index": -1}, r"spectrum_index: not whole numbers ≥ 0"),
])
def test_bad_arrays_are_refused_naming_them(tmp_path, change, message):
    f, zr, zi = synthetic("R0-p(R1,CPE1)", [10.0, 50.0, 1e-6, 0.9])
    arrays = {"frequency_Hz": f.copy(), "z_real_ohm": zr.copy(), "z_imag_neg_ohm": zi.copy(),
              "test_time_s": np.arange(len(f), dtype=float), "spectrum_index": np.zeros(len(f))}
    for key, value in change.items():
        arrays[key][2] = value
    with pytest.raises(SpectrumError, match=message):
        spectrum_columns(arrays.pop("frequency_Hz"), arrays.pop("z_real_ohm"), arrays.pop("z_imag_neg_ohm"), **arrays)
    with pytest.raises(SpectrumError, match=r"z_real_ohm: 3 values, frequency_Hz has"):
        spectrum_columns(f, zr[:3], zi)
    with pytest.raises(KeyError, match="no spectra for channel 'x'"):
        RunFileWriter(tmp_path / "r.h5", ["cell"], ATTRS).close()
        read_spectra(tmp_path / "r.h5", "x")
