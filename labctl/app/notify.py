"""Notifications on run end and failures: an event log file, a desktop notification, e-mail.

Notifiers are engine subscribers (:mod:`labctl.events`): each receives the event
stream and turns a :class:`RunEnded` (status and reason) or a :class:`Detected` failure
(short, soft short, polarisation, compliance, safety, instrument error or loss, error) into
a :class:`Notification` that it delivers its own way. Nothing a notifier does can block or
break a run: the event log is a local file append, and the desktop notification and e-mail
are handed to a background thread through a bounded queue; every failure is logged on the
``labctl.app.notify`` logger, never raised into the engine.

A failure that ends the run (the engine publishes ``Detected(short)`` and then
``RunEnded(short)`` with the same reason) makes one notification, the run end, not two.

Configured by a ``notify:`` section of the station file or a file of its own
(``labctl run … --notify NOTIFY.yaml``)::

    log:
      path: runs/bench3-events.log   # default: <run file>.log beside the run file
    desktop:
      enabled: true                  # notify-send, where it is installed
    email:
      host: smtp.example.org
      port: 587
      starttls: true
      from: labctl@example.org
      to: [operator@example.org]
      username: labctl
      password_env: LABCTL_SMTP_PASSWORD   # the password is read from this variable, never from a file
    events: [run_ended, short, soft_short, polarisation, compliance, safety,
             instrument_error, instrument_lost, error]
"""

from __future__ import annotations

import abc
import datetime as _dt
import logging
import os
import queue
import shutil
import smtplib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from labctl.events import Detected, RunEnded, StepStarted
from labctl.yamlfile import FileError, load_model

logger = logging.getLogger("labctl.app.notify")

#: Detected kinds that are failures (labctl.engine.software_timed publishes them).
FAILURE_KINDS: tuple[str, ...] = ("short", "soft_short", "polarisation", "compliance", "safety",
                                  "instrument_error", "instrument_lost", "error")
#: Every kind a notifier can be configured to fire on: the run's end, and Detected kinds.
EventKind = Literal["run_ended", "short", "soft_short", "polarisation", "compliance", "safety",
                    "instrument_error", "instrument_lost", "error", "stopped", "interrupted",
                    "paused", "resumed", "reconnected"]
DEFAULT_KINDS: tuple[str, ...] = ("run_ended", *FAILURE_KINDS)
#: Detected kinds the engine follows at once with RunEnded (or, for a short that does not end
#: the run, with the next step): held back briefly so that a run-ending failure makes one
#: notification.
_RUN_ENDING_KINDS = frozenset({"short", "soft_short", "polarisation", "compliance", "safety",
                               "instrument_lost", "error", "stopped", "interrupted"})


class LogConfig(BaseModel):
    """The event log file: one line per notification."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    path: str | None = None  # default: <run file>.log


class DesktopConfig(BaseModel):
    """A desktop notification through ``notify-send`` (libnotify), where it is installed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    timeout_s: float = Field(default=10.0, gt=0)  # how long notify-send may take


class EmailConfig(BaseModel):
    """E-mail through an SMTP server. The password is read from the environment variable
    named by ``password_env`` when a message is sent; it is never stored in a file."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str = Field(min_length=1)
    port: int = Field(default=25, gt=0, lt=65536)
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    starttls: bool = False
    username: str | None = None
    password_env: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)  # per SMTP connection
    queue_size: int = Field(default=100, gt=0)    # messages waiting; more are dropped (logged)
    subject_prefix: str = "[labctl]"

    @field_validator("to", mode="before")
    @classmethod
    def _one_address(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("sender")
    @classmethod
    def _sender_is_address(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    @field_validator("to")
    @classmethod
    def _to_are_addresses(cls, value: list[str]) -> list[str]:
        bad = [address for address in value if "@" not in address]
        if bad:
            raise ValueError(f"not e-mail addresses: {', '.join(map(repr, bad))}")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> EmailConfig:
        if self.password_env is not None and self.username is None:
            raise ValueError("password_env is set but username is not")
        if self.username is not None and self.password_env is None:
            raise ValueError("username needs password_env, the environment variable holding the password")
        return self


class NotifyConfig(BaseModel):
    """Which notifiers to use and on which events (default: run end and every failure)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    log: LogConfig = LogConfig()
    desktop: DesktopConfig = DesktopConfig()
    email: EmailConfig | None = None
    events: list[EventKind] = Field(default_factory=lambda: list(DEFAULT_KINDS), min_length=1)


