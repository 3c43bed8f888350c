"""Compile a step program into a NEWARE step file (:class:`drivers.neware.StepFile`).

The program is read by structure (:class:`drivers.base.ProgramLike`), its entries told apart
by ``kind``; any kind but ``rest``, ``constant_current``, ``constant_voltage`` and ``loop`` is
refused naming the step (:class:`drivers.neware.StepFileError`). The mapping (units:
:mod:`drivers.neware.stepfile`; sign: + = charge = plating onto the working electrode, as in
the step program):

* ``rest`` → rest (Step_Type 4) for ``duration_s``; a ``constant_current`` at 0 A is a rest
  too; a voltage stop (a rest until a voltage) → a jump condition to the next step
  (``Cnd``: V > ``stop_voltage_above_V`` or V < ``stop_voltage_below_V``);
* ``constant_voltage`` → CV charge (Step_Type 3) or CV discharge (19): ``Volt``, ``Stop_Curr``
  = ``stop_current_below_A``, ``Time``, ``Cap``; charge or discharge is the step's
  ``direction`` (else that of the constant-current step before it, else a charge) and the
  current limit ``Curr`` the preceding CC's current (the CC half of a CC-CV; without one
  ``safety.max_abs_current_A``); ``stop_current_above_A`` → a jump condition
  on the current in the step's direction;
* ``constant_current`` → CC charge (1) for ``current_A`` > 0, CC discharge (2) for < 0, with
  ``duration_s`` → ``Time``, ``stop_charge_C`` → ``Cap`` (mA·s) and the voltage stop in the
  step's direction → ``Stop_Volt``: ``stop_voltage_above_V`` on a charge,
  ``stop_voltage_below_V`` on a discharge. A NEWARE CC step has no stop in the other
  direction, so a program asking for one is refused (:class:`drivers.neware.StepFileError`
  naming the step);
* every step keeps its ``record_interval_s`` (per-step ``Record``);
* ``safety`` → the test-wide ``Protect``: voltage within ±``max_abs_voltage_V``,
  current within ±``max_abs_current_A``;
* short detection's floor (``short_detection.floor_V``, when enabled and the run ends on a
  short) → a per-step ``Protect`` on each CC step: a lower voltage limit of +floor on a
  charge, an upper limit of −floor on a discharge. A hard short (V = I·R_short) then ends
  the test in the cycler itself, with status ``protect``, even while no PC is watching. The
  ``Protect`` delay is the detection's ``settle_s``: a limit must hold that long, so the
  reversal transient (the step's first point still has the last half-cycle's sign) does not
  trip it. The running-mean drop and noise tests stay with the engine, which sees the points.
* a loop's ``until`` (``voltage_above``/``voltage_below``) → a jump condition on every step of
  its body to the End step: the channel leaves the loop, and the test, at the first point past
  the voltage, even with no PC watching. NEWARE has no firmware equivalent of the engine's short
  detection, so ``until: short`` is the engine's decision (it stops the channel; the
  floor's per-step ``Protect`` stays as the hardware backstop). Either way the loop must be
  the program's last entry: a jump out of a loop in the middle of a program would make the
  channel's n-th step another program step than the engine counts;
* a ``loop`` → its steps and a cycle step (Step_Type 5) with ``Cycle_Count`` = ``count``;
  between loops, consecutive repeats of a block of steps are folded the same way
  (:func:`drivers.neware.fold_repeats`). The order of execution is unchanged, so the n-th
  step the channel executes (``downloadStepLayer``'s ``stepindex`` n) is the program's
  executed-step index n − 1 (:func:`drivers.base.step_blocks`).
"""

from __future__ import annotations

from collections import Counter

from drivers.base import ConstantCurrentLike, ConstantVoltageLike, ProgramLike, StepLike, step_blocks, step_name
from drivers.neware.stepfile import JUMP_END, Condition, Cycle, Protection, StepFile, StepFileError, fold_repeats
from drivers.neware.stepfile import ConstantCurrent as NewareCC
from drivers.neware.stepfile import ConstantVoltage as NewareCV
from drivers.neware.stepfile import Rest as NewareRest

__all__ = ["compile_program"]


def compile_program(program: ProgramLike, *, remark: str = "", fold: bool = True) -> StepFile:
    """The NEWARE step file that runs ``program`` on one channel.

    ``remark`` goes into the file's ``Remark`` header (BTS shows it; aurora uses the sample
    name). ``fold=False`` keeps one NEWARE step per program step.

    Raises StepFileError naming the program step that NEWARE cannot express: a kind other
    than rest and constant current, or a voltage stop a CC step cannot have.
    """
    floor_V = None
    detection = program.short_detection
    if detection.enabled and program.end_run_on_short and detection.floor_V > 0:
        floor_V = detection.floor_V
    out: list[NewareRest | NewareCC | NewareCV | Cycle] = []
    pending: list[NewareRest | NewareCC | NewareCV] = []
    intervals: Counter[float] = Counter()  # executed steps per record interval, in order of first use

    def flush() -> None:
        out.extend(fold_repeats(pending, first_step=len(out) + 1) if fold else pending)
        pending.clear()

    blocks = step_blocks(program)
    before: StepLike | None = None  # the step written before (a CV step's direction follows it)
    for number, (block, entry) in enumerate(zip(blocks, program.steps)):
        exits = _loop_exits(block.first_index, entry, last=number == len(blocks) - 1)
        steps = []
        for k, step in enumerate(block.body):
            steps.append(_step(block.first_index + k, step, floor_V, before, program.safety.max_abs_current_A, exits))
            before = step
        for step in block.body:
            intervals[step.record_interval_s] += block.passes
        if block.loop:
            flush()
            start = len(out) + 1
            out.extend(steps)
            if block.passes > 1:
                out.append(Cycle(start_step=start, cycle_count=block.passes))
        else:
            pending.extend(steps)
    flush()
    limits = program.safety
    # A limit must hold for the detection's settling time before it trips: the first point of a
    # step after a current reversal still shows the last half-cycle's polarisation (V of the
    # wrong sign for a few ms on a real cell) and would trip the per-step floor at once.
    protection = Protection(voltage_upper_V=limits.max_abs_voltage_V, voltage_lower_V=-limits.max_abs_voltage_V,
                            current_upper_mA=limits.max_abs_current_A * 1e3,
                            current_lower_mA=-limits.max_abs_current_A * 1e3,
                            delay_s=detection.settle_s if floor_V is not None and detection.settle_s > 0 else None)
    return StepFile(out, protection=protection, record_interval_s=intervals.most_common(1)[0][0], remark=remark)


