"""The run lifecycle every executor shares: states and their transitions as one table, the
operator's requests, event publishing, and the one run template that makes the channel safe.

:class:`RunLifecycle` is the base of both executors — the software-timed
:class:`~labctl.engine.software_timed.SoftwareTimedExecutor` (a sourcemeter, the engine
reading each point, or the instrument sweeping on its own) and the
:class:`~labctl.engine.delegated.DelegatedExecutor` (a cycler running a native program).
It owns:

* the state machine, written once as :data:`TRANSITIONS` (as bluesky's
  ``RunEngineStateMachine`` lists every state's allowed next states): a request that the
  table does not allow from the present state is ignored, never half-applied;
* the thread-safe stop / pause / resume requests an operator, the GUI or a control socket
  sends from another thread, with events that wake a waiting executor at once;
* the subscriber list the event stream goes to;
* :meth:`RunLifecycle._run_template`: the one run path — begin, run the executor's body,
  and in ``finally`` call the executor's :meth:`make_safe` (the ONE place a channel is made
  safe: output off and confirmed, tip withdrawn, cycler channel stopped and confirmed), then
  publish how the run ended. Every exit path goes through it: the end, a detection, an
  operator's stop, an error, a lost instrument, Ctrl-C and the termination signals (which
  the application turns into :class:`Interrupted`).
"""

from __future__ import annotations

import abc
import enum
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from drivers.base import InstrumentError, InstrumentLost
from labctl.events import Detected, RunEnded, StepSummary, Subscriber


class EngineState(enum.Enum):
    """Where a run is (bluesky's RunEngine states, fewer of them)."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSING = "pausing"
    """A pause was requested; the executor has not yet confirmed the cell is held."""
    PAUSED = "paused"
    STOPPING = "stopping"
    ENDED = "ended"


#: Every state's allowed next states. ``pausing → paused`` is the executor's confirmation
#: (the cell is held at 0 A / 0 V, or the cycler reports its channel paused); ``pausing →
#: running`` a pause the instrument refused (a NEWARE channel) or a resume before it took
#: effect; ``idle → stopping`` a stop that came before the run began (a control socket is
#: served from before the start): the run then ends at once, before its first step.
TRANSITIONS: dict[EngineState, frozenset[EngineState]] = {
    EngineState.IDLE: frozenset({EngineState.RUNNING, EngineState.STOPPING}),
    EngineState.RUNNING: frozenset({EngineState.PAUSING, EngineState.STOPPING, EngineState.ENDED}),
    EngineState.PAUSING: frozenset({EngineState.PAUSED, EngineState.RUNNING, EngineState.STOPPING,
                                    EngineState.ENDED}),
    EngineState.PAUSED: frozenset({EngineState.RUNNING, EngineState.STOPPING, EngineState.ENDED}),
    EngineState.STOPPING: frozenset({EngineState.ENDED}),
    EngineState.ENDED: frozenset({EngineState.RUNNING}),
}
#: States in which a run is in progress (the output may be on).
ACTIVE_STATES = frozenset({EngineState.RUNNING, EngineState.PAUSING, EngineState.PAUSED, EngineState.STOPPING})

#: Endings the executors publish as a ``Detected`` event when they see them (so the run's
#: end does not publish them again).
ANNOUNCED = frozenset({"completed", "short", "soft_short", "polarisation", "safety"})


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. ``status`` as in :class:`~labctl.events.RunEnded`; ``end_s`` the
    test time of the end (s); ``steps`` the executed steps of this run (a resumed run's
    earlier steps are in the run file)."""

    status: str
    reason: str
    steps: tuple[StepSummary, ...]
    n_readings: int
    end_s: float


