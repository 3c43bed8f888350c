"""``labctl gui``: create the Qt application and the bench window."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication
from pyqtgraph.util.garbage_collector import GarbageCollector

from ui.main_window import MainWindow
from ui.protocol_panel import EXAMPLES

_COLLECTOR: GarbageCollector | None = None


def collect_garbage_on_the_gui_thread() -> None:
    """Python's cyclic garbage collector runs on whichever thread happens to allocate; when it
    frees a Qt object there (a closed window's widgets in a reference cycle), the object is
    destroyed off the GUI thread. That crashed the process (segmentation fault) or deadlocked
    it (Shiboken waiting for the GIL inside ``~QObject``) while a worker thread imported a
    large library (pymeasure and pandas for *Identify*, tiled's client and dask for a served
    run): seen in ``tests/ui``, 3 runs of 4. pyqtgraph's ``GarbageCollector`` turns automatic
    collection off and collects on a GUI-thread timer instead (every second, by generation
    thresholds). Once per process; needs the QApplication."""
    global _COLLECTOR
    if _COLLECTOR is None:
        _COLLECTOR = GarbageCollector(interval=1.0)


def build_window(*, simulate: bool = False, station: Path | None = None, protocol: Path | None = None,
                 attach: str | Path | None = None, runs_dir: Path | None = None,
                 grid: list[str | Path] | None = None, discover: bool = True) -> MainWindow:
    """The window, loaded as asked. With ``simulate`` and no protocol, the CCD example is loaded
    so that the simulated station is ready to start. ``attach``: a run file, control socket or
    run URL to follow; ``grid``: run files, directories and labctl servers (URLs) to show in
    the channel grid. Without either, ``discover`` shows the runs going in the runs directory
    (a queue too) as a window closed earlier left them."""
    collect_garbage_on_the_gui_thread()
    window = MainWindow(simulate=simulate, runs_dir=runs_dir)
    if station is not None:
        window.station_panel.load(station)
    if protocol is not None:
        window.protocol_panel.load(protocol)
    elif simulate:
        window.protocol_panel.load(EXAMPLES / "ccd_llzo.yaml")
    if grid:
        window.open_grid(list(grid))
    if attach is not None:
        window.attach(attach)
    elif discover and not grid:
        window.attach_live_runs()
    return window


def main(*, simulate: bool = False, station: Path | None = None, protocol: Path | None = None,
         attach: str | Path | None = None, grid: list[str | Path] | None = None) -> int:
    """Run the window until it closes; return the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("labctl")
    window = build_window(simulate=simulate, station=station, protocol=protocol, attach=attach, grid=grid)
    window.show()
    return app.exec()
