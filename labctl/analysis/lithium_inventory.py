"""Lithium inventory: Li | Cu Coulombic efficiency, capacity plated until a short, and the
coulometric titration time analysis (CTTA) of SEI growth.

* **Li | Cu CE** ([000 L136]: Li | FSE | Cu 99.1 % averaged over cycles 500–700; [000 L143]:
  LPSCl 20–70 %, failing after 6 cycles). Two methods, named in the result:
  ``"plain cycling"`` — per cycle CE = Q_strip / Q_plate of that cycle (Li plated on Cu, then
  stripped to a cut-off), mean over a stated range of cycles; ``"Adams reservoir"`` — Adams,
  Zheng, Ren, Xu, Zhang, "Accurate Determination of Coulombic Efficiency for Lithium Metal
  Anodes and Lithium Metal Batteries", Adv. Energy Mater. 8, 1702097 (2018), their reservoir
  protocol: after an optional conditioning cycle, a reservoir Q_T is plated, n cycles
  strip and plate Q_C, and a final strip to the cut-off recovers Q_S;
  CE = (n·Q_C + Q_S) / (n·Q_C + Q_T). Here the measured strips and plates of the n cycles are
  summed (CE = (ΣQ_strip + Q_S) / (Q_T + ΣQ_plate)), which is Adams' formula when every
  cycle passes Q_C.
* **Capacity to short** ([000 L87]: LPSCl 1.2, PolyEA-IL 1.6, FSE > 12 mAh cm⁻² at
  0.2 mA cm⁻²): the areal charge plated from the start until the short, and its equivalent Li
  thickness, :data:`LI_UM_PER_MAH_CM2` µm per mAh cm⁻² ([003 L176] "≈ 4.9 µm"; from Faraday's
  constant and Li's molar mass and density, 4.85 µm).
* **CTTA** (Aktekin et al. in [003 L547–L555]): fixed-charge titrations of Li onto the working
  electrode, each followed by open circuit until the potential reaches 0.05 V (the titrated Li
  is consumed by side reactions). The side-reaction charge q_Σ = Σ q(τ_i) at the times τ_i
  when titration i's Li was used up, against t and √t (t from the first titration's start);
  the √t slope and R² of a least-squares line with intercept (``scipy.stats.linregress``);
  SEI thickness at :data:`SEI_NM_PER_UAH_CM2` nm per µAh cm⁻² ([003 L555]: Li₂S + LiCl + Li₃P,
  compact, no gas).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.analysis._inputs import finite, finite_array, positive
from labctl.analysis.charge import C_PER_MAH, cycle_totals, half_cycles, record

FARADAY_C_MOL = 96485.33212
LI_MOLAR_MASS_G_MOL = 6.941
LI_DENSITY_G_CM3 = 0.534
#: Li thickness per areal capacity, µm per mAh cm⁻²: 3.6 C / F × M / ρ = 4.85 (derived; [003 L176] rounds to 4.9).
LI_UM_PER_MAH_CM2 = C_PER_MAH / FARADAY_C_MOL * LI_MOLAR_MASS_G_MOL / LI_DENSITY_G_CM3 * 1e4
#: SEI thickness per side-reaction charge, nm per µAh cm⁻² [003 L555].
SEI_NM_PER_UAH_CM2 = 9.0


# -- Li | Cu Coulombic efficiency ------------------------------------------------------------------

@dataclass(frozen=True)
class LiCuEfficiency:
    """Li | Cu CE. ``method``: "plain cycling" or "Adams reservoir"; ``coulombic_efficiency_pct``
    the mean (plain: over ``cycle_range``) or Adams' CE; per-cycle columns (plain) of
    plated and stripped charge (mAh) and CE (%)."""

    method: str
    coulombic_efficiency_pct: float
    cycle_range: tuple[int, int] | None
    columns: dict[str, list[float]]

    def as_results(self) -> dict[str, Any]:
        out: dict[str, Any] = {"coulombic_efficiency_pct": self.coulombic_efficiency_pct,
                               "coulombic_efficiency_method": self.method}
        if self.cycle_range is not None:
            out["coulombic_efficiency_first_cycle"], out["coulombic_efficiency_last_cycle"] = self.cycle_range
        if self.columns:
            out["cycles"] = self.columns
        return out


def li_cu_efficiency(time_s: Any, voltage_V: Any, current_A: Any, cycle_index: Any, *, plating_sign: int = -1,
                     charge_C: Any = None, cycle_range: tuple[int, int] | None = None) -> LiCuEfficiency:
    """Plain-cycling Li | Cu CE: per cycle Q_strip / Q_plate × 100 %, and its mean over
    ``cycle_range`` (first, last, inclusive; default every cycle with both halves).

    Args:
        time_s, voltage_V, current_A, cycle_index: the record (s, V, A, int).
        plating_sign: the sign of the current that plates Li on the Cu (−1: Cu as the working
            electrode, plating is the cycler's discharge, the usual cabling; +1 otherwise).
        charge_C: the cycler's cumulative charge (C), preferred to integrating the current.

    Raises:
        ValueError: bad input (named), or no complete cycle in the range.
    """
    if plating_sign not in (-1, 1):
        raise ValueError(f"plating_sign must be -1 or +1, got {plating_sign}")
    rec = record(time_s, voltage_V, current_A, cycle_index, charge_C)
    tot = cycle_totals(rec)
    plated = tot.discharge_mAh if plating_sign < 0 else tot.charge_mAh
    stripped = tot.charge_mAh if plating_sign < 0 else tot.discharge_mAh
    complete = (plated > 0) & (stripped > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ce = np.where(complete, stripped / plated * 100.0, 0.0)
    if cycle_range is None:
        first, last = (int(tot.cycle[complete][0]), int(tot.cycle[complete][-1])) if complete.any() else (0, -1)
    else:
        first, last = int(cycle_range[0]), int(cycle_range[1])
    chosen = complete & (tot.cycle >= first) & (tot.cycle <= last)
    if not chosen.any():
        raise ValueError(f"cycle_range: no cycle with both plating and stripping in {first}..{last}")
    columns = {"cycle": tot.cycle.astype(float).tolist(), "plated_mAh": plated.tolist(), "stripped_mAh": stripped.tolist(),
               "coulombic_efficiency_pct": ce.tolist()}
    return LiCuEfficiency("plain cycling", float(np.mean(ce[chosen])), (first, last), columns)


def adams_reservoir_efficiency(q_reservoir_mAh: float, q_cycle_mAh: float, n_cycles: int,
                               q_final_strip_mAh: float) -> float:
    """Adams et al. 2018 (Adv. Energy Mater. 8, 1702097), reservoir protocol:
    CE = (n·Q_C + Q_S) / (n·Q_C + Q_T) × 100 %.

    Args:
        q_reservoir_mAh: Q_T, the reservoir plated before cycling (mAh, > 0).
        q_cycle_mAh: Q_C, stripped and plated in each cycle (mAh, ≥ 0).
        n_cycles: n (≥ 0).
        q_final_strip_mAh: Q_S, recovered by the final strip to the cut-off (mAh, ≥ 0).

    Raises:
        ValueError: values out of range (named).
    """
    qt = positive("q_reservoir_mAh", q_reservoir_mAh)
    qc = finite("q_cycle_mAh", q_cycle_mAh)
    qs = finite("q_final_strip_mAh", q_final_strip_mAh)
    if qc < 0 or qs < 0 or n_cycles < 0:
        raise ValueError("q_cycle_mAh, q_final_strip_mAh and n_cycles must be ≥ 0")
    return (n_cycles * qc + qs) / (n_cycles * qc + qt) * 100.0


def adams_reservoir_from_record(time_s: Any, voltage_V: Any, current_A: Any, *, plating_sign: int = -1,
                                conditioning: bool = True, charge_C: Any = None,
                                rest_current_A: float = 0.0) -> LiCuEfficiency:
    """Adams' reservoir CE from the record of the whole protocol.

    The half-cycles (:func:`~labctl.analysis.charge.half_cycles`) must read: [conditioning
    plate, conditioning strip,] reservoir plate, then n × (strip, plate), then the final
    strip. CE = (ΣQ_strip + Q_S) / (Q_T + ΣQ_plate) × 100 %.

    Raises:
        ValueError: bad input, or half-cycles not in that order.
    """
    if plating_sign not in (-1, 1):
        raise ValueError(f"plating_sign must be -1 or +1, got {plating_sign}")
    rec = record(time_s, voltage_V, current_A, None, charge_C)
    halves = half_cycles(rec, rest_current_A=rest_current_A)
    kinds = ["plate" if h.direction == plating_sign else "strip" for h in halves]
    merged: list[tuple[str, float]] = []  # a pause inside a half-cycle splits it: join same-kind neighbours
    for kind, h in zip(kinds, halves):
        if merged and merged[-1][0] == kind:
            merged[-1] = (kind, merged[-1][1] + h.charge_mAh)
        else:
            merged.append((kind, h.charge_mAh))
    if conditioning:
        if len(merged) < 2 or [k for k, _ in merged[:2]] != ["plate", "strip"]:
            raise ValueError("record: expected a conditioning plate and strip first")
        merged = merged[2:]
    if len(merged) < 2 or merged[0][0] != "plate" or merged[-1][0] != "strip" or len(merged) % 2:
        raise ValueError("record: expected a reservoir plate, n × (strip, plate) and a final strip; found "
                         + ", ".join(k for k, _ in merged))
    q_t = merged[0][1]
    cycling = merged[1:-1]
    q_s = merged[-1][1]
    stripped = sum(q for k, q in cycling if k == "strip")
    plated = sum(q for k, q in cycling if k == "plate")
    ce = (stripped + q_s) / (q_t + plated) * 100.0
    n = len(cycling) // 2
    columns = {"reservoir_mAh": [q_t], "cycles": [float(n)], "cycled_stripped_mAh": [stripped],
               "cycled_plated_mAh": [plated], "final_strip_mAh": [q_s]}
    return LiCuEfficiency("Adams reservoir", ce, None, columns)


# -- plating until a short -------------------------------------------------------------------------

@dataclass(frozen=True)
class PlatingToShort:
    """Areal capacity plated until the short (mAh cm⁻²) and its Li thickness (µm);
    ``is_lower_bound`` when no short happened (the cell took at least this much);
    ``short_time_s`` (``None`` without a short)."""

    capacity_to_short_mAh_cm2: float
    li_thickness_um: float
    is_lower_bound: bool
    short_time_s: float | None

    def as_results(self) -> dict[str, Any]:
        return {"capacity_to_short_mAh_cm2": self.capacity_to_short_mAh_cm2,
                "capacity_to_short_li_thickness_um": self.li_thickness_um,
                "capacity_to_short_is_lower_bound": self.is_lower_bound,
                "short_time_s": "" if self.short_time_s is None else self.short_time_s}


def capacity_to_short(time_s: Any, current_A: Any, *, area_cm2: float, short_time_s: float | None = None,
                      start_time_s: float | None = None) -> PlatingToShort:
    """Charge plated between ``start_time_s`` (default the first reading) and the short.

    The charge is ∫|I| dt (trapezoid rule) over readings up to ``short_time_s`` (the time the
    short was detected — the engine's ``short`` event or step end), divided by the area.

    Args:
        time_s, current_A: the plating record (s, A; sign ignored).
        area_cm2: electrode area (cm²).
        short_time_s: when the cell shorted; ``None``: it did not (a lower bound).

    Raises:
        ValueError: bad input (named), or a short time outside the record.
    """
    t = finite_array("time_s", time_s, min_length=2)
    i = np.abs(finite_array("current_A", current_A))
    rec = record(t, np.zeros(len(t)), i)
    area = positive("area_cm2", area_cm2)
    t0 = finite("start_time_s", start_time_s) if start_time_s is not None else float(t[0])
    t_end = float(t[-1])
    if short_time_s is not None:
        t_end = finite("short_time_s", short_time_s)
        if not t0 <= t_end <= t[-1]:
            raise ValueError(f"short_time_s {t_end:g} s is outside the record ({t0:g} … {t[-1]:g} s)")
    within = (rec.time_s[:-1] >= t0) & (rec.time_s[1:] <= t_end)
    q_mAh_cm2 = float(np.sum(rec.interval_charge_C[within])) / C_PER_MAH / area
    return PlatingToShort(q_mAh_cm2, q_mAh_cm2 * LI_UM_PER_MAH_CM2, short_time_s is None,
                          None if short_time_s is None else t_end)


# -- CTTA ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CTTAResult:
    """Coulometric titration time analysis.

    ``titration_count``: titrations in the record; ``titration_charge_uAh_cm2``: each
    titration's charge; ``consumed_time_s``: τ_i, when the potential reached the threshold
    after titration i (only titrations whose Li was used up within the record);
    ``q_sigma_uAh_cm2``: q_Σ at those times; ``elapsed_h`` and ``sqrt_time_h05``: t = τ_i − t₀
    (h) and √t (h^0.5); the √t line's ``sqrt_time_slope_uAh_cm2_h05``, intercept (µAh cm⁻²)
    and ``r_squared``; ``sei_charge_uAh_cm2``: the last q_Σ; ``sei_thickness_nm``.
    """

    titration_count: int
    titration_charge_uAh_cm2: list[float]
    consumed_time_s: list[float]
    q_sigma_uAh_cm2: list[float]
    elapsed_h: list[float]
    sqrt_time_h05: list[float]
    sqrt_time_slope_uAh_cm2_h05: float
    sqrt_time_intercept_uAh_cm2: float
    r_squared: float
    sei_charge_uAh_cm2: float
    sei_thickness_nm: float

    def as_results(self) -> dict[str, Any]:
        return {"titration_count": self.titration_count, "sei_charge_uAh_cm2": self.sei_charge_uAh_cm2,
                "sqrt_time_slope_uAh_cm2_h05": self.sqrt_time_slope_uAh_cm2_h05,
                "sqrt_time_intercept_uAh_cm2": self.sqrt_time_intercept_uAh_cm2,
                "sqrt_time_r_squared": self.r_squared, "sei_thickness_nm": self.sei_thickness_nm,
                "ctta": {"consumed_time_s": self.consumed_time_s, "q_sigma_uAh_cm2": self.q_sigma_uAh_cm2,
                         "elapsed_h": self.elapsed_h, "sqrt_time_h05": self.sqrt_time_h05,
                         "titration_charge_uAh_cm2": self.titration_charge_uAh_cm2}}


def ctta(time_s: Any, voltage_V: Any, current_A: Any, *, area_cm2: float, threshold_V: float = 0.05,
         voltage_sign: int = 1, rest_current_A: float | None = None, charge_C: Any = None) -> CTTAResult:
    """CTTA of a record of titrations and open-circuit periods (method in the module docstring).

    Args:
        time_s, voltage_V, current_A: the record (s, V, A).
        area_cm2: working-electrode area (cm²).
        threshold_V: the potential at which the titrated Li counts as consumed (0.05 V,
            [003 L555]); compared with ``voltage_sign`` × V (+1: the working electrode's
            potential vs Li rises as its Li is used up).
        rest_current_A: |I| at or under which a reading is open circuit (default 0.1 % of
            the largest |I|).
        charge_C: the cycler's cumulative charge (C), preferred to integrating the current.

    Raises:
        ValueError: bad input (named), no titration, or fewer than 3 consumed titrations
            for the √t line.
    """
    from scipy.stats import linregress

    rec = record(time_s, voltage_V, current_A, None, charge_C)
    area = positive("area_cm2", area_cm2)
    threshold = finite("threshold_V", threshold_V)
    if voltage_sign not in (-1, 1):
        raise ValueError(f"voltage_sign must be -1 or +1, got {voltage_sign}")
    i_max = float(np.max(np.abs(rec.current_A)))
    if i_max == 0:
        raise ValueError("current_A: no titration in the record (the current is 0 throughout)")
    rest = 1e-3 * i_max if rest_current_A is None else finite("rest_current_A", rest_current_A)
    flowing = np.abs(rec.current_A) > rest
    starts = np.flatnonzero(flowing & ~np.r_[False, flowing[:-1]])
    ends = np.flatnonzero(flowing & ~np.r_[flowing[1:], False])
    v = voltage_sign * rec.voltage_V
    q_each, consumed = [], []
    for k, (a, b) in enumerate(zip(starts, ends)):
        # intervals ending at rows a … b + 1: up to the first open-circuit reading, whose counter
        # holds the charge passed after reading b
        q = abs(float(np.sum(rec.interval_charge_C[max(a - 1, 0):b + 1]))) / C_PER_MAH * 1e3 / area  # µAh cm⁻²
        q_each.append(q)
        stop = starts[k + 1] if k + 1 < len(starts) else len(v)
        after = np.flatnonzero(v[b + 1:stop] >= threshold)
        if len(after):
            consumed.append(float(rec.time_s[b + 1 + after[0]]))
        elif k + 1 < len(starts):
            consumed.append(float(rec.time_s[starts[k + 1]]))  # the next titration began: the Li was used up
        else:
            break
    n_used = len(consumed)
    if n_used < 3:
        raise ValueError(f"record: {n_used} titration(s) consumed within the record; the √t line needs 3")
    q_sigma = np.cumsum(q_each[:n_used])
    t0 = float(rec.time_s[starts[0]])
    elapsed_h = (np.array(consumed) - t0) / 3600.0
    root = np.sqrt(elapsed_h)
    line = linregress(root, q_sigma)
    r2 = float(line.rvalue ** 2) if math.isfinite(line.rvalue) else 0.0
    return CTTAResult(
        titration_count=len(starts), titration_charge_uAh_cm2=[float(q) for q in q_each],
        consumed_time_s=consumed, q_sigma_uAh_cm2=q_sigma.tolist(), elapsed_h=elapsed_h.tolist(),
        sqrt_time_h05=root.tolist(), sqrt_time_slope_uAh_cm2_h05=float(line.slope),
        sqrt_time_intercept_uAh_cm2=float(line.intercept), r_squared=r2,
        sei_charge_uAh_cm2=float(q_sigma[-1]), sei_thickness_nm=float(q_sigma[-1] * SEI_NM_PER_UAH_CM2),
    )
