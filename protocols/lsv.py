"""Linear sweep voltammetry for the oxidation limit of an electrolyte (Li | SSE | SS).

Seed 002: Li | CSE | SS from OCV to 6.0 V at 0.5 mV s⁻¹ [002 L39]. After a rest at open
circuit the working electrode (SS) is swept; the sweep ends at ``end_V`` or when the current
reaches the current limit. The oxidation onset is the first voltage where the current density
stays above ``onset_threshold_uA_cm2`` (:func:`labctl.analysis.oxidation_onset`; the seeds
state no criterion).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from labctl.analysis.lsv import DEFAULT_THRESHOLD_UA_CM2, oxidation_onset
from labctl.steps import LinearSweep, SafetyLimits, StepProgram
from labctl.store import RunFile
from protocols.base import ProtocolBase
from protocols.characterisation import Limits, rest, step_record, steps_of


class LSV(ProtocolBase):
    """Protocol file of kind ``lsv`` (units in the field names)."""

    kind: Literal["lsv"] = "lsv"
    rest_before_s: float = Field(default=600.0, gt=0, le=86400)
    start_at_ocv: bool = True
    start_V: float = Field(default=0.0, ge=-10, le=10)
    end_V: float = Field(ge=-10, le=10)
    scan_rate_mV_s: float = Field(gt=0, le=10_000)
    record_every_mV: float = Field(default=1.0, ge=0.01, le=1000)
    record_interval_s: float = Field(default=10.0, ge=0.01, le=3600)
    onset_threshold_uA_cm2: float = Field(default=DEFAULT_THRESHOLD_UA_CM2, gt=0, le=1e6)
    sustain_points: int = Field(default=3, ge=1, le=1000)
    limits: Limits = Limits(voltage_limit_V=6.5, current_limit_mA=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> LSV:
        if abs(self.end_V) > self.limits.voltage_limit_V:
            raise ValueError(f"end_V {self.end_V:g} exceeds limits.voltage_limit_V {self.limits.voltage_limit_V:g}")
        return self

    def program(self) -> StepProgram:
        """Rest at open circuit, then the sweep."""
        return StepProgram(
            steps=[rest(self.rest_before_s, self.record_interval_s, "rest at OCV"),
                   LinearSweep(start_V=self.start_V, start_at_ocv=self.start_at_ocv, end_V=self.end_V,
                               scan_rate_V_s=self.scan_rate_mV_s * 1e-3, record_every_dE_V=self.record_every_mV * 1e-3,
                               label="LSV")],
            area_cm2=self.cell.area_cm2,
            safety=SafetyLimits(max_abs_voltage_V=self.limits.voltage_limit_V,
                                max_abs_current_A=self.limits.current_limit_mA * 1e-3))

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """The oxidation onset (V) at the threshold, and where the sweep ended."""
        sweeps = steps_of(run, channel, "linear_sweep")
        if not sweeps:
            return {"problems": ["the sweep did not run"]}
        return analyse_sweep(step_record(run, channel, int(sweeps[0]["step_index"])), self.cell.area_cm2,
                             self.onset_threshold_uA_cm2, self.sustain_points)

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        if "oxidation_onset_V" not in results:
            return list(results.get("problems", ["no result"]))
        bound = "≥ " if results["oxidation_onset_is_lower_bound"] else ""
        return [f"oxidation onset {bound}{results['oxidation_onset_V']:.3f} V at "
                f"{results['oxidation_onset_threshold_uA_cm2']:g} µA cm⁻² (sweep to {results['sweep_end_V']:.3f} V)"]


def analyse_sweep(record: dict, area_cm2: float, threshold_uA_cm2: float, sustain_points: int) -> dict[str, Any]:
    """The onset of one sweep's record, or a problem line."""
    v, i = record["voltage_V"], record["current_A"]
    try:
        found = oxidation_onset(v, i, area_cm2=area_cm2, threshold_uA_cm2=threshold_uA_cm2,
                                sustain_points=sustain_points)
    except ValueError as exc:
        return {"problems": [f"oxidation onset: {exc}"]}
    return {**found.as_results(), "sweep_start_V": float(v[0]), "sweep_end_V": float(v[-1]), "problems": []}
