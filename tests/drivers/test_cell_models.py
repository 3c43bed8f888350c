"""The simulated cells behind full cells and the lithium-inventory tests: what each model must
show (seed numbers in the models' presets), through the Load interface the simulators use."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from drivers.sim.physics.cathode import CATHODE_PRESETS, CathodeHalfCell, open_circuit_potential_V
from drivers.sim.physics.licu import LICU_PRESETS, LiCuCell
from drivers.sim.physics.models import CELL_MODELS, ModelledCell, modelled_cell
from drivers.sim.physics.sei import SEI_PRESETS, SEICell
from drivers.sim.physics.softshort import SOFT_SHORT_PRESETS, SoftShortJunction


def _cc(cell, current_A: float, v_stop: float, dt_s: float = 5.0, limit_s: float = 1e6) -> float:
    """Charge passed (mAh) at ``current_A`` until the voltage reaches ``v_stop``."""
    q, t = 0.0, 0.0
    while t < limit_s:
        v = cell.voltage_V(current_A)
        if (current_A > 0 and v >= v_stop) or (current_A < 0 and v <= v_stop):
            break
        cell.advance(dt_s, current_A)
        q += abs(current_A) * dt_s / 3.6
        t += dt_s
    return q


def test_lfp_has_its_flat_plateau_and_nmc811_its_slope():
    x = np.linspace(0.1, 0.8, 8)
    lfp = np.array([open_circuit_potential_V("LFP", v) for v in x])
    nmc = np.array([open_circuit_potential_V("NMC811", v) for v in x])
    assert np.all(np.abs(lfp - 3.4) < 0.015)  # ~3.4 V across most of the capacity
    assert np.ptp(nmc) > 0.5 and np.all(np.diff(nmc) < 0)  # 4.1 → 3.6 V, falling with lithiation
    with pytest.raises(KeyError):
        open_circuit_potential_V("LCO", 0.5)


def test_the_capacity_depends_on_the_rate_and_the_cell_voltage_on_the_current():
    p = replace(CATHODE_PRESETS["nmc811_fse"], active_mass_mg=1.0, noise_V=0.0, temperature_C=50.0)
    one_c = p.capacity_mAh * 1e-3
    capacities = {}
    for rate in (0.5, 5.0):
        cell = CathodeHalfCell(p)
        dt = min(5.0, 60.0 / rate)
        for _ in range(2):  # charge and discharge at the rate; the second cycle counts
            _cc(cell, rate * one_c, 4.3, dt_s=dt)
            capacities[rate] = _cc(cell, -rate * one_c, 2.8, dt_s=dt) / p.active_mass_mg * 1e3
    # [000 L145]: 195 mAh g⁻¹ at 0.5C, 118 at 5C (this cell: within 10 %)
    assert capacities[0.5] == pytest.approx(195, rel=0.1)
    assert capacities[5.0] == pytest.approx(118, rel=0.1)
    cell = CathodeHalfCell(p)
    assert cell.voltage_V(one_c) > cell.voltage_V(0.0) > cell.voltage_V(-one_c)
    v = cell.voltage_V(one_c)
    assert cell.current_A(v) == pytest.approx(one_c, rel=1e-6)  # V(I) and I(V) are inverses


def test_fade_and_coulombic_efficiency_are_what_the_parameters_say():
    base = replace(CATHODE_PRESETS["lfp_fse"], active_mass_mg=1.0, noise_V=0.0, first_cycle_loss_pct=0.0)
    i = 0.2 * base.capacity_mAh * 1e-3
    cell = CathodeHalfCell(replace(base, coulombic_efficiency_pct=99.0, capacity_fade_pct_per_cycle=0.0))
    for _ in range(3):
        charged, discharged = _cc(cell, i, 4.0, dt_s=2.0), _cc(cell, -i, 2.5, dt_s=2.0)
    assert discharged / charged * 100 == pytest.approx(99.0, abs=0.3)
    assert cell.side_reaction_C > 0
    cell = CathodeHalfCell(replace(base, coulombic_efficiency_pct=100.0, capacity_fade_pct_per_cycle=1.0))
    first = None
    for _ in range(11):
        _cc(cell, i, 4.0)
        discharged = _cc(cell, -i, 2.5)
        first = first or discharged
    # 1 % per equivalent cycle over ~10 cycles: ~10 % less
    assert discharged / first == pytest.approx(0.90, abs=0.03)


def test_li_cu_efficiency_and_the_lpscl_cell_shorting_after_a_few_cycles():
    for name, expected, spread in (("fse", 99.1, 0.3), ("lpscl", 45.0, 30.0)):
        cell = LiCuCell(replace(LICU_PRESETS[name], area_cm2=1.0, noise_V=0.0))
        i = 0.5e-3
        ces = []
        for cycle in range(1, 31):
            if cell.shorted:
                break
            cell.advance(3600.0, -i)  # plate 0.5 mAh cm⁻²
            if cell.shorted:
                break
            assert cell.voltage_V(-i) < 0
            stripped = _cc(cell, i, 1.0, dt_s=2.0)
            ces.append(stripped / 0.5 * 100)
        if name == "fse":
            assert not cell.shorted and np.mean(ces[15:]) == pytest.approx(expected, abs=spread)
        else:
            assert cell.shorted and 4 <= len(ces) + 1 <= 8  # [000 L143]: failing at 6 cycles
            assert 10 < np.mean(ces) < 75  # CE 20–70 %


def test_the_side_reaction_charge_of_ctta_grows_with_the_square_root_of_time():
    cell = SEICell(replace(SEI_PRESETS["lpscl"], noise_V=0.0))
    i = -10e-6  # 10 µA cm⁻², titrating Li onto the steel
    times, q = [], []
    t = 0.0
    for k in range(8):
        cell.advance(180.0, i)  # 0.5 µAh cm⁻²
        t += 180.0
        while cell.voltage_V(0.0) < 0.05:
            cell.advance(10.0, 0.0)
            t += 10.0
        times.append(t / 3600)
        q.append(cell.sei_uAh_cm2)
    slope = np.polyfit(np.sqrt(times), q, 1)[0]
    assert slope == pytest.approx(SEI_PRESETS["lpscl"].sei_rate_uAh_cm2_h05, rel=0.1)
    assert np.corrcoef(np.sqrt(times), q)[0, 1] ** 2 > 0.99


def test_the_soft_short_spikes_grow_then_the_hard_short_burns_out():
    p = SOFT_SHORT_PRESETS["latp"]
    j = SoftShortJunction(p)
    amplitudes = np.array(j.spike_amplitudes_A)
    assert len(amplitudes) > 50 and np.all(np.array(j.spike_times_s) >= p.onset_s)
    early, late = amplitudes[: len(amplitudes) // 4], amplitudes[-len(amplitudes) // 4:]
    assert np.median(late) > 10 * np.median(early)  # "to hundreds of nA" [001 L64]
    readings = []
    for t in np.arange(0.0, 450.0, 0.1):
        readings.append(j.current_A(5.0))
        j.advance(0.1, 0.0)
    readings = np.array(readings)
    quiet = readings[:1500]
    assert np.std(quiet) == pytest.approx(0.5e-9, rel=0.2)  # the noise floor [001 L64]
    assert readings[int(400.0 / 0.1)] == pytest.approx(5.0 / p.short_resistance_ohm, rel=0.01)  # hard short
    assert abs(readings[-1]) < 3e-9  # burnt out: back near zero
    hybrid = SoftShortJunction(SOFT_SHORT_PRESETS["latp_polymer"])  # "below the noise floor" [001 L112]
    quiet = []
    for _ in range(3000):
        quiet.append(hybrid.current_A(5.0))
        hybrid.advance(0.2, 0.0)
    assert np.max(np.abs(quiet)) < 3e-9 and not hybrid.spike_times_s


def test_every_model_builds_from_its_presets_and_round_trips_through_a_run_file_record():
    for name, model in CELL_MODELS.items():
        for preset in model.presets:
            spec = modelled_cell(name, preset, {})
            assert ModelledCell.from_dict(spec.as_dict()) == spec
            cell = spec.build()
            cell.advance(1.0, -1e-6)
            assert math.isfinite(cell.voltage_V(-1e-6)) and math.isfinite(cell.current_A(0.1))
    with pytest.raises(KeyError, match="unknown model"):
        modelled_cell("lco_half_cell", None, {})
    with pytest.raises(TypeError, match="unknown parameter"):
        modelled_cell("li_cu", None, {"ccd_mA_cm2": 1.0})
    with pytest.raises(ValueError):
        modelled_cell("ctta", None, {"sei_rate_uAh_cm2_h05": -1.0})
    with pytest.raises(ValueError, match="not a recorded simulated cell"):
        ModelledCell.from_dict({"model": "li_cu", "params": {"bogus": 1}})
