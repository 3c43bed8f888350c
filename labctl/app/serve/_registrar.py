"""Keep a Tiled catalog's ``runs`` container equal to the run files in some directories.

:meth:`Registrar.sync` scans the directories (``*.h5``, recursively, hidden files and
directories skipped: a run file is built as a hidden ``.NAME.h5.staging`` and appears under its
name only once readable) and brings the container to match: a node for each new run file,
its metadata replaced when the file changed, the node removed when the file is gone. The
node's metadata is :func:`labctl.store.catalog.catalog_record`, a pure function of the file,
so a catalog built from scratch and one kept up to date hold the same records.

A run being written changes every fraction of a second; its record (status, results) is
re-read at most every ``running_refresh_s``. The scan polls the file system (``os.scandir``
and ``stat``) instead of waiting for change notifications: notifications do not cross the
network shares (SMB, NFS) through which a lab server sees its bench PCs' run directories.

The registrar talks to the catalog through the Tiled client (HTTP, with the server's API
key), as ``tiled register`` does; it never writes to a run file. Nodes whose file lies outside
the registrar's directories are left alone (another registrar may own them).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tiled.client.utils import ClientError

from labctl.store.catalog import RECORD_SCHEMA, RUN_SPEC, catalog_record
from labctl.store.reader import RunFileError

logger = logging.getLogger("labctl.serve")

#: Name of the container that holds the runs (``http://HOST:PORT/runs``).
RUNS_CONTAINER = "runs"
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
#: Catalog changes sent at once.
WRITERS = 4


@dataclass(frozen=True)
class RunsDirectory:
    """A directory of run files, with an optional label (the bench it belongs to).

    With a label, the keys of its runs start with ``LABEL.``, so several benches whose files
    have the same names can be served together.
    """

    path: Path
    label: str = ""

    @classmethod
    def parse(cls, text: str) -> RunsDirectory:
        """``DIR`` or ``LABEL=DIR`` (a label of letters, digits, ``_`` and ``-``).

        Raises:
            ValueError: the directory does not exist, or the label has other characters.
        """
        label, sep, path = text.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]+", label):
            label, path = "", text
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise ValueError(f"{path}: no such directory")
        return cls(directory.resolve(), label)

    def key(self, file: Path) -> str:
        """The run's key in the catalog: its path below the directory without ``.h5``,
        ``/`` as ``.``, characters other than letters, digits and ``._+-`` as ``_``."""
        relative = file.relative_to(self.path).with_suffix("")
        key = _KEY_UNSAFE.sub("_", ".".join(relative.parts))
        return f"{self.label}.{key}" if self.label else key

    def files(self) -> Iterable[Path]:
        """The ``*.h5`` files below the directory, sorted, hidden ones skipped."""
        stack = [self.path]
        found: list[Path] = []
        while stack:
            try:
                entries = list(os.scandir(stack.pop()))
            except OSError as exc:  # a share that went away, a directory without permission
                logger.warning("cannot list %s: %s", exc.filename, exc.strerror)
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.name.endswith(".h5") and entry.is_file(follow_symlinks=False):
                    found.append(Path(entry.path))
        return sorted(found)


@dataclass
class SyncReport:
    """What one :meth:`Registrar.sync` did: keys added, updated, removed; files skipped with
    the reason (not a run file, a key collision)."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass
class _Known:
    path: str
    mtime_ns: int
    size_bytes: int
    status: str
    schema: int
    checked_s: float  # time.monotonic() of the last read of the file


def _data_source(path: str) -> Any:
    from tiled.structures.core import StructureFamily
    from tiled.structures.data_source import Asset, DataSource, Management
    from tiled.utils import ensure_uri

    from labctl.app.serve._adapter import RUN_FILE_MIMETYPE

    return DataSource(structure_family=StructureFamily.container, mimetype=RUN_FILE_MIMETYPE, structure=None,
                      parameters={}, management=Management.external,
                      assets=[Asset(data_uri=ensure_uri(path), is_directory=False, parameter="data_uri")])


