"""The run queue of a station, shown and edited in the window (the *Queue* tab).

Before a queue runs, the panel holds a list of protocol files (*Add the protocol above*, *Add
file…*, *Remove*); *Start queue* starts them as one process, ``labctl run A B C --queue
--control`` (:mod:`labctl.app.queue`), which runs them one after the other, each in its own
run file. From then on the queue lives in that process: the panel shows what its control
socket reports (done, running, pending; each run's result) and its buttons edit the pending
entries there, so closing the window changes nothing and a window opened later shows the
queue going.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labctl.yamlfile import FileError
from protocols import load_protocol
from ui.text import tidy

STATE_COLOURS = {"running": "#fff9c4", "done": "#e8f5e9", "not run": "#eeeeee", "pending": None}
HEADERS = ("#", "protocol", "kind", "state", "result", "run file")


class QueuePanel(QWidget):
    """The queue: a local list to start, or the entries of the queue process in view.

    Signals: ``start_requested(list[Path])``, ``append_requested(Path)`` and
    ``remove_requested(int)`` (a running queue's pending entry), ``add_current_requested()``
    (the protocol in the protocol panel), ``open_requested(str)`` (a run file to show).
    """

    start_requested = Signal(object)
    append_requested = Signal(object)
    remove_requested = Signal(int)
    add_current_requested = Signal()
    open_requested = Signal(str)
    message = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.summary = QLabel("no queue: add protocols, then start them one after the other on this station")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        for col in range(len(HEADERS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.table.cellDoubleClicked.connect(self._double_clicked)
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.add_current_button = QPushButton("Add the protocol above")
        self.add_current_button.setToolTip("Queue the protocol in the protocol panel (saved beside the runs)")
        self.add_file_button = QPushButton("Add file…")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected pending entries off the queue")
        self.start_button = QPushButton("Start queue")
        self.start_button.setStyleSheet("font-weight: bold;")
        for button in (self.add_current_button, self.add_file_button, self.remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        layout.addLayout(buttons)
        self.add_current_button.clicked.connect(self.add_current_requested)
        self.add_file_button.clicked.connect(self._add_file_dialog)
        self.remove_button.clicked.connect(self._remove_selected)
        self.start_button.clicked.connect(lambda: self.start_requested.emit(list(self.local)))
        self.local: list[Path] = []  # protocol files queued here, not started yet
        self.remote: dict[str, Any] | None = None  # the queue process's last report
        self.socket_path: Path | None = None
        self._show()

    # -- the local list ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """A queue process is in view and has not ended."""
        return self.remote is not None and self.socket_path is not None

    def add(self, path: str | Path) -> bool:
        """Queue a protocol file (locally, or on the running queue); a bad file is one message."""
        path = Path(path).resolve()
        try:
            load_protocol(path)
        except FileError as exc:
            self.message.emit("; ".join(exc.lines))
            return False
        if self.running:
            self.append_requested.emit(path)
        else:
            self.local.append(path)
            self._show()
        return True

    def _add_file_dialog(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Queue protocol files", "", "Protocol files (*.yaml *.yml)")
        for name in names:
            self.add(name)

    def _remove_selected(self) -> None:
        rows = sorted({index.row() for index in self.table.selectedIndexes()}, reverse=True)
        if self.running:
            entries = self.remote.get("entries", []) if self.remote else []
            for row in rows:
                if row < len(entries) and entries[row]["state"] == "pending":
                    self.remove_requested.emit(int(entries[row]["id"]))
            return
        for row in rows:
            if row < len(self.local):
                del self.local[row]
        self._show()

    def _double_clicked(self, row: int, _col: int) -> None:
        entries = self.remote.get("entries", []) if self.remote else []
        if row < len(entries) and entries[row].get("run_file"):
            self.open_requested.emit(entries[row]["run_file"])

    # -- the queue process ---------------------------------------------------------------------------
    def show_queue(self, socket_path: Path | None, report: dict[str, Any] | None) -> None:
        """What the queue process reports (``None``: it has ended; the last report stays shown)."""
        if report is not None:
            self.remote = report
            self.socket_path = socket_path
            self.local = []
        else:
            self.socket_path = None
        self._show()

    def forget(self) -> None:
        self.remote, self.socket_path = None, None
        self._show()

    def _show(self) -> None:
        if self.remote is not None:
            entries = self.remote.get("entries", [])
            rows = [(str(e["id"]), tidy(e.get("name") or Path(e["protocol"]).name), e.get("kind", ""), e["state"]
                     + (f" ({e['status']})" if e.get("status") and e["state"] == "done" else ""),
                     tidy(e.get("summary") or ""), Path(e["run_file"]).name if e.get("run_file") else "")
                    for e in entries]
            states = [e["state"] for e in entries]
            pending = states.count("pending")
            done = states.count("done")
            where = f" — {self.socket_path}" if self.socket_path else ""
            if self.socket_path is None:
                text = (f"queue ended (its process has exited); as last reported: {done} done, "
                        f"{states.count('running')} running, {pending} pending, {states.count('not run')} not run")
            else:
                text = (f"queue running in its own process: {done} done, {states.count('running')} running, "
                        f"{pending} pending{where} (it goes on if this window closes)")
            if self.remote.get("stopped"):
                text += f"; stopped: {self.remote['stopped']}"
            self.summary.setText(text)
        else:
            states = ["to start"] * len(self.local)
            rows = []
            for n, path in enumerate(self.local, 1):
                try:
                    protocol = load_protocol(path)
                    name, kind = protocol.name or path.stem, protocol.kind
                except FileError:
                    name, kind = path.name, "?"
                rows.append((str(n), tidy(name), kind, "to start", "", ""))
            self.summary.setText(f"{len(self.local)} protocol(s) to run one after the other on this station"
                                 if self.local else "no queue: add protocols, then start them one after the other "
                                                    "on this station")
        self.table.setRowCount(len(rows))
        for r, (row, state) in enumerate(zip(rows, states)):
            colour = STATE_COLOURS.get(state)
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                if colour:
                    item.setBackground(QBrush(QColor(colour)))
                self.table.setItem(r, c, item)
        running = self.running
        self.start_button.setEnabled(not running and bool(self.local))
        self.start_button.setText("Queue running" if running else "Start queue")
        self.remove_button.setEnabled(bool(rows))

    def states(self) -> list[str]:
        """The entries' states as shown (for tests and the status bar)."""
        return [self.table.item(r, 3).text() for r in range(self.table.rowCount())]
