"""Clocks shared by the engine and the simulators.

A clock gives the time in seconds (``now()``) and waits (``sleep(dt_s)``) on one time base.
The engine and a simulated instrument that share a clock agree on simulated time, so an
8-hour staircase can be dry-run in seconds:

* :class:`ScaledClock` runs ``speed`` times faster than the wall clock (``speed=1`` is real
  time); it works across processes when both sides use the same ``speed``.
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


def clock_for_speed(speed: float) -> Clock:
    """``VirtualClock`` for ``speed == inf``, else a ``ScaledClock``."""
    return VirtualClock() if speed == float("inf") else ScaledClock(speed)
