"""DC polarisation of an ion-blocking SS | SSE | SS cell: the electronic conductivity.

A constant bias (seed 000: 150 mV [000 L185], FSE 2.73 × 10⁻¹⁰ S cm⁻¹ [000 L171]; seed 003:
200 mV at 25 °C, LPSCl 6.3 → 1.7 × 10⁻⁹ S cm⁻¹ [003 L378–L386]) is held for ``duration_h``
after a rest; σ_e = I_ss·d / (V·A) from the steady-state current, the first time its relative
change per hour falls under ``max_relative_change_per_h`` over a trailing ``window_s``
(:func:`labctl.analysis.electronic_conductivity`; the seeds give no criterion).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from labctl.analysis.conductivity import electronic_conductivity
from labctl.steps import ConstantVoltage, SafetyLimits, StepProgram
from labctl.store import RunFile
from protocols.base import ProtocolBase, _Model
from protocols.characterisation import Limits, rest, step_record, steps_of


class SteadyStateSettings(_Model):
    """When the current counts as steady: |dI/dt|/|I| below ``max_relative_change_per_h``
    (1/h) over a trailing ``window_s`` (s). A convention of this lab: the seeds state none."""

    max_relative_change_per_h: float = Field(default=0.01, gt=0, le=10)
    window_s: float = Field(default=600.0, gt=0, le=7 * 86400)


class DCPolarisation(ProtocolBase):
    """Protocol file of kind ``dc_polarisation`` (units in the field names)."""

    kind: Literal["dc_polarisation"] = "dc_polarisation"
    bias_mV: float = Field(gt=0, le=5000)
    duration_h: float = Field(gt=0, le=1000)
    rest_before_s: float = Field(default=60.0, gt=0, le=86400)
    record_interval_s: float = Field(default=10.0, ge=0.01, le=3600)
    steady_state: SteadyStateSettings = SteadyStateSettings()
    limits: Limits = Limits(voltage_limit_V=1.0, current_limit_mA=50.0)

    @model_validator(mode="after")
    def _consistent(self) -> DCPolarisation:
        if self.bias_mV * 1e-3 > self.limits.voltage_limit_V:
            raise ValueError(f"bias_mV {self.bias_mV:g} exceeds limits.voltage_limit_V {self.limits.voltage_limit_V:g} V")
        if self.steady_state.window_s >= self.duration_h * 3600:
            raise ValueError("steady_state.window_s must be shorter than the hold (duration_h)")
        return self

    def program(self) -> StepProgram:
        """Rest, then the bias held for ``duration_h``."""
        return StepProgram(
            steps=[rest(self.rest_before_s, self.record_interval_s),
                   ConstantVoltage(voltage_V=self.bias_mV * 1e-3, duration_s=self.duration_h * 3600,
                                   record_interval_s=self.record_interval_s, label="DC polarisation")],
            area_cm2=self.cell.area_cm2,
            safety=SafetyLimits(max_abs_voltage_V=self.limits.voltage_limit_V,
                                max_abs_current_A=self.limits.current_limit_mA * 1e-3))

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """σ_e (S cm⁻¹) from the hold's I–t record, with the steady state found; an upper
        bound when the current never became steady."""
        holds = steps_of(run, channel, "constant_voltage")
        if not holds:
            return {"problems": ["the DC polarisation step did not run"]}
        record = step_record(run, channel, int(holds[0]["step_index"]))
        return analyse_hold(record, self.bias_mV * 1e-3, self.cell.electrolyte_thickness_um, self.cell.area_cm2,
                            self.steady_state)

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        if "electronic_conductivity_S_cm" not in results:
            return list(results.get("problems", ["no result"]))
        bound = "≤ " if results["electronic_conductivity_is_upper_bound"] else ""
        return [f"σ_e {bound}{results['electronic_conductivity_S_cm']:.3g} S cm⁻¹ (I_ss "
                f"{results['steady_state_current_A']:.4g} A at {results['steady_state_time_s'] / 3600:.2f} h)"]


def analyse_hold(record: dict, bias_V: float, thickness_um: float, area_cm2: float,
                 steady: SteadyStateSettings) -> dict[str, Any]:
    """σ_e of one potentiostatic hold's record (its readings), or a problem line."""
    t, i = record["test_time_s"], record["current_A"]
    if len(t) < 5:
        return {"problems": [f"the hold has {len(t)} reading(s); at least 5 are needed"]}
    try:
        found = electronic_conductivity(t - t[0], i, bias_V=bias_V, thickness_um=thickness_um, area_cm2=area_cm2,
                                        max_relative_change_per_h=steady.max_relative_change_per_h,
                                        window_s=steady.window_s)
    except ValueError as exc:
        return {"problems": [f"electronic conductivity: {exc}"]}
    return {**found.as_results(), "problems": []}
