"""One writer per run file: a lock file beside the run, ``RUN.h5.lock``.

The lock is a small JSON file (``pid``, ``host``, ``started_utc``, ``argv``, and on Linux the
process's start time ``pid_start_ticks`` from ``/proc/<pid>/stat``, which tells a reused PID
from the owner). It appears atomically with its whole content: written to a private file,
then hard-linked to ``RUN.h5.lock`` (``link`` fails if the name exists: the classic
exclusive-create that also works over NFS); where hard links are not supported it is created
with ``O_CREAT | O_EXCL``. It is removed when the writer closes the file.

A lock whose process is dead on this host is stale: the next writer takes it over and says
so (:attr:`RunLock.taken_over`). A lock of another host cannot be checked from here and counts
as live. :func:`live_owner` is the cheap query for "is someone writing this run?", e.g. before
``labctl resume`` touches any instrument.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from labctl.store.layout import RunFileError, lock_path

#: Locks held by this process (run path → lock), so a second writer in the same process is
#: refused while a lock of this PID that nobody here holds counts as stale.
_HELD: dict[Path, RunLock] = {}
_HELD_GUARD = threading.Lock()


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """State letter and start time (clock ticks since boot) of process ``pid`` from
    ``/proc/<pid>/stat`` (fields 3 and 22, proc(5)), or None where there is no ``/proc`` or no
    such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces: field 3 on
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None


