"""Frame time of the live plots vs number of points, and memory, over a long simulated run.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_gui.py [--max-points 10000000]

A CCD-like series (a rising ±j staircase with a voltage that grows with it, noise, and a short
spike) is appended in batches of 25 000 readings — the way the window receives a run from its
file — to the window's buffers (:class:`ui.buffers.ColumnBuffer` of the plotted columns). At each checkpoint a frame
is timed: hand the series to :class:`ui.plots.RunPlots` and repaint the 1500×900 px window
(median of 7). For comparison, the same frame with the whole series handed straight to
pyqtgraph (its own peak downsampling and clip-to-view only). Memory: bytes held by the buffers
and the process's resident set size.
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
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from labctl.engine.events import READING_COLUMNS  # noqa: E402
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
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
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


if __name__ == "__main__":
    main()