def _loop_exits(first_index: int, entry: object, *, last: bool) -> tuple[Condition, ...]:
    """The jump conditions a loop's ``until`` puts on each step of its body (none for a short:
    the engine decides). Raises StepFileError for a loop with ``until`` that is not last."""
    until = getattr(entry, "until", None) if getattr(entry, "kind", "") == "loop" else None
    if until is None:
        return ()
    if not last:
        raise StepFileError(f"step {first_index} (loop until {until.kind}): on NEWARE a loop with until must be the "
                            "program's last entry (leaving it ends the test)")
    if until.kind == "voltage_above":
        return (Condition("voltage", ">", until.voltage_V, JUMP_END),)
    if until.kind == "voltage_below":
        return (Condition("voltage", "<", until.voltage_V, JUMP_END),)
    return ()


def _step(index: int, step: StepLike, floor_V: float | None, previous: StepLike | None, max_current_A: float,
          exits: tuple[Condition, ...]) -> NewareRest | NewareCC | NewareCV:
    where = step_name(index, step)
    if step.kind not in ("rest", "constant_current", "constant_voltage"):
        raise StepFileError(f"step {index} ({step.kind}): not supported on NEWARE yet")
    if step.kind == "constant_voltage":
        return _cv(where, step, previous, max_current_A, exits)  # type: ignore[arg-type]
    if step.kind == "rest" or step.current_A == 0:  # type: ignore[attr-defined]
        if step.duration_s is None:
            raise StepFileError(f"{where}: a 0 A step needs duration_s to run as a NEWARE rest")
        stops = []
        above, below = getattr(step, "stop_voltage_above_V", None), getattr(step, "stop_voltage_below_V", None)
        if above is not None:
            stops.append(Condition("voltage", ">", above))
        if below is not None:
            stops.append(Condition("voltage", "<", below))
        return NewareRest(time_s=step.duration_s, record_interval_s=step.record_interval_s,
                          conditions=(*exits, *stops))
    cc: ConstantCurrentLike = step  # type: ignore[assignment]
    charge = cc.current_A > 0
    wrong_way = cc.stop_voltage_below_V if charge else cc.stop_voltage_above_V
    if wrong_way is not None:
        direction = ("charge", "stop_voltage_below_V") if charge else ("discharge", "stop_voltage_above_V")
        raise StepFileError(f"{where}: a NEWARE CC {direction[0]} cannot stop on {direction[1]} "
                            f"(Stop_Volt is reached from {'below' if charge else 'above'} only)")
    return NewareCC(
        current_mA=cc.current_A * 1e3,
        time_s=cc.duration_s,
        stop_voltage_V=cc.stop_voltage_above_V if charge else cc.stop_voltage_below_V,
        stop_capacity_mAs=cc.stop_charge_C * 1e3 if cc.stop_charge_C is not None else None,
        record_interval_s=cc.record_interval_s,
        protect_voltage_lower_V=floor_V if charge and floor_V is not None else None,
        protect_voltage_upper_V=-floor_V if not charge and floor_V is not None else None,
        conditions=exits,
    )


def _cv(where: str, cv: ConstantVoltageLike, previous: StepLike | None, max_current_A: float,
        exits: tuple[Condition, ...]) -> NewareCV:
    """A CV step: its direction and current limit from the CC step before it (a CC-CV)."""
    prev_current = getattr(previous, "current_A", 0.0) if previous is not None and previous.kind == "constant_current" else 0.0
    direction = getattr(cv, "direction", None)
    charge = direction == "charge" if direction is not None else prev_current >= 0
    limit_A = abs(prev_current) if prev_current else max_current_A
    stops = []
    if cv.stop_current_above_A is not None:
        stops.append(Condition("current", ">" if charge else "<",
                               cv.stop_current_above_A if charge else -cv.stop_current_above_A))
    try:
        return NewareCV(voltage_V=cv.voltage_V, current_limit_mA=limit_A * 1e3, charge=charge, time_s=cv.duration_s,
                        stop_current_mA=cv.stop_current_below_A * 1e3 if cv.stop_current_below_A is not None else None,
                        stop_capacity_mAs=cv.stop_charge_C * 1e3 if cv.stop_charge_C is not None else None,
                        record_interval_s=cv.record_interval_s, conditions=(*exits, *stops))
    except StepFileError as exc:
        raise StepFileError(f"{where}: {exc}") from None
