"""The software-timed executor: a step program on a source-measure unit (Keithley 2400),
with an AFM controller for a tip electrode.

:class:`SoftwareTimedExecutor` runs every step kind of :mod:`labctl.steps` on one channel:

* ``rest``, ``constant_current`` and ``constant_voltage`` steps are timed by the engine: it
  sets the source, reads at the step's record interval on the shared
  :class:`~labctl.engine.clock.Clock`, and checks, per reading, the run's safety limits,
  short circuits and the polarisation limit (:mod:`labctl.checks`) and the step's end
  conditions;
* ``voltage_sweep`` steps run on the instrument itself (the 2400's list sweep and buffer,
  up to 2500 points, abort on compliance), read back in one transfer; readings get test
  times from the instrument's own timestamps. An operator's stop reaches the instrument
  during a sweep: the driver aborts it (``:ABORt``), turns the output off and returns the
  points measured so far;
* ``tip_move`` and ``current_map`` steps place the AFM tip (bias to 0 V first) and, for a
  map, read the current at one bias on each grid point;
* ``impedance``, ``set_temperature`` and ``linear_sweep`` steps run on an impedance analyser,
  a temperature chamber and the instrument's own sweep
  (:mod:`labctl.engine.characterisation`).

The source is in current mode for rests and constant-current steps (voltage compliance =
``safety.max_abs_voltage_V``) and in voltage mode for the others (current compliance =
``safety.max_abs_current_A``); a change of mode between steps configures the new compliance
before the output turns on again (the 2400 driver switches the output off to reconfigure).

A pause holds the cell at 0 A within a timed step (the voltage still recorded; the step's
remaining time runs after the resume; the pause's readings are left out of the step's mean
voltage, which is the mean under the step's own source level) and at 0 V between sweep, move
and map steps (a sweep is never cut).

Safety contract: compliance is configured before the output turns on, and
:meth:`SoftwareTimedExecutor.make_safe` — output off and confirmed, then the tip withdrawn —
runs on every exit path through the lifecycle's run template (normal end, short, safety
trip, reset-failure count, error, lost instrument, Ctrl-C and termination signals, which are
re-raised after the cleanup).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from drivers.base import InstrumentError, InstrumentLost, Reading
from labctl.analysis.switching import reset_seen
from labctl.checks import (
    EndConditions,
    ShortDetector,
    polarisation_message,
    safety_message,
    safety_violation,
    short_message,
)
from labctl.engine.characterisation import CHARACTERISATION_KINDS, CharacterisationSteps
from labctl.engine.clock import Clock
from labctl.engine.lifecycle import EngineState, RunEnd, RunLifecycle, RunOutcome
from labctl.engine.policy import ReconnectPolicy
from labctl.events import (
    READING_COLUMNS,
    Detected,
    Readings,
    RunStarted,
    StepEnded,
    StepStarted,
    StepSummary,
    Subscriber,
)
from labctl.steps import (
    CURRENT_SOURCED,
    SOFTWARE_TIMED,
    UNTIL_REASONS,
    CurrentMap,
    StepProgram,
    TipMove,
    VoltageSweep,
)

if TYPE_CHECKING:
    from drivers.base import TipPositioner

_DTYPES = {c.name: c.dtype for c in READING_COLUMNS}

#: Output-off tries in :meth:`SoftwareTimedExecutor.make_safe` before the run gives up (and its
#: guardian goes on trying).
OUTPUT_OFF_TRIES = 3

#: Step end reasons that end the whole run (the others move on to the next step).
RUN_ENDING_REASONS = frozenset({"short", "soft_short", "polarisation", "safety", "stopped"})


@dataclass(frozen=True)
class ResumePoint:
    """Where a resumed run picks up, read from its run file (see :mod:`labctl.store.recover`).

    ``t_offset_s``: test time at which the resumed part starts (continuous with the file);
    ``charge_C``: cumulative charge so far; ``step_index``: first step to run; if that step was
    cut short by the crash, ``step_elapsed_s`` / ``step_charge_C`` are what it had already
    done and ``step_start_s`` when it began, so only its remainder runs.
    """

    step_index: int
    t_offset_s: float
    charge_C: float = 0.0
    step_elapsed_s: float = 0.0
    step_charge_C: float = 0.0
    step_start_s: float | None = None
    spectra_done: int = 0
    """Impedance spectra already in the file: the resumed run numbers its spectra on from here."""
    previous_reason: str = ""
    """Why the step before ``step_index`` ended ("" if unknown): a step that left its loop by
    the loop's ``until`` makes the resumed run go on after that loop."""


