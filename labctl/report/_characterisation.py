"""Figures of the characterisation runs: impedance, Arrhenius, I–t and LSV.

Titles name the experiment and the cell (:attr:`~labctl.report._common.ReportRun.title`) and
the area the impedances are multiplied by.

* ``<stem>_nyquist.png`` — −Im Z vs Re Z (Ω cm², equal axes) of every spectrum, coloured in
  measuring order (by temperature for an Arrhenius run), the first spectrum's fitted R_b,
  R_b + R_gb and R_b + R_gb + R_CT marked on the real axis;
* ``<stem>_bode.png`` — |Z| (Ω cm²) and the phase (°) vs frequency (Hz), log f;
* ``<stem>_arrhenius.png`` (``arrhenius``) — ln σ (or ln σT) vs 1000/T with the line of the
  stored E_a;
* ``<stem>_current.png`` (``dc_polarisation``, ``transference_number``) — |I| (A, log) vs time in
  the potentiostatic hold, the steady state marked;
* ``<stem>_lsv.png`` (``lsv``) — current density (µA cm⁻²) vs V, linear and log, onset and
  threshold marked;
* ``<stem>_resistances.png`` (``sequence`` with EIS parts) — R_b, R_gb, R_CT (Ω cm²) vs the
  charge plated before each spectrum (mAh cm⁻²).

Everything comes from the run file: readings, ``spectra/<channel>`` and ``results`` (nothing is
re-fitted; the Arrhenius line is the stored E_a through the points' mean).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps

from labctl.report._common import ReportFigure, ReportRun, fmt, log_floor, new_figure, save, time_unit
from labctl.store.reader import RunFileError
from labctl.store.spectra import read_spectra, split_spectra

#: Boltzmann constant (eV K⁻¹).
_KB_EV_K = 8.617333262e-5


def _spectra(run: ReportRun) -> list[dict[str, np.ndarray]]:
    try:
        return split_spectra(read_spectra(run.path, run.channel))
    except KeyError:
        raise RunFileError(f"{run.path}: no spectra/{run.channel} in the run file; nothing to draw") from None


def _colours(n: int) -> list[Any]:
    cmap = colormaps["viridis"]
    return [cmap(k / max(n - 1, 1) * 0.9) for k in range(n)]


def nyquist(run: ReportRun, out_dir: Path, labels: list[str] | None = None) -> ReportFigure:
    """Every spectrum's Nyquist plot in Ω cm² (``data``: ``z_real_ohm_cm2`` and
    ``z_imag_neg_ohm_cm2`` per spectrum, ``marks_ohm_cm2`` the fitted resistances marked)."""
    spectra = _spectra(run)
    area = float(run.attrs.get("cell_area_cm2") or 1.0)
    fig = new_figure(8.0, 6.5)
    ax = fig.add_subplot()
    labels = labels or [f"spectrum {int(s['spectrum_index'][0])}" for s in spectra]
    data: dict[str, Any] = {"z_real_ohm_cm2": [], "z_imag_neg_ohm_cm2": []}
    for spec, colour, label in zip(spectra, _colours(len(spectra)), labels):
        x, y = spec["z_real_ohm"] * area, spec["z_imag_neg_ohm"] * area
        ax.plot(x, y, "o-", ms=3, lw=0.8, color=colour, label=label if len(spectra) <= 14 else None)
        data["z_real_ohm_cm2"].append(x)
        data["z_imag_neg_ohm_cm2"].append(y)
    marks = []
    results = run.results
    total = 0.0
    for key, name in (("bulk_resistance_ohm_cm2", "R$_b$"), ("grain_boundary_resistance_ohm_cm2", "+R$_{gb}$"),
                      ("charge_transfer_resistance_ohm_cm2", "+R$_{CT}$")):
        if isinstance(results.get(key), (int, float)) and math.isfinite(results[key]):
            total += float(results[key])
            marks.append(total)
            ax.axvline(total, color="0.5", lw=0.8, ls="--")
            ax.annotate(f"{name} {fmt(total)}", (total, 1), xycoords=("data", "axes fraction"), xytext=(3, -4),
                        textcoords="offset points", fontsize=8, color="0.3", rotation=90, va="top")
    data["marks_ohm_cm2"] = marks
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("Re Z (Ω cm²)")
    ax.set_ylabel("−Im Z (Ω cm²)")
    ax.set_title(f"{run.title}\nNyquist plot, Z × {fmt(area)} cm²", fontsize=10)
    ax.grid(alpha=0.3)
    if len(spectra) <= 14:
        ax.legend(fontsize=8)
    return save(fig, run, out_dir, "nyquist", data)


def bode(run: ReportRun, out_dir: Path, labels: list[str] | None = None) -> ReportFigure:
    """|Z| (Ω cm²) and phase (°) vs frequency of every spectrum (``data``: per spectrum
    ``frequency_Hz``, ``z_abs_ohm_cm2``, ``phase_deg``)."""
    spectra = _spectra(run)
    area = float(run.attrs.get("cell_area_cm2") or 1.0)
    fig = new_figure(9.0, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True)
    labels = labels or [f"spectrum {int(s['spectrum_index'][0])}" for s in spectra]
    data: dict[str, Any] = {"frequency_Hz": [], "z_abs_ohm_cm2": [], "phase_deg": []}
    for spec, colour, label in zip(spectra, _colours(len(spectra)), labels):
        f, modulus, phase = spec["frequency_Hz"], spec["z_abs_ohm"] * area, spec["phase_deg"]
        top.loglog(f, modulus, "o-", ms=3, lw=0.8, color=colour, label=label if len(spectra) <= 14 else None)
        bottom.semilogx(f, phase, "o-", ms=3, lw=0.8, color=colour)
        data["frequency_Hz"].append(f)
        data["z_abs_ohm_cm2"].append(modulus)
        data["phase_deg"].append(phase)
    top.set_ylabel("|Z| (Ω cm²)")
    bottom.set_ylabel("phase (°)")
    bottom.set_xlabel("frequency (Hz)")
    top.set_title(f"{run.title}\nBode plot, |Z| × {fmt(area)} cm²", fontsize=10)
    for ax in (top, bottom):
        ax.grid(alpha=0.3, which="both")
    if len(spectra) <= 14:
        top.legend(fontsize=8)
    return save(fig, run, out_dir, "bode", data)


def arrhenius_plot(run: ReportRun, out_dir: Path) -> ReportFigure:
    """ln σ (or ln σT) vs 1000/T with the stored E_a's line (``data``: ``inverse_T_1000_K``,
    ``ln_y``, ``activation_energy_eV``)."""
    t_c = run.float_array("temperature_C")
    sigma = run.float_array("ionic_conductivity_S_cm_vs_T")
    form = str(run.results.get("arrhenius_form", "sigma"))
    t_k = t_c + 273.15
    y = np.log(sigma * t_k) if form == "sigma_T" else np.log(sigma)
    fig = new_figure(8.0, 6.0)
    ax = fig.add_subplot()
    x = 1000.0 / t_k
    ax.plot(x, y, "o", color="tab:blue", label="measured")
    e_a = run.results.get("activation_energy_eV")
    if isinstance(e_a, (int, float)) and math.isfinite(e_a):
        slope = -e_a / _KB_EV_K / 1000.0
        intercept = float(np.mean(y - slope * x))
        xs = np.linspace(x.min(), x.max(), 50)
        ax.plot(xs, intercept + slope * xs, "-", color="tab:red",
                label=f"E$_a$ = {fmt(e_a)} eV")
    for xi, yi, ti in zip(x, y, t_c):
        ax.annotate(f"{ti:g} °C", (xi, yi), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xlabel("1000 / T (K⁻¹)")
    ax.set_ylabel("ln(σT / S cm⁻¹ K)" if form == "sigma_T" else "ln(σ / S cm⁻¹)")
    ax.set_title(f"{run.title}\nArrhenius plot", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    return save(fig, run, out_dir, "arrhenius", {"inverse_T_1000_K": x, "ln_y": y, "activation_energy_eV": e_a})


def current_plot(run: ReportRun, out_dir: Path) -> ReportFigure:
    """|I| vs time of the potentiostatic hold (the run's constant-voltage step), log |I|; the
    steady state marked (``data``: ``time_<unit>``, ``current_A``, ``steady_state_current_A``)."""
    hold = next((s for s in run.steps if s["kind"] == "constant_voltage"), None)
    if hold is None:
        raise RunFileError(f"{run.path}: no constant-voltage step in the run; no I–t to draw")
    rows = run.step_rows(int(hold["step_index"]))
    cols = run.readings(rows, "test_time_s", "current_A")
    t = cols["test_time_s"] - cols["test_time_s"][0] if len(cols["test_time_s"]) else cols["test_time_s"]
    scale, unit = time_unit(float(t[-1]) if len(t) else 0.0)
    fig = new_figure(9.0, 5.5)
    ax = fig.add_subplot()
    ax.semilogy(t / scale, log_floor(cols["current_A"]), "-", color="tab:blue", lw=1.0, label="|I|")
    results = run.results
    i_ss = results.get("steady_state_current_A", results.get("transference_steady_current_A"))
    if isinstance(i_ss, (int, float)) and math.isfinite(i_ss):
        ax.axhline(abs(i_ss), color="tab:red", ls="--", lw=0.8, label=f"I$_{{ss}}$ = {fmt(abs(i_ss))} A")
    t_ss = results.get("steady_state_time_s")
    if isinstance(t_ss, (int, float)) and math.isfinite(t_ss):
        ax.axvline(t_ss / scale, color="0.5", ls=":", lw=0.8, label="steady")
    ax.set_xlabel(f"time in the hold ({unit})")
    ax.set_ylabel("|I| (A)")
    ax.set_title(f"{run.title}\nI–t at {fmt(float(hold['voltage_end_V']) * 1e3)} mV", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save(fig, run, out_dir, "current", {f"time_{unit}": t / scale, "current_A": cols["current_A"],
                                               "steady_state_current_A": i_ss})


def lsv_plot(run: ReportRun, out_dir: Path) -> ReportFigure:
    """Current density vs V of the sweep, linear and log |j|, onset marked (``data``:
    ``voltage_V``, ``current_density_uA_cm2``, ``oxidation_onset_V``)."""
    sweep = next((s for s in run.steps if s["kind"] == "linear_sweep"), None)
    if sweep is None:
        raise RunFileError(f"{run.path}: no linear_sweep step in the run; no LSV to draw")
    cols = run.readings(run.step_rows(int(sweep["step_index"])), "voltage_V", "current_density_mA_cm2")
    v, j = cols["voltage_V"], cols["current_density_mA_cm2"] * 1e3
    fig = new_figure(9.0, 6.5)
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.plot(v, j, "-", color="tab:blue", lw=1.0)
    bottom.semilogy(v, log_floor(j, 1e-6), "-", color="tab:blue", lw=1.0)
    onset = run.results.get("oxidation_onset_V")
    threshold = run.results.get("oxidation_onset_threshold_uA_cm2")
    if isinstance(onset, (int, float)) and math.isfinite(onset):
        for ax in (top, bottom):
            ax.axvline(onset, color="tab:red", ls="--", lw=0.8)
        top.annotate(f"onset {fmt(onset, 4)} V", (onset, 0), xytext=(-4, 10), textcoords="offset points",
                     ha="right", color="tab:red", fontsize=9)
    if isinstance(threshold, (int, float)) and math.isfinite(threshold):
        bottom.axhline(threshold, color="0.5", ls=":", lw=0.8, label=f"{fmt(threshold)} µA cm⁻²")
        bottom.legend(fontsize=8)
    top.set_ylabel("j (µA cm⁻²)")
    bottom.set_ylabel("|j| (µA cm⁻²)")
    bottom.set_xlabel("E$_{we}$ (V)")
    found = (f"oxidation onset {fmt(onset, 4)} V at {fmt(threshold)} µA cm⁻²"
             if isinstance(onset, (int, float)) and math.isfinite(onset) and isinstance(threshold, (int, float))
             else "no oxidation onset found")
    top.set_title(f"{run.title}\n{found}", fontsize=10)
    for ax in (top, bottom):
        ax.grid(alpha=0.3, which="both")
    return save(fig, run, out_dir, "lsv", {"voltage_V": v, "current_density_uA_cm2": j, "oxidation_onset_V": onset})


def resistances_plot(run: ReportRun, out_dir: Path) -> ReportFigure | None:
    """R_b, R_gb, R_CT vs the charge passed before each spectrum, per EIS part of a sequence
    (``data``: per part its ``charge_passed_mAh_cm2`` and resistances); None without EIS parts."""
    parts = run.results.get("parts", {})
    eis = {label: values for label, values in parts.items() if isinstance(values, dict)
           and "bulk_resistance_ohm_cm2" in values}
    if not eis:
        return None
    fig = new_figure(9.0, 5.5)
    ax = fig.add_subplot()
    data: dict[str, Any] = {}
    markers = {"bulk_resistance_ohm_cm2": ("o", "R$_b$", "tab:blue"),
               "grain_boundary_resistance_ohm_cm2": ("s", "R$_{gb}$", "tab:orange"),
               "charge_transfer_resistance_ohm_cm2": ("^", "R$_{CT}$", "tab:green")}
    for label, values in eis.items():
        q = np.asarray(values["charge_passed_mAh_cm2"], float)
        data[label] = {"charge_passed_mAh_cm2": q}
        for key, (marker, name, colour) in markers.items():
            r = np.atleast_1d(np.asarray(values.get(key, []), float))
            if len(r) == len(q) and np.any(np.isfinite(r)):
                ax.plot(q, r, marker + "-", color=colour, ms=5, lw=0.8, label=f"{name} ({label})")
                data[label][key] = r
    ax.set_xlabel("Li plated before the spectrum (mAh cm⁻²)")
    ax.set_ylabel("resistance (Ω cm²)")
    ax.set_title(f"{run.title}\nfitted resistances", fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, run, out_dir, "resistances", data)


def _temperature_labels(run: ReportRun) -> list[str] | None:
    temps = run.results.get("temperature_C")
    if temps is None:
        return None
    return [f"{t:g} °C" for t in np.atleast_1d(np.asarray(temps, float))]


def eis_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    return [nyquist(run, out_dir), bode(run, out_dir)]


def arrhenius_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    labels = _temperature_labels(run)
    return [arrhenius_plot(run, out_dir), nyquist(run, out_dir, labels), bode(run, out_dir, labels)]


def dc_polarisation_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    return [current_plot(run, out_dir)]


def transference_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    return [current_plot(run, out_dir), nyquist(run, out_dir, ["before", "after"][: len(_spectra(run))])]


def lsv_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    return [lsv_plot(run, out_dir)]


def sequence_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    from labctl.report._galvanostatic import time_series

    figures = [time_series(run, out_dir)]
    kinds = {s["kind"] for s in run.steps}
    if "impedance" in kinds:
        figures += [nyquist(run, out_dir), bode(run, out_dir)]
        resistances = resistances_plot(run, out_dir)
        if resistances is not None:
            figures.append(resistances)
    if "constant_voltage" in kinds:
        figures.append(current_plot(run, out_dir))
    if "linear_sweep" in kinds:
        figures.append(lsv_plot(run, out_dir))
    return figures


__all__ = ["arrhenius_report", "dc_polarisation_report", "eis_report", "lsv_report", "sequence_report",
           "transference_report"]
