"""c-AFM triggering-bias analysis: per sweep the triggering bias and the ohmic back-scan
check, the onset (Li⁺) current density through the Hertzian contact area, and statistics
per site class (grain boundary vs grain interior) and vs distance from the boundary.

Method (seed 004, seed-protocols.md §4): at small bias the current is ionic; where Li
penetrates "the measured current goes through an abrupt change" — the triggering bias — and
"a back scan where an almost perfect linear relation between the current and the voltage is
observed" confirms the ohmic (electronic) path [004 L54]. Contact area A = π(3Pr/(4E*))^(2/3)
[004 L127]; the seed's inputs give ≈ 68 nm², not its stated ≈ 30 nm² [004 L129].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from labctl.analysis.switching import surge_index


def hertz_contact_area_nm2(tip_radius_nm: float, force_nN: float, modulus_GPa: float) -> float:
    """A = π·(3·P·r / (4·E*))^(2/3) in nm² [004 L127]; r in nm, P in nN, E* in GPa.

    Seed 004's r = 20 nm, P = 400 nN, E* = 60 GPa give 67.7 nm² (the paper states ≈ 30 nm²).

    Raises:
        ValueError: an input is not > 0.
    """
    for name, value in (("tip_radius_nm", tip_radius_nm), ("force_nN", force_nN), ("modulus_GPa", modulus_GPa)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    a_m = (3.0 * force_nN * 1e-9 * tip_radius_nm * 1e-9 / (4.0 * modulus_GPa * 1e9)) ** (1.0 / 3.0)
    return math.pi * (a_m * 1e9) ** 2


@dataclass(frozen=True)
class TriggerResult:
    """One sweep: the triggering bias (V, NaN if no surge), the current at the surge (A, already
    electronic), the onset current (A): the ionic (Li⁺) current of the last point before the
    surge, "a proxy for the deposition rate" [004 L54]; and the back scan: linear-fit resistance
    (Ω), R², and whether it passes as ohmic."""

    triggering_bias_V: float
    triggering_current_A: float
    onset_current_A: float
    back_scan_resistance_ohm: float
    back_scan_r2: float
    ohmic: bool

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def analyse_trigger_sweep(voltage_V: Sequence[float], current_A: Sequence[float], *, surge_factor: float,
                          min_current_A: float, ohmic_r2_min: float) -> TriggerResult:
    """Triggering bias and back-scan check of one cyclic sweep (start → vertex → back).

    The forward scan runs to the point of largest |V| (the vertex); the triggering bias is
    the bias of its first point where |I| surges (:func:`labctl.analysis.switching.surge_index`).
    The back scan (vertex → end) is fitted with I = V/R + c; it is ohmic when R² ≥
    ``ohmic_r2_min`` and a surge was found. Shapes: two 1-D arrays of equal length.
    """
    v = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    nan = math.nan
    if len(v) < 3:
        return TriggerResult(nan, nan, nan, nan, nan, False)
    vertex = int(np.argmax(np.abs(v)))
    k = surge_index(v[:vertex + 1], i[:vertex + 1], surge_factor, min_current_A)
    bias, current = (float(v[k]), float(i[k])) if k is not None else (nan, nan)
    onset = float(i[k - 1]) if k is not None and k > 0 else nan
    back_v, back_i = v[vertex:], i[vertex:]
    r, r2 = nan, nan
    if len(back_v) >= 3 and np.ptp(back_v) > 0:
        slope, intercept = np.polyfit(back_v, back_i, 1)
        residual = back_i - (slope * back_v + intercept)
        total = np.sum((back_i - back_i.mean()) ** 2)
        r2 = float(1.0 - np.sum(residual ** 2) / total) if total > 0 else nan
        r = float(1.0 / slope) if slope else math.inf
    return TriggerResult(bias, current, onset, r, r2, bool(k is not None and r2 >= ohmic_r2_min))


def class_statistics(values: Sequence[float]) -> dict[str, float]:
    """n, mean, median, std, min, max of the finite values (NaN when there are none)."""
    a = np.asarray([x for x in values if math.isfinite(x)], dtype=float)
    if not len(a):
        return {"n": 0, "mean": math.nan, "median": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
    return {"n": len(a), "mean": float(a.mean()), "median": float(np.median(a)),
            "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "min": float(a.min()), "max": float(a.max())}
