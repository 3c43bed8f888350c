"""Compile a labctl step program into a NEWARE step file (:class:`drivers.neware.StepFile`).

The mapping (units: ``drivers/neware_stepfile.py``; sign: + = charge = plating onto the
working electrode, as in the step program):

* ``Rest`` → rest (Step_Type 4) for ``duration_s``; a ``ConstantCurrent`` at 0 A is a rest too;
* ``ConstantCurrent`` → CC charge (1) for ``current_A`` > 0, CC discharge (2) for < 0, with
  ``duration_s`` → ``Time``, ``stop_charge_C`` → ``Cap`` (mA·s) and the voltage stop in the
  step's direction → ``Stop_Volt``: ``stop_voltage_above_V`` on a charge,
  ``stop_voltage_below_V`` on a discharge. A NEWARE CC step has no stop in the other
  direction, so a program asking for one is refused (:class:`drivers.neware.StepFileError`
  naming the step);
* every step keeps its ``record_interval_s`` (per-step ``Record``);
* ``SafetyLimits`` → the test-wide ``Protect``: voltage within ±``max_abs_voltage_V``,
  current within ±``max_abs_current_A``;
* short detection's floor (``ShortDetection.floor_V``, when enabled and the run ends on a
  short) → a per-step ``Protect`` on each CC step: a lower voltage limit of +floor on a
  charge, an upper limit of −floor on a discharge. A hard short (V = I·R_short) then ends
  the test in the cycler itself, with status ``protect``, even while no PC is watching.
  The running-mean drop and noise tests stay with the engine, which sees the points.
* consecutive repeats of a block of steps are folded into one block and a cycle step
  (:func:`drivers.neware.fold_repeats`); the order of execution is unchanged, so the n-th
  step the channel executes (``downloadStepLayer``'s ``stepindex`` n) is program step n − 1.
"""

from __future__ import annotations

from collections import Counter

from drivers.neware import ConstantCurrent as NewareCC
from drivers.neware import Protection, StepFile, StepFileError
from drivers.neware import Rest as NewareRest
from drivers.neware import fold_repeats
from labctl.engine.steps import ConstantCurrent, Rest, StepProgram


def compile_program(program: StepProgram, *, remark: str = "", fold: bool = True) -> StepFile:
    """The NEWARE step file that runs ``program`` on one channel.

    ``remark`` goes into the file's ``Remark`` header (BTS shows it; aurora uses the sample
    name). ``fold=False`` keeps one NEWARE step per program step.

    Raises StepFileError naming the program step that NEWARE cannot express.
    """
    floor_V = None
    detection = program.short_detection
    if detection.enabled and program.end_run_on_short and detection.floor_V > 0:
        floor_V = detection.floor_V
    steps = [_step(index, step, floor_V) for index, step in enumerate(program.steps)]
    limits = program.safety
    protection = Protection(voltage_upper_V=limits.max_abs_voltage_V, voltage_lower_V=-limits.max_abs_voltage_V,
                            current_upper_mA=limits.max_abs_current_A * 1e3,
                            current_lower_mA=-limits.max_abs_current_A * 1e3)
    default_interval = Counter(step.record_interval_s for step in program.steps).most_common(1)[0][0]
    return StepFile(fold_repeats(steps) if fold else steps, protection=protection,
                    record_interval_s=default_interval, remark=remark)


def _step(index: int, step: Rest | ConstantCurrent, floor_V: float | None) -> NewareRest | NewareCC:
    where = f"step {index}" + (f" ({step.label})" if step.label else "")
    if isinstance(step, Rest) or step.current_A == 0:
        if step.duration_s is None:
            raise StepFileError(f"{where}: a 0 A step needs duration_s to run as a NEWARE rest")
        return NewareRest(time_s=step.duration_s, record_interval_s=step.record_interval_s)
    charge = step.current_A > 0
    wrong_way = step.stop_voltage_below_V if charge else step.stop_voltage_above_V
    if wrong_way is not None:
        direction = ("charge", "stop_voltage_below_V") if charge else ("discharge", "stop_voltage_above_V")
        raise StepFileError(f"{where}: a NEWARE CC {direction[0]} cannot stop on {direction[1]} "
                            f"(Stop_Volt is reached from {'below' if charge else 'above'} only)")
    return NewareCC(
        current_mA=step.current_A * 1e3,
        time_s=step.duration_s,
        stop_voltage_V=step.stop_voltage_above_V if charge else step.stop_voltage_below_V,
        stop_capacity_mAs=step.stop_charge_C * 1e3 if step.stop_charge_C is not None else None,
        record_interval_s=step.record_interval_s,
        protect_voltage_lower_V=floor_V if charge and floor_V is not None else None,
        protect_voltage_upper_V=-floor_V if not charge and floor_V is not None else None,
    )
