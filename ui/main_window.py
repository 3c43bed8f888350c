"""The operator's window: station and protocol on the left; run control, an alarm banner that
stays until acknowledged, a large-type readout, live plots and the event log in the middle
(the *Run* tab; the plots chosen by the run's protocol kind, see :mod:`ui.plot_set`); the run
queue of the station (*Queue*); a grid of many runs with their status table (*Channels*).

Runs are their own processes (:mod:`ui.launcher`); the window follows a run's file — or a run
on a labctl server, by its URL — and sends it commands through its control socket
(:mod:`ui.watcher`). Closing the window asks whether to leave the runs going or stop them
safely; a window opened later finds the runs (and a queue) going in its runs directory and
shows the newest, and can attach to any run in progress (its ``.h5`` or ``.ctl``) or open a
finished run file with the same plots.

Every number on screen comes from the run file (through :mod:`labctl.store.follow`) or the
run's control socket: elapsed and remaining times exclude the run's pauses
(:mod:`ui.progress`), a pressed command says so at once ("pausing…") and the confirmed state
replaces it when the engine reports it.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from labctl.app.control import ControlClient, ControlError, default_socket_path
from labctl.store.follow import Update
from protocols import KINDS
from ui.alarms import Alarm, AlarmBanner, AlarmLog, alarm_of
from ui.buffers import ColumnBuffer
from ui.channel_grid import ChannelGrid
from ui.event_log import EventLog
from ui.help import HelpMenu
from ui.launcher import LaunchedQueue, LaunchedRun, LaunchError, launch_queue, launch_run
from ui.plot_set import PlotSet, plot_set_name, stored_protocol_model
from ui.plot_tools import export_image, write_csv
from ui.plots import RunPlots
from ui.progress import Progress, RunProgress, format_duration
from ui.protocol_panel import ProtocolPanel
from ui.queue_panel import QueuePanel
from ui.readout import ReadoutPanel
from ui.run_panel import RunPanel
from ui.station_panel import StationPanel
from ui.sweep_plots import SweepPlots
from ui.watcher import RunWatcher, StatusWatcher, is_url

#: Frames per second of the live plots at most.
FRAME_RATE_HZ = 10
#: Seconds to wait for runs to end when the window closes with "stop them safely".
STOP_TIMEOUT_S = 30.0
#: The reading columns of the newest reading the readout shows.
READOUT_COLUMNS = ("voltage_V", "current_A", "current_density_mA_cm2", "step_index", "cycle_index")


def planned_duration_s(protocol_text: str) -> float | None:
    """Planned test time of a run from its stored protocol text (None if it cannot be read)."""
    program = PlotSet.program_of({"protocol_text": protocol_text})
    return None if program is None else program.planned_duration_s


def _plain(value: Any) -> Any:
    """Results read from a run file as the protocol made them: arrays as lists, recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class RunView:
    """What the window knows about the run in view (a live run or a file under review).

    ``path`` is the run file, or the run's URL on a labctl server.
    """

    def __init__(self, path: Path | str, socket_path: Path | None, launched: LaunchedRun | None = None, *,
                 columns: dict[str, str] = RunPlots.COLUMNS, channel: str | None = None) -> None:
        self.path = path
        self.socket_path = socket_path
        self.launched = launched
        self.channel = channel
        self.buffer = ColumnBuffer(columns)  # the columns of the run's plot set
        self.step_starts: list[float] = []
        self.steps: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.attrs: dict[str, Any] = {}
        self.results: dict[str, Any] | None = None
        self.planned_s: float | None = None
        self.status: dict[str, Any] | None = None
        self.progress = RunProgress(None)
        self.last: dict[str, float] = {}  # the newest reading's values (the readout)
        self.ended = False  # the run_ended event was seen: the output is off
        self.end_status: str | None = None  # the status its run_ended event gave
        self.finished = False  # everything is read
        self.watcher: RunWatcher | None = None
        self.alarm_log = AlarmLog(path)
        self.acknowledged = self.alarm_log.acknowledged()

    @property
    def name(self) -> str:
        return Path(str(self.path)).name

    @property
    def state(self) -> str:
        # The run's end (its run_ended event, or the finished file) outranks the last status
        # poll, which may predate the end by up to a poll interval; the run_ended event says how
        # it ended, the root attributes only once the file is finished.
        if self.finished or self.ended:
            status = self.end_status or (self.attrs.get("status") if self.finished else None)
            return f"ended ({status})" if status and status != "running" else "ended"
        if self.status is not None:
            return self.status["state"]
        if self.progress.pauses.paused:
            return "paused"
        return "running (no control socket)" if self.attrs.get("status") == "running" else "opening"

    @property
    def output(self) -> str:
        if self.ended or self.finished:  # the engine turns the output off on every ending
            return "off"
        return self.status["output"] if self.status is not None else "unknown"

    @property
    def live(self) -> bool:
        """Still going: its control socket is up and it has not been read to its end."""
        return (self.socket_path is not None and not self.finished
                and (self.socket_path.exists() or self.socket_path.is_symlink()))


