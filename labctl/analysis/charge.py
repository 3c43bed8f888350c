"""Charge bookkeeping of cycler records: charge per interval, per cycle and per half-cycle.

Every cycling analysis (full cells, Li | Cu efficiency, plating to a short, CTTA) counts the
charge that passed between consecutive readings. With the instrument's own cumulative charge
counter (``charge_C``: the run file's column, which an import fills from NEWARE's step
capacity or EC-Lab's (Q−Qo)) the interval charge is its difference — exactly the vendor's
coulomb count; without it, the trapezoid rule on the current.

An interval belongs to the reading that ends it (its cycle and step), as a cycler's counter
attributes it. The energy of an interval is its charge times the mean of the two voltages
(trapezoid rule on V·dQ).

Sign: the cycler's (positive current = charge; BDF, :mod:`labctl.store.importers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.analysis._inputs import finite_array, non_decreasing, same_length

#: Coulombs per mAh.
C_PER_MAH = 3.6


@dataclass(frozen=True)
class Record:
    """Validated reading arrays of one channel (all 1-D, length n ≥ 2).

    ``time_s`` (s, non-decreasing), ``voltage_V`` (V), ``current_A`` (A), ``cycle_index``
    (int), ``interval_charge_C`` (length n − 1: the charge of each interval, C, signed) and
    ``interval_energy_J`` (length n − 1, J, signed like the charge).
    """

    time_s: np.ndarray
    voltage_V: np.ndarray
    current_A: np.ndarray
    cycle_index: np.ndarray
    interval_charge_C: np.ndarray
    interval_energy_J: np.ndarray

    @property
    def interval_cycle(self) -> np.ndarray:
        """The cycle of each interval: that of the reading ending it."""
        return self.cycle_index[1:]


def record(time_s: Any, voltage_V: Any, current_A: Any, cycle_index: Any = None, charge_C: Any = None) -> Record:
    """Check the arrays of a cycler record and count the charge of every interval.

    Args:
        time_s: s, non-decreasing. voltage_V: V. current_A: A (positive = charge).
        cycle_index: the cycler's cycle number per reading (default: all 0).
        charge_C: the cycler's cumulative signed charge (C), if it has one (preferred).

    Raises:
        ValueError: non-finite values, different lengths, fewer than 2 readings, or a
            decreasing time (each names the array).
    """
    t = finite_array("time_s", time_s, min_length=2)
    v = finite_array("voltage_V", voltage_V)
    i = finite_array("current_A", current_A)
    arrays = {"time_s": t, "voltage_V": v, "current_A": i}
    if cycle_index is not None:
        cyc = finite_array("cycle_index", cycle_index)
        if np.any(cyc != np.round(cyc)):
            raise ValueError("cycle_index: not whole numbers")
        arrays["cycle_index"] = cyc
        cyc = cyc.astype(np.int64)
    else:
        cyc = np.zeros(len(t), dtype=np.int64)
    if charge_C is not None:
        q = finite_array("charge_C", charge_C)
        arrays["charge_C"] = q
    same_length(**arrays)
    non_decreasing("time_s", t)
    if charge_C is not None:
        dq = np.diff(q)
    else:
        dq = 0.5 * (i[1:] + i[:-1]) * np.diff(t)
    de = dq * 0.5 * (v[1:] + v[:-1])
    return Record(t, v, i, cyc, dq, de)


def cycles_from_current(current_A: Any, *, first: str = "charge", rest_current_A: float = 0.0) -> np.ndarray:
    """Cycle numbers (1, 2, …) from the sequence of half-cycles, for records without them.

    A new cycle starts wherever a ``first`` half-cycle (``"charge"``: current > 0, or
    ``"discharge"``) begins after one of the other direction; readings with |I| ≤
    ``rest_current_A`` keep the cycle they are in.

    Raises:
        ValueError: non-finite current or an unknown ``first``.
    """
    i = finite_array("current_A", current_A)
    if first not in ("charge", "discharge"):
        raise ValueError(f"first must be 'charge' or 'discharge', got {first!r}")
    sign = np.where(i > rest_current_A, 1, np.where(i < -rest_current_A, -1, 0))
    lead = 1 if first == "charge" else -1
    flowing = np.flatnonzero(sign != 0)
    starts = np.zeros(len(i), dtype=np.int64)
    if len(flowing):
        s = sign[flowing]
        new = np.r_[False, (s[1:] == lead) & (s[:-1] == -lead)]
        starts[flowing[new]] = 1
    return 1 + np.cumsum(starts)


@dataclass(frozen=True)
class HalfCycle:
    """A run of consecutive intervals with charge of one sign (rests excluded).

    ``direction``: +1 charge, −1 discharge; rows ``start_row``..``end_row`` (inclusive) of the
    record; ``charge_mAh`` and ``energy_Wh`` as magnitudes; ``mean_voltage_V`` = energy/charge.
    """

    direction: int
    cycle: int
    start_row: int
    end_row: int
    start_s: float
    end_s: float
    charge_mAh: float
    energy_Wh: float

    @property
    def mean_voltage_V(self) -> float:
        return self.energy_Wh * 1e3 / self.charge_mAh if self.charge_mAh > 0 else 0.0


def half_cycles(rec: Record, *, rest_current_A: float = 0.0) -> list[HalfCycle]:
    """The half-cycles of a record: maximal runs of intervals whose charge has one sign and
    whose ending reading carries |I| > ``rest_current_A``, split where the cycle changes."""
    dq = rec.interval_charge_C
    flowing = np.abs(rec.current_A[1:]) > rest_current_A
    sign = np.where(flowing, np.sign(dq), 0).astype(np.int64)
    out: list[HalfCycle] = []
    n = len(dq)
    k = 0
    cyc = rec.interval_cycle
    while k < n:
        if sign[k] == 0:
            k += 1
            continue
        end = k
        while end + 1 < n and sign[end + 1] == sign[k] and cyc[end + 1] == cyc[k]:
            end += 1
        q = float(np.sum(dq[k:end + 1]))
        e = float(np.sum(rec.interval_energy_J[k:end + 1]))
        out.append(HalfCycle(int(sign[k]), int(cyc[k]), k, end + 1, float(rec.time_s[k]), float(rec.time_s[end + 1]),
                             abs(q) / C_PER_MAH, abs(e) / 3600.0))
        k = end + 1
    return out


@dataclass(frozen=True)
class CycleTotals:
    """Per-cycle totals, arrays over the cycles present (ascending): ``cycle``,
    ``charge_mAh`` and ``discharge_mAh`` (magnitudes), ``charge_Wh``, ``discharge_Wh``,
    ``end_s`` (time of the cycle's last reading)."""

    cycle: np.ndarray
    charge_mAh: np.ndarray
    discharge_mAh: np.ndarray
    charge_Wh: np.ndarray
    discharge_Wh: np.ndarray
    end_s: np.ndarray


def cycle_totals(rec: Record) -> CycleTotals:
    """Charge and discharge capacity and energy per cycle (sums of the intervals' charge of
    each sign; magnitudes)."""
    cyc = rec.interval_cycle
    cycles = np.unique(rec.cycle_index)
    pos = np.searchsorted(cycles, cyc)
    dq, de = rec.interval_charge_C, rec.interval_energy_J
    m = len(cycles)
    charge = np.bincount(pos, weights=np.where(dq > 0, dq, 0.0), minlength=m)
    discharge = np.bincount(pos, weights=np.where(dq < 0, -dq, 0.0), minlength=m)
    e_charge = np.bincount(pos, weights=np.where(dq > 0, de, 0.0), minlength=m)
    e_discharge = np.bincount(pos, weights=np.where(dq < 0, -de, 0.0), minlength=m)
    last_row = np.array([np.flatnonzero(rec.cycle_index == c)[-1] for c in cycles])
    return CycleTotals(cycles, charge / C_PER_MAH, discharge / C_PER_MAH, e_charge / 3600.0, e_discharge / 3600.0,
                       rec.time_s[last_row])
