"""Follow a run file while it is written: read only what was appended since the last look.

:class:`RunFollower` is plain Python (no Qt) so the benchmark and tests can drive it directly;
:mod:`ui.watcher` runs it on a worker thread. Each :meth:`RunFollower.poll` refreshes the
file's datasets (HDF5 SWMR) and reads rows ``[seen, now)`` of each column, plus new rows of
``events`` and ``steps``: the cost of a poll is proportional to the new data, not to the
length of the run.

End of a run: the writer leaves SWMR mode and rewrites the root attributes, then the session
stores the analysis results. A reader must not hold the file during that, so once the
``run_ended`` event is seen the follower closes its handle and waits until the run has settled
(its control socket is gone, or — without one — its results are stored), then reads the rest
once in normal mode. Files are opened through :func:`labctl.store.layout.open_run` (HDF5 file
locking off: a reader holding a lock would make the writer's final re-open fail; SWMR reads with
a bounded number of metadata retries). Anything the closing writer makes momentarily
unreadable (``OSError``, ``RuntimeError``, a part missing) ends the live phase and is read
again once the run has settled.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import labctl.store.layout as layout
from labctl.store.layout import RunFileError, decode, read_group, records
from labctl.store.lock import writer_may_be_alive

#: What a file being finished under a reader may raise while it is read.
_TRANSIENT = (OSError, RuntimeError, KeyError, ValueError, RunFileError)

#: Seconds to wait for results after a run without control socket has ended.
SETTLE_TIMEOUT_S = 2.0


@dataclass
class Update:
    """What one :meth:`RunFollower.poll` found.

    ``rows``: new readings (column name → 1-D array, equal lengths; empty dict if none);
    ``step_starts``: (test time s, step index) of steps whose first reading is among the new
    rows; ``events`` / ``steps``: new rows of those tables as dicts; ``attrs``: root attributes
    (on the first poll and at the end); ``results``: the results group (at the end);
    ``finished``: the run has ended and everything is read.
    """

    rows: dict[str, np.ndarray] = field(default_factory=dict)
    step_starts: list[tuple[float, int]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    attrs: dict[str, Any] | None = None
    results: dict[str, Any] | None = None
    finished: bool = False

    @property
    def n_rows(self) -> int:
        return len(self.rows.get("test_time_s", ()))


class RunFollower:
    """Incremental reader of one run file (see the module docstring).

    Args:
        path: the run's ``.h5`` file.
        socket_path: its control socket, if it has one; its removal tells that the run
            process has stored its results.
        channel: channel group to follow (default: the first).
        columns: the reading columns to read (default: all); ``test_time_s`` and
            ``step_index`` are always read (step starts need them). A grid of many channels
            reads only what its small plots show.

    Raises:
        RunFileError (from :meth:`poll`): the file is missing or not a labctl run file.
    """

    def __init__(self, path: str | Path, *, socket_path: str | Path | None = None, channel: str | None = None,
                 columns: Iterable[str] | None = None) -> None:
        self.path = Path(path)
        self.socket_path = None if socket_path is None else Path(socket_path)
        self.channel = channel
        self.columns = None if columns is None else {"test_time_s", "step_index", *columns}
        self._file: h5py.File | None = None
        self._seen_rows = 0
        self._seen_events = 0
        self._seen_steps = 0
        self._last_step = -1
        self._ended_at: float | None = None
        self._sent_attrs = False
        self._cache: tuple | None = None  # (file, column datasets, events, steps)
        self.finished = False

    # ------------------------------------------------------------------------------------
    def _open(self, swmr: bool | None) -> h5py.File:
        """The run file, its layout checked; ``swmr=None``: SWMR only if a writer has it open,
        ``False``: refuse a file still marked open for write."""
        f = layout.open_run(self.path, swmr=swmr, writer_alive=writer_may_be_alive(self.path))
        if self.channel is None:
            channels = layout.channel_names(f)
            if not channels:
                f.close()
                raise RunFileError(f"{self.path}: the run file has no channel")
            self.channel = channels[0]
        return f

    def close(self) -> None:
        self._cache = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _handles(self, f: h5py.File) -> tuple[dict[str, h5py.Dataset], h5py.Dataset, h5py.Dataset]:
        """The column, ``events`` and ``steps`` datasets of ``f``, looked up once per open file
        (a poll that finds nothing new then costs little more than the refreshes)."""
        if self._cache is None or self._cache[0] is not f:
            names = None if self.columns is None else [n for n in layout.columns(f, self.channel) if n in self.columns]
            datasets = layout.columns(f, self.channel, names)
            self._cache = (f, datasets, layout.events_table(f), layout.steps_table(f))
        return self._cache[1:]

    def _read_new(self, f: h5py.File, update: Update, *, refresh: bool) -> None:
        datasets, events, steps_ds = self._handles(f)
        if refresh:
            events.refresh()
            steps_ds.refresh()
            for ds in datasets.values():
                ds.refresh()
        n = min(ds.shape[0] for ds in datasets.values())
        if n > self._seen_rows:
            rows = {name: ds[self._seen_rows:n] for name, ds in datasets.items()}
            steps = rows["step_index"]
            prev = np.concatenate(([self._last_step], steps[:-1]))
            starts = np.flatnonzero(steps != prev)
            t = rows["test_time_s"]
            update.step_starts = [(float(t[i]), int(steps[i])) for i in starts]
            self._last_step = int(steps[-1])
            self._seen_rows = n
            update.rows = rows
        if events.shape[0] > self._seen_events:
            update.events = records(events[self._seen_events:])
            self._seen_events = events.shape[0]
        if steps_ds.shape[0] > self._seen_steps:
            update.steps = records(steps_ds[self._seen_steps:])
            self._seen_steps = steps_ds.shape[0]

    def _settled(self, results: dict[str, Any]) -> bool:
        if self.socket_path is not None:
            return not self.socket_path.exists()
        return "run_status" in results or time.monotonic() - (self._ended_at or 0.0) > SETTLE_TIMEOUT_S

    def poll(self) -> Update:
        """Read what is new; see :class:`Update`. Returns an empty update once finished."""
        update = Update()
        if self.finished:
            return update
        if self._ended_at is None:
            if self._file is None:
                self._file = self._open(swmr=None)
                if decode(self._file.attrs.get(layout.A_STATUS, "")) != layout.RUNNING:  # finished: read it whole, once
                    self.close()
                    self._ended_at = time.monotonic()
                    return self._finish(update)
            try:
                if not self._sent_attrs:
                    update.attrs = {k: decode(v) for k, v in self._file.attrs.items()}
                    self._sent_attrs = True
                self._read_new(self._file, update, refresh=True)
            except _TRANSIENT:  # the writer is closing the file under us
                self.close()
                self._ended_at = time.monotonic()
                return update
            ended = any(e["kind"] == "run_ended" for e in update.events)
            gone = self.socket_path is not None and not self.socket_path.exists()
            if ended or gone:
                self.close()
                self._ended_at = time.monotonic()
            return update
        return self._finish(update)

    def _finish(self, update: Update) -> Update:
        try:
            f = self._open(swmr=False)
        except RunFileError:
            if not self.path.is_file():
                raise
            # Still open for writing, or left so by a writer that died: after the settling
            # time, read it as it is.
            waited = time.monotonic() - (self._ended_at or 0.0)
            if waited < SETTLE_TIMEOUT_S and (self.socket_path is None or self.socket_path.exists()):
                return update
            f = self._open(swmr=True)
        try:
            attrs = {k: decode(v) for k, v in f.attrs.items()}
            results = read_group(layout.results_group(f))
            if not self._settled(results):
                return update
            self._read_new(f, update, refresh=False)
            update.attrs = attrs
            update.results = results
        except _TRANSIENT:
            return update
        finally:
            self._cache = None
            f.close()
        update.finished = self.finished = True
        return update


def run_channels(path: str | Path) -> list[str]:
    """The channel groups of a run file (one for a single-cell run).

    Raises:
        RunFileError: the file is missing or not a labctl run file.
    """
    follower = RunFollower(path)
    f = follower._open(swmr=None)
    try:
        return layout.channel_names(f)
    finally:
        f.close()
