"""Figures of the lithium-inventory runs: plating until a short, CTTA, soft-short amperometry.

* continuous plating, ``<stem>_plating.png`` — voltage vs the areal capacity plated (mAh cm⁻²,
  Li thickness on the top axis at 4.85 µm per mAh cm⁻²), the short and the capacity to short
  marked; with the time series of :mod:`labctl.report._galvanostatic`;
* CTTA, ``<stem>_qsigma.png`` — q_Σ (µAh cm⁻²) vs t (h) and vs √t (h^½) with the fitted √t
  line and R², from ``results/ctta``; ``<stem>_timeseries.png``;
* soft-short amperometry, ``<stem>_current.png`` — current vs time, linear (nA) and log |I|
  (A), the detected spikes marked, the onset, the hard short and the burn-out as lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labctl.analysis.charge import C_PER_MAH
from labctl.analysis.lithium_inventory import LI_UM_PER_MAH_CM2
from labctl.report._common import ReportFigure, ReportRun, current_unit, fmt, log_floor, new_figure, save
from labctl.report._decimate import minmax_decimate
from labctl.report._galvanostatic import time_series


def plating_figure(run: ReportRun, out_dir: Path) -> ReportFigure:
    """Voltage vs areal capacity plated, the short marked.

    ``data``: ``capacity_mAh_cm2`` and ``voltage_V`` (decimated), ``capacity_to_short_mAh_cm2``,
    ``lower_bound`` (no short).
    """
    n = run.n_readings
    area = float(run.attrs.get("cell_area_cm2") or 1.0)
    r = run.readings(slice(0, n), "voltage_V", "current_A", "charge_C")
    plated = np.abs(r["charge_C"] - r["charge_C"][0]) / C_PER_MAH / area
    flowing = r["current_A"] != 0  # rests between the plating chunks sit at 0 V: not drawn
    q_d, v_d = minmax_decimate(plated[flowing], r["voltage_V"][flowing])
    q_short = float(run.result("capacity_to_short_mAh_cm2"))
    lower = bool(run.results.get("capacity_to_short_is_lower_bound", False))
    fig = new_figure(10, 4.6)
    ax = fig.subplots()
    ax.plot(q_d, v_d * 1e3, lw=0.7, color="tab:blue")
    what = "no short: at least" if lower else run.results.get("ended_by", "short").replace("_", " ") + " at"
    ax.axvline(q_short, color="tab:red", ls="--", lw=1.2,
               label=f"{what} {fmt(q_short)} mAh cm$^{{-2}}$ ({fmt(q_short * LI_UM_PER_MAH_CM2)} µm Li)")
    ax.set_xlabel("areal capacity plated (mAh cm$^{-2}$)")
    ax.set_ylabel("voltage (mV)")
    top = ax.secondary_xaxis("top", functions=(lambda q: q * LI_UM_PER_MAH_CM2, lambda um: um / LI_UM_PER_MAH_CM2))
    top.set_xlabel("equivalent Li thickness (µm, 4.85 µm per mAh cm$^{-2}$)")
    ax.set_title(f"{run.title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="upper right")
    return save(fig, run, out_dir, "plating", {"capacity_mAh_cm2": q_d, "voltage_V": v_d,
                                                "capacity_to_short_mAh_cm2": q_short, "lower_bound": lower})


def qsigma_figure(run: ReportRun, out_dir: Path) -> ReportFigure:
    """CTTA: q_Σ vs t and vs √t with the √t line.

    ``data``: ``elapsed_h``, ``sqrt_time_h05``, ``q_sigma_uAh_cm2``, ``slope``, ``intercept``,
    ``r_squared``.
    """
    t = run.float_array("ctta", "elapsed_h")
    root = run.float_array("ctta", "sqrt_time_h05")
    q = run.float_array("ctta", "q_sigma_uAh_cm2")
    slope = float(run.result("sqrt_time_slope_uAh_cm2_h05"))
    intercept = float(run.result("sqrt_time_intercept_uAh_cm2"))
    r2 = float(run.result("sqrt_time_r_squared"))
    fig = new_figure(10, 4.4)
    ax_t, ax_r = fig.subplots(1, 2)
    ax_t.plot(t, q, "o-", color="tab:purple", ms=4, lw=1)
    ax_t.set_xlabel("t since the first titration (h)")
    ax_t.set_title("side-reaction charge vs t", fontsize=10)
    ax_r.plot(root, q, "o", color="tab:purple", ms=4, label="q$_Σ$ at each titration's consumption")
    x = np.linspace(0.0, float(root.max()) if len(root) else 1.0, 50)
    ax_r.plot(x, intercept + slope * x, "--", color="black", lw=1,
              label=f"{fmt(slope)} µAh cm$^{{-2}}$ h$^{{-1/2}}$ × √t (R² = {r2:.4f})")
    ax_r.set_xlabel("√t (h$^{1/2}$)")
    ax_r.set_title("… vs √t: parabolic SEI growth", fontsize=10)
    for ax in (ax_t, ax_r):
        ax.set_ylabel("q$_Σ$ (µAh cm$^{-2}$)")
        ax.grid(alpha=0.3)
    ax_r.legend(fontsize=8, loc="upper left")
    sei = float(run.result("sei_charge_uAh_cm2"))
    fig.suptitle(f"{run.title}\n{run.result('titration_count')} titrations; q$_Σ$ = {fmt(sei)} µAh cm$^{{-2}}$ ≈ "
                 f"{fmt(float(run.result('sei_thickness_nm')))} nm SEI (9 nm per µAh cm$^{{-2}}$)", fontsize=10)
    return save(fig, run, out_dir, "qsigma", {"elapsed_h": t, "sqrt_time_h05": root, "q_sigma_uAh_cm2": q,
                                               "slope": slope, "intercept": intercept, "r_squared": r2})


def current_figure(run: ReportRun, out_dir: Path) -> ReportFigure:
    """Soft-short amperometry: I vs t, linear and log |I|, spikes and events marked.

    ``data``: ``time_s``, ``current_A`` (decimated), ``spike_time_s``, ``spike_amplitude_A``,
    ``soft_short_onset_s``, ``hard_short_s``, ``burnout_s``.
    """
    n = run.n_readings
    t_all = run.dataset("test_time_s")[:n]
    i_all = run.dataset("current_A")[:n]
    t, i = minmax_decimate(t_all, i_all, n)
    spikes_t = run.float_array("spikes", "time_s")
    spikes_a = run.float_array("spikes", "amplitude_A")
    hard = run.results.get("hard_short_s", "")
    before = i_all[t_all < float(hard)] if hard != "" else i_all
    linear_top = float(np.nanmax(np.abs(before))) if len(before) else 1e-9
    scale, unit = current_unit(linear_top)
    fig = new_figure(10, 6.6)
    ax_lin, ax_log = fig.subplots(2, 1, sharex=True)
    ax_lin.plot(t, i / scale, lw=0.6, color="tab:blue")
    ax_log.plot(t, log_floor(i, 1e-13), lw=0.6, color="tab:blue")
    ax_log.set_yscale("log")
    if len(spikes_t):
        at = i_all[np.clip(np.searchsorted(t_all, spikes_t), 0, n - 1)]  # the reading at each spike's peak
        ax_lin.plot(spikes_t, at / scale, "v", color="tab:red", ms=4, label=f"{len(spikes_t)} spikes")
        ax_log.plot(spikes_t, log_floor(at, 1e-13), "v", color="tab:red", ms=4)
    events = {"soft_short_onset_s": ("soft-short onset", "tab:orange"), "hard_short_s": ("hard short", "tab:red"),
              "burnout_s": ("burn-out", "black")}
    marked = {}
    for key, (label, colour) in events.items():
        value = run.results.get(key, "")
        marked[key] = value
        if value != "":
            for ax in (ax_lin, ax_log):
                ax.axvline(float(value), color=colour, ls="--", lw=1.1,
                           label=f"{label} at {float(value):.1f} s" if ax is ax_lin else None)
    ax_lin.set_ylim(-0.05 * linear_top / scale, 1.15 * linear_top / scale)
    ax_lin.set_ylabel(f"current ({unit}; to the hard short)")
    ax_log.set_ylabel("|current| (A)")
    ax_log.set_xlabel("time (s)")
    rate = run.results.get("spike_rate_per_min", float("nan"))
    rho = run.results.get("spike_amplitude_growth_spearman", float("nan"))
    ax_lin.set_title(f"{run.title}\nbias {fmt(float(run.results.get('bias_V', float('nan'))))} V; noise floor "
                     f"{fmt(float(run.results.get('noise_floor_A', float('nan'))) * 1e9)} nA; {fmt(float(rate))} spikes "
                     f"per min, amplitude growth ρ = {fmt(float(rho), 2)}", fontsize=10)
    for ax in (ax_lin, ax_log):
        ax.grid(alpha=0.3)
    ax_lin.legend(fontsize=8, loc="upper left")
    return save(fig, run, out_dir, "current", {"time_s": t, "current_A": i, "spike_time_s": spikes_t,
                                                "spike_amplitude_A": spikes_a, **marked})


def continuous_plating_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Plating to a short: time series with the short, voltage vs capacity plated."""
    return [time_series(run, out_dir), plating_figure(run, out_dir)]


def ctta_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """CTTA: time series, q_Σ vs t and √t."""
    figures = [time_series(run, out_dir)]
    if "ctta" in run.results:
        figures.append(qsigma_figure(run, out_dir))
    return figures


def soft_short_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """Soft-short amperometry: current vs time with spikes and events."""
    return [current_figure(run, out_dir)]