def load_notify_config(path: str | Path) -> NotifyConfig:
    """Read and validate a notification file (the ``notify:`` section on its own).

    Raises:
        FileError: one ``file:line: field: problem`` line per problem.
    """
    return load_model(path, NotifyConfig)


@dataclass(frozen=True)
class Notification:
    """What happened: ``kind`` is ``run_ended`` (then ``status`` is the run's status) or a
    Detected kind; ``t_s`` is test time; ``time_utc`` when the notification was made."""

    run_file: Path
    channel: str
    kind: str
    status: str
    message: str
    t_s: float
    step_index: int
    time_utc: _dt.datetime

    @property
    def title(self) -> str:
        """One line: run file name, and the run status or the failure and its channel."""
        if self.kind == "run_ended":
            return f"{self.run_file.name}: run ended: {self.status}"
        return f"{self.run_file.name}: {self.kind} on {self.channel}"

    @property
    def body(self) -> str:
        """A few ``name: value`` lines: reason, test time, channel, step, run file, host."""
        lines = [
            f"run file: {self.run_file}",
            f"channel: {self.channel}",
            f"event: {self.kind}" + (f" (status {self.status})" if self.kind == "run_ended" else ""),
            f"reason: {self.message}",
            f"test time: {self.t_s:.1f} s ({self.t_s / 3600:.3f} h)",
        ]
        if self.step_index >= 0:
            lines.append(f"step: {self.step_index}")
        lines += [f"time (UTC): {self.time_utc.isoformat(timespec='seconds')}",
                  f"host: {socket.gethostname()}"]
        return "\n".join(lines) + "\n"

    @property
    def log_line(self) -> str:
        """``<UTC time>\\t<channel>\\t<kind>\\t<message>`` on one line."""
        message = self.message if self.kind != "run_ended" else f"{self.status}: {self.message}"
        message = f"{message} (t = {self.t_s:.1f} s)"
        stamp = self.time_utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return "\t".join(part.replace("\n", " ").replace("\t", " ")
                         for part in (stamp, self.channel, self.kind, message))


class Notifier(abc.ABC):
    """An engine subscriber that delivers a :class:`Notification` for each selected event.

    Subclasses implement :meth:`notify` (and :meth:`close` if they hold resources).
    :meth:`notify` may raise: the error is logged and the run goes on.

    Args:
        run_file: the run file the events belong to (named in every notification).
        kinds: ``run_ended`` and/or Detected kinds to fire on (default :data:`DEFAULT_KINDS`).
    """

    def __init__(self, run_file: str | Path, kinds: Iterable[str] = DEFAULT_KINDS) -> None:
        self.run_file = Path(run_file).resolve()
        self.kinds = frozenset(kinds)
        self._pending: dict[str, Notification] = {}

    def __call__(self, event: Any) -> None:
        if isinstance(event, Detected):
            self._flush(event.channel)
            if event.kind in self.kinds:
                made = self._make(event.channel, event.kind, "", event.message, event.t_s, event.step_index)
                if event.kind in _RUN_ENDING_KINDS:
                    self._pending[event.channel] = made
                else:
                    self._deliver(made)
        elif isinstance(event, StepStarted):
            self._flush(event.channel)
        elif isinstance(event, RunEnded):
            pending = self._pending.pop(event.channel, None)
            if "run_ended" not in self.kinds:
                if pending is not None:
                    self._deliver(pending)
                return
            if pending is not None and not event.reason.startswith(pending.message):
                self._deliver(pending)
                pending = None
            self._deliver(self._make(event.channel, "run_ended", event.status, event.reason, event.t_s,
                                     pending.step_index if pending is not None else -1))

    @abc.abstractmethod
    def notify(self, notification: Notification) -> None:
        """Deliver one notification; should return quickly (hand slow work to a thread)."""

    def close(self, timeout_s: float | None = None) -> None:
        """Deliver what is held back and release resources, waiting at most ``timeout_s``."""
        for channel in list(self._pending):
            self._flush(channel)

    def _make(self, channel: str, kind: str, status: str, message: str, t_s: float, step: int) -> Notification:
        return Notification(self.run_file, channel, kind, status, message, float(t_s), int(step),
                            _dt.datetime.now(_dt.timezone.utc))

    def _flush(self, channel: str) -> None:
        pending = self._pending.pop(channel, None)
        if pending is not None:
            self._deliver(pending)

    def _deliver(self, notification: Notification) -> None:
        try:
            self.notify(notification)
        except Exception as exc:  # noqa: BLE001 - a notifier must never end a run
            logger.warning("%s failed for %s: %s", type(self).__name__, notification.title, exc)


