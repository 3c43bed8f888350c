"""The local control channel of a run: stop, pause, resume and status from another process.

A run started with ``labctl run ... --control`` listens on a Unix domain socket (by default
``<run file>.ctl``) so that the GUI, or any other local program, can command it while the run
lives in its own process — closing or crashing the window never touches the run.

Wire format: JSON lines. The client sends one object per line, ``{"command": NAME}``, with
NAME one of :data:`COMMANDS`; the server answers each with one line, the run's status::

    {"ok": true, "state": "running", "output": "on", "run_file": "/abs/run.h5",
     "pid": 1234, "stop_reason": null}

or ``{"ok": false, "error": "..."}`` for a request it cannot parse. A request may carry arguments
beside its command (``{"command": "queue_append", "protocol": "/abs/eis.yaml"}``). ``state`` is the engine's
(:class:`~labctl.engine.EngineState`: idle, running, pausing, paused, stopping, ended); ``output`` is
``"on"`` from the engine's start until it has turned the output off and confirmed it (state
``ended``), ``"off"`` otherwise.

Only the user who started the run can reach it. The server listens in a directory only that
user owns (:func:`private_socket_dir`: ``$XDG_RUNTIME_DIR/labctl``, else
``<tmp>/labctl-<uid>``; created with mode 0700, and refused if it is someone else's, a link,
or open to others), the socket itself has mode 0600, and the server checks each connecting
process's user id (``SO_PEERCRED``) and refuses any other. The requested path (``RUN.h5.ctl``
beside the run file) is a symbolic link to that socket; clients follow the link, check that
the socket and its directory are theirs, and check the server's user id the same way, so a
socket planted by another user is never believed. (A Unix socket path holds at most 107
bytes; the private directory keeps it short whatever the runs directory.)

``emergency_stop`` is :meth:`~labctl.engine.RunLifecycle.request_stop` with reason ``"emergency stop"``: the engine
wakes at once (it does not wait out the record interval) and turns the output off, as on every
ending. ``stop`` ends the run the same way with reason ``"stopped by the operator"``.

A run queue (:mod:`labctl.app.queue`: several protocol files run one after the other on one
station, each in its own run file) serves one control socket for the whole queue: the server
moves from run to run (:meth:`ControlServer.set_run`; ``run_file`` in the status says which runs
now, and each run's ``<run file>.ctl`` is a link to the queue's socket while it runs), every
status carries ``queue`` (its entries: done, running, pending) and ``queue_socket`` (the path
that lasts as long as the queue), and three more commands edit
it: ``queue`` (the status alone), ``queue_append`` (``protocol``: a protocol file's absolute
path) and ``queue_remove`` (``id``: a pending entry's). A stop or an emergency stop ends the
run under way and the queue with it (nothing more starts).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import socketserver
import stat
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

from labctl.engine import ACTIVE_STATES, RunLifecycle

#: Commands a :class:`ControlServer` understands.
COMMANDS = ("status", "stop", "emergency_stop", "pause", "resume", "queue", "queue_append", "queue_remove")
#: Commands that need a run queue behind the socket.
QUEUE_COMMANDS = ("queue", "queue_append", "queue_remove")

#: ``sun_path`` of ``struct sockaddr_un`` holds 108 bytes on Linux, including the final NUL.
MAX_SOCKET_PATH_BYTES = 107

#: Reason recorded in the run file for an emergency stop.
EMERGENCY_STOP_REASON = "emergency stop"


class ControlError(Exception):
    """The control socket cannot be used: nobody listens, bad path, bad reply; names the path."""


def default_socket_path(run_file: str | Path) -> Path:
    """``<run file>.ctl`` beside the run file (``runs/x.h5`` → ``runs/x.h5.ctl``)."""
    run_file = Path(run_file)
    return run_file.with_name(run_file.name + ".ctl")


def _too_long(path: Path) -> bool:
    return len(os.fsencode(str(path))) > MAX_SOCKET_PATH_BYTES


def private_socket_dir() -> Path:
    """The directory this user's control sockets live in, created (mode 0700) if missing:
    ``$XDG_RUNTIME_DIR/labctl`` when the runtime directory is set, else ``<tmp>/labctl-<uid>``.

    Raises:
        ControlError: it exists but is not a directory of this user's with mode 0700 (another
            user may have created it to plant sockets).
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    directory = Path(runtime) / "labctl" if runtime else Path(tempfile.gettempdir()) / f"labctl-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, parents=bool(runtime), exist_ok=True)
    except OSError as exc:
        raise ControlError(f"{directory}: cannot create the control socket directory: {exc.strerror or exc}") from None
    _check_private(directory)
    return directory


