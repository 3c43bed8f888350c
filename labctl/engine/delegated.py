"""Delegated execution: a step program run by a battery cycler's own firmware.

:class:`DelegatedExecutor` compiles a :class:`~labctl.steps.StepProgram` to the cycler's
native program (NEWARE step file, Biologic technique list), starts it on one channel
(:class:`drivers.base.CyclerChannel`), then polls the channel's status and downloads the
points it stored, by cursor, in bounded batches. It publishes the same event stream as the
software-timed :class:`~labctl.engine.software_timed.SoftwareTimedExecutor` — ``RunStarted``, ``StepStarted``,
``Readings``, ``Detected``, ``StepEnded``, ``RunEnded`` — so the run file writer, notifiers,
the progress view and the protocols' analyses work unchanged.

What the cycler does and what the engine does:

* the cycler sequences the steps, ends them (time, charge, voltage) and enforces the limits
  the compiler pushed into it (NEWARE ``Protect``: the voltage window, the current limit, and
  a per-step floor that ends the test on a hard short). Its test runs on if the PC dies;
* the engine maps the cycler's n-th executed step to the program's step index n − 1
  (``StepProgram.iter_steps``, the compilers keep that order), infers why each step ended
  (time, voltage, charge) from the program, and runs the online checks on every downloaded
  point exactly as the sourcemeter engine does on its readings: short and soft-short
  detection (:class:`~labctl.checks.ShortDetector`), the polarisation limit and the
  safety limits. Such a PC-side decision stops the channel and confirms the stop by reading
  the status back; so do an operator's stop, Ctrl-C and an error.

Every point the channel stored is recorded exactly once, also those it stored between a
PC-side decision and the confirmed stop: the step the stop cut ends with the decision as
its reason. Each reading carries the cycler's test id and point number (the extra columns
:data:`DELEGATED_COLUMNS`); they are the download cursor, stored with the data it describes,
so a run file killed at any moment tells where to continue (:class:`AttachPoint`).

A lost connection does not touch the channel: the engine reconnects under its
:class:`~labctl.engine.policy.ReconnectPolicy` and collects the points stored meanwhile; when
the budget runs out the run ends ``instrument_lost`` *without* stopping the channel, and
``labctl resume RUN.h5`` reattaches. (``ReconnectPolicy.reapply`` has no meaning here: the
cycler never stopped sourcing.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from drivers.base import CYCLER_ACTIVE_STATES, CyclerChannel, CyclerStatus, InstrumentError, InstrumentLost
from labctl.engine.clock import Clock
from labctl.checks import (
    ShortDetector,
    EndConditions,
    first_polarisation_index,
    first_safety_index,
    first_short,
    polarisation_message,
    safety_message,
    short_message,
    time_is_up,
)
from labctl.events import (
    Column,
    Detected,
    Readings,
    RunStarted,
    StepEnded,
    StepStarted,
    StepSummary,
    Subscriber,
)
from labctl.engine.lifecycle import EngineState, RunLifecycle, RunOutcome
from labctl.engine.policy import ReconnectPolicy
from labctl.steps import ConstantCurrent, StepProgram

#: Extra reading columns of a delegated run: the cycler's test id and its 1-based number of
#: the point in that test (the download cursor, stored with every reading).
DELEGATED_COLUMNS: tuple[Column, ...] = (
    Column("cycler_test_id", "u4", "1", None),
    Column("cycler_seq_id", "u8", "1", None),
)
#: Time tolerance of a step that ended on its duration (s, plus 1e-6 of the duration): the
#: NEWARE API gives step times in ms.
_TIME_TOLERANCE_S = 1e-3


@dataclass(frozen=True)
class AttachPoint:
    """Where a delegated run continues after the PC side died (read from its run file by
    :func:`labctl.store.recover.attach_point`).

    ``test_id``/``last_seq_id``/``last_test_time_s``: the cycler's test, the last point the
    file holds (0: none yet) and its test time in the run (s). ``since_checkpoint``: the file's readings after the last recorded step row (columns
    ``test_time_s``, ``voltage_V``, ``current_A``, ``step_index``, ``charge_C``); they are
    replayed through the step bookkeeping and the short detector, not written again.
    ``charge_base_C``: the cumulative charge at the end of the last recorded step (C);
    ``step_index``: the step of the last recorded step row + 1 (where replay starts).
    """

    test_id: int
    last_seq_id: int
    last_test_time_s: float
    step_index: int
    charge_base_C: float
    since_checkpoint: dict[str, np.ndarray] = field(default_factory=dict)
    t_offset_s: float = 0.0
    """Test time at which the cycler's test began in the run (s)."""
    first_step_index: int = 0
    """Program step index of the test's first executed step."""


