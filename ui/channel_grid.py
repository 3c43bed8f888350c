"""A grid of small voltage-vs-time plots, one per channel, for many cells at once.

Open a directory (every run file in it, and those that appear later: a multi-cell
``labctl run a.yaml@smu1 b.yaml@smu2 …`` or a cycler run written one file per channel) or a
few run files; each channel of each file gets a tile titled with its channel, file and status.
A channel that shorted or ended in error gets a red frame. Click a tile to open that run big
in the window.

Cheap for 16–64 channels: one worker thread polls every file's
:class:`~labctl.store.follow.RunFollower` in turn every :data:`POLL_INTERVAL_S` (reading only the time
and voltage columns appended since its last look, never a whole file), the GUI thread keeps
16 bytes a reading per channel and hands each tile at most about :data:`TILE_POINTS` points
(block extremes from :class:`~ui.decimate.MinMaxPyramid`, so a short's spike stays visible),
and only tiles with new data are redrawn, on a timer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from labctl.store import RunFileError
from ui.buffers import ColumnBuffer
from ui.decimate import MinMaxPyramid
from labctl.store.follow import RunFollower, Update, run_channels
from ui.plots import time_axis

#: The columns a tile shows (16 bytes a reading).
GRID_COLUMNS = {"test_time_s": "f8", "voltage_V": "f8"}
#: Seconds between two rounds over the files (and looks for new files in the directories).
POLL_INTERVAL_S = 1.0
#: Seconds between two redraws of the tiles that got data.
FRAME_INTERVAL_S = 0.5
#: Rounds a file found in a directory may fail to open before it is skipped (not a run file).
OPEN_TRIES = 5
#: Points per tile handed to pyqtgraph, about (block extremes beyond that).
TILE_POINTS = 2000
#: Run statuses and event kinds that give a tile its red frame.
FAULTS = frozenset({"short", "soft_short", "error", "instrument_lost", "safety"})
#: Title colours by status (others: amber).
STATUS_COLOURS = {"running": "#455a64", "opening": "#9e9e9e", "completed": "#2e7d32", **{k: "#c62828" for k in FAULTS}}

Key = tuple[str, str]  # (run file path, channel)


def natural_key(text: str) -> list[Any]:
    """Sort key that puts ``smu2`` before ``smu10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def grid_columns(n: int) -> int:
    """Tiles per row: all in one row up to 4, then 4, 6 or 8 columns (16 → 4×4, 64 → 8×8)."""
    if n <= 4:
        return max(n, 1)
    return 4 if n <= 16 else 6 if n <= 36 else 8


class _GridWorker(QObject):
    """Lives in the grid's thread: finds run files and channels, polls their followers."""

    found = Signal(object)  # list[Key]: new tiles, in order
    updates = Signal(object)  # list[(Key, Update)]
    failed = Signal(str)

    def __init__(self) -> None:
        super().__init__()
        self.directories: list[Path] = []
        self.files: list[Path] = []  # asked for, or found in a directory
        self.followers: dict[Key, RunFollower] = {}
        self._known: set[Path] = set()  # files with followers, or given up on
        self._tries: dict[Path, int] = {}  # failed opens of files found in a directory
        self._timer: QTimer | None = None

    @Slot()
    def start(self) -> None:
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)
        self._timer.start(int(POLL_INTERVAL_S * 1000))

    @Slot(object)
    def add(self, sources: list[Path]) -> None:
        for source in sources:
            if source.is_dir():
                if source not in self.directories:
                    self.directories.append(source)
            elif source not in self.files:
                self.files.append(source)
        self.poll()

    def _discover(self) -> None:
        for directory in self.directories:
            for path in sorted(directory.glob("*.h5")):
                if path not in self.files:
                    self.files.append(path)
        new: list[Key] = []
        for path in self.files:
            if path in self._known:
                continue
            try:
                channels = run_channels(path)
            except RunFileError as exc:
                # a file asked for by name: say why at once; one found in a directory may be
                # a run file caught at a bad moment: a few more tries, then it is skipped
                found = any(path.parent == d for d in self.directories)
                self._tries[path] = self._tries.get(path, 0) + 1
                if not found or self._tries[path] >= OPEN_TRIES:
                    self._known.add(path)
                    if not found:
                        self.failed.emit(str(exc))
                continue
            self._known.add(path)
            for channel in channels:
                key = (str(path), channel)
                self.followers[key] = RunFollower(path, channel=channel, columns=GRID_COLUMNS)
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
                follower.finished = True
                self.failed.emit(str(exc))
                continue
            if update.n_rows or update.events or update.attrs is not None or update.finished:
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
    """One channel's small plot and what it shows."""

    path: Path
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

    @property
    def title(self) -> str:
        colour = STATUS_COLOURS.get(self.status, "#ef6c00")
        return (f'<span style="font-weight: bold">{self.name or self.channel}</span> · '
                f'<span style="color: {colour}; font-weight: bold">{self.status}</span>')


def _elide(text: str, n: int = 22) -> str:
    """The last ``n`` characters (file names differ at their end: ``…_smu12``)."""
    return text if len(text) <= n else "…" + text[-(n - 1):]


