"""Figures of a c-AFM triggering-bias run (``cafm_trigger_sweep``, seed 004 Fig. 2).

* ``<stem>_iv.png`` — every sweep's I–V, linear (A, mA or µA) and log |I| (A), coloured by
  site class (grain boundary, grain interior, homogenising layer), each triggering bias
  marked; an inset zooms on the sweeps that trigger early (the boundaries).
* ``<stem>_trigger_hist.png`` — histogram of |triggering bias| per class on log-spaced bins
  (boundary ≈ 0.12 V and interior > 9 V are two decades apart [004 L54–L56]), medians marked.
* ``<stem>_trigger_distance.png`` — triggering bias vs distance from the boundary (Fig. 2e
  [004 L50]); only when the sites carry a distance.
* ``<stem>_current_map.png`` — the current maps at the map bias (+0.1 V, Fig. 2b [004 L50]),
  before and after the sweeps, |I| (A) on one shared log colour scale with one colour bar, so
  a colour is the same current in both (before: the ionic background; after: the conductive
  bumps [004 L56], decades brighter), the swept sites ringed.

Per-sweep numbers come from ``results/sites`` (:meth:`protocols.cafm_trigger_sweep.CafmTriggerSweep.analyse_run`,
one entry per executed sweep in order); the I–V curves are the readings of the matching
``voltage_sweep`` steps.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D

from labctl.report._common import (SITE_CLASSES, ReportFigure, ReportRun, current_unit, fmt, log_floor, new_figure,
                                   save)
from labctl.store.reader import RunFileError


def _sites(run: ReportRun) -> dict[str, np.ndarray]:
    """``results/sites`` as arrays; ``site_class`` an array of str."""
    classes = run.string_list("sites", "site_class")
    sites = {key: run.float_array("sites", key) for key in (
        "x_nm", "y_nm", "distance_to_boundary_nm", "triggering_bias_V", "triggering_current_A")}
    if any(len(v) != len(classes) for v in sites.values()):
        raise RunFileError(f"{run.path}: results/sites has columns of unequal length")
    return {**sites, "site_class": np.array(classes, dtype=str)}


def _classes(sites: dict[str, np.ndarray]) -> list[str]:
    present = set(sites["site_class"])
    return [c for c in SITE_CLASSES if c in present] + sorted(present - set(SITE_CLASSES))


def _colour(site_class: str) -> str:
    return SITE_CLASSES.get(site_class, (site_class, "tab:gray"))[1]


def _name(site_class: str) -> str:
    return SITE_CLASSES.get(site_class, (site_class, ""))[0]


def iv_curves(run: ReportRun, out_dir: Path) -> ReportFigure:
    """All sweeps' I–V, linear and log |I|, by site class, triggering biases marked; when
    some sweeps trigger within a tenth of the sweep's reach (grain boundaries), the linear
    panel has an inset zoomed on them.

    ``data``: ``curves`` — one dict per sweep with ``site_class``, ``bias_V``, ``current_A``
    (the readings), ``triggering_bias_V``, ``triggering_current_A``; ``zoom_V`` (the inset's
    bias range, or None).
    """
    sites = _sites(run)
    sweeps = [s for s in run.steps if s["kind"] == "voltage_sweep"]
    if len(sweeps) != len(sites["site_class"]):
        raise RunFileError(f"{run.path}: {len(sweeps)} sweeps recorded but {len(sites['site_class'])} in results/sites")
    curves = []
    for k, step in enumerate(sweeps):
        r = run.readings(run.step_rows(int(step["step_index"])), "voltage_V", "current_A")
        curves.append({"site_class": str(sites["site_class"][k]), "bias_V": r["voltage_V"], "current_A": r["current_A"],
                       "triggering_bias_V": float(sites["triggering_bias_V"][k]),
                       "triggering_current_A": float(sites["triggering_current_A"][k])})
    reach_V = max((float(np.max(np.abs(c["bias_V"]))) for c in curves if len(c["bias_V"])), default=0.0)
    scale, unit = current_unit(max((float(np.max(np.abs(c["current_A"]))) for c in curves if len(c["current_A"])),
                                   default=1e-3))
    early = [c["triggering_bias_V"] for c in curves
             if math.isfinite(c["triggering_bias_V"]) and abs(c["triggering_bias_V"]) < 0.1 * reach_V]
    fig = new_figure(11, 4.6)
    ax_lin, ax_log = fig.subplots(1, 2)
    zoom_V = 2.5 * max(abs(b) for b in early) if early else None
    inset = ax_lin.inset_axes((0.55, 0.06, 0.42, 0.36)) if zoom_V else None
    order = {c: n for n, c in enumerate(reversed(list(SITE_CLASSES)))}  # grain boundaries drawn on top
    for c in sorted(curves, key=lambda c: order.get(c["site_class"], -1)):
        colour, z = _colour(c["site_class"]), 2 + order.get(c["site_class"], -1)
        v, i, v_t, i_t = c["bias_V"], c["current_A"], c["triggering_bias_V"], c["triggering_current_A"]
        ax_lin.plot(v, i / scale, color=colour, lw=0.8, alpha=0.7, zorder=z)
        ax_log.plot(v, log_floor(i), color=colour, lw=0.8, alpha=0.7, zorder=z)
        if inset is not None:
            inset.plot(v, i / scale, color=colour, lw=0.8, alpha=0.7, zorder=z)
        if math.isfinite(v_t):
            for ax, y in ((ax_lin, i_t / scale), (ax_log, abs(i_t)), (inset, i_t / scale)):
                if ax is not None:
                    ax.plot(v_t, y, "o", mfc="none", mec="black", ms=6, zorder=10)
    if inset is not None:
        window = [c for c in curves if len(c["bias_V"])]
        in_zoom = np.concatenate([c["current_A"][np.abs(c["bias_V"]) <= zoom_V] for c in window]) / scale
        pad = 0.08 * (float(np.ptp(in_zoom)) or 1.0)
        negative = np.median(early) < 0
        inset.set_xlim((-zoom_V, 0.05 * zoom_V) if negative else (-0.05 * zoom_V, zoom_V))
        inset.set_ylim(float(in_zoom.min()) - pad, float(in_zoom.max()) + pad)
        inset.set_title(f"zoom: |bias| ≤ {fmt(zoom_V, 2)} V", fontsize=8)
        inset.tick_params(labelsize=7)
        inset.grid(alpha=0.3)
    handles = [Line2D([], [], color=_colour(c), label=f"{_name(c)} ({c}), n = {int(np.sum(sites['site_class'] == c))}")
               for c in _classes(sites)]
    handles.append(Line2D([], [], ls="none", marker="o", mfc="none", mec="black", label="triggering bias"))
    ax_lin.set_ylabel(f"current ({unit})")
    ax_log.set_ylabel("|current| (A)")
    ax_log.set_yscale("log")
    for ax in (ax_lin, ax_log):
        ax.set_xlabel("tip bias (V vs Li/Li⁺)")
        ax.grid(alpha=0.3)
    ax_lin.set_title("I–V, linear (forward and back scan)", fontsize=10)
    ax_log.set_title("I–V, log |I|", fontsize=10)
    ax_log.legend(handles=handles, fontsize=8, loc="lower left")
    fig.suptitle(f"{run.title}\n{len(sweeps)} cyclic sweeps", fontsize=11)
    return save(fig, run, out_dir, "iv", {"curves": curves, "zoom_V": zoom_V})


def trigger_histogram(run: ReportRun, out_dir: Path) -> ReportFigure:
    """Histogram of |triggering bias| per site class on log-spaced bins, medians marked.

    ``data``: ``bin_edges_V`` (|V|, 5 bins per decade), and per class ``counts_<class>``,
    ``triggering_bias_V_<class>`` (the finite biases, signed) and ``median_V_<class>``;
    ``n_not_triggered``.
    """
    sites = _sites(run)
    bias = sites["triggering_bias_V"]
    finite = np.isfinite(bias) & (bias != 0)
    mag = np.abs(bias[finite])
    lo = math.floor(math.log10(mag.min())) if len(mag) else -1
    hi = math.ceil(math.log10(mag.max())) if len(mag) else 1
    hi = max(hi, lo + 1)
    edges = np.logspace(lo, hi, 5 * (hi - lo) + 1)
    fig = new_figure(8, 4.4)
    ax = fig.subplots()
    data: dict[str, object] = {"bin_edges_V": edges, "n_not_triggered": int(np.sum(~finite))}
    for c in _classes(sites):
        values = bias[finite & (sites["site_class"] == c)]
        counts, _ = np.histogram(np.abs(values), bins=edges)
        median = float(np.median(values)) if len(values) else math.nan
        data.update({f"counts_{c}": counts, f"triggering_bias_V_{c}": values, f"median_V_{c}": median})
        ax.hist(np.abs(values), bins=edges, color=_colour(c), alpha=0.6, edgecolor=_colour(c),
                label=f"{_name(c)}: median {fmt(median)} V (n = {len(values)})")
        if math.isfinite(median):
            ax.axvline(abs(median), color=_colour(c), ls="--", lw=1.2)
    ax.set_xscale("log")
    ax.set_xlabel("|triggering bias| (V); the tip is negative (Li plating)")
    ax.set_ylabel("sweeps")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ratio = run.results.get("gi_to_gb_ratio", math.nan)
    ax.set_title(f"{run.title}\ntriggering bias by site class"
                 + (f"; interior / boundary = {ratio:.0f}×" if isinstance(ratio, float) and math.isfinite(ratio)
                    else "")
                 + (f"; {data['n_not_triggered']} sweeps without a surge" if data["n_not_triggered"] else ""),
                 fontsize=10)
    ax.legend(fontsize=9, loc="upper center")
    return save(fig, run, out_dir, "trigger_hist", data)


def trigger_vs_distance(run: ReportRun, out_dir: Path) -> ReportFigure | None:
    """|Triggering bias| vs distance from the nearest boundary (nm); None without distances.

    ``data``: ``distance_to_boundary_nm``, ``triggering_bias_V``, ``site_class`` (sites with
    a distance and a triggering bias).
    """
    sites = _sites(run)
    d, bias = sites["distance_to_boundary_nm"], sites["triggering_bias_V"]
    ok = np.isfinite(d) & np.isfinite(bias) & (bias != 0)
    if not np.any(ok):
        return None
    fig = new_figure(8, 4.4)
    ax = fig.subplots()
    for c in _classes(sites):
        m = ok & (sites["site_class"] == c)
        if np.any(m):
            ax.plot(d[m], np.abs(bias[m]), "o", color=_colour(c), ms=7, alpha=0.8, label=f"{_name(c)} ({c})")
    ax.set_yscale("log")
    ax.set_xlabel("distance from the grain boundary (nm)")
    ax.set_ylabel("|triggering bias| (V)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, loc="lower right")
    ax.set_title(f"{run.title}\ntriggering bias vs distance from the boundary", fontsize=10)
    data = {"distance_to_boundary_nm": d[ok], "triggering_bias_V": bias[ok], "site_class": sites["site_class"][ok]}
    return save(fig, run, out_dir, "trigger_distance", data)


def _map_image(run: ReportRun, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``results/<name>``: (current ny × nx in A, x in nm, y in nm).

    Raises:
        RunFileError: the image does not match its axes.
    """
    current = np.asarray(run.result(name, "current_A"), dtype=float)
    x, y = run.float_array(name, "x_nm"), run.float_array(name, "y_nm")
    if current.ndim != 2 or current.shape != (len(y), len(x)):
        raise RunFileError(f"{run.path}: results/{name}/current_A is not a {len(y)} × {len(x)} image")
    return current, x, y


