"""The channel grid, as operators of NEWARE BTS know it: a small voltage-vs-time plot per
channel and, beside the plots, a status table — channel, protocol, state, V, I, step, cycle,
elapsed, last event — with one click to stop a channel or acknowledge its alarm.

Open a directory (every run file in it, and those that appear later: a multi-cell
``labctl run a.yaml@smu1 b.yaml@smu2 …`` or a cycler run written one file per channel), a few
run files, or a labctl server (``http://HOST:PORT``: its running runs, and those that start
later; or one run's URL). Each channel of each run gets a tile titled with its channel and
status, with labelled axes (V, test time in s/min/h/d). A channel that shorted or ended in
error gets a red frame and a red row until its alarms are acknowledged (logged with who, as in
:mod:`ui.alarms`). Click a tile or double-click a row to open that run big in the window.

Cheap for 16–64 channels: one worker thread polls every run's follower
(:class:`~labctl.store.follow.RunFollower`, or :class:`~labctl.store.remote.RemoteFollower` for
a server) in turn every :data:`POLL_INTERVAL_S` (reading only the columns the grid shows,
appended since its last look, never a whole file), the GUI thread keeps 16 bytes a reading per
channel and hands each tile at most about :data:`TILE_POINTS` points (block extremes from
:class:`~ui.decimate.MinMaxPyramid`, so a short's spike stays visible), and only tiles with new
data are redrawn, on a timer.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labctl.app.control import ControlClient, ControlError, default_socket_path
from labctl.store import RunFileError
from labctl.store.follow import RunFollower, Update, run_channels
from ui.alarms import Alarm, AlarmLog, alarm_of, user_name
from ui.axes import TimeAxis
from ui.buffers import ColumnBuffer
from ui.decimate import MinMaxPyramid
from ui.progress import format_duration
from ui.text import tidy

#: The columns a tile keeps (16 bytes a reading).
GRID_COLUMNS = {"test_time_s": "f8", "voltage_V": "f8"}
#: The columns the grid reads: the tile's and the newest current and cycle for the table.
READ_COLUMNS = ("voltage_V", "current_A", "cycle_index")
#: Seconds between two rounds over the files (and looks for new files in the directories).
POLL_INTERVAL_S = 1.0
#: Seconds between two looks for new runs on a server.
SERVER_LOOK_S = 5.0
#: Seconds between two redraws of the tiles that got data.
FRAME_INTERVAL_S = 0.5
#: Rounds a file found in a directory may fail to open before it is skipped (not a run file).
OPEN_TRIES = 5
#: Points per tile handed to pyqtgraph, about (block extremes beyond that).
TILE_POINTS = 2000
#: Run statuses and event kinds that give a tile its red frame.
FAULTS = frozenset({"short", "soft_short", "error", "instrument_lost", "safety", "polarisation", "reset_failures"})
#: Title colours by status (others: amber).
STATUS_COLOURS = {"running": "#455a64", "opening": "#9e9e9e", "completed": "#2e7d32", "paused": "#f9a825",
                  **{k: "#c62828" for k in FAULTS}}
#: The status table's columns.
TABLE_COLUMNS = ("channel", "protocol", "state", "V", "I", "step", "cycle", "elapsed", "last event", "", "")

Key = tuple[str, str]  # (run file path or URL, channel)


def natural_key(text: str) -> list[Any]:
    """Sort key that puts ``smu2`` before ``smu10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def grid_columns(n: int) -> int:
    """Tiles per row: all in one row up to 4, then 4, 6 or 8 columns (16 → 4×4, 64 → 8×8)."""
    if n <= 4:
        return max(n, 1)
    return 4 if n <= 16 else 6 if n <= 36 else 8


def _is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