def _check_private(directory: Path) -> None:
    """Raises ControlError unless ``directory`` is a real directory of this user's, mode 0700."""
    try:
        info = directory.lstat()
    except OSError as exc:
        raise ControlError(f"{directory}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ControlError(f"{directory}: not a directory (a link?); refusing it for control sockets")
    if info.st_uid != os.getuid():
        raise ControlError(f"{directory}: owned by user id {info.st_uid}, not by you ({os.getuid()}); "
                           "refusing it for control sockets")
    if info.st_mode & 0o077:
        raise ControlError(f"{directory}: mode {stat.S_IMODE(info.st_mode):o} lets others in; "
                           "refusing it for control sockets (chmod 700)")


def short_socket_path(path: str | Path) -> Path:
    """Where the socket asked for at ``path`` listens: in :func:`private_socket_dir`, named by
    a hash of ``path``.

    Raises:
        ControlError: the private directory cannot be used.
    """
    digest = hashlib.sha1(str(Path(path).absolute()).encode()).hexdigest()[:16]
    return private_socket_dir() / f"{digest}.ctl"


def resolve_socket(path: str | Path) -> Path:
    """The socket a client connects to for ``path``: where its link points (or ``path``).

    Raises:
        ControlError: ``path`` is not a link and is too long for a Unix socket.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.readlink(path))
    if _too_long(path):
        raise ControlError(f"{path}: control socket path longer than {MAX_SOCKET_PATH_BYTES} bytes; "
                           "choose a shorter one (--control-socket)")
    return path


def _listen_path(path: Path) -> Path:
    return short_socket_path(path)


def check_socket_path(path: str | Path) -> None:
    """Check before a run starts that a :class:`ControlServer` can listen at ``path``.

    Raises:
        ControlError: another run already listens there, or the private directory cannot be used.
    """
    listen = _listen_path(Path(path))
    if listen.exists() and _listening(listen):
        raise ControlError(f"{path}: another run already listens on this control socket")


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket (``SO_PEERCRED``)."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        if peer_uid(self.request) != os.getuid():
            self.wfile.write((json.dumps({"ok": False, "error": "refused: not the run's user"}) + "\n").encode())
            return
        for raw in self.rfile:
            try:
                reply = self.server.control.execute(json.loads(raw))
            except (ValueError, TypeError, AttributeError) as exc:
                reply = {"ok": False, "error": f"bad request: {exc}"}
            self.wfile.write((json.dumps(reply) + "\n").encode())
            self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    control: ControlServer


class ControlServer:
    """Serve the control channel of one run (or of a run queue) on a Unix domain socket, in
    background threads.

    Args:
        engine: the run's engine; commands call its thread-safe request methods. ``None``: no
            run yet (a queue between two runs: state ``idle``).
        socket_path: the run's socket path: a link to the socket, which listens in the user's
            private directory (:func:`short_socket_path`); a stale socket (nobody listening)
            is replaced.
        run_file: the run's HDF5 file, reported by ``status``.
        queue: a run queue (:class:`labctl.app.queue.RunQueue`) whose entries the ``queue``
            commands show and edit, and which a stop ends.

    Raises:
        ControlError: another process already listens there, or the socket cannot be created
            (the message names the path).

    Use as a context manager or call :meth:`close`, which removes the socket file (and links).
    """

    def __init__(self, engine: RunLifecycle | None, socket_path: str | Path, *, run_file: str | Path | None = None,
                 queue: Any = None) -> None:
        self.engine = engine
        self.socket_path = Path(socket_path)
        self.listen_path = _listen_path(self.socket_path)
        self.run_file = None if run_file is None else str(Path(run_file).resolve())
        self.queue = queue
        self._stop_reason: str | None = None
        self._links: set[Path] = set()
        self._lock = threading.Lock()
        if self.listen_path.exists():
            if _listening(self.listen_path):
                raise ControlError(f"{self.socket_path}: another run already listens on this control socket")
            self.listen_path.unlink()
        try:
            self._server = _Server(str(self.listen_path), _Handler)
            os.chmod(self.listen_path, 0o600)  # in a 0700 directory: nobody else could reach it meanwhile
            self.socket_path.unlink(missing_ok=True)
            self.socket_path.symlink_to(self.listen_path)
        except OSError as exc:
            raise ControlError(f"{self.socket_path}: cannot listen: {exc.strerror or exc}") from None
        self._server.control = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"control {self.socket_path.name}", daemon=True)
        self._thread.start()
        self._closed = False

    def __enter__(self) -> ControlServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_run(self, engine: RunLifecycle | None, run_file: str | Path | None) -> None:
        """The run the socket now commands (a queue's next run; ``None``: between runs). The
        run file gets its own ``<run file>.ctl`` link to this socket while it runs, and the
        last run's link goes."""
        with self._lock:
            old = None if self.run_file is None else default_socket_path(self.run_file)
            self.engine = engine
            self.run_file = None if run_file is None else str(Path(run_file).resolve())
            self._stop_reason = None
        if old is not None and old != self.socket_path:
            self.unlink(old)
        if run_file is not None:
            self.link(default_socket_path(Path(run_file).resolve()))

    def link(self, path: str | Path) -> None:
        """Another name for this socket (a link to it at ``path``)."""
        path = Path(path)
        if path == self.socket_path:
            return
        try:
            path.unlink(missing_ok=True)
            path.symlink_to(self.listen_path)
        except OSError as exc:
            raise ControlError(f"{path}: cannot link the control socket: {exc.strerror or exc}") from None
        self._links.add(path)

    def unlink(self, path: str | Path) -> None:
        """Remove a link made by :meth:`link` (if it still points here)."""
        path = Path(path)
        self._links.discard(path)
        try:
            if path.is_symlink() and Path(os.readlink(path)) == self.listen_path:
                path.unlink()
        except OSError:  # already gone, or a directory we may not write: nothing of ours to remove
            pass

    def status(self) -> dict[str, Any]:
        """The reply to ``status`` (see the module docstring)."""
        engine = self.engine
        state = engine.state.value if engine is not None else "idle"
        output_on = engine is not None and engine.state in ACTIVE_STATES
        reply = {"ok": True, "state": state, "output": "on" if output_on else "off",
                 "run_file": self.run_file, "pid": os.getpid(), "stop_reason": self._stop_reason}
        if self.queue is not None:
            reply["queue"] = self.queue.describe()
            reply["queue_socket"] = str(self.socket_path)  # the queue's own name (a run's link goes with its run)
        return reply

    def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """Carry out one request ``{"command": NAME, …arguments}``; return the reply object."""
        command = request.get("command")
        if command not in COMMANDS:
            return {"ok": False, "error": f"unknown command {command!r}; one of {', '.join(COMMANDS)}"}
        if command in QUEUE_COMMANDS and self.queue is None:
            return {"ok": False, "error": f"{command}: this run has no queue (start one with labctl run … --queue)"}
        engine = self.engine
        if command in ("stop", "emergency_stop"):
            reason = EMERGENCY_STOP_REASON if command == "emergency_stop" else "stopped by the operator"
            if self._stop_reason is None or command == "emergency_stop":
                self._stop_reason = reason
            if self.queue is not None:
                self.queue.stop(reason)
            if engine is not None:
                engine.request_stop(reason)
        elif command == "pause" and engine is not None:
            engine.request_pause()
        elif command == "resume" and engine is not None:
            engine.request_resume()
        elif command == "queue_append":
            try:
                self.queue.append(request.get("protocol"))
            except ValueError as exc:
                return {"ok": False, "error": str(exc)}
        elif command == "queue_remove":
            try:
                self.queue.remove(request.get("id"))
            except ValueError as exc:
                return {"ok": False, "error": str(exc)}
        return self.status()

    def close(self) -> None:
        """Stop listening and remove the socket file and its links (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        for link in list(self._links):
            self.unlink(link)
        for path in {self.socket_path, self.listen_path}:
            path.unlink(missing_ok=True)


def _check_ours(socket_file: Path) -> None:
    """Raises ControlError unless the socket file and its directory are this user's own
    (missing files are left to the connect to report)."""
    if not socket_file.exists():
        return
    _check_private(socket_file.parent)
    if socket_file.lstat().st_uid != os.getuid():
        raise ControlError(f"{socket_file}: owned by user id {socket_file.lstat().st_uid}, not by you; refusing it")


def _listening(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class ControlClient:
    """Send commands to a run's :class:`ControlServer`.

    Each call opens a connection, sends one request and reads the reply, so a client holds
    no resources between calls and survives the run's end.

    Args:
        socket_path: the run's control socket (``<run file>.ctl``; a link is followed).
        timeout_s: connect and reply timeout per request.

    Every method returns the run's status (see the module docstring) and raises
    :class:`ControlError` when nobody listens (the run has ended or never had ``--control``),
    on a timeout, or when the server refuses the request.
    """

    def __init__(self, socket_path: str | Path, *, timeout_s: float = 2.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout_s = timeout_s
        resolve_socket(self.socket_path)  # a hopeless path fails here, once

    def request(self, command: str, **args: Any) -> dict[str, Any]:
        """Send ``command`` (with its ``args``, e.g. ``protocol=`` for ``queue_append``)."""
        if command not in COMMANDS:
            raise ControlError(f"unknown command {command!r}; one of {', '.join(COMMANDS)}")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout_s)
            target = resolve_socket(self.socket_path)
            try:
                _check_ours(target)
                sock.connect(str(target))
                if peer_uid(sock) != os.getuid():
                    raise ControlError(f"{self.socket_path}: the process listening there is user "
                                       f"{peer_uid(sock)}'s, not yours: refusing to talk to it")
                sock.sendall((json.dumps({**args, "command": command}) + "\n").encode())
                with sock.makefile("rb") as stream:
                    line = stream.readline()
            except FileNotFoundError:
                raise ControlError(f"{self.socket_path}: no control socket (the run has ended or was started "
                                   "without --control)") from None
            except ConnectionRefusedError:
                raise ControlError(f"{self.socket_path}: nobody listens (the run has ended)") from None
            except OSError as exc:
                raise ControlError(f"{self.socket_path}: {exc.strerror or exc}") from None
        try:
            reply = json.loads(line)
        except ValueError:
            raise ControlError(f"{self.socket_path}: no reply or a garbled one ({line[:80]!r})") from None
        if not reply.get("ok"):
            raise ControlError(f"{self.socket_path}: {reply.get('error', 'refused')}")
        return reply

    def status(self) -> dict[str, Any]:
        return self.request("status")

    def stop(self) -> dict[str, Any]:
        """End the run safely (output off), reason "stopped by the operator"."""
        return self.request("stop")

    def emergency_stop(self) -> dict[str, Any]:
        """End the run at once (output off), reason "emergency stop"."""
        return self.request("emergency_stop")

    def pause(self) -> dict[str, Any]:
        """Hold the cell at 0 A until :meth:`resume` (the step's clock stops)."""
        return self.request("pause")

    def resume(self) -> dict[str, Any]:
        return self.request("resume")

    def queue_append(self, protocol: str | Path) -> dict[str, Any]:
        """Add a protocol file at the end of the run queue."""
        return self.request("queue_append", protocol=str(Path(protocol).resolve()))

    def queue_remove(self, entry_id: int) -> dict[str, Any]:
        """Take a pending entry off the run queue."""
        return self.request("queue_remove", id=int(entry_id))
