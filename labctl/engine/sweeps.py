"""The sweep engine: runs a :class:`~labctl.engine.sweep_steps.SweepProgram` with a
source-measure unit that sweeps on its own (a Keithley 2400's list sweep and buffer) and,
for a tip electrode, an AFM controller that places the tip.

It publishes the same event stream as :class:`labctl.engine.software_timed.Engine` (RunStarted,
StepStarted, Readings, Detected, StepEnded, RunEnded), so the run file writer, the progress
view and the notifiers work unchanged. Readings of a sweep get test times from the
instrument's own timestamps (one transfer per sweep). An operator's stop reaches the
instrument during a sweep: the driver aborts it (``:ABORt``), turns the output off and
returns the points measured so far. Under a virtual clock the simulated instrument returns
a sweep at once, and the engine advances the clock to its last reading.

Safety contract, as for the constant-current engine: the current compliance is configured
before the output turns on; the output is turned off and the tip withdrawn on every exit
path (normal end, compliance/safety, reset-failure count, error, lost instrument, Ctrl-C —
``KeyboardInterrupt`` is re-raised after the cleanup).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from drivers.afm import TipPositioner
from drivers.base import InstrumentError, Reading, SweepingSourceMeter
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
from labctl.engine.lifecycle import EngineState, RunEnd, RunLifecycle, RunOutcome, ending_of
from labctl.engine.sweep_steps import CurrentMap, SweepProgram, TipMove, VoltageSweep
from labctl.engine.switching import reset_seen

_DTYPES = {c.name: c.dtype for c in READING_COLUMNS}


class SweepEngine(RunLifecycle):
    """Executes sweep programs on one channel and publishes the event stream.

    Args:
        smu: the source-measure unit (:class:`SweepingSourceMeter`).
        clock: the time base shared with (simulated) instruments.
        afm: the tip positioner; required for a program with ``electrode: tip``.
        channel: channel group name in run files and events.
        subscribers: callables receiving every event, in order, in the engine's thread.
    """

    def __init__(self, smu: SweepingSourceMeter, clock, *, afm: TipPositioner | None = None, channel: str = "ch1",
                 subscribers: Iterable[Subscriber] = ()) -> None:
        super().__init__(channel=channel, subscribers=subscribers)
        self.smu = smu
        self.clock = clock
        self.afm = afm

    def request_pause(self) -> None:
        """Hold at 0 V between steps until :meth:`request_resume` (a sweep is never cut)."""
        super().request_pause()

    def _t(self) -> float:
        return self.clock.now() - self._t0

    # ------------------------------------------------------------------------------------
    def run(self, program: SweepProgram) -> RunOutcome:
        """Run ``program`` from its first step to the end.

        Raises:
            KeyboardInterrupt: re-raised after the output is off, the tip withdrawn and
                ``RunEnded`` published; :attr:`last_outcome` then holds the outcome.
            ValueError: a tip program without an AFM.
        Instrument and subscriber errors end the run (``instrument_lost`` / ``error``).
        """
        if program.electrode == "tip" and self.afm is None:
            raise ValueError("a tip-electrode sweep program needs an AFM controller (afm=...)")
        self._begin()
        self._t0 = self.clock.now()
        self._charge_C = 0.0
        self._n = 0
        self._reset_failures = 0
        summaries: list[StepSummary] = []
        status, reason = "completed", "all steps completed"
        interrupted: BaseException | None = None
        try:
            self._publish(RunStarted(0.0, self.channel, program.model_dump_json(), 0, time.time()))
            self.smu.configure_voltage_source(program.safety.max_abs_current_A)
            self.smu.set_voltage(0.0)
            self.smu.output_on()
            for index, step, cycle in program.iter_steps():
                if not self._resumed.is_set():
                    self._publish(Detected(self._t(), self.channel, "paused", "paused by the operator: 0 V", index))
                    self._resumed.wait()
                    self._publish(Detected(self._t(), self.channel, "resumed", "resumed", index))
                if self.state is EngineState.STOPPING:
                    raise RunEnd("stopped", self._stop_reason or "stopped")
                summary = self._run_step(index, step, cycle, program)
                summaries.append(summary)
                self._publish(StepEnded(summary.end_s, self.channel, summary))
                if summary.reason == "safety":
                    raise RunEnd("safety", self._safety_reason)
                if summary.reason == "stopped":
                    raise RunEnd("stopped", self._stop_reason or "stopped")
                limit = program.stop_after_reset_failures
                if limit is not None and self._reset_failures >= limit:
                    raise RunEnd("reset_failures", f"{self._reset_failures} failed resets (limit {limit}) "
                                                    f"by step {index}")
        except (KeyboardInterrupt, Exception) as exc:  # a subscriber or a bug too: end safely, say what it was
            status, reason = ending_of(exc)
            interrupted = exc if isinstance(exc, KeyboardInterrupt) else None
        finally:
            problems = self._make_safe()
        if problems:
            reason = f"{reason}; {problems}"
        outcome = self._conclude(self._t(), status, reason, summaries, self._n, announced=frozenset({"completed", "safety"}))
        if interrupted is not None:
            raise interrupted
        return outcome

    def _make_safe(self) -> str:
        """Output off, then tip withdrawn; what failed, if anything (never raises)."""
        problems = []
        try:
            self.smu.output_off()
        except BaseException as exc:  # noqa: BLE001 - every failure must be reported
            problems.append(f"output-off failed on {getattr(self.smu, 'address', '?')}: {exc}")
        if self.afm is not None:
            try:
                self.afm.withdraw()
            except BaseException as exc:  # noqa: BLE001
                problems.append(f"withdraw failed on {getattr(self.afm, 'address', '?')}: {exc}")
        return "; ".join(problems)

    # ------------------------------------------------------------------------------------
    def _run_step(self, index: int, step, cycle: int, program: SweepProgram) -> StepSummary:
        t_start = self._t()
        self._q_step0 = self._charge_C
        self._publish(StepStarted(t_start, self.channel, index, step.kind, step.label, cycle, 0.0))
        reason = "completed"
        if isinstance(step, TipMove):
            self.smu.set_voltage(0.0)
            self.afm.withdraw()
            self.afm.move_to_nm(step.x_nm, step.y_nm)
            self.afm.engage(program.contact_force_nN)
            return self._summary(index, step, cycle, t_start, reason, np.empty(0), np.empty(0))
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
                self.clock.sleep(float(times[-1]) - self._t())  # a virtual clock catches up
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
            readings, times = self._map(step, index)
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
        if len(v) and (np.max(np.abs(v)) > program.safety.max_abs_voltage_V * 1.001
                       or np.max(np.abs(i)) > program.safety.max_abs_current_A * 1.001):
            reason = "safety"
            self._safety_reason = (f"safety limit: |V| up to {np.max(np.abs(v)):.4g} V, |I| up to "
                                   f"{np.max(np.abs(i)):.4g} A in step {index} (limits "
                                   f"{program.safety.max_abs_voltage_V:g} V, {program.safety.max_abs_current_A:g} A)")
            self._publish(Detected(self._t(), self.channel, "safety", self._safety_reason, index))
        return self._summary(index, step, cycle, t_start, reason, v, i)

    def _map(self, step: CurrentMap, index: int) -> tuple[list[Reading], np.ndarray]:
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
                times.append(self._t())
        finally:
            self.smu.set_voltage(0.0)
        return readings, np.array(times)

    def _emit(self, index: int, cycle: int, t: np.ndarray, v: np.ndarray, i: np.ndarray, status: list[int],
              area_cm2: float) -> None:
        if not len(t):
            return
        dq = np.concatenate([[0.0], 0.5 * (i[1:] + i[:-1]) * np.diff(t)])
        charge = self._charge_C + np.cumsum(dq)
        self._charge_C = float(charge[-1])
        self._n += len(t)
        columns = {"test_time_s": t, "voltage_V": v, "current_A": i, "current_density_mA_cm2": i * 1e3 / area_cm2,
                   "charge_C": charge, "step_index": np.full(len(t), index), "cycle_index": np.full(len(t), cycle),
                   "status": np.asarray(status)}
        self._publish(Readings(self.channel, {k: np.asarray(a, dtype=_DTYPES[k]) for k, a in columns.items()}))

    def _summary(self, index: int, step, cycle: int, t_start: float, reason: str, v: np.ndarray,
                 i: np.ndarray) -> StepSummary:
        n = len(v)
        peak = float(i[np.argmax(np.abs(i))]) if n else 0.0
        return StepSummary(
            step_index=index, kind=step.kind, label=step.label, cycle=cycle, current_A=peak,
            current_density_mA_cm2=0.0, start_s=t_start, end_s=self._t(), reason=reason, n_points=n,
            voltage_end_V=float(v[-1]) if n else 0.0, voltage_mean_V=float(v.mean()) if n else 0.0,
            abs_voltage_max_V=float(np.max(np.abs(v))) if n else 0.0,
            charge_C=self._charge_C - self._q_step0, cumulative_charge_C=self._charge_C)