class _GridWorker(QObject):
    """Lives in the grid's thread: finds runs and channels, polls their followers."""

    found = Signal(object)  # list[Key]: new tiles, in order
    updates = Signal(object)  # list[(Key, Update)]
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.directories: list[Path] = []
        self.servers: list[str] = []
        self.files: list[str | Path] = []  # asked for, or found in a directory or on a server
        self.followers: dict[Key, Any] = {}
        self._known: set[str] = set()  # files and URLs with followers, or given up on
        self._tries: dict[str, int] = {}  # failed opens of files found in a directory
        self._server_looked = 0.0
        self._timer: QTimer | None = None

    @Slot()
    def start(self) -> None:
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        self._timer.start(int(POLL_INTERVAL_S * 1000))

    @Slot(object)
    def add(self, sources: list[str | Path]) -> None:
        for source in sources:
            if _is_url(source):
                if "/runs/" in str(source).rstrip("/") + "/" and not str(source).rstrip("/").endswith("/runs"):
                    if source not in self.files:
                        self.files.append(source)
                elif source not in self.servers:
                    self.servers.append(str(source))
                    self._server_looked = 0.0
            elif Path(source).is_dir():
                if source not in self.directories:
                    self.directories.append(Path(source))
            elif source not in self.files:
                self.files.append(Path(source))
        self.poll()

    def _look_on_servers(self) -> None:
        if not self.servers or time.monotonic() - self._server_looked < SERVER_LOOK_S:
            return
        self._server_looked = time.monotonic()
        from labctl.store.remote import find_runs

        for server in self.servers:
            try:
                found = find_runs(server, status="running")
            except (RunFileError, ValueError) as exc:
                self.failed.emit(str(exc))
                continue
            for entry in found:
                if entry.uri not in self.files:
                    self.files.append(entry.uri)

    def _channels(self, source: str | Path) -> list[str]:
        if _is_url(source):
            from labctl.store.remote import RemoteRun

            with RemoteRun(str(source)) as run:
                return run.channels
        return run_channels(source)

    def _follower(self, source: str | Path, channel: str) -> Any:
        if _is_url(source):
            from labctl.store.remote import RemoteFollower

            return RemoteFollower(str(source), channel=channel, columns=READ_COLUMNS)
        return RunFollower(source, channel=channel, columns=READ_COLUMNS, spectra=False)

    def _discover(self) -> None:
        for directory in self.directories:
            for path in sorted(directory.glob("*.h5")):
                if path not in self.files:
                    self.files.append(path)
        self._look_on_servers()
        new: list[Key] = []
        for source in self.files:
            name = str(source)
            if name in self._known:
                continue
            try:
                channels = self._channels(source)
            except RunFileError as exc:
                # a file asked for by name: say why at once; one found in a directory may be
                # a run file caught at a bad moment: a few more tries, then it is skipped
                found = not _is_url(source) and any(Path(source).parent == d for d in self.directories)
                self._tries[name] = self._tries.get(name, 0) + 1
                if not found or self._tries[name] >= OPEN_TRIES:
                    self._known.add(name)
                    if not found:
                        self.failed.emit(str(exc))
                continue
            self._known.add(name)
            for channel in channels:
                key = (name, channel)
                self.followers[key] = self._follower(source, channel)
                new.append(key)
        if new:
            self.found.emit(new)

    @Slot()
    def poll(self) -> None:
        self._discover()
        batch: list[tuple[Key, Update]] = []
        for key, follower in self.followers.items():
            if follower.finished:
                continue
            try:
                update = follower.poll()
            except RunFileError as exc:
                if _is_url(key[0]):
                    continue  # a server outage: the next round may succeed
                follower.finished = True
                follower.close()
                self.failed.emit(str(exc))
                continue
            if update.n_rows or update.events or update.attrs is not None or update.finished or update.steps:
                batch.append((key, update))
        if batch:
            self.updates.emit(batch)

    @Slot()
    def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        for follower in self.followers.values():
            follower.close()


