"""Runs on a Tiled server (``labctl serve``), read as if they were local run files.

A run's address is a URL: ``http://HOST:PORT/runs/KEY`` (also Tiled's own spelling
``http://HOST:PORT/api/v1/metadata/runs/KEY``); the server is ``http://HOST:PORT``. A server
that needs an API key gets it from ``api_key=`` or the environment variable ``TILED_API_KEY``
(the Tiled client's convention).

* :class:`RemoteRun` has the reader API of :class:`labctl.store.RunFile` (``attrs``,
  ``channels``, ``columns``, ``units``, ``events``, ``steps``, ``results``), and reads a
  channel's columns from any row on (:meth:`RemoteRun.columns` ``start=``), so a run that
  is still being written can be followed;
* :class:`RemoteFollower` is :class:`labctl.store.follow.RunFollower` over the server: each
  :meth:`~RemoteFollower.poll` returns the rows, events and steps added since the last;
* :func:`find_runs` searches the catalog (kind, electrolyte, operator, status, bench, start
  time) and returns :class:`CatalogEntry` rows with each run's headline results;
* :func:`fetch_run` downloads a run's file as it is on the bench (the server sends the file's
  bytes), for the tools that need a file (``labctl report``, ``labctl export``);
* :func:`open_run` opens a path as :class:`~labctl.store.RunFile` and a URL as
  :class:`RemoteRun`.

Every failure (server unreachable, key missing or refused, no such run) is a
:class:`~labctl.store.RunFileError` naming the URL. Needs the Tiled client
(``pip install 'labctl[serve]'``).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from labctl.store.catalog import HEADLINE_RESULTS, RUN_SPEC, SEARCH_KEYS
from labctl.store.follow import SETTLE_TIMEOUT_S, Update
from labctl.store.reader import RunFile, RunFileError, decode, records

#: The container of the runs on a ``labctl serve`` server.
RUNS_CONTAINER = "runs"
#: Seconds a follower waits, after a run's ``run_ended`` event, for the catalog to show the
#: run's end (the server re-reads a running run's record every few seconds) and its results.
REMOTE_SETTLE_TIMEOUT_S = max(SETTLE_TIMEOUT_S, 30.0)
_API = "/api/v1"


def is_remote(target: str | Path) -> bool:
    """True if ``target`` is an ``http://`` or ``https://`` URL (a run or server on Tiled)."""
    return isinstance(target, str) and target.lower().startswith(("http://", "https://"))


def api_uri(target: str) -> str:
    """A labctl run or server URL as the Tiled client's node URL
    (``http://H:P/runs/K`` → ``http://H:P/api/v1/metadata/runs/K``); Tiled's own URLs pass.

    Raises:
        RunFileError: not an http(s) URL with a host.
    """
    parts = urlsplit(target)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise RunFileError(f"{target}: not a server address (http://HOST:PORT[/runs/KEY])")
    path = parts.path.rstrip("/")
    if not path.startswith(_API):
        path = f"{_API}/metadata{path}"
    elif path in (_API, f"{_API}/metadata"):
        path = f"{_API}/metadata"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _tiled_client() -> Any:
    try:
        import tiled.client
    except ImportError:
        raise RunFileError("reading from a server needs the Tiled client: pip install 'labctl[serve]'") from None
    return tiled.client


