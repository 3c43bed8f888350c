"""Ionic conductivity from a fitted spectrum, its Arrhenius activation energy, and electronic
conductivity from a DC polarisation's steady-state current.

* σ_ion = d / (R·S) [000 L187–L189] (σ = l/(R·A) [002 L33–L35]) with d the electrolyte
  thickness and S its area. From a fit, :func:`conductivity_from_fit` gives both the total
  conductivity from R_b + R_gb (``ionic_conductivity_S_cm``: the "total ionic conductivity"
  of a polycrystalline pellet, [003 L374]) and the bulk (grain) conductivity from R_b alone
  (``bulk_ionic_conductivity_S_cm``).
* Arrhenius: σ_T = A·exp(−E_a/RT) [002 L37–L39]. :func:`arrhenius` fits a straight line by
  least squares (``scipy.stats.linregress``) to ln(σ·T) against 1/T by default — the form
  whose prefactor holds the 1/T of the Nernst–Einstein relation for an ionic conductor — or
  to ln σ against 1/T as [002]'s Eq. S2 is written (``form="sigma"``); E_a = −slope·k_B in eV,
  with the slope's standard error and the fit's R². For LPSCl the review reports
  0.31 ± 0.03 eV [003 L374] (its form is not stated).
* Electronic conductivity: a constant bias V on SS | SSE | SS ([000 L185]: 150 mV;
  [003 L378–L386]: 200 mV) until the current is steady; σ_e = I_ss·d / (V·A) (Ohm's law,
  J = σE [003 L317]; the seeds give no formula and no steady-state criterion,
  seed-protocols.md §6.2). The steady state here: the first time the current's relative change
  per hour, from a straight-line fit over a trailing window, falls under a threshold (a
  parameter; default 1 % h⁻¹, a convention of this module).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from labctl.analysis._inputs import finite, finite_array, non_decreasing, positive, same_length
from labctl.analysis.impedance import ImpedanceFit

#: Boltzmann constant, eV K⁻¹ (CODATA 2018, exact).
BOLTZMANN_EV_K = 8.617333262e-5
#: 0 °C in K.
ZERO_CELSIUS_K = 273.15


def ionic_conductivity_S_cm(resistance_ohm: float, thickness_um: float, area_cm2: float) -> float:
    """σ = d / (R·S) in S cm⁻¹ [000 L187]: R in Ω, d in µm (converted to cm), S in cm².

    Raises:
        ValueError: an input not finite and > 0.
    """
    r = positive("resistance_ohm", resistance_ohm)
    d_cm = positive("thickness_um", thickness_um) * 1e-4
    return d_cm / (r * positive("area_cm2", area_cm2))


def conductivity_from_fit(fit: ImpedanceFit, thickness_um: float, area_cm2: float) -> dict[str, float]:
    """Both conductivities of a fitted SS | SSE | SS (or Li | SSE | Li) spectrum, in S cm⁻¹.

    Returns:
        ``ionic_conductivity_S_cm`` from R_b + R_gb (R_b alone if the circuit has no GB arc),
        ``bulk_ionic_conductivity_S_cm`` from R_b, and the resistance used for each (Ω).

    Raises:
        ValueError: thickness or area not > 0, or a fitted resistance of 0.
    """
    total = fit.electrolyte_resistance_ohm
    return {
        "ionic_conductivity_S_cm": ionic_conductivity_S_cm(total, thickness_um, area_cm2),
        "ionic_conductivity_resistance_ohm": total,
        "bulk_ionic_conductivity_S_cm": ionic_conductivity_S_cm(fit.bulk_resistance_ohm, thickness_um, area_cm2),
        "bulk_ionic_conductivity_resistance_ohm": fit.bulk_resistance_ohm,
    }


@dataclass(frozen=True)
class ArrheniusFit:
    """E_a (eV) with its standard error (eV), R² of the line, ln of the prefactor A (A in
    S cm⁻¹ K for ``form="sigma_T"``, S cm⁻¹ for ``"sigma"``), the form and the number of points."""

    activation_energy_eV: float
    activation_energy_std_eV: float
    r_squared: float
    ln_prefactor: float
    form: str
    n_points: int

    def conductivity_S_cm(self, temperature_C: float) -> float:
        """The fitted line's σ at ``temperature_C`` (°C), in S cm⁻¹."""
        t = finite("temperature_C", temperature_C) + ZERO_CELSIUS_K
        ln_y = self.ln_prefactor - self.activation_energy_eV / (BOLTZMANN_EV_K * t)
        return math.exp(ln_y) / (t if self.form == "sigma_T" else 1.0)

    def as_results(self) -> dict[str, Any]:
        return {"activation_energy_eV": self.activation_energy_eV,
                "activation_energy_std_eV": self.activation_energy_std_eV,
                "arrhenius_r_squared": self.r_squared, "arrhenius_form": self.form}