class ChannelGrid(QWidget):
    """Small plots of many channels. Signal ``open_requested(path: str, channel: str)`` on a
    click on a tile."""

    open_requested = Signal(str, str)
    _add = Signal(object)
    _shutdown = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("open a directory of run files or several run files (File menu)")
        layout.addWidget(self.summary)
        self.canvas = pg.GraphicsLayoutWidget()
        self.canvas.ci.setSpacing(2)
        layout.addWidget(self.canvas, 1)
        self.tiles: dict[Key, Tile] = {}
        self.sources: list[Path] = []
        self._tick_font = QFont(self.font())
        self._tick_font.setPointSizeF(max(6.0, self.font().pointSizeF() - 2))
        self._thread: QThread | None = None
        self._worker: _GridWorker | None = None
        self.canvas.scene().sigMouseClicked.connect(self._clicked)
        self._frame_timer = QTimer(self)
        self._frame_timer.timeout.connect(self.draw)
        self._frame_timer.start(int(FRAME_INTERVAL_S * 1000))

    # -- sources -----------------------------------------------------------------------------------
    def open_sources(self, sources: list[str | Path]) -> None:
        """Follow the run files of these directories (also files that appear later) and files."""
        sources = [Path(s).resolve() for s in sources]
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
            self._shutdown.connect(self._worker.shutdown)
            self._thread.start()
        self._add.emit(sources)
        self._summarise()

    def stop(self) -> None:
        """Stop following (the runs go on) and end the worker thread."""
        if self._thread is not None and self._thread.isRunning():
            self._shutdown.emit()
            self._thread.quit()
            self._thread.wait(5000)
        self._frame_timer.stop()

    # -- tiles -------------------------------------------------------------------------------------
    def _found(self, keys: list[Key]) -> None:
        for key in keys:
            plot = pg.PlotItem()
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            time_axis(plot)
            plot.setLabel("bottom", "")
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setStyle(tickFont=self._tick_font, tickLength=-4)
            plot.getAxis("left").setWidth(34)
            curve = plot.plot(pen=pg.mkPen("#1565c0", width=1))
            curve.setDownsampling(auto=True, method="peak")
            curve.setSkipFiniteCheck(True)
            tile = Tile(Path(key[0]), key[1], plot, curve)
            plot.setTitle(tile.title, size="8pt")
            plot.setToolTip(f"{key[0]} [{key[1]}]: click to open it in the window")
            self.tiles[key] = tile
        self._arrange()
        self._summarise()

    def _arrange(self) -> None:
        """Lay the tiles out in channel order; titles short enough for small tiles (the
        channel, and the file only where channel names repeat, e.g. one file per channel
        all called ``ch1``)."""
        self.canvas.ci.clear()
        tiles = sorted(self.tiles.values(), key=lambda t: (natural_key(t.channel), natural_key(str(t.path))))
        unique = len({t.channel for t in tiles}) == len(tiles)
        for tile in tiles:
            tile.name = tile.channel if unique else f"{tile.channel} · {_elide(tile.path.stem)}"
            tile.plot.setTitle(tile.title, size="8pt")
        columns = grid_columns(len(tiles))
        for n, tile in enumerate(tiles):
            self.canvas.ci.addItem(tile.plot, row=n // columns, col=n % columns)

    def _updates(self, batch: list[tuple[Key, Update]]) -> None:
        for key, update in batch:
            tile = self.tiles.get(key)
            if tile is None:
                continue
            status, fault = tile.status, tile.fault
            if update.attrs is not None and tile.status == "opening":
                status = "running" if update.attrs.get("status") == "running" else str(update.attrs.get("status"))
            if update.n_rows:
                tile.buffer.append(update.rows)
                tile.dirty = True
            for event in update.events:
                if event.get("channel") not in (tile.channel, "", None):
                    continue
                if event["kind"] in FAULTS:
                    tile.fault = True
                if event["kind"] == "run_ended":
                    status = str(event["message"]).split(":", 1)[0]
            if update.finished:
                tile.finished = True
                root = str((update.attrs or {}).get("status", ""))
                if status in ("running", "opening") and root not in ("mixed", "unknown", ""):
                    status = root
            if status != tile.status or tile.fault != fault:
                self._set_status(tile, status)
        self._summarise()

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
            counts[tile.status] = counts.get(tile.status, 0) + 1
        faults = sum(t.fault for t in self.tiles.values())
        where = ", ".join(str(s) for s in self.sources[:3]) + (" …" if len(self.sources) > 3 else "")
        self.summary.setText(f"{len(self.tiles)} channels ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})"
                             + (f"; {faults} with a fault (red frame)" if faults else "")
                             + f" — {where}; click a plot to open it")

    def tile_at(self, scene_pos: Any) -> Tile | None:
        for tile in self.tiles.values():
            if tile.plot.sceneBoundingRect().contains(scene_pos):
                return tile
        return None

    def _clicked(self, event: Any) -> None:
        tile = self.tile_at(event.scenePos())
        if tile is not None:
            self.open_requested.emit(str(tile.path), tile.channel)

    def clear(self) -> None:
        """Forget every tile and source (stops the worker)."""
        self.stop()
        self._thread = self._worker = None
        self.tiles = {}
        self.sources = []
        self.canvas.ci.clear()
        self._frame_timer.start(int(FRAME_INTERVAL_S * 1000))
