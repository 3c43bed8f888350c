"""Figures of a memristor set/reset run (``memristor_cycling``, seed 004 Fig. 8).

* ``<stem>_iv.png`` — the I–V of a few cycles (the first two, the middle one, the last),
  linear (A) and log |I| (A), the set (current surge in the negative excursion) and reset
  (current fall in the positive one) marked where the analysis found them.
* ``<stem>_resistance.png`` — R_HRS and R_LRS (Ω) at the read bias, and the on/off ratio
  R_HRS/R_LRS, vs cycle, log y; failed resets marked.

Per-cycle numbers come from ``results/cycles``
(:meth:`protocols.memristor_cycling.MemristorCycling.analyse_run`, one entry per executed
sweep in order); where in a cycle the set and reset excursions lie comes from the stored
protocol (:meth:`~protocols.memristor_cycling.MemristorCycling.cycle_points_V`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.lines import Line2D

from labctl.report._common import (ReportFigure, ReportRun, current_unit, fmt, log_floor, log_limits, new_figure,
                                   save)
from labctl.store.reader import RunFileError

#: Cycles whose I–V is drawn, as positions in the run: first, second, middle, last.
MAX_IV_CYCLES = 4


def _cycles(run: ReportRun) -> dict[str, np.ndarray]:
    keys = ("cycle", "hrs_resistance_ohm", "lrs_resistance_ohm", "on_off_ratio", "set_voltage_V",
            "reset_voltage_V", "reset_failed")
    out = {key: run.float_array("cycles", key) for key in keys}
    if len({len(v) for v in out.values()}) > 1:
        raise RunFileError(f"{run.path}: results/cycles has columns of unequal length")
    return out


def _layout(run: ReportRun):
    """The cycle layout of the stored protocol (which points are the set and reset excursions)."""
    from protocols import load_protocol_text
    from labctl.yamlfile import FileError

    try:
        protocol = load_protocol_text(str(run.attrs.get("protocol_text", "")), run.path.name + ":protocol_text")
    except FileError as exc:
        raise RunFileError(f"{run.path}: the stored protocol does not load: {exc.lines[0]}") from None
    if not hasattr(protocol, "cycle_points_V"):
        raise RunFileError(f"{run.path}: the stored protocol is not a memristor_cycling protocol")
    return protocol.cycle_points_V()[1]


def _point_at(v: np.ndarray, i: np.ndarray, segment: tuple[int, int], bias_V: float) -> tuple[float, float]:
    """(V, I) of the first reading in ``segment`` (inclusive indices) at ``bias_V``; NaNs if none."""
    a, b = segment
    if not math.isfinite(bias_V) or a >= len(v):
        return math.nan, math.nan
    hits = np.flatnonzero(np.isclose(v[a:b + 1], bias_V, rtol=0, atol=1e-9))
    return (float(v[a + hits[0]]), float(i[a + hits[0]])) if len(hits) else (math.nan, math.nan)


def shown_cycles(n: int) -> list[int]:
    """Positions (0-based) of the cycles whose I–V is drawn: first, second, middle, last."""
    return sorted({k for k in (0, 1, n // 2, n - 1) if 0 <= k < n})[:MAX_IV_CYCLES]


def iv_curves(run: ReportRun, out_dir: Path) -> ReportFigure:
    """I–V of a few cycles, linear and log |I|, set and reset marked.

    ``data``: ``curves`` — one dict per cycle drawn with ``cycle``, ``bias_V``, ``current_A``,
    ``set_V``, ``set_current_A``, ``reset_V``, ``reset_current_A`` (NaN where not found).
    """
    cycles = _cycles(run)
    sweeps = [s for s in run.steps if s["kind"] == "voltage_sweep"]
    if len(sweeps) != len(cycles["cycle"]):
        raise RunFileError(f"{run.path}: {len(sweeps)} sweeps recorded but {len(cycles['cycle'])} in results/cycles")
    layout = _layout(run)
    curves = []
    for k in shown_cycles(len(sweeps)):
        r = run.readings(run.step_rows(int(sweeps[k]["step_index"])), "voltage_V", "current_A")
        v, i = r["voltage_V"], r["current_A"]
        set_v, set_i = _point_at(v, i, layout.set_segment, float(cycles["set_voltage_V"][k]))
        reset_v, reset_i = _point_at(v, i, layout.reset_segment, float(cycles["reset_voltage_V"][k]))
        curves.append({"cycle": int(cycles["cycle"][k]), "bias_V": v, "current_A": i, "set_V": set_v,
                       "set_current_A": set_i, "reset_V": reset_v, "reset_current_A": reset_i,
                       "on_off_ratio": float(cycles["on_off_ratio"][k]),
                       "reset_failed": bool(cycles["reset_failed"][k])})
    scale, unit = current_unit(max((float(np.nanmax(np.abs(c["current_A"]))) for c in curves if len(c["current_A"])),
                                   default=1e-6))
    cmap = colormaps["viridis"]
    fig = new_figure(11, 4.6)
    ax_lin, ax_log = fig.subplots(1, 2)
    handles = []
    for n, c in enumerate(curves):
        colour = cmap(n / max(1, len(curves) - 1) * 0.85)
        label = f"cycle {c['cycle']}: on/off {fmt(c['on_off_ratio'])}" + (", no reset" if c["reset_failed"] else "")
        handles += ax_lin.plot(c["bias_V"], c["current_A"] / scale, color=colour, lw=1, label=label)
        ax_log.plot(c["bias_V"], log_floor(c["current_A"]), color=colour, lw=1)
        for ax, s in ((ax_lin, 1 / scale), (ax_log, None)):
            for what, marker, mcolour in (("set", "v", "tab:red"), ("reset", "^", "tab:cyan")):
                x, y = c[f"{what}_V"], c[f"{what}_current_A"]
                if math.isfinite(x):
                    ax.plot(x, y * s if s else abs(y), marker, color=mcolour, mec="black", ms=8, zorder=5)
    set_median = float(run.results.get("set_voltage_median_V", math.nan))
    reset_median = float(run.results.get("reset_voltage_median_V", math.nan))
    handles.append(Line2D([], [], ls="none", marker="v", color="tab:red", mec="black", ms=8,
                          label=f"set (median {fmt(set_median)} V)"))
    if any(math.isfinite(c["reset_V"]) for c in curves):
        handles.append(Line2D([], [], ls="none", marker="^", color="tab:cyan", mec="black", ms=8,
                              label=f"reset (median {fmt(reset_median)} V)"))
    ax_lin.set_ylabel(f"current ({unit})")
    ax_log.set_ylabel("|current| (A)")
    ax_log.set_yscale("log")
    read_V = float(run.results.get("read_bias_V", math.nan))
    for ax in (ax_lin, ax_log):
        ax.set_xlabel("bias (V vs Li/Li⁺)")
        ax.grid(alpha=0.3)
        if math.isfinite(read_V):
            ax.axvline(read_V, color="gray", ls=":", lw=1)
    ax_lin.set_title(f"I–V, linear (dotted: read bias {fmt(read_V)} V)", fontsize=10)
    ax_log.set_title("I–V, log |I|", fontsize=10)
    ax_log.legend(handles=handles, fontsize=8, loc="lower right")
    fig.suptitle(f"{run.title}\ncycles {', '.join(str(c['cycle']) for c in curves)} of {len(sweeps)} "
                 f"({run.results.get('electrode', '?')} electrode)", fontsize=11)
    return save(fig, run, out_dir, "iv", {"curves": curves})


def resistance(run: ReportRun, out_dir: Path) -> ReportFigure:
    """R_HRS, R_LRS and on/off ratio vs cycle (log y), failed resets marked.

    ``data``: ``cycle``, ``hrs_resistance_ohm``, ``lrs_resistance_ohm``, ``on_off_ratio``,
    ``reset_failed`` (bool), ``on_off_median``.
    """
    c = _cycles(run)
    cycle, failed, ratio = c["cycle"], c["reset_failed"].astype(bool), c["on_off_ratio"]
    style = "o-" if len(cycle) <= 60 else "-"
    fig = new_figure(10, 6)
    ax_r, ax_ratio = fig.subplots(2, 1, sharex=True)
    for key, colour, label in (("hrs_resistance_ohm", "tab:blue", "R$_{HRS}$ (before set)"),
                               ("lrs_resistance_ohm", "tab:orange", "R$_{LRS}$ (after set)")):
        values = c[key][np.isfinite(c[key])]
        median = f", median {fmt(float(np.median(values)))} Ω" if len(values) else ""
        ax_r.plot(cycle, c[key], style, color=colour, ms=3, lw=1, label=label + median)
    finite = ratio[np.isfinite(ratio)]
    span = f" ({fmt(float(finite.min()))} … {fmt(float(finite.max()))})" if len(finite) else ""
    ax_ratio.plot(cycle, ratio, style, color="black", ms=3, lw=1, label="on/off = R$_{HRS}$ / R$_{LRS}$" + span)
    median = float(run.results.get("on_off_median", math.nan))
    if math.isfinite(median):
        ax_ratio.axhline(median, color="tab:green", ls="--", lw=1, label=f"median {fmt(median)}")
    ax_ratio.axhline(1, color="gray", ls=":", lw=1, label="1 (no switching)")
    if np.any(failed):
        ax_ratio.plot(cycle[failed], ratio[failed], "x", color="tab:red", ms=7, mew=1.5,
                      label=f"no reset ({int(failed.sum())} cycles)")
    log_limits(ax_r, np.concatenate([c["hrs_resistance_ohm"], c["lrs_resistance_ohm"]]))
    log_limits(ax_ratio, ratio, bottom=0.5)
    for ax in (ax_r, ax_ratio):
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="center right")
    read_V = float(run.results.get("read_bias_V", math.nan))
    set_median = float(run.results.get("set_voltage_median_V", math.nan))
    reset_median = float(run.results.get("reset_voltage_median_V", math.nan))
    ax_r.set_ylabel(f"resistance at {fmt(read_V)} V (Ω)")
    ax_ratio.set_ylabel("on/off ratio")
    ax_ratio.set_xlabel("cycle")
    ax_r.set_title(f"{run.title}\n{len(cycle)} cycles; set {fmt(set_median)} V, "
                   + (f"reset {fmt(reset_median)} V (medians)" if math.isfinite(reset_median) else "no reset found")
                   + f"; status {run.attrs.get('status', '?')}", fontsize=10)
    data = {"cycle": cycle, "hrs_resistance_ohm": c["hrs_resistance_ohm"],
            "lrs_resistance_ohm": c["lrs_resistance_ohm"], "on_off_ratio": ratio, "reset_failed": failed,
            "on_off_median": median}
    return save(fig, run, out_dir, "resistance", data)


def memristor_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Both memristor figures."""
    return [iv_curves(run, out_dir), resistance(run, out_dir)]