@dataclass
class Tile:
    """One channel's small plot, its row in the table and what they show."""

    path: str
    channel: str
    plot: pg.PlotItem
    curve: pg.PlotDataItem
    buffer: ColumnBuffer = field(default_factory=lambda: ColumnBuffer(GRID_COLUMNS, initial_rows=4096))
    pyramid: MinMaxPyramid = field(default_factory=MinMaxPyramid)
    status: str = "opening"
    fault: bool = False
    finished: bool = False
    dirty: bool = False
    name: str = ""  # what the title calls it: the channel, or the channel and the file
    protocol: str = ""
    last: dict[str, float] = field(default_factory=dict)
    step: int = -1
    n_steps: int = 0
    last_event: str = ""
    paused: bool = False
    alarms: list[Alarm] = field(default_factory=list)  # not yet acknowledged
    acknowledged: set = field(default_factory=set)
    row: int = -1

    @property
    def remote(self) -> bool:
        return _is_url(self.path)

    @property
    def socket_path(self) -> Path | None:
        return None if self.remote else default_socket_path(self.path)

    @property
    def state(self) -> str:
        return "paused" if self.paused and self.status == "running" else self.status

    @property
    def title(self) -> str:
        colour = STATUS_COLOURS.get(self.state, "#ef6c00")
        return (f'<span style="font-weight: bold">{self.name or self.channel}</span> · '
                f'<span style="color: {colour}; font-weight: bold">{self.state}</span>')


def _elide(text: str, n: int = 22) -> str:
    """The last ``n`` characters (file names differ at their end: ``…_smu12``)."""
    return text if len(text) <= n else "…" + text[-(n - 1):]


