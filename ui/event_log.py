"""The event log: what happened and when (run start and end, shorts, compliance, pauses …),
from the run file's ``events`` table, newest last; the window's own notes (a refused command,
a started run, an acknowledged alarm) among them.

A table model, not a table of widgets: a long run at ``--speed max`` logs thousands of events
and appending one costs O(1), so the window stays responsive. Times read as the window's
clocks do (s, min, h or d); messages in the window's unit spellings (:func:`ui.text.tidy`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHeaderView, QTableView, QWidget

from ui.progress import format_duration
from ui.text import tidy

#: Background of the rows of alarming kinds.
ALARM_KINDS = {"short": "#ffcdd2", "soft_short": "#ffcdd2", "compliance": "#ffcdd2", "safety": "#ffcdd2",
               "error": "#ffcdd2", "instrument_lost": "#ffcdd2", "reset_failed": "#ffe0b2",
               "reset_failures": "#ffcdd2", "polarisation": "#ffcdd2", "stopped": "#ffe0b2", "paused": "#fff9c4",
               "resumed": "#e8f5e9", "acknowledged": "#e3f2fd", "result": "#e8f5e9"}
HEADERS = ("test time", "event", "step", "message")


class EventModel(QAbstractTableModel):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, str, str, str | None]] = []

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return len(HEADERS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return row[index.column()]
        if role == Qt.ItemDataRole.BackgroundRole and row[4]:
            return QBrush(QColor(row[4]))
        return None

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None

    def append(self, rows: list[tuple[str, str, str, str, str | None]]) -> None:
        if not rows:
            return
        n = len(self.rows)
        self.beginInsertRows(QModelIndex(), n, n + len(rows) - 1)
        self.rows.extend(rows)
        self.endInsertRows()

    def replace_last(self, row: tuple[str, str, str, str, str | None]) -> None:
        """The newest row, changed in place."""
        self.rows[-1] = row
        n = len(self.rows) - 1
        self.dataChanged.emit(self.index(n, 0), self.index(n, len(HEADERS) - 1))

    def clear(self) -> None:
        self.beginResetModel()
        self.rows = []
        self.endResetModel()


class EventLog(QTableView):
    """A table: test time, kind, step, message."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_ = EventModel()
        self._stalls: tuple[int, str] | None = None  # (steps in a row, first step) of the newest rows' stalls
        self.setModel(self.model_)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(20)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in enumerate((90, 120, 50)):
            self.setColumnWidth(col, width)
        header.setStretchLastSection(True)
        self.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.setWordWrap(False)

    def add_events(self, events: list[dict[str, Any]]) -> None:
        """Append rows of the run file's ``events`` table (t_s, kind, step_index, message).

        Consecutive ``stall`` events (a paced run the computer cannot keep up with: one per
        step) share one row, the newest with the count and the first step, so they do not
        push everything else out of view; the run file keeps each of them."""
        rows: list[tuple[str, str, str, str, str | None]] = []
        for event in events:
            step = event.get("step_index", -1)
            kind = str(event["kind"])
            message = str(event["message"])
            colour = ALARM_KINDS.get(kind)
            if kind == "run_ended" and not message.startswith(("completed", "short")):
                colour = "#ffe0b2"
            step_text = "" if step is None or step < 0 else str(step)
            row = (format_duration(float(event["t_s"])), kind, step_text, tidy(message), colour)
            if kind != "stall":
                self._stalls = None
            elif self._stalls is None:
                self._stalls = (1, step_text)
            else:
                count, first = self._stalls[0] + 1, self._stalls[1]
                self._stalls = (count, first)
                row = row[:3] + (f"{count} steps in a row since step {first}; the newest: {row[3]}",) + row[4:]
                if rows:
                    rows[-1] = row
                else:
                    self.model_.replace_last(row)
                continue
            rows.append(row)
        at_end = self.verticalScrollBar().value() >= self.verticalScrollBar().maximum() - 2
        self.model_.append(rows)
        if rows and at_end:
            self.scrollToBottom()

    def add_note(self, t_s: float, kind: str, message: str) -> None:
        """A line from the window itself (a refused command, a started run …)."""
        self.add_events([{"t_s": t_s, "kind": kind, "step_index": -1, "message": message}])

    def clear(self) -> None:
        self.model_.clear()
        self._stalls = None

    def rowCount(self) -> int:  # noqa: N802 - as QTableWidget's
        return self.model_.rowCount()

    def kinds(self) -> list[str]:
        return [row[1] for row in self.model_.rows]

    def messages(self) -> list[str]:
        return [row[3] for row in self.model_.rows]

    def times(self) -> list[str]:
        return [row[0] for row in self.model_.rows]