@contextlib.contextmanager
def _errors(target: str) -> Iterator[None]:
    """Turn the Tiled client's and httpx's errors into one-line :class:`RunFileError`."""
    import httpx

    try:
        yield
    except httpx.HTTPStatusError as exc:
        code = exc.response.status_code
        if code in (401, 403):
            raise RunFileError(f"{target}: the server refused access (HTTP {code}); give its API key "
                               "(--api-key or the environment variable TILED_API_KEY)") from None
        if code == 404:
            raise RunFileError(f"{target}: the server has no such run or container") from None
        raise RunFileError(f"{target}: the server answered HTTP {code}") from None
    except httpx.HTTPError as exc:
        raise RunFileError(f"{target}: cannot reach the server ({exc.__class__.__name__}: {exc})") from None
    except KeyError as exc:
        raise RunFileError(f"{target}: the server has no {exc.args[0]!r} there") from None
    except RuntimeError as exc:  # tiled.client.from_uri, on a server that needs a key and got none
        if "API key" not in str(exc):
            raise
        raise RunFileError(f"{target}: the server refused access: it needs an API key "
                           "(--api-key or the environment variable TILED_API_KEY)") from None


def connect(target: str, *, api_key: str | None = None) -> Any:
    """The Tiled client node at ``target`` (a run, the ``runs`` container or the server root).

    Raises:
        RunFileError: unreachable, refused, or no such node.
    """
    client = _tiled_client()
    with _errors(target):
        return client.from_uri(api_uri(target), api_key=api_key)


def _runs_container(target: str, api_key: str | None) -> Any:
    node = connect(target, api_key=api_key)
    with _errors(target):
        if RUN_SPEC not in [spec.name for spec in node.specs] and RUNS_CONTAINER in node:
            return node[RUNS_CONTAINER]
    return node


