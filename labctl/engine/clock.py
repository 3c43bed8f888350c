"""Clocks shared by the engine and the simulators.

A clock gives the time in seconds (``now()``) and waits (``sleep(dt_s)``) on one time base.
The engine and a simulated instrument that share a clock agree on simulated time, so an
8-hour staircase can be dry-run in seconds:

* :class:`ScaledClock` runs ``speed`` times faster than the wall clock (``speed=1`` is real
  time); it works across processes when both sides use the same ``speed``.
* :class:`PacedClock` runs ``speed`` times faster than the wall clock too, but advances only
  while the engine waits: a busy machine can make a run slower, never longer in test time.
* :class:`VirtualClock` runs as fast as the computer can: time advances only when someone
  sleeps. It is deterministic and is what tests and ``--speed max`` use; the instrument must
  then be in the same process.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """A time base in seconds."""

    speed: float

    def now(self) -> float:
        """Seconds since an arbitrary origin, monotonic."""
        ...

    def sleep(self, dt_s: float, wake: threading.Event | None = None) -> None:
        """Wait ``dt_s`` seconds of this clock's time (no-op for ``dt_s <= 0``); return
        early when ``wake`` is set (an operator's stop must not wait out a long interval)."""
        ...

    def sleep_until(self, t_s: float, wake: threading.Event | None = None, *, report_over_s: float = 0.0) -> float:
        """Wait until this clock reads ``t_s`` (return early when ``wake`` is set). A sped-up
        clock woken late is held back to ``t_s``; returns the time held back (s) when it is
        more than ``report_over_s``, else 0.0."""
        ...


class ScaledClock:
    """Wall time multiplied by ``speed`` (> 0). ``ScaledClock(1.0)`` is real time."""

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.speed = float(speed)
        self._origin = time.perf_counter()

    def now(self) -> float:
        return (time.perf_counter() - self._origin) * self.speed

    def sleep(self, dt_s: float, wake: threading.Event | None = None) -> None:
        if dt_s > 0:
            if wake is None:
                time.sleep(dt_s / self.speed)
            else:
                wake.wait(dt_s / self.speed)

    def sleep_until(self, t_s: float, wake: threading.Event | None = None, *, report_over_s: float = 0.0) -> float:
        """Wait until the clock reads ``t_s``. Wall time is the cell's here (a real instrument,
        or a simulator in another process on the same ``speed``): nothing is held back, 0.0."""
        self.sleep(t_s - self.now(), wake)
        return 0.0


class PacedClock:
    """Simulated time that advances only while the engine waits, ``speed`` times faster than
    the wall clock: the sped-up time of a simulated cell in this process.

    A :class:`ScaledClock` would let the simulated cell run on whenever the computer is late
    (a busy machine delays the engine's wake-up or its reading, and a 900 s half-cycle at
    ×3600 becomes 1792 s: twice the planned charge, a wrong CCD). Here time moves only in
    :meth:`sleep` and :meth:`sleep_until`, by exactly what was asked, so every reading is at
    its planned time whatever the machine does; a run that cannot keep ``speed`` only takes
    longer in wall time, and :meth:`sleep_until` reports by how much (``held_s``).
    """

    def __init__(self, speed: float) -> None:
        if not speed > 0 or speed == float("inf"):
            raise ValueError(f"speed must be finite and > 0, got {speed!r}")
        self.speed = float(speed)
        self._t = 0.0
        self._lock = threading.Lock()
        self._wall_mark: float | None = None  # wall time of the last return from a sleep
        self.held_s = 0.0
        """Test time the wall clock ran beyond the paced time so far (s): what a scaled clock
        would have added."""

    def now(self) -> float:
        return self._t

    def sleep(self, dt_s: float, wake: threading.Event | None = None) -> None:
        self.sleep_until(self._t + dt_s, wake)

    def sleep_until(self, t_s: float, wake: threading.Event | None = None, *, report_over_s: float = 0.0) -> float:
        """Wait ``(t_s − now) / speed`` wall seconds and advance to ``t_s`` (a ``wake`` before
        that advances by the part waited). Returns how late the wall clock ran behind the paced
        time since the last call (s of test time) when more than ``report_over_s``, else 0.0."""
        dt = t_s - self._t
        began = time.perf_counter()
        if dt > 0:
            if wake is not None and wake.wait(dt / self.speed):
                with self._lock:
                    self._t += min(dt, (time.perf_counter() - began) * self.speed)
                self._wall_mark = time.perf_counter()
                return 0.0
            if wake is None:
                time.sleep(dt / self.speed)
            with self._lock:
                self._t = max(self._t, t_s)
        mark = self._wall_mark
        now_wall = time.perf_counter()
        self._wall_mark = now_wall
        if mark is None:
            return 0.0
        late = (now_wall - mark) * self.speed - max(dt, 0.0)
        if late <= 0:
            return 0.0
        self.held_s += late
        return late if late > report_over_s else 0.0


class VirtualClock:
    """Simulated time that advances only by :meth:`sleep`; ``speed`` is ``inf``."""

    speed = float("inf")

    def __init__(self, start_s: float = 0.0) -> None:
        self._t = float(start_s)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._t

    def sleep(self, dt_s: float, wake: threading.Event | None = None) -> None:
        if dt_s > 0:
            with self._lock:
                self._t += dt_s

    def sleep_until(self, t_s: float, wake: threading.Event | None = None, *, report_over_s: float = 0.0) -> float:
        """Advance to ``t_s`` (if it is ahead); nothing is ever late on a virtual clock."""
        with self._lock:
            if t_s > self._t:
                self._t = t_s
        return 0.0


def clock_for_speed(speed: float, *, paced: bool = False) -> Clock:
    """``VirtualClock`` for ``speed == inf``; real time (``ScaledClock(1)``) for 1; otherwise a
    :class:`PacedClock` when ``paced`` (a simulated cell in this process, driven by the
    software-timed executor), else a ``ScaledClock``."""
    if speed == float("inf"):
        return VirtualClock()
    if paced and speed != 1.0:
        return PacedClock(speed)
    return ScaledClock(speed)