def _pid_start_ticks(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


@dataclass(frozen=True)
class LockInfo:
    """Who writes a run: process id, host name, start (UTC, ISO 8601), command line, and the
    process's start time in clock ticks (Linux; None elsewhere) to tell a reused PID."""

    pid: int
    host: str
    started_utc: str
    argv: tuple[str, ...]
    pid_start_ticks: int | None = None

    @classmethod
    def of_this_process(cls, argv: Sequence[str] | None = None) -> LockInfo:
        pid = os.getpid()
        return cls(pid, socket.gethostname(), _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                   tuple(sys.argv if argv is None else argv), _pid_start_ticks(pid))

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "argv": list(self.argv)})

    @classmethod
    def from_json(cls, text: str) -> LockInfo:
        """Raises ValueError: not a lock's JSON."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int) or not isinstance(data.get("host"), str):
            raise ValueError("not a labctl lock")
        ticks = data.get("pid_start_ticks")
        return cls(int(data["pid"]), data["host"], str(data.get("started_utc", "")),
                   tuple(str(a) for a in data.get("argv", ())), ticks if isinstance(ticks, int) else None)

    def describe(self) -> str:
        """``PID 1234 on host bench-3 since 2026-05-01T09:00:00+00:00``."""
        return f"PID {self.pid} on host {self.host} since {self.started_utc or '?'}"

    @property
    def on_this_host(self) -> bool:
        return self.host == socket.gethostname()

    def alive(self) -> bool:
        """Whether the owner may still be running: True unless it is a process of this host
        that is gone (or whose PID now belongs to a process started at another time)."""
        if not self.on_this_host:
            return True  # cannot be checked from here
        if self.pid == os.getpid():
            with _HELD_GUARD:
                return any(lock.info == self for lock in _HELD.values())
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's process: it exists
        stat = _proc_stat(self.pid)
        if stat is not None:
            state, ticks = stat
            if state in ("Z", "X"):
                return False  # killed, not yet reaped by its parent
            if self.pid_start_ticks is not None and ticks != self.pid_start_ticks:
                return False  # the PID was reused by a later process
        return True


def read_lock(run_path: str | Path) -> LockInfo | None:
    """The lock of a run file, or None if there is none.

    Raises:
        RunFileError: a lock file exists but is not a labctl lock (naming it: remove it once
            no process writes the run).
    """
    path = lock_path(run_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read the run's lock ({exc.strerror})") from None
    try:
        return LockInfo.from_json(text)
    except ValueError:
        raise RunFileError(f"{path}: not a labctl lock file; remove it if no process writes "
                           f"{Path(run_path).name}") from None


def live_owner(run_path: str | Path) -> LockInfo | None:
    """The live process writing the run file at ``run_path``, or None (no lock, or a stale one).

    Cheap (reads a small file, signals nothing): call it before touching any instrument.

    Raises:
        RunFileError: the lock file is unreadable (see :func:`read_lock`).
    """
    info = read_lock(run_path)
    return info if info is not None and info.alive() else None


def writer_may_be_alive(run_path: str | Path) -> bool:
    """Whether a live process may be writing the run file: a live owner, or a lock file that
    cannot be read (then nothing is assumed). For readers, which never refuse a file for its lock."""
    try:
        return live_owner(run_path) is not None
    except RunFileError:
        return True


def owner_error(run_path: str | Path, owner: LockInfo) -> RunFileError:
    """The one-line refusal for a run that a live process writes."""
    name = Path(run_path).name
    where = "" if owner.on_this_host else " (another host: its process cannot be checked from here)"
    return RunFileError(f"{run_path}: {name} is being written by {owner.describe()}{where}; stop it first "
                        "(labctl's control socket or the GUI)")


def _create(path: Path, info: LockInfo) -> bool:
    """Create the lock file with ``info``, atomically; False if it exists."""
    data = info.to_json().encode("utf-8")
    private = path.with_name(f".{path.name}.{info.pid}.{threading.get_ident()}")
    try:
        with open(private, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(private, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links here (some network or FAT file systems)
            pass
    finally:
        private.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


class RunLock:
    """The lock of one run file, held by this process (see the module docstring).

    Use :meth:`acquire`; :meth:`release` (or the ``with`` block's end) removes the lock file.

    Attributes:
        run_path: the run file.
        info: this process's lock.
        taken_over: the stale lock of a dead writer that was replaced, or None.
    """

    def __init__(self, run_path: Path, info: LockInfo, taken_over: LockInfo | None) -> None:
        self.run_path = run_path
        self.info = info
        self.taken_over = taken_over
        self._held = True

    @classmethod
    def acquire(cls, run_path: str | Path, argv: Sequence[str] | None = None) -> RunLock:
        """Take the lock of ``run_path`` for this process.

        Raises:
            RunFileError: a live process holds it (one line naming it, its host and since
                when), or its lock file is not a labctl lock, or the lock file cannot be created.
        """
        run_path = Path(run_path).absolute()
        path = lock_path(run_path)
        info = LockInfo.of_this_process(argv)
        taken_over = None
        for _ in range(3):  # each turn either takes the lock or removes a dead owner's
            try:
                if _create(path, info):
                    lock = cls(run_path, info, taken_over)
                    with _HELD_GUARD:
                        _HELD[run_path] = lock
                    return lock
            except OSError as exc:
                raise RunFileError(f"{path}: cannot create the run's lock ({exc.strerror})") from None
            current = read_lock(run_path)
            if current is None:
                continue  # released meanwhile
            if current.alive():
                raise owner_error(run_path, current)
            if _remove_if(path, current):
                taken_over = current
        raise RunFileError(f"{path}: other processes keep taking the run's lock; try again once they are done")

    def release(self) -> None:
        """Remove the lock file (if it is still this process's). Safe to call twice."""
        if not self._held:
            return
        self._held = False
        with _HELD_GUARD:
            if _HELD.get(self.run_path) is self:
                del _HELD[self.run_path]
        _remove_if(lock_path(self.run_path), self.info)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _remove_if(path: Path, expected: LockInfo) -> bool:
    """Remove the lock file at ``path`` if it still holds ``expected``: it is first moved aside
    (atomic), so a lock another process created meanwhile is never deleted (it is put back)."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.old")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    try:
        moved = LockInfo.from_json(aside.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        moved = None
    if moved == expected:
        aside.unlink(missing_ok=True)
        return True
    try:  # someone else's lock: back in place, unless yet another appeared there
        os.link(aside, path)
    except OSError:
        pass
    aside.unlink(missing_ok=True)
    return False


__all__ = ["LockInfo", "RunLock", "live_owner", "owner_error", "read_lock", "writer_may_be_alive"]