@dataclass
class _OpenStep:
    """Bookkeeping of the step the channel is in."""

    index: int
    step: object
    cycle: int
    current_A: float
    start_s: float
    charge_base_C: float
    detector: ShortDetector | None
    n: int = 0
    v_sum: float = 0.0
    v_abs_max: float = 0.0
    v_last: float = math.nan
    i_last: float = 0.0
    """The measured current at the step's last point (A): a constant-voltage step's end."""
    q_last: float = 0.0
    """Charge passed in the step up to its last point (C)."""
    cumulative_last: float = 0.0
    """The run's cumulative charge at the step's last point (C), as published."""
    t_last: float = 0.0
    reason: str | None = None
    """Set when a detection in this step decided its reason."""
    until: object | None = None
    """The voltage exit condition of the loop the step is in (:class:`~labctl.steps.LoopUntil`), if any."""


class DelegatedExecutor(RunLifecycle):
    """Runs a step program on a cycler channel and publishes the event stream.

    Args:
        cycler: the channel, any :class:`drivers.base.CyclerChannel`.
        clock: the time base of the polling (a simulated cycler shares it).
        compile: step program → native program text (e.g.
            :func:`drivers.neware.compile_native`); needed only when
            :meth:`run` is not given the native program.
        channel: name of the channel group in run files and events.
        subscribers: callables receiving every event, in order, in the engine's thread.
        poll_interval_s: clock seconds between polls once the engine has caught up.
        max_batch: most points downloaded (and published) per request batch.
        reconnect: what to do when the cycler stops answering.
        stop_confirm_s: wall seconds to wait for the cycler to report a stopped test.
        label: the test's name at the cycler (NEWARE barcode), e.g. the run file's stem.
    """

    def __init__(
        self,
        cycler: CyclerChannel,
        clock: Clock,
        *,
        compile: Callable[[StepProgram], str] | None = None,
        channel: str = "ch1",
        subscribers: Iterable[Subscriber] = (),
        poll_interval_s: float = 5.0,
        max_batch: int = 5000,
        reconnect: ReconnectPolicy = ReconnectPolicy(),
        stop_confirm_s: float = 30.0,
        label: str = "labctl",
    ) -> None:
        super().__init__(channel=channel, subscribers=subscribers)
        if not poll_interval_s > 0 or max_batch < 1:
            raise ValueError("poll_interval_s must be > 0 and max_batch >= 1")
        self.cycler = cycler
        self.clock = clock
        self.compile = compile
        self.poll_interval_s = poll_interval_s
        self.max_batch = max_batch
        self.reconnect = reconnect
        self.stop_confirm_s = stop_confirm_s
        self.label = label

    def request_pause(self) -> None:
        """Pause the test on the cycler where it can (:attr:`CyclerChannel.can_pause`);
        otherwise the request is refused with a ``pause_refused`` event and the test runs on."""
        super().request_pause()

    # ------------------------------------------------------------------------------------
    def run(self, program: StepProgram, *, native_program: str | None = None,
            attach: AttachPoint | None = None) -> RunOutcome:
        """Start ``program`` on the cycler (or reattach to its running test) and follow it to
        its end. ``native_program``: the compiled program (default: :attr:`compile`'s); with
        ``attach``, the one the cycler was started with (the run file's).

        Raises:
            KeyboardInterrupt: re-raised after the channel is stopped and ``RunEnded``
                published; :attr:`last_outcome` holds the outcome.
            ValueError: no native program and no compiler.
        Instrument and subscriber errors do not propagate: they end the run with status
        ``instrument_lost`` (channel left running) or ``error`` (channel stopped).
        """
        if native_program is None and self.compile is None:
            raise ValueError("give the native program or a compile function")
        self._program = program
        # One detector for the run, reset at each step: it carries the cell's healthy noise.
        self._detector = ShortDetector(program.short_detection)
        self._area = program.area_cm2
        self._t_offset = attach.t_offset_s if attach else 0.0
        self._first_index = attach.first_step_index if attach else 0
        start_index = attach.step_index if attach else 0
        self._steps: Iterator = program.iter_steps(start_index)
        self._open: _OpenStep | None = None
        self._charge_base_C = attach.charge_base_C if attach else 0.0
        self._t_last = attach.last_test_time_s if attach else 0.0
        self._decision: tuple[str, str] | None = None
        self._ended_in_cycler = False
        self._checking = True
        self._lost_since: float | None = None
        self._paused = False
        self._started = attach is not None
        self._test_id = attach.test_id if attach else 0

        def body() -> tuple[str, str]:
            self._publish(RunStarted(self._t_last, self.channel, program.model_dump_json(), start_index, time.time()))
            if self.stopping:  # stopped before it began: start nothing
                return "stopped", self._stop_reason or "stopped"
            if attach is None:
                native = native_program if native_program is not None else self.compile(program)
                self._test_id = self.cycler.start(native, self.label)
                self._started = True
                self._publish(Detected(self._t_last, self.channel, "cycler_started",
                                       f"test {self._test_id} started on {self.cycler.address}"))
            else:
                self._reattach(attach, native_program if native_program is not None else self.compile(program))
            return self._follow()

        return self._run_template(body)

    def make_safe(self, status: str) -> str:
        """The channel after a run that ended with ``status``; what the run's reason must add,
        or "". Never raises.

        * the test ended in the cycler (finished, its protection, a stop at the cycler):
          nothing to do;
        * ``instrument_lost``: the channel is deliberately LEFT RUNNING — its test goes on in
          the cycler, and ``labctl resume RUN.h5`` reattaches and collects its points; the
          reason says so;
        * any decision of ours (a short, a safety or polarisation limit, an operator's stop,
          an error, Ctrl-C, a termination signal): stop the channel, confirm the stop by
          reading its status back, and collect every point it stored until then (without
          further checks); the step the stop cut ends with ``status`` as its reason.
        """
        if not self._started or self._ended_in_cycler:
            return ""
        if status == "instrument_lost":
            return ("the channel was not stopped: its test runs on in the cycler (labctl resume RUN.h5 "
                    "reattaches and collects its points)")
        self._checking = False
        try:
            confirmed = self._stop_channel()
        except InstrumentLost as exc:
            return f"labctl could not reach the cycler to stop the channel ({exc}): THE CHANNEL MAY STILL BE RUNNING"
        except BaseException as exc:  # noqa: BLE001 - must be reported, never raised
            return f"stopping the channel at {self.cycler.address} FAILED ({exc}): it may still be running"
        try:
            self._publish(Detected(self._t_last, self.channel, "cycler_stopped", confirmed, self._index()))
            while self._collect() >= self.max_batch:
                pass
            # a step cut by the stop ends with the decision (a detection's own kind if it was
            # its step; "stopped" after a loop's exit, which completed the run)
            self._close_step(None if self._open is not None and self._open.reason else
                             "stopped" if status == "completed" else status)
        except BaseException as exc:  # noqa: BLE001
            return f"{confirmed}; its last points were not collected ({exc})"
        # A failure's reason says how the channel was left; a decision's ``cycler_stopped`` event does.
        return confirmed if status in ("error", "interrupted") else ""

    def _test_time(self) -> float:
        return self._t_last

    # -- following the test -----------------------------------------------------------------
    def _follow(self) -> tuple[str, str]:
        """Poll and collect until the test ends; (status, reason) of the run."""
        wake = self._wake
        while True:
            self._pause_or_resume()
            if self.state is EngineState.STOPPING:
                return "stopped", self._stop_reason or "stopped"
            status = self._io(self.cycler.status)
            n = self._collect()
            if self._decision is not None:
                return self._decision
            if n >= self.max_batch:
                continue  # more is waiting: catch up before sleeping
            if status.state not in CYCLER_ACTIVE_STATES:
                return self._end_by_cycler(status)
            self.clock.sleep(self.poll_interval_s, wake)
            wake.clear()

    def _collect(self) -> int:
        """Download one batch and take it in; the number of points."""
        batch = self._io(lambda: self.cycler.records(self.max_batch))
        n = len(batch["seq_id"])
        if n:
            self._take(batch)
        return n

    def _pause_or_resume(self) -> None:
        if self.pause_requested and not self._paused:
            refused = None if self.cycler.can_pause else f"{self.cycler.address} cannot pause a running test at once"
            if refused is None:
                try:
                    self._io(self.cycler.pause)
                except InstrumentLost:
                    raise
                except InstrumentError as exc:
                    refused = str(exc)
            if refused is not None:
                self._publish(Detected(self._t_last, self.channel, "pause_refused", f"{refused}: it runs on",
                                       self._index()))
                self._refuse_pause()
                return
            self._paused = True
            self._confirm_paused()
            self._publish(Detected(self._t_last, self.channel, "paused", "paused on the cycler", self._index()))
        elif self.state is EngineState.RUNNING and self._paused:
            self._io(self.cycler.resume)
            self._paused = False
            self._publish(Detected(self._t_last, self.channel, "resumed", "resumed on the cycler", self._index()))

    def _end_by_cycler(self, status: CyclerStatus) -> tuple[str, str]:
        """The test ended in the cycler and every point is in."""
        self._ended_in_cycler = True
        s = self._open
        where = f"step {s.index}" if s else "its start"
        if status.state == "finished":
            self._close_step(None)
            last = self._summaries[-1].step_index if self._summaries else -1
            left = self._program.loop_exit(last, self._summaries[-1].reason) if self._summaries else None
            if left is not None and left.last:
                return "completed", f"all steps completed (the last loop left at step {last} on {left.loop.until.describe()})"
            if last != self._program.n_steps - 1:
                return "error", (f"the cycler finished the test at step {last} of the program's "
                                 f"{self._program.n_steps} ({status.detail})")
            return "completed", "all steps completed"
        if status.state == "protection" and self._floor_left_last_loop(s):
            # The cycler's own short floor ended the test in a last loop "until the short": that
            # is the loop's exit, in the firmware, and the program is done.
            floor = self._program.short_detection.floor_V
            message = short_message("short", s.current_A * 1e3 / self._area, s.t_last, s.index,
                                    f"the cycler's floor: |V| = {abs(s.v_last) * 1e3:.3g} mV under {floor * 1e3:.3g} mV "
                                    f"({status.detail})")
            self._publish(Detected(s.t_last, self.channel, "short", message, s.index))
            span = self._program.loop_span(s.index)
            why = (f"loop of steps {span.first}–{span.end - 1} left at step {s.index} on a short in the cycler "
                   f"(t = {s.t_last:.1f} s): the program's last entry is done")
            self._publish(Detected(s.t_last, self.channel, "loop_exit", why, s.index))
            self._close_step("short")
            return "completed", why
        if status.state == "protection":
            v, i = (s.v_last, s.current_A) if s else (math.nan, 0.0)
            reason = (f"the cycler's protection ended the test at {where}: V = {v:.4g} V at {i:.4g} A "
                      f"(limits {self._program.safety.max_abs_voltage_V:g} V, "
                      f"{self._program.safety.max_abs_current_A:g} A)")
            self._publish(Detected(self._t_last, self.channel, "safety", reason, self._index()))
            self._close_step("safety")
            return "safety", reason
        self._close_step("stopped")
        return "stopped", f"the test was stopped at the cycler, not by labctl ({status.detail}), at {where}"

    def _floor_left_last_loop(self, s: _OpenStep | None) -> bool:
        """Whether the open step, a current step of the program's last loop "until the short",
        ended at the short floor (its last |V| under ``floor_V``): the cycler's protection."""
        if s is None or not s.current_A or s.n == 0:
            return False
        span = self._program.loop_span(s.index)
        detection = self._program.short_detection
        return (span is not None and span.last and span.loop.until is not None and span.loop.until.kind == "short"
                and detection.floor_V > 0 and abs(s.v_last) < detection.floor_V)

    def _stop_channel(self) -> str:
        """Stop the channel and read its status back until it is no longer active; what was
        confirmed. Raises InstrumentError if it still runs after :attr:`stop_confirm_s`."""
        deadline = time.monotonic() + self.stop_confirm_s
        status = self._io(self.cycler.status)
        if status.state in CYCLER_ACTIVE_STATES:
            try:
                self._io(self.cycler.stop)
            except InstrumentLost:
                raise
            except InstrumentError:
                pass  # e.g. it ended by itself meanwhile: the status tells
            while (status := self._io(self.cycler.status)).state in CYCLER_ACTIVE_STATES:
                if time.monotonic() > deadline:
                    raise InstrumentError(self.cycler.address, f"the channel still reports {status.detail!r} "
                                                               f"{self.stop_confirm_s:g} s after stop")
                time.sleep(0.05)
            return f"channel stopped by labctl; the cycler confirms: {status.detail}"
        return f"the channel had already ended its test ({status.detail})"

    # -- connection -------------------------------------------------------------------------
    def _io(self, call: Callable[[], object]):
        """``call()``, reconnecting under :attr:`reconnect` while the cycler cannot be reached."""
        while True:
            try:
                result = call()
            except InstrumentLost as exc:
                self._reconnect(exc)
                continue
            self._lost_since = None
            return result

    def _reconnect(self, exc: InstrumentLost) -> None:
        """Reconnect; raises InstrumentLost when :attr:`reconnect`'s budget (counted from the
        first failure since the last answer) is spent."""
        policy = self.reconnect
        began = time.monotonic()
        if self._lost_since is None:
            self._lost_since = began
        budget_s = policy.budget_s(self._lost_since, began)
        if budget_s <= 0:
            raise exc
        self._publish(Detected(self._t_last, self.channel, "instrument_error",
                               f"{exc}; reconnecting (the channel runs on in the cycler)", self._index()))
        policy.retry(self.cycler.reconnect, budget_s)
        self._publish(Detected(self._t_last, self.channel, "reconnected",
                               f"reconnected after {time.monotonic() - began:.1f} s; collecting the points "
                               "the channel stored meanwhile", self._index()))

    # -- points -----------------------------------------------------------------------------
    def _reattach(self, attach: AttachPoint, native_program: str) -> None:
        """Replay the file's readings since its last step row, then point the cycler's cursor
        after the file's last point."""
        cols = attach.since_checkpoint
        if len(cols.get("test_time_s", ())):
            self._ingest(cols["test_time_s"], cols["voltage_V"], cols["current_A"],
                         cols["step_index"].astype(np.int64), cols["charge_C"], None)
        last_count = (self._open.index - self._first_index + 1) if self._open else (attach.step_index - self._first_index)
        self._io(lambda: self.cycler.attach(attach.test_id, attach.last_seq_id, self._t_last - self._t_offset,
                                            last_count, native_program))

    def _take(self, batch: dict[str, np.ndarray]) -> None:
        """A downloaded batch: map it onto the program and publish it."""
        index = self._first_index + batch["step_count"].astype(np.int64) - 1
        t = batch["test_time_s"] + self._t_offset
        self._ingest(t, batch["voltage_V"], batch["current_A"], index, None, batch)

    def _ingest(self, t: np.ndarray, v: np.ndarray, i: np.ndarray, index: np.ndarray,
                charge: np.ndarray | None, batch: dict[str, np.ndarray] | None) -> None:
        """Points in order, step by step: open and close steps, run the checks, publish the
        readings of a live ``batch`` (with ``charge`` None: it comes from the batch's step
        charge). A replay passes the file's cumulative ``charge`` and no batch."""
        cuts = np.flatnonzero(np.diff(index)) + 1
        for lo, hi in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [len(t)]))):
            idx = int(index[lo])
            if self._open is None or idx != self._open.index:
                if self._open is not None:
                    self._close_step(None)
                self._open_step(idx, float(t[lo]), float(i[lo]))
            s = self._open
            tt, vv, ii = t[lo:hi], v[lo:hi], i[lo:hi]
            if charge is None:
                qq = batch["step_charge_C"][lo:hi]
                cumulative = s.charge_base_C + qq
            else:
                cumulative = charge[lo:hi]
                qq = cumulative - s.charge_base_C
            found = self._check(s, tt, vv, ii) if self._checking else None
            s.n += int(hi - lo)
            s.v_sum += float(vv.sum())
            s.v_abs_max = max(s.v_abs_max, float(np.abs(vv).max()))
            s.v_last, s.i_last, s.q_last, s.t_last = float(vv[-1]), float(ii[-1]), float(qq[-1]), float(tt[-1])
            s.cumulative_last = float(cumulative[-1])
            self._t_last = s.t_last
            if batch is not None:
                n = int(hi - lo)
                self._n_readings += n
                self._publish(Readings(self.channel, {
                    "test_time_s": np.ascontiguousarray(tt, "f8"), "voltage_V": np.ascontiguousarray(vv, "f8"),
                    "current_A": np.ascontiguousarray(ii, "f8"),
                    "current_density_mA_cm2": ii * (1e3 / self._area), "charge_C": np.asarray(cumulative, "f8"),
                    "step_index": np.full(n, idx, "i4"), "cycle_index": np.full(n, s.cycle, "i4"),
                    "status": np.zeros(n, "u4"), "cycler_test_id": np.full(n, self._test_id, "u4"),
                    "cycler_seq_id": np.ascontiguousarray(batch["seq_id"][lo:hi], "u8"),
                }))
            if found is not None:
                kind, message, t_found = found
                s.reason = kind
                if kind != "until":
                    self._publish(Detected(t_found, self.channel, kind, message, idx))
                left = self._program.loop_exit(idx, kind)
                if left is not None:
                    # The loop's exit condition, decided here from the points (a voltage
                    # condition is also the NEWARE step file's own jump): the loop is the
                    # program's last entry on a cycler, so leaving it ends the test.
                    until = left.loop.until
                    why = (f"loop of steps {left.first}–{left.end - 1} left at step {idx} on {until.describe()} "
                           f"(t = {t_found:.1f} s): the program's last entry is done")
                    self._publish(Detected(t_found, self.channel, "loop_exit", why, idx))
                    self._decision = ("completed", why)
                    self._checking = False
                elif kind not in ("short", "soft_short") or self._program.end_run_on_short:
                    self._decision = (kind, message)
                    self._checking = False

    def _open_step(self, index: int, t_s: float, current_A: float) -> None:
        program = self._program
        if index >= program.n_steps:
            raise InstrumentError(self.cycler.address, f"the channel runs a step {index} but the program has "
                                                       f"{program.n_steps}: it is not running labctl's program")
        for k, step, cycle in self._steps:
            if k == index:
                break
        else:
            raise InstrumentError(self.cycler.address, f"the channel went back to step {index}")
        expected = step.current_A if isinstance(step, ConstantCurrent) else 0.0
        if expected and current_A * expected < 0 and abs(current_A) > 0.5 * abs(expected):
            raise InstrumentError(self.cycler.address, f"step {index}: the channel sources {current_A:.4g} A where the "
                                                       f"program has {expected:.4g} A: it is not running labctl's program")
        detector = self._detector if isinstance(step, ConstantCurrent) and expected else None
        if detector is not None:
            detector.reset()
        span = program.loop_span(index)
        until = span.loop.until if span is not None and span.loop.until is not None else None
        self._open = _OpenStep(index, step, cycle, expected, t_s, self._charge_base_C, detector, t_last=t_s,
                               until=until if until is not None and until.kind != "short" else None)
        self._publish(StepStarted(t_s, self.channel, index, step.kind, step.label, cycle, expected))

    def _close_step(self, reason: str | None) -> None:
        """Publish the open step's summary; ``reason`` None: a detection's, else inferred."""
        s = self._open
        if s is None:
            return
        self._open = None
        if reason is None:
            reason = s.reason or self._natural_reason(s)
        current_A = s.i_last if s.step.kind == "constant_voltage" else s.current_A
        summary = StepSummary(
            step_index=s.index, kind=s.step.kind, label=s.step.label, cycle=s.cycle, current_A=current_A,
            current_density_mA_cm2=current_A * 1e3 / self._area, start_s=s.start_s, end_s=s.t_last, reason=reason,
            n_points=s.n, voltage_end_V=s.v_last, voltage_mean_V=s.v_sum / s.n if s.n else math.nan,
            abs_voltage_max_V=s.v_abs_max, charge_C=s.q_last,
            cumulative_charge_C=s.cumulative_last if s.n else s.charge_base_C)
        self._charge_base_C = summary.cumulative_charge_C
        self._summaries.append(summary)
        self._publish(StepEnded(s.t_last, self.channel, summary))

    @staticmethod
    def _natural_reason(s: _OpenStep) -> str:
        """Why the cycler ended a step: ``time``, ``voltage``, ``current`` or ``charge`` by the
        program's end conditions (in the software-timed executor's order, within the cycler's
        rounding), else ``cycler``."""
        step = s.step
        duration = getattr(step, "duration_s", None)
        if time_is_up(step, s.t_last - s.start_s, _TIME_TOLERANCE_S + 1e-6 * (duration or 0.0)):
            return "time"
        current = s.i_last if step.kind == "constant_voltage" else s.current_A
        return EndConditions(step, charge_rtol=1e-6).reason(s.v_last, current, s.q_last) or "cycler"

    def _check(self, s: _OpenStep, t: np.ndarray, v: np.ndarray, i: np.ndarray) -> tuple[str, str, float] | None:
        """The first point of a step's segment that a check flags, as the software-timed
        executor checks each reading: safety limits, then (on a current step) short detection,
        then the polarisation limit. (kind, message, t) or None."""
        program = self._program
        v_safe, i_safe = program.safety.max_abs_voltage_V, program.safety.max_abs_current_A
        n = len(t)
        j_safe = first_safety_index(v, i, v_safe, i_safe)
        j_safe = n if j_safe is None else j_safe
        j_polar = n
        watching = s.detector is not None and s.reason is None
        if watching and program.polarisation_limit_V is not None:
            found = first_polarisation_index(v[:j_safe], program.polarisation_limit_V)
            j_polar = n if found is None else found
        if watching:
            short = first_short(s.detector, v, i, t, stop=min(j_safe, j_polar + 1))
            if short is not None:
                j, kind, detail = short
                return kind, short_message(kind, s.current_A * 1e3 / self._area, float(t[j]), s.index, detail), float(t[j])
        until = s.until
        if until is not None and s.reason is None:
            hits = np.flatnonzero(v[:j_safe] >= until.voltage_V if until.kind == "voltage_above"
                                  else v[:j_safe] <= until.voltage_V)
            if len(hits) and hits[0] <= j_polar:
                j = int(hits[0])
                return "until", f"{until.describe()} at t = {float(t[j]):.1f} s (step {s.index})", float(t[j])
        if j_safe < n and j_safe <= j_polar:
            j = j_safe
            what = "safety limit" if np.isfinite(v[j]) and np.isfinite(i[j]) else "non-finite reading"
            return "safety", safety_message(what, float(v[j]), float(i[j]), s.index, v_safe, i_safe), float(t[j])
        if j_polar < n:
            j = j_polar
            return "polarisation", polarisation_message(float(v[j]), program.polarisation_limit_V, float(t[j]),
                                                        s.index), float(t[j])
        return None

    def _index(self) -> int:
        return self._open.index if self._open is not None else -1

