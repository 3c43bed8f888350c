"""Plating lithium in one direction until the cell shorts: the capacity a Li | SSE | Li cell
takes before Li bridges the electrolyte ([000 L87], "short-circuiting time" at 0.2 mA cm⁻²:
Li | LPSCl | Li shorted at 1.2 mAh cm⁻², PolyEA-IL at 1.6, the FSE stable to 12 mAh cm⁻²).

The program is one loop "until the short" (:class:`labctl.steps.LoopUntil`): constant-current
plating in chunks of ``chunk_areal_capacity_mAh_cm2`` (each followed by an optional rest, e.g.
for an impedance check between chunks), at most ``max_areal_capacity_mAh_cm2`` in all. The
short — detected on the plating current (:class:`labctl.checks.ShortDetector`) — leaves the
loop; the run ends there with the cell no longer under current.

Results: the areal capacity plated until the short, ``capacity_to_short_mAh_cm2``, and its Li
thickness at 4.85 µm per mAh cm⁻² ([003 L176] ≈ 4.9;
:func:`labctl.analysis.lithium_inventory.capacity_to_short`); without a short, the capacity
plated is a lower bound (``capacity_to_short_is_lower_bound``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from labctl.analysis.lithium_inventory import capacity_to_short
from labctl.steps import ConstantCurrent, Loop, LoopUntil, Rest, SafetyLimits, ShortDetection, StepProgram
from labctl.store import RunFile
from protocols.base import ArealCapacity, CurrentDensity, ProtocolBase, RecordInterval


class ContinuousPlating(ProtocolBase):
    """Protocol file of kind ``continuous_plating`` (units in the field names)."""

    kind: Literal["continuous_plating"] = "continuous_plating"
    current_density_mA_cm2: CurrentDensity
    max_areal_capacity_mAh_cm2: ArealCapacity
    chunk_areal_capacity_mAh_cm2: ArealCapacity | None = None
    rest_between_chunks_s: float = Field(default=0.0, ge=0, le=86400)
    voltage_limit_V: float = Field(default=5.0, gt=0, le=210)
    record_interval_s: RecordInterval = 10.0
    detection: ShortDetection = ShortDetection()

    @model_validator(mode="after")
    def _consistent(self) -> ContinuousPlating:
        if not self.detection.enabled:
            raise ValueError("detection.enabled: plating until the short needs short detection")
        if self.chunk_areal_capacity_mAh_cm2 is not None and self.chunk_areal_capacity_mAh_cm2 > self.max_areal_capacity_mAh_cm2:
            raise ValueError("chunk_areal_capacity_mAh_cm2 exceeds max_areal_capacity_mAh_cm2")
        if self.current_A > 1.05:
            raise ValueError(f"current_density_mA_cm2 × area needs {self.current_A:g} A; a 2400 sources at most 1.05 A")
        return self

    @property
    def current_A(self) -> float:
        return self.current_density_mA_cm2 * self.cell.area_cm2 * 1e-3

    def program(self) -> StepProgram:
        """A loop of plating chunks (and rests) until the short."""
        chunk = self.chunk_areal_capacity_mAh_cm2 or self.max_areal_capacity_mAh_cm2
        count = max(1, math.ceil(self.max_areal_capacity_mAh_cm2 / chunk - 1e-9))
        body: list[Any] = [ConstantCurrent(current_A=self.current_A, duration_s=chunk * 3600.0 / self.current_density_mA_cm2,
                                           record_interval_s=self.record_interval_s,
                                           label=f"plate {self.current_density_mA_cm2:g} mA cm-2")]
        if self.rest_between_chunks_s:
            body.append(Rest(duration_s=self.rest_between_chunks_s, record_interval_s=self.record_interval_s, label="rest"))
        return StepProgram(steps=[Loop(steps=body, count=count, first_cycle=1, until=LoopUntil(kind="short"))],
                           area_cm2=self.cell.area_cm2,
                           safety=SafetyLimits(max_abs_voltage_V=self.voltage_limit_V,
                                               max_abs_current_A=self.current_A * 1.05),
                           short_detection=self.detection)

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        c = run.columns(channel)
        return self.analyse_run(c, [row for row in run.steps() if row["channel"] == channel],
                                [e for e in run.events() if e["channel"] == channel])

    def analyse_run(self, columns: dict[str, np.ndarray], steps: list[dict[str, Any]],
                    events: list[dict[str, Any]] = ()) -> dict[str, Any]:
        """Capacity plated until the short: the time of the first short event (the detection;
        on a cycler the channel ran on a little until labctl's stop), else the end of the first
        step that ended on a short; without one, all of it (a lower bound)."""
        shorted = next((s for s in steps if s["reason"] in ("short", "soft_short")), None)
        event = next((e for e in events if e["kind"] in ("short", "soft_short")), None)
        out: dict[str, Any] = {"ended_by": shorted["reason"] if shorted else (steps[-1]["reason"] if steps else "no steps"),
                               "test_time_h": float(steps[-1]["end_s"]) / 3600.0 if steps else 0.0}
        t = columns.get("test_time_s", ())
        if len(t) < 2:
            return out
        when = float(event["t_s"]) if event is not None else float(shorted["end_s"]) if shorted else None
        if when is not None:
            when = min(max(when, float(t[0])), float(t[-1]))
        result = capacity_to_short(t, columns["current_A"], area_cm2=self.cell.area_cm2, short_time_s=when)
        out.update(result.as_results())
        out["short_time_h"] = "" if result.short_time_s is None else result.short_time_s / 3600.0
        return out

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        if "capacity_to_short_mAh_cm2" not in results:
            return [f"ended by: {results['ended_by']}"]
        q = results["capacity_to_short_mAh_cm2"]
        if results["capacity_to_short_is_lower_bound"]:
            return [f"no short: ≥ {q:.3g} mAh cm-2 plated ({results['capacity_to_short_li_thickness_um']:.3g} µm Li)"]
        return [f"{results['ended_by'].replace('_', ' ')} after {q:.3g} mAh cm-2 "
                f"({results['capacity_to_short_li_thickness_um']:.3g} µm Li) at {results['short_time_h']:.2f} h"]


__all__ = ["ContinuousPlating"]