def arrhenius(temperature_C: Any, conductivity_S_cm: Any, *, form: Literal["sigma_T", "sigma"] = "sigma_T") -> ArrheniusFit:
    """Activation energy from conductivities at several temperatures (method in the module docstring).

    Args:
        temperature_C: 1-D, °C (≥ 3 distinct values).
        conductivity_S_cm: 1-D, S cm⁻¹, > 0, same length.
        form: ``"sigma_T"`` fits ln(σT) vs 1/T (default); ``"sigma"`` fits ln σ vs 1/T.

    Raises:
        ValueError: non-finite or non-positive values, fewer than 3 distinct temperatures,
            a temperature ≤ −273.15 °C, or an unknown form.
    """
    from scipy.stats import linregress

    if form not in ("sigma_T", "sigma"):
        raise ValueError(f"form must be 'sigma_T' or 'sigma', got {form!r}")
    t_c = finite_array("temperature_C", temperature_C)
    sigma = finite_array("conductivity_S_cm", conductivity_S_cm)
    same_length(temperature_C=t_c, conductivity_S_cm=sigma)
    if np.any(sigma <= 0):
        raise ValueError("conductivity_S_cm: every value must be > 0")
    t_k = t_c + ZERO_CELSIUS_K
    if np.any(t_k <= 0):
        raise ValueError("temperature_C: a value at or below absolute zero")
    if len(np.unique(t_k)) < 3:
        raise ValueError(f"temperature_C: {len(np.unique(t_k))} distinct temperature(s); an Arrhenius fit needs 3")
    y = np.log(sigma * t_k) if form == "sigma_T" else np.log(sigma)
    line = linregress(1.0 / t_k, y)
    return ArrheniusFit(
        activation_energy_eV=float(-line.slope * BOLTZMANN_EV_K),
        activation_energy_std_eV=float(line.stderr * BOLTZMANN_EV_K),
        r_squared=float(line.rvalue ** 2), ln_prefactor=float(line.intercept), form=form, n_points=len(t_k),
    )


@dataclass(frozen=True)
class SteadyState:
    """The steady-state current of an I–t record.

    ``current_A``: mean current over the window where the criterion was first met (or the
    last window, if never); ``time_s``: the end of that window; ``reached``: whether the
    criterion was met; ``relative_change_per_h``: |dI/dt|/|I| × 3600 s h⁻¹ there (1/h);
    ``window_s``: the window used.
    """

    current_A: float
    time_s: float
    reached: bool
    relative_change_per_h: float
    window_s: float


