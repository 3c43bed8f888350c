"""The operator's window: station and protocol on the left; run control, live plots and the
event log in the middle (the *Run* tab; the plots chosen by the run's protocol kind, see
:mod:`ui.plot_set`); elapsed and remaining time in the status bar. A *Channels* tab shows a
grid of small plots of many runs at once (:mod:`ui.channel_grid`).

Runs are their own processes (:mod:`ui.launcher`); the window follows a run's file and sends
it commands through its control socket (:mod:`ui.watcher`). Closing the window asks whether to
leave the runs going or stop them safely; a new window can attach to a run in progress (its
``.h5`` or ``.ctl``) or open a finished run file with the same plots.
"""

from __future__ import annotations

import datetime as _dt
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from labctl.app.control import ControlClient, ControlError, default_socket_path
from protocols import KINDS
from ui.buffers import ColumnBuffer
from ui.channel_grid import ChannelGrid
from ui.event_log import EventLog
from labctl.store.follow import Update
from ui.launcher import LaunchedRun, LaunchError, launch_run
from ui.plot_set import PlotSet, plot_set_name
from ui.plots import RunPlots
from ui.protocol_panel import ProtocolPanel, format_duration
from ui.run_panel import RunPanel
from ui.station_panel import StationPanel
from ui.sweep_plots import SweepPlots
from ui.watcher import RunWatcher

#: Frames per second of the live plots at most.
FRAME_RATE_HZ = 10
#: Seconds to wait for runs to end when the window closes with "stop them safely".
STOP_TIMEOUT_S = 30.0


def planned_duration_s(protocol_text: str) -> float | None:
    """Planned test time of a run from its stored protocol text (None if it cannot be read)."""
    try:
        data = yaml.safe_load(protocol_text)
        return KINDS[data["kind"]].model_validate(data).program().planned_duration_s
    except Exception:  # noqa: BLE001 - an old or foreign file: no estimate, nothing worse
        return None


