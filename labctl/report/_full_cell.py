"""Figures of full-cell cycling and Li | Cu efficiency runs.

* ``<stem>_capacity.png`` — per cycle the charge and discharge capacity (mAh g⁻¹ when the
  cathode's mass is known, else mAh; Li | Cu: plated and stripped mAh) and the Coulombic
  efficiency (%), from ``results/cycles``; the reference cycle after the formation and the
  retention (full cell) or the averaged range and its mean CE (Li | Cu) marked;
* ``<stem>_profiles.png`` — voltage vs capacity of selected cycles (the first after the
  formation, one in the middle, the last complete one), charge and discharge;
* ``<stem>_dqdv.png`` — dQ/dV of the discharge of the same cycles
  (:func:`labctl.analysis.full_cell.dqdv`);

and the time series of :mod:`labctl.report._galvanostatic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labctl.analysis.charge import C_PER_MAH
from labctl.analysis.full_cell import dqdv
from labctl.report._common import ReportFigure, ReportRun, fmt, new_figure, save
from labctl.report._galvanostatic import PLATE, STRIP, time_series

#: Colours of the selected cycles (first, middle, last).
CYCLE_COLOURS = ("tab:blue", "tab:orange", "tab:green")


def _cycle_columns(run: ReportRun) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``results/cycles`` as arrays: the cycle numbers and every column."""
    cycles = run.result("cycles")
    keys = [k for k in cycles if isinstance(cycles[k], (list, np.ndarray))]
    return run.float_array("cycles", "cycle"), {k: run.float_array("cycles", k) for k in keys}


def _per_gram(run: ReportRun, cols: dict[str, np.ndarray]) -> tuple[str, str, float]:
    """(column suffix, unit, mass in g or NaN): per gram when the analysis had a mass."""
    if "discharge_capacity_mAh_g" in cols:
        mass_g = float(np.median(cols["discharge_capacity_mAh"] / np.where(cols["discharge_capacity_mAh_g"] > 0,
                                                                            cols["discharge_capacity_mAh_g"], np.nan)))
        return "_mAh_g", "mAh g$^{-1}$", mass_g
    return "_mAh", "mAh", float("nan")


def capacity_figure(run: ReportRun, out_dir: Path) -> ReportFigure:
    """Charge/discharge capacity and CE vs cycle of a full cell.

    ``data``: ``cycle``, ``charge_capacity``, ``discharge_capacity`` (in ``capacity_unit``),
    ``coulombic_efficiency_pct`` (complete cycles), ``reference_cycle``, ``retention_pct``.
    """
    cycle, cols = _cycle_columns(run)
    suffix, unit, _ = _per_gram(run, cols)
    done = cols["complete"] > 0
    charge, discharge = cols["charge_capacity" + suffix], cols["discharge_capacity" + suffix]
    ce = cols["coulombic_efficiency_pct"]
    fig = new_figure(10, 6.4)
    ax_q, ax_ce = fig.subplots(2, 1, sharex=True)
    style = "o" if len(cycle) <= 80 else "."
    ax_q.plot(cycle, charge, style, color=PLATE, ms=3, label="charge")
    ax_q.plot(cycle, discharge, style, color=STRIP, ms=3, label="discharge")
    ax_ce.plot(cycle[done], ce[done], style + "-", color="black", ms=3, lw=0.6, label="Coulombic efficiency")
    reference = run.results.get("reference_cycle", "")
    retention = run.results.get("capacity_retention_pct", float("nan"))
    title = f"{run.title}\n{int(done.sum())} complete cycles"
    if reference != "":
        for ax in (ax_q, ax_ce):
            ax.axvline(float(reference), color="grey", ls=":", lw=1, label="first cycle after formation"
                       if ax is ax_q else None)
        title += (f"; retention {fmt(retention, 4)} % at cycle {run.results.get('last_cycle')} vs cycle {reference}; "
                  f"mean CE {fmt(run.results.get('coulombic_efficiency_pct', float('nan')), 6)} %")
    ax_q.set_title(title, fontsize=10)
    ax_q.set_ylabel(f"capacity ({unit})")
    ax_ce.set_ylabel("CE (%)")
    ax_ce.set_xlabel("cycle")
    steady = ce[done][int(min(3, done.sum())):] if done.sum() > 3 else ce[done]
    if len(steady):
        lo, hi = float(np.percentile(steady, 1)), float(np.percentile(steady, 99))
        pad = max(0.05, 0.2 * (hi - lo))
        ax_ce.set_ylim(lo - pad, min(hi + pad, 200.0))
    for ax in (ax_q, ax_ce):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    data = {"cycle": cycle, "charge_capacity": charge, "discharge_capacity": discharge, "capacity_unit": unit,
            "coulombic_efficiency_pct": ce[done], "reference_cycle": reference, "retention_pct": retention}
    return save(fig, run, out_dir, "capacity", data)


