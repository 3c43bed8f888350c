"""``labctl serve``: a Tiled server over run directories, with a catalog kept up to date.

The server is Tiled's own application (``tiled.server.app.build_app``) over a SQL catalog
(``tiled.catalog.from_uri``: SQLite by default, PostgreSQL for a lab server), run by uvicorn;
labctl adds the adapter for its run files (:mod:`._adapter`) and the registrar that mirrors
the directories into the catalog (:mod:`._registrar`). The run processes never talk to it:
a bench's run file is its source of truth, and a server or network outage cannot slow a run.

Access:

* bound to a loopback address (the default, 127.0.0.1) and without ``api_key``, anyone on
  this machine may read (Tiled's "public" mode); the registrar writes with a random key;
* with ``api_key``, every request needs it (``?api_key=``, the ``Authorization: Apikey``
  header, or ``TILED_API_KEY`` for the Tiled client);
* on any other address an API key is required: :meth:`ServeConfig.check` refuses to start
  an open server on a network, and :meth:`LabServer.start` checks once the server runs that
  an anonymous request is refused, before it registers a single run.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.app.serve._registrar import RUNS_CONTAINER, Registrar, RunsDirectory, SyncReport

#: A lab server's API key: letters and digits (Tiled's rule), at least this long.
MIN_API_KEY_LENGTH = 16
#: Seconds to wait for the server to listen, and for its catalog to initialise.
START_TIMEOUT_S = 60.0


class ServeError(Exception):
    """The server cannot start as configured; the message says why in one line."""


def is_loopback(host: str) -> bool:
    """True if ``host`` (an address or a name) reaches only this machine.

    ``0.0.0.0`` and ``::`` (every interface) are not loopback; a name is loopback only if every
    address it resolves to is.
    """
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def catalog_uri(text: str) -> str:
    """A ``--catalog`` value as a database URI: ``sqlite:///…`` and ``postgresql://…`` as they
    are, a plain path as an SQLite file.

    Raises:
        ServeError: another scheme.
    """
    if re.match(r"^(sqlite|postgresql)(\+\w+)?://", text):
        return text
    if "://" in text:
        raise ServeError(f"--catalog {text}: give sqlite:///PATH, postgresql://USER@HOST/DB or a file path")
    return f"sqlite:///{Path(text).expanduser().resolve()}"


@dataclass(frozen=True)
class ServeConfig:
    """What ``labctl serve`` serves and how.

    ``catalog``: database URI (:func:`catalog_uri`), ``None`` for an SQLite file in a temporary
    directory (removed when the server stops; the catalog is rebuilt from the files at each
    start). ``port`` 0 picks a free port. ``scan_interval_s``: how often the directories are
    scanned for new and changed files; ``running_refresh_s``: least time between two reads
    of the record of a run that is being written.
    """

    directories: tuple[RunsDirectory, ...]
    catalog: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    scan_interval_s: float = 2.0
    running_refresh_s: float = 5.0

    def check(self) -> None:
        """Refuse a configuration that must not run.

        Raises:
            ServeError: no directory, two with the same path, a non-loopback host without
                API key, an API key Tiled would refuse or too short for a network, bad
                intervals or port.
        """
        if not self.directories:
            raise ServeError("give at least one run directory")
        paths = [d.path for d in self.directories]
        if len(set(paths)) != len(paths):
            raise ServeError("a run directory is given twice")
        labels = [d.label for d in self.directories if d.label]
        if len(set(labels)) != len(labels):
            raise ServeError("two run directories have the same label")
        if self.api_key is not None and not re.fullmatch(r"[A-Za-z0-9]+", self.api_key):
            raise ServeError("--api-key: letters and digits only (e.g. python -c 'import secrets; "
                             "print(secrets.token_hex(32))')")
        if not is_loopback(self.host):
            if self.api_key is None:
                raise ServeError(f"--host {self.host} is reachable from the network: give --api-key KEY "
                                 "(or TILED_SINGLE_USER_API_KEY) so that only its holders read the runs; "
                                 "e.g. --api-key $(python -c 'import secrets; print(secrets.token_hex(32))')")
            if len(self.api_key) < MIN_API_KEY_LENGTH:
                raise ServeError(f"--api-key: at least {MIN_API_KEY_LENGTH} characters on a network address")
        if not 0 <= self.port <= 65535:
            raise ServeError(f"--port {self.port}: not a TCP port")
        if not (0.1 <= self.scan_interval_s <= 3600 and 0 <= self.running_refresh_s <= 3600):
            raise ServeError("--scan-interval-s: between 0.1 and 3600 s")

    @property
    def public(self) -> bool:
        """Anonymous reading allowed: loopback without API key."""
        return self.api_key is None and is_loopback(self.host)


#: The LabServer running in this process, if any (see :class:`LabServer`).
_running: list[LabServer] = []
_running_lock = threading.Lock()


class LabServer:
    """A running ``labctl serve``: Tiled on uvicorn, plus the registrar thread.

    One per process at a time: Tiled keeps its access settings (API key, anonymous access)
    in one process-wide object, so a second server would change the first one's access rule.

    Use :meth:`start` (server on a thread; tests, the GUI) or :meth:`serve_forever` (in the
    calling thread until SIGINT/SIGTERM; the CLI), and :meth:`stop`. As a context manager it
    starts and stops. :attr:`uri` is the server's address once it runs (``http://HOST:PORT``).

    Args:
        config: what to serve.
        on_sync: called by the registrar thread after each sync with its report.

    Raises (from :meth:`start`):
        ServeError: bad configuration (:meth:`ServeConfig.check`), another LabServer runs in
            this process, the address is taken, the catalog cannot be opened, or the server
            answered an anonymous request although it must not.
    """

    def __init__(self, config: ServeConfig, on_sync: Callable[[SyncReport], None] | None = None) -> None:
        self.config = config
        self.on_sync = on_sync
        self.uri = ""
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self._tempdir: Path | None = None
        self._registrar: Registrar | None = None
        self._write_key = ""

    # -- building ------------------------------------------------------------------------
    def _build(self) -> Any:
        import uvicorn
        from tiled.catalog import from_uri as catalog_from_uri
        from tiled.catalog.adapter import DatabaseInitializationError
        from tiled.config import Authentication
        from tiled.server.app import build_app

        from labctl.app.serve._adapter import RUN_FILE_MIMETYPE, RunFileAdapter

        config = self.config
        config.check()
        database = config.catalog
        if database is None:
            self._tempdir = Path(tempfile.mkdtemp(prefix="labctl-catalog-"))
            database = f"sqlite:///{self._tempdir / 'catalog.db'}"
        try:
            tree = catalog_from_uri(database, readable_storage=[str(d.path) for d in config.directories],
                                    init_if_not_exists=True,
                                    adapters_by_mimetype={RUN_FILE_MIMETYPE: RunFileAdapter})
        except DatabaseInitializationError as exc:
            last = (str(exc).strip().splitlines() or ["?"])[-1]
            raise ServeError(f"--catalog: cannot open or create the catalog database ({last})") from None
        # The registrar writes with this key; readers need it too unless the server is public.
        self._write_key = config.api_key or secrets.token_hex(32)
        app = build_app(tree, Authentication(single_user_api_key=self._write_key,
                                             allow_anonymous_access=config.public))
        uv = uvicorn.Config(app, host=config.host, port=config.port, log_level="warning", lifespan="on")
        return uvicorn.Server(uv)

    def _address(self) -> str:
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1" if host == "0.0.0.0" else "::1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def _wait_started(self, thread: threading.Thread | None) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if (thread is not None and not thread.is_alive()) or self._server.should_exit:
                raise ServeError(f"the server did not start on {self.config.host}:{self.config.port} "
                                 "(address in use? see the messages above)")
            if time.monotonic() > deadline:
                raise ServeError(f"the server did not start within {START_TIMEOUT_S:g} s")
            time.sleep(0.02)
        self.uri = self._address()

    def _check_access(self) -> None:
        """Refuse to go on if the server answers an anonymous request it must refuse."""
        import httpx

        if self.config.public:
            return
        response = httpx.get(f"{self.uri}/api/v1/metadata/", timeout=30.0, trust_env=False)
        if response.status_code not in (401, 403):
            raise ServeError(f"the server at {self.uri} answered an unauthenticated request "
                             f"(HTTP {response.status_code}); stopping")

    def _start_registrar(self) -> None:
        from tiled.client import from_uri

        root = from_uri(self.uri, api_key=self._write_key)
        if RUNS_CONTAINER not in root:
            root.create_container(RUNS_CONTAINER, metadata={"description": "labctl run files"})
        self._registrar = Registrar(root[RUNS_CONTAINER], self.config.directories,
                                    running_refresh_s=self.config.running_refresh_s)

        def on_sync(report: SyncReport) -> None:
            self._synced.set()
            if self.on_sync is not None:
                self.on_sync(report)

        thread = threading.Thread(target=self._registrar.run, name="labctl-serve-registrar", daemon=True,
                                  args=(self._stop, self.config.scan_interval_s, on_sync))
        thread.start()
        self._threads.append(thread)

    # -- running -------------------------------------------------------------------------
    def start(self) -> LabServer:
        """Start the server on a thread, check its access rule, start the registrar; return
        once the server answers (the first sync runs in the background: :meth:`wait_synced`)."""
        with _running_lock:
            if _running:
                raise ServeError(f"a labctl server already runs in this process ({_running[0].uri}); "
                                 "Tiled's access settings are process-wide: stop it first")
            _running.append(self)
        try:
            self._server = self._build()
        except BaseException:
            self.stop()
            raise
        thread = threading.Thread(target=self._server.run, name="labctl-serve-uvicorn", daemon=True)
        thread.start()
        self._threads.append(thread)
        try:
            self._wait_started(thread)
            self._check_access()
            self._start_registrar()
        except BaseException:
            self.stop()
            raise
        return self

    def serve_forever(self, on_started: Callable[[LabServer], None] | None = None) -> None:
        """Start (:meth:`start`), call ``on_started``, serve until SIGINT or SIGTERM, stop.

        Must run in the main thread (it handles the signals itself: uvicorn's handlers would
        re-raise SIGTERM after their shutdown and kill the process before the cleanup).

        Raises:
            ServeError: as :meth:`start`, or the server stopped by itself.
        """
        stop = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            if on_started is not None:
                on_started(self)
            while not stop.wait(0.5):
                if not all(thread.is_alive() for thread in self._threads):
                    raise ServeError("the server stopped by itself (see the messages above)")
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def wait_synced(self, timeout_s: float) -> bool:
        """Wait until the registrar has finished a sync since it started; False on timeout."""
        return self._synced.wait(timeout_s)

    def sync(self) -> SyncReport:
        """Sync the catalog with the directories now, in the calling thread (tests, tools)."""
        if self._registrar is None:
            raise ServeError("the server is not running")
        return self._registrar.sync()

    def stop(self) -> None:
        """Stop the registrar and the server; remove a temporary catalog. Safe to call twice."""
        self._stop.set()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=30.0)
        self._threads.clear()
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
        with _running_lock:
            if self in _running:
                _running.remove(self)

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
