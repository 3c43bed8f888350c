"""A run queue: several protocol files run one after the other on one station (e.g. EIS, then a
CCD staircase, then EIS again on the same cell), each in its own run file, through the one run
path of :mod:`labctl.app.run`.

The queue lives in the run process (``labctl run A.yaml B.yaml C.yaml --queue``), not in a
window: a window that closes, crashes or opens later finds it going. With ``--control`` the
process serves one control socket for the whole queue (:class:`labctl.app.control.ControlServer`
with ``queue=``): its status says which run is under way and lists the queue; ``queue_append``
and ``queue_remove`` edit the pending entries while it runs.

What ends the queue: a stop or an emergency stop (the run under way ends, nothing more starts),
Ctrl-C or a termination signal (the same), and a run that ends on a fault — a lost instrument,
an error, a safety trip — after which the next protocol would meet the same instrument or cell
(the pending entries stay listed as not run). A short or a completed run lets the queue go on
(a CCD staircase ends on its short as planned; an EIS after a short is what one wants to see).
On the simulated station each run starts its own simulator of its protocol's cell (the
simulator lives as long as one run).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.app.run import SessionResult, default_output_path, load_checked
from labctl.yamlfile import FileError
from protocols import load_protocol

#: Run statuses after which the queue does not go on.
STOPPING_STATUSES = frozenset({"stopped", "interrupted", "instrument_lost", "error", "safety"})


@dataclass
class QueueEntry:
    """One protocol file of the queue and, once run, its run file and how it ended."""

    id: int
    protocol_path: Path
    kind: str
    name: str
    state: str = "pending"  # pending, running, done, not run
    run_file: str | None = None
    status: str | None = None  # the run's status once ended
    summary: str = ""

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "protocol": str(self.protocol_path), "kind": self.kind, "name": self.name,
                "state": self.state, "run_file": self.run_file, "status": self.status, "summary": self.summary}


@dataclass
class RunQueue:
    """The entries of a queue, safe to read and edit from the control socket's threads.

    Args:
        simulate: protocols appended are checked as for a simulated run.
    """

    simulate: bool = False
    entries: list[QueueEntry] = field(default_factory=list)
    stop_reason: str | None = None
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _lock: Any = field(default_factory=threading.Lock)

    def append(self, protocol: str | Path | None) -> QueueEntry:
        """Add a protocol file at the end (checked first: a bad file is refused, one line).

        Raises:
            ValueError: no path, or the file does not load or expand to a program.
        """
        if not protocol:
            raise ValueError("queue_append: give the protocol file (protocol=PATH)")
        path = Path(protocol).resolve()
        try:
            loaded, _program = load_checked(path, simulate=self.simulate)
        except FileError as exc:
            raise ValueError("; ".join(exc.lines)) from None
        with self._lock:
            if self.stop_reason is not None:
                raise ValueError(f"the queue has ended ({self.stop_reason}); start a new one")
            entry = QueueEntry(next(self._ids), path, loaded.kind, loaded.name or path.stem)
            self.entries.append(entry)
        return entry

    def remove(self, entry_id: Any) -> None:
        """Take a pending entry off.

        Raises:
            ValueError: no pending entry has that id (the run under way is stopped, not removed).
        """
        with self._lock:
            for entry in self.entries:
                if str(entry.id) == str(entry_id):
                    if entry.state != "pending":
                        raise ValueError(f"queue entry {entry_id} is {entry.state}; only pending entries are removed "
                                         "(stop the run under way instead)")
                    self.entries.remove(entry)
                    return
        raise ValueError(f"no queue entry {entry_id}")

    def stop(self, reason: str) -> None:
        """Start nothing more; the pending entries become ``not run``."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            for entry in self.entries:
                if entry.state == "pending":
                    entry.state = "not run"

    def next(self) -> QueueEntry | None:
        """The next pending entry, now ``running`` (None: nothing left, or stopped)."""
        with self._lock:
            if self.stop_reason is not None:
                return None
            for entry in self.entries:
                if entry.state == "pending":
                    entry.state = "running"
                    return entry
        return None

    def describe(self) -> dict[str, Any]:
        """What the control socket reports: ``entries`` (in order) and ``stopped`` (the reason, or None)."""
        with self._lock:
            return {"entries": [e.describe() for e in self.entries], "stopped": self.stop_reason}


def run_queue(queue: RunQueue, run_one: Callable[[QueueEntry, Path], SessionResult], *, output_dir: str | Path,
              on_result: Callable[[QueueEntry, SessionResult | None, str | None], None] | None = None) -> list[QueueEntry]:
    """Run the queue's entries one after the other until none is pending or it is stopped.

    Args:
        run_one: runs one entry into the given run file (e.g. :func:`labctl.app.run.run_protocol`
            with the station, speed and control-socket hook); raises as it does.
        output_dir: where the run files go (``<UTC time>_<kind>.h5``).
        on_result: told each entry's result, or the one line why it could not run.

    Returns the entries. A run interrupted by Ctrl-C or a signal stops the queue; a run whose
    file or instrument is refused is recorded ``not run`` (its line in ``summary``) and the
    queue stops too (the next would meet the same station).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    while True:
        entry = queue.next()
        if entry is None:
            break
        try:
            protocol = load_protocol(entry.protocol_path)
            path = default_output_path(protocol, output_dir)
            n = 1
            while path.exists():
                n += 1
                path = path.with_name(f"{path.stem}-{n}.h5")
            entry.run_file = str(path.resolve())
            result = run_one(entry, path)
        except Exception as exc:  # noqa: BLE001 - a file or instrument refused: one line, the queue stops
            lines = getattr(exc, "lines", None)
            entry.state, entry.status = "not run", "error"
            entry.summary = lines[0] if lines else str(exc)
            queue.stop(f"{entry.protocol_path.name} could not run")
            if on_result is not None:
                on_result(entry, None, entry.summary)
            break
        entry.state, entry.status = "done", result.outcome.status
        entry.summary = result.summary[0] if result.summary else result.outcome.reason
        if on_result is not None:
            on_result(entry, result, None)
        if result.interrupted:
            queue.stop("interrupted")
            break
        if result.outcome.status in STOPPING_STATUSES:
            queue.stop(f"{Path(entry.run_file).name} ended: {result.outcome.status}")
            break
    return queue.entries


__all__ = ["QueueEntry", "RunQueue", "STOPPING_STATUSES", "run_queue"]