class RemoteRun:
    """A run on a Tiled server, with the reader API of :class:`labctl.store.RunFile`.

    Reading a column reads the rows the server has at that moment: a run that is still being
    written grows between two calls. Use as a context manager (closing is a no-op kept for
    the RunFile API).

    Args:
        target: the run's URL (``http://HOST:PORT/runs/KEY``).
        api_key: the server's API key (default: ``TILED_API_KEY``).

    Raises:
        RunFileError: unreachable, refused, no such run, or not a labctl run.
    """

    def __init__(self, target: str, *, api_key: str | None = None, node: Any = None) -> None:
        self.uri = target
        self._node = node if node is not None else connect(target, api_key=api_key)
        if RUN_SPEC not in [spec.name for spec in self._node.specs]:
            raise RunFileError(f"{target}: not a labctl run (its node lacks the spec '{RUN_SPEC}')")
        self.key: str = self._node.item["id"]

    def __enter__(self) -> RemoteRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to release: every read is one HTTP request."""

    def refresh(self) -> None:
        """Re-read the run's catalog record (its status, results); columns are always fresh."""
        with _errors(self.uri):
            self._node = self._node.refresh()

    @property
    def record(self) -> dict[str, Any]:
        """The run's catalog record (:func:`labctl.store.catalog.catalog_record`)."""
        return dict(self._node.metadata)

    @property
    def attrs(self) -> dict[str, Any]:
        """The file's root attributes, as the catalog last read them (the server re-reads a
        running run every few seconds; non-finite numbers are ``None``)."""
        return dict(self.record.get("attrs", {}))

    def _get(self, *path: str) -> Any:
        with _errors(self.uri):
            node = self._node
            for segment in path:
                node = node[segment]
            return node

    @property
    def channels(self) -> list[str]:
        return list(self._get("channels"))

    def channel_attrs(self, channel: str) -> dict[str, Any]:
        return dict(self._get("channels", channel).metadata)

    def _arrays(self, channel: str, names: Iterable[str] | None) -> dict[str, Any]:
        """The channel's column nodes (one request lists them with their current shapes)."""
        group = self._get("channels", channel)
        wanted = None if names is None else set(names)
        with _errors(self.uri):
            return {name: node for name, node in group.items() if wanted is None or name in wanted}

    def n_readings(self, channel: str) -> int:
        """Rows every column of the channel has now."""
        return min((node.shape[0] for node in self._arrays(channel, None).values()), default=0)

    def columns(self, channel: str, start: int = 0, stop: int | None = None,
                names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Rows ``[start, stop)`` of the channel's columns (all, or ``names``), cut to the
        rows every column has now (``stop=None``: to the end). A follower passes the number
        of rows it has as ``start`` and gets only the new ones.

        Returns:
            name → 1-D array, all of the same length (0 if nothing new).
        """
        arrays = self._arrays(channel, names)
        n = min((node.shape[0] for node in arrays.values()), default=0)
        end = n if stop is None else min(stop, n)
        start = max(0, start)
        with _errors(self.uri):
            if end <= start:
                return {name: np.empty(0, dtype=node.dtype) for name, node in arrays.items()}
            return {name: np.asarray(node[start:end]) for name, node in arrays.items()}

    def units(self, channel: str) -> dict[str, str]:
        return {name: str(node.metadata.get("units", "")) for name, node in self._arrays(channel, None).items()}

    def _table(self, name: str, start: int = 0) -> list[dict[str, Any]]:
        node = self._get(name)
        with _errors(self.uri):
            n = node.shape[0]
            return records(np.asarray(node[start:n])) if n > start else []

    def events(self) -> list[dict[str, Any]]:
        return self._table("events")

    def steps(self) -> list[dict[str, Any]]:
        return self._table("steps")

    def results(self) -> dict[str, Any]:
        """The ``results`` group as :meth:`labctl.store.RunFile.results` gives it: attributes
        and datasets, sub-groups as dicts, string datasets as lists of ``str``."""
        return _read_group(self, self._get("results"))


def _read_group(run: RemoteRun, group: Any) -> dict[str, Any]:
    with _errors(run.uri):
        out: dict[str, Any] = {key: decode(value) for key, value in group.metadata.items()}
        for key, node in group.items():
            if node.structure_family == "container":
                out[key] = _read_group(run, node)
                continue
            data = np.asarray(node.read())
            if data.dtype.kind in "SU" and data.ndim == 1:
                out[key] = [decode(v) if isinstance(v, bytes) else str(v) for v in data.tolist()]
            else:
                out[key] = data if data.ndim else data[()]
    return out


def open_run(target: str | Path, *, api_key: str | None = None) -> RunFile | RemoteRun:
    """A run file (path, opened in SWMR mode so a run being written can be read) or a run on
    a server (URL) behind the same reader API.

    Raises:
        RunFileError: as :class:`~labctl.store.RunFile` or :class:`RemoteRun`.
    """
    if is_remote(target):
        return RemoteRun(str(target), api_key=api_key)
    return RunFile(Path(target), swmr=True)


def fetch_run(target: str, directory: str | Path, *, api_key: str | None = None) -> Path:
    """Download the run file at ``target`` into ``directory`` (created), as ``KEY.h5``: the
    bytes of the bench's file as the server has them.

    A run still being written is copied while it grows, so the copy may be unreadable; the
    catalog's status tells (``running``) and the tools that read the copy say so.

    Returns:
        The local file.

    Raises:
        RunFileError: unreachable, refused, no such run, or the server does not send files.
    """
    run = RemoteRun(target, api_key=api_key)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run.key}.h5"
    partial = directory / f".{run.key}.h5.part"
    with _errors(target):
        node = run._node.include_data_sources()
        assets = [asset for source in node.data_sources() for asset in source.assets]
        if len(assets) != 1:
            raise RunFileError(f"{target}: the server lists {len(assets)} files for one run")
        # Tiled's raw-asset endpoint (the one Node.raw_export uses), read as one stream.
        url = node.item["links"]["self"].replace("/metadata/", "/asset/bytes/", 1)
        with node.context.http_client.stream("GET", url, params={"id": assets[0].id},
                                             headers={"Accept-Encoding": "identity"}) as response:
            response.raise_for_status()
            with partial.open("wb") as sink:
                for chunk in response.iter_bytes():
                    sink.write(chunk)
    partial.replace(path)
    return path


@dataclass(frozen=True)
class CatalogEntry:
    """One run found by :func:`find_runs`: its key, URL and catalog record."""

    key: str
    uri: str
    record: dict[str, Any]

    def _attr(self, name: str) -> Any:
        return self.record.get("attrs", {}).get(name)

    @property
    def kind(self) -> str:
        return str(self._attr("protocol_kind") or "")

    @property
    def status(self) -> str:
        return str(self._attr("status") or "")

    @property
    def start_time_utc(self) -> str:
        return str(self._attr("start_time_utc") or "")

    @property
    def electrolyte(self) -> str:
        return str(self._attr("cell_electrolyte") or "")

    @property
    def operator(self) -> str:
        return str(self._attr("operator") or "")

    @property
    def bench(self) -> str:
        return str(self.record.get("catalog", {}).get("bench") or "")

    @property
    def headline(self) -> dict[str, Any]:
        """The results a table shows for this kind of run (:data:`HEADLINE_RESULTS`), those
        the run has; for another kind, its first three numeric results."""
        results = self.record.get("results", {})
        names = HEADLINE_RESULTS.get(self.kind)
        if names is None:
            names = tuple(k for k, v in results.items()
                          if isinstance(v, int | float) and not isinstance(v, bool))[:3]
        return {name: results[name] for name in names if name in results}


def unix_time_s(text: str) -> float:
    """``2026-11-01`` or an ISO 8601 time as Unix seconds (UTC unless it names a zone).

    Raises:
        ValueError: not an ISO 8601 date or time.
    """
    when = _dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.timestamp()


def find_runs(server: str, *, kind: str | None = None, electrolyte: str | None = None,
              operator: str | None = None, status: str | None = None, bench: str | None = None,
              since: str | float | None = None, until: str | float | None = None,
              limit: int | None = None, api_key: str | None = None) -> list[CatalogEntry]:
    """The runs on ``server`` that match every filter given, newest first.

    Args:
        server: the server (``http://HOST:PORT``) or its ``runs`` container.
        kind: protocol kind, exactly (``ccd_staircase``).
        electrolyte, operator: text the cell's electrolyte / the operator contains, any case
            (SQL ``LIKE``: ``%`` and ``_`` in it are wildcards).
        status: run status, exactly (``running``, ``completed``, ``short`` …).
        bench: the run directory's label (``labctl serve NAME=DIR``).
        since, until: start time bounds, ISO 8601 (``2026-11-01``) or Unix seconds.
        limit: at most this many runs.

    Raises:
        RunFileError: unreachable or refused server.
        ValueError: ``since``/``until`` not ISO 8601.
    """
    bounds = [(unix_time_s(b) if isinstance(b, str) else float(b), op)
              for b, op in ((since, "ge"), (until, "lt")) if b is not None]  # bad dates fail before any request
    runs = _runs_container(server, api_key)  # first: says so if the Tiled client is missing
    from tiled.queries import Key, Like

    queries: list[Any] = []
    if kind:
        queries.append(Key(SEARCH_KEYS["kind"]) == kind)
    if status:
        queries.append(Key(SEARCH_KEYS["status"]) == status)
    if bench:
        queries.append(Key(SEARCH_KEYS["bench"]) == bench)
    for field_name, text in (("electrolyte", electrolyte), ("operator", operator)):
        if text:
            # SQL LIKE: no escape character that SQLite and PostgreSQL share, so % and _ are wildcards
            queries.append(Like(SEARCH_KEYS[field_name], f"%{text.lower()}%"))
    for value, op in bounds:
        key = Key(SEARCH_KEYS["start_unix_time_s"])
        queries.append(key >= value if op == "ge" else key < value)
    base = server.rstrip("/")
    base = base[: base.index(_API)] if _API in base else urlunsplit(urlsplit(base)[:2] + ("", "", ""))
    found: list[CatalogEntry] = []
    with _errors(server):
        for query in queries:
            runs = runs.search(query)
        runs = runs.sort((SEARCH_KEYS["start_unix_time_s"], -1))
        for key, node in runs.items():
            found.append(CatalogEntry(key, f"{base}/{RUNS_CONTAINER}/{key}", dict(node.metadata)))
            if limit is not None and len(found) >= limit:
                break
    return found


class RemoteFollower:
    """:class:`labctl.store.follow.RunFollower` for a run on a server: each :meth:`poll`
    returns an :class:`~labctl.store.follow.Update` with what was added since the last.

    A poll costs a few requests (the channel's column list, the new rows of each column
    followed, the new rows of ``events`` and ``steps``), proportional to the new data. The
    run has ended once its ``run_ended`` event arrived and its results are stored, or
    :data:`REMOTE_SETTLE_TIMEOUT_S` after that event; a run whose catalog status is not
    ``running`` is read whole at the first poll.

    Args:
        target: the run's URL.
        channel: channel to follow (default: the first).
        columns: the columns to read (default: all; ``test_time_s`` and ``step_index`` always).
        api_key: the server's API key (default: ``TILED_API_KEY``).
        clock: monotonic seconds (tests give their own).
    """

    def __init__(self, target: str, *, channel: str | None = None, columns: Iterable[str] | None = None,
                 api_key: str | None = None, clock: Any = time.monotonic) -> None:
        self.run = RemoteRun(target, api_key=api_key)
        self.channel = channel or (self.run.channels or [None])[0]
        if self.channel is None:
            raise RunFileError(f"{target}: the run has no channel")
        self.columns = None if columns is None else {"test_time_s", "step_index", *columns}
        self._clock = clock
        self._rows = self._events = self._steps = 0
        self._last_step = -1
        self._ended_at: float | None = None
        self._sent_attrs = False
        self.finished = False

    def close(self) -> None:
        self.run.close()

    def _read_new(self, update: Update) -> None:
        rows = self.run.columns(self.channel, self._rows, names=self.columns)
        n = len(rows.get("test_time_s", ()))
        if n:
            steps = rows["step_index"]
            prev = np.concatenate(([self._last_step], steps[:-1]))
            starts = np.flatnonzero(steps != prev)
            update.step_starts = [(float(rows["test_time_s"][i]), int(steps[i])) for i in starts]
            self._last_step = int(steps[-1])
            self._rows += n
            update.rows = rows
        update.events = self.run._table("events", self._events)
        self._events += len(update.events)
        update.steps = self.run._table("steps", self._steps)
        self._steps += len(update.steps)

    def poll(self) -> Update:
        """Read what is new; see :class:`~labctl.store.follow.Update`. Empty once finished.

        Raises:
            RunFileError: the server cannot be reached or refuses (the next poll may succeed).
        """
        update = Update()
        if self.finished:
            return update
        if not self._sent_attrs:
            update.attrs = self.run.attrs
            self._sent_attrs = True
            if update.attrs.get("status") != "running":
                self._ended_at = self._clock()
        settled, results = False, None
        if self._ended_at is not None:  # decide before reading: no row can follow a settled end
            self.run.refresh()
            results = self.run.results()
            waited = self._clock() - self._ended_at
            ended = self.run.attrs.get("status") != "running"
            settled = (ended and ("run_status" in results or waited > SETTLE_TIMEOUT_S)) \
                or waited > REMOTE_SETTLE_TIMEOUT_S
        self._read_new(update)
        if self._ended_at is None and any(e["kind"] == "run_ended" for e in update.events):
            self._ended_at = self._clock()
        if settled:
            update.attrs = self.run.attrs
            update.results = results
            update.finished = self.finished = True
        return update


__all__ = ["REMOTE_SETTLE_TIMEOUT_S", "RUNS_CONTAINER", "CatalogEntry", "RemoteFollower", "RemoteRun", "api_uri",
           "connect", "fetch_run", "find_runs", "is_remote", "open_run", "unix_time_s"]
