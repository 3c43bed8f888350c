"""A run file summarised in bounded memory (``labctl inspect``).

Columns are read :data:`BLOCK_ROWS` rows at a time (counts, min/max, first/last values, non-finite
values), the ``events`` table from its tail, the ``steps`` table not at all (its length is
its row count), and of ``results`` only the top-level attributes and small datasets. Memory
does not grow with the run: a 12 000 h file needs no more than a 9 h one
(``benchmarks/bench_inspect.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import labctl.store.layout as layout
from labctl.store.layout import RunFileError, decode
from labctl.store.lock import LockInfo, read_lock
from labctl.store.reader import RunFile

#: Rows per block when scanning a column (64 × 8 KiB rows = 512 KiB of float64).
BLOCK_ROWS = 8 * layout.CHUNK_ROWS
#: Rows read per step backwards through the ``events`` table.
EVENT_BLOCK_ROWS = layout.TABLE_CHUNK_ROWS
#: Top-level ``results`` datasets up to this many elements are read; larger ones are described.
SMALL_RESULT_ELEMENTS = 1000


@dataclass(frozen=True)
class ColumnSummary:
    """One column over its first ``n`` rows: min/max of its finite values (NaN if none),
    first and last values, and how many values are NaN or infinite."""

    n: int
    min: float
    max: float
    first: float
    last: float
    n_nonfinite: int


@dataclass(frozen=True)
class ChannelSummary:
    """One channel: its reading count (the shortest column), and each column's summary."""

    name: str
    n_readings: int
    columns: dict[str, ColumnSummary]


@dataclass(frozen=True)
class RunSummary:
    """What ``labctl inspect`` shows of a run file.

    ``attrs``: root attributes; ``channels``: per channel; ``n_steps`` / ``n_events``: rows of
    the tables; ``last_events``: up to ``n_last_events`` rows from the end of ``events``
    (oldest first) whose kind is not in ``skip_event_kinds``; ``results``: the top-level
    attributes and small datasets of ``results`` (large ones as ``"<dataset shape …>"``), and
    ``result_groups`` its sub-groups; ``marked_open``: HDF5's "open for write" mark is set
    (the writer is running or died in SWMR mode); ``owner``: the live writer (its lock), or
    None; ``stale_lock``: a lock left by a writer that is gone; ``lock_error``: why the lock
    file beside it cannot be read ("" if it can, or there is none).
    """

    path: Path
    attrs: dict[str, Any]
    channels: tuple[ChannelSummary, ...]
    n_steps: int
    n_events: int
    last_events: tuple[dict[str, Any], ...]
    results: dict[str, Any]
    result_groups: tuple[str, ...]
    marked_open: bool
    owner: LockInfo | None
    stale_lock: LockInfo | None = field(default=None)
    lock_error: str = ""

    @property
    def status(self) -> str:
        return str(self.attrs.get(layout.A_STATUS, ""))

    @property
    def live(self) -> bool:
        """A live process writes the file."""
        return self.owner is not None

    @property
    def killed(self) -> bool:
        """The run's writer died before finishing the file: status still ``running`` and no
        live owner (the file needs ``labctl resume`` or ``labctl close``)."""
        return self.status == layout.RUNNING and self.owner is None and not self.lock_error

    @property
    def ended_in_file(self) -> bool:
        """The events hold the run's end (``run_ended``) though the status says ``running``:
        the writer died between its last flush and its status write."""
        return any(e.get("kind") == "run_ended" for e in self.last_events)


def summarise_column(ds: h5py.Dataset, n: int, block_rows: int = BLOCK_ROWS) -> ColumnSummary:
    """Min/max/first/last/non-finite count of ``ds[:n]``, reading ``block_rows`` rows at a time."""
    lo, hi, bad = np.inf, -np.inf, 0
    first = last = float("nan")
    for start in range(0, n, block_rows):
        block = np.asarray(ds[start:min(n, start + block_rows)], dtype=float)
        if start == 0:
            first = float(block[0])
        last = float(block[-1])
        finite = np.isfinite(block)
        bad += int(len(block) - np.count_nonzero(finite))
        if finite.any():
            values = block if finite.all() else block[finite]
            lo, hi = min(lo, float(values.min())), max(hi, float(values.max()))
    if lo > hi:
        lo = hi = float("nan")
    return ColumnSummary(n, lo, hi, first, last, bad)


def _last_events(run: RunFile, count: int, skip: frozenset[str]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    end = run.n_events()
    while end > 0 and len(kept) < count:
        start = max(0, end - EVENT_BLOCK_ROWS)
        rows = [e for e in run.events(slice(start, end)) if e["kind"] not in skip]
        kept = rows[-(count - len(kept)):] + kept if rows else kept
        end = start
    return kept


def _results(group: h5py.Group) -> tuple[dict[str, Any], tuple[str, ...]]:
    values: dict[str, Any] = {key: decode(v) for key, v in group.attrs.items()}
    groups = []
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            groups.append(key)
        elif item.size <= SMALL_RESULT_ELEMENTS:
            values[key] = list(item.asstr()[()]) if h5py.check_string_dtype(item.dtype) is not None else item[()]
        else:
            values[key] = f"<dataset {' × '.join(map(str, item.shape))} {item.dtype}>"
    return values, tuple(groups)


def summarise(path: str | Path, *, n_last_events: int = 8,
              skip_event_kinds: frozenset[str] = frozenset({"run_started"})) -> RunSummary:
    """Summarise the run file at ``path`` in bounded memory (see the module docstring); also a
    file that is being written, or whose writer died.

    Raises:
        RunFileError: missing, not HDF5, truncated, damaged, or not a labctl run file; a part of
            the layout missing (one line naming the file and the part).
    """
    path = Path(path)
    with RunFile(path) as run:
        attrs = run.attrs
        channels = []
        for name in run.channels:
            n = run.n_rows(name)
            cols = {}
            for col in run.column_names(name):
                ds = run.column(name, col)
                try:
                    cols[col] = summarise_column(ds, n)
                except (OSError, RuntimeError, ValueError) as exc:
                    raise layout.damaged(ds, layout.column_path(name, col), exc) from None
            channels.append(ChannelSummary(name, n, cols))
        group = run.results_group()
        try:
            results, result_groups = _results(group)
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise layout.damaged(group, layout.RESULTS, exc) from None
        last_events = _last_events(run, n_last_events, skip_event_kinds)
        lock_error = ""
        try:
            lock = read_lock(path)
        except RunFileError as exc:
            lock, lock_error = None, str(exc)
        return RunSummary(
            path=path, attrs=attrs, channels=tuple(channels), n_steps=run.n_steps(), n_events=run.n_events(),
            last_events=tuple(last_events), results=results, result_groups=result_groups,
            marked_open=run.swmr, owner=run.owner,
            stale_lock=lock if lock is not None and run.owner is None else None, lock_error=lock_error,
        )


__all__ = ["BLOCK_ROWS", "ChannelSummary", "ColumnSummary", "RunSummary", "RunFileError", "summarise",
           "summarise_column"]