class Registrar:
    """Mirror ``directories`` into the Tiled container ``runs`` (see the module docstring).

    Args:
        runs: the Tiled client of the ``runs`` container, authenticated to write to it.
        directories: the run directories, in order of precedence (on a key collision the file
            found first keeps the key).
        running_refresh_s: least time between two reads of a run that is being written.
        clock: monotonic seconds (tests give their own).
    """

    def __init__(self, runs: Any, directories: Iterable[RunsDirectory], *, running_refresh_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.runs = runs
        self.directories = tuple(directories)
        self.running_refresh_s = running_refresh_s
        self._clock = clock
        self._known: dict[str, _Known] | None = None
        self._bad: dict[str, tuple[int, int]] = {}  # path → (mtime_ns, size) of a file that is no run file
        self._told: set[tuple[str, str]] = set()  # skips already logged
        self._lock = threading.Lock()

    def _owned(self, path: str) -> bool:
        return any(Path(path).is_relative_to(d.path) for d in self.directories)

    def _load(self) -> dict[str, _Known]:
        """The registered runs this registrar owns, from the catalog."""
        known: dict[str, _Known] = {}
        for key, node in self.runs.items():
            cat = dict(node.metadata).get("catalog") or {}
            path = cat.get("path")
            if isinstance(path, str) and self._owned(path):
                known[key] = _Known(path, int(cat.get("mtime_ns", -1)), int(cat.get("size_bytes", -1)),
                                    str(dict(node.metadata).get("attrs", {}).get("status", "")),
                                    int(cat.get("schema", 0)), -float("inf"))
        return known

    def _scan(self, report: SyncReport) -> dict[str, tuple[Path, RunsDirectory]]:
        found: dict[str, tuple[Path, RunsDirectory]] = {}
        for directory in self.directories:
            for file in directory.files():
                key = directory.key(file)
                if key in found:
                    report.skipped.append((str(file), f"key {key!r} is already {found[key][0]}"))
                    continue
                found[key] = (file, directory)
        return found

    def sync(self) -> SyncReport:
        """Bring the catalog to match the directories now; see the module docstring.

        Raises:
            httpx.HTTPError, tiled.client.utils.ClientError: the server cannot be reached or
                refused a change (the next sync tries again).
        """
        with self._lock:
            return self._sync()

    def _sync(self) -> SyncReport:
        report = SyncReport()
        if self._known is None:
            self._known = self._load()
        known = self._known
        found = self._scan(report)
        changes: list[tuple[str, dict[str, Any]]] = []
        now = self._clock()
        for key, (file, directory) in found.items():
            path = str(file)
            try:
                stat = file.stat()
            except OSError:  # removed since the scan
                continue
            state = (stat.st_mtime_ns, stat.st_size)
            k = known.get(key)
            if k is not None and k.path == path and (k.mtime_ns, k.size_bytes) == state and k.schema == RECORD_SCHEMA:
                continue
            if k is not None and k.status == "running" and now - k.checked_s < self.running_refresh_s:
                continue
            if self._bad.get(path) == state:
                continue
            try:
                record = catalog_record(file, bench=directory.label)
            except RunFileError as exc:
                self._bad[path] = state
                report.skipped.append((path, str(exc)))
                continue
            self._bad.pop(path, None)
            changes.append((key, record))

        def remove(key: str) -> None:
            with contextlib.suppress(KeyError):  # already gone
                self.runs[key].delete()
            known.pop(key, None)
            report.removed.append(key)

        def register(key: str, record: dict[str, Any]) -> None:
            if key in known:
                self.runs[key].replace_metadata(metadata=record, drop_revision=True)
                report.updated.append(key)
            else:
                try:
                    self.runs.new("container", [_data_source(record["catalog"]["path"])], key=key, metadata=record,
                                  specs=[RUN_SPEC])
                except ClientError as exc:  # a node of that key, left by another registrar or an old catalog
                    if exc.response.status_code != 409:
                        raise
                    self.runs[key].delete()
                    self.runs.new("container", [_data_source(record["catalog"]["path"])], key=key, metadata=record,
                                  specs=[RUN_SPEC])
                report.added.append(key)
            cat = record["catalog"]
            known[key] = _Known(cat["path"], cat["mtime_ns"], cat["size_bytes"], str(record["attrs"].get("status", "")),
                                RECORD_SCHEMA, now)

        # The catalog's answers take most of the time (HTTP and an SQL commit per change):
        # a few at once keep the server busy.
        with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="labctl-serve-register") as pool:
            for future in [pool.submit(remove, key) for key in sorted(set(known) - set(found))]:
                future.result()
            for future in [pool.submit(register, key, record) for key, record in changes]:
                future.result()
        report.added.sort()
        report.updated.sort()
        report.removed.sort()
        for skip in report.skipped:
            if skip not in self._told:
                self._told.add(skip)
                logger.warning("not served: %s: %s", *skip)
        return report

    def run(self, stop: threading.Event, interval_s: float, on_sync: Callable[[SyncReport], None] | None = None) -> None:
        """Sync every ``interval_s`` until ``stop`` is set; a failed sync is logged and retried."""
        while not stop.is_set():
            try:
                report = self.sync()
            except Exception as exc:  # the server is shutting down, the network share is away …
                logger.warning("catalog sync failed (retrying in %g s): %s", interval_s, exc)
                self._known = None  # reload from the catalog: it may have changed meanwhile
            else:
                if on_sync is not None:
                    on_sync(report)
            stop.wait(interval_s)
