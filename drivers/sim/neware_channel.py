"""One simulated NEWARE channel: runs a step file on a Li | SSE | Li cell in simulated time.

The channel is the cycler's firmware: it sequences the steps, checks their end conditions
and the protection limits, and stores points, whether or not a client is connected. Time is
the caller's (seconds, monotonic, possibly accelerated): :meth:`ChannelModel.advance` brings
the channel up to a given instant, and the result does not depend on how often it is called.

What it does, per step:

* a point at the step's start, every record interval (the step's ``Record`` or the file's),
  and at the step's end, like the BTS (the captured step layer numbers each step's points
  from its start point to its end point, ``cyclers-data-formats.md`` §1.2);
* time and capacity (``Cap``) end conditions at their exact instant; ``Stop_Volt``
  (rising on a charge, falling on a discharge), the step's jump conditions (``Cnd``: checked
  first; the step ends and the channel goes to the condition's step), the step's ``Protect``
  voltages and the test-wide ``Protect`` limits at each point — the voltage is sampled when a
  point is stored, so a crossing is seen at the next point (real channels sample faster than
  they record; the record interval is the simulator's sampling interval);
* a CV step holds its ``Volt`` with the current limited to ``Curr`` (the cell then runs at
  the limit, below the set voltage, as a CC-CV channel does at the start of its CV), the
  current recomputed every :data:`CV_SUBSTEP_S` at most; it ends on |I| ≤ ``Stop_Curr``, its
  ``Cap`` or its ``Time``;
* a protection trip ends the test with status ``protect`` and the current off; a cycle step
  jumps back and increments the cycle id; the end step (or the last step) ends the test with
  status ``finish``; ``stop`` ends it with status ``stop``.

The cell is any :class:`drivers.sim.smu.Load` (``advance``, ``voltage_V``, ``current_A``): by
default :class:`drivers.sim.physics.cell.SymmetricCell` — above its CCD a filament grows and
the cell soft- then hard-shorts (V = I·R_short) —, or a full cell, a Li | Cu cell … of
:mod:`drivers.sim.physics`. A cycler does not know a short from a healthy cell; only a limit
ends the test (e.g. a per-step ``Protect`` lower voltage on a charge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from typing import Any

from drivers.sim.neware_stepfile import SimStep, SimStepFile

#: Log codes seen in the captured ``downloadlog`` reply (aurora-neware ``tests/mocks.py``):
#: 100000 at the first point of a test and 100001 at the last point of a finished one;
#: ``inquire`` reports 102000 while a channel works and 0 otherwise.
LOG_TEST_STARTED = 100000
LOG_TEST_FINISHED = 100001
LOG_WORKING = 102000

_EPS_S = 1e-9
#: Longest interval over which a CV step's current is held constant while the cell is
#: integrated (s): the current follows the cell's relaxation (time constants of minutes).
CV_SUBSTEP_S = 2.0
_CV_KINDS = ("cv", "dcv")


@dataclass(slots=True)
class Point:
    """A stored point: ``step_time_s`` since the step began, ``test_time_s`` since the test
    began; ``capacity_Ah``/``energy_Wh`` of the step (unsigned)."""

    seq_id: int
    step_id: int
    cycle_id: int
    step_type: str
    step_time_s: float
    test_time_s: float
    voltage_V: float
    current_A: float
    capacity_Ah: float
    energy_Wh: float


@dataclass(slots=True)
class StepRow:
    """One executed step (the step layer)."""

    start_seq_id: int
    end_seq_id: int
    step_index: int
    step_id: int
    cycle_id: int
    step_type: str
    step_time_s: float
    end_test_time_s: float
    start_voltage_V: float
    end_voltage_V: float
    start_current_A: float
    end_current_A: float
    capacity_Ah: float
    energy_Wh: float


@dataclass
class Test:
    """One run of a step file on the channel."""

    test_id: int
    barcode: str
    start_s: float
    """Simulated time at which it started (the channel's clock)."""
    points: list[Point] = field(default_factory=list)
    steps: list[StepRow] = field(default_factory=list)
    log: list[tuple[int, int, float]] = field(default_factory=list)
    """(seq_id, log_code, test_time_s)."""
    end_reason: str = ""


class ChannelModel:
    """A channel with its cell. Not thread-safe: the BTS simulator serialises access.

    ``status`` is one of ``stop`` (never run, or stopped), ``working``, ``finish``,
    ``protect``.
    """

    def __init__(self, cell: Any) -> None:
        self.cell = cell
        self.status = "stop"
        self.tests: dict[int, Test] = {}
        self.test: Test | None = None
        self.flag = False
        """Set by a protection trip, cleared by ``clearflag``."""
        self._program: SimStepFile | None = None

    # -- control ---------------------------------------------------------------------------
    def start(self, program: SimStepFile, test_id: int, barcode: str, t_s: float) -> None:
        """Start ``program`` at simulated time ``t_s`` as test ``test_id``. The caller checks
        that the channel is not working."""
        self._program = program
        self.test = Test(test_id, barcode, t_s)
        self.tests[test_id] = self.test
        self.status = "working"
        self.flag = False
        self._t = t_s
        self._cycle_id = 1
        self._passes: dict[int, int] = {}
        self._step_index = 0
        self._exceeded_since: float | None = None
        self.test.log.append((1, LOG_TEST_STARTED, 0.0))
        self._begin_step(program.start_index)

    def stop(self, t_s: float) -> None:
        """Stop a working channel at ``t_s`` (after catching up to it)."""
        self.advance(t_s)
        if self.status == "working":
            self._integrate(t_s - self._t)
            v = self._measure()
            self._store(v)
            self._close_step(v)
            self._end_test("stop", "stopped by a client")

    # -- the firmware loop -----------------------------------------------------------------
    def advance(self, t_s: float) -> None:
        """Run the channel up to simulated time ``t_s``: every point due by then. The cell is
        integrated from point to point only (and to a stop), never to the instant a client
        happens to ask, so the points do not depend on how often it asks."""
        while self.status == "working" and self._t < t_s - _EPS_S:
            step = self._step
            natural = self._natural_end_rel()
            target_rel = min(self._next_record_rel, natural)
            target = self._step_start + target_rel
            if target > t_s:
                return
            self._integrate(target - self._t)
            self._t = target
            ended = target_rel >= natural - _EPS_S
            v = self._measure()
            if self._protection_tripped(v):
                self._store(v)
                self._close_step(v)
                self.flag = True
                self._end_test("protect", f"protection at step {step.step_id}: V = {v:.6g} V")
                return
            jump = self._condition_jump(v) if step.conditions else False
            if jump is not False:
                self._store(v)
                self._close_step(v)
                self._begin_step(self._index + 1 if jump is None else jump)
                continue
            if step.stop_voltage_V is not None and self._crossed_stop(v):
                ended = True
            if step.kind in _CV_KINDS and self._cv_done():
                ended = True
            self._store(v)
            if ended:
                self._close_step(v)
                self._begin_step(self._index + 1)
            else:
                self._next_record_rel += self._interval

    def _natural_end_rel(self) -> float:
        step = self._step
        end = step.time_s if step.time_s is not None else math.inf
        if step.stop_charge_C is not None and step.current_A and step.kind not in _CV_KINDS:
            end = min(end, self._step_time + (step.stop_charge_C - self._charge_C) / abs(step.current_A))
        return end

    @property
    def _step_time(self) -> float:
        return self._t - self._step_start

    def _integrate(self, dt_s: float) -> None:
        if dt_s <= 0:
            return
        if self._step.kind in _CV_KINDS:
            while dt_s > _EPS_S:
                h = min(dt_s, CV_SUBSTEP_S)
                v, current = self._cv_point()
                self.cell.advance(h, current)
                self._charge_C += abs(current) * h
                self._energy_J += abs(v * current) * h
                self._t += h
                dt_s -= h
            return
        current = self._step.current_A
        self.cell.advance(dt_s, current)
        self._charge_C += abs(current) * dt_s
        self._energy_J += abs(self._last_V * current) * dt_s
        self._t += dt_s

    def _cv_point(self) -> tuple[float, float]:
        """(V, I) of a CV step now: the set voltage, or the current limit when the cell would
        draw more (then V is the cell's at that current)."""
        step = self._step
        current = self.cell.current_A(step.voltage_V)
        if abs(current) > step.current_limit_A:
            current = math.copysign(step.current_limit_A, current)
            return self.cell.voltage_V(current), current
        return step.voltage_V, current

    def _measure(self) -> float:
        if self._step.kind in _CV_KINDS:
            self._last_V, self._last_I = self._cv_point()
        else:
            self._last_V, self._last_I = self.cell.voltage_V(self._step.current_A), self._step.current_A
        return self._last_V

    def _condition_jump(self, v: float) -> int | None | bool:
        """The first of the step's jump conditions met at this point: the index of the step to
        go to, None for the next step; False when none is met."""
        for quantity, comparison, value, target in self._step.conditions:
            x = v if quantity == "voltage" else self._last_I
            met = (x > value if comparison == ">" else x >= value if comparison == ">=" else
                   x < value if comparison == "<" else x <= value)
            if met:
                return target
        return False

    def _cv_done(self) -> bool:
        """A CV step's current (or charge) cut-off is met at this point."""
        step = self._step
        # Stop_Curr of a CV charge: the charging current has fallen to it (a current turned back
        # included); of a CV discharge, the discharging current.
        directed = self._last_I if step.kind == "cv" else -self._last_I
        if step.stop_current_A is not None and directed <= step.stop_current_A:
            return True
        return step.stop_charge_C is not None and self._charge_C >= step.stop_charge_C

    def _crossed_stop(self, v: float) -> bool:
        stop = self._step.stop_voltage_V
        return v >= stop if self._step.current_A > 0 else v <= stop

    def _protection_tripped(self, v: float) -> bool:
        """True once a limit has been exceeded for the protection's delay."""
        p, step, i = self._program.protection, self._step, self._last_I
        exceeded = (
            (p.upper_V is not None and v > p.upper_V) or (p.lower_V is not None and v < p.lower_V)
            or (p.upper_A is not None and i > p.upper_A) or (p.lower_A is not None and i < p.lower_A)
            or (p.charge_upper_C is not None and self._charge_C > p.charge_upper_C)
            or (step.protect_upper_V is not None and v > step.protect_upper_V)
            or (step.protect_lower_V is not None and v < step.protect_lower_V)
        )
        if not exceeded:
            self._exceeded_since = None
            return False
        if self._exceeded_since is None:
            self._exceeded_since = self._t
        return self._t - self._exceeded_since >= p.delay_s - _EPS_S

    # -- steps -----------------------------------------------------------------------------
    def _begin_step(self, index: int) -> None:
        """Enter step ``index`` and the steps after it that end at once: follow cycle and end
        steps, store each step's start point, check its protection and voltage stop."""
        steps = self._program.steps
        while True:
            if index >= len(steps) or steps[index].kind == "end":
                self._end_test("finish", "step file completed")
                return
            step = steps[index]
            if step.kind == "cycle":
                passes = self._passes.get(index, 0) + 1
                if passes < step.cycle_count:
                    self._passes[index] = passes
                    self._cycle_id += 1
                    index = step.start_index
                else:
                    self._passes[index] = 0
                    index += 1
                continue
            self._index = index
            self._step: SimStep = step
            self._step_start = self._t
            self._step_index += 1
            self._charge_C = 0.0
            self._energy_J = 0.0
            self._exceeded_since = None
            self._interval = step.record_interval_s or self._program.record_interval_s
            self._next_record_rel = self._interval
            v = self._measure()
            self._store(v)
            self._step_first_seq = self.test.points[-1].seq_id
            if self._protection_tripped(v):
                self._close_step(v)
                self.flag = True
                self._end_test("protect", f"protection at step {step.step_id}: V = {v:.6g} V")
                return
            jump = self._condition_jump(v) if step.conditions else False
            if jump is not False:
                self._close_step(v)
                index = index + 1 if jump is None else jump
                continue
            cv_done = step.kind in _CV_KINDS and self._cv_done()
            if not cv_done and (step.stop_voltage_V is None or not self._crossed_stop(v)):
                return
            self._close_step(v)
            index += 1

    def _store(self, v: float) -> None:
        test = self.test
        step = self._step
        test.points.append(Point(
            len(test.points) + 1, step.step_id, self._cycle_id, "cv" if step.kind in _CV_KINDS else step.kind,
            self._step_time, self._t - test.start_s, v, self._last_I, self._charge_C / 3600.0, self._energy_J / 3600.0))

    def _close_step(self, v: float) -> None:
        test = self.test
        first = test.points[self._step_first_seq - 1]
        test.steps.append(StepRow(
            self._step_first_seq, len(test.points), self._step_index, self._step.step_id, self._cycle_id,
            "cv" if self._step.kind in _CV_KINDS else self._step.kind, self._step_time, self._t - test.start_s,
            first.voltage_V, v, first.current_A, self._last_I, self._charge_C / 3600.0, self._energy_J / 3600.0))

    def _end_test(self, status: str, reason: str) -> None:
        self.status = status
        self.test.end_reason = reason
        if status == "finish" and self.test.points:
            self.test.log.append((len(self.test.points), LOG_TEST_FINISHED, self._t - self.test.start_s))

    # -- what inquire shows ----------------------------------------------------------------
    def live(self) -> dict[str, float | int | str | None]:
        """The latest stored point as ``inquire`` reports it (the BTS refreshes its live
        values every few seconds, §3.1), or the idle values when not working."""
        if self.status != "working" or not self.test or not self.test.points:
            return {"cycle_id": 1, "step_id": None, "step_type": None, "current_A": 0.0, "voltage_V": 0.0,
                    "capacity_Ah": 0.0, "energy_Wh": 0.0, "total_time_s": 0.0, "step_time_s": 0.0, "log_code": 0}
        p = self.test.points[-1]
        return {"cycle_id": p.cycle_id, "step_id": p.step_id, "step_type": p.step_type, "current_A": p.current_A,
                "voltage_V": p.voltage_V, "capacity_Ah": p.capacity_Ah, "energy_Wh": p.energy_Wh,
                "total_time_s": p.test_time_s, "step_time_s": p.step_time_s, "log_code": LOG_WORKING}
