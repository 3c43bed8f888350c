"""Termination signals end a run the safe way, as Ctrl-C does.

``kill PID`` (SIGTERM) and a closed terminal or SSH session (SIGHUP) would otherwise end the
process at once, the output on. Inside :func:`signals_end_the_run`, SIGINT, SIGTERM and
SIGHUP raise :class:`~labctl.engine.Interrupted` in the main thread (SIGINT as plain
``KeyboardInterrupt``, whose reason stays "Ctrl-C"); the executors' run template then makes
the channel safe (output off and confirmed), the run file is finished with status
``interrupted``, the control socket is removed, and the process exits 128 + the signal
number. A second signal while the run is ending is noted and ignored, so the output-off
and the file's last writes are never cut short (the guardian covers a SIGKILL).

After SIGHUP the terminal is gone: standard output and error are pointed at ``/dev/null``
so that printing the run's summary cannot fail.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from labctl.engine import Interrupted

#: The signals that end a run safely.
ENDING_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SignalRecord:
    """Which ending signal came first (``None`` while none has), for the exit code."""

    def __init__(self) -> None:
        self.first: signal.Signals | None = None

    @property
    def exit_code(self) -> int | None:
        """128 + the signal's number (130 for Ctrl-C), or None."""
        return None if self.first is None else 128 + int(self.first)


def _silence_terminal() -> None:
    """Point stdout and stderr at /dev/null (the terminal that owned them has hung up)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # the terminal is gone: what it had buffered is lost with it
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


@contextmanager
def signals_end_the_run() -> Iterator[SignalRecord]:
    """Within the block, SIGINT, SIGTERM and SIGHUP end the run safely (see the module).

    Must be entered from the main thread (Python runs signal handlers there).
    """
    record = SignalRecord()

    def handler(signum: int, _frame: object) -> None:
        sig = signal.Signals(signum)
        if sig is signal.SIGHUP:
            _silence_terminal()
        if record.first is not None:
            return  # already ending: let the output-off and the file's last writes finish
        record.first = sig
        if sig is signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(sig.name)

    previous = {sig: signal.signal(sig, handler) for sig in ENDING_SIGNALS}
    try:
        yield record
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


__all__ = ["ENDING_SIGNALS", "SignalRecord", "signals_end_the_run"]