class _QuietFileHandler(logging.FileHandler):
    """A FileHandler whose write errors become one warning line instead of a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        logger.warning("cannot write the notification log %s", self.baseFilename)


class EventLogNotifier(Notifier):
    """Appends one line per notification to a log file (``Notification.log_line``: UTC time,
    channel, kind, message), through a :class:`logging.FileHandler`. The file is created at
    the first notification.

    Raises:
        FileError: the log file's folder does not exist (and is not the run file's own).
    """

    def __init__(self, run_file: str | Path, path: str | Path | None = None,
                 kinds: Iterable[str] = DEFAULT_KINDS) -> None:
        super().__init__(run_file, kinds)
        self.path = Path(path) if path is not None else self.run_file.with_name(self.run_file.name + ".log")
        if path is not None and not self.path.parent.is_dir():
            raise FileError([f"notify: log: path: folder {self.path.parent} does not exist"])
        self._handler = _QuietFileHandler(self.path, mode="a", encoding="utf-8", delay=True)
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._log = logging.Logger("labctl.app.notify.events", logging.INFO)  # not registered: no propagation
        self._log.addHandler(self._handler)

    def notify(self, notification: Notification) -> None:
        self._log.info(notification.log_line)
        self._handler.flush()

    def close(self, timeout_s: float | None = None) -> None:
        super().close(timeout_s)
        self._log.removeHandler(self._handler)
        self._handler.close()


class _Sender:
    """A background thread working through a bounded queue; drops (and logs) on overflow."""

    _STOP = object()

    def __init__(self, name: str, send: Callable[[Notification], None], queue_size: int) -> None:
        self._name = name
        self._send = send
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, notification: Notification) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
        try:
            self._queue.put_nowait(notification)
        except queue.Full:
            logger.warning("%s: queue full (%d waiting); dropped: %s", self._name, self._queue.maxsize,
                           notification.title)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            try:
                self._send(item)
            except Exception as exc:  # noqa: BLE001 - failures are logged, never raised
                logger.warning("%s failed for %s: %s", self._name, item.title, exc)

    def close(self, timeout_s: float) -> None:
        """Let the queued notifications go out, waiting at most ``timeout_s`` in all."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout_s
        try:
            self._queue.put(self._STOP, timeout=timeout_s)
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            logger.warning("%s: notifications still unsent after %.1f s; giving up on them", self._name, timeout_s)