class RunView:
    """What the window knows about the run in view (a live run or a file under review)."""

    def __init__(self, path: Path, socket_path: Path | None, launched: LaunchedRun | None = None, *,
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
        self.ended = False  # the run_ended event was seen: the output is off
        self.finished = False  # everything is read
        self.watcher: RunWatcher | None = None

    @property
    def state(self) -> str:
        # The run's end (its run_ended event, or the finished file) outranks the last status
        # poll, which may predate the end by up to a poll interval.
        if self.finished or self.ended:
            return f"ended ({self.attrs.get('status') or 'see the log'})"
        if self.status is not None:
            return self.status["state"]
        return "running (no control socket)" if self.attrs.get("status") == "running" else "opening"

    @property
    def output(self) -> str:
        if self.ended or self.finished:  # the engine turns the output off on every ending
            return "off"
        return self.status["output"] if self.status is not None else "unknown"


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
        self.runs: dict[Path, RunView] = {}  # every run started or attached here, by run file
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
        left.setSizes([190, 610])
        dock = QDockWidget("Station and protocol")
        dock.setObjectName("setup")
        dock.setWidget(left)
        left.setMinimumWidth(520)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)

        self.run_panel = RunPanel()
        self.plots = RunPlots()  # constant-current kinds
        self.sweep_plots = SweepPlots()  # sweep kinds
        self.plot_sets: dict[str, PlotSet] = {"time": self.plots, "sweeps": self.sweep_plots}
        self.plot_stack = QStackedWidget()
        for plot_set in self.plot_sets.values():
            self.plot_stack.addWidget(plot_set)
        self.plot_set: PlotSet = self.plots
        self.event_log = EventLog()
        middle = QSplitter(Qt.Orientation.Vertical)
        middle.addWidget(self.plot_stack)
        middle.addWidget(self.event_log)
        middle.setSizes([600, 170])
        self.tabs = QTabWidget()
        self.tabs.addTab(middle, "Run")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.run_panel)
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
        self.run_panel.start_requested.connect(self.start_run)
        self.run_panel.command_requested.connect(self.send)
        self._frame_timer = QTimer(self)
        self._frame_timer.timeout.connect(self._frame)
        self._frame_timer.start(int(1000 / FRAME_RATE_HZ))
        self.station_panel.set_simulate(simulate)
        self._setup_changed()
        self.resize(1500, 900)

    def _menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        for text, slot, key in (
            ("Open protocol…", self.protocol_panel._open_dialog, QKeySequence.StandardKey.Open),
            ("Save protocol as…", self.protocol_panel._save_dialog, QKeySequence.StandardKey.SaveAs),
            ("Open station file…", self.station_panel._open_dialog, None),
            ("Open run file for review…", self._open_run_dialog, None),
            ("Attach to a running run…", self._attach_dialog, None),
            ("Channel grid: a directory of runs…", self._grid_directory_dialog, None),
            ("Channel grid: run files…", self._grid_files_dialog, None),
            ("Quit", self.close, QKeySequence.StandardKey.Quit),
        ):
            action = QAction(text, self)
            action.triggered.connect(slot)
            if key is not None:
                action.setShortcut(key)
            file_menu.addAction(action)

    # -- messages ------------------------------------------------------------------------------
    def _message(self, text: str) -> None:
        self.statusBar().showMessage(text, 15000)
        t = float(self.view.buffer.view("test_time_s")[-1]) if self.view is not None and len(self.view.buffer) else 0.0
        self.event_log.add_note(t, "note", text)

    def _protocol_changed(self, _valid: bool) -> None:
        self.station_panel.set_simulated_instruments(self.protocol_panel.instruments())
        self._setup_changed()

    def _setup_changed(self) -> None:
        simulated = self.station_panel.simulate
        self.run_panel.set_simulated(simulated)
        self._refresh_controls()

    def _can_start(self) -> bool:
        ready = self.station_panel.simulate or self.station_panel.station_path is not None
        live = self.view is not None and not self.view.finished and self.view.output != "off"
        return ready and self.protocol_panel.protocol is not None and not self._starting and not live

    def _refresh_controls(self) -> None:
        view = self.view
        if view is None:
            self.run_panel.set_state(None, "unknown", can_start=self._can_start())
            return
        self.run_panel.set_state(view.state, view.output, can_start=self._can_start(),
                                 controllable=view.status is not None)

    # -- starting, attaching, opening -------------------------------------------------------------
    def start_run(self, speed_text: str = "max") -> None:
        """Start the protocol in the panel as its own process and follow it.

        ``speed_text``: simulated seconds per wall second, or ``max`` (simulated runs only).
        """
        protocol = self.protocol_panel.validate()
        if protocol is None:
            self._message("cannot start: the protocol is not valid (see the fields marked in red)")
            return
        simulate = self.station_panel.simulate
        if not simulate and self.station_panel.station_path is None:
            self._message("cannot start: open a station file or tick simulate")
            return
        speed = 1.0
        if simulate:
            try:
                speed = math.inf if speed_text.strip().lower() == "max" else float(speed_text)
                if not speed > 0:
                    raise ValueError
            except ValueError:
                self._message(f"speed: {speed_text!r} is not a positive number or 'max'")
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

    def _launched(self, launched: LaunchedRun) -> None:
        self._starting = False
        self.follow(launched.run_file, launched.socket_path, launched=launched)
        self._message(f"run started: {launched.run_file} (pid {launched.process.pid}; "
                      f"it goes on if this window closes)")

    def _launch_failed(self, text: str) -> None:
        self._starting = False
        self._message(f"the run did not start: {text}")
        self._refresh_controls()

    def attach(self, path: str | Path, *, channel: str | None = None) -> bool:
        """Follow a run in progress given its run file (``.h5``) or control socket (``.ctl``),
        or review a finished run file (``channel``: of a multi-channel file; default the
        first). Returns whether there was something to follow."""
        path = Path(path)
        if path.suffix == ".ctl":
            try:
                status = ControlClient(path).status()
            except ControlError as exc:
                self._message(str(exc))
                return False
            return self.follow(Path(status["run_file"]), path)
        socket_path = default_socket_path(path)
        return self.follow(path, socket_path if socket_path.exists() else None, channel=channel)

    def open_run_file(self, path: str | Path) -> bool:
        """Review a run file (a finished one, or one still being written)."""
        return self.attach(path)

    def _open_run_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Open run file", str(self.runs_dir), "Run files (*.h5)")
        if name:
            self.open_run_file(name)

    def _attach_dialog(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Attach to a run", str(self.runs_dir),
                                              "Runs in progress (*.h5 *.ctl)")
        if name:
            self.attach(name)

    def open_grid(self, sources: list[str | Path]) -> ChannelGrid:
        """Show a grid of small plots of every channel of these run files and directories
        (the *Channels* tab); a click on one opens it here."""
        if self.grid is None:
            self.grid = ChannelGrid()
            self.grid.open_requested.connect(lambda path, channel: self.attach(path, channel=channel))
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

    def follow(self, path: Path, socket_path: Path | None, *, launched: LaunchedRun | None = None,
               channel: str | None = None) -> bool:
        """Show the run of ``path`` (replacing the run in view; that run itself goes on);
        ``channel``: which channel of a multi-channel run file (default: the first)."""
        path = Path(path).resolve()
        if not path.is_file():
            self._message(f"{path}: no such file")
            return False
        if self.view is not None and self.view.watcher is not None:
            self.view.watcher.stop()
        self._use_plot_set("time")
        view = RunView(path, socket_path, launched, columns=self.plot_set.COLUMNS, channel=channel)
        self.view = view
        self.runs[path] = view
        self.event_log.setRowCount(0)
        self.file_label.setText(str(path) + (f" [{channel}]" if channel else ""))
        self.setWindowTitle(f"labctl — {path.name}")
        self.tabs.setCurrentIndex(0)  # the Run tab
        watcher = RunWatcher(path, socket_path, self, channel=channel)
        view.watcher = watcher
        watcher.update.connect(lambda update, v=view: self._on_update(v, update))
        watcher.status.connect(lambda status, v=view: self._on_status(v, status))
        watcher.failed.connect(self._message)
        watcher.command_done.connect(self._on_command_done)
        self._refresh_controls()
        return True

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
            if view.planned_s is None:
                view.planned_s = planned_duration_s(str(update.attrs.get("protocol_text", "")))
        if update.n_rows:
            view.buffer.append(update.rows)
            self._dirty = True
        if update.step_starts:
            view.step_starts.extend(t for t, _ in update.step_starts)
            self.plot_set.set_step_starts(np.asarray(view.step_starts))
        if update.steps:
            view.steps.extend(update.steps)
            self.plot_set.add_steps(update.steps)
            self._dirty = True
        if update.events:
            view.events.extend(update.events)
            self.event_log.add_events(update.events)
            if any(e["kind"] == "run_ended" for e in update.events):
                view.ended = True
        if update.finished:
            view.finished = True
            view.ended = True
            link = default_socket_path(view.path)
            if link.is_symlink() and not link.exists():  # a short socket's link (labctl.app.control) left by a killed run
                link.unlink(missing_ok=True)
            view.results = update.results
            self._show_results(view)
        self._refresh_controls()

    def _on_status(self, view: RunView, status: dict[str, Any] | None) -> None:
        view.status = status
        if view is self.view:
            self._refresh_controls()

    def _on_command_done(self, command: str, reply: object) -> None:
        if isinstance(reply, str):
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
                lines = list(summary(results))
            except (KeyError, TypeError, ValueError):
                lines = []
        t = float(view.buffer.view("test_time_s")[-1]) if len(view.buffer) else 0.0
        for line in lines:
            self.event_log.add_note(t, "result", line)
        self.event_log.add_note(t, "file", f"run {view.attrs.get('status', '?')}: {view.path}")
        self._dirty = True

    def _frame(self) -> None:
        view = self.view
        if view is None:
            return
        if self._dirty:
            self._dirty = False
            self.plot_set.draw(view.buffer)
        n = len(view.buffer)
        elapsed = float(view.buffer.view("test_time_s")[-1]) if n else 0.0
        self.points_label.setText(f"{n:,} readings")
        self.elapsed_label.setText(f"elapsed {format_duration(elapsed)}")
        if view.planned_s is None:
            self.remaining_label.setText("")
        elif view.ended:
            self.remaining_label.setText("ended")
        else:
            self.remaining_label.setText(f"remaining ≤ {format_duration(max(0.0, view.planned_s - elapsed))}")

    # -- commands ------------------------------------------------------------------------------
    def send(self, command: str) -> None:
        """Send ``pause``, ``resume``, ``stop`` or ``emergency_stop`` to the run in view."""
        view = self.view
        if view is None or view.watcher is None:
            self._message(f"{command}: no run in view")
            return
        view.watcher.send(command)

    def emergency_stop(self) -> None:
        """End the run in view now, output off (Esc)."""
        self.send("emergency_stop")

    # -- closing -------------------------------------------------------------------------------
    def live_runs(self) -> list[RunView]:
        """Runs started or attached here that are still going (their control socket is up)."""
        return [v for v in self.runs.values()
                if v.socket_path is not None and v.socket_path.exists() and not v.finished]

    def _ask_on_close(self, runs: list[RunView]) -> str:
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Question)
        box.setWindowTitle("Runs in progress")
        names = "\n".join(str(v.path.name) for v in runs)
        box.setText(f"{len(runs)} run(s) still going:\n{names}\n\nLeave them running (a new window can attach "
                    "to them), or stop them safely (output off)?")
        leave = box.addButton("Leave running", QMessageBox.ButtonRole.AcceptRole)
        stop = box.addButton("Stop safely", QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return "leave" if box.clickedButton() is leave else "stop" if box.clickedButton() is stop else "cancel"

    def stop_runs(self, runs: list[RunView], timeout_s: float = STOP_TIMEOUT_S) -> list[RunView]:
        """Stop ``runs`` (output off) and wait until they have ended; return those still going."""
        for view in runs:
            try:
                ControlClient(view.socket_path).stop()
            except ControlError:
                pass
        deadline = time.monotonic() + timeout_s
        going = list(runs)
        while going and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.05)
            going = [v for v in going if v.socket_path.exists()]
        return going

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
                    QMessageBox.warning(self, "Runs still going", "These runs did not end in time:\n"
                                        + "\n".join(str(v.path) for v in going))
        for view in self.runs.values():
            if view.watcher is not None:
                view.watcher.stop()
        if self.grid is not None:
            self.grid.stop()
        event.accept()
