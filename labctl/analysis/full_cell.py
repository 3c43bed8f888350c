"""Full-cell cycling: per-cycle capacity, Coulombic efficiency, energy, retention; dQ/dV.

Cells: a cathode against Li metal ([000 L145]: LFP and NMC811 with 0.1C × 2 formation;
[002 L315, L325]; [004 L89, L119]). Per cycle (the cycler's cycle numbers, or
:func:`~labctl.analysis.charge.cycles_from_current`):

* charge and discharge capacity (mAh; per gram of cathode active material, mAh g⁻¹; per cm²,
  mAh cm⁻²), counted as in :mod:`labctl.analysis.charge`;
* Coulombic efficiency CE = Q_discharge / Q_charge × 100 % of the same cycle (what the cell
  gave back over what it took; [000 L145] reports 99.96–99.98 %; no formula in the seeds,
  seed-protocols.md §8);
* energy (Wh) and mean voltages E/Q of charge and discharge (V);
* retention = Q_discharge / Q_discharge of the reference cycle × 100 %, the reference being
  the first complete cycle after ``formation_cycles`` complete cycles ("after formation",
  [000 L183]: "activated at 0.1C for two cycles"), and the decay per cycle
  (100 % − retention) / (cycles since the reference) — [000 L145]'s "81 % … 0.0062 % per
  cycle" is of that form.

A cycle is complete when it has both charge and discharge; incomplete cycles (the last one of
a stopped run) are listed but take no part in the summary.

dQ/dV ([000]-style voltage profiles; seed-protocols.md §7.4): :func:`dqdv` on one half-cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labctl.analysis._inputs import finite_array, positive, same_length
from labctl.analysis.charge import C_PER_MAH, cycle_totals, record


@dataclass(frozen=True)
class FullCellCycles:
    """Per-cycle columns (lists of equal length, one entry per cycle in the record) and the
    summary. Columns: ``cycle``, ``complete`` (bool), ``charge_capacity_mAh``,
    ``discharge_capacity_mAh``, ``coulombic_efficiency_pct``, ``charge_energy_Wh``,
    ``discharge_energy_Wh``, ``mean_charge_voltage_V``, ``mean_discharge_voltage_V``,
    ``retention_pct``, ``end_s``; with a mass ``…_mAh_g``, with an area ``…_mAh_cm2``; with a
    nominal specific capacity ``discharge_c_rate`` (mean discharge current / (mass × nominal)).
    Values that do not exist (CE of a cycle without charge, retention before the reference) are
    0 and the cycle is not ``complete`` or not after the reference; see ``reference_cycle``.
    """

    columns: dict[str, list[Any]]
    reference_cycle: int | None
    last_cycle: int | None
    summary: dict[str, Any] = field(default_factory=dict)

    def as_results(self) -> dict[str, Any]:
        """Summary (``discharge_capacity_mAh_g`` of the reference cycle — the first after
        formation — when a mass is known, ``capacity_retention_pct`` of the last complete cycle,
        ``coulombic_efficiency_pct`` mean over the complete cycles from the reference on, …)
        and the per-cycle columns under ``cycles``."""
        return {**self.summary, "cycles": {k: [float(x) for x in v] for k, v in self.columns.items()}}


def full_cell_cycles(time_s: Any, voltage_V: Any, current_A: Any, cycle_index: Any, *, charge_C: Any = None,
                     active_mass_g: float | None = None, area_cm2: float | None = None,
                     nominal_capacity_mAh_g: float | None = None, formation_cycles: int = 0) -> FullCellCycles:
    """Per-cycle figures of a full cell (method in the module docstring).

    Args:
        time_s, voltage_V, current_A, cycle_index: the record (s, V, A positive = charge, int).
        charge_C: the cycler's cumulative charge (C), preferred to integrating the current.
        active_mass_g: cathode active material (g), for mAh g⁻¹ (model input).
        area_cm2: electrode area (cm²), for mAh cm⁻².
        nominal_capacity_mAh_g: nominal specific capacity (mAh g⁻¹), for the C-rate.
        formation_cycles: complete cycles before the reference cycle of retention.

    Raises:
        ValueError: bad input (named), ``formation_cycles`` < 0.
    """
    rec = record(time_s, voltage_V, current_A, cycle_index, charge_C)
    mass = positive("active_mass_g", active_mass_g) if active_mass_g is not None else None
    area = positive("area_cm2", area_cm2) if area_cm2 is not None else None
    nominal = positive("nominal_capacity_mAh_g", nominal_capacity_mAh_g) if nominal_capacity_mAh_g is not None else None
    if formation_cycles < 0:
        raise ValueError(f"formation_cycles must be ≥ 0, got {formation_cycles}")
    tot = cycle_totals(rec)
    complete = (tot.charge_mAh > 0) & (tot.discharge_mAh > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ce = np.where(complete, tot.discharge_mAh / tot.charge_mAh * 100.0, 0.0)
        v_ch = np.where(tot.charge_mAh > 0, tot.charge_Wh * 1e3 / tot.charge_mAh, 0.0)
        v_dis = np.where(tot.discharge_mAh > 0, tot.discharge_Wh * 1e3 / tot.discharge_mAh, 0.0)
    done = np.flatnonzero(complete)
    ref = int(done[formation_cycles]) if len(done) > formation_cycles else None
    retention = np.zeros(len(tot.cycle))
    if ref is not None:
        after = np.arange(len(tot.cycle)) >= ref
        retention = np.where(after & complete, tot.discharge_mAh / tot.discharge_mAh[ref] * 100.0, 0.0)
    cols: dict[str, list[Any]] = {
        "cycle": tot.cycle.tolist(), "complete": complete.tolist(),
        "charge_capacity_mAh": tot.charge_mAh.tolist(), "discharge_capacity_mAh": tot.discharge_mAh.tolist(),
        "coulombic_efficiency_pct": ce.tolist(), "charge_energy_Wh": tot.charge_Wh.tolist(),
        "discharge_energy_Wh": tot.discharge_Wh.tolist(), "mean_charge_voltage_V": v_ch.tolist(),
        "mean_discharge_voltage_V": v_dis.tolist(), "retention_pct": retention.tolist(), "end_s": tot.end_s.tolist(),
    }
    if mass is not None:
        cols["charge_capacity_mAh_g"] = (tot.charge_mAh / mass).tolist()
        cols["discharge_capacity_mAh_g"] = (tot.discharge_mAh / mass).tolist()
    if area is not None:
        cols["charge_capacity_mAh_cm2"] = (tot.charge_mAh / area).tolist()
        cols["discharge_capacity_mAh_cm2"] = (tot.discharge_mAh / area).tolist()
    if mass is not None and nominal is not None:
        cols["discharge_c_rate"] = _discharge_c_rate(rec, tot.cycle, mass * nominal).tolist()
    summary: dict[str, Any] = {"full_cell_complete_cycles": int(len(done)), "formation_cycles": formation_cycles}
    last = int(done[-1]) if len(done) else None
    if ref is not None and last is not None:
        summary.update({
            "reference_cycle": int(tot.cycle[ref]), "last_cycle": int(tot.cycle[last]),
            "reference_discharge_capacity_mAh": float(tot.discharge_mAh[ref]),
            "capacity_retention_pct": float(retention[last]),
            "coulombic_efficiency_pct": float(np.mean(ce[done[done >= ref]])),
            "capacity_decay_pct_per_cycle": float((100.0 - retention[last]) / (tot.cycle[last] - tot.cycle[ref]))
            if tot.cycle[last] > tot.cycle[ref] else 0.0,
        })
        if mass is not None:
            summary["discharge_capacity_mAh_g"] = float(tot.discharge_mAh[ref] / mass)
        if area is not None:
            summary["discharge_capacity_mAh_cm2"] = float(tot.discharge_mAh[ref] / area)
    return FullCellCycles(cols, int(tot.cycle[ref]) if ref is not None else None,
                          int(tot.cycle[last]) if last is not None else None, summary)


def _discharge_c_rate(rec: Any, cycles: np.ndarray, capacity_mAh: float) -> np.ndarray:
    """Mean |I| of each cycle's discharging intervals over the nominal capacity (1/h)."""
    dt = np.diff(rec.time_s)
    dq = rec.interval_charge_C
    rates = np.zeros(len(cycles))
    for k, c in enumerate(cycles):
        m = (rec.interval_cycle == c) & (dq < 0) & (dt > 0)
        if m.any():
            rates[k] = float(-dq[m].sum() / dt[m].sum()) * 1e3 / capacity_mAh
    return rates


