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

One handle per file in a process: HDF5 shares a file opened twice in one process, and a dataset
open under two identifiers is not refreshed right — the second reader of a growing file then
gets the rows of the wrong chunk (from row 8192 on, the first chunk's data again: the window
opening a channel the channel grid already follows drew lines back in time that are not in the
file). So every follower of a file in this process shares one :class:`h5py.File` and one
:class:`h5py.Dataset` per dataset (:func:`_acquire`); the settled file is re-opened in normal
mode only once no follower holds its live (SWMR) handle.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import labctl.store.layout as layout
from labctl.store.layout import RunFileError, decode, read_group, records
from labctl.store.lock import writer_may_be_alive
from labctl.store.spectra import GROUP as SPECTRA_GROUP

#: What a file being finished under a reader may raise while it is read.
_TRANSIENT = (OSError, RuntimeError, KeyError, ValueError, RunFileError)

#: Seconds to wait for results after a run without control socket has ended.
SETTLE_TIMEOUT_S = 2.0


class _Shared:
    """The one open handle of a run file in this process, its users, and one dataset object
    per dataset name (see the module docstring)."""

    def __init__(self, key: str, f: h5py.File) -> None:
        self.key = key
        self.file = f
        self.users = 1
        self.datasets: dict[str, h5py.Dataset] = {}

    @property
    def live(self) -> bool:
        """Opened in SWMR mode (a writer may still append)."""
        return bool(self.file.swmr_mode)

    def dataset(self, name: str, get: Callable[[], h5py.Dataset]) -> h5py.Dataset:
        """The dataset ``name``, opened once (by ``get``) for every user."""
        with _OPEN_LOCK:
            ds = self.datasets.get(name)
            if ds is None:
                ds = self.datasets[name] = get()
            return ds


#: Run files open in this process, by resolved path.
_OPEN: dict[str, _Shared] = {}
_OPEN_LOCK = threading.RLock()


def _key(path: Path) -> str:
    return str(path.resolve())


def _acquire(path: Path, opener: Callable[[], h5py.File], *, live_ok: bool = True) -> _Shared | None:
    """The shared handle of ``path`` (opened by ``opener`` if nobody holds it). With
    ``live_ok=False`` a handle held open in SWMR mode by another user is not shared: None
    (the caller waits until it is released). Raises what ``opener`` raises."""
    key = _key(path)
    with _OPEN_LOCK:
        shared = _OPEN.get(key)
        if shared is not None:
            if shared.live and not live_ok:
                return None
            shared.users += 1
            return shared
        shared = _OPEN[key] = _Shared(key, opener())
        return shared


def _release(shared: _Shared) -> None:
    """One user less; the last closes the file."""
    with _OPEN_LOCK:
        shared.users -= 1
        if shared.users > 0:
            return
        _OPEN.pop(shared.key, None)
        shared.datasets.clear()
        shared.file.close()