def _selected_cycles(run: ReportRun, cycle: np.ndarray, done: np.ndarray) -> list[int]:
    """First after the formation (or first complete), middle and last complete cycles."""
    complete = cycle[done].astype(int)
    if not len(complete):
        return []
    reference = run.results.get("reference_cycle", "")
    first = int(reference) if reference != "" and int(reference) in complete else int(complete[0])
    after = complete[complete >= first]
    picks = [first, int(after[len(after) // 2]), int(after[-1])]
    return list(dict.fromkeys(picks))


def _cycle_rows(run: ReportRun, cycle: int, index: np.ndarray) -> slice:
    return slice(int(np.searchsorted(index, cycle, "left")), int(np.searchsorted(index, cycle, "right")))


def _halves(run: ReportRun, rows: slice) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The charge and discharge of a cycle's rows: (|charge passed| since the half began in
    mAh, voltage V), from the run's cumulative charge."""
    r = run.readings(rows, "voltage_V", "current_A", "charge_C")
    out = {}
    for name, sign in (("charge", 1.0), ("discharge", -1.0)):
        m = sign * r["current_A"] > 0
        if m.sum() >= 2:
            q = r["charge_C"][m]
            out[name] = (np.abs(q - q[0]) / C_PER_MAH, r["voltage_V"][m])
    return out


def profiles_figure(run: ReportRun, out_dir: Path, *, li_cu: bool = False) -> ReportFigure:
    """Voltage vs capacity of the first (after formation), a middle and the last complete cycle.

    ``data``: ``cycles`` and per cycle ``<cycle>_<half>_capacity`` and ``<cycle>_<half>_voltage_V``.
    """
    cycle, cols = _cycle_columns(run)
    done = (cols["complete"] > 0) if "complete" in cols else (cols["coulombic_efficiency_pct"] > 0)
    suffix, unit, mass_g = _per_gram(run, cols) if not li_cu else ("_mAh", "mAh", float("nan"))
    area = run.attrs.get("cell_area_cm2", "")
    per_area = li_cu and area not in ("", None)
    if per_area:
        unit = "mAh cm$^{-2}$"
    index = run.dataset("cycle_index")[: run.n_readings]
    picks = _selected_cycles(run, cycle, done)
    fig = new_figure(10, 5)
    ax = fig.subplots()
    data: dict[str, Any] = {"cycles": picks}
    for colour, c in zip(CYCLE_COLOURS, picks):
        for half, (q, v) in _halves(run, _cycle_rows(run, c, index)).items():
            x = q / mass_g if suffix == "_mAh_g" else q / float(area) if per_area else q
            ax.plot(x, v, "-" if half in ("charge",) else "--", color=colour, lw=1.2,
                    label=f"cycle {c} {('strip' if half == 'charge' else 'plate') if li_cu else half}")
            data[f"{c}_{half}_capacity"], data[f"{c}_{half}_voltage_V"] = x, v
    ax.set_xlabel(f"capacity ({unit})")
    ax.set_ylabel("voltage (V)")
    ax.set_title(f"{run.title}\nvoltage profiles of cycles {', '.join(map(str, picks))}", fontsize=10)
    ax.grid(alpha=0.3)
    if picks:
        ax.legend(fontsize=8)
    return save(fig, run, out_dir, "profiles", data)


def dqdv_figure(run: ReportRun, out_dir: Path) -> ReportFigure:
    """dQ/dV of the discharge of the selected cycles (mAh V⁻¹, per gram when the mass is known).

    ``data``: ``cycles`` and per cycle ``<cycle>_voltage_V`` and ``<cycle>_dqdv``.
    """
    cycle, cols = _cycle_columns(run)
    suffix, unit, mass_g = _per_gram(run, cols)
    index = run.dataset("cycle_index")[: run.n_readings]
    picks = _selected_cycles(run, cycle, cols["complete"] > 0)
    fig = new_figure(10, 4.6)
    ax = fig.subplots()
    data: dict[str, Any] = {"cycles": []}
    for colour, c in zip(CYCLE_COLOURS, picks):
        halves = _halves(run, _cycle_rows(run, c, index))
        if "discharge" not in halves:
            continue
        q, v = halves["discharge"]
        try:
            d = dqdv(v, q)
        except ValueError:
            continue
        y = d.dqdv_mAh_V / mass_g if suffix == "_mAh_g" else d.dqdv_mAh_V
        ax.plot(d.voltage_V, y, color=colour, lw=1.2, label=f"cycle {c} discharge")
        data["cycles"].append(c)
        data[f"{c}_voltage_V"], data[f"{c}_dqdv"] = d.voltage_V, y
    ax.set_xlabel("voltage (V)")
    ax.set_ylabel(f"dQ/dV ({unit} V$^{{-1}}$)")
    ax.set_title(f"{run.title}\ndifferential capacity of the discharge (Savitzky–Golay, 5 mV grid)", fontsize=10)
    ax.grid(alpha=0.3)
    if data["cycles"]:
        ax.legend(fontsize=8)
    return save(fig, run, out_dir, "dqdv", data)


def li_cu_figure(run: ReportRun, out_dir: Path) -> ReportFigure:
    """Plated and stripped charge (mAh cm⁻²) and CE per cycle of Li | Cu plain cycling, the
    averaged range and its mean marked.

    ``data``: ``cycle``, ``plated``, ``stripped`` (mAh cm⁻², or mAh without an area),
    ``coulombic_efficiency_pct``, ``mean_pct``, ``range``.
    """
    cycle, cols = _cycle_columns(run)
    area = run.attrs.get("cell_area_cm2", "")
    scale, unit = (float(area), "mAh cm$^{-2}$") if area not in ("", None) else (1.0, "mAh")
    plated, stripped, ce = cols["plated_mAh"] / scale, cols["stripped_mAh"] / scale, cols["coulombic_efficiency_pct"]
    done = ce > 0
    mean = float(run.result("coulombic_efficiency_pct"))
    first = run.results.get("coulombic_efficiency_first_cycle", "")
    last = run.results.get("coulombic_efficiency_last_cycle", "")
    fig = new_figure(10, 6.4)
    ax_q, ax_ce = fig.subplots(2, 1, sharex=True)
    style = "o" if len(cycle) <= 80 else "."
    ax_q.plot(cycle, plated, style, color=PLATE, ms=3, label="plated on Cu")
    ax_q.plot(cycle, stripped, style, color=STRIP, ms=3, label="stripped to the cut-off")
    ax_ce.plot(cycle[done], ce[done], style + "-", color="black", ms=3, lw=0.6, label="CE per cycle")
    if first != "":
        ax_ce.axvspan(float(first) - 0.5, float(last) + 0.5, color="tab:green", alpha=0.12,
                      label=f"cycles {first}–{last}: mean {fmt(mean, 4)} %")
        ax_ce.axhline(mean, color="tab:green", lw=1, ls="--")
    short = run.results.get("short_cycle", "")
    if short != "":
        for ax in (ax_q, ax_ce):
            ax.axvline(float(short), color="tab:red", ls="--", lw=1.2, label=f"short in cycle {short}" if ax is ax_q else None)
    ax_q.set_ylabel(f"charge ({unit})")
    ax_ce.set_ylabel("CE (%)")
    ax_ce.set_xlabel("cycle")
    ax_q.set_title(f"{run.title}\nLi | Cu Coulombic efficiency ({run.results.get('coulombic_efficiency_method', '')})",
                   fontsize=10)
    for ax in (ax_q, ax_ce):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    data = {"cycle": cycle, "plated": plated, "stripped": stripped, "coulombic_efficiency_pct": ce[done],
            "mean_pct": mean, "range": (first, last)}
    return save(fig, run, out_dir, "capacity", data)


def full_cell_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Full cell: time series, capacity and CE vs cycle, voltage profiles, dQ/dV."""
    figures = [time_series(run, out_dir)]
    if "cycles" in run.results:
        figures += [capacity_figure(run, out_dir), profiles_figure(run, out_dir), dqdv_figure(run, out_dir)]
    return figures


def li_cu_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Li | Cu: time series; plain cycling also CE per cycle and voltage profiles."""
    figures = [time_series(run, out_dir)]
    if "cycles" in run.results and "plated_mAh" in run.result("cycles"):
        figures += [li_cu_figure(run, out_dir), profiles_figure(run, out_dir, li_cu=True)]
    return figures
