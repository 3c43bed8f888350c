"""The engine: the only place that sequences hardware.

:class:`Engine` runs a :class:`~labctl.steps.StepProgram` on one source-measure
channel, software-timed: it sets the source, reads at each step's record interval on the
shared :class:`~labctl.engine.clock.Clock`, checks end conditions, safety limits and short
circuits, and publishes events to subscribers.

Safety contract: compliance is configured before the output turns on, and the output is
turned off on every exit path — normal end, short, safety trip, error, Ctrl-C
(``KeyboardInterrupt`` is re-raised after the cleanup) and a lost instrument.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from drivers.base import InstrumentLost, SourceMeter
from labctl.engine.clock import Clock
from labctl.checks import ShortDetector
from labctl.engine.lifecycle import EngineState, RunLifecycle, RunOutcome, ending_of
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
from labctl.steps import ConstantCurrent, StepProgram

_DTYPES = {c.name: c.dtype for c in READING_COLUMNS}

#: Endings published as ``Detected`` when they happen (so not again at the run's end).
_ANNOUNCED = frozenset({"completed", "short", "soft_short", "polarisation", "safety"})

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


class Engine(RunLifecycle):
    """Executes step programs on one channel and publishes the event stream.

    Args:
        smu: the instrument, any :class:`drivers.base.SourceMeter`.
        clock: the time base shared with (simulated) instruments.
        channel: name of the channel group in run files and events.
        subscribers: callables receiving every event, in order, in the engine's thread.
        batch_size: readings per :class:`Readings` event at most.
        publish_interval_s: wall-clock seconds after which a partial batch is published,
            so subscribers (and the file) are never more than this behind.
        reconnect: what to do when the instrument stops answering.
    """

    def __init__(
        self,
        smu: SourceMeter,
        clock: Clock,
        *,
        channel: str = "ch1",
        subscribers: Iterable[Subscriber] = (),
        batch_size: int = 4096,
        publish_interval_s: float = 0.25,
        reconnect: ReconnectPolicy = ReconnectPolicy(),
    ) -> None:
        super().__init__(channel=channel, subscribers=subscribers)
        self.smu = smu
        self.clock = clock
        self.batch_size = batch_size
        self.publish_interval_s = publish_interval_s
        self.reconnect = reconnect

    def request_pause(self) -> None:
        """Hold the cell at 0 A (still recording its voltage) until :meth:`request_resume`.

        A paused step's clock stops: its remaining duration runs after the resume.
        """
        super().request_pause()

    # ------------------------------------------------------------------------------------
    def run(self, program: StepProgram, *, start_step: int = 0, resume: ResumePoint | None = None) -> RunOutcome:
        """Run ``program`` from ``start_step`` (or a ``resume`` point) to the end.

        Raises:
            KeyboardInterrupt: re-raised after the output is off and ``RunEnded`` published;
                :attr:`last_outcome` then holds the outcome.
            ValueError: ``start_step`` outside the program.
        Instrument errors and subscriber errors do not propagate: they end the run with
        status ``instrument_lost`` or ``error`` (the reason names the instrument address).
        """
        if resume is not None:
            start_step = resume.step_index
        if not 0 <= start_step < program.n_steps:
            raise ValueError(f"start_step {start_step} outside the program's {program.n_steps} steps")
        self._begin()
        t_offset = resume.t_offset_s if resume else 0.0
        self._t0 = self.clock.now() - t_offset
        self._program = program
        self._lost_since: float | None = None
        self._resume = resume
        # One detector for the run, reset at each step: it carries the cell's healthy noise.
        self._detector = ShortDetector(program.short_detection)
        self._buffer: dict[str, list] = {c.name: [] for c in READING_COLUMNS}
        self._last_publish_wall = time.monotonic()
        self._n_readings = 0
        self._charge_C = resume.charge_C if resume else 0.0
        self._end_reason = ""
        summaries: list[StepSummary] = []
        status, reason = "completed", "all steps completed"
        interrupted: BaseException | None = None
        try:
            self._publish(
                RunStarted(t_offset, self.channel, program.model_dump_json(), start_step, time.time())
            )
            self.smu.configure_current_source(program.safety.max_abs_voltage_V)
            self.smu.set_current(0.0)
            self.smu.output_on()
            for index, step, cycle in program.iter_steps(start_step):
                summary = self._run_step(index, step, cycle, program)
                summaries.append(summary)
                self._publish(StepEnded(summary.end_s, self.channel, summary))
                if summary.reason in RUN_ENDING_REASONS:
                    if summary.reason in ("short", "soft_short") and not program.end_run_on_short:
                        continue
                    status, reason = summary.reason, self._end_reason
                    break
        except (KeyboardInterrupt, Exception) as exc:  # a subscriber or a bug too: end safely, say what it was
            status, reason = ending_of(exc)
            interrupted = exc if isinstance(exc, KeyboardInterrupt) else None
        finally:
            off_error = self._output_off()
        t_end = self.clock.now() - self._t0
        if off_error:
            reason = f"{reason}; {off_error}"
        try:
            self._flush()
        finally:
            outcome = self._conclude(t_end, status, reason, summaries, self._n_readings, announced=_ANNOUNCED)
        if interrupted is not None:
            raise interrupted
        return outcome

    def _output_off(self) -> str | None:
        """Turn the output off; return a message if even that failed."""
        try:
            self.smu.output_off()
        except BaseException as exc:  # noqa: BLE001 - every failure must be reported
            return f"output-off failed on {getattr(self.smu, 'address', '?')}: {exc}"
        return None

    # ------------------------------------------------------------------------------------
    def _run_step(self, index: int, step, cycle: int, program: StepProgram) -> StepSummary:
        clock, smu, t0 = self.clock, self.smu, self._t0
        done_s, done_C, started_s = 0.0, 0.0, None
        if self._resume is not None and self._resume.step_index == index:
            done_s, done_C, started_s = self._resume.step_elapsed_s, self._resume.step_charge_C, self._resume.step_start_s
            self._resume = None
        current_A = step.current_A if isinstance(step, ConstantCurrent) else 0.0
        density = current_A * 1e3 / program.area_cm2
        try:
            smu.set_current(current_A)
        except InstrumentLost as exc:
            self._reconnect(exc, index, current_A)
        t_start = clock.now() - t0
        self._publish(
            StepStarted(t_start, self.channel, index, step.kind, step.label, step.cycle, current_A)
        )
        detector = self._detector if isinstance(step, ConstantCurrent) else None
        if detector is not None:
            detector.reset()
        duration = step.duration_s if step.duration_s is not None else math.inf
        v_above = getattr(step, "stop_voltage_above_V", None)
        v_below = getattr(step, "stop_voltage_below_V", None)
        q_stop = getattr(step, "stop_charge_C", None)
        v_safe = program.safety.max_abs_voltage_V
        v_polar = program.polarisation_limit_V
        i_safe = program.safety.max_abs_current_A
        interval = step.record_interval_s
        buf = self._buffer
        b_t, b_v, b_i, b_j, b_q = (buf[k] for k in ("test_time_s", "voltage_V", "current_A", "current_density_mA_cm2", "charge_C"))
        b_s, b_c, b_st = buf["step_index"], buf["cycle_index"], buf["status"]
        area = program.area_cm2

        n = 0
        v_sum = 0.0
        v_abs_max = 0.0
        v = math.nan
        q_step = done_C
        t_prev = t_start
        i_prev = 0.0
        reason = "time"
        next_sample = t_start
        t_end = t_start + duration - done_s
        paused_at: float | None = None
        wake = self._wake
        while True:
            wait = next_sample - (clock.now() - t0)
            if wait > 0:
                clock.sleep(wait, wake)
            wake.clear()
            if self.state is EngineState.PAUSED and paused_at is None:
                smu.set_current(0.0)
                paused_at = clock.now() - t0
                self._publish(Detected(paused_at, self.channel, "paused", "paused by the operator: 0 A", index))
            elif self.state is not EngineState.PAUSED and paused_at is not None:
                smu.set_current(current_A)
                resumed_at = clock.now() - t0
                t_end += resumed_at - paused_at
                paused_at = None
                if detector is not None:
                    detector.reset()
                self._publish(Detected(resumed_at, self.channel, "resumed", "resumed", index))
            try:
                reading = smu.read()
            except InstrumentLost as exc:
                self._reconnect(exc, index, 0.0 if paused_at is not None else current_A)
                continue
            if self._lost_since is not None:
                self._lost_since = None
            t = clock.now() - t0
            v, i = reading.voltage_V, reading.current_A
            dq = i_prev * (t - t_prev)
            q_step += dq
            self._charge_C += dq
            t_prev, i_prev = t, i
            n += 1
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

            if reading.compliance or abs(v) >= v_safe or abs(i) > i_safe:
                what = "compliance" if reading.compliance else "safety limit"
                reason = "safety"
                self._end_reason = (
                    f"{what}: V = {v:.4g} V, I = {i:.4g} A at step {index} "
                    f"(limits {v_safe:g} V, {i_safe:g} A)"
                )
                self._publish(Detected(t, self.channel, "compliance" if reading.compliance else "safety",
                                       self._end_reason, index))
                break
            if self.state is EngineState.STOPPING:
                reason = "stopped"
                self._end_reason = self._stop_reason or "stopped"
                break
            if paused_at is None:
                if detector is not None:
                    found = detector.update(v, i, t)
                    if found is not None:
                        reason, message = found
                        what = "short circuit" if reason == "short" else "soft short"
                        self._end_reason = f"{what} at {density:.4g} mA cm-2, t = {t:.1f} s (step {index}): {message}"
                        self._publish(Detected(t, self.channel, reason, self._end_reason, index))
                        break
                    if v_polar is not None and abs(v) > v_polar:
                        reason = "polarisation"
                        self._end_reason = (f"polarisation: |V| = {abs(v) * 1e3:.4g} mV exceeds the limit "
                                            f"{v_polar * 1e3:.4g} mV at t = {t:.1f} s (step {index})")
                        self._publish(Detected(t, self.channel, reason, self._end_reason, index))
                        break
                if t >= t_end - 1e-9:
                    reason = "time"
                    break
                if v_above is not None and v >= v_above or v_below is not None and v <= v_below:
                    reason = "voltage"
                    break
                if q_stop is not None and abs(q_step) >= q_stop:
                    reason = "charge"
                    break
                next_sample += interval
                if next_sample > t_end:
                    next_sample = t_end
            else:
                next_sample = t + interval  # paused: keep recording the open-circuit voltage
        return StepSummary(
            step_index=index,
            kind=step.kind,
            label=step.label,
            cycle=cycle,
            current_A=current_A,
            current_density_mA_cm2=density,
            start_s=t_start if started_s is None else started_s,
            end_s=t,
            reason=reason,
            n_points=n,
            voltage_end_V=v,
            voltage_mean_V=v_sum / n,
            abs_voltage_max_V=v_abs_max,
            charge_C=q_step,
            cumulative_charge_C=self._charge_C,
        )

    def _reconnect(self, exc: InstrumentLost, index: int, current_A: float) -> None:
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
        # The budget counts from the first failure since the last good reading, so an
        # instrument that reconnects but never reads again cannot keep the run in limbo.
        budget_s = policy.retry_for_s - (began - self._lost_since)
        if budget_s <= 0:
            raise exc
        self._publish(Detected(t, self.channel, "instrument_error", f"{exc}; reconnecting", index))
        seen: dict[str, object] = {}

        def attempt() -> None:
            self.smu.reconnect()
            seen.update(self.smu.state())
            self.smu.configure_current_source(self._program.safety.max_abs_voltage_V)
            if policy.reapply:
                self.smu.set_current(current_A)
                self.smu.output_on()

        for trial in Retrying(stop=stop_after_delay(budget_s), reraise=True,
                              wait=wait_exponential(multiplier=policy.first_wait_s, max=policy.max_wait_s),
                              retry=retry_if_exception_type(InstrumentLost)):
            with trial:
                attempt()
        took = time.monotonic() - began
        found = "output on" if seen.get("output_on") else "output off"
        if not policy.reapply:
            raise InstrumentLost(self.smu.address, f"reconnected after {took:.1f} s ({found}); the policy is "
                                                   "to stop: output left off")
        self._publish(Detected(self.clock.now() - self._t0, self.channel, "reconnected",
                               f"reconnected after {took:.1f} s; the instrument had its {found}; "
                               f"compliance and {current_A:.4g} A re-applied", index))

    def _flush(self) -> None:
        """Publish the buffered readings as one :class:`Readings` batch and start anew."""
        self._last_publish_wall = time.monotonic()
        if not self._buffer["test_time_s"]:
            return
        columns = {name: np.asarray(values, dtype=_DTYPES[name]) for name, values in self._buffer.items()}
        for values in self._buffer.values():
            values.clear()
        self._publish(Readings(self.channel, columns))