class RunEnd(Exception):
    """Raised inside an executor's body: ends the run early with a status (short, safety,
    stopped, reset_failures …) and its reason."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Interrupted(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP) turned into an exception in the run's thread by
    the application, so the run ends the same safe way as on Ctrl-C; ``signal_name`` says
    which."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def ending_of(exc: BaseException) -> tuple[str, str]:
    """The run status and reason for an exception that ended a run.

    :class:`RunEnd` carries its own; Ctrl-C and termination signals → ``interrupted``; a lost
    instrument → ``instrument_lost`` and an instrument's refusal → ``error`` (both messages
    name the address); anything else (a subscriber, a bug) → ``error`` naming the exception
    type.
    """
    if isinstance(exc, RunEnd):
        return exc.status, exc.reason
    if isinstance(exc, Interrupted):
        return "interrupted", f"interrupted ({exc.signal_name})"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted (Ctrl-C)"
    if isinstance(exc, InstrumentLost):
        return "instrument_lost", str(exc)
    if isinstance(exc, InstrumentError):
        return "error", str(exc)
    return "error", f"{type(exc).__name__}: {exc}"


class RunLifecycle(abc.ABC):
    """State, operator requests, subscribers and the run template of one channel's run.

    Attributes:
        state: the current :class:`EngineState`; read it from any thread.
        last_outcome: the :class:`RunOutcome` of the last run, also when it was interrupted.

    Events let the run thread wait without polling: ``_wake`` is set by every request (a
    sleeping executor wakes at once), ``_resumed`` is clear exactly while a pause is
    requested or held, and ``_stop_requested`` is set only by a stop (an instrument-side
    abort can wait on it).
    """

    def __init__(self, *, channel: str = "ch1", subscribers: Iterable[Subscriber] = ()) -> None:
        self.channel = channel
        self.subscribers: list[Subscriber] = list(subscribers)
        self.state = EngineState.IDLE
        self.last_outcome: RunOutcome | None = None
        self._lock = threading.Lock()
        self._stop_reason: str | None = None
        self._wake = threading.Event()
        self._resumed = threading.Event()
        self._resumed.set()
        self._stop_requested = threading.Event()
        self._active = False
        self.made_safe = False
        """Whether the last run's :meth:`make_safe` did all it had to (output off confirmed…)."""

    # -- the state machine ------------------------------------------------------------------
    def _move(self, to: EngineState) -> bool:
        """Enter ``to`` if :data:`TRANSITIONS` allows it from the present state (call with
        ``_lock`` held); whether it did."""
        if to not in TRANSITIONS[self.state]:
            return False
        self.state = to
        return True

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def request_stop(self, reason: str = "stopped by the operator") -> None:
        """End the run at the executor's next check (thread-safe; wakes a waiting executor).

        The channel is made safe as on every ending.
        """
        with self._lock:
            if self._move(EngineState.STOPPING):
                self._stop_reason = reason
                self._stop_requested.set()
        self._resumed.set()
        self._wake.set()

    def request_pause(self) -> None:
        """Ask the run to pause (thread-safe): the state is ``pausing`` until the executor
        holds the cell (``paused``). What a pause does is the executor's: hold at 0 A within
        a step, hold at 0 V between sweeps, pause the cycler's channel."""
        with self._lock:
            if self._move(EngineState.PAUSING):
                self._resumed.clear()
        self._wake.set()

    def request_resume(self) -> None:
        """Continue a paused (or pausing) run (thread-safe)."""
        with self._lock:
            if self.state in (EngineState.PAUSING, EngineState.PAUSED):
                self._move(EngineState.RUNNING)
        self._resumed.set()
        self._wake.set()

    def _confirm_paused(self) -> bool:
        """The executor holds the cell: ``pausing → paused``. False if the pause was
        withdrawn (a resume or a stop came first)."""
        with self._lock:
            return self._move(EngineState.PAUSED) or self.state is EngineState.PAUSED

    def _refuse_pause(self) -> None:
        """The instrument cannot pause: ``pausing → running``."""
        with self._lock:
            if self.state is EngineState.PAUSING:
                self._move(EngineState.RUNNING)
        self._resumed.set()

    @property
    def stopping(self) -> bool:
        return self.state is EngineState.STOPPING

    @property
    def pause_requested(self) -> bool:
        """A pause is requested or held."""
        return self.state in (EngineState.PAUSING, EngineState.PAUSED)

    def _publish(self, event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    # -- the one run path ---------------------------------------------------------------------
    @abc.abstractmethod
    def make_safe(self, status: str) -> str:
        """Make the channel safe after a run that ended with ``status``; what could not be
        done, or "" (never raises). The one place each executor writes what "safe" means."""

    @abc.abstractmethod
    def _test_time(self) -> float:
        """The run's test time now (s)."""

    def _after_safe(self) -> None:
        """Called after :meth:`make_safe`, before the end is published: publish what the
        executor still holds (buffered readings)."""

    def _run_template(self, body: Callable[[], tuple[str, str]]) -> RunOutcome:
        """Begin, run ``body`` (returning the run's (status, reason); it may raise), make the
        channel safe in ``finally`` whatever happened, publish the end.

        Raises:
            KeyboardInterrupt (and :class:`Interrupted`): re-raised after the channel is safe
                and ``RunEnded`` published; :attr:`last_outcome` then holds the outcome.
            RuntimeError: a run is already in progress on this executor.
        Instrument and subscriber errors do not propagate: they end the run with status
        ``instrument_lost`` or ``error``.
        """
        with self._lock:
            if self._active:
                raise RuntimeError("engine is already running")
            self._active = True
            if self.state is not EngineState.STOPPING:  # else: stopped before it began
                self._move(EngineState.RUNNING)
                self._stop_reason = None
                self._stop_requested.clear()
            self._resumed.set()
        self._summaries: list[StepSummary] = []
        self._n_readings = 0
        status, reason = "error", "the run ended before it began"
        interrupted: BaseException | None = None
        try:
            status, reason = body()
        except (KeyboardInterrupt, Exception) as exc:  # a subscriber or a bug too: end safely, say what it was
            status, reason = ending_of(exc)
            interrupted = exc if isinstance(exc, KeyboardInterrupt) else None
        finally:
            problems = self.make_safe(status)
            self.made_safe = not problems
        if problems:
            reason = f"{reason}; {problems}"
        t_end = self._test_time()
        try:
            self._after_safe()
        finally:
            outcome = self._conclude(t_end, status, reason)
        if interrupted is not None:
            raise interrupted
        return outcome

    def _conclude(self, t_end_s: float, status: str, reason: str) -> RunOutcome:
        """Publish the run's ending and enter ENDED; returns (and keeps) the outcome.

        A ``Detected`` event precedes ``RunEnded`` unless ``status`` is in :data:`ANNOUNCED`.
        """
        try:
            if status not in ANNOUNCED:
                self._publish(Detected(t_end_s, self.channel, status, reason))
            self._publish(RunEnded(t_end_s, self.channel, status, reason, time.time(), tuple(self._summaries)))
        finally:
            with self._lock:
                self._move(EngineState.ENDED)
                self._active = False
        self.last_outcome = RunOutcome(status, reason, tuple(self._summaries), self._n_readings, t_end_s)
        return self.last_outcome


__all__ = ["ACTIVE_STATES", "ANNOUNCED", "EngineState", "Interrupted", "RunEnd", "RunLifecycle", "RunOutcome",
           "TRANSITIONS", "ending_of"]
