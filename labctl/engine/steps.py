"""The step program: plain, validated data that the engine executes.

A program is a list of steps, each with its end conditions, plus the safety limits and
short-circuit detection that hold for the whole run. It can be printed, validated, stored
in a run file (``model_dump_json``), and resumed at any step index.

Units: A, V, s, C, cm². Current sign: positive = plating onto the working electrode
(the Battery Data Format convention "positive = charging", cyclers-data-formats.md §2).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rest(_Model):
    """Open-circuit rest: the source holds 0 A and the voltage is recorded."""

    kind: Literal["rest"] = "rest"
    duration_s: float = Field(gt=0)
    record_interval_s: float = Field(gt=0)
    label: str = ""
    cycle: int = Field(default=0, ge=0)


class ConstantCurrent(_Model):
    """Galvanostatic step. Ends at the first end condition met (time, voltage or charge).

    ``stop_voltage_above_V`` / ``stop_voltage_below_V`` are signed thresholds on the
    measured voltage; ``stop_charge_C`` is on |charge passed in this step|.
    """

    kind: Literal["constant_current"] = "constant_current"
    current_A: float
    duration_s: float | None = Field(default=None, gt=0)
    stop_voltage_above_V: float | None = None
    stop_voltage_below_V: float | None = None
    stop_charge_C: float | None = Field(default=None, gt=0)
    record_interval_s: float = Field(gt=0)
    label: str = ""
    cycle: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _has_an_end(self) -> ConstantCurrent:
        if self.duration_s is None and self.stop_charge_C is None and (
            self.stop_voltage_above_V is None and self.stop_voltage_below_V is None
        ):
            raise ValueError("a constant-current step needs duration_s, stop_charge_C or a voltage stop")
        return self


Step = Annotated[Rest | ConstantCurrent, Field(discriminator="kind")]


class SafetyLimits(_Model):
    """Limits for the whole run; crossing one ends the run with the output off.

    ``max_abs_voltage_V`` is also pushed into the instrument as its voltage compliance.
    """

    max_abs_voltage_V: float = Field(gt=0)
    max_abs_current_A: float = Field(gt=0)


class ShortDetection(_Model):
    """Short-circuit detection on constant-current steps.

    No seed gives numbers (seed-protocols.md §2.3, §10 item 15): these are defaults.
    A short is flagged when, with current flowing, either
    * |V| falls below ``(1 - drop_fraction)`` × the step's running mean of |V|, after at
      least ``min_points`` readings in the step (the "sudden voltage drop", [003 L522]); or
    * |V| falls below ``floor_V`` (a hard short: V = I·R_short).
    """

    enabled: bool = True
    drop_fraction: float = Field(default=0.5, gt=0, lt=1)
    floor_V: float = Field(default=1e-3, ge=0)
    min_points: int = Field(default=5, ge=1)


class StepProgram(_Model):
    """What the engine runs on one channel."""

    steps: list[Step] = Field(min_length=1)
    area_cm2: float = Field(gt=0)
    safety: SafetyLimits
    short_detection: ShortDetection = ShortDetection()
    end_run_on_short: bool = True

    @model_validator(mode="after")
    def _within_limits(self) -> StepProgram:
        for index, step in enumerate(self.steps):
            if isinstance(step, ConstantCurrent) and abs(step.current_A) > self.safety.max_abs_current_A:
                raise ValueError(
                    f"step {index}: |current_A| {abs(step.current_A):g} exceeds "
                    f"safety.max_abs_current_A {self.safety.max_abs_current_A:g}"
                )
        return self

    @property
    def planned_duration_s(self) -> float:
        """Sum of the steps' durations (steps without one count as zero)."""
        return sum(step.duration_s or 0.0 for step in self.steps)
