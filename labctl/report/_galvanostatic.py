"""Figures of galvanostatic runs: CCD staircases, symmetric cycling and imported cycler data.

* ``<stem>_timeseries.png`` — voltage (V) and current density (mA cm⁻²) vs test time, min/max
  decimated per pixel column (:mod:`labctl.report._decimate`), with the run's failures (short,
  soft short, polarisation, compliance …, from ``events``) as vertical lines and, for a CCD
  staircase, ±CCD as horizontal lines; below, every reading around the first failure, or of
  the first and last two cycles of a run too long to draw point by point.
* CCD staircase, ``<stem>_overpotential.png`` — per step the overpotential (|V| at the end of
  the half-cycle and its mean, mV) and ASR (Ω cm²) vs |current density|, from
  ``results/overpotentials`` (:func:`labctl.analysis.ccd.step_overpotentials`).
* Symmetric cycling, ``<stem>_overpotential.png`` — per cycle the plating and stripping
  overpotential (mV) and the ASR (Ω cm²) vs cycle, from ``results/per_cycle``
  (:func:`labctl.analysis.cycling.per_cycle`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from labctl.report._common import ReportFigure, ReportRun, duration_text, fmt, new_figure, save, time_unit
from labctl.report._decimate import COLUMNS, minmax_decimate

#: Event kinds drawn as vertical lines on the time series, and their colours.
MARKED_EVENTS: dict[str, str] = {
    "short": "tab:red", "soft_short": "tab:orange", "polarisation": "tab:purple", "compliance": "tab:brown",
    "safety": "tab:brown", "instrument_lost": "black", "error": "black",
}
PLATE, STRIP = "tab:red", "tab:blue"


def _detail_windows(run: ReportRun, failures: list[dict]) -> list[tuple[str, slice]]:
    """Stretches of raw readings for the detail row: the first failure with what led to it
    (from four times its time into its step, at least 60 s, before it — back into the step
    before — to the end of its step); else, when the overview is decimated, the first and the
    last two cycles (four galvanostatic steps each); else none."""
    if failures and int(failures[0]["step_index"]) >= 0:
        k, t_event = int(failures[0]["step_index"]), float(failures[0]["t_s"])
        before, rows = run.step_rows(max(k - 1, 0)), run.step_rows(k)
        t = run.readings(slice(before.start, rows.stop), "test_time_s")["test_time_s"]
        into_step = t_event - (float(t[rows.start - before.start]) if rows.stop > rows.start else t_event)
        first = before.start + int(np.searchsorted(t, t_event - max(4 * into_step, 60.0)))
        if run.n_readings <= 2 * COLUMNS and 2 * (rows.stop - first) > run.n_readings:
            return []  # the overview already shows every reading of it
        kind = failures[0]["kind"].replace("_", " ")
        j = next((float(s["current_density_mA_cm2"]) for s in run.steps if int(s["step_index"]) == k), math.nan)
        at = f" at {fmt(j)} mA cm⁻²" if math.isfinite(j) else ""
        return [(f"the {kind} in step {k}{at} and what led to it", slice(first, rows.stop))]
    if run.n_readings <= 2 * COLUMNS:
        return []
    current = [int(s["step_index"]) for s in run.steps if s.get("current_density_mA_cm2")]
    if len(current) < 8:
        return []
    head = slice(run.step_rows(current[0]).start, run.step_rows(current[3]).stop)
    tail = slice(run.step_rows(current[-4]).start, run.step_rows(current[-1]).stop)
    return [(f"first two cycles (steps {current[0]}–{current[3]})", head),
            (f"last two cycles (steps {current[-4]}–{current[-1]})", tail)]


def time_series(run: ReportRun, out_dir: Path, *, ccd_mA_cm2: float | None = None,
                ccd_is_lower_bound: bool = False) -> ReportFigure:
    """Voltage and current density vs time, decimated; failures and ±CCD marked (``CCD ≥``
    when no short ended the staircase); a detail row of raw readings around the first
    failure, or of the first and last cycles of a long run. An imported run without an
    electrode area (``cell_area_cm2`` empty) shows current (mA) instead of current density.

    ``data``: ``time_h`` or ``time_s`` (the unit follows the run's length), ``voltage_V`` and
    ``current_density_mA_cm2`` (or ``current_mA``) as drawn (≤ 2 points per pixel column
    each), ``n_readings``,
    ``events`` ((kind, test time in s) of each failure marked), ``ccd_mA_cm2``,
    ``details`` (per detail panel: ``title``, ``time_<unit>``, ``voltage_V``).
    """
    n = run.n_readings
    t_ds = run.dataset("test_time_s")
    span_s = float(t_ds[n - 1]) - float(t_ds[0])
    scale, unit = time_unit(span_s)
    t_v, v = minmax_decimate(t_ds, run.dataset("voltage_V"), n)
    has_area = run.attrs.get("cell_area_cm2", 1.0) != ""
    t_j, j = minmax_decimate(t_ds, run.dataset("current_density_mA_cm2" if has_area else "current_A"), n)
    if not has_area:
        j = j * 1e3
    failures = [e for e in run.events if e["kind"] in MARKED_EVENTS and e["channel"] == run.channel]
    windows = _detail_windows(run, failures)
    fig = new_figure(10, 8.4 if windows else 6)
    grid = fig.add_gridspec(3 if windows else 2, 2)
    ax_v = fig.add_subplot(grid[0, :])
    ax_j = fig.add_subplot(grid[1, :], sharex=ax_v)
    ax_v.plot(t_v / scale, v, lw=0.6, color="tab:blue")
    ax_j.plot(t_j / scale, j, lw=0.6, color="tab:green")
    ax_v.set_ylabel("voltage (V)")
    ax_v.tick_params(labelbottom=False)
    ax_j.set_ylabel("current density (mA cm⁻²)" if has_area else "current (mA); no electrode area")
    ax_j.set_xlabel(f"test time ({unit})")
    ax_v.set_title(f"{run.title}\n{n:,} readings over {duration_text(span_s)}; status {run.attrs.get('status', '?')}"
                   + (" (overview: min/max per pixel column)" if len(t_v) < n else ""), fontsize=10)
    details = []
    detail_axes = [fig.add_subplot(grid[2, :] if len(windows) == 1 else grid[2, k]) for k in range(len(windows))]
    for ax, (title, rows) in zip(detail_axes, windows):
        r = run.readings(rows, "test_time_s", "voltage_V")
        t_d, v_d = minmax_decimate(r["test_time_s"], r["voltage_V"])
        every = len(t_d) == len(r["test_time_s"])
        ax.plot(t_d / scale, v_d, lw=0.8, color="tab:blue", marker="." if len(t_d) < 400 else None, ms=3)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5 if len(windows) == 1 else 4, steps=[1, 2, 5, 10]))
        ax.ticklabel_format(axis="x", useOffset=False)
        ax.set_title(f"detail: {title}" + (" (every reading)" if every else ""), fontsize=9)
        ax.set_xlabel(f"test time ({unit})")
        ax.set_ylabel("voltage (V)")
        details.append({"title": title, f"time_{unit}": t_d / scale, "voltage_V": v_d})
    marked: list[tuple[str, float]] = []
    for e in failures:
        t = float(e["t_s"]) / scale
        label = None if any(k == e["kind"] for k, _ in marked) else f"{e['kind'].replace('_', ' ')} at {t:.4g} {unit}"
        for ax in (ax_v, ax_j, *detail_axes):
            ax.axvline(t, color=MARKED_EVENTS[e["kind"]], lw=1.2, ls="--", label=label if ax is ax_v else None)
        marked.append((e["kind"], float(e["t_s"])))
    if ccd_mA_cm2 is not None and np.isfinite(ccd_mA_cm2) and ccd_mA_cm2 > 0:
        for sign in (1, -1):
            ax_j.axhline(sign * ccd_mA_cm2, color="tab:red", lw=1, ls=":",
                         label=f"±CCD {'≥' if ccd_is_lower_bound else '='} {fmt(ccd_mA_cm2)} mA cm⁻²"
                         if sign > 0 else None)
        ax_j.legend(loc="upper left", fontsize=9)
    if marked:
        ax_v.legend(loc="upper left", fontsize=9)
    for ax in (ax_v, ax_j, *detail_axes):
        ax.grid(alpha=0.3)
    data = {f"time_{unit}": t_v / scale, "voltage_V": v, "current_density_mA_cm2" if has_area else "current_mA": j,
            "n_readings": n,
            "events": marked, "ccd_mA_cm2": ccd_mA_cm2, "details": details}
    return save(fig, run, out_dir, "timeseries", data)


def _from_zero(ax: Any, *values: np.ndarray) -> None:
    """Y from 0 to 1.25 × the largest value: magnitudes whose noise must not look like growth."""
    top = max((float(np.nanmax(v)) for v in values if np.any(np.isfinite(v))), default=math.nan)
    if math.isfinite(top) and top > 0:
        ax.set_ylim(0, top * 1.25)


def ccd_overpotentials(run: ReportRun, out_dir: Path) -> ReportFigure:
    """Per-step overpotential and ASR vs |current density| of a CCD staircase, CCD marked.

    ``data``: ``current_density_mA_cm2`` (signed: + plating, − stripping),
    ``overpotential_end_mV``, ``overpotential_mean_mV``, ``cell_asr_ohm_cm2``, ``ccd_mA_cm2``,
    ``short_step_index`` (−1 without a short). Run files written before the rename hold
    ``asr_ohm_cm2`` (then the mean |V| / |j|), read in its place.
    """
    j = run.float_array("overpotentials", "current_density_mA_cm2")
    end_mV = run.float_array("overpotentials", "overpotential_end_mV")
    mean_mV = run.float_array("overpotentials", "overpotential_mean_mV")
    asr = run.float_array("overpotentials", _asr_key(run.result("overpotentials")))
    step = run.float_array("overpotentials", "step_index")
    ccd = float(run.result("ccd_mA_cm2"))
    raw_step = run.results.get("short_step_index", "")  # "" when there was no short
    short_step = int(raw_step) if run.results.get("short_detected") and raw_step != "" else -1
    fig = new_figure(10, 4.2)
    ax_eta, ax_asr = fig.subplots(1, 2)
    shorted = step == short_step
    for mask_sign, colour, marker, what in ((j > 0, PLATE, "o", "plating"), (j < 0, STRIP, "s", "stripping")):
        ok = mask_sign & ~shorted
        filled = colour if what == "plating" else "none"
        ax_eta.plot(np.abs(j[ok]), end_mV[ok], marker, color=colour, mfc=filled, ms=6 if what == "plating" else 8,
                    ls="none", label=f"{what}, end of half-cycle")
        ax_eta.plot(np.abs(j[ok]), mean_mV[ok], "-", color=colour, lw=1, alpha=0.6, label=f"{what}, mean")
        ax_asr.plot(np.abs(j[ok]), asr[ok], marker, color=colour, mfc=filled, ms=6 if what == "plating" else 8,
                    ls="-", lw=1, label=what)
    if np.any(shorted):
        ax_eta.plot(np.abs(j[shorted]), end_mV[shorted], "x", color="black", ms=8, mew=2,
                    label=f"shorted step ({fmt(abs(float(j[shorted][0])))} mA cm⁻²)")
    for ax in (ax_eta, ax_asr):
        if ccd > 0:
            ax.axvline(ccd, color="tab:red", ls=":", lw=1.2, label=f"CCD = {fmt(ccd)} mA cm⁻²")
        ax.set_xlabel("|current density| (mA cm⁻²)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left" if ax is ax_eta else "lower right")
    _from_zero(ax_eta, end_mV, mean_mV)
    _from_zero(ax_asr, asr)
    ax_eta.set_ylabel("overpotential |V| (mV)")
    ax_asr.set_ylabel("cell ASR (Ω cm²)")
    ax_eta.set_title("overpotential per half-cycle", fontsize=10)
    ax_asr.set_title("cell ASR (|V| at the end of the half-cycle / |j|)", fontsize=10)
    fig.suptitle(run.title, fontsize=11)
    data = {"current_density_mA_cm2": j, "overpotential_end_mV": end_mV, "overpotential_mean_mV": mean_mV,
            "cell_asr_ohm_cm2": asr, "ccd_mA_cm2": ccd, "short_step_index": short_step}
    return save(fig, run, out_dir, "overpotential", data)


def _asr_key(table: Any) -> str:
    """``cell_asr_ohm_cm2``, or ``asr_ohm_cm2`` in run files written before the rename."""
    return "asr_ohm_cm2" if "cell_asr_ohm_cm2" not in table and "asr_ohm_cm2" in table else "cell_asr_ohm_cm2"


def cycling_overpotentials(run: ReportRun, out_dir: Path) -> ReportFigure:
    """Per-cycle plating/stripping overpotential and ASR vs cycle of symmetric cycling.

    ``data``: ``cycle``, ``plating_overpotential_end_mV``, ``stripping_overpotential_end_mV``,
    ``plating_overpotential_mean_mV``, ``stripping_overpotential_mean_mV``, ``cell_asr_ohm_cm2``
    (empty when the run file has none; ``asr_ohm_cm2`` of older run files in its place).
    """
    pc = run.result("per_cycle")
    cycle = run.float_array("per_cycle", "cycle")
    series = {key: run.float_array("per_cycle", key) for key in (
        "plating_overpotential_end_mV", "stripping_overpotential_end_mV",
        "plating_overpotential_mean_mV", "stripping_overpotential_mean_mV")}
    key = _asr_key(pc)
    asr = run.float_array("per_cycle", key) if key in pc else np.array([])
    has_asr = len(asr) == len(cycle) and len(cycle) > 0
    fig = new_figure(10, 6 if has_asr else 3.8)
    axes = fig.subplots(2 if has_asr else 1, 1, sharex=True, squeeze=False)[:, 0]
    style = "o-" if len(cycle) <= 60 else "-"
    for what, colour in (("plating", PLATE), ("stripping", STRIP)):
        end = series[f"{what}_overpotential_end_mV"]
        last = f" (cycle {int(cycle[-1])}: {fmt(float(end[-1]))} mV)" if len(end) else ""
        axes[0].plot(cycle, end, style, color=colour, ms=3, lw=1, label=f"{what}, end of half-cycle{last}")
        axes[0].plot(cycle, series[f"{what}_overpotential_mean_mV"], "--", color=colour, lw=0.8, alpha=0.7,
                     label=f"{what}, mean")
    axes[0].set_ylabel("overpotential |V| (mV)")
    ended = run.results.get("ended_by", run.attrs.get("status", "?"))
    axes[0].set_title(f"{run.title}\n{len(cycle)} cycles completed"
                      + (f" of {run.results['cycles_planned']}" if "cycles_planned" in run.results else "")
                      + f"; ended by: {ended}", fontsize=10)
    if has_asr:
        axes[1].plot(cycle, asr, style, color="black", ms=3, lw=1,
                     label=f"cell ASR (cycle {int(cycle[0])}: {fmt(float(asr[0]))}, cycle {int(cycle[-1])}: "
                           f"{fmt(float(asr[-1]))} Ω cm²)")
        axes[1].set_ylabel("cell ASR (Ω cm²)")
    axes[-1].set_xlabel("cycle")
    _from_zero(axes[0], *series.values())
    if has_asr:
        _from_zero(axes[1], asr)
    for ax in axes:
        ax.grid(alpha=0.3)
        if len(cycle):
            ax.legend(fontsize=8, loc="lower right")
        else:
            ax.text(0.5, 0.5, "no completed cycle", transform=ax.transAxes, ha="center")
    data = {"cycle": cycle, **series, "cell_asr_ohm_cm2": asr}
    return save(fig, run, out_dir, "overpotential", data)


def ccd_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """CCD staircase: time series with the short and ±CCD, overpotential and ASR per step."""
    return [time_series(run, out_dir, ccd_mA_cm2=float(run.result("ccd_mA_cm2")),
                        ccd_is_lower_bound=bool(run.results.get("ccd_is_lower_bound", False))),
            ccd_overpotentials(run, out_dir)]


def cycling_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Symmetric cycling: time series with failures, per-cycle overpotential and ASR."""
    return [time_series(run, out_dir), cycling_overpotentials(run, out_dir)]


def imported_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Imported cycler data (no analysis stored): the time series with replayed short detections."""
    return [time_series(run, out_dir)]
