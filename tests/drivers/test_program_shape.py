"""The cycler compilers read a step program by its structure (drivers.base.ProgramLike), not by
class: a program built from plain dataclasses with the same attribute names compiles to the
same native program as labctl's model, and a step kind a cycler cannot run is refused with
the step's executed index and kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pytest

from drivers.base import step_blocks
from drivers.biologic import BiologicCompileError
from drivers.biologic import compile_native as biologic_native
from drivers.neware import StepFileError, compile_program
from labctl import steps as lab


@dataclass(frozen=True)
class Step:
    kind: str
    record_interval_s: float
    duration_s: float | None = None
    label: str = ""
    current_A: float = 0.0
    stop_voltage_above_V: float | None = None
    stop_voltage_below_V: float | None = None
    stop_charge_C: float | None = None


@dataclass(frozen=True)
class Loop:
    steps: list[Step]
    count: int
    kind: str = "loop"


@dataclass(frozen=True)
class Safety:
    max_abs_voltage_V: float
    max_abs_current_A: float


@dataclass(frozen=True)
class Detection:
    enabled: bool = True
    floor_V: float = 0.001  # labctl.checks.ShortDetection's defaults
    settle_s: float = 1.0


@dataclass(frozen=True)
class Program:
    steps: list[Step | Loop]
    safety: Safety = Safety(5.0, 0.01)
    short_detection: Detection = field(default_factory=Detection)
    end_run_on_short: bool = True


def _pair() -> tuple[lab.StepProgram, Program]:
    """The same program twice: labctl's model and plain dataclasses."""
    model = lab.StepProgram(
        area_cm2=1.0, safety=lab.SafetyLimits(max_abs_voltage_V=5.0, max_abs_current_A=0.01),
        steps=[lab.Rest(duration_s=600, record_interval_s=60, label="settle"),
               lab.Loop(steps=[lab.ConstantCurrent(current_A=2e-4, duration_s=1800, stop_voltage_above_V=4.0,
                                                   record_interval_s=10),
                               lab.ConstantCurrent(current_A=-2e-4, stop_charge_C=0.36, record_interval_s=10)],
                        count=3),
               lab.ConstantCurrent(current_A=1e-4, duration_s=60, record_interval_s=10)])
    plain = Program([Step("rest", 60, duration_s=600, label="settle"),
                     Loop([Step("constant_current", 10, duration_s=1800, current_A=2e-4, stop_voltage_above_V=4.0),
                           Step("constant_current", 10, current_A=-2e-4, stop_charge_C=0.36)], count=3),
                     Step("constant_current", 10, duration_s=60, current_A=1e-4)])
    return model, plain


def test_plain_objects_compile_like_the_program_model() -> None:
    model, plain = _pair()
    when = datetime(2025, 1, 1)
    assert (compile_program(plain).to_xml(date=when, guid="g")
            == compile_program(model).to_xml(date=when, guid="g"))
    assert biologic_native(plain) == biologic_native(model)
    # executed-step indices: rest 0, loop 1..6 (2 steps x 3 passes), last CC 7
    assert [(b.first_index, len(b.body), b.passes, b.loop) for b in step_blocks(plain)] == [
        (0, 1, 1, False), (1, 2, 3, True), (7, 1, 1, False)]
    assert sum(len(b.body) * b.passes for b in step_blocks(model)) == model.n_steps


@pytest.mark.parametrize(("compile_", "error", "vendor"), [
    (compile_program, StepFileError, "NEWARE"),
    (biologic_native, BiologicCompileError, "BioLogic"),
])
def test_a_kind_the_cycler_cannot_run_is_refused_naming_the_step(compile_, error, vendor) -> None:
    rest = Step("rest", 1.0, duration_s=10)
    move = Step("tip_move", 1.0, duration_s=10)
    with pytest.raises(error, match=rf"^step 3 \(tip_move\): not supported on {vendor} yet$"):
        compile_(Program([rest, rest, rest, move]))
    # inside a loop: the executed index of its first pass (rest 0, loop body 1, 2)
    with pytest.raises(error, match=rf"^step 2 \(voltage_sweep\): not supported on {vendor} yet$"):
        compile_(Program([rest, Loop([rest, Step("voltage_sweep", 1.0)], count=4)]))
