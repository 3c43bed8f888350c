"""The step program: plain, validated data that the engine executes.

A program is a list of steps, each with its end conditions, plus the safety limits and
short-circuit detection that hold for the whole run. It can be printed, validated, stored
in a run file (``model_dump_json``), and resumed at any step index.

Units: A, V, s, C, cm². Current sign: positive = plating onto the working electrode
(the Battery Data Format convention "positive = charging", cyclers-data-formats.md §2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labctl.checks import ShortDetection


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


class Loop(_Model):
    """``steps`` repeated ``count`` times; each pass is one cycle.

    Inside a loop, a step's cycle number is ``first_cycle`` + the pass (0-based), so a
    12 000 h cycling run is a few steps of data, not tens of thousands.
    """

    kind: Literal["loop"] = "loop"
    steps: list[Step] = Field(min_length=1)
    count: int = Field(ge=1)
    first_cycle: int = Field(default=1, ge=0)


Entry = Annotated[Rest | ConstantCurrent | Loop, Field(discriminator="kind")]


class SafetyLimits(_Model):
    """Limits for the whole run; crossing one ends the run with the output off.

    ``max_abs_voltage_V`` is also pushed into the instrument as its voltage compliance.
    """

    max_abs_voltage_V: float = Field(gt=0)
    max_abs_current_A: float = Field(gt=0)


class StepProgram(_Model):
    """What the engine runs on one channel."""

    steps: list[Entry] = Field(min_length=1)
    area_cm2: float = Field(gt=0)
    safety: SafetyLimits
    short_detection: ShortDetection = ShortDetection()
    end_run_on_short: bool = True
    polarisation_limit_V: float | None = Field(default=None, gt=0)
    """End the run (status ``polarisation``) when |V| on a constant-current step exceeds
    this: the "increasing overpotential" failure mode of [003 L522], [002 L165]."""

    @model_validator(mode="after")
    def _within_limits(self) -> StepProgram:
        for entry in self.steps:
            for step in entry.steps if isinstance(entry, Loop) else [entry]:
                if isinstance(step, ConstantCurrent) and abs(step.current_A) > self.safety.max_abs_current_A:
                    raise ValueError(
                        f"step {step.label or step.kind!r}: |current_A| {abs(step.current_A):g} exceeds "
                        f"safety.max_abs_current_A {self.safety.max_abs_current_A:g}"
                    )
        return self

    def iter_steps(self, start: int = 0) -> Iterator[tuple[int, Step, int]]:
        """(step index, step, cycle) of the executed sequence, loops unrolled, from ``start``.

        The step index counts every executed step and never resets (the Battery Data Format
        "Step Count"); it is what checkpoints and ``start_step`` refer to.
        """
        index = 0
        for entry in self.steps:
            if isinstance(entry, Loop):
                body = len(entry.steps)
                if index + body * entry.count <= start:
                    index += body * entry.count
                    continue
                first_pass = max(0, (start - index) // body)
                index += first_pass * body
                for n in range(first_pass, entry.count):
                    for step in entry.steps:
                        if index >= start:
                            yield index, step, entry.first_cycle + n
                        index += 1
            else:
                if index >= start:
                    yield index, entry, entry.cycle
                index += 1

    @property
    def n_steps(self) -> int:
        """Number of executed steps, loops unrolled."""
        return sum(len(e.steps) * e.count if isinstance(e, Loop) else 1 for e in self.steps)

    @property
    def n_cycles(self) -> int:
        """Highest cycle number the program reaches."""
        return max(e.first_cycle + e.count - 1 if isinstance(e, Loop) else e.cycle for e in self.steps)

    @property
    def planned_duration_s(self) -> float:
        """Sum of the steps' durations, loops unrolled (steps without one count as zero)."""
        return sum(
            sum(s.duration_s or 0.0 for s in e.steps) * e.count if isinstance(e, Loop) else (e.duration_s or 0.0)
            for e in self.steps
        )
