"""The simulated cell's physics against the seeds' numbers: one parameter set for DC, transients
and impedance (docs/cell-presets.md)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from drivers.sim.physics.cell import CELL_PRESETS, BOLTZMANN_EV_K, CellParameters, SymmetricCell, arrhenius_factor


def quiet(name: str, **changes) -> CellParameters:
    return replace(CELL_PRESETS[name], noise_V=0.0, **changes)


def steady_voltage(cell: SymmetricCell, current_A: float, seconds: float, step_s: float = 10.0) -> float:
    for _ in range(int(seconds / step_s)):
        cell.advance(step_s, current_A)
    return cell.voltage_V(current_A)


def test_charge_transfer_is_counted_once():
    """Small-current DC resistance = R_b + 2 R_int, not R_b + 2 R_int + 2 RT/(F j0) (issue 16)."""
    p = quiet("hl_llzo", interfacial_asr_after_cycling_ohm_cm2=50.0)
    cell = SymmetricCell(p)
    v = steady_voltage(cell, 1e-6, 100.0)
    assert v / 1e-6 == pytest.approx(30.0 + 2 * 50.0, rel=1e-3)
    assert p.exchange_current_density_mA_cm2 == pytest.approx(8.314462618 * 298.15 / 96485.33212 / 50 * 1e3)


@pytest.mark.parametrize(("temperature_C", "total", "r_ct"), [(30, 78, 47), (50, 56, 37), (70, 33, 19)])
def test_fse_resistance_falls_with_temperature_as_in_seed_000(temperature_C, total, r_ct):
    """[000 L183]: total 78 / 56 / 33 Ω cm² at 30 / 50 / 70 °C (within 15 %), R_CT 47 / 37 / 19."""
    p = quiet("fse", temperature_C=temperature_C)
    assert p.total_resistance_ohm_cm2 == pytest.approx(total, rel=0.15)
    assert p.charge_transfer_asr_ohm_cm2 == pytest.approx(r_ct, rel=0.20)
    # EIS and DC agree: Z(f → 0) (below the diffusion's 1/τ_d) is the small-current DC resistance
    z = SymmetricCell(p).impedance_ohm([1e-8])[0].real * p.area_cm2
    assert z == pytest.approx(p.dc_asr_ohm_cm2, rel=1e-4)
    dc = steady_voltage(SymmetricCell(p), 1e-7, 20 * p.diffusion_time_constant_s, 100.0) / 1e-7 * p.area_cm2
    assert dc == pytest.approx(p.dc_asr_ohm_cm2, rel=1e-3)


def test_fse_at_30C_reproduces_seed_000_eis_numbers():
    """σ 1.5 mS cm⁻¹, R_b / R_gb / R_CT 16 / 14 / 46 Ω cm², σ_e 2.73e-10, t₊ 0.69 [000 L87, L171]."""
    p = quiet("fse")
    assert p.ionic_conductivity_at_temperature_S_cm == pytest.approx(1.5e-3)
    assert (p.bulk_asr_ohm_cm2, p.grain_boundary_asr_ohm_cm2, p.charge_transfer_asr_ohm_cm2) == \
        pytest.approx((16.0, 14.0, 46.0), rel=1e-9)
    cell = SymmetricCell(p)
    f = np.logspace(np.log10(3e6), 0, 61)  # 3 MHz – 1 Hz [000 L185]
    z = cell.impedance_ohm(f) * p.area_cm2
    assert z[0].real == pytest.approx(16.0, rel=0.05)            # the bulk intercept
    assert z[-1].real == pytest.approx(16 + 14 + 46, rel=0.05)   # after both arcs
    assert np.all(-z.imag > -1e-9)                               # capacitive throughout


def test_the_cell_impedance_is_the_impedance_packages_circuit():
    """The same Z as the ``impedance`` package's R0-p(R1,CPE1)-p(R2,CPE2)-Ws0, element for element."""
    circuits = pytest.importorskip("impedance.models.circuits")
    p = quiet("fse", electronic_conductivity_S_cm=1e-30)
    a = p.area_cm2
    cell = SymmetricCell(p)
    f = np.logspace(6, -3, 50)
    ours = cell.impedance_ohm(f)
    r_ct = p.interfacial_asr_ohm_cm2 / a
    circuit = circuits.CustomCircuit(
        "R0-p(R1,CPE1)-p(R2,CPE2)-p(R3,CPE3)-Ws0",  # Ws: R tanh(√(jωτ))/√(jωτ)
        initial_guess=[p.bulk_asr_ohm_cm2 / a, p.grain_boundary_asr_ohm_cm2 / a, p.grain_boundary_cpe_q * a,
                       p.grain_boundary_cpe_alpha, r_ct, p.double_layer_cpe_q * a, p.double_layer_cpe_alpha,
                       r_ct, p.double_layer_cpe_q * a, p.double_layer_cpe_alpha,
                       p.diffusion_asr_ohm_cm2 / a, p.diffusion_time_constant_s])
    theirs = circuit.predict(f, use_initial=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


def test_lpscl_arrhenius_activation_energy_is_seed_003s():
    """0.9 mS cm⁻¹ at 25 °C, E_a 0.31 eV [003 L374]: ln σ vs 1/T over 25–80 °C gives it back."""
    temps = np.array([25.0, 40.0, 60.0, 80.0])
    sigma = [replace(CELL_PRESETS["lpscl_ss"], temperature_C=t).ionic_conductivity_at_temperature_S_cm for t in temps]
    assert sigma[0] == pytest.approx(0.9e-3)
    slope = np.polyfit(1.0 / (BOLTZMANN_EV_K * (temps + 273.15)), np.log(sigma), 1)[0]
    assert -slope == pytest.approx(0.31, abs=1e-9)


@pytest.mark.parametrize(("preset", "bias_V", "sigma_e"), [("fse_ss", 0.150, 2.73e-10), ("lpscl_ss", 0.200, 6.3e-9)])
def test_dc_polarisation_of_a_blocking_cell_gives_the_electronic_conductivity(preset, bias_V, sigma_e):
    """[000 L185] 150 mV on SS | FSE | SS → 2.73e-10 S cm⁻¹; [003 L386] 200 mV on LPSCl → 6.3e-9."""
    p = quiet(preset)
    cell = SymmetricCell(p)
    i = cell.current_A(bias_V)
    first = i
    for _ in range(600):
        cell.advance(1.0, i)
        i = cell.current_A(bias_V)
    assert first > 1e3 * i  # the ionic current charged the blocking double layers and stopped
    measured = i * p.electrolyte_thickness_um * 1e-4 / (bias_V * p.area_cm2)
    assert measured == pytest.approx(sigma_e, rel=1e-3)


def test_bruce_vincent_gives_the_fse_transference_number():
    """Eq. S3 of [002 L41–L43] with ΔV = 10 mV: t₊ = I_ss(ΔV − I₀R₀) / (I₀(ΔV − I_ss R_ss)) = 0.69 [000 L87]."""
    p = quiet("fse", electronic_conductivity_S_cm=1e-30)
    cell = SymmetricCell(p)
    dv = 0.010
    i = cell.current_A(dv)
    for _ in range(10):  # 1 s: the double layers charge (ms), diffusion (τ_d ≈ 50 min) barely starts
        cell.advance(0.1, i)
        i = cell.current_A(dv)
    i0 = i
    for _ in range(400):
        cell.advance(100.0, i)
        i = cell.current_A(dv)
    r0 = (p.grain_boundary_asr_ohm_cm2 + p.charge_transfer_asr_ohm_cm2) / p.area_cm2  # interfacial, from EIS
    t = i * (dv - i0 * r0) / (i0 * (dv - i * r0))
    assert t == pytest.approx(0.69, abs=0.02)


def test_voltage_relaxes_after_a_reversal_and_rises_within_the_half_cycle():
    """The first reading after a reversal keeps the old polarity (double layers, diffusion); |V|
    then rises through the half-cycle (concentration polarisation, t₊ < 1), as real traces do."""
    p = quiet("polyea_il", lifetime_h=None)
    cell = SymmetricCell(p)
    i = 0.2e-3 * p.area_cm2
    steady_voltage(cell, i, 3600.0, 60.0)
    first = cell.voltage_V(-i)
    assert first > 0  # still the plating polarity under stripping current
    v = [steady_voltage(cell, -i, 60.0, 1.0)] + [steady_voltage(cell, -i, 600.0, 60.0) for _ in range(5)]
    assert all(a > b for a, b in zip(v, v[1:]))  # |V| keeps rising (V more negative)
    assert v[-1] < -0.5 * 0.2 * p.dc_asr_ohm_cm2 * 1e-3


def test_ccd_is_the_presets_at_reference_and_moves_with_temperature_pressure_and_capacity():
    """[003 L156–L179]: higher with temperature and stack pressure, lower with areal capacity."""
    p = CELL_PRESETS["hl_llzo"]
    assert p.ccd_at() == 1.8 and p.ccd_at(p.ccd_capacity_limit_mAh_cm2) == 1.8
    assert replace(p, temperature_C=60.0).ccd_at() > 1.8 > replace(p, temperature_C=0.0).ccd_at()
    assert replace(p, stack_pressure_MPa=5.0).ccd_at() > 1.8
    assert p.ccd_at(4.0) < 1.8
    assert CELL_PRESETS["fse_50C"].ccd_at() == pytest.approx(9.0)  # [000 L141]


def test_a_cell_below_its_ccd_lives_and_above_it_shorts():
    cell = SymmetricCell(quiet("hl_llzo"))
    for k in range(200):
        cell.advance(900.0, (-1) ** k * 1.7e-3)
    assert not cell.soft_shorted
    for k in range(10):
        cell.advance(60.0, 1.9e-3)
    assert cell.shorted
    assert abs(cell.voltage_V(1.9e-3)) < 1e-3


def test_the_hl_llzo_interface_evolves_from_50_to_14_ohm_cm2_with_cycling():
    """[004 L87]: ~50 Ω cm² as assembled, ~14 Ω cm² after cycling."""
    cell = SymmetricCell(quiet("hl_llzo"))
    assert cell.interfacial_asr_ohm_cm2 == pytest.approx(50.0)
    for k in range(200):  # 100 h at 0.8 mA cm⁻², 0.5 h half-cycles [004 L89]
        cell.advance(1800.0, (-1) ** k * 0.8e-3)
    assert cell.interfacial_asr_ohm_cm2 == pytest.approx(14.0, abs=0.5)
    assert not cell.soft_shorted


def hours_to_failure(name: str, seed: int, limit_h: float) -> float:
    """Seed 000's cycling: 0.1 mA cm⁻² for 20 h, then 0.2 mA cm⁻², 1 h half-cycles [000 L58]."""
    p = quiet(name, seed=seed)
    cell = SymmetricCell(p)
    t = 0.0
    while t < limit_h * 3600:
        j = 0.1 if t < 20 * 3600 else 0.2
        for _ in range(60):
            cell.advance(60.0, (1 if int(t // 3600) % 2 == 0 else -1) * j * 1e-3 * p.area_cm2)
            t += 60.0
            if cell.soft_shorted:
                return t / 3600
    return math.inf


def test_the_baseline_electrolytes_fail_as_seed_000_reports():
    """LPSCl shorts within 40 h and PolyEA-IL within 700 h; the FSE lives [000 L64]."""
    lpscl = [hours_to_failure("lpscl", s, 200) for s in range(10)]
    polyea = [hours_to_failure("polyea_il", s, 2000) for s in range(10)]
    assert sum(t < 40 for t in lpscl) >= 9, lpscl
    assert sum(t < 700 for t in polyea) >= 9, polyea
    assert hours_to_failure("fse_rt", 0, 1000) == math.inf


def test_lsv_on_li_sse_ss_finds_the_oxidation_onset():
    """Li | CSE | SS from OCV at 0.5 mV s⁻¹ [002 L39]: the current crosses the onset threshold
    at oxidation_onset_V, and the onset moves down when the cell is warmer."""
    def onset(temperature_C: float) -> float:
        p = quiet("cse_li_ss", temperature_C=temperature_C)
        cell = SymmetricCell(p)
        v = cell.voltage_V(0.0)
        threshold = p.oxidation_onset_current_density_mA_cm2 * 1e-3 * p.area_cm2
        while v < 6.0:
            v += 0.005
            i = cell.current_A(v)
            cell.advance(10.0, i)
            if cell.current_A(v) > 2 * threshold:  # capacitive + electronic current is ~0.3 µA
                return v
        return math.nan
    assert onset(25.0) == pytest.approx(CELL_PRESETS["cse_li_ss"].oxidation_onset_V, abs=0.1)
    assert onset(60.0) < onset(25.0)


def test_arrhenius_factor_is_one_at_the_reference():
    assert arrhenius_factor(0.5, 25.0, 25.0) == 1.0
    assert arrhenius_factor(0.31, 80.0, 25.0) == pytest.approx(math.exp(0.31 / BOLTZMANN_EV_K * (1 / 298.15 - 1 / 353.15)))


@pytest.mark.parametrize("name", sorted(CELL_PRESETS))
def test_every_preset_runs_a_reversal_and_an_impedance(name):
    p = CELL_PRESETS[name]
    cell = SymmetricCell(p)
    i = 0.05e-3 * p.area_cm2
    for k in range(4):
        cell.advance(600.0, (-1) ** k * i)
        assert math.isfinite(cell.voltage_V((-1) ** k * i))
    z = cell.impedance_ohm(np.logspace(6, 0, 13))
    assert np.all(np.isfinite(z)) and np.all(z.real > 0)


def test_bad_parameters_get_one_line():
    with pytest.raises(ValueError, match="electrodes must be one of"):
        CellParameters(electrodes="cu")
    with pytest.raises(ValueError, match="transference_number must be in"):
        CellParameters(transference_number=0.0)
    with pytest.raises(ValueError, match="unknown cell parameter"):
        CellParameters.from_dict({"ccd": 1.0})
    legacy = {**CellParameters().as_dict(), "exchange_current_density_mA_cm2": 1.0}
    assert CellParameters.from_dict(legacy) == CellParameters()
