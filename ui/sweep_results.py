"""Results of a sweep run as its steps end: per cycle (memristor) or per site (c-AFM).

The run file gets its ``results`` only after the run; the window shows them while it runs.
:class:`SweepRun` reads the protocol stored in the run file, is told each ended sweep with its
readings, and analyses that sweep with the same functions the protocol's ``analyse_run`` uses
(:func:`labctl.analysis.memristor.analyse_cycle`, :func:`labctl.analysis.cafm.analyse_trigger_sweep`)
and the protocol's parameters, so the live numbers are the ones the results will hold. When
the results arrive, they replace the live numbers (:meth:`SweepRun.use_results`).

Plain Python (no Qt): the tests drive it directly.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import yaml

from labctl.analysis.cafm import analyse_trigger_sweep
from labctl.analysis.memristor import analyse_cycle
from protocols import KINDS

#: Per-cycle series of a memristor run (names as in its ``results/cycles``).
CYCLE_KEYS = ("cycle", "hrs_resistance_ohm", "lrs_resistance_ohm", "on_off_ratio", "reset_failed", "set_voltage_V",
              "reset_voltage_V")
#: Per-sweep series of a c-AFM run (names as in its ``results/sites``, plus the site number).
SITE_KEYS = ("site", "site_class", "distance_to_boundary_nm", "triggering_bias_V")


def protocol_of(attrs: dict[str, Any]) -> Any | None:
    """The protocol model stored in a run file's root attributes (None if unreadable)."""
    try:
        data = yaml.safe_load(str(attrs.get("protocol_text", "")))
        return KINDS[data["kind"]].model_validate(data)
    except Exception:  # noqa: BLE001 - an old or foreign file: plots without live results
        return None