class SoftwareTimedExecutor(CharacterisationSteps, RunLifecycle):
    """Executes step programs on one source-measure channel and publishes the event stream.

    Args:
        smu: the instrument (:class:`drivers.base.SourceMeter`; with voltage-sourced steps
            also :class:`drivers.base.SweepingSourceMeter`).
        clock: the time base shared with (simulated) instruments.
        afm: the tip positioner; required for a program with ``electrode: tip``.
        chamber: the temperature chamber (:class:`drivers.base.TemperatureChamber`); required
            for a program with ``set_temperature`` steps (:mod:`labctl.engine.characterisation`).
        channel: name of the channel group in run files and events.
        subscribers: callables receiving every event, in order, in the executor's thread.
        batch_size: readings per :class:`Readings` event at most.
        publish_interval_s: wall-clock seconds after which a partial batch is published,
            so subscribers (and the file) are never more than this behind.
        reconnect: what to do when the instrument stops answering during a timed step.
    """

    def __init__(
        self,
        smu: Any,
        clock: Clock,
        *,
        afm: TipPositioner | None = None,
        chamber: Any = None,
        channel: str = "ch1",
        subscribers: Iterable[Subscriber] = (),
        batch_size: int = 4096,
        publish_interval_s: float = 0.25,
        reconnect: ReconnectPolicy = ReconnectPolicy(),
    ) -> None:
        super().__init__(channel=channel, subscribers=subscribers)
        self.smu = smu
        self.clock = clock
        self.afm = afm
        self.chamber = chamber
        self.batch_size = batch_size
        self.publish_interval_s = publish_interval_s
        self.reconnect = reconnect
        self._t0 = clock.now()
        self._buffer: dict[str, list] = {c.name: [] for c in READING_COLUMNS}

    # -- the run ----------------------------------------------------------------------------
    def run(self, program: StepProgram, *, start_step: int = 0, resume: ResumePoint | None = None) -> RunOutcome:
        """Run ``program`` from ``start_step`` (or a ``resume`` point) to the end.

        Raises:
            KeyboardInterrupt: re-raised after the output is off and ``RunEnded`` published;
                :attr:`last_outcome` then holds the outcome.
            ValueError: ``start_step`` outside the program, or a tip program without an AFM.
        Instrument errors and subscriber errors do not propagate: they end the run with
        status ``instrument_lost`` or ``error`` (the reason names the instrument address).
        """
        if resume is not None:
            start_step = resume.step_index
        if not 0 <= start_step < program.n_steps:
            raise ValueError(f"start_step {start_step} outside the program's {program.n_steps} steps")
        if program.electrode == "tip" and self.afm is None:
            raise ValueError("a tip-electrode program needs an AFM controller (afm=...)")
        kinds = {step.kind for _i, step, _c in program.iter_steps(start_step)} if program.n_steps < 100_000 else set()
        if "set_temperature" in kinds and self.chamber is None:
            raise ValueError("a program with set_temperature steps needs a temperature chamber (chamber=...)")
        if "impedance" in kinds and not hasattr(self.smu, "measure_impedance"):
            raise ValueError(f"{getattr(self.smu, 'address', 'the instrument')} cannot measure impedance; a program "
                             "with impedance steps needs an impedance-capable instrument (a BioLogic channel)")
        self._n_spectra = resume.spectra_done if resume is not None else 0
        t_offset = resume.t_offset_s if resume else 0.0
        self._t0 = self.clock.now() - t_offset
        self._program = program
        self._resume = resume
        self._mode: str | None = None
        self._lost_since: float | None = None
        # One detector for the run, reset at each step: it carries the cell's healthy noise.
        self._detector = ShortDetector(program.short_detection)
        self._last_publish_wall = time.monotonic()
        self._charge_C = resume.charge_C if resume else 0.0
        self._reset_failures = 0
        self._end_reason = ""
        return self._run_template(lambda: self._body(program, start_step, t_offset))

    def _body(self, program: StepProgram, start_step: int, t_offset: float) -> tuple[str, str]:
        self._publish(RunStarted(t_offset, self.channel, program.model_dump_json(), start_step, time.time()))
        position = start_step
        if self._resume is not None and self._resume.previous_reason and start_step > 0:
            left = program.loop_exit(start_step - 1, self._resume.previous_reason)
            if left is not None and left.first <= start_step < left.end:
                position = left.end  # the crash came right after a step that left its loop
        while position < program.n_steps:
            for index, step, cycle in program.iter_steps(position):
                timed = step.kind in SOFTWARE_TIMED
                if not timed:
                    self._hold_between_steps(index)
                if self.stopping:
                    raise RunEnd("stopped", self._stop_reason or "stopped")
                self._enter_mode("current" if step.kind in CURRENT_SOURCED else "voltage")
                span = program.loop_span(index) if timed else None
                until = span.loop.until if span is not None else None
                summary = (self._timed_step(index, step, cycle, until) if timed
                           else self._instrument_step(index, step, cycle))
                self._summaries.append(summary)
                self._publish(StepEnded(summary.end_s, self.channel, summary))
                left = span if until is not None and summary.reason in UNTIL_REASONS[until.kind] else None
                if left is not None:
                    # The loop's exit condition: go on after the loop (a short here is expected).
                    self._publish(Detected(summary.end_s, self.channel, "loop_exit",
                                           f"loop of steps {left.first}–{left.end - 1} left at step {index} on "
                                           f"{until.describe()}", index))
                    position = left.end
                    break
                if summary.reason in RUN_ENDING_REASONS:
                    if summary.reason in ("short", "soft_short") and not program.end_run_on_short:
                        continue
                    return summary.reason, self._end_reason or self._stop_reason or summary.reason
                limit = program.stop_after_reset_failures
                if limit is not None and self._reset_failures >= limit:
                    return "reset_failures", f"{self._reset_failures} failed resets (limit {limit}) by step {index}"
            else:
                break
        return "completed", "all steps completed"

    def make_safe(self, status: str) -> str:
        """Output off (the driver confirms it by reading ``:OUTP?`` back) — tried
        :data:`OUTPUT_OFF_TRIES` times, reconnecting in between, for an instrument that hangs
        or dropped its link — then the tip withdrawn; what failed, if anything (the guardian
        of :mod:`labctl.app.guardian` then goes on trying). Never raises."""
        problems = []
        try:
            for attempt in Retrying(stop=stop_after_attempt(OUTPUT_OFF_TRIES), wait=wait_fixed(0.5), reraise=True,
                                    retry=retry_if_exception_type(InstrumentError),
                                    before_sleep=lambda _state: self._reconnect_quietly()):
                with attempt:
                    self.smu.output_off()
        except BaseException as exc:  # noqa: BLE001 - every failure must be reported
            problems.append(f"output-off failed on {getattr(self.smu, 'address', '?')} after {OUTPUT_OFF_TRIES} "
                            f"tries: {exc}")
        if self.afm is not None:
            try:
                self.afm.withdraw()
            except BaseException as exc:  # noqa: BLE001
                problems.append(f"withdraw failed on {getattr(self.afm, 'address', '?')}: {exc}")
        return "; ".join(problems)

    def _reconnect_quietly(self) -> None:
        """A new session to the instrument before another output-off try (failures ignored:
        the next try reports them)."""
        try:
            self.smu.reconnect()
        except Exception:  # noqa: BLE001 - the output-off try that follows says what is wrong
            pass

    def _test_time(self) -> float:
        return self.clock.now() - self._t0

    def _after_safe(self) -> None:
        self._flush()

    def _enter_mode(self, mode: str) -> None:
        """Put the source in ``mode`` ("current" or "voltage") at level 0 with its compliance,
        output on (nothing to do when it already is)."""
        if mode == self._mode:
            return
        safety = self._program.safety
        if mode == "current":
            self.smu.configure_current_source(safety.max_abs_voltage_V)
            self.smu.set_current(0.0)
        else:
            self.smu.configure_voltage_source(safety.max_abs_current_A)
            self.smu.set_voltage(0.0)
        self.smu.output_on()
        self._mode = mode

    def _source(self, level: float) -> None:
        """Source ``level`` in the present mode (A in current mode, V in voltage mode)."""
        if self._mode == "voltage":
            self.smu.set_voltage(level)
        else:
            self.smu.set_current(level)

    # -- timed steps: rest, constant current, constant voltage --------------------------------
    def _timed_step(self, index: int, step: Any, cycle: int, until: Any = None) -> StepSummary:
        clock, smu, t0, program = self.clock, self.smu, self._t0, self._program
        done_s, done_C, started_s = 0.0, 0.0, None
        if self._resume is not None and self._resume.step_index == index:
            done_s, done_C, started_s = self._resume.step_elapsed_s, self._resume.step_charge_C, self._resume.step_start_s
            self._resume = None
        voltage_sourced = step.kind == "constant_voltage"
        level = step.voltage_V if voltage_sourced else getattr(step, "current_A", 0.0)
        current_A = 0.0 if voltage_sourced else level
        density = current_A * 1e3 / program.area_cm2
        try:
            self._source(level)
        except InstrumentLost as exc:
            self._reconnect(exc, index, level)
        t_start = clock.now() - t0
        self._publish(StepStarted(t_start, self.channel, index, step.kind, step.label, cycle, current_A))
        detector = self._detector if step.kind == "constant_current" else None
        if detector is not None:
            detector.reset()
        duration = step.duration_s if step.duration_s is not None else math.inf
        v_safe, i_safe = program.safety.max_abs_voltage_V, program.safety.max_abs_current_A
        v_polar = program.polarisation_limit_V if detector is not None else None
        interval = step.record_interval_s
        ends = EndConditions(step)
        end_reason = ends.reason if ends.any else None
        until_met = until.met if until is not None and until.kind != "short" else None
        pause_off = self._resumed.is_set  # clear exactly while a pause is requested or held
        stop_requested = self._stop_requested.is_set
        buf = self._buffer
        b_t, b_v, b_i, b_j, b_q = (buf[k] for k in ("test_time_s", "voltage_V", "current_A", "current_density_mA_cm2", "charge_C"))
        b_s, b_c, b_st = buf["step_index"], buf["cycle_index"], buf["status"]
        area = program.area_cm2

        n = 0
        n_sourced = 0  # readings under the step's own source level: the pause's are not the step's
        v_sum = 0.0
        v_abs_max = 0.0
        v = i = math.nan
        q_step = done_C
        t_prev = t_start
        i_prev = 0.0
        reason = "time"
        next_sample = t_start
        t_end = t_start + duration - done_s
        paused_at: float | None = None
        wake = self._wake
        held_s = 0.0
        # Simulated time (a sped-up or virtual clock) stands still while paused: the cell must
        # not be credited with hours of rest the operator's pause never gave it. In real time
        # the pause is the cell's: its open-circuit voltage is recorded.
        frozen_when_paused = clock.speed != 1.0
        while True:
            if paused_at is not None and frozen_when_paused and not pause_off():
                self._resumed.wait()  # wall time: until the resume or a stop
            else:
                held_s += clock.sleep_until(t0 + next_sample, wake, report_over_s=interval)
            wake.clear()
            if paused_at is None and not pause_off():
                self._hold_at_open_circuit(step)
                paused_at = clock.now() - t0
                self._confirm_paused()
                self._publish(Detected(paused_at, self.channel, "paused", "paused by the operator: 0 A", index))
            elif paused_at is not None and pause_off():
                self._enter_mode("voltage" if voltage_sourced else "current")
                self._source(level)
                resumed_at = clock.now() - t0
                t_end += resumed_at - paused_at
                next_sample = resumed_at  # the reading below is at the resume; the next one interval later
                paused_at = None
                if detector is not None:
                    detector.reset()
                self._publish(Detected(resumed_at, self.channel, "resumed", "resumed", index))
            try:
                reading = smu.read()
            except InstrumentLost as exc:
                self._reconnect(exc, index, 0.0 if paused_at is not None else level)
                continue
            self._lost_since = None
            t = clock.now() - t0
            v, i = reading.voltage_V, reading.current_A
            dq = i_prev * (t - t_prev)
            q_step += dq
            self._charge_C += dq
            t_prev, i_prev = t, i
            n += 1
            if paused_at is None:  # a pause's 0 A readings (open-circuit voltage) are no part of the step's mean
                n_sourced += 1
                v_sum += v
            if abs(v) > v_abs_max:
                v_abs_max = abs(v)
            b_t.append(t)
            b_v.append(v)
            b_i.append(i)
            b_j.append(i * 1e3 / area)
            b_q.append(self._charge_C)
            b_s.append(index)
            b_c.append(cycle)
            b_st.append(reading.status)
            self._n_readings += 1
            # Publish on a wall-clock cadence (and never per step): subscribers and the file are
            # at most publish_interval_s behind, and a fast dry run does not flush per step.
            if len(b_t) >= self.batch_size or time.monotonic() - self._last_publish_wall >= self.publish_interval_s:
                self._flush()  # clears the lists in place; the local aliases stay valid

            unsafe = safety_violation(v, i, v_safe, i_safe, compliance=reading.compliance)
            if unsafe is not None:
                reason = "safety"
                self._end_reason = safety_message(unsafe, v, i, index, v_safe, i_safe)
                self._publish(Detected(t, self.channel, "compliance" if unsafe == "compliance" else "safety",
                                       self._end_reason, index))
                break
            if stop_requested():
                reason = "stopped"
                self._end_reason = self._stop_reason or "stopped"
                break
            if paused_at is None:
                if detector is not None:
                    found = detector.update(v, i, t)
                    if found is not None:
                        reason = found[0]
                        self._end_reason = short_message(reason, density, t, index, found[1])
                        self._publish(Detected(t, self.channel, reason, self._end_reason, index))
                        break
                    if v_polar is not None and abs(v) > v_polar:
                        reason = "polarisation"
                        self._end_reason = polarisation_message(v, v_polar, t, index)
                        self._publish(Detected(t, self.channel, reason, self._end_reason, index))
                        break
                if until_met is not None and until_met(v):
                    reason = "until"  # the loop's exit condition, before the step's own ends
                    break
                ended = "time" if t >= t_end - 1e-9 else end_reason(v, i, q_step) if end_reason else None
                if ended is not None:
                    reason = ended
                    break
                next_sample += interval
                if next_sample > t_end:
                    next_sample = t_end
            else:
                next_sample = t + interval  # paused: keep recording the open-circuit voltage
        if voltage_sourced:
            current_A, density = i, i * 1e3 / area
        if held_s > 0:
            self._publish(Detected(t, self.channel, "stall",
                                   f"the computer fell behind ×{clock.speed:g} in step {index}: {held_s:.4g} s of test "
                                   "time held back (never added to the step; readings at their planned times)", index))
        return StepSummary(
            step_index=index, kind=step.kind, label=step.label, cycle=cycle, current_A=current_A,
            current_density_mA_cm2=density, start_s=t_start if started_s is None else started_s, end_s=t,
            reason=reason, n_points=n, voltage_end_V=v, voltage_mean_V=v_sum / n_sourced if n_sourced else v,
            abs_voltage_max_V=v_abs_max,
            charge_C=q_step, cumulative_charge_C=self._charge_C,
        )

    def _hold_at_open_circuit(self, step: Any) -> None:
        """A pause within a timed step: 0 A (a voltage-sourced step changes to current mode)."""
        if step.kind == "constant_voltage":
            self._enter_mode("current")
        self.smu.set_current(0.0)

    def _reconnect(self, exc: InstrumentLost, index: int, level: float) -> None:
        """Reconnect under :attr:`reconnect`; on success the source is as before the loss.

        Raises:
            InstrumentLost: no answer within ``retry_for_s``, or the policy is not to re-apply.
        """
        policy = self.reconnect
        t = self.clock.now() - self._t0
        self._flush()
        began = time.monotonic()
        if self._lost_since is None:
            self._lost_since = began
        budget_s = policy.budget_s(self._lost_since, began)
        if budget_s <= 0:
            raise exc
        self._publish(Detected(t, self.channel, "instrument_error", f"{exc}; reconnecting", index))
        seen: dict[str, object] = {}
        mode = self._mode

        def attempt() -> None:
            self.smu.reconnect()
            seen.update(self.smu.state())
            self._mode = None  # the instrument may have been reset: configure it again
            if policy.reapply:
                self._enter_mode(mode or "current")
                self._source(level)
            else:
                safety = self._program.safety
                if mode == "voltage":
                    self.smu.configure_voltage_source(safety.max_abs_current_A)
                else:
                    self.smu.configure_current_source(safety.max_abs_voltage_V)

        policy.retry(attempt, budget_s)
        took = time.monotonic() - began
        found = "output on" if seen.get("output_on") else "output off"
        if not policy.reapply:
            raise InstrumentLost(self.smu.address, f"reconnected after {took:.1f} s ({found}); the policy is "
                                                   "to stop: output left off")
        unit = "V" if mode == "voltage" else "A"
        self._publish(Detected(self.clock.now() - self._t0, self.channel, "reconnected",
                               f"reconnected after {took:.1f} s; the instrument had its {found}; "
                               f"compliance and {level:.4g} {unit} re-applied", index))

    def _flush(self) -> None:
        """Publish the buffered readings as one :class:`Readings` batch and start anew."""
        self._last_publish_wall = time.monotonic()
        if not self._buffer["test_time_s"]:
            return
        columns = {name: np.asarray(values, dtype=_DTYPES[name]) for name, values in self._buffer.items()}
        for values in self._buffer.values():
            values.clear()
        self._publish(Readings(self.channel, columns))

    # -- instrument steps: sweeps, tip moves, current maps -------------------------------------
    def _hold_between_steps(self, index: int) -> None:
        """Before a sweep, move or map step: while a pause is requested, hold at 0 V (the
        source's level between such steps) and wait for the resume or a stop."""
        if not self.pause_requested:
            return
        self._confirm_paused()
        self._publish(Detected(self._test_time(), self.channel, "paused", "paused by the operator: 0 V", index))
        self._resumed.wait()
        self._publish(Detected(self._test_time(), self.channel, "resumed", "resumed", index))

    def _instrument_step(self, index: int, step: Any, cycle: int) -> StepSummary:
        if step.kind in CHARACTERISATION_KINDS:
            return self._characterisation_step(index, step, cycle)
        self._flush()  # readings of earlier timed steps go out first, in order
        t_start = self._test_time()
        q_step0 = self._charge_C
        self._publish(StepStarted(t_start, self.channel, index, step.kind, step.label, cycle, 0.0))
        reason = "completed"
        program = self._program
        if isinstance(step, TipMove):
            self.smu.set_voltage(0.0)
            self.afm.withdraw()
            self.afm.move_to_nm(step.x_nm, step.y_nm)
            self.afm.engage(program.contact_force_nN)
            return self._sweep_summary(index, step, cycle, t_start, reason, np.empty(0), np.empty(0), q_step0)
        if isinstance(step, VoltageSweep):
            if self.afm is not None and not self.afm.in_contact:
                raise InstrumentError(self.afm.address, f"step {index}: the tip is not in contact before the sweep")
            readings = self.smu.sweep_voltage(step.points_V, program.safety.max_abs_current_A,
                                              abort_on_compliance=step.abort_on_compliance, nplc=step.nplc,
                                              source_delay_s=step.source_delay_s,
                                              abort=self._stop_requested)  # a stop aborts the sweep at once
            t0_instrument = readings[0].time_s if readings else 0.0
            times = np.array([t_start + r.time_s - t0_instrument for r in readings])
            if len(times):
                self.clock.sleep(float(times[-1]) - self._test_time())  # a virtual clock catches up
            if self.stopping:
                reason = "stopped"  # the sweep was aborted on the instrument: what was measured
            elif step.reset_segment is not None:
                a, b = step.reset_segment
                seg = readings[a:b + 1]
                if not reset_seen([r.voltage_V for r in seg], [r.current_A for r in seg], program.reset_drop_factor):
                    self._reset_failures += 1
                    self._publish(Detected(float(times[-1]), self.channel, "reset_failed",
                                           f"no reset in the positive excursion of step {index} (cycle {cycle}); "
                                           f"{self._reset_failures} so far", index))
        else:
            readings, times = self._map(step)
            if self.stopping:
                reason = "stopped"
        v = np.array([r.voltage_V for r in readings])
        i = np.array([r.current_A for r in readings])
        self._emit(index, cycle, times, v, i, [r.status for r in readings], program.area_cm2)
        if any(r.compliance for r in readings):
            reason = "compliance"
            k = next(n for n, r in enumerate(readings) if r.compliance)
            self._publish(Detected(float(times[k]), self.channel, "compliance",
                                   f"compliance at {v[k]:.4g} V, {i[k]:.4g} A in step {index} ({step.label}); "
                                   f"{'sweep aborted' if getattr(step, 'abort_on_compliance', False) else 'clamped'}",
                                   index))
        v_safe, i_safe = program.safety.max_abs_voltage_V, program.safety.max_abs_current_A
        # Sweep readings may sit exactly at the limits (a point at the voltage limit, a current
        # clamped at compliance): only beyond them by more than the instrument's 0.1 % is unsafe.
        if len(v) and not (np.max(np.abs(v)) <= v_safe * 1.001 and np.max(np.abs(i)) <= i_safe * 1.001):
            reason = "safety"
            k = int(np.argmax(~((np.abs(v) <= v_safe * 1.001) & (np.abs(i) <= i_safe * 1.001))))
            self._end_reason = safety_message("safety limit", float(v[k]), float(i[k]), index, v_safe, i_safe)
            self._publish(Detected(self._test_time(), self.channel, "safety", self._end_reason, index))
        return self._sweep_summary(index, step, cycle, t_start, reason, v, i, q_step0)

    def _map(self, step: CurrentMap) -> tuple[list[Reading], np.ndarray]:
        """Tip in contact, bias on, one reading per grid point; back to 0 V afterwards."""
        readings, times = [], []
        self.smu.set_voltage(0.0)
        self.afm.withdraw()
        try:
            first = True
            for x, y in step.positions_nm():
                if self.state is EngineState.STOPPING:
                    break
                self.afm.move_to_nm(x, y)
                if first:
                    self.afm.engage()
                    self.smu.set_voltage(step.bias_V)
                    first = False
                readings.append(self.smu.read())
                times.append(self._test_time())
        finally:
            self.smu.set_voltage(0.0)
        return readings, np.array(times)

    def _emit(self, index: int, cycle: int, t: np.ndarray, v: np.ndarray, i: np.ndarray, status: list[int],
              area_cm2: float) -> None:
        """Publish one instrument step's readings (charge by the trapezoid rule)."""
        if not len(t):
            return
        dq = np.concatenate([[0.0], 0.5 * (i[1:] + i[:-1]) * np.diff(t)])
        charge = self._charge_C + np.cumsum(dq)
        self._charge_C = float(charge[-1])
        self._n_readings += len(t)
        columns = {"test_time_s": t, "voltage_V": v, "current_A": i, "current_density_mA_cm2": i * 1e3 / area_cm2,
                   "charge_C": charge, "step_index": np.full(len(t), index), "cycle_index": np.full(len(t), cycle),
                   "status": np.asarray(status)}
        self._publish(Readings(self.channel, {k: np.asarray(a, dtype=_DTYPES[k]) for k, a in columns.items()}))

    def _sweep_summary(self, index: int, step: Any, cycle: int, t_start: float, reason: str, v: np.ndarray,
                       i: np.ndarray, q_step0: float) -> StepSummary:
        n = len(v)
        peak = float(i[np.argmax(np.abs(i))]) if n else 0.0
        return StepSummary(
            step_index=index, kind=step.kind, label=step.label, cycle=cycle, current_A=peak,
            current_density_mA_cm2=0.0, start_s=t_start, end_s=self._test_time(), reason=reason, n_points=n,
            voltage_end_V=float(v[-1]) if n else 0.0, voltage_mean_V=float(v.mean()) if n else 0.0,
            abs_voltage_max_V=float(np.max(np.abs(v))) if n else 0.0,
            charge_C=self._charge_C - q_step0, cumulative_charge_C=self._charge_C)


__all__ = ["OUTPUT_OFF_TRIES", "RUN_ENDING_REASONS", "ResumePoint", "SoftwareTimedExecutor"]