def _magnitude_range(current: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of the finite non-zero |I| of a map; None if it has none."""
    magnitude = np.abs(current[np.isfinite(current) & (current != 0)])
    return (float(magnitude.min()), float(magnitude.max())) if len(magnitude) else None


def current_maps(run: ReportRun, out_dir: Path) -> ReportFigure | None:
    """The current maps (before/after) as |I| images on one shared log colour scale (A) with
    one colour bar, the swept sites ringed; None without maps.

    ``data``: per map ``<name>_current_A`` (ny × nx, A), ``<name>_x_nm``, ``<name>_y_nm``,
    ``<name>_range_A`` (min, max of |I| over that map) and ``<name>_clim_A`` (the colour
    limits its image was drawn with); ``colour_limits_A`` (the shared scale: min and max of |I|
    over all maps); ``bias_V``.
    """
    names = [n for n in ("current_map_before", "current_map_after") if n in run.results]
    if not names:
        return None
    sites = _sites(run) if "sites" in run.results else None
    bias = float(run.results[names[0]].get("bias_V", math.nan))
    images = {n: _map_image(run, n) for n in names}
    ranges = {n: _magnitude_range(images[n][0]) for n in names}
    known = [r for r in ranges.values() if r is not None]
    lo = min((r[0] for r in known), default=1e-12)
    hi = max((r[1] for r in known), default=1e-9)
    norm = LogNorm(vmin=lo, vmax=max(hi, lo * 1.01))
    fig = new_figure(5.2 * len(names) + 1.0, 5)
    axes = np.atleast_1d(fig.subplots(1, len(names)))
    data: dict[str, object] = {"bias_V": bias, "colour_limits_A": (norm.vmin, norm.vmax)}
    image = None
    for ax, n in zip(axes, names):
        current, x, y = images[n]
        pitch_x = float(x[1] - x[0]) if len(x) > 1 else 1.0
        pitch_y = float(y[1] - y[0]) if len(y) > 1 else 1.0
        extent = (x[0] - pitch_x / 2, x[-1] + pitch_x / 2, y[0] - pitch_y / 2, y[-1] + pitch_y / 2)
        shown = np.where(np.isfinite(current), np.clip(np.abs(current), norm.vmin, None), np.nan)
        image = ax.imshow(shown, origin="lower", extent=extent, norm=norm, cmap="inferno", interpolation="nearest")
        if sites is not None:
            inside = ((sites["x_nm"] >= extent[0]) & (sites["x_nm"] <= extent[1])
                      & (sites["y_nm"] >= extent[2]) & (sites["y_nm"] <= extent[3]))
            for c in _classes(sites):
                m = inside & (sites["site_class"] == c)
                if np.any(m):
                    ax.plot(sites["x_nm"][m], sites["y_nm"][m], "o", mfc="none", mec=_colour(c), mew=1.5, ms=16,
                            label=f"swept site, {_name(c)}",
                            path_effects=[patheffects.withStroke(linewidth=3.5, foreground="white")])
            if np.any(inside):
                ax.legend(fontsize=8, loc="upper right", framealpha=0.8)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        own = ranges[n]
        span = f"|I| {fmt(own[0])} … {fmt(own[1])} A" if own is not None else "no current"
        ax.set_title(f"{n.removeprefix('current_map_')} the sweeps: {span}", fontsize=10)
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
        data.update({f"{n}_current_A": current, f"{n}_x_nm": x, f"{n}_y_nm": y,
                     f"{n}_range_A": own if own is not None else (math.nan, math.nan),
                     f"{n}_clim_A": image.get_clim()})
    bar = fig.colorbar(image, ax=list(axes), shrink=0.85)
    bar.set_label(f"|current| at {fmt(bias)} V (A)")
    fig.suptitle(f"{run.title}\ncurrent map at {fmt(bias)} V", fontsize=11)
    return save(fig, run, out_dir, "current_map", data)


def cafm_report(run: ReportRun, out_dir: Path) -> list[ReportFigure]:
    """All c-AFM figures this run has data for."""
    figures = [iv_curves(run, out_dir), trigger_histogram(run, out_dir), trigger_vs_distance(run, out_dir),
               current_maps(run, out_dir)]
    return [f for f in figures if f is not None]
