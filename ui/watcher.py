"""Worker threads that follow one run: file updates and control status, off the GUI thread.

:class:`RunWatcher` polls a follower — :class:`~labctl.store.follow.RunFollower` for a run file,
:class:`~labctl.store.remote.RemoteFollower` for a run on a labctl server (``http://…``) — on a
timer in its own ``QThread``, and the run's control socket on a second thread of its own, so a
long file read never delays the state an operator waits for (the confirmation of a pause). It
hands results to the GUI thread through queued signals. Commands to the run (stop, pause …)
are sent from a short-lived thread each, at once and never queued behind a file read, so a slow
or dead socket never freezes the window and an emergency stop is not delayed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot

from labctl.app.control import ControlClient, ControlError
from labctl.store import RunFileError
from labctl.store.follow import RunFollower

#: Seconds between two looks at the run file.
POLL_INTERVAL_S = 0.2
#: Seconds between two looks at a run on a server (each costs a few requests).
REMOTE_POLL_INTERVAL_S = 1.0
#: Seconds between two status requests on the control socket.
STATUS_INTERVAL_S = 0.25


def is_url(target: str | Path) -> bool:
    return isinstance(target, str) and target.lower().startswith(("http://", "https://"))


class _Worker(QObject):
    update = Signal(object)  # labctl.store.follow.Update
    failed = Signal(str)  # one line: why the run cannot be followed
    finished = Signal()

    def __init__(self, target: str | Path, socket_path: Path | None, channel: str | None) -> None:
        super().__init__()
        self.target = target
        self.socket_path = socket_path
        self.channel = channel
        self.follower: Any = None
        self._timer: QTimer | None = None

    @Slot()
    def start(self) -> None:
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        remote = is_url(self.target)
        self._timer.start(int((REMOTE_POLL_INTERVAL_S if remote else POLL_INTERVAL_S) * 1000))
        self.poll()

    def _make(self) -> Any:
        if is_url(self.target):
            from labctl.store.remote import RemoteFollower

            return RemoteFollower(str(self.target), channel=self.channel)
        return RunFollower(self.target, socket_path=self.socket_path, channel=self.channel)

    @Slot()
    def poll(self) -> None:
        try:
            if self.follower is None:
                self.follower = self._make()
            update = self.follower.poll()
        except RunFileError as exc:
            if is_url(self.target) and self.follower is not None:
                self.failed.emit(f"{exc} (trying again)")  # a server outage: the next poll may succeed
                return
            self._timer.stop()
            self.failed.emit(str(exc))
            return
        if update.n_rows or update.events or update.steps or update.attrs is not None or update.finished \
                or update.spectra:
            self.update.emit(update)
        if update.finished:
            self._timer.stop()
            self.finished.emit()

    @Slot()
    def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        if self.follower is not None:
            self.follower.close()


class RunWatcher(QObject):
    """Follow the run file ``path`` or a run's URL (and its control socket, if any) from
    worker threads; ``channel``: the channel group of a multi-channel file (default: the first).

    Signals (delivered in the GUI thread): ``update(Update)``, ``status(dict | None)`` —
    ``None`` once nobody listens on the socket —, ``failed(str)``, ``command_done(str, reply)``
    with the reply dict or an error line.
    """

    update = Signal(object)
    status = Signal(object)
    failed = Signal(str)
    command_done = Signal(str, object)

    def __init__(self, path: str | Path, socket_path: str | Path | None = None, parent: QObject | None = None, *,
                 channel: str | None = None) -> None:
        super().__init__(parent)
        self.path = path if is_url(path) else Path(path)
        self.socket_path = None if socket_path is None else Path(socket_path)
        self._thread = QThread()
        self._thread.setObjectName(f"watch {Path(str(path)).name}")
        self._worker = _Worker(self.path, self.socket_path, channel)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.start)
        self._worker.update.connect(self.update)
        self._worker.failed.connect(self.failed)
        self._worker.finished.connect(self._file_finished)
        self._client = ControlClient(self.socket_path) if self.socket_path is not None else None
        # The worker stops its timer and closes its followers in its own thread as that
        # thread ends, whatever it was doing when told to quit (a queued shutdown could be
        # skipped behind a slow poll, leaving the file's shared handle open and live for
        # every other follower in the process: a run that never ends on screen).
        self._thread.finished.connect(self._worker.shutdown, Qt.ConnectionType.DirectConnection)
        self._stop = threading.Event()
        self._poll_now = threading.Event()
        self._status_thread: threading.Thread | None = None
        self._thread.start()
        if self._client is not None:
            self._status_thread = threading.Thread(target=self._status_loop, name=f"status {self._thread.objectName()}",
                                                   daemon=True)
            self._status_thread.start()

    def _status_loop(self) -> None:
        """Ask the control socket for the run's state until the run has ended (nobody listens
        and the file is read to its end) or the watcher stops."""
        client = self._client
        while not self._stop.is_set():
            try:
                self.status.emit(client.status())
            except ControlError:
                self.status.emit(None)
            self._poll_now.wait(STATUS_INTERVAL_S)
            self._poll_now.clear()

    def _file_finished(self) -> None:
        self._stop.set()
        self._poll_now.set()
        self.status.emit(None)

    def send(self, command: str, **args: Any) -> None:
        """Send a control command (``stop``, ``emergency_stop``, ``pause``, ``resume``,
        ``status``, the queue's commands with their ``args``).

        Returns at once; the reply comes as ``command_done`` (and ``status``).
        """
        if self._client is None:
            self.command_done.emit(command, "this run has no control socket (it was not started with --control)")
            return
        client = self._client

        def run() -> None:
            try:
                reply = client.request(command, **args)
            except ControlError as exc:
                self.command_done.emit(command, str(exc))
                return
            self.command_done.emit(command, reply)
            self.status.emit(reply)
            self._poll_now.set()  # and the confirmed state as soon as the engine has it

        threading.Thread(target=run, name=f"control {command}", daemon=True).start()

    @property
    def has_control(self) -> bool:
        return self._client is not None

    def stop(self) -> None:
        """Stop following (the run itself goes on) and end the worker threads."""
        self._stop.set()
        self._poll_now.set()
        if self._thread.isRunning():
            self._thread.quit()
            self._thread.wait(5000)
        if self._status_thread is not None:
            self._status_thread.join(5)


class StatusWatcher(QObject):
    """Ask a control socket for its status every ``interval_s`` on a thread of its own (a run
    queue's socket, which outlives each of its runs). Signal ``status(dict | None)`` in the GUI
    thread: ``None`` once, when the process is gone — its socket removed, or nobody listening
    :data:`GONE_AFTER` times in a row — and the watcher stops. A slow reply (a busy process)
    is no sign of its end: it is asked again."""

    status = Signal(object)
    GONE_AFTER = 3

    def __init__(self, socket_path: str | Path, parent: QObject | None = None, *, interval_s: float = 0.5) -> None:
        super().__init__(parent)
        self.socket_path = Path(socket_path)
        self.interval_s = interval_s
        self.last_error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"status {self.socket_path.name}", daemon=True)
        self._thread.start()

    def _gone(self) -> bool:
        """The socket's file (or the file its link names) no longer exists."""
        return not self.socket_path.exists()

    def _loop(self) -> None:
        client = ControlClient(self.socket_path, timeout_s=5.0)
        refused = 0
        while not self._stop.is_set():
            try:
                reply = client.status()
                refused = 0
                self.status.emit(reply)
            except ControlError as exc:
                self.last_error = str(exc)
                refused += "nobody listens" in self.last_error or "no control socket" in self.last_error
                if self._gone() or refused >= self.GONE_AFTER:
                    if not self._stop.is_set():
                        self.status.emit(None)
                    return
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(10)