@dataclass
class Update:
    """What one :meth:`RunFollower.poll` found.

    ``rows``: new readings (column name → 1-D array, equal lengths; empty dict if none);
    ``step_starts``: (test time s, step index) of steps whose first reading is among the new
    rows; ``events`` / ``steps``: new rows of those tables as dicts; ``attrs``: root attributes
    (on the first poll and at the end); ``results``: the results group (at the end);
    ``finished``: the run has ended and everything is read; ``spectra``: new rows of the
    channel's impedance spectra (:mod:`labctl.store.spectra`), if it has any.
    """

    rows: dict[str, np.ndarray] = field(default_factory=dict)
    step_starts: list[tuple[float, int]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    attrs: dict[str, Any] | None = None
    results: dict[str, Any] | None = None
    finished: bool = False
    spectra: dict[str, np.ndarray] = field(default_factory=dict)
    """New rows of the channel's impedance spectra (``spectra/<channel>``, column → 1-D array)."""

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
        spectra: also read the channel's new impedance spectra rows (:attr:`Update.spectra`).

    Raises:
        RunFileError (from :meth:`poll`): the file is missing or not a labctl run file.
    """

    def __init__(self, path: str | Path, *, socket_path: str | Path | None = None, channel: str | None = None,
                 columns: Iterable[str] | None = None, spectra: bool = True) -> None:
        self.path = Path(path)
        self.socket_path = None if socket_path is None else Path(socket_path)
        self.channel = channel
        self.columns = None if columns is None else {"test_time_s", "step_index", *columns}
        self.spectra = spectra
        self._shared: _Shared | None = None
        self._seen_rows = 0
        self._seen_events = 0
        self._seen_steps = 0
        self._seen_spectra = 0
        self._last_step = -1
        self._ended_at: float | None = None
        self._sent_attrs = False
        self._cache: tuple | None = None  # (file, column datasets, events, steps, spectrum datasets)
        self.finished = False

    # ------------------------------------------------------------------------------------
    def _opener(self, swmr: bool | None) -> Callable[[], h5py.File]:
        """Opens the run file, its layout checked; ``swmr=None``: SWMR only if a writer has it
        open, ``False``: refuse a file still marked open for write."""
        return lambda: layout.open_run(self.path, swmr=swmr, writer_alive=writer_may_be_alive(self.path))

    def _acquire(self, swmr: bool | None, *, live_ok: bool = True) -> _Shared | None:
        """The file's shared handle (None: another follower still holds it live and
        ``live_ok`` is False), the channel chosen.

        Raises:
            RunFileError: as :func:`labctl.store.layout.open_run`, or the file has no channel.
        """
        shared = _acquire(self.path, self._opener(swmr), live_ok=live_ok)
        if shared is not None and self.channel is None:
            channels = layout.channel_names(shared.file)
            if not channels:
                _release(shared)
                raise RunFileError(f"{self.path}: the run file has no channel")
            self.channel = channels[0]
        return shared

    def close(self) -> None:
        self._cache = None
        if self._shared is not None:
            shared, self._shared = self._shared, None
            _release(shared)

    def _handles(self, shared: _Shared) -> tuple[dict[str, h5py.Dataset], h5py.Dataset, h5py.Dataset,
                                                dict[str, h5py.Dataset]]:
        """The column, ``events``, ``steps`` and spectrum datasets of the shared file, looked
        up once per open file (a poll that finds nothing new then costs little more than the
        refreshes)."""
        f = shared.file
        if self._cache is None or self._cache[0] is not f:
            channel = self.channel
            try:
                names = [n for n in layout.channel_group(f, channel) if self.columns is None or n in self.columns]
            except (OSError, RuntimeError) as exc:
                raise layout.damaged(f, layout.channel_path(channel), exc) from None
            datasets = {n: shared.dataset(layout.column_path(channel, n), lambda n=n: layout.column(f, channel, n))
                        for n in names}
            events = shared.dataset(layout.EVENTS, lambda: layout.events_table(f))
            steps = shared.dataset(layout.STEPS, lambda: layout.steps_table(f))
            spectra: dict[str, h5py.Dataset] = {}
            group = f.get(f"{SPECTRA_GROUP}/{channel}") if self.spectra else None
            if isinstance(group, h5py.Group):
                spectra = {n: shared.dataset(f"{SPECTRA_GROUP}/{channel}/{n}", lambda n=n: group[n]) for n in group}
            self._cache = (f, datasets, events, steps, spectra)
        return self._cache[1:]

    def _read_new(self, shared: _Shared, update: Update, *, refresh: bool) -> None:
        datasets, events, steps_ds, spectra = self._handles(shared)
        if refresh:
            events.refresh()
            steps_ds.refresh()
            for ds in (*datasets.values(), *spectra.values()):
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
        if spectra:
            m = min(ds.shape[0] for ds in spectra.values())
            if m > self._seen_spectra:
                update.spectra = {name: ds[self._seen_spectra:m] for name, ds in spectra.items()}
                self._seen_spectra = m

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
            if self._shared is None:
                self._shared = self._acquire(swmr=None)
                if decode(self._shared.file.attrs.get(layout.A_STATUS, "")) != layout.RUNNING \
                        and not self._shared.live:  # finished: read it whole, once
                    self.close()
                    self._ended_at = time.monotonic()
                    return self._finish(update)
            try:
                if not self._sent_attrs:
                    update.attrs = {k: decode(v) for k, v in self._shared.file.attrs.items()}
                    self._sent_attrs = True
                self._read_new(self._shared, update, refresh=self._shared.live)
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
            shared = self._acquire(swmr=False, live_ok=False)
        except RunFileError:
            if not self.path.is_file():
                raise
            # Still open for writing, or left so by a writer that died: after the settling
            # time, read it as it is.
            waited = time.monotonic() - (self._ended_at or 0.0)
            if waited < SETTLE_TIMEOUT_S and (self.socket_path is None or self.socket_path.exists()):
                return update
            shared = self._acquire(swmr=True, live_ok=False)
        if shared is None:  # another follower in this process still reads it live: next time
            return update
        try:
            f = shared.file
            attrs = {k: decode(v) for k, v in f.attrs.items()}
            results = read_group(layout.results_group(f))
            if not self._settled(results):
                return update
            self._read_new(shared, update, refresh=shared.live)
            update.attrs = attrs
            update.results = results
        except _TRANSIENT:
            return update
        finally:
            self._cache = None
            _release(shared)
        update.finished = self.finished = True
        return update


def run_channels(path: str | Path) -> list[str]:
    """The channel groups of a run file (one for a single-cell run).

    Raises:
        RunFileError: the file is missing or not a labctl run file.
    """
    follower = RunFollower(path)
    shared = follower._acquire(swmr=None)
    try:
        return layout.channel_names(shared.file)
    finally:
        _release(shared)