class ChannelGrid(QWidget):
    """Small plots and a status table of many channels.

    Signals: ``open_requested(path: str, channel: str)`` on a click on a tile (or a double
    click on a row); ``alarms(list[Alarm])`` for new unacknowledged alarms; ``acknowledged(
    list[Alarm], who)`` when a row's *Acknowledge* was pressed (logged already);
    ``message(str)``.
    """

    open_requested = Signal(str, str)
    alarms = Signal(object)
    acknowledged = Signal(object, str)
    message = Signal(str)
    _add = Signal(object)
    _stopped = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("open a directory of run files, several run files or a server (File menu)")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        split = QSplitter(Qt.Orientation.Horizontal)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.ci.setSpacing(2)
        split.addWidget(self.canvas)
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setObjectName("channel_table")
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        for col in range(len(TABLE_COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)  # the protocol's name: elided
        self.table.setColumnWidth(1, 120)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        header.setSectionResizeMode(8, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(30)
        self.table.cellDoubleClicked.connect(self._row_double_clicked)
        split.addWidget(self.table)
        split.setSizes([480, 640])
        layout.addWidget(split, 1)
        self.tiles: dict[Key, Tile] = {}
        self.sources: list[str | Path] = []
        self._tick_font = QFont(self.font())
        self._tick_font.setPointSizeF(max(6.0, self.font().pointSizeF() - 2))
        self._thread: QThread | None = None
        self._worker: _GridWorker | None = None
        self.canvas.scene().sigMouseClicked.connect(self._clicked)
        self._stopped.connect(self.message)
        self._frame_timer = QTimer(self)
        self._frame_timer.timeout.connect(self.draw)
        self._frame_timer.start(int(FRAME_INTERVAL_S * 1000))
        self.who = user_name()

    # -- sources -----------------------------------------------------------------------------------
    def open_sources(self, sources: list[str | Path]) -> None:
        """Follow the run files of these directories (also files that appear later), files and
        servers (their running runs, also those that start later) or run URLs."""
        sources = [s.rstrip("/") if _is_url(s) else Path(s).resolve() for s in sources]
        self.sources.extend(s for s in sources if s not in self.sources)
        if self._worker is None:
            self._thread = QThread()
            self._thread.setObjectName("channel grid")
            self._worker = _GridWorker()
            self._worker.moveToThread(self._thread)
            self._thread.started.connect(self._worker.start)
            self._worker.found.connect(self._found)
            self._worker.updates.connect(self._updates)
            self._worker.failed.connect(self._failed)
            self._add.connect(self._worker.add)
            # The worker stops its timer and closes its followers in its own thread as that
            # thread ends, whatever it was doing when told to quit (a queued shutdown could be
            # skipped behind a slow poll, leaving the file's shared handle open and live for
            # every other follower in the process: a run that never ends on screen).
            self._thread.finished.connect(self._worker.shutdown, Qt.ConnectionType.DirectConnection)
            self._thread.start()
        self._add.emit(sources)
        self._summarise()

    def stop(self) -> None:
        """Stop following (the runs go on) and end the worker thread."""
        if self._thread is not None and self._thread.isRunning():
            self._thread.quit()
            self._thread.wait(5000)
        self._frame_timer.stop()

    # -- tiles -------------------------------------------------------------------------------------
    def _found(self, keys: list[Key]) -> None:
        for key in keys:
            axis = TimeAxis("bottom")
            plot = pg.PlotItem(axisItems={"bottom": axis})
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            for name in ("left", "bottom"):
                plot.getAxis(name).setStyle(tickFont=self._tick_font, tickLength=-4)
                plot.getAxis(name).label.setFont(self._tick_font)
            plot.setLabel("left", "V", units="V")
            axis.what = "t"
            axis.setLabel("t (s)")
            plot.getAxis("left").setWidth(40)
            curve = plot.plot(pen=pg.mkPen("#1565c0", width=1))
            curve.setDownsampling(auto=True, method="peak")
            curve.setSkipFiniteCheck(True)
            tile = Tile(key[0], key[1], plot, curve)
            plot.setTitle(tile.title, size="8pt")
            plot.setToolTip(f"{key[0]} [{key[1]}]: click to open it in the window")
            self.tiles[key] = tile
        self._arrange()
        self._summarise()

    def _arrange(self) -> None:
        """Lay the tiles and rows out in channel order; titles short enough for small tiles (the
        channel, and the file only where channel names repeat, e.g. one file per channel
        all called ``ch1``)."""
        self.canvas.ci.clear()
        tiles = sorted(self.tiles.values(), key=lambda t: (natural_key(t.channel), natural_key(t.path)))
        unique = len({t.channel for t in tiles}) == len(tiles)
        for tile in tiles:
            tile.name = tile.channel if unique else f"{tile.channel} · {_elide(Path(tile.path).stem)}"
            tile.plot.setTitle(tile.title, size="8pt")
        columns = grid_columns(len(tiles))
        for n, tile in enumerate(tiles):
            self.canvas.ci.addItem(tile.plot, row=n // columns, col=n % columns)
        self.table.setRowCount(len(tiles))
        for n, tile in enumerate(tiles):
            tile.row = n
            stop = QPushButton("Stop")
            stop.setToolTip(f"stop {tile.name} safely (output off)")
            stop.clicked.connect(lambda _=False, t=tile: self.stop_channel(t))
            ack = QPushButton("Ack")
            ack.setToolTip(f"acknowledge {tile.name}'s alarm (logged with your name)")
            ack.clicked.connect(lambda _=False, t=tile: self.acknowledge(t))
            for button in (stop, ack):
                button.setStyleSheet("padding: 1px 6px;")
            self.table.setCellWidget(n, 9, stop)
            self.table.setCellWidget(n, 10, ack)
            self._show_row(tile)

    def _show_row(self, tile: Tile) -> None:
        if tile.row < 0:
            return
        last = tile.last
        t = float(tile.buffer.view("test_time_s")[-1]) if len(tile.buffer) else None
        step = "" if tile.step < 0 else (f"{tile.step + 1} / {tile.n_steps}" if tile.n_steps else str(tile.step + 1))
        cells = (tile.name, tile.protocol, tile.state,
                 pg.siFormat(last["voltage_V"], suffix="V", precision=4) if "voltage_V" in last else "",
                 pg.siFormat(last["current_A"], suffix="A", precision=3) if "current_A" in last else "",
                 step, str(int(last["cycle_index"])) if "cycle_index" in last else "",
                 format_duration(t) if t is not None else "", tile.last_event)
        alarm = bool(tile.alarms)
        colour = "#ffcdd2" if alarm else "#fff3e0" if tile.fault else "#fff9c4" if tile.state == "paused" else None
        for col, text in enumerate(cells):
            item = self.table.item(tile.row, col)
            if item is None:
                item = QTableWidgetItem()
                self.table.setItem(tile.row, col, item)
            if item.text() != text:
                item.setText(text)
                item.setToolTip(text)
            item.setBackground(QBrush(QColor(colour)) if colour else QBrush())
        stop = self.table.cellWidget(tile.row, 9)
        ack = self.table.cellWidget(tile.row, 10)
        if stop is not None:
            live = not tile.finished and tile.socket_path is not None and tile.socket_path.exists()
            stop.setEnabled(live)
        if ack is not None:
            ack.setEnabled(alarm)
            ack.setStyleSheet("padding: 1px 6px;" + (" font-weight: bold; color: #b71c1c;" if alarm else ""))

    def _updates(self, batch: list[tuple[Key, Update]]) -> None:
        new_alarms: list[Alarm] = []
        for key, update in batch:
            tile = self.tiles.get(key)
            if tile is None:
                continue
            status, fault = tile.status, tile.fault
            if update.attrs is not None:
                if tile.status == "opening":
                    tile.acknowledged = AlarmLog(tile.path).acknowledged()
                    status = "running" if update.attrs.get("status") == "running" else str(update.attrs.get("status"))
                if not tile.protocol:
                    tile.protocol = tidy(str(update.attrs.get("protocol_name") or update.attrs.get("protocol_kind", "")))
                    tile.n_steps = self._n_steps(update.attrs)
            if update.n_rows:
                tile.buffer.append({k: update.rows[k] for k in GRID_COLUMNS})
                tile.last = {k: float(update.rows[k][-1]) for k in READ_COLUMNS if k in update.rows}
                tile.step = int(update.rows["step_index"][-1])
                tile.dirty = True
            for event in update.events:
                if event.get("channel") not in (tile.channel, "", None):
                    continue
                if event["kind"] in FAULTS:
                    tile.fault = True
                if event["kind"] == "paused":
                    tile.paused = True
                elif event["kind"] == "resumed":
                    tile.paused = False
                if event["kind"] == "run_ended":
                    status = str(event["message"]).split(":", 1)[0]
                    tile.paused = False
                tile.last_event = f"{event['kind']}: {tidy(str(event['message']))}"
                alarm = alarm_of(event, tile.path, cell=True)
                if alarm is not None and alarm.key not in tile.acknowledged \
                        and alarm.key not in {a.key for a in tile.alarms}:
                    alarm = Alarm(alarm.kind, alarm.t_s, alarm.message, alarm.step_index, tile.path, tile.channel)
                    tile.alarms.append(alarm)
                    new_alarms.append(alarm)
            if update.finished:
                tile.finished = True
                root = str((update.attrs or {}).get("status", ""))
                if status in ("running", "opening") and root not in ("mixed", "unknown", ""):
                    status = root
            if status != tile.status or tile.fault != fault or update.events:
                self._set_status(tile, status)
            self._show_row(tile)
        self._summarise()
        if new_alarms:
            self.alarms.emit(new_alarms)

    @staticmethod
    def _n_steps(attrs: dict[str, Any]) -> int:
        from ui.plot_set import PlotSet

        program = PlotSet.program_of(attrs)
        return 0 if program is None else program.n_steps

    def _set_status(self, tile: Tile, status: str) -> None:
        tile.status = status
        tile.fault = tile.fault or status in FAULTS
        tile.plot.setTitle(tile.title, size="8pt")
        tile.plot.getViewBox().setBorder(pg.mkPen("#c62828", width=3) if tile.fault else None)

    def _failed(self, text: str) -> None:
        self.summary.setText(text)

    def draw(self) -> None:
        """Redraw the tiles that got readings since the last frame."""
        for tile in self.tiles.values():
            if not tile.dirty:
                continue
            tile.dirty = False
            t, v = tile.buffer.view("test_time_s"), tile.buffer.view("voltage_V")
            tile.pyramid.update(v)
            index = tile.pyramid.indices(0, len(t), TILE_POINTS)
            tile.curve.setData(t[index], v[index])

    def _summarise(self) -> None:
        if not self.tiles:
            return
        counts: dict[str, int] = {}
        for tile in self.tiles.values():
            counts[tile.state] = counts.get(tile.state, 0) + 1
        faults = sum(t.fault for t in self.tiles.values())
        waiting = sum(bool(t.alarms) for t in self.tiles.values())
        where = ", ".join(str(s) for s in self.sources[:3]) + (" …" if len(self.sources) > 3 else "")
        self.summary.setText(f"{len(self.tiles)} channels ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})"
                             + (f"; {faults} with a fault (red frame)" if faults else "")
                             + (f", {waiting} not acknowledged" if waiting else "")
                             + f" — {where}; click a plot to open it")

    # -- actions -----------------------------------------------------------------------------------
    def tile_at(self, scene_pos: Any) -> Tile | None:
        for tile in self.tiles.values():
            if tile.plot.sceneBoundingRect().contains(scene_pos):
                return tile
        return None

    def _clicked(self, event: Any) -> None:
        tile = self.tile_at(event.scenePos())
        if tile is not None:
            self.open_requested.emit(str(tile.path), tile.channel)

    def _row_double_clicked(self, row: int, _col: int) -> None:
        tile = next((t for t in self.tiles.values() if t.row == row), None)
        if tile is not None:
            self.open_requested.emit(str(tile.path), tile.channel)

    def stop_channel(self, tile: Tile) -> None:
        """Stop one channel's run safely (its control socket), off the GUI thread."""
        socket_path = tile.socket_path
        if socket_path is None or not socket_path.exists():
            self.message.emit(f"{tile.name}: no control socket (a run on a server, or not started with --control)")
            return
        relay = self._stopped

        def work() -> None:
            try:
                reply = ControlClient(socket_path).stop()
                relay.emit(f"{tile.name}: stop sent, run {reply['state']}")
            except ControlError as exc:
                relay.emit(f"{tile.name}: {exc}")

        threading.Thread(target=work, name=f"stop {tile.name}", daemon=True).start()

    def acknowledge(self, tile: Tile) -> list[Alarm]:
        """Acknowledge a channel's alarms: logged beside its run file with who; the row is no
        longer red (the frame stays: the run did fail)."""
        alarms, tile.alarms = tile.alarms, []
        log = AlarmLog(tile.path)
        for alarm in alarms:
            try:
                log.record(alarm, self.who)
            except OSError as exc:
                self.message.emit(f"the acknowledgement could not be logged: {exc}")
            tile.acknowledged.add(alarm.key)
        self._show_row(tile)
        self._summarise()
        if alarms:
            self.acknowledged.emit(alarms, self.who)
        return alarms

    def mark_acknowledged(self, alarm: Alarm) -> None:
        """An alarm acknowledged elsewhere (the window's banner): off its channel's row."""
        for tile in self.tiles.values():
            if tile.path == alarm.run:
                before = len(tile.alarms)
                tile.alarms = [a for a in tile.alarms if a.key != alarm.key]
                tile.acknowledged.add(alarm.key)
                if len(tile.alarms) != before:
                    self._show_row(tile)
        self._summarise()

    def live_channels(self) -> list[tuple[str, Path | None]]:
        """(name, control socket or None) of every channel still going: its file not read to
        its end and, without a control socket, a live process still writing it (its lock). A
        run on a server counts while the server says it runs."""
        from labctl.store.lock import writer_may_be_alive

        out = []
        for tile in self.tiles.values():
            if tile.finished or tile.status not in ("running", "opening"):
                continue
            socket_path = tile.socket_path
            if socket_path is not None and socket_path.exists():
                out.append((f"{tile.name} ({Path(tile.path).name})", socket_path))
            elif tile.remote or writer_may_be_alive(tile.path):
                out.append((f"{tile.name} ({Path(tile.path).name})", None))
        return out

    def row_texts(self, tile: Tile) -> list[str]:
        """The status table's texts of a channel's row (for tests and screenshots)."""
        return [self.table.item(tile.row, col).text() if self.table.item(tile.row, col) else ""
                for col in range(9)]

    def clear(self) -> None:
        """Forget every tile and source (stops the worker)."""
        self.stop()
        self._thread = self._worker = None
        self.tiles = {}
        self.sources = []
        self.canvas.ci.clear()
        self.table.setRowCount(0)
        self._frame_timer.start(int(FRAME_INTERVAL_S * 1000))