def steady_state_current(time_s: Any, current_A: Any, *, max_relative_change_per_h: float = 0.01,
                         window_s: float = 600.0, min_points: int = 5) -> SteadyState:
    """The first time the current of a potentiostatic hold is steady.

    For each reading k, a straight line is fitted (least squares, by running sums) to the
    readings in the trailing window [t_k − ``window_s``, t_k] (at least ``min_points``
    readings); the current is steady at the first k where |slope|·3600 / |mean| <
    ``max_relative_change_per_h``. The seeds give no criterion (seed-protocols.md §6.2,
    §7.2); the default 1 % h⁻¹ is this module's convention.

    Args:
        time_s: 1-D, s, non-decreasing, ≥ ``min_points`` readings.
        current_A: 1-D, A, same length.

    Raises:
        ValueError: non-finite input, a decreasing time, a mean current of 0 everywhere,
            or a threshold / window not > 0.
    """
    t = finite_array("time_s", time_s, min_length=max(min_points, 2))
    i = finite_array("current_A", current_A)
    same_length(time_s=t, current_A=i)
    non_decreasing("time_s", t)
    threshold = positive("max_relative_change_per_h", max_relative_change_per_h)
    window = positive("window_s", window_s)
    if min_points < 3:
        raise ValueError(f"min_points must be ≥ 3, got {min_points}")
    n = len(t)
    first = np.searchsorted(t, t - window, side="left")
    first = np.minimum(first, np.arange(n) - (min_points - 1))
    valid = first >= 0
    first = np.clip(first, 0, None)
    tc = t - t[0]  # centred for numerical stability of the running sums
    cs = {name: np.concatenate([[0.0], np.cumsum(v)]) for name, v in
          (("n", np.ones(n)), ("t", tc), ("i", i), ("tt", tc * tc), ("ti", tc * i))}
    end = np.arange(1, n + 1)
    sums = {name: c[end] - c[first] for name, c in cs.items()}
    count = sums["n"]
    mean_t, mean_i = sums["t"] / count, sums["i"] / count
    var_t = sums["tt"] / count - mean_t ** 2
    cov = sums["ti"] / count - mean_t * mean_i
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(var_t > 0, cov / var_t, np.inf)
        rate = np.abs(slope) * 3600.0 / np.abs(mean_i)
    rate = np.where(valid & np.isfinite(rate), rate, np.inf)
    hits = np.flatnonzero(rate < threshold)
    k = int(hits[0]) if len(hits) else n - 1
    if mean_i[k] == 0:
        raise ValueError("current_A: zero mean current in the steady-state window; no steady state to take")
    if not math.isfinite(rate[k]):
        raise ValueError("time_s: the last window's readings share one time; no rate of change to take")
    last_rate = float(rate[k])
    return SteadyState(current_A=float(mean_i[k]), time_s=float(t[k]), reached=bool(len(hits)),
                       relative_change_per_h=last_rate, window_s=window)


@dataclass(frozen=True)
class ElectronicConductivity:
    """σ_e (S cm⁻¹) from the steady current; ``is_upper_bound`` when the current had not
    reached the steady state (it was still falling, so σ_e is at most this)."""

    electronic_conductivity_S_cm: float
    is_upper_bound: bool
    steady_state: SteadyState
    bias_V: float

    def as_results(self) -> dict[str, Any]:
        return {"electronic_conductivity_S_cm": self.electronic_conductivity_S_cm,
                "electronic_conductivity_is_upper_bound": self.is_upper_bound,
                "steady_state_current_A": self.steady_state.current_A,
                "steady_state_time_s": self.steady_state.time_s,
                "steady_state_criterion_per_h": self.steady_state.relative_change_per_h}


def electronic_conductivity(time_s: Any, current_A: Any, *, bias_V: float, thickness_um: float, area_cm2: float,
                            max_relative_change_per_h: float = 0.01, window_s: float = 600.0) -> ElectronicConductivity:
    """σ_e = I_ss·d / (V·A) from a DC polarisation of an ion-blocking SS | SSE | SS cell.

    Args:
        time_s, current_A: the hold's I–t record (s, A).
        bias_V: the applied bias (V; its sign is ignored) — 0.15 V in [000 L185], 0.2 V in
            [003 L386].
        thickness_um, area_cm2: the electrolyte's thickness (µm) and area (cm²).
        max_relative_change_per_h, window_s: the steady-state criterion, see
            :func:`steady_state_current`.

    Raises:
        ValueError: bad input (named).
    """
    bias = abs(finite("bias_V", bias_V))
    if bias == 0:
        raise ValueError("bias_V must not be 0")
    d_cm = positive("thickness_um", thickness_um) * 1e-4
    area = positive("area_cm2", area_cm2)
    ss = steady_state_current(time_s, current_A, max_relative_change_per_h=max_relative_change_per_h,
                              window_s=window_s)
    return ElectronicConductivity(abs(ss.current_A) * d_cm / (bias * area), not ss.reached, ss, bias)