class _Relay(QObject):
    launched = Signal(object)
    launch_failed = Signal(str)


class MainWindow(QMainWindow):
    """The bench window.

    Args:
        simulate: start with the simulated station ticked.
        runs_dir: where new run files go (``runs/`` of the working directory by default).
    """

    def __init__(self, *, simulate: bool = False, runs_dir: str | Path | None = None) -> None:
        super().__init__()
        self.setWindowTitle("labctl")
        self.runs_dir = Path(runs_dir) if runs_dir is not None else Path.cwd() / "runs"
        self.view: RunView | None = None
        self.grid: ChannelGrid | None = None
        self.runs: dict[str, RunView] = {}  # every run started or attached here, by run file or URL
        self.queue_socket: Path | None = None
        self.queue_launched: LaunchedQueue | None = None
        self.queue_watcher: StatusWatcher | None = None
        self.ask_on_close = self._ask_on_close
        self._dirty = False
        self._starting = False
        self._relay = _Relay()
        self._relay.launched.connect(self._launched)
        self._relay.launch_failed.connect(self._launch_failed)

        self.station_panel = StationPanel()
        self.protocol_panel = ProtocolPanel()
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.station_panel)
        left.addWidget(self.protocol_panel)
        left.setSizes([170, 630])
        dock = QDockWidget("Station and protocol")
        dock.setObjectName("setup")
        dock.setWidget(left)
        left.setMinimumWidth(400)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        self.run_panel = RunPanel()
        self.alarm_banner = AlarmBanner()
        self.readout = ReadoutPanel()
        self.plots = RunPlots()  # every kind timed by the engine
        self.sweep_plots = SweepPlots()  # voltage-sweep kinds
        self.plot_sets: dict[str, PlotSet] = {"time": self.plots, "sweeps": self.sweep_plots}
        self.plot_stack = QStackedWidget()
        for plot_set in self.plot_sets.values():
            self.plot_stack.addWidget(plot_set)
            plot_set.cursor.connect(self._cursor)
        self.plot_set: PlotSet = self.plots
        self.event_log = EventLog()
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_layout.setSpacing(0)
        tools = QHBoxLayout()
        tools.setContentsMargins(4, 0, 4, 0)
        self.cursor_label = QLabel("point at a plot for its values")
        self.cursor_label.setObjectName("cursor_readout")
        self.cursor_label.setStyleSheet("color: #37474f;")
        self.export_button = QToolButton()
        self.export_button.setText("Export ▾")
        self.export_button.setToolTip("Save the plots as PNG or SVG, or the data in view as CSV")
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_menu = QMenu(self.export_button)
        self.export_button.setMenu(self.export_menu)
        tools.addWidget(self.cursor_label, 1)
        tools.addWidget(self.export_button)
        plot_layout.addLayout(tools)
        plot_layout.addWidget(self.plot_stack, 1)
        middle = QSplitter(Qt.Orientation.Vertical)
        middle.addWidget(plot_box)
        middle.addWidget(self.event_log)
        middle.setSizes([600, 150])
        self.queue_panel = QueuePanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(middle, "Run")
        self.tabs.addTab(self.queue_panel, "Queue")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        layout.addWidget(self.run_panel)
        layout.addWidget(self.alarm_banner)
        layout.addWidget(self.readout)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.file_label = QLabel("no run")
        self.elapsed_label = QLabel("")
        self.remaining_label = QLabel("")
        self.points_label = QLabel("")
        bar = self.statusBar()
        bar.addWidget(self.file_label, 1)
        for label in (self.points_label, self.elapsed_label, self.remaining_label):
            bar.addPermanentWidget(label)

        self._menus()
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, activated=self.emergency_stop)
        self.station_panel.simulate_changed.connect(self._setup_changed)
        self.station_panel.message.connect(self._message)
        self.protocol_panel.validity_changed.connect(self._protocol_changed)
        self.protocol_panel.message.connect(self._message)
        self.protocol_panel.loaded.connect(self._protocol_loaded)
        self.run_panel.start_requested.connect(self.start_run)
        self.run_panel.command_requested.connect(self.send)
        self.alarm_banner.acknowledged.connect(self._acknowledged)
        self.queue_panel.add_current_requested.connect(self.queue_current_protocol)
        self.queue_panel.start_requested.connect(self.start_queue)
        self.queue_panel.append_requested.connect(lambda path: self._queue_command("queue_append", protocol=str(path)))
        self.queue_panel.remove_requested.connect(lambda entry: self._queue_command("queue_remove", id=entry))
        self.queue_panel.open_requested.connect(lambda path: self.attach(path))
        self.queue_panel.message.connect(self._message)
        self._queue_reply.connect(self._on_queue_reply)
        self._frame_timer = QTimer(self)
        self._frame_timer.timeout.connect(self._frame)
        self._frame_timer.start(int(1000 / FRAME_RATE_HZ))
        self.station_panel.set_simulate(simulate)
        self._setup_changed()
        self.resize(1500, 900)

    def _menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        for text, slot, key in (
            ("Open protocol…", self.protocol_panel._open_dialog, QKeySequence.StandardKey.Open),
            ("Save protocol as…", self.protocol_panel._save_dialog, QKeySequence.StandardKey.SaveAs),
            ("Open station file…", self.station_panel._open_dialog, None),
            (None, None, None),
            ("Open run file for review…", self._open_run_dialog, None),
            ("Attach to a running run…", self._attach_dialog, None),
            ("Attach to a run on a server (URL)…", self._attach_url_dialog, None),
            (None, None, None),
            ("Channel grid: a directory of runs…", self._grid_directory_dialog, None),
            ("Channel grid: run files…", self._grid_files_dialog, None),
            ("Channel grid: a labctl server (URL)…", self._grid_url_dialog, None),
            (None, None, None),
            ("Quit", self.close, QKeySequence.StandardKey.Quit),
        ):
            if text is None:
                file_menu.addSeparator()
                continue
            action = QAction(text, self)
            action.triggered.connect(slot)
            if key is not None:
                action.setShortcut(key)
            file_menu.addAction(action)
        run_menu = bar.addMenu("&Run")
        for text, slot in (("Start", lambda: self.start_run(self.run_panel.speed_box.currentText())),
                           ("Pause", lambda: self.run_panel.press("pause")),
                           ("Resume", lambda: self.run_panel.press("resume")),
                           ("Stop", lambda: self.run_panel.press("stop")),
                           ("Emergency stop (Esc)", self.emergency_stop)):
            action = QAction(text, self)
            action.triggered.connect(slot)
            run_menu.addAction(action)
        self.plot_menu = bar.addMenu("&Plots")
        for menu in (self.export_menu, self.plot_menu):
            for text, slot in (("Export plots as PNG…", lambda: self._export_dialog("png")),
                               ("Export plots as SVG…", lambda: self._export_dialog("svg")),
                               ("Export the data in view as CSV…", lambda: self._export_dialog("csv"))):
                action = QAction(text, self)
                action.triggered.connect(slot)
                menu.addAction(action)
        self.help_menu = HelpMenu(self)
        bar.addMenu(self.help_menu)

    # -- messages ------------------------------------------------------------------------------
    def _now_s(self) -> float:
        view = self.view
        return float(view.buffer.view("test_time_s")[-1]) if view is not None and len(view.buffer) else 0.0

    def _message(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)
        self.event_log.add_note(self._now_s(), "note", text)

    def _cursor(self, text: str) -> None:
        self.cursor_label.setText(text)

    def _protocol_changed(self, _valid: bool) -> None:
        self.station_panel.set_simulated_instruments(self.protocol_panel.instruments())
        self._setup_changed()

    def _protocol_loaded(self) -> None:
        """Another protocol: a finished run's plots, readout and ranges go (a live run stays in view)."""
        view = self.view
        if view is not None and not view.live and (view.finished or view.ended or view.launched is None):
            self.close_view()

    def close_view(self) -> None:
        """Show no run: plots, readout and log cleared (the run itself, if any, goes on)."""
        if self.view is not None and self.view.watcher is not None:
            self.view.watcher.stop()
        self.view = None
        for plot_set in self.plot_sets.values():
            plot_set.clear()
        self.readout.clear()
        self.event_log.clear()
        self.file_label.setText("no run")
        self.setWindowTitle("labctl")
        for label in (self.points_label, self.elapsed_label, self.remaining_label):
            label.setText("")
        self._refresh_controls()

    def _setup_changed(self) -> None:
        simulated = self.station_panel.simulate
        self.run_panel.set_simulated(simulated)
        self._refresh_controls()

    def _can_start(self) -> bool:
        ready = self.station_panel.simulate or self.station_panel.station_path is not None
        live = self.view is not None and not self.view.finished and self.view.output != "off"
        return ready and self.protocol_panel.protocol is not None and not self.protocol_panel.read_only \
            and not self._starting and not live

    def _refresh_controls(self) -> None:
        view = self.view
        if view is None:
            self.run_panel.set_state(None, "unknown", can_start=self._can_start())
            self.readout.show_output("unknown")
            return
        self.run_panel.set_state(view.state, view.output, can_start=self._can_start(),
                                 controllable=view.status is not None)
        self.readout.show_output(view.output)

    # -- starting, attaching, opening -------------------------------------------------------------
    def _speed(self, speed_text: str) -> float | None:
        try:
            speed = math.inf if speed_text.strip().lower() == "max" else float(speed_text)
            if not speed > 0:
                raise ValueError
        except ValueError:
            self._message(f"speed: {speed_text!r} is not a positive number or 'max'")
            return None
        return speed

    def start_run(self, speed_text: str = "max") -> None:
        """Start the protocol in the panel as its own process and follow it.

        ``speed_text``: simulated seconds per wall second, or ``max`` (simulated runs only).
        """
        protocol = self.protocol_panel.validate()
        if protocol is None or self.protocol_panel.read_only:
            self._message("cannot start: " + ("this is a run's protocol, read-only: Edit a copy first"
                                              if self.protocol_panel.read_only else self.protocol_panel._problem()))
            return
        simulate = self.station_panel.simulate
        if not simulate and self.station_panel.station_path is None:
            self._message("cannot start: open a station file or tick simulate")
            return
        speed = self._speed(speed_text) if simulate else 1.0
        if speed is None:
            return
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        run_file = (self.runs_dir / f"{stamp}_{protocol.kind}.h5").resolve()
        n = 1
        while run_file.exists() or run_file.with_suffix(".yaml").exists():
            n += 1
            run_file = (self.runs_dir / f"{stamp}-{n}_{protocol.kind}.h5").resolve()
        try:
            protocol_file = self.protocol_panel.file_for_run(run_file)
        except OSError as exc:
            self._message(f"{run_file.parent}: cannot write the protocol: {exc.strerror}")
            return
        station = None if simulate else self.station_panel.station_path
        self._starting = True
        self._refresh_controls()
        self.statusBar().showMessage(f"starting {run_file.name} …")
        relay = self._relay

        def work() -> None:
            try:
                relay.launched.emit(launch_run(protocol_file, run_file, simulate=simulate, station=station,
                                               speed=speed))
            except (LaunchError, OSError) as exc:
                relay.launch_failed.emit(str(exc))

        threading.Thread(target=work, name="launch run", daemon=True).start()

    def _launched(self, launched: LaunchedRun | LaunchedQueue) -> None:
        self._starting = False
        if isinstance(launched, LaunchedQueue):
            self.queue_launched = launched
            self.watch_queue(launched.socket_path)
            self._message(f"queue started: {launched.socket_path} (pid {launched.process.pid}; it goes on if this "
                          "window closes)")
            return
        self.follow(launched.run_file, launched.socket_path, launched=launched)
        self._message(f"run started: {launched.run_file} (pid {launched.process.pid}; "
                      f"it goes on if this window closes)")

    def _launch_failed(self, text: str) -> None:
        self._starting = False
        self._message(f"the run did not start: {text}")
        self._refresh_controls()

    def attach(self, path: str | Path, *, channel: str | None = None) -> bool:
        """Follow a run in progress given its run file (``.h5``), control socket (``.ctl``; a
        queue's too) or URL on a labctl server, or review a finished run file (``channel``: of a
        multi-channel file; default the first). Returns whether there was something to follow."""
        if is_url(path):
            return self.follow(str(path), None, channel=channel)
        path = Path(path)
        if path.suffix == ".ctl":
            try:
                status = ControlClient(path).status()
            except ControlError as exc:
                self._message(str(exc))
                return False
            if "queue" in status:
                self.watch_queue(Path(status.get("queue_socket") or path))
                return status.get("run_file") is None or self.follow(Path(status["run_file"]),
                                                                     default_socket_path(status["run_file"]))
            return self.follow(Path(status["run_file"]), path)
        socket_path = default_socket_path(path)
        return self.follow(path, socket_path if socket_path.exists() else None, channel=channel)

    def open_run_file(self, path: str | Path) -> bool:
        """Review a run file (a finished one, or one still being written)."""
        return self.attach(path)

    def attach_live_runs(self) -> list[Path]:
        """Find the runs going in the runs directory (control sockets that answer): a queue is
        watched, and the newest run is shown. Returns the sockets found."""
        found: list[tuple[float, Path, dict[str, Any]]] = []
        seen: set[str] = set()
        try:
            candidates = sorted(self.runs_dir.glob("*.ctl"))
        except OSError:
            return []
        for link in candidates:
            target = os.path.realpath(link)
            if target in seen:
                continue
            try:
                status = ControlClient(link, timeout_s=1.0).status()
            except ControlError:
                continue
            seen.add(target)
            found.append((link.lstat().st_mtime, link, status))
        queues = [(m, link, s) for m, link, s in found if "queue" in s]
        for _m, link, status in sorted(queues, key=lambda q: q[0])[-1:]:
            self.watch_queue(Path(status.get("queue_socket") or link))
        runs = [(m, link, s) for m, link, s in found if s.get("run_file")]
        if runs and self.view is None:
            _m, link, status = max(runs, key=lambda r: r[0])
            run_file = Path(status["run_file"])
            self.follow(run_file, default_socket_path(run_file) if "queue" in status else link)
        if found:
            self._message(f"{len(found)} run(s) going in {self.runs_dir}: "
                          + ", ".join(Path(s.get('run_file') or str(link)).name for _m, link, s in found))
        return [link for _m, link, _s in found]

    def _open_run_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open run file", str(self.runs_dir), "Run files (*.h5)")
        if name:
            self.open_run_file(name)

    def _attach_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Attach to a run", str(self.runs_dir),
                                              "Runs in progress (*.h5 *.ctl)")
        if name:
            self.attach(name)

    def _attach_url_dialog(self) -> None:
        url, ok = QInputDialog.getText(self, "Attach to a run on a server", "The run's URL (http://HOST:PORT/runs/KEY):")
        if ok and url.strip():
            self.attach(url.strip())

    def open_grid(self, sources: list[str | Path]) -> ChannelGrid:
        """Show a grid of small plots and a status table of every channel of these run files,
        directories and labctl servers (the *Channels* tab); a click on a tile opens it here."""
        if self.grid is None:
            self.grid = ChannelGrid()
            self.grid.open_requested.connect(lambda path, channel: self.attach(path, channel=channel))
            self.grid.alarms.connect(self._grid_alarms)
            self.grid.acknowledged.connect(self._grid_acknowledged)
            self.grid.message.connect(self._message)
            self.tabs.addTab(self.grid, "Channels")
        self.grid.open_sources(sources)
        self.tabs.setCurrentWidget(self.grid)
        return self.grid

    def _grid_directory_dialog(self) -> None:
        name = QFileDialog.getExistingDirectory(self, "Channel grid: a directory of run files", str(self.runs_dir))
        if name:
            self.open_grid([name])

    def _grid_files_dialog(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(self, "Channel grid: run files", str(self.runs_dir), "Run files (*.h5)")
        if names:
            self.open_grid(names)

    def _grid_url_dialog(self) -> None:
        url, ok = QInputDialog.getText(self, "Channel grid of a server", "The labctl server (http://HOST:PORT):")
        if ok and url.strip():
            self.open_grid([url.strip()])

    def follow(self, path: Path | str, socket_path: Path | None, *, launched: LaunchedRun | None = None,
               channel: str | None = None) -> bool:
        """Show the run of ``path`` (a run file or URL), replacing the run in view (that run
        itself goes on); ``channel``: which channel of a multi-channel run file (default: the first)."""
        if not is_url(path):
            path = Path(path).resolve()
            if not path.is_file():
                self._message(f"{path}: no such file")
                return False
        if self.view is not None and self.view.watcher is not None:
            self.view.watcher.stop()
        for plot_set in self.plot_sets.values():
            plot_set.clear()
        self._use_plot_set("time")
        view = RunView(path, socket_path, launched, columns=self.plot_set.COLUMNS, channel=channel)
        self.view = view
        self.runs[str(path)] = view
        self.event_log.clear()
        self.readout.clear()
        self.run_panel.pending = None
        self.file_label.setText(str(path) + (f" [{channel}]" if channel else ""))
        self.setWindowTitle(f"labctl — {view.name}")
        self.tabs.setCurrentIndex(0)  # the Run tab
        watcher = RunWatcher(path, socket_path, self, channel=channel)
        view.watcher = watcher
        watcher.update.connect(lambda update, v=view: self._on_update(v, update))
        watcher.status.connect(lambda status, v=view: self._on_status(v, status))
        watcher.failed.connect(self._message)
        watcher.command_done.connect(self._on_command_done)
        self._refresh_controls()
        return True

    # -- the queue -------------------------------------------------------------------------------
    def queue_current_protocol(self) -> None:
        """Queue the protocol in the protocol panel (its file, or the form saved beside the runs)."""
        protocol = self.protocol_panel.validate()
        if protocol is None:
            self._message("cannot queue: " + self.protocol_panel._problem())
            return
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        try:
            if self.protocol_panel.path is not None and not self.protocol_panel.modified:
                path = self.protocol_panel.path
            else:
                path = (self.runs_dir / "queued" / f"{stamp}_{protocol.kind}.yaml")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(self.protocol_panel.yaml_text(), encoding="utf-8")
        except OSError as exc:
            self._message(f"cannot queue: {exc}")
            return
        self.queue_panel.add(path)
        self.tabs.setCurrentWidget(self.queue_panel)

    def start_queue(self, protocols: list[Path]) -> None:
        """Start the queued protocol files as one queue process on this station."""
        if not protocols:
            self._message("the queue is empty: add protocols first")
            return
        simulate = self.station_panel.simulate
        if not simulate and self.station_panel.station_path is None:
            self._message("cannot start the queue: open a station file or tick simulate")
            return
        speed = self._speed(self.run_panel.speed_box.currentText()) if simulate else 1.0
        if speed is None:
            return
        station = None if simulate else self.station_panel.station_path
        relay, runs_dir = self._relay, self.runs_dir
        self._starting = True
        self._refresh_controls()

        def work() -> None:
            try:
                relay.launched.emit(launch_queue(protocols, runs_dir, simulate=simulate, station=station, speed=speed))
            except (LaunchError, OSError) as exc:
                relay.launch_failed.emit(str(exc))

        threading.Thread(target=work, name="launch queue", daemon=True).start()

    def watch_queue(self, socket_path: Path) -> None:
        """Show the queue whose control socket this is, and follow its runs as they come."""
        if self.queue_watcher is not None:
            self.queue_watcher.stop()
        self.queue_socket = Path(socket_path)
        self.queue_watcher = StatusWatcher(self.queue_socket, self)
        self.queue_watcher.status.connect(self._on_queue_status)

    def _on_queue_status(self, status: dict[str, Any] | None) -> None:
        self.queue_panel.show_queue(self.queue_socket if status is not None else None,
                                    status.get("queue") if status is not None else None)
        if status is None:
            if self.queue_watcher is not None:
                self.queue_watcher.stop()
            self.queue_watcher = None
            self.queue_socket = None
            return
        run_file = status.get("run_file")
        if not run_file:
            return
        view = self.view
        queued = {e.get("run_file") for e in status["queue"].get("entries", [])}
        if view is None or (str(view.path) in queued and str(view.path) != run_file and (view.ended or view.finished)):
            self.follow(Path(run_file), default_socket_path(run_file))

    def _queue_command(self, command: str, **args: Any) -> None:
        if self.queue_socket is None:
            self._message(f"{command}: no queue running")
            return
        socket_path = self.queue_socket
        relay = self

        def work() -> None:
            try:
                reply = ControlClient(socket_path).request(command, **args)
            except ControlError as exc:
                relay._queue_reply.emit(str(exc))
                return
            relay._queue_reply.emit(reply)

        threading.Thread(target=work, name=command, daemon=True).start()

    _queue_reply = Signal(object)

    def _on_queue_reply(self, reply: object) -> None:
        if isinstance(reply, str):
            self._message(reply)
        else:
            self._on_queue_status(reply)

    # -- following -----------------------------------------------------------------------------
    def _use_plot_set(self, name: str) -> None:
        """Show the plot set ``name`` (``time`` or ``sweeps``), cleared."""
        self.plot_set = self.plot_sets[name]
        self.plot_stack.setCurrentWidget(self.plot_set)
        self.plot_set.clear()

    def _on_update(self, view: RunView, update: Update) -> None:
        if view is not self.view:
            return
        if update.attrs is not None:
            first = not view.attrs
            view.attrs = update.attrs
            if first:  # the protocol kind is known: its plots, and the columns they need
                self._use_plot_set(plot_set_name(update.attrs.get("protocol_kind")))
                if not len(view.buffer):
                    view.buffer = ColumnBuffer(self.plot_set.COLUMNS)
                self.plot_set.start(update.attrs)
                program = PlotSet.program_of(update.attrs)
                progress = RunProgress(program)
                progress.pauses = view.progress.pauses
                view.progress = progress
                view.planned_s = progress.planned_s
                self.readout.show_instrument(update.attrs, view.channel or self._instrument_name(update.attrs))
                if view.launched is None:  # attached or opened: its own protocol, from its file
                    self.protocol_panel.show_run_protocol(update.attrs, view.name)
        if update.events:
            view.events.extend(update.events)
            if view.progress.add_events(update.events):
                self.plot_set.set_pauses(view.progress.pauses.closed(self._now_s()))
            self.plot_set.mark_events(update.events)
            self.event_log.add_events(update.events)
            for event in update.events:
                if event["kind"] == "run_ended":
                    view.ended = True
                    view.end_status = str(event["message"]).split(":", 1)[0].strip() or None
            self._raise_alarms(view, update.events)
        if update.n_rows:
            view.buffer.append({k: update.rows[k] for k in view.buffer.names})
            view.last = {k: float(update.rows[k][-1]) for k in READOUT_COLUMNS if k in update.rows}
            self._dirty = True
        if update.step_starts:
            view.step_starts.extend(t for t, _ in update.step_starts)
            view.progress.add_step_starts(update.step_starts)
            self.plot_set.set_step_starts(np.asarray(view.step_starts))
        if update.steps:
            view.steps.extend(update.steps)
            view.progress.add_steps(update.steps)
            self.plot_set.add_steps(update.steps)
            self._dirty = True
        if update.spectra:
            self.plot_set.add_spectra(update.spectra)
        if update.finished:
            view.finished = True
            view.ended = True
            if not is_url(view.path):
                link = default_socket_path(view.path)
                if link.is_symlink() and not link.exists():  # a short socket's link (labctl.app.control) left by a killed run
                    link.unlink(missing_ok=True)
            view.results = update.results
            self._show_results(view)
        self._refresh_controls()

    @staticmethod
    def _instrument_name(attrs: dict[str, Any]) -> str:
        """The instrument the stored protocol names (its name in the station file)."""
        return str(getattr(stored_protocol_model(attrs), "instrument", "") or "")

    def _on_status(self, view: RunView, status: dict[str, Any] | None) -> None:
        if status is not None and status.get("run_file") and not is_url(view.path) \
                and Path(status["run_file"]) != Path(view.path):
            status = None  # the socket serves the next run of a queue now: this one has ended
        view.status = status
        if view is self.view:
            self._refresh_controls()

    def _on_command_done(self, command: str, reply: object) -> None:
        if isinstance(reply, str):
            self.run_panel.command_failed(command)
            self._message(f"{command}: {reply}")
        else:
            self.statusBar().showMessage(f"{command}: run {reply['state']}, output {reply['output']}", 5000)

    def _show_results(self, view: RunView) -> None:
        results = view.results or {}
        self.plot_set.show_results(results)
        kind = view.attrs.get("protocol_kind")
        lines: list[str] = []
        summary = getattr(KINDS.get(kind), "summary", None) if kind else None
        if summary is not None and results:
            try:
                lines = list(summary(_plain(results)))  # as the run process had them: lists, not arrays
            except (KeyError, TypeError, ValueError, IndexError):
                lines = []
        t = float(view.buffer.view("test_time_s")[-1]) if len(view.buffer) else 0.0
        for line in lines:
            self.event_log.add_note(t, "result", line)
        self.event_log.add_note(t, "file", f"run {view.attrs.get('status', '?')}: {view.path}")
        short = self.plot_set.live_result()  # the plots' own headline of the same results, if they have one
        if not short and kind in KINDS and results:
            try:
                short = KINDS[kind].headline(_plain(results))
            except (KeyError, TypeError, ValueError, IndexError):
                short = None
        if short or lines:
            self.readout.show_result(short or lines[0], final=True)
            self.readout.result.setToolTip("\n".join(lines))
        self._dirty = True

    # -- alarms ----------------------------------------------------------------------------------
    def _raise_alarms(self, view: RunView, events: list[dict[str, Any]]) -> None:
        cell = plot_set_name(view.attrs.get("protocol_kind")) == "time"
        alarms = [a for a in (alarm_of(e, str(view.path), cell=cell) for e in events)
                  if a is not None and a.key not in view.acknowledged]
        if alarms:
            self.alarm_banner.raise_alarms(alarms)

    def _grid_alarms(self, alarms: list[Alarm]) -> None:
        self.alarm_banner.raise_alarms(alarms)

    def _acknowledged(self, alarms: list[Alarm], who: str) -> None:
        """Log who acknowledged which alarms (beside each run file) and say so in the event log."""
        for alarm in alarms:
            try:
                AlarmLog(alarm.run).record(alarm, who)
            except OSError as exc:
                self._message(f"the acknowledgement could not be logged: {exc}")
            view = self.runs.get(alarm.run)
            if view is not None:
                view.acknowledged.add(alarm.key)
            if self.grid is not None:
                self.grid.mark_acknowledged(alarm)
        names = ", ".join(sorted({a.title for a in alarms}))
        self.event_log.add_note(self._now_s(), "acknowledged", f"{names} acknowledged by {who}")

    def _grid_acknowledged(self, alarms: list[Alarm], who: str) -> None:
        """A channel's alarms acknowledged in the grid's table: logged there; off the banner."""
        keys = {a.key for a in alarms}
        self.alarm_banner.pending = [a for a in self.alarm_banner.pending if a.key not in keys]
        self.alarm_banner._show()
        for alarm in alarms:
            view = self.runs.get(alarm.run)
            if view is not None:
                view.acknowledged.add(alarm.key)

    # -- frames ------------------------------------------------------------------------------------
    def progress(self) -> Progress | None:
        """Where the run in view is (pauses excluded); None without a run."""
        view = self.view
        if view is None:
            return None
        return view.progress.at(self._now_s())

    def _frame(self) -> None:
        view = self.view
        if view is None:
            return
        if self._dirty:
            self._dirty = False
            self.plot_set.draw(view.buffer)
            if view.progress.pauses.paused:
                self.plot_set.set_pauses(view.progress.pauses.closed(self._now_s()))
            if view.results is None:
                live = self.plot_set.live_result() or self._short_result(view)
                if live:
                    self.readout.show_result(live)
            if view.last:
                self.readout.show_reading(view.last)
        n = len(view.buffer)
        p = view.progress.at(self._now_s())
        self.readout.show_progress(p, ended=view.ended)
        self.points_label.setText(f"{n:,} readings")
        paused = f" (+{format_duration(p.paused_s)} paused)" if p.paused_s >= 1 else ""
        self.elapsed_label.setText(f"elapsed {format_duration(p.elapsed_s)}{paused}")
        if p.remaining_s is None:
            self.remaining_label.setText("")
        elif view.ended:
            self.remaining_label.setText("ended")
        else:
            self.remaining_label.setText(f"remaining ≈ {format_duration(p.remaining_s)}")

    @staticmethod
    def _short_result(view: RunView) -> str | None:
        """A short seen live (before the results): where it happened."""
        for event in reversed(view.events):
            if event["kind"] in ("short", "soft_short"):
                from ui.text import tidy

                return tidy(str(event["message"]).split(" (step")[0].split(", t =")[0])
        return None

    # -- export ------------------------------------------------------------------------------------
    def _export_dialog(self, what: str) -> None:
        stem = Path(str(self.view.path)).stem if self.view is not None else "labctl"
        directory = Path(str(self.view.path)).parent if self.view is not None and not is_url(self.view.path) \
            else self.runs_dir
        filters = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)", "csv": "CSV (*.csv)"}
        suffix = {"png": "_plots.png", "svg": "_plots.svg", "csv": "_in_view.csv"}[what]
        name, _ = QFileDialog.getSaveFileName(self, f"Export {what.upper()}", str(directory / f"{stem}{suffix}"),
                                              filters[what])
        if name:
            self.export(name)

    def export(self, path: str | Path) -> Path:
        """Export the plots (``.png``, ``.svg``) or the data in view (``.csv``) to ``path``."""
        path = Path(path)
        try:
            if path.suffix.lower() == ".csv":
                header, columns = self.plot_set.visible_table()
                write_csv(path, header, columns)
                self._message(f"wrote {path} ({len(columns[0]) if columns else 0} rows in view)")
            else:
                export_image(self.plot_set.export_scene(), path)
                self._message(f"wrote {path}")
        except (OSError, ValueError) as exc:
            self._message(f"{path}: {exc}")
        return path

    # -- commands ------------------------------------------------------------------------------
    def send(self, command: str) -> None:
        """Send ``pause``, ``resume``, ``stop`` or ``emergency_stop`` to the run in view."""
        view = self.view
        if view is None or view.watcher is None:
            self.run_panel.command_failed(command)
            self._message(f"{command}: no run in view")
            return
        view.watcher.send(command)

    def emergency_stop(self) -> None:
        """End the run in view now, output off (Esc)."""
        self.run_panel.press("emergency_stop")

    # -- closing -------------------------------------------------------------------------------
    def live_runs(self) -> list[tuple[str, Path | None]]:
        """What goes on that this window shows, each once: (name, control socket) of its runs,
        its queue and the channel grid's runs; the socket is None for a run going without one
        (it cannot be stopped from here)."""
        out: dict[str, tuple[str, Path | None]] = {}
        for view in self.runs.values():
            if view.live:
                out[os.path.realpath(view.socket_path)] = (view.name, view.socket_path)
            elif not view.finished and not view.ended and view.socket_path is None \
                    and view.attrs.get("status") == "running":
                out[str(view.path)] = (view.name, None)
        if self.queue_socket is not None and (self.queue_socket.exists() or self.queue_socket.is_symlink()):
            out[os.path.realpath(self.queue_socket)] = (f"queue {self.queue_socket.name}", self.queue_socket)
        if self.grid is not None:
            for name, socket_path in self.grid.live_channels():
                out.setdefault(os.path.realpath(socket_path) if socket_path is not None else name, (name, socket_path))
        return [v for k, v in out.items() if v[1] is None or os.path.exists(k)]

    def _ask_on_close(self, runs: list[tuple[str, Path | None]]) -> str:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Runs in progress")
        names = "\n".join(name + ("" if socket is not None else " (no control socket: cannot be stopped from here)")
                          for name, socket in runs[:20]) + ("\n…" if len(runs) > 20 else "")
        box.setText(f"{len(runs)} run(s) still going:\n{names}\n\nLeave them running (a new window finds them), "
                    "or stop them safely (output off)?")
        leave = box.addButton("Leave running", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop safely", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return "leave" if box.clickedButton() is leave else "stop" if box.clickedButton() is stop else "cancel"

    def stop_runs(self, runs: list[tuple[str, Path | None]], timeout_s: float = STOP_TIMEOUT_S) -> list[str]:
        """Stop ``runs`` (output off) and wait until they have ended; return those still going
        (a run without a control socket among them: it cannot be stopped from here)."""
        stoppable = [(n, s) for n, s in runs if s is not None]
        for _name, socket_path in stoppable:
            try:
                ControlClient(socket_path).stop()
            except ControlError:
                pass
        deadline = time.monotonic() + timeout_s
        going = list(stoppable)
        while going and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.05)
            going = [(n, s) for n, s in going if s.exists()]
        return [name for name, _s in going] + [n for n, s in runs if s is None]

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        runs = self.live_runs()
        if runs:
            choice = self.ask_on_close(runs)
            if choice == "cancel":
                event.ignore()
                return
            if choice == "stop":
                self.statusBar().showMessage("stopping the runs safely …")
                going = self.stop_runs(runs)
                if going:
                    QMessageBox.warning(self, "Runs still going", "These runs did not end in time:\n" + "\n".join(going))
        for view in self.runs.values():
            if view.watcher is not None:
                view.watcher.stop()
        if self.queue_watcher is not None:
            self.queue_watcher.stop()
        if self.grid is not None:
            self.grid.stop()
        self._frame_timer.stop()
        event.accept()
