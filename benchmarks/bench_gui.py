"""Frame time of the live plots vs number of points, and memory, over a long simulated run;
and how fast the window answers an operator while a ``--speed max`` run streams into it.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py [--max-points 10000000]
    xvfb-run -a python benchmarks/bench_gui.py --only-responsiveness      # docs/gui-figures.md

A CCD-like series (a rising ±j staircase with a voltage that grows with it, noise, and a short
spike) is appended in batches of 25 000 readings — the way the window receives a run from its
file — to the window's buffers (:class:`ui.buffers.ColumnBuffer` of the plotted columns). At each checkpoint a frame
is timed: hand the series to :class:`ui.plots.RunPlots` and repaint the 1500×900 px window
(median of 7). For comparison, the same frame with the whole series handed straight to
pyqtgraph (its own peak downsampling and clip-to-view only). Memory: bytes held by the buffers
and the process's resident set size.

Then the channel grid (:class:`ui.channel_grid.ChannelGrid`, 1500×900 px): 16 and 64 channels
of 100 000 readings each; a frame = every tile got new readings (the worst case: all redrawn)
and the grid repaints. And the sweep plots (:class:`ui.sweep_plots.SweepPlots`): a memristor-like
run of 200 cycles × 244 points; a frame = a new cycle arrives (newest sweep, the 40 faded ones
rebuilt, per-cycle points) and the plots repaint.

Responsiveness (:func:`bench_responsiveness`): the real window starts the 12 000 h FSE cycling
example at ``--speed max`` (readings streaming in as fast as the run can write them) and, while
it runs, an operator's clicks are posted to the window's event queue as a mouse would send
them: on *Pause* (and *Resume*), the time from the click to the frame that shows "pausing…"
(the state label painted) and to the frame that shows the engine's confirmed "paused"; on the
*File* menu, the time from the click to the menu's first frame. Figures: median, 95th
percentile and worst of the trials.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from typing import Any  # noqa: E402

from PySide6.QtCore import QEvent, QEventLoop, QObject, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from labctl.events import READING_COLUMNS  # noqa: E402
from ui.buffers import ColumnBuffer  # noqa: E402
from ui.plots import PLOTTED_COLUMNS, RunPlots  # noqa: E402

BATCH = 25_000


def synthetic_batch(start: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Readings ``start … start+n`` of a 1 s-interval CCD staircase (900 s half-cycles)."""
    k = np.arange(start, start + n)
    half = k // 900
    j = (0.1 + 0.1 * (half // 2)) * np.where(half % 2 == 0, 1.0, -1.0)
    v = j * 0.18 + rng.normal(0, 2e-4, n)
    cols = {c.name: np.zeros(n, c.dtype) for c in READING_COLUMNS}
    cols.update(test_time_s=k.astype(float), voltage_V=v, current_A=j * 1e-3, current_density_mA_cm2=j,
                step_index=half.astype("i4"), cycle_index=(half // 2).astype("i4"))
    return cols


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def frame_ms(app: QApplication, plots: RunPlots, draw) -> float:
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        draw()
        plots.canvas.repaint()
        app.processEvents()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-points", type=int, default=10_000_000)
    parser.add_argument("--no-baseline", action="store_true", help="skip the pyqtgraph-only comparison")
    parser.add_argument("--no-grid", action="store_true", help="skip the channel grid")
    parser.add_argument("--no-sweeps", action="store_true", help="skip the sweep plots")
    parser.add_argument("--no-responsiveness", action="store_true", help="skip the clicks during a --speed max run")
    parser.add_argument("--only-responsiveness", action="store_true", help="only the clicks during a --speed max run")
    parser.add_argument("--trials", type=int, default=12, help="clicks of each kind (responsiveness)")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    if not args.no_responsiveness:  # first: the window alone on the screen, as an operator has it
        bench_responsiveness(app, args.trials)
        print()
    if args.only_responsiveness:
        return
    plots = RunPlots()
    plots.resize(1500, 900)
    plots.show()
    app.processEvents()
    buffer = ColumnBuffer(PLOTTED_COLUMNS)
    rng = np.random.default_rng(0)
    checkpoints = [n for n in (10_000, 100_000, 1_000_000, 3_000_000, 10_000_000, 30_000_000) if n <= args.max_points]
    print(f"{'points':>11} | {'frame, labctl plots':>19} | {'frame, pyqtgraph alone':>22} | {'buffers':>8} | {'RSS':>7}")
    print(f"{'-' * 11} | {'-' * 19} | {'-' * 22} | {'-' * 8} | {'-' * 7}")
    append_s = 0.0
    for target in checkpoints:
        while len(buffer) < target:
            n = min(BATCH, target - len(buffer))
            batch = synthetic_batch(len(buffer), n, rng)
            t0 = time.perf_counter()
            buffer.append(batch)
            plots.set_series(buffer.view("test_time_s"), buffer.view("voltage_V"),
                             buffer.view("current_density_mA_cm2"))
            append_s += time.perf_counter() - t0
        t, v, j = buffer.view("test_time_s"), buffer.view("voltage_V"), buffer.view("current_density_mA_cm2")
        ours = frame_ms(app, plots, lambda: plots.set_series(t, v, j))
        if args.no_baseline:
            base = float("nan")
        else:
            def plain() -> None:
                plots.voltage_curve.setData(t, v)
                plots.density_curve.setData(t, j)
            base = frame_ms(app, plots, plain)
            plots.set_series(t, v, j)
        print(f"{target:>11,} | {ours:>16.1f} ms | {base:>19.1f} ms | {buffer.nbytes / 1e6:>5.0f} MB | "
              f"{rss_mb():>4.0f} MB", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"appending + indexing {len(buffer):,} readings in batches of {BATCH:,}: {append_s:.2f} s in all; "
          f"peak RSS {peak:.0f} MB")
    plots.close()
    del buffer
    if not args.no_grid:
        print()
        for channels in (16, 64):
            bench_grid(app, channels, 100_000)
        bench_grid_polls(64, 100_000)
    if not args.no_sweeps:
        print()
        bench_sweeps(app)


def bench_grid(app: QApplication, channels: int, readings: int) -> None:
    """Frame time of the channel grid with every tile redrawn."""
    from ui.channel_grid import ChannelGrid, Tile

    grid = ChannelGrid()
    grid.resize(1500, 900)
    grid.show()
    rng = np.random.default_rng(1)
    grid._found([(f"/bench/cell_{k}.h5", f"ch{k + 1}") for k in range(channels)])
    tiles: list[Tile] = list(grid.tiles.values())
    for tile in tiles:
        batch = synthetic_batch(0, readings, rng)
        tile.buffer.append(batch)
    app.processEvents()
    times = []
    for _ in range(7):
        for tile in tiles:
            tile.dirty = True
        t0 = time.perf_counter()
        grid.draw()
        grid.canvas.repaint()
        app.processEvents()
        times.append(time.perf_counter() - t0)
    mb = sum(t.buffer.nbytes for t in tiles) / 1e6
    print(f"channel grid, {channels} channels × {readings:,} readings: frame (all tiles redrawn) "
          f"{statistics.median(times) * 1e3:.0f} ms; buffers {mb:.0f} MB", flush=True)
    grid.stop()
    grid.close()


WRITER = """
import sys, time, json
import numpy as np
sys.path.insert(0, sys.argv[1])
from labctl.events import READING_COLUMNS, Readings, RunEnded, RunStarted
from labctl.store import RunFileWriter
directory, channels, rows = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def batch(name, t0, n):
    cols = {c.name: np.zeros(n, c.dtype) for c in READING_COLUMNS}
    cols.update(test_time_s=t0 + np.arange(n, dtype=float), voltage_V=np.sin(np.arange(n) / 50.0))
    return Readings(name, cols)

writers = []
for k in range(channels):
    w = RunFileWriter(f"{directory}/cell_{k:02d}.h5", [f"ch{k + 1}"], {"protocol_kind": "symmetric_cycling"})
    w(RunStarted(0.0, f"ch{k + 1}", json.dumps({}), 0, time.time()))
    w(batch(f"ch{k + 1}", 0.0, rows))
    writers.append(w)
print("ready", flush=True)
sys.stdin.readline()
for k, w in enumerate(writers):
    w(batch(f"ch{k + 1}", float(rows), 1000))
print("appended", flush=True)
sys.stdin.readline()
for k, w in enumerate(writers):
    w(RunEnded(rows + 1000.0, f"ch{k + 1}", "completed", "done", time.time()))
"""


def bench_grid_polls(channels: int, readings: int) -> None:
    """The grid's worker: one round of polls over ``channels`` run files being written by
    another process (first look: every row; then nothing new; then 1000 new rows each)."""
    import subprocess
    import tempfile

    from ui.channel_grid import GRID_COLUMNS
    from labctl.store.follow import RunFollower

    with tempfile.TemporaryDirectory(prefix="labctl-bench-grid-") as directory:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(Path(__file__).resolve().parents[1]), directory,
                                   str(channels), str(readings)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert writer.stdout.readline().strip() == "ready"
            followers = [RunFollower(path, columns=GRID_COLUMNS) for path in sorted(Path(directory).glob("*.h5"))]

            def round_ms() -> tuple[float, int]:
                t0 = time.perf_counter()
                rows = sum(f.poll().n_rows for f in followers)
                return (time.perf_counter() - t0) * 1e3, rows

            first, rows_first = round_ms()
            idle = statistics.median(round_ms()[0] for _ in range(5))
            writer.stdin.write("\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "appended"
            grown, rows_grown = round_ms()
            print(f"channel grid worker, {channels} run files being written: a round of polls takes {first:.0f} ms "
                  f"for the first look ({rows_first:,} rows), {idle:.1f} ms with nothing new, {grown:.0f} ms for "
                  f"{rows_grown:,} new rows (one round a second)", flush=True)
            for f in followers:
                f.close()
        finally:
            writer.stdin.write("\n")
            writer.stdin.flush()
            writer.wait(60)


def bench_sweeps(app: QApplication) -> None:
    """Frame time of the sweep plots when a memristor cycle arrives."""
    import yaml

    from protocols import load_protocol
    from ui.protocol_panel import EXAMPLES
    from ui.sweep_plots import SWEEP_COLUMNS, SweepPlots

    protocol = load_protocol(EXAMPLES / "memristor_tip.yaml")
    points, _ = protocol.cycle_points_V()
    v = np.asarray(points)
    plots = SweepPlots()
    plots.resize(1500, 900)
    plots.show()
    plots.start({"protocol_kind": protocol.kind, "protocol_text": yaml.safe_dump(protocol.model_dump(mode="json"))})
    buffer = ColumnBuffer(SWEEP_COLUMNS)
    rng = np.random.default_rng(2)
    times = []
    for cycle in range(1, 201):
        i = np.where(v > 0.6, 1e-10, 1e-5) * v + rng.normal(0, 1e-13, len(v))
        t0 = time.perf_counter()
        buffer.append({"test_time_s": cycle + np.arange(len(v)) * 1e-3, "voltage_V": v, "current_A": i,
                       "step_index": np.full(len(v), cycle, "i4")})
        plots.add_steps([{"step_index": cycle - 1, "kind": "voltage_sweep", "cycle": cycle - 1}] if cycle > 1 else [])
        plots.draw(buffer)
        plots.canvas.repaint()
        app.processEvents()
        times.append(time.perf_counter() - t0)
    print(f"sweep plots, memristor run of 200 cycles × {len(v)} points: frame when a cycle arrives "
          f"{statistics.median(times[-50:]) * 1e3:.0f} ms (median of the last 50)", flush=True)
    plots.close()


class _PaintWatch(QObject):
    """Notes the time of the first paint of ``widget`` after :meth:`arm` at which ``shown()`` holds."""

    def __init__(self, widget: Any, shown: Any) -> None:
        super().__init__()
        self.widget, self.shown = widget, shown
        self.at: float | None = None
        self._armed = False
        widget.installEventFilter(self)

    def arm(self) -> None:
        self.at, self._armed = None, True

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt API
        if self._armed and event.type() == QEvent.Type.Paint and self.shown():
            self.at, self._armed = time.perf_counter(), False
        return False


def _post_click(widget: Any, pos: Any) -> float:
    """Post a left click at ``pos`` (widget coordinates) to the event queue, as a mouse sends it;
    returns the time of posting."""
    global_pos = widget.mapToGlobal(pos)
    t0 = time.perf_counter()
    for kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonRelease):
        QApplication.postEvent(widget, QMouseEvent(kind, QPointF(pos), QPointF(global_pos), Qt.MouseButton.LeftButton,
                                                   Qt.MouseButton.LeftButton if kind == QEvent.Type.MouseButtonPress
                                                   else Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier))
    return t0


def _until(app: QApplication, condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_gui: {what} did not happen within {timeout_s:g} s")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)


def _figures(name: str, ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"{name}: median {statistics.median(ms):.0f} ms, 95th percentile {p95:.0f} ms, worst {ms[-1]:.0f} ms " \
           f"({len(ms)} trials)"


def bench_responsiveness(app: QApplication, trials: int = 12) -> dict[str, list[float]]:
    """Clicks on Pause/Resume and on the File menu while a --speed max run streams into the window."""
    import tempfile

    from ui.app import build_window
    from ui.protocol_panel import EXAMPLES

    out: dict[str, list[float]] = {"pausing": [], "paused": [], "resuming": [], "menu": []}
    with tempfile.TemporaryDirectory(prefix="labctl-bench-window-") as runs:
        window = build_window(simulate=True, runs_dir=Path(runs), protocol=EXAMPLES / "cycling_fse_12000h.yaml",
                              discover=False)
        window.resize(1600, 950)
        window.show()
        window.raise_()
        window.activateWindow()
        window.ask_on_close = lambda going: "stop"
        panel = window.run_panel
        panel.speed_box.setCurrentText("max")
        panel.start_button.click()
        _until(app, lambda: window.view is not None and window.view.status is not None
               and window.view.status["state"] == "running" and len(window.view.buffer) > 1000, 60, "the run's start")
        label = panel.state_label
        pausing = _PaintWatch(label, lambda: label.text() == "run: pausing…")
        paused = _PaintWatch(label, lambda: label.text() == "run: paused")
        resuming = _PaintWatch(label, lambda: label.text() in ("run: resuming…", "run: running"))
        file_menu = window.menuBar().actions()[0].menu()
        menu_shown = _PaintWatch(file_menu, lambda: True)
        bar = window.menuBar()
        file_pos = bar.actionGeometry(bar.actions()[0]).center()
        for _trial in range(trials):
            readings = len(window.view.buffer)
            _until(app, lambda: len(window.view.buffer) > readings + 200, 60, "new readings")  # data streaming in
            menu_shown.arm()
            t0 = _post_click(bar, file_pos)
            _until(app, lambda: menu_shown.at is not None, 30, "the File menu")
            out["menu"].append((menu_shown.at - t0) * 1e3)
            file_menu.hide()
            _until(app, lambda: not file_menu.isVisible(), 10, "the menu closing")
            pausing.arm()
            paused.arm()
            t0 = _post_click(panel.pause_button, panel.pause_button.rect().center())
            _until(app, lambda: pausing.at is not None, 30, "pausing…")
            _until(app, lambda: paused.at is not None, 60, "the confirmed pause")
            out["pausing"].append((pausing.at - t0) * 1e3)
            out["paused"].append((paused.at - t0) * 1e3)
            resuming.arm()
            t0 = _post_click(panel.resume_button, panel.resume_button.rect().center())
            _until(app, lambda: resuming.at is not None, 30, "resuming…")
            out["resuming"].append((resuming.at - t0) * 1e3)
            _until(app, lambda: label.text() == "run: running", 60, "the resume")
        n = len(window.view.buffer)
        test_h = float(window.view.buffer.view("test_time_s")[-1]) / 3600
        window.close()
    platform = QApplication.platformName()
    print(f"responsiveness ({platform}), window 1600×950 following the 12 000 h FSE cycling example at --speed max "
          f"({n:,} readings, {test_h:,.0f} h of test time by the end):")
    print("  " + _figures("click on Pause → \"pausing…\" on screen", out["pausing"]))
    print("  " + _figures("click on Pause → the engine's \"paused\" on screen", out["paused"]))
    print("  " + _figures("click on Resume → \"resuming…\" on screen", out["resuming"]))
    print("  " + _figures("click on the File menu → the menu on screen", out["menu"]), flush=True)
    return out


if __name__ == "__main__":
    main()