@dataclass(frozen=True)
class DQDV:
    """dQ/dV of one half-cycle: ``voltage_V`` (uniform grid, V) and ``dqdv_mAh_V`` (mAh V⁻¹,
    positive for charge and discharge alike), with the method's settings."""

    voltage_V: np.ndarray
    dqdv_mAh_V: np.ndarray
    voltage_step_V: float
    window_points: int
    polyorder: int


def dqdv(voltage_V: Any, charge_mAh: Any, *, voltage_step_V: float = 0.005, window_points: int = 11,
         polyorder: int = 3) -> DQDV:
    """dQ/dV of one half-cycle (charge or discharge, told apart by the voltage's direction).

    Method: the capacity passed since the half-cycle began, Q(V), is kept only at readings
    where V reaches a new extreme in the sweep's direction (so noise reversals and a
    constant-voltage tail, where V stands still, drop out), interpolated linearly onto a
    uniform grid of ``voltage_step_V``, and differentiated with a Savitzky–Golay filter
    (``scipy.signal.savgol_filter``, ``window_points`` grid points, polynomial ``polyorder``,
    ``deriv=1``) — smoothing and derivative in one step.

    Args:
        voltage_V: 1-D, V, the half-cycle's readings in time order.
        charge_mAh: 1-D, cumulative |charge| since the half-cycle began (mAh), same length.

    Raises:
        ValueError: bad input (named), or a voltage span shorter than the filter window.
    """
    from scipy.signal import savgol_filter

    v = finite_array("voltage_V", voltage_V, min_length=2)
    q = finite_array("charge_mAh", charge_mAh)
    same_length(voltage_V=v, charge_mAh=q)
    step = positive("voltage_step_V", voltage_step_V)
    if window_points < polyorder + 2 or window_points % 2 == 0:
        raise ValueError(f"window_points must be odd and ≥ polyorder + 2, got {window_points}")
    direction = 1.0 if v[-1] >= v[0] else -1.0
    s = direction * v
    keep = np.r_[True, s[1:] > np.maximum.accumulate(s)[:-1]]
    vs, qs = s[keep], q[keep]
    grid = np.arange(vs[0], vs[-1], step)
    if len(grid) < window_points:
        raise ValueError(f"voltage_V: spans {abs(v[-1] - v[0]) * 1e3:.3g} mV, under the {window_points}-point "
                         f"window at {step * 1e3:.3g} mV steps")
    q_grid = np.interp(grid, vs, qs)
    deriv = savgol_filter(q_grid, window_points, polyorder, deriv=1, delta=step)
    return DQDV(direction * grid, deriv, step, window_points, polyorder)


def cycle_dqdv(time_s: Any, voltage_V: Any, current_A: Any, cycle_index: Any, cycle: int, *, direction: str = "discharge",
               charge_C: Any = None, **options: Any) -> DQDV:
    """:func:`dqdv` of the charge or discharge of one ``cycle`` of a record (all of that
    cycle's intervals of that direction, in time order).

    Raises:
        ValueError: bad input, or no such half-cycle in the record.
    """
    if direction not in ("charge", "discharge"):
        raise ValueError(f"direction must be 'charge' or 'discharge', got {direction!r}")
    rec = record(time_s, voltage_V, current_A, cycle_index, charge_C)
    sign = 1.0 if direction == "charge" else -1.0
    m = (rec.interval_cycle == cycle) & (sign * rec.interval_charge_C > 0)
    if not m.any():
        raise ValueError(f"cycle {cycle}: no {direction} in the record")
    rows = np.flatnonzero(m) + 1
    q = np.cumsum(sign * rec.interval_charge_C[m]) / C_PER_MAH
    return dqdv(rec.voltage_V[rows], q, **options)
