"""The event log: what happened and when (run start and end, shorts, compliance, pauses …),
from the run file's ``events`` table, newest last."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem, QWidget

#: Background of the rows of alarming kinds.
ALARM_KINDS = {"short": "#ffcdd2", "compliance": "#ffcdd2", "safety": "#ffcdd2", "error": "#ffcdd2",
               "instrument_lost": "#ffcdd2", "stopped": "#ffe0b2", "paused": "#fff9c4", "resumed": "#e8f5e9"}


class EventLog(QTableWidget):
    """A table: test time (h), kind, step, message."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["t (h)", "event", "step", "message"])
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)

    def add_events(self, events: list[dict[str, Any]]) -> None:
        """Append rows of the run file's ``events`` table (t_s, kind, step_index, message)."""
        for event in events:
            row = self.rowCount()
            self.insertRow(row)
            step = event.get("step_index", -1)
            cells = (f"{event['t_s'] / 3600:.4f}", event["kind"], "" if step is None or step < 0 else str(step),
                     event["message"])
            colour = ALARM_KINDS.get(event["kind"])
            if event["kind"] == "run_ended" and not str(event["message"]).startswith(("completed", "short")):
                colour = "#ffe0b2"
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if colour:
                    item.setBackground(QBrush(QColor(colour)))
                self.setItem(row, col, item)
        if events:
            self.scrollToBottom()

    def add_note(self, t_s: float, kind: str, message: str) -> None:
        """A line from the window itself (a refused command, a started run …)."""
        self.add_events([{"t_s": t_s, "kind": kind, "step_index": -1, "message": message}])

    def kinds(self) -> list[str]:
        return [self.item(row, 1).text() for row in range(self.rowCount())]
