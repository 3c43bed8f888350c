"""Memristor set/reset cycle analysis (seed 004, seed-protocols.md §5).

Per cycle: R_HRS and R_LRS at the read bias (V/I at the read points before the set sweep
and after it), the on/off ratio R_HRS/R_LRS ("the ratio between the HRS and LRS state"
[004 L105]; the read bias is not in the seed, so it is a protocol parameter), the set
voltage (the current surge of the negative excursion), the reset voltage (the fall of the
current in the positive excursion) and whether the reset failed (no fall).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from labctl.analysis.switching import drop_index, surge_index


@dataclass(frozen=True)
class CycleLayout:
    """Point indices in one cycle's sweep: HRS read, set excursion [a, b], LRS read, reset
    excursion [c, d] (inclusive)."""

    read_hrs: int
    set_segment: tuple[int, int]
    read_lrs: int
    reset_segment: tuple[int, int]


@dataclass(frozen=True)
class CycleResult:
    """R in Ω, voltages in V; NaN where not found (e.g. a sweep cut by compliance)."""

    hrs_resistance_ohm: float
    lrs_resistance_ohm: float
    on_off_ratio: float
    set_voltage_V: float
    reset_voltage_V: float
    reset_failed: bool

    def as_dict(self) -> dict[str, float | bool]:
        return asdict(self)


def analyse_cycle(voltage_V: Sequence[float], current_A: Sequence[float], layout: CycleLayout, *,
                  surge_factor: float, min_current_A: float, drop_factor: float) -> CycleResult:
    """One cycle's readings (1-D arrays in sweep order, possibly cut short) → :class:`CycleResult`."""
    v = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    n = len(v)

    def resistance(k: int) -> float:
        return float(v[k] / i[k]) if k < n and i[k] != 0 else math.nan

    r_hrs, r_lrs = resistance(layout.read_hrs), resistance(layout.read_lrs)
    a, b = layout.set_segment
    set_v = math.nan
    if a < n:
        k = surge_index(v[a:min(b, n - 1) + 1], i[a:min(b, n - 1) + 1], surge_factor, min_current_A)
        set_v = float(v[a + k]) if k is not None else math.nan
    c, d = layout.reset_segment
    reset_v, failed = math.nan, True
    if c < n:
        k = drop_index(v[c:min(d, n - 1) + 1], i[c:min(d, n - 1) + 1], drop_factor)
        if k is not None:
            reset_v, failed = float(v[c + k]), False
    ratio = r_hrs / r_lrs if math.isfinite(r_hrs) and math.isfinite(r_lrs) and r_lrs else math.nan
    return CycleResult(r_hrs, r_lrs, ratio, set_v, reset_v, failed)
