"""A worker thread that follows one run: file updates and control status, off the GUI thread.

:class:`RunWatcher` owns a :class:`~labctl.store.follow.RunFollower` and a
:class:`~labctl.app.control.ControlClient` and polls both on a timer in its own ``QThread``; it
hands results to the GUI thread through queued signals. Commands to the run (stop, pause …)
are sent from a short-lived thread each, at once and never queued behind a file read, so a slow
or dead socket never freezes the window and an emergency stop is not delayed.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from labctl.app.control import ControlClient, ControlError
from labctl.store import RunFileError
from labctl.store.follow import RunFollower

#: Seconds between two looks at the run file.
POLL_INTERVAL_S = 0.2
#: Seconds between two status requests on the control socket.
STATUS_INTERVAL_S = 0.5


class _Worker(QObject):
    update = Signal(object)  # labctl.store.follow.Update
    status = Signal(object)  # dict from the control socket, or None when nobody listens
    failed = Signal(str)  # one line: why the file cannot be followed

    def __init__(self, path: Path, socket_path: Path | None, channel: str | None) -> None:
        super().__init__()
        self.follower = RunFollower(path, socket_path=socket_path, channel=channel)
        self.client = ControlClient(socket_path) if socket_path is not None else None
        self._timer: QTimer | None = None
        self._status_timer: QTimer | None = None

    @Slot()
    def start(self) -> None:
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        self._timer.start(int(POLL_INTERVAL_S * 1000))
        if self.client is not None:
            self._status_timer = QTimer(self)
            self._status_timer.timeout.connect(self.poll_status)
            self._status_timer.start(int(STATUS_INTERVAL_S * 1000))
            self.poll_status()
        self.poll()

    @Slot()
    def poll(self) -> None:
        try:
            update = self.follower.poll()
        except RunFileError as exc:
            self._timer.stop()
            self.failed.emit(str(exc))
            return
        if update.n_rows or update.events or update.steps or update.attrs is not None or update.finished:
            self.update.emit(update)
        if update.finished:
            self._timer.stop()
            if self._status_timer is not None:
                self._status_timer.stop()
            self.status.emit(None)

    @Slot()
    def poll_status(self) -> None:
        try:
            self.status.emit(self.client.status())
        except ControlError:
            self.status.emit(None)

    @Slot()
    def shutdown(self) -> None:
        for timer in (self._timer, self._status_timer):
            if timer is not None:
                timer.stop()
        self.follower.close()


class RunWatcher(QObject):
    """Follow the run file ``path`` (and its control socket, if any) from a worker thread;
    ``channel``: the channel group of a multi-channel file (default: the first).

    Signals (delivered in the GUI thread): ``update(Update)``, ``status(dict | None)`` —
    ``None`` once nobody listens on the socket —, ``failed(str)``, ``command_done(str, reply)``
    with the reply dict or an error line.
    """

    update = Signal(object)
    status = Signal(object)
    failed = Signal(str)
    command_done = Signal(str, object)
    _shutdown = Signal()

    def __init__(self, path: str | Path, socket_path: str | Path | None = None, parent: QObject | None = None, *,
                 channel: str | None = None) -> None:
        super().__init__(parent)
        self.path = Path(path)
        self.socket_path = None if socket_path is None else Path(socket_path)
        self._thread = QThread()
        self._thread.setObjectName(f"watch {self.path.name}")
        self._worker = _Worker(self.path, self.socket_path, channel)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.start)
        self._worker.update.connect(self.update)
        self._worker.status.connect(self.status)
        self._worker.failed.connect(self.failed)
        self._client = ControlClient(self.socket_path) if self.socket_path is not None else None
        self._shutdown.connect(self._worker.shutdown)
        self._thread.start()

    def send(self, command: str) -> None:
        """Send a control command (``stop``, ``emergency_stop``, ``pause``, ``resume``, ``status``).

        Returns at once; the reply comes as ``command_done`` (and ``status``).
        """
        if self._client is None:
            self.command_done.emit(command, "this run has no control socket (it was not started with --control)")
            return
        client = self._client

        def run() -> None:
            try:
                reply = client.request(command)
            except ControlError as exc:
                self.command_done.emit(command, str(exc))
                return
            self.command_done.emit(command, reply)
            self.status.emit(reply)

        threading.Thread(target=run, name=f"control {command}", daemon=True).start()

    @property
    def has_control(self) -> bool:
        return self._client is not None

    def stop(self) -> None:
        """Stop following (the run itself goes on) and end the worker thread."""
        if self._thread.isRunning():
            self._shutdown.emit()
            self._thread.quit()
            self._thread.wait(5000)
