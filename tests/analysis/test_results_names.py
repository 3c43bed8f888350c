"""Every analysis's results go into a run file's ``results`` group under the names issues 12 and
13 fix, as finite numbers that plain h5py reads back."""

from __future__ import annotations

import math

import numpy as np

from labctl.analysis import (
    arrhenius,
    capacity_to_short,
    conductivity_from_fit,
    ctta,
    electronic_conductivity,
    fit_spectrum,
    full_cell_cycles,
    li_cu_efficiency,
    oxidation_onset,
    soft_short_spikes,
    transference_number,
)
from labctl.store import RunFile, RunFileWriter, write_results
from tests.analysis.test_full_cell import ctta_record, li_cu_record, lfp_cell, soft_short_trace
from tests.analysis.test_impedance import AREA, FSE, _decay, synthetic
from tests.store.test_run_file import ATTRS

ISSUE_NAMES = {
    "ionic_conductivity_S_cm", "bulk_resistance_ohm_cm2", "grain_boundary_resistance_ohm_cm2",
    "charge_transfer_resistance_ohm_cm2", "activation_energy_eV", "electronic_conductivity_S_cm",
    "transference_number", "oxidation_onset_V",
    "discharge_capacity_mAh_g", "capacity_retention_pct", "coulombic_efficiency_pct", "capacity_to_short_mAh_cm2",
    "sei_charge_uAh_cm2", "sqrt_time_slope_uAh_cm2_h05", "spike_count", "soft_short_onset_s", "hard_short_s",
}


def _finite(value) -> bool:
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, np.ndarray)):
        return all(_finite(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def test_all_issue_result_names_land_in_the_results_group(tmp_path):
    fit = fit_spectrum(*synthetic("R0-p(R1,CPE1)-p(R2,CPE2)", FSE, seed=30), area_cm2=AREA)
    results = {**fit.as_results(), **conductivity_from_fit(fit, 350.0, AREA)}
    results.update(arrhenius([25, 50, 80], [0.9e-3, 2.0e-3, 4.5e-3]).as_results())
    t, i = _decay()
    results.update(electronic_conductivity(t, i, bias_V=0.15, thickness_um=350, area_cm2=AREA).as_results())
    after = fit_spectrum(*synthetic("R0-p(R1,CPE1)-p(R2,CPE2)", FSE, seed=31), area_cm2=AREA)
    i0 = 0.01 / (60 / AREA)
    ti = np.arange(0, 7200, 5.0)
    results.update(transference_number(ti, 0.6 * i0 + 0.4 * i0 * np.exp(-ti / 300), delta_V=0.01,
                                       fit_before=fit, fit_after=after).as_results())
    v = np.linspace(3, 6, 3000)
    results.update(oxidation_onset(v, 1e-6 * np.exp(v - 4.5), area_cm2=AREA).as_results())
    (tt, vv, ii, cc, qq), _, _ = lfp_cell()
    results.update(full_cell_cycles(tt, vv, ii, cc, charge_C=qq, active_mass_g=0.01, formation_cycles=2).as_results())
    t2, v2, i2, c2, q2 = li_cu_record(lambda c: 99.1)
    results["li_cu"] = li_cu_efficiency(t2, v2, i2, c2, charge_C=q2).as_results()
    results.update(capacity_to_short(np.arange(0, 3600.0, 10), np.full(360, 2e-4), area_cm2=1.0,
                                     short_time_s=1800).as_results())
    (t3, v3, i3, _, q3), _ = ctta_record()
    results.update(ctta(t3, v3, i3, area_cm2=1.0, charge_C=q3).as_results())
    t4, i4, *_ = soft_short_trace()
    results.update(soft_short_spikes(t4, i4, hard_short_A=1e-6).as_results())
    assert ISSUE_NAMES <= set(results)
    assert _finite(results)

    path = tmp_path / "run.h5"
    RunFileWriter(path, ["cell"], ATTRS).close()
    write_results(path, results)
    with RunFile(path) as run:
        stored = run.results()
    for name in ISSUE_NAMES:
        assert stored[name] == results[name] or np.isclose(stored[name], results[name]), name
    assert stored["li_cu"]["coulombic_efficiency_pct"] == np.float64(results["li_cu"]["coulombic_efficiency_pct"])
    assert len(stored["cycles"]["discharge_capacity_mAh"]) == 12
