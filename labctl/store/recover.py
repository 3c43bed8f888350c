"""Bring a run file back after its writer died: continue it, or close it; and find where the
run must pick up.

A writer killed in SWMR mode (SIGKILL, power loss) leaves the file consistent up to its last
flush, but marked "open for write" in the superblock: HDF5 then opens it only for SWMR
reading (``h5clear -s`` is the HDF Group's tool for the mark; it is not on every machine).
:func:`copy_run` copies that consistent SWMR view into a new file with the plain h5py API;
:meth:`labctl.store.RunFileWriter.append` then moves the copy over the original atomically,
so the run continues in the same path, and :func:`finalise` turns it into a finished file
(status ``interrupted``) that every HDF5 reader opens. Columns that a crash left at different
lengths (a batch is appended column by column) are cut to the shortest, which loses at most
the readings of the last, unflushed batch.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.engine.delegated import AttachPoint
from labctl.engine.software_timed import ResumePoint
import labctl.store.layout as layout
from labctl.store.layout import RunFileError
from labctl.store.lock import LockInfo, RunLock
from labctl.store.reader import RunFile

#: Step end reasons after which the next step starts afresh.
_FINISHED = {"time", "voltage", "current", "charge", "until", "short", "soft_short"}
#: Run statuses a resume may continue; the others ended for a reason of the cell's.
RESUMABLE = {"running", "interrupted", "instrument_lost", "error", "stopped", "unknown"}
#: Largest test time a run file may resume from or record (s): ~32 years, beyond any run.
MAX_TEST_TIME_S = 1e9
#: ``status`` of a run file closed by :func:`finalise`.
CLOSED_STATUS = "interrupted"
#: ``events`` kind of the row :func:`finalise` adds.
WRITER_DIED = "writer_died"


def needs_recovery(path: str | Path) -> bool:
    """True if the file is still marked open for write (by a writer that died, or a live one).

    Raises:
        RunFileError: not a readable file.
    """
    try:
        sb = layout.superblock(path)
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read the file ({exc.strerror})") from None
    return sb is not None and sb.open_for_write


def _copy(src: h5py.File, dst: h5py.File) -> None:
    try:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in src:
            src.copy(src[name], dst, name=name)
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise layout.damaged(src, "its content to copy it", exc) from None
    layout.cut_columns(dst)
    layout.check(dst)


def copy_run(path: str | Path, dst: h5py.File) -> bool:
    """Copy the run file at ``path`` into ``dst`` (a new file open for writing). The caller
    holds the run's lock (:class:`~labctl.store.lock.RunLock`): no live writer changes it.

    A file left open by a dead SWMR writer is read through its consistent SWMR view, and its
    columns are cut to the shortest (a batch is appended column by column). Returns True in
    that case.

    Raises:
        RunFileError: the file is not a readable, complete run file (truncated, damaged, a
            part missing), naming the file and the part.
    """
    with layout.open_run(path) as src:
        crashed = bool(src.swmr_mode)
        _copy(src, dst)
    return crashed


# -- closing a killed run ------------------------------------------------------------------------
@dataclass(frozen=True)
class Closed:
    """What :func:`finalise` did.

    ``last_test_time_s``: each channel's last reading's test time (s; 0 without readings);
    ``last_written_utc``: the file's modification time before closing, the writer's last
    sign of life (ISO 8601); ``gap_s``: seconds from then to the closing; ``was_marked``: the
    file still carried HDF5's "open for write" mark; ``taken_over``: the dead writer's stale
    lock that was replaced, if any.
    """

    path: Path
    last_test_time_s: dict[str, float]
    last_written_utc: str
    gap_s: float
    was_marked: bool
    taken_over: LockInfo | None


def _iso(unix_s: float) -> str:
    return _dt.datetime.fromtimestamp(unix_s, _dt.timezone.utc).isoformat(timespec="seconds")


def _last_finite(ds: h5py.Dataset, n: int) -> float:
    """The last finite value among the first ``n`` rows of ``ds`` (read backwards in chunks),
    0.0 if none."""
    end = n
    while end > 0:
        start = max(0, end - layout.CHUNK_ROWS)
        block = np.asarray(ds[start:end], dtype=float)
        finite = np.flatnonzero(np.isfinite(block) & (np.abs(block) <= MAX_TEST_TIME_S))
        if len(finite):
            return float(block[finite[-1]])
        end = start
    return 0.0


def finalise(path: str | Path, reason: str = "",
             analyse: Callable[[RunFile], Mapping[str, Any]] | None = None,
             events: Sequence[tuple[str, str]] = ()) -> Closed:
    """Turn a run file whose writer died into a finished one that plain ``h5py.File(p, "r")``
    opens, without running anything (``labctl close``).

    The file's consistent view (SWMR, if the dead writer left the mark) is copied into a new
    file, columns cut to equal length; status ``interrupted``, ``end_reason``, ``end_time_utc``
    (the file's last modification: the writer's last sign of life); an ``events`` row of kind
    :data:`WRITER_DIED` per channel giving the last reading's test time and the gap; then the
    copy replaces the file atomically. The run's lock is held throughout (a dead writer's
    stale lock is taken over). ``results`` get ``run_status`` (``interrupted``) and
    ``run_end_reason``, and what ``analyse`` returns.

    Args:
        path: the run file.
        reason: why it is closed (stored in ``end_reason`` and the event; default: the writer
            died).
        analyse: the run's analysis (the application's: the protocol's, which the core does not
            know), called with the closed copy opened as a :class:`RunFile` before it replaces
            the file; its mapping is stored in ``results``
            (:func:`labctl.store.layout.write_group`).
        events: more ``(kind, message)`` rows for ``events`` (e.g. the guardian's), at the
            last reading's test time.

    Raises:
        RunFileError: a live process writes the run; the run is already finished (status
            not ``running``); or the file is not a readable, complete run file. One line
            naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such file")
    reason = reason or "the writer died before finishing the file"
    with RunLock.acquire(path) as lock:
        staging = layout.staging_path(path)
        mtime = path.stat().st_mtime
        try:
            with layout.open_run(path) as src:
                status = layout.decode(src.attrs.get(layout.A_STATUS, ""))
                if status != layout.RUNNING:
                    raise RunFileError(f"{path}: the run is finished (status {status!r}); nothing to close")
                with h5py.File(staging, "w", libver="latest") as dst:
                    _copy(src, dst)
                    closed = _close_copy(path, dst, mtime, bool(src.swmr_mode), lock.taken_over, reason)
                    _append_events(dst, events, max(closed.last_test_time_s.values(), default=0.0))
            results: dict[str, Any] = {"run_status": CLOSED_STATUS, "run_end_reason": reason}
            if analyse is not None:
                with RunFile(staging) as run:
                    results = {**analyse(run), **results}
            with h5py.File(staging, "r+", locking=False) as f:
                layout.write_group(layout.results_group(f), results)
            os.replace(staging, path)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
    return closed


def _close_copy(path: Path, f: h5py.File, mtime: float, marked: bool, taken_over: LockInfo | None,
                reason: str) -> Closed:
    now = time.time()
    gap_s = max(0.0, now - mtime)
    last: dict[str, float] = {}
    events = layout.events_table(f)
    for channel in layout.channel_names(f):
        t_ds = layout.column(f, channel, "test_time_s")
        n = t_ds.shape[0]
        last[channel] = _last_finite(t_ds, n)
        step = int(layout.column(f, channel, "step_index")[n - 1]) if n else -1
        message = (f"{reason}: last reading at test time {last[channel]:.1f} s; the file was last written "
                   f"{_iso(mtime)} and closed {_iso(now)}, {gap_s:.0f} s later, by `labctl close`"
                   + (f" (stale lock of {taken_over.describe()} taken over)" if taken_over else ""))
        k = events.shape[0]
        events.resize((k + 1,))
        events[k] = layout.table_row(events.dtype, (last[channel], channel, WRITER_DIED, step, message))[0]
        group = layout.channel_group(f, channel)
        if not layout.decode(group.attrs.get(layout.A_STATUS, "")):
            group.attrs[layout.A_STATUS] = CLOSED_STATUS
            group.attrs[layout.A_END_REASON] = reason
    f.attrs[layout.A_STATUS] = CLOSED_STATUS
    f.attrs[layout.A_END_REASON] = reason
    f.attrs[layout.A_END_TIME_UTC] = _iso(mtime)
    return Closed(path, last, _iso(mtime), gap_s, marked, taken_over)


def _append_events(f: h5py.File, events: Sequence[tuple[str, str]], t_s: float) -> None:
    table = layout.events_table(f)
    for kind, message in events:
        k = table.shape[0]
        table.resize((k + 1,))
        table[k] = layout.table_row(table.dtype, (t_s, "", kind, -1, message))[0]


def record_events(path: str | Path, events: Sequence[tuple[str, str]], *, writer_died_reason: str = "") -> None:
    """Put ``(kind, message)`` rows into a run file's ``events``, after its run: a file whose
    writer died is finished first (:func:`finalise`, with ``writer_died_reason``); a finished
    one gets them appended, under the run's lock.

    Raises:
        RunFileError: a live process writes the run, or the file is not a readable run file.
    """
    path = Path(path)
    with layout.open_run(path) as f:
        running = layout.decode(f.attrs.get(layout.A_STATUS, "")) == layout.RUNNING
    if running:
        finalise(path, writer_died_reason, events=events)
        return
    with RunLock.acquire(path), h5py.File(path, "r+", locking=False) as f:
        t_s = max((float(layout.column(f, ch, "test_time_s")[-1]) for ch in layout.channel_names(f)
                   if layout.column(f, ch, "test_time_s").shape[0]), default=0.0)
        _append_events(f, events, t_s)


# -- where a run picks up ------------------------------------------------------------------------
def _finite(run: RunFile, what: str, value: float) -> float:
    """``value`` if it is finite and within ±:data:`MAX_TEST_TIME_S`; else a RunFileError."""
    if not (math.isfinite(value) and abs(value) <= MAX_TEST_TIME_S):
        raise RunFileError(f"{run.path}: {what} is {value!r}; a run cannot continue from a non-finite or "
                           f"out-of-range value (finish the file with `labctl close {run.path}`)")
    return value


def resume_point(run: RunFile, channel: str) -> ResumePoint:
    """Where the run of ``channel`` picks up.

    The checkpoint is the ``steps`` table (a row after every step) plus the readings after it:
    a step with readings but no row was cut by the crash, and only its remainder will run.
    Reads the last readings and the ``step_index`` column, not whole columns.

    Raises:
        RunFileError: a test time or charge it would continue from is not finite (or beyond
            :data:`MAX_TEST_TIME_S`), or a part of the file is missing or damaged.
    """
    n = run.n_rows(channel)
    spectra = len(run.spectra(channel))
    if n == 0:
        return ResumePoint(step_index=0, t_offset_s=0.0, spectra_done=spectra)
    t_name, q_name = layout.column_path(channel, "test_time_s"), layout.column_path(channel, "charge_C")
    last_t = _finite(run, f"{t_name}[{n - 1}] (the last reading's test time)",
                     float(run.read(channel, "test_time_s", slice(n - 1, n))[0]))
    charge = _finite(run, f"{q_name}[{n - 1}] (the last reading's charge)",
                     float(run.read(channel, "charge_C", slice(n - 1, n))[0]))
    step_index = run.read(channel, "step_index", slice(0, n))
    index = int(step_index[-1])
    steps = [s for s in run.steps() if s["channel"] == channel]
    last_row = steps[-1] if steps else None
    if last_row is not None and last_row["step_index"] > index:
        # An instrument step without readings (a spectrum, a soak) ended last: after it if it
        # completed, else it runs again from its start.
        done = last_row["reason"] in _FINISHED | {"completed"}
        end_s = _finite(run, f"steps row of step {last_row['step_index']}: end_s", float(last_row["end_s"]))
        return ResumePoint(step_index=int(last_row["step_index"]) + int(done), t_offset_s=max(last_t, end_s),
                           charge_C=charge, spectra_done=spectra)
    if last_row is not None and last_row["step_index"] == index:
        if last_row["reason"] in _FINISHED:
            return ResumePoint(step_index=index + 1, t_offset_s=last_t, charge_C=charge, spectra_done=spectra,
                               previous_reason=str(last_row["reason"]))
        # A step ended early by a stop, an error or a lost instrument: its remainder runs.
        start_s = _finite(run, f"steps row of step {index}: start_s", float(last_row["start_s"]))
        end_s = _finite(run, f"steps row of step {index}: end_s", float(last_row["end_s"]))
        step_charge = _finite(run, f"steps row of step {index}: charge_C", float(last_row["charge_C"]))
        return ResumePoint(step_index=index, t_offset_s=last_t, charge_C=charge, step_elapsed_s=end_s - start_s,
                           step_charge_C=step_charge, step_start_s=start_s, spectra_done=spectra)
    first = int(np.flatnonzero(step_index == index)[0])
    t_first = _finite(run, f"{t_name}[{first}] (the test time step {index} began)",
                      float(run.read(channel, "test_time_s", slice(first, first + 1))[0]))
    q_first = _finite(run, f"{q_name}[{first}] (the charge at step {index}'s start)",
                      float(run.read(channel, "charge_C", slice(first, first + 1))[0]))
    return ResumePoint(step_index=index, t_offset_s=last_t, charge_C=charge, step_elapsed_s=last_t - t_first,
                       step_charge_C=charge - q_first, step_start_s=t_first, spectra_done=spectra)


def attach_point(run: RunFile, channel: str) -> AttachPoint:
    """Where the delegated run of ``channel`` continues: its cycler test and last point (the
    ``cycler_test_id`` / ``cycler_seq_id`` columns of the last reading), and the readings after
    its last step row, which the engine replays instead of downloading again.

    Raises:
        RunFileError: the channel has no cycler columns (not a delegated run); a test time or
            charge it would continue from is not finite; a part is missing or damaged.
    """
    if "cycler_seq_id" not in run.column_names(channel):
        raise RunFileError(f"{run.path}: channel {channel!r} was not run by a cycler (no cycler_seq_id column)")
    steps = [s for s in run.steps() if s["channel"] == channel]
    first = int(steps[-1]["step_index"]) + 1 if steps else 0
    charge = _finite(run, "the last steps row's cumulative_charge_C",
                     float(steps[-1]["cumulative_charge_C"])) if steps else 0.0
    n = run.n_rows(channel)
    if n == 0:
        return AttachPoint(test_id=0, last_seq_id=0, last_test_time_s=0.0, step_index=0, charge_base_C=0.0)
    last = slice(n - 1, n)
    last_t = _finite(run, f"{layout.column_path(channel, 'test_time_s')}[{n - 1}] (the last reading's test time)",
                     float(run.read(channel, "test_time_s", last)[0]))
    since = np.flatnonzero(run.read(channel, "step_index", slice(0, n)) >= first)
    start = int(since[0]) if len(since) else n
    keep = ("test_time_s", "voltage_V", "current_A", "step_index", "charge_C")
    replay = {k: run.read(channel, k, slice(start, n)) for k in keep}
    for name in ("test_time_s", "charge_C"):
        bad = np.flatnonzero(~np.isfinite(replay[name]))
        if len(bad):
            _finite(run, f"{layout.column_path(channel, name)}[{start + int(bad[0])}]", float(replay[name][bad[0]]))
    return AttachPoint(test_id=int(run.read(channel, "cycler_test_id", last)[0]),
                       last_seq_id=int(run.read(channel, "cycler_seq_id", last)[0]),
                       last_test_time_s=last_t, step_index=first, charge_base_C=charge,
                       since_checkpoint=replay)


__all__ = ["CLOSED_STATUS", "Closed", "MAX_TEST_TIME_S", "RESUMABLE", "WRITER_DIED", "attach_point", "copy_run",
           "record_events",
           "finalise", "needs_recovery", "resume_point"]
