"""The run lifecycle every engine shares: states, operator requests, event publishing.

:class:`RunLifecycle` is the base of the constant-current :class:`~labctl.engine.software_timed.Engine`,
the :class:`~labctl.engine.sweeps.SweepEngine` and the delegated cycler engine. It owns the
state machine (bluesky's RunEngine states, fewer of them), the thread-safe
stop/pause/resume requests an operator or a control socket sends from another thread, and
the subscriber list the event stream goes to. What a pause *does* (hold at 0 A, hold at 0 V
between sweeps, pause the cycler channel) is each engine's business.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from drivers.base import InstrumentError, InstrumentLost
from labctl.events import Detected, RunEnded, StepSummary, Subscriber


class EngineState(enum.Enum):
    """idle → running ⇄ paused → stopping → ended (bluesky's RunEngine states, fewer of them)."""

    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPING = "stopping"
    ENDED = "ended"


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended. ``status`` as in :class:`~labctl.events.RunEnded`."""

    status: str
    reason: str
    steps: tuple[StepSummary, ...]
    n_readings: int
    end_s: float


class RunEnd(Exception):
    """Internal to engines: ends the run early with a status (short, safety, stopped, ...)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def ending_of(exc: BaseException) -> tuple[str, str]:
    """The run status and reason for an exception that ended a run.

    :class:`RunEnd` carries its own; Ctrl-C → ``interrupted``; a lost instrument →
    ``instrument_lost`` and an instrument's refusal → ``error`` (both messages name the
    address); anything else (a subscriber, a bug) → ``error`` naming the exception type.
    """
    if isinstance(exc, RunEnd):
        return exc.status, exc.reason
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", "interrupted (Ctrl-C)"
    if isinstance(exc, InstrumentLost):
        return "instrument_lost", str(exc)
    if isinstance(exc, InstrumentError):
        return "error", str(exc)
    return "error", f"{type(exc).__name__}: {exc}"


class RunLifecycle:
    """State, operator requests and subscribers of one channel's run.

    Attributes:
        state: the current :class:`EngineState`; read it from any thread.
        last_outcome: the :class:`RunOutcome` of the last run, also when it was interrupted.

    Events let the run thread wait without polling: ``_wake`` is set by every request (a
    sleeping engine wakes at once), ``_resumed`` is clear exactly while paused, and
    ``_stop_requested`` is set only by a stop (an instrument-side abort can wait on it).
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

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def request_stop(self, reason: str = "stopped by the operator") -> None:
        """End the run at the engine's next check (thread-safe; wakes a waiting engine).

        The output is turned off as on every ending.
        """
        with self._lock:
            if self.state in (EngineState.RUNNING, EngineState.PAUSED):
                self._stop_reason = reason
                self.state = EngineState.STOPPING
                self._stop_requested.set()
        self._resumed.set()
        self._wake.set()

    def request_pause(self) -> None:
        """Pause the run until :meth:`request_resume` (thread-safe)."""
        with self._lock:
            if self.state is EngineState.RUNNING:
                self.state = EngineState.PAUSED
                self._resumed.clear()
        self._wake.set()

    def request_resume(self) -> None:
        with self._lock:
            if self.state is EngineState.PAUSED:
                self.state = EngineState.RUNNING
        self._resumed.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self.state is EngineState.STOPPING

    def _publish(self, event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    def _begin(self) -> None:
        """Enter RUNNING.

        Raises:
            RuntimeError: a run is already in progress on this engine.
        """
        with self._lock:
            if self.state in (EngineState.RUNNING, EngineState.STOPPING, EngineState.PAUSED):
                raise RuntimeError("engine is already running")
            self.state = EngineState.RUNNING
            self._stop_reason = None
            self._resumed.set()
            self._stop_requested.clear()

    def _end(self) -> None:
        with self._lock:
            self.state = EngineState.ENDED

    def _conclude(self, t_end_s: float, status: str, reason: str, summaries: list[StepSummary], n_readings: int,
                  *, announced: frozenset[str]) -> RunOutcome:
        """Publish the run's ending and enter ENDED; returns (and keeps) the outcome.

        A ``Detected`` event precedes ``RunEnded`` unless ``status`` is in ``announced``
        (endings the engine already published when it saw them, and ``completed``).
        Call it after the output is safe: subscribers (the run file) must see the end.
        """
        try:
            if status not in announced:
                self._publish(Detected(t_end_s, self.channel, status, reason))
            self._publish(RunEnded(t_end_s, self.channel, status, reason, time.time(), tuple(summaries)))
        finally:
            self._end()
        self.last_outcome = RunOutcome(status, reason, tuple(summaries), n_readings, t_end_s)
        return self.last_outcome
