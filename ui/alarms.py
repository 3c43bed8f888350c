"""Alarms: a short, a safety trip, a lost instrument, failed resets — a banner that stays until
someone acknowledges it (and a beep where the desktop has a bell), and a log of who did.

:func:`alarm_of` says which events of a run file's ``events`` table are alarms. The
:class:`AlarmBanner` shows the newest unacknowledged one in large type, with how many others
wait; *Acknowledge* acknowledges every alarm shown. :class:`AlarmLog` appends each
acknowledgement (who, when, which alarm) as a JSON line to ``<run file>.alarms.jsonl`` beside
the run file (the run file has one writer, the run process), or — for a run that is not a
local file, or a directory one may not write — to ``~/.local/share/labctl/alarms.jsonl``; a run
opened again does not raise the alarms acknowledged before.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QApplication, QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from ui.progress import format_duration
from ui.text import tidy

#: Event kinds that are alarms, and what the banner calls them.
ALARM_KINDS: dict[str, str] = {
    "short": "SHORT CIRCUIT",
    "soft_short": "SOFT SHORT",
    "safety": "SAFETY TRIP",
    "polarisation": "POLARISATION LIMIT",
    "instrument_lost": "INSTRUMENT LOST",
    "error": "RUN ERROR",
    "reset_failed": "FAILED RESET",
    "reset_failures": "FAILED RESETS: RUN ENDED",
}
#: A compliance event is an alarm on a cell (it ends the run as a safety trip); on a tip
#: sweep it is routine (the junction's current clamped).
CELL_ONLY = {"compliance": "COMPLIANCE"}


@dataclass(frozen=True)
class Alarm:
    """One alarm: the event it came from and the run."""

    kind: str
    t_s: float
    message: str
    step_index: int
    run: str  # the run file or URL
    channel: str = ""

    @property
    def title(self) -> str:
        return ALARM_KINDS.get(self.kind) or CELL_ONLY.get(self.kind, self.kind.upper())

    @property
    def key(self) -> tuple[str, float, str]:
        return (self.kind, round(self.t_s, 6), self.message)

    def text(self) -> str:
        """One line: what, which run (and channel), when, and the run's own words."""
        run = Path(self.run).name + (f" [{self.channel}]" if self.channel else "")
        message = tidy(self.message)
        when = "" if "t = " in message else f" at t = {format_duration(self.t_s)}" + (
            f" (step {self.step_index})" if self.step_index >= 0 else "")
        return f"{self.title} — {run}{when}: {message}"


def alarm_of(event: dict[str, Any], run: str, *, cell: bool = True) -> Alarm | None:
    """The alarm an event is, or None (``cell``: the run is on a cell, where a compliance
    event is a safety trip)."""
    kind = str(event.get("kind", ""))
    if kind not in ALARM_KINDS and not (cell and kind in CELL_ONLY):
        return None
    step = event.get("step_index", -1)
    return Alarm(kind, float(event.get("t_s", 0.0)), str(event.get("message", "")),
                 -1 if step is None else int(step), run, str(event.get("channel", "") or ""))


def user_name() -> str:
    """Who is at the window: the login name (and host)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


class AlarmLog:
    """Acknowledgements of a run's alarms, kept as JSON lines (see the module docstring).

    Args:
        run: the run file (a path) or its URL.
    """

    FALLBACK = Path.home() / ".local" / "share" / "labctl" / "alarms.jsonl"

    def __init__(self, run: str | Path) -> None:
        self.run = str(run)
        local = not self.run.startswith(("http://", "https://"))
        self.path = Path(self.run + ".alarms.jsonl") if local else self.FALLBACK
        if local and not os.access(self.path.parent, os.W_OK):
            self.path = self.FALLBACK

    def acknowledged(self) -> set[tuple[str, float, str]]:
        """Keys of the alarms of this run acknowledged so far."""
        out = set()
        for path in {self.path, self.FALLBACK}:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError:
                continue
            for line in lines:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("run") == self.run:
                    out.add((entry.get("kind"), round(float(entry.get("t_s", 0.0)), 6), entry.get("message")))
        return out

    def record(self, alarm: Alarm, who: str) -> dict[str, Any]:
        """Append one acknowledgement; returns the entry. A log that cannot be written raises OSError."""
        entry = {"acknowledged_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                 "by": who, "run": self.run, "channel": alarm.channel, "kind": alarm.kind, "t_s": alarm.t_s,
                 "step_index": alarm.step_index, "message": alarm.message}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        return entry


class AlarmBanner(QFrame):
    """A red banner with the newest unacknowledged alarm; hidden when there is none.

    Signal ``acknowledged(list[Alarm], str)``: the alarms acknowledged and by whom.
    """

    acknowledged = Signal(object, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alarm_banner")
        self.setStyleSheet("#alarm_banner { background: #b71c1c; border-radius: 4px; }"
                           " QLabel { color: white; } QPushButton { font-weight: bold; padding: 6px 14px; }")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        self.icon = QLabel("⚠")
        self.icon.setStyleSheet("font-size: 22pt; color: white;")
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.label.setStyleSheet("font-size: 12pt; font-weight: bold; color: white;")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.more = QLabel("")
        self.button = QPushButton("Acknowledge")
        self.button.setToolTip("You have seen it: the banner goes, your name and the time are logged")
        layout.addWidget(self.icon)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.more)
        layout.addWidget(self.button)
        self.button.clicked.connect(self.acknowledge)
        self.pending: list[Alarm] = []
        self.who = user_name()
        self.setVisible(False)

    def raise_alarms(self, alarms: list[Alarm]) -> None:
        """Show these alarms (beyond those already waiting); beep once."""
        new = [a for a in alarms if a.key not in {p.key for p in self.pending}]
        if not new:
            return
        self.pending.extend(new)
        self._show()
        QApplication.beep()

    def _show(self) -> None:
        if not self.pending:
            self.setVisible(False)
            return
        self.label.setText(self.pending[-1].text())
        others = len(self.pending) - 1
        self.more.setText(f"+{others} more" if others else "")
        self.setVisible(True)

    def acknowledge(self) -> None:
        alarms, self.pending = self.pending, []
        self._show()
        if alarms:
            self.acknowledged.emit(alarms, self.who)

    def clear(self) -> None:
        """Forget the alarms (another run is shown: its own alarms come from its file)."""
        self.pending = []
        self._show()


__all__ = ["ALARM_KINDS", "Alarm", "AlarmBanner", "AlarmLog", "alarm_of", "user_name"]
