"""Equivalent-circuit fits on spectra generated from known circuits (with noise), conductivity,
Arrhenius, steady state, σ_e, Bruce–Vincent and the LSV onset on data with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from impedance.models.circuits.fitting import wrapCircuit

from labctl.analysis import (
    CIRCUITS,
    arrhenius,
    bruce_vincent,
    conductivity_from_fit,
    electronic_conductivity,
    fit_spectrum,
    ionic_conductivity_S_cm,
    oxidation_onset,
    steady_state_current,
    transference_number,
)
from labctl.analysis.conductivity import BOLTZMANN_EV_K

AREA = 1.13  # cm², [000 L183]


def synthetic(circuit: str, params: list[float], *, f_hi=3e6, f_lo=1.0, per_decade=10, noise=0.005, seed=0):
    """A spectrum of ``circuit`` (impedance.py string) with relative Gaussian noise on Re and Im."""
    rng = np.random.default_rng(seed)
    f = np.logspace(math.log10(f_hi), math.log10(f_lo), int(per_decade * math.log10(f_hi / f_lo)) + 1)
    values = wrapCircuit(circuit, {})(f, *params)
    z = values[: len(f)] + 1j * values[len(f):]
    scale = np.abs(z) * noise
    z = z + scale * rng.standard_normal(len(f)) + 1j * scale * rng.standard_normal(len(f))
    return f, z.real, -z.imag


# FSE at 30 °C [000 L87]: R_b / R_gb / R_CT = 16 / 14 / 46 Ω cm² over 1.13 cm²; the GB arc's
# CPE ~1e-7 and the interface's ~1e-5 F s^(n-1) ([003 L80–L82]: 1e-6 vs 1e-4–1e-2).
FSE = [16 / AREA, 14 / AREA, 2e-7, 0.9, 46 / AREA, 2e-5, 0.85]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_arc_fit_recovers_the_seed_resistances(seed):
    f, zr, zi = synthetic("R0-p(R1,CPE1)-p(R2,CPE2)", FSE, seed=seed)
    fit = fit_spectrum(f, zr, zi, circuit="Rb-(Rgb|CPE)-(Rct|CPE)", area_cm2=AREA)
    res = fit.as_results()
    assert res["bulk_resistance_ohm_cm2"] == pytest.approx(16, rel=0.03)
    assert res["grain_boundary_resistance_ohm_cm2"] == pytest.approx(14, rel=0.03)
    assert res["charge_transfer_resistance_ohm_cm2"] == pytest.approx(46, rel=0.03)
    assert fit.parameters["CPE1_1"] == pytest.approx(0.9, abs=0.03)
    assert fit.parameters["CPE2_1"] == pytest.approx(0.85, abs=0.03)
    # 0.5 % noise on each component: the relative residual rms is of that order.
    assert 0.002 < fit.relative_residual_rms < 0.02
    # Standard errors are finite, small, and cover the truth within 4 σ.
    for name, truth in (("R0", FSE[0]), ("R1", FSE[1]), ("R2", FSE[4])):
        err = fit.standard_errors[name]
        assert err is not None and 0 < err < 0.05 * truth
        assert abs(fit.parameters[name] - truth) < 4 * err + 1e-9
    z_fit = fit.predict(f)
    assert np.max(np.abs(z_fit - (zr - 1j * zi)) / np.abs(zr - 1j * zi)) < 0.03


def test_arcs_are_labelled_by_frequency_whatever_the_start():
    f, zr, zi = synthetic("R0-p(R1,CPE1)-p(R2,CPE2)", FSE, seed=3)
    # A start with the arcs swapped (the slow arc first) still labels the fast arc as R_gb.
    swapped = [FSE[0], FSE[4], FSE[5], FSE[6], FSE[1], FSE[2], FSE[3]]
    fit = fit_spectrum(f, zr, zi, circuit="Rb-(Rgb|CPE)-(Rct|CPE)", guess=swapped)
    assert fit.grain_boundary_resistance_ohm == pytest.approx(FSE[1], rel=0.03)
    assert fit.charge_transfer_resistance_ohm == pytest.approx(FSE[4], rel=0.03)


def test_warburg_circuit_recovers_diffusion_tail():
    params = [10.0, 20.0, 1e-7, 0.9, 60.0, 1e-5, 0.85, 25.0]
    f, zr, zi = synthetic("R0-p(R1,CPE1)-p(R2,CPE2)-W3", params, f_lo=0.05, seed=4)
    fit = fit_spectrum(f, zr, zi, circuit="Rb-(Rgb|CPE)-(Rct|CPE)-W")
    assert fit.bulk_resistance_ohm == pytest.approx(10, rel=0.03)
    assert fit.grain_boundary_resistance_ohm == pytest.approx(20, rel=0.03)
    assert fit.charge_transfer_resistance_ohm == pytest.approx(60, rel=0.03)
    assert fit.parameters["W3"] == pytest.approx(25, rel=0.05)


def test_blocking_cell_gives_ionic_conductivity():
    """SS | SSE | SS: R_b + (R_gb‖CPE) + blocking CPE; σ = d/(R·S) [000 L187]."""
    d_um, area = 500.0, 1.0
    r_b, r_gb = 20.0, 17.0
    f, zr, zi = synthetic("R0-p(R1,CPE1)-CPE2", [r_b, r_gb, 1e-7, 0.9, 5e-6, 0.8], f_lo=0.1, seed=5)
    fit = fit_spectrum(f, zr, zi, circuit="Rb-(Rgb|CPE)-CPE", area_cm2=area)
    sigma = conductivity_from_fit(fit, d_um, area)
    assert sigma["ionic_conductivity_S_cm"] == pytest.approx(0.05 / (r_b + r_gb), rel=0.02)
    assert sigma["bulk_ionic_conductivity_S_cm"] == pytest.approx(0.05 / r_b, rel=0.03)
    assert ionic_conductivity_S_cm(33.3333, 500, 1.0) == pytest.approx(1.5e-3, rel=1e-5)


def test_inductive_high_frequency_points_and_range_selection():
    f, zr, zi = synthetic("L0-R0-p(R1,CPE1)", [2e-7, 8.0, 130.0, 8e-6, 0.9], f_hi=1e6, f_lo=0.2, seed=6)
    assert (zi[:3] < 0).all()  # the cable's inductance above ~100 kHz
    fit = fit_spectrum(f, zr, zi, circuit="Rb-(Rgb|CPE)", f_max_Hz=2e5)
    assert fit.frequency_max_Hz <= 2e5
    assert fit.bulk_resistance_ohm == pytest.approx(8.0, rel=0.1)
    assert fit.grain_boundary_resistance_ohm == pytest.approx(130.0, rel=0.03)


@pytest.mark.parametrize(("change", "message"), [
    ({"z_real_ohm": "nan"}, r"z_real_ohm: 1 non-finite value"),
    ({"frequency_Hz": "inf"}, r"frequency_Hz: 1 non-finite value"),
    ({"frequency_Hz": "zero"}, r"frequency_Hz: 1 value\(s\) ≤ 0"),
    ({"circuit": "R-C"}, r"circuit: unknown 'R-C'"),
    ({"area_cm2": 0.0}, r"area_cm2 must be > 0"),
    ({"f_min_Hz": 1e7}, r"spectrum: 0 point\(s\) left"),
])
def test_bad_spectra_are_refused_naming_the_input(change, message):
    f, zr, zi = synthetic("R0-p(R1,CPE1)", [10.0, 50.0, 1e-6, 0.9])
    args = {"frequency_Hz": f.copy(), "z_real_ohm": zr.copy(), "z_imag_neg_ohm": zi.copy()}
    kwargs = {}
    for key, value in change.items():
        if key in args:
            args[key][3] = {"nan": np.nan, "inf": np.inf, "zero": 0.0}[value]
        else:
            kwargs[key] = value
    with pytest.raises(ValueError, match=message):
        fit_spectrum(args["frequency_Hz"], args["z_real_ohm"], args["z_imag_neg_ohm"], **kwargs)


def test_every_circuit_fits_and_reports_finite_numbers():
    f, zr, zi = synthetic("R0-p(R1,CPE1)-p(R2,CPE2)", FSE, seed=7)
    for name in CIRCUITS:
        fit = fit_spectrum(f, zr, zi, circuit=name, area_cm2=AREA)
        for key, value in fit.as_results().items():
            if isinstance(value, float):
                assert math.isfinite(value), (name, key)


# -- Arrhenius ---------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["sigma_T", "sigma"])
def test_arrhenius_recovers_the_activation_energy(form):
    """LPSCl-like: 0.31 eV, 0.9 mS cm⁻¹ at 25 °C [003 L374]; 25 → 80 °C [002 L31] with 1 % noise."""
    rng = np.random.default_rng(8)
    t_c = np.array([25.0, 35, 45, 55, 65, 80])
    t_k = t_c + 273.15
    ea = 0.31
    y = np.exp(-ea / (BOLTZMANN_EV_K * t_k))
    sigma = y / (t_k if form == "sigma_T" else 1.0)
    sigma *= 0.9e-3 / sigma[0] * (1 + 0.01 * rng.standard_normal(len(t_k)))
    fit = arrhenius(t_c, sigma, form=form)
    assert fit.activation_energy_eV == pytest.approx(ea, abs=0.01)
    assert 0 < fit.activation_energy_std_eV < 0.01
    assert fit.r_squared > 0.99
    assert fit.conductivity_S_cm(25.0) == pytest.approx(0.9e-3, rel=0.03)
    # The other form on the same data differs by ~k_B·T̄ (≈ 0.028 eV), so the form matters.
    other = arrhenius(t_c, sigma, form="sigma" if form == "sigma_T" else "sigma_T")
    assert abs(other.activation_energy_eV - fit.activation_energy_eV) == pytest.approx(0.028, abs=0.004)


def test_arrhenius_needs_three_temperatures_and_positive_conductivity():
    with pytest.raises(ValueError, match="2 distinct temperature"):
        arrhenius([25, 25, 50], [1e-3, 1e-3, 2e-3])
    with pytest.raises(ValueError, match="conductivity_S_cm: every value must be > 0"):
        arrhenius([25, 35, 50], [1e-3, 0.0, 2e-3])
    with pytest.raises(ValueError, match="temperature_C: 1 non-finite"):
        arrhenius([25, np.nan, 50], [1e-3, 1e-3, 2e-3])


# -- DC polarisation ----------------------------------------------------------------------------

def _decay(i_ss=4.1e-9, amplitude=3e-8, tau_s=1800.0, hours=10.0, dt=10.0, noise=0.0, seed=9):
    t = np.arange(0.0, hours * 3600 + dt, dt)
    rng = np.random.default_rng(seed)
    return t, i_ss + amplitude * np.exp(-t / tau_s) + noise * rng.standard_normal(len(t))


def test_steady_state_is_when_the_relative_change_falls_under_the_threshold():
    t, i = _decay()
    ss = steady_state_current(t, i, max_relative_change_per_h=0.01, window_s=600.0)
    assert ss.reached
    # dI/dt / I ≈ (A/τ)e^(−t/τ)/I_ss: the criterion first holds near t where that equals 1 %/h.
    expected = -1800.0 * math.log(0.01 / 3600 * 4.1e-9 * 1800.0 / 3e-8)
    assert ss.time_s == pytest.approx(expected, abs=900)
    assert ss.current_A == pytest.approx(4.1e-9, rel=0.01)
    assert ss.relative_change_per_h < 0.01
    # A tighter threshold is met later, closer to I_ss.
    later = steady_state_current(t, i, max_relative_change_per_h=0.001)
    assert later.time_s > ss.time_s and abs(later.current_A - 4.1e-9) < abs(ss.current_A - 4.1e-9)


def test_electronic_conductivity_from_the_steady_current():
    """σ_e = I_ss·d/(V·A): FSE 2.73e-10 S cm⁻¹ at 150 mV [000 L171, L185] on 350 µm, 1.13 cm²."""
    sigma_e, d_um, bias = 2.73e-10, 350.0, 0.15
    i_ss = sigma_e * bias * AREA / (d_um * 1e-4)
    t, i = _decay(i_ss=i_ss, amplitude=20 * i_ss, noise=0.002 * i_ss)
    res = electronic_conductivity(t, i, bias_V=bias, thickness_um=d_um, area_cm2=AREA)
    assert not res.is_upper_bound
    assert res.electronic_conductivity_S_cm == pytest.approx(sigma_e, rel=0.02)
    # Cut the record before the current settles: flagged as an upper bound.
    cut = t < 1800
    short = electronic_conductivity(t[cut], i[cut], bias_V=bias, thickness_um=d_um, area_cm2=AREA)
    assert short.is_upper_bound and short.electronic_conductivity_S_cm > sigma_e * 2
    assert short.as_results()["electronic_conductivity_is_upper_bound"] is True


def test_steady_state_rejects_bad_input():
    t, i = _decay(hours=1)
    i[5] = np.nan
    with pytest.raises(ValueError, match="current_A: 1 non-finite value"):
        steady_state_current(t, i)
    with pytest.raises(ValueError, match="time_s: decreases at index"):
        steady_state_current(t[::-1], np.ones(len(t)))
    with pytest.raises(ValueError, match="zero mean current"):
        steady_state_current(t, np.zeros(len(t)))


# -- Bruce–Vincent ------------------------------------------------------------------------------

def test_bruce_vincent_equation_s3():
    # t = I_ss(ΔV − I0 R0) / (I0(ΔV − I_ss R_ss)) [002 L41]
    assert bruce_vincent(0.01, 2e-5, 1.2e-5, 100.0, 120.0) == pytest.approx(
        1.2e-5 * (0.01 - 2e-5 * 100) / (2e-5 * (0.01 - 1.2e-5 * 120)))
    with pytest.raises(ValueError, match="ΔV − I·R ≤ 0"):
        bruce_vincent(0.01, 2e-4, 1e-4, 100.0, 100.0)
    with pytest.raises(ValueError, match="opposite signs"):
        bruce_vincent(0.01, 2e-5, -1e-5, 100.0, 100.0)
    with pytest.raises(ValueError, match="outside \\[0, 1\\]"):
        bruce_vincent(0.01, 1e-5, 2e-5, 10.0, 10.0)


def test_transference_number_from_fits_and_record():
    """A cell built for t = 0.69 (FSE [000 L87]): spectra before and after, I–t in between."""
    dv, r_el = 0.01, 30.0 / AREA
    r0, rss = 46.0 / AREA, 50.0 / AREA
    t_true = 0.69
    i0 = dv / (r_el + r0)
    # Solve Eq. S3 for I_ss given t, I0, R0, R_ss.
    i_ss = t_true * i0 * dv / (dv - i0 * r0 + t_true * i0 * rss)
    before = fit_spectrum(*synthetic("R0-p(R1,CPE1)-p(R2,CPE2)", [16 / AREA, 14 / AREA, 2e-7, 0.9, r0, 2e-5, 0.85],
                                     seed=10), area_cm2=AREA)
    after = fit_spectrum(*synthetic("R0-p(R1,CPE1)-p(R2,CPE2)", [16 / AREA, 14 / AREA, 2e-7, 0.9, rss, 2e-5, 0.85],
                                    seed=11), area_cm2=AREA)
    t = np.arange(0, 4 * 3600, 5.0)
    current = i_ss + (i0 - i_ss) * np.exp(-t / 600.0)
    res = transference_number(t, current, delta_V=dv, fit_before=before, fit_after=after)
    assert res.steady_state.reached
    assert res.transference_number == pytest.approx(t_true, abs=0.02)
    ohmic = transference_number(t, current, delta_V=dv, fit_before=before, fit_after=after, initial_current="ohmic")
    assert ohmic.transference_number == pytest.approx(t_true, abs=0.02)
    one_arc = fit_spectrum(*synthetic("R0-p(R1,CPE1)", [10.0, 50.0, 1e-6, 0.9]), circuit="Rb-(Rgb|CPE)")
    with pytest.raises(ValueError, match="no charge-transfer"):
        transference_number(t, current, delta_V=dv, fit_before=one_arc, fit_after=after)


# -- LSV ---------------------------------------------------------------------------------------

def test_oxidation_onset_at_the_threshold():
    """OCV → 6 V at 0.5 mV s⁻¹ [002 L39]; an exponential oxidation current from 4.5 V."""
    v = np.arange(3.0, 6.0, 0.0005)
    area = 1.13
    j_uA = 0.5 + 2.0 * np.exp((v - 4.5) / 0.12)  # µA cm⁻²: background + oxidation
    i = j_uA * area * 1e-6
    expected = 4.5 + 0.12 * math.log((10.0 - 0.5) / 2.0)
    onset = oxidation_onset(v, i, area_cm2=area)
    assert onset.oxidation_onset_V == pytest.approx(expected, abs=0.001)
    assert not onset.is_lower_bound
    # One noisy reading above the threshold is not an onset; three in a row are.
    i2 = np.full_like(v, 1e-7)
    i2[1000] = 1e-3
    i2[2000:2003] = 1e-3
    assert oxidation_onset(v, i2, area_cm2=area).oxidation_onset_V == pytest.approx(v[2000])
    # A stable electrolyte: the onset is a lower bound at the top of the sweep.
    flat = oxidation_onset(v, np.full_like(v, 1e-7), area_cm2=area)
    assert flat.is_lower_bound and flat.oxidation_onset_V == pytest.approx(v.max())
    with pytest.raises(ValueError, match="voltage_V: 1 non-finite"):
        oxidation_onset(np.r_[np.nan, v[1:]], i, area_cm2=area)