class DesktopNotifier(Notifier):
    """A desktop notification through ``notify-send`` (libnotify), run on a background thread.

    Without ``notify-send`` on PATH the notifier does nothing (said once, at debug level).
    Failures are urgent (``--urgency=critical``), a completed run is normal.
    """

    _said_unavailable = False

    def __init__(self, run_file: str | Path, kinds: Iterable[str] = DEFAULT_KINDS, timeout_s: float = 10.0) -> None:
        super().__init__(run_file, kinds)
        self.command = shutil.which("notify-send")
        self.timeout_s = timeout_s
        if self.command is None and not DesktopNotifier._said_unavailable:
            DesktopNotifier._said_unavailable = True
            logger.debug("notify-send not found on PATH: desktop notifications unavailable")
        self._sender = _Sender("desktop notification", self._send, queue_size=100)

    @property
    def available(self) -> bool:
        return self.command is not None

    def notify(self, notification: Notification) -> None:
        if self.command is not None:
            self._sender.submit(notification)

    def _send(self, notification: Notification) -> None:
        urgent = notification.kind != "run_ended" or notification.status != "completed"
        args = [self.command, "--app-name=labctl", f"--urgency={'critical' if urgent else 'normal'}",
                f"labctl: {notification.title}", notification.body]
        done = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=self.timeout_s, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"notify-send exited {done.returncode}: "
                               f"{done.stderr.decode(errors='replace').strip()[:200]}")

    def close(self, timeout_s: float | None = None) -> None:
        super().close(timeout_s)
        self._sender.close(self.timeout_s if timeout_s is None else timeout_s)


class EmailNotifier(Notifier):
    """E-mail through an SMTP server (:mod:`smtplib`), sent from a background thread.

    Each message is one SMTP connection with ``config.timeout_s``; STARTTLS and login as
    configured, the password read from the environment variable ``config.password_env`` at
    send time. At most ``config.queue_size`` messages wait; a failed send is logged.
    """

    def __init__(self, run_file: str | Path, config: EmailConfig, kinds: Iterable[str] = DEFAULT_KINDS) -> None:
        super().__init__(run_file, kinds)
        self.config = config
        if config.password_env is not None and config.password_env not in os.environ:
            logger.warning("e-mail: environment variable %s (the SMTP password) is not set", config.password_env)
        self._sender = _Sender(f"e-mail via {config.host}:{config.port}", self._send, config.queue_size)

    def notify(self, notification: Notification) -> None:
        self._sender.submit(notification)

    def message(self, notification: Notification) -> EmailMessage:
        """The e-mail for ``notification``: subject = prefix + title, body = ``notification.body``."""
        message = EmailMessage()
        message["Subject"] = f"{self.config.subject_prefix} {notification.title}".strip()
        message["From"] = self.config.sender
        message["To"] = ", ".join(self.config.to)
        message["Date"] = notification.time_utc
        message.set_content(notification.body)
        return message

    def _send(self, notification: Notification) -> None:
        config = self.config
        password = None
        if config.password_env is not None:
            password = os.environ.get(config.password_env)
            if password is None:
                raise RuntimeError(f"environment variable {config.password_env} (the SMTP password) is not set")
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
            if config.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if config.username is not None:
                smtp.login(config.username, password or "")
            smtp.send_message(self.message(notification))
        logger.info("e-mail sent to %s: %s", ", ".join(config.to), notification.title)

    def close(self, timeout_s: float | None = None) -> None:
        """Wait for queued messages to go out, at most ``timeout_s`` (default the SMTP timeout)."""
        super().close(timeout_s)
        self._sender.close(self.config.timeout_s if timeout_s is None else timeout_s)


def notifiers_for(config: NotifyConfig | None, run_file_path: str | Path) -> list[Notifier]:
    """The notifiers ``config`` asks for, for the run written to ``run_file_path``.

    Each is an engine subscriber; call its ``close()`` when the run is over so that queued
    e-mails and desktop notifications go out (bounded by their timeouts). ``None`` → none.

    Raises:
        FileError: the configured log file's folder does not exist.
    """
    if config is None:
        return []
    kinds = tuple(config.events)
    found: list[Notifier] = []
    if config.log.enabled:
        found.append(EventLogNotifier(run_file_path, config.log.path, kinds))
    if config.desktop.enabled:
        found.append(DesktopNotifier(run_file_path, kinds, config.desktop.timeout_s))
    if config.email is not None:
        found.append(EmailNotifier(run_file_path, config.email, kinds))
    return found


__all__ = [
    "DEFAULT_KINDS",
    "FAILURE_KINDS",
    "DesktopConfig",
    "DesktopNotifier",
    "EmailConfig",
    "EmailNotifier",
    "EventLogNotifier",
    "LogConfig",
    "Notification",
    "NotifyConfig",
    "Notifier",
    "load_notify_config",
    "notifiers_for",
]