class SweepRun:
    """What the window knows of one sweep run: which step is what, and results so far.

    Args:
        protocol: the run's protocol model (``memristor_cycling`` or ``cafm_trigger_sweep``;
            another kind or ``None`` gives no live results, only the I–V curves).

    Attributes:
        kind: the protocol kind (``""`` if unknown).
        cycles: memristor: lists per :data:`CYCLE_KEYS` (R in Ω, set/reset biases in V), one
            entry per ended cycle.
        sites: c-AFM: lists per :data:`SITE_KEYS` (bias in V), one entry per ended sweep.
        final: the results came from the run file (no more live analysis).
    """

    def __init__(self, protocol: Any | None) -> None:
        self.protocol = protocol
        self.kind = getattr(protocol, "kind", "") or ""
        self.cycles: dict[str, list[float]] = {k: [] for k in CYCLE_KEYS}
        self.sites: dict[str, list[Any]] = {k: [] for k in SITE_KEYS}
        self.final = False
        self._steps: list[Any] = []  # c-AFM: the program's steps (a few dozen)
        self._sites: list[Any] = []
        if self.kind == "cafm_trigger_sweep":
            self._steps = list(protocol.program().steps)
            self._sites = protocol.all_sites()
        elif self.kind == "memristor_cycling":
            self._layout = protocol.cycle_points_V()[1]

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> SweepRun:
        return cls(protocol_of(attrs))

    # -- what each step is --------------------------------------------------------------------
    def step(self, index: int) -> Any | None:
        """The program step of ``index`` (c-AFM only; None otherwise)."""
        return self._steps[index] if 0 <= index < len(self._steps) else None

    def step_kind(self, index: int) -> str:
        """``voltage_sweep``, ``current_map`` or ``tip_move`` (unknown protocol: ``voltage_sweep``).

        A memristor program is a tip move (tip electrode) and then one sweep per cycle, so
        this never builds its program (which can hold 100 000 sweeps)."""
        if self.kind == "memristor_cycling":
            return "tip_move" if self.protocol.electrode.kind == "tip" and index == 0 else "voltage_sweep"
        step = self.step(index)
        return step.kind if step is not None else "voltage_sweep"

    def label(self, index: int) -> str:
        """How the operator names step ``index``: ``cycle 12`` (memristor), the step's label
        (c-AFM: ``site 3 GB d=0 nm sweep 1``), else ``step 12``."""
        if self.kind == "memristor_cycling":
            return f"cycle {index if self.protocol.electrode.kind == 'tip' else index + 1}"
        step = self.step(index)
        return getattr(step, "label", "") or f"step {index}"

    def group(self, index: int) -> str:
        """The site class of a c-AFM sweep (``GB``, ``GI``, ``HL``); ``""`` otherwise."""
        step = self.step(index)
        cycle = getattr(step, "cycle", 0)
        return self._sites[cycle - 1].site_class if self._sites and 0 < cycle <= len(self._sites) else ""

    # -- live results -------------------------------------------------------------------------
    def add_sweep(self, row: dict[str, Any], voltage_V: np.ndarray, current_A: np.ndarray) -> None:
        """One ended sweep: ``row`` from the ``steps`` table, its readings (1-D, sweep order)."""
        if self.final or row.get("kind") != "voltage_sweep" or not len(voltage_V):
            return
        p = self.protocol
        if self.kind == "memristor_cycling":
            d = p.detection
            r = analyse_cycle(voltage_V, current_A, self._layout, surge_factor=d.surge_factor,
                              min_current_A=d.min_current_A, drop_factor=d.drop_factor)
            for key, value in zip(CYCLE_KEYS, (row["cycle"], r.hrs_resistance_ohm, r.lrs_resistance_ohm,
                                               r.on_off_ratio, float(r.reset_failed), r.set_voltage_V,
                                               r.reset_voltage_V)):
                self.cycles[key].append(float(value))
        elif self.kind == "cafm_trigger_sweep":
            d = p.detection
            r = analyse_trigger_sweep(voltage_V, current_A, surge_factor=d.surge_factor,
                                      min_current_A=d.min_current_A, ohmic_r2_min=d.ohmic_r2_min)
            n = int(row["cycle"])
            site = self._sites[n - 1] if 0 < n <= len(self._sites) else None
            distance = getattr(site, "distance_to_boundary_nm", None)
            for key, value in zip(SITE_KEYS, (n, getattr(site, "site_class", ""),
                                              math.nan if distance is None else distance, r.triggering_bias_V)):
                self.sites[key].append(value)

    def headline(self) -> str | None:
        """The run's result so far in one line: the median on/off ratio and set/reset biases
        (memristor), the median triggering bias per site class (c-AFM); None before any."""
        if self.kind == "memristor_cycling" and self.cycles["on_off_ratio"]:
            ratio = np.asarray(self.cycles["on_off_ratio"], dtype=float)
            ratio = ratio[np.isfinite(ratio)]
            if not len(ratio):
                return None
            failed = int(np.nansum(self.cycles["reset_failed"]))
            return (f"on/off {np.median(ratio):.3g} (median of {len(ratio)})"
                    + (f" · {failed} failed reset{'s' if failed != 1 else ''}" if failed else ""))
        if self.kind == "cafm_trigger_sweep" and self.sites["triggering_bias_V"]:
            bias = np.asarray(self.sites["triggering_bias_V"], dtype=float)
            classes = np.asarray(self.sites["site_class"], dtype=object)
            parts = [f"{c} {np.median(bias[(classes == c) & np.isfinite(bias)]):+.3g} V"
                     for c in ("GB", "GI", "HL") if np.any((classes == c) & np.isfinite(bias))]
            return "triggering bias " + " · ".join(parts) if parts else None
        return None

    def use_results(self, results: dict[str, Any]) -> None:
        """Replace the live numbers by the run file's ``results`` (same analysis, all of it)."""
        cycles = results.get("cycles")
        if isinstance(cycles, dict) and "on_off_ratio" in cycles:
            n = len(np.atleast_1d(cycles["on_off_ratio"]))
            self.cycles = {k: [float(x) for x in np.atleast_1d(cycles.get(k, [math.nan] * n))] for k in CYCLE_KEYS}
            self.final = True
        sites = results.get("sites")
        if isinstance(sites, dict) and "triggering_bias_V" in sites:
            bias = [float(x) for x in np.atleast_1d(sites["triggering_bias_V"])]
            classes = sites.get("site_class", [])
            if isinstance(classes, str):  # how older run files stored lists of strings: JSON text
                try:
                    classes = json.loads(classes)
                except ValueError:
                    classes = []
            classes = [str(c) for c in np.atleast_1d(classes)] if len(classes) == len(bias) else [""] * len(bias)
            distance = [float(x) for x in np.atleast_1d(sites.get("distance_to_boundary_nm", [math.nan] * len(bias)))]
            # results hold one entry per executed sweep in order; the site number is the
            # sweep's place among the sites (sweeps_per_site sweeps each)
            per_site = getattr(self.protocol, "sweeps_per_site", 1) or 1
            self.sites = {"site": [k // per_site + 1 for k in range(len(bias))], "site_class": classes,
                          "distance_to_boundary_nm": distance, "triggering_bias_V": bias}
            self.final = True


def current_maps(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The 2-D current maps among a c-AFM run's results: name (``before`` / ``after``) →
    ``{"current_A": (ny, nx) array, "x_nm", "y_nm": 1-D arrays, "bias_V": float}``."""
    out = {}
    for name, value in results.items():
        if name.startswith("current_map_") and isinstance(value, dict) and "current_A" in value:
            current = np.asarray(value["current_A"], dtype=float)
            if current.ndim == 2:
                out[name.removeprefix("current_map_")] = {
                    "current_A": current, "x_nm": np.asarray(value.get("x_nm", np.arange(current.shape[1])), float),
                    "y_nm": np.asarray(value.get("y_nm", np.arange(current.shape[0])), float),
                    "bias_V": float(value.get("bias_V", math.nan))}
    return out


def map_from_readings(step: Any, current_A: np.ndarray) -> dict[str, Any]:
    """A current map (as :func:`current_maps` gives) from the readings of a
    :class:`~labctl.steps.CurrentMap` step so far (row by row; NaN where not yet
    measured)."""
    current = np.full(step.nx * step.ny, np.nan)
    current[:min(len(current_A), current.size)] = current_A[:current.size]
    return {"current_A": current.reshape(step.ny, step.nx),
            "x_nm": step.x0_nm + step.pitch_nm * np.arange(step.nx),
            "y_nm": step.y0_nm + step.pitch_nm * np.arange(step.ny), "bias_V": step.bias_V}
