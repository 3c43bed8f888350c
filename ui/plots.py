"""Live plots of a constant-current run (CCD staircase, cycling): voltage and current density
vs test time with step markers, and the overpotential of each step beside them.

Fed from in-memory buffers (:mod:`ui.buffers`), never from the file. A frame hands pyqtgraph
at most :data:`MAX_POINTS` points per curve — the block extremes of :mod:`ui.decimate` for the
part of the run in view — and pyqtgraph's peak downsampling and clip-to-view reduce those to
the plot's width, so the frame time hardly depends on the length of the run
(``benchmarks/bench_gui.py`` measures it). Time is kept in seconds in the data and shown in
hours by the axis (no per-frame array arithmetic).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from ui.buffers import ColumnBuffer
from ui.decimate import MinMaxPyramid
from ui.plot_set import PlotSet

#: Points per curve handed to pyqtgraph per frame at most (zoomed in further: raw readings).
MAX_POINTS = 50_000
#: The reading columns the plots need; the window keeps only these in memory (24 bytes a reading).
PLOTTED_COLUMNS = {"test_time_s": "f8", "voltage_V": "f8", "current_density_mA_cm2": "f8"}

#: Half-height of the step-marker segments; drawn with ignoreBounds so autorange skips them.
_MARKER_SPAN = 1e4


def time_axis(plot: pg.PlotItem) -> None:
    """Seconds in the data, hours on the axis."""
    axis = plot.getAxis("bottom")
    axis.setScale(1 / 3600)
    axis.enableAutoSIPrefix(False)
    plot.setLabel("bottom", "test time", units="h")


def fast(curve: pg.PlotDataItem) -> None:
    """Peak downsampling and clip-to-view for a long curve (pyqtgraph reduces to the pixel width)."""
    curve.setDownsampling(auto=True, method="peak")
    curve.setClipToView(True)
    curve.setSkipFiniteCheck(True)


def view_rows(plot: pg.PlotItem, t: np.ndarray) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of the time series ``t`` to draw in ``plot``: all while it
    auto-ranges, else the part in view and one view width either side (for panning)."""
    n = len(t)
    if not n or plot.getViewBox().autoRangeEnabled()[0]:
        return 0, n
    x0, x1 = plot.getViewBox().viewRange()[0]
    width = x1 - x0
    return max(0, int(np.searchsorted(t, x0 - width)) - 1), min(n, int(np.searchsorted(t, x1 + width)) + 1)


