"""Compile a step program into a BioLogic technique list (:mod:`drivers.biologic`).

The program is read by structure (:class:`drivers.base.ProgramLike`), its entries told apart
by ``kind``; any kind but ``rest``, ``constant_current``, ``constant_voltage`` and ``loop`` is
refused naming the step (:class:`BiologicCompileError`). The mapping (units: A, V, s; sign: +
= plating onto the working electrode, as in the program):

* ``rest`` → OCV (``Rest_time_T`` = ``duration_s``); a 0 A ``constant_current`` with a
  duration and no voltage stop is a rest too. A rest with a voltage stop (a rest until a
  voltage) → a CP at 0 A with the limit test ``Ewe > x`` / ``Ewe < x`` (OCV has no limit
  tests in the Development Package; CPLIMIT at 0 A is its open circuit with a test);
* ``constant_voltage`` → a one-step CA (``Voltage_step`` = ``voltage_V``, ``Duration_step`` =
  ``duration_s``, required): ``stop_current_below_A`` → the limit test ``I < x`` after a
  charge (``I > −x`` after a discharge: the direction is the step's ``direction``, else that
  of the constant-current step before it, the CC half of a CC-CV, else a charge) and ``stop_current_above_A`` → ``I > x``
  (``I < −x``), with ``Exit_Cond`` = next technique (CALIMIT); ``I_Range`` the smallest fixed
  range holding the preceding CC's current (EC-Lab changes the current range only after an
  OCV, so a CV keeps its CC's range: aurora-unicycler PR #19), else ``max_abs_current_A``;
* ``constant_current`` → a one-step CP: ``Current_step`` = ``current_A``, ``Duration_step`` =
  ``duration_s``, shortened to ``stop_charge_C`` / |I| when that comes first (a CP's current
  is constant, so the charge stop is a time; the limit tests have no charge variable, §3.2);
  ``stop_voltage_above_V`` → limit test ``Ewe > x`` and ``stop_voltage_below_V`` → ``Ewe < x``
  with ``Exit_Cond`` = next technique (CPLIMIT); ``I_Range`` the smallest fixed range holding
  |I|; ``Record_every_dT`` = ``record_interval_s``, no dE recording;
* a ``loop`` → its steps, then a Loop technique back to the first of them with
  ``loop_N_times`` = ``count`` − 1 (none when ``count`` is 1);
* a loop's ``until``: a technique list cannot jump out of a Loop, so the loop must be the
  program's last entry and leaving it ends the run: a voltage condition becomes a limit test
  with ``Exit_Cond`` = stop on each CP of its body that has no voltage test of its own (a
  CPLIMIT step has one ``Exit_Cond`` for all its tests), and the engine decides from the points
  on every step (the PC-side decision: it stops the channel; a short is always decided there);
* ``safety`` → the channel's safety limits (:class:`drivers.biologic.ChannelSafetyLimits`):
  Ewe within ±``max_abs_voltage_V``, |I| ≤ ``max_abs_current_A``; and ``E_Range`` the smallest
  fixed range holding ±``max_abs_voltage_V``;
* short detection's floor (``ShortDetection.floor_V``, when enabled and the run ends on a
  short) → a CP limit test ``Ewe < +floor`` on a charge or ``Ewe > −floor`` on a discharge
  with ``Exit_Cond`` = stop, as the NEWARE compiler turns it into a per-step ``Protect``: a
  hard short (V = I·R_short) ends the run in the instrument, even while no PC is watching. A
  limit test acts at every sample from the step's first, and after a current reversal a real
  cell's voltage keeps the last half-cycle's sign for a few ms (the reversal transient,
  ``docs/detection.md``); limit tests have no delay, so the CP runs as two steps at the same
  current: a settling step of ``ShortDetection.settle_s`` rounded up to whole record
  intervals (the record grid is unchanged) without the floor, then the rest of the duration
  with it. A CP step with a voltage stop (next technique) has a single ``Exit_Cond`` for all
  its tests and cannot also stop the channel; for those steps, and for steps too short to
  split, the floor stays with the engine (:attr:`BiologicProgram.software_floor_steps`).

The running-mean drop and noise tests of short detection, and ``polarisation_limit_V``, stay
with the engine, which sees the points.

Step indices: the channel tags its points with (technique index, loop count); the loop
count rises by one at each jump of any Loop (:func:`drivers.biologic.execution_runs`).
:meth:`BiologicProgram.step_indices` maps them back to the program's executed step index
(:func:`drivers.base.step_blocks`), which is also what checkpoints refer to.
:meth:`BiologicProgram.to_json` / :meth:`BiologicProgram.from_json` carry the compiled list
(ECC parameter names) and that map as text, for a run file and for reattaching after a crash.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
from pydantic import TypeAdapter, ValidationError

from drivers.base import ConstantCurrentLike, ConstantVoltageLike, ProgramLike, StepLike, step_blocks, step_name
from drivers.biologic.records import ChannelStatus, EndReason, ERange, ExitCondition
from drivers.biologic.techniques import (
    CA,
    CP,
    OCV,
    CAStep,
    ChannelSafetyLimits,
    CPStep,
    LimitTest,
    Loop,
    Technique,
    e_range_for,
    i_range_for,
)

__all__ = ["JSON_FORMAT", "BiologicCompileError", "BiologicProgram", "compile_program"]

#: Format tag of :meth:`BiologicProgram.to_json`.
JSON_FORMAT = "labctl-biologic-techniques/1"
_TECHNIQUES = TypeAdapter(list[Technique])


class BiologicCompileError(ValueError):
    """A program that a BioLogic technique list cannot express; names the program step."""


@dataclass(frozen=True)
class _Block:
    """Techniques ``first``…``first + body − 1`` run ``passes`` times from loop count
    ``loop0``, as program steps ``base`` onwards."""

    first: int
    body: int
    base: int
    loop0: int
    passes: int


@dataclass(frozen=True)
class BiologicProgram:
    """A compiled program: what to load (``techniques``, ``safety``) and how to read back.

    ``software_floor_steps``: executed-step indices of the first pass of CP steps that got no
    in-instrument short floor (they have a voltage stop). ``n_steps``: the program's executed
    steps.
    """

    techniques: tuple[OCV | CP | CA | Loop, ...]
    safety: ChannelSafetyLimits
    software_floor_steps: tuple[int, ...]
    n_steps: int
    _blocks: tuple[_Block | None, ...]

    def step_index(self, technique_index: int, loop: int) -> int:
        """The program's executed step index of a point tagged (``technique_index``, ``loop``).
        Raises ValueError if no executed step has that tag."""
        return int(self.step_indices(np.array([technique_index]), np.array([loop]))[0])

    def step_indices(self, technique_index: np.ndarray, loop: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`step_index` (int64 array of the inputs' shape)."""
        ti = np.asarray(technique_index, dtype=np.int64)
        lp = np.asarray(loop, dtype=np.int64)
        table = np.array([(b.first, b.body, b.base, b.loop0, b.passes) if b else (-1, 0, -1, 0, 0)
                          for b in self._blocks], dtype=np.int64)
        bad = (ti < 0) | (ti >= len(table))
        rows = table[np.clip(ti, 0, len(table) - 1)]
        first, body, base, loop0, passes = rows.T
        pass_ = lp - loop0
        bad |= (body == 0) | (pass_ < 0) | (pass_ >= passes)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"no program step runs as technique {int(ti[k])} at loop {int(lp[k])}")
        return base + pass_ * body + (ti - first)

    def to_json(self) -> str:
        """The compiled program as text (the "native program" a run file stores): techniques
        and safety limits with their ECC parameter names, and the step map."""
        return json.dumps({
            "format": JSON_FORMAT,
            "techniques": _TECHNIQUES.dump_python(list(self.techniques), mode="json", by_alias=True),
            "safety": self.safety.model_dump(mode="json", by_alias=True),
            "software_floor_steps": list(self.software_floor_steps), "n_steps": self.n_steps,
            "blocks": [asdict(b) if b else None for b in self._blocks]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> BiologicProgram:
        """Read :meth:`to_json`'s text back. Raises ValueError (one line) if it is not that."""
        try:
            data = json.loads(text)
            if data.get("format") != JSON_FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, not {JSON_FORMAT!r}")
            return cls(tuple(_TECHNIQUES.validate_python(data["techniques"])),
                       ChannelSafetyLimits.model_validate(data["safety"]), tuple(data["software_floor_steps"]),
                       int(data["n_steps"]), tuple(_Block(**b) if b else None for b in data["blocks"]))
        except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"not a compiled Biologic program: {first}") from None

    def end_reason(self, status: ChannelStatus) -> str | None:
        """The run's end in the engine's words: ``finished``, ``safety_limit``, ``short``
        (the only *stop* limit tests compiled here are the short floor's) or ``stopped``;
        None while the channel runs."""
        return {EndReason.NONE: None, EndReason.FINISHED: "finished", EndReason.SAFETY_LIMIT: "safety_limit",
                EndReason.LIMIT_STOP: "short", EndReason.STOPPED: "stopped"}[status.end_reason]


def compile_program(program: ProgramLike) -> BiologicProgram:
    """The technique list and safety limits that run ``program`` on one channel.

    Raises BiologicCompileError naming the program step (or ``safety``) that BioLogic cannot
    express: a kind other than rest and constant current, a current above the 1 A range, a
    step with neither a duration nor a charge stop that would never end without a voltage
    stop, a voltage window beyond ±10 V.
    """
    limits = program.safety
    try:
        e_range = e_range_for(limits.max_abs_voltage_V)
    except ValueError as exc:
        raise BiologicCompileError(f"safety.max_abs_voltage_V: {exc}") from None
    detection = program.short_detection
    floor_V = detection.floor_V if detection.enabled and program.end_run_on_short and detection.floor_V > 0 else None
    settle_s = detection.settle_s
    techniques: list[OCV | CP | CA | Loop] = []
    blocks: list[_Block | None] = []
    software_floor: list[int] = []
    n_steps = loop0 = 0
    all_blocks = step_blocks(program)
    before: StepLike | None = None  # the step before (a CV's direction and current range follow it)
    for number, ((index, body, passes, _loop), entry) in enumerate(zip(all_blocks, program.steps)):
        first = len(techniques)
        until = getattr(entry, "until", None) if entry.kind == "loop" else None
        if until is not None and number != len(all_blocks) - 1:
            raise BiologicCompileError(f"step {index} (loop until {until.kind}): on BioLogic a loop with until must be "
                                       "the program's last entry (a technique list cannot jump out of a Loop)")
        for k, step in enumerate(body):
            if step.kind == "constant_voltage":
                technique, floor_in_software = _ca(index + k, step, before, limits.max_abs_current_A, e_range), False  # type: ignore[arg-type]
            else:
                technique, floor_in_software = _technique(index + k, step, floor_V, settle_s, e_range, until)
            before = step
            techniques.append(technique)
            blocks.append(_Block(first, len(body), index, loop0, passes))
            if floor_in_software:
                software_floor.append(index + k)
        if passes > 1:
            techniques.append(Loop(repeat_count=passes - 1, target_index=first))
            blocks.append(None)
            loop0 += passes - 1
        n_steps = index + len(body) * passes
    safety = ChannelSafetyLimits(ewe_max_V=limits.max_abs_voltage_V, ewe_min_V=-limits.max_abs_voltage_V,
                                 abs_current_max_A=limits.max_abs_current_A)
    return BiologicProgram(tuple(techniques), safety, tuple(software_floor), n_steps, tuple(blocks))


def _ca(index: int, cv: ConstantVoltageLike, before: StepLike | None, max_current_A: float, e_range: ERange) -> CA:
    """A constant-voltage step as a one-step CA (CALIMIT with its current tests)."""
    where = step_name(index, cv)
    prev_current = getattr(before, "current_A", 0.0) if before is not None and before.kind == "constant_current" else 0.0
    direction = getattr(cv, "direction", None)
    sign = (-1.0 if direction == "discharge" else 1.0) if direction is not None else (-1.0 if prev_current < 0 else 1.0)
    if cv.duration_s is None:
        raise BiologicCompileError(f"{where}: a BioLogic CA step needs a Duration_step; give duration_s as well as the "
                                   "current stop")
    if cv.stop_charge_C is not None:
        raise BiologicCompileError(f"{where}: a BioLogic CA step has no charge limit test (stop_charge_C)")
    tests = []
    if cv.stop_current_below_A is not None:
        tests.append(LimitTest(variable="I", comparison="<" if sign > 0 else ">", value=sign * cv.stop_current_below_A))
    if cv.stop_current_above_A is not None:
        tests.append(LimitTest(variable="I", comparison=">" if sign > 0 else "<", value=sign * cv.stop_current_above_A))
    try:
        i_range = i_range_for(abs(prev_current) if prev_current else max_current_A)
        return CA(steps=(CAStep(voltage_V=cv.voltage_V, duration_s=cv.duration_s, limits=tuple(tests),
                                exit_condition=ExitCondition.NEXT_TECHNIQUE),),
                  record_every_dT_s=cv.record_interval_s, i_range=i_range, e_range=e_range)
    except ValueError as exc:
        raise BiologicCompileError(f"{where}: {exc}") from None


def _technique(index: int, step: StepLike, floor_V: float | None, settle_s: float,
               e_range: ERange, until: object | None = None) -> tuple[OCV | CP, bool]:
    """One program step's technique, and whether its short floor is left to the engine."""
    if step.kind not in ("rest", "constant_current"):
        raise BiologicCompileError(f"step {index} ({step.kind}): not supported on BioLogic yet")
    where = step_name(index, step)
    cc: ConstantCurrentLike | None = step if step.kind == "constant_current" else None  # type: ignore[assignment]
    voltage_tests = []
    above, below = getattr(step, "stop_voltage_above_V", None), getattr(step, "stop_voltage_below_V", None)
    if above is not None:
        voltage_tests.append(LimitTest(comparison=">", value=above))
    if below is not None:
        voltage_tests.append(LimitTest(comparison="<", value=below))
    kind = getattr(until, "kind", "short")
    if kind != "short" and not voltage_tests:
        # Leaving the last loop ends the run: the channel stops itself at the condition.
        stop_test = LimitTest(comparison=">" if kind == "voltage_above" else "<", value=until.voltage_V)  # type: ignore[union-attr]
        current = cc.current_A if cc is not None else 0.0
        duration = step.duration_s
        if cc is not None and cc.stop_charge_C is not None and current:
            duration = cc.stop_charge_C / abs(current) if duration is None else min(duration, cc.stop_charge_C / abs(current))
        if duration is None:
            raise BiologicCompileError(f"{where}: a BioLogic CP step needs a Duration_step")
        try:
            i_range = i_range_for(current)
        except ValueError as exc:
            raise BiologicCompileError(f"{where}: {exc}") from None
        cp_step = CPStep(current_A=current, duration_s=duration, limits=(stop_test,), exit_condition=ExitCondition.STOP)
        return CP(steps=(cp_step,), record_every_dT_s=step.record_interval_s, i_range=i_range, e_range=e_range), \
            floor_V is not None and current != 0
    current_A = cc.current_A if cc is not None else 0.0
    duration_s = step.duration_s
    if cc is not None and cc.stop_charge_C is not None and current_A != 0:
        by_charge = cc.stop_charge_C / abs(current_A)
        duration_s = by_charge if duration_s is None else min(duration_s, by_charge)
    if duration_s is None and not voltage_tests:
        raise BiologicCompileError(f"{where}: a 0 A step needs duration_s (its charge stop is never reached)")
    if current_A == 0 and not voltage_tests:
        return OCV(rest_time_s=duration_s, record_every_dT_s=step.record_interval_s, e_range=e_range), False
    if duration_s is None:
        raise BiologicCompileError(f"{where}: a BioLogic CP step needs a Duration_step; give duration_s or "
                                   "stop_charge_C as well as the voltage stop")
    try:
        i_range = i_range_for(current_A)
    except ValueError as exc:
        raise BiologicCompileError(f"{where}: {exc}") from None
    record_s = step.record_interval_s
    technique = {"record_every_dT_s": record_s, "i_range": i_range, "e_range": e_range}
    if floor_V is None or current_A == 0:
        return CP(steps=(CPStep(current_A=current_A, duration_s=duration_s, limits=tuple(voltage_tests)),),
                  **technique), False
    settle = record_s * math.ceil(settle_s / record_s - 1e-9) if settle_s > 0 else 0.0
    floor = LimitTest(comparison="<", value=floor_V) if current_A > 0 else LimitTest(comparison=">", value=-floor_V)
    if not voltage_tests and settle == 0:
        return CP(steps=(CPStep(current_A=current_A, duration_s=duration_s, limits=(floor,),
                                exit_condition=ExitCondition.STOP),), **technique), False
    if voltage_tests or settle >= duration_s:
        return CP(steps=(CPStep(current_A=current_A, duration_s=duration_s, limits=tuple(voltage_tests)),),
                  **technique), True
    return CP(steps=(CPStep(current_A=current_A, duration_s=settle),
                     CPStep(current_A=current_A, duration_s=duration_s - settle, limits=(floor,),
                            exit_condition=ExitCondition.STOP)), **technique), False