class RunPlots(PlotSet):
    """Voltage (V) and current density (mA cm⁻²) vs test time, linked in time, with a dashed
    marker at each step start; overpotential (mV) per step on the right."""

    COLUMNS = PLOTTED_COLUMNS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.canvas = pg.GraphicsLayoutWidget()
        layout.addWidget(self.canvas)
        self.voltage_plot: pg.PlotItem = self.canvas.addPlot(row=0, col=0)
        self.voltage_plot.setLabel("left", "voltage", units="V")
        self.overpotential_plot: pg.PlotItem = self.canvas.addPlot(row=0, col=1, rowspan=2)
        self.density_plot: pg.PlotItem = self.canvas.addPlot(row=1, col=0)
        self.density_plot.setLabel("left", "current density", units="mA cm⁻²")
        self.density_plot.getAxis("left").enableAutoSIPrefix(False)
        self.density_plot.setXLink(self.voltage_plot)
        self.canvas.ci.layout.setColumnStretchFactor(0, 3)
        self.canvas.ci.layout.setColumnStretchFactor(1, 1)
        for plot in (self.voltage_plot, self.density_plot):
            time_axis(plot)
            plot.showGrid(x=True, y=True, alpha=0.2)
        self.voltage_curve = self.voltage_plot.plot(pen=pg.mkPen("#1565c0", width=1))
        self.density_curve = self.density_plot.plot(pen=pg.mkPen("#c62828", width=1))
        for curve in (self.voltage_curve, self.density_curve):
            fast(curve)
        marker_pen = pg.mkPen((120, 120, 120, 110), width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
        self.voltage_markers = pg.PlotCurveItem(pen=marker_pen, connect="pairs", skipFiniteCheck=True)
        self.density_markers = pg.PlotCurveItem(pen=marker_pen, connect="pairs", skipFiniteCheck=True)
        self.voltage_plot.getViewBox().addItem(self.voltage_markers, ignoreBounds=True)
        self.density_plot.getViewBox().addItem(self.density_markers, ignoreBounds=True)
        op = self.overpotential_plot
        op.setTitle("overpotential per step")
        op.setLabel("left", "|V|", units="mV")
        op.getAxis("left").enableAutoSIPrefix(False)
        op.setLabel("bottom", "step")
        op.showGrid(x=True, y=True, alpha=0.2)
        op.addLegend(offset=(5, 5))
        self.overpotential_end = op.plot(pen=None, symbol="o", symbolSize=5, symbolBrush="#2e7d32",
                                         symbolPen=None, name="end of step")
        self.overpotential_mean = op.plot(pen=None, symbol="t", symbolSize=5, symbolBrush="#ef6c00",
                                          symbolPen=None, name="step mean")
        self._empty = np.empty(0)
        self._steps: list[dict[str, Any]] = []
        self._t = self._v = self._j = self._empty
        self._pyramid_v = MinMaxPyramid()
        self._pyramid_j = MinMaxPyramid()
        self.drawn_points = 0
        self._range_timer = QTimer(self)
        self._range_timer.setSingleShot(True)
        self._range_timer.setInterval(30)
        self._range_timer.timeout.connect(self.redraw)
        self.voltage_plot.getViewBox().sigXRangeChanged.connect(self._range_changed)

    @property
    def n_points(self) -> int:
        """Readings in the series shown."""
        return len(self._t)

    def set_series(self, t_s: np.ndarray, voltage_V: np.ndarray, density_mA_cm2: np.ndarray) -> None:
        """Show the run so far: arrays of equal length that only grow between calls (views of
        a :class:`~ui.buffers.ColumnBuffer` are fine; nothing is copied). Call :meth:`clear`
        before showing another run."""
        self._t, self._v, self._j = t_s, voltage_V, density_mA_cm2
        self._pyramid_v.update(voltage_V)
        self._pyramid_j.update(density_mA_cm2)
        self.redraw()

    def _range_changed(self, *_: object) -> None:
        if not self.voltage_plot.getViewBox().autoRangeEnabled()[0]:
            self._range_timer.start()

    def redraw(self) -> None:
        """Hand the curves the points of the part in view (all of the run while auto-ranging)."""
        t = self._t
        lo, hi = view_rows(self.voltage_plot, t)
        idx_v = self._pyramid_v.indices(lo, hi, MAX_POINTS)
        idx_j = self._pyramid_j.indices(lo, hi, MAX_POINTS)
        self.voltage_curve.setData(t[idx_v], self._v[idx_v])
        self.density_curve.setData(t[idx_j], self._j[idx_j])
        self.drawn_points = len(t[idx_v])

    def set_step_markers(self, starts_s: np.ndarray) -> None:
        """Dashed vertical lines at the step starts (test time, s)."""
        x = np.repeat(np.asarray(starts_s, dtype=float), 2)
        y = np.tile([-_MARKER_SPAN, _MARKER_SPAN], len(starts_s))
        self.voltage_markers.setData(x, y)
        self.density_markers.setData(x, y)

    def set_overpotentials(self, step_index: np.ndarray, end_mV: np.ndarray, mean_mV: np.ndarray) -> None:
        """Per-step overpotentials: |V| at the step's end and |mean V| (mV) vs step index."""
        self.overpotential_end.setData(step_index, end_mV)
        self.overpotential_mean.setData(step_index, mean_mV)

    # -- PlotSet -------------------------------------------------------------------------------
    def draw(self, buffer: ColumnBuffer) -> None:
        self.set_series(buffer.view("test_time_s"), buffer.view("voltage_V"), buffer.view("current_density_mA_cm2"))

    def set_step_starts(self, starts_s: np.ndarray) -> None:
        self.set_step_markers(starts_s)

    def add_steps(self, rows: list[dict[str, Any]]) -> None:
        """Overpotentials of the galvanostatic steps (rows with a current) among ``rows``."""
        self._steps.extend(s for s in rows if s.get("current_density_mA_cm2"))
        index = np.array([s["step_index"] for s in self._steps], dtype=float)
        end_mV = np.array([abs(s["voltage_end_V"]) * 1e3 for s in self._steps])
        mean_mV = np.array([abs(s["voltage_mean_V"]) * 1e3 for s in self._steps])
        self.set_overpotentials(index, end_mV, mean_mV)

    def clear(self) -> None:
        """Forget the series (before showing another run)."""
        self._steps = []
        empty = self._empty
        self._pyramid_v.clear()
        self._pyramid_j.clear()
        self.set_series(empty, empty, empty)
        self.set_step_markers(empty)
        self.set_overpotentials(empty, empty, empty)
        for plot in (self.voltage_plot, self.density_plot, self.overpotential_plot):
            plot.enableAutoRange()
