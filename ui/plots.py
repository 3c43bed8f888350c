"""Live plots of a run timed by the engine (CCD staircase, cycling, and the characterisation
kinds): voltage and current density vs test time, with step markers, the pauses shaded and the
result marked; beside them, chosen by the step kinds of the run's program, the overpotential of
each galvanostatic step, the Nyquist plot of its impedance spectra, the current density vs
voltage of its linear sweeps.

Fed from in-memory buffers (:mod:`ui.buffers`), never from the file. A frame hands pyqtgraph
at most :data:`MAX_POINTS` points per curve — the block extremes of :mod:`ui.decimate` for the
part of the run in view — and pyqtgraph's peak downsampling and clip-to-view reduce those to
the plot's width, so the frame time hardly depends on the length of the run
(``benchmarks/bench_gui.py`` measures it). Time is kept in seconds in the data and shown in
s, min, h or d by the axis (:class:`ui.axes.TimeAxis`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

from labctl.steps import program_kinds
from protocols import KINDS
from ui.axes import IntegerAxis, TimeAxis, no_si_prefix, time_unit
from ui.buffers import ColumnBuffer
from ui.decimate import MinMaxPyramid
from ui.plot_set import PlotSet, title_key
from ui.plot_tools import CursorReadout, PauseShading, thin_markers

#: Points per curve handed to pyqtgraph per frame at most (zoomed in further: raw readings).
#: A few times a plot's width in pixels: more only costs frame time (block extremes keep spikes).
MAX_POINTS = 8_000
#: The reading columns the plots need; the window keeps only these in memory (28 bytes a reading).
PLOTTED_COLUMNS = {"test_time_s": "f8", "voltage_V": "f8", "current_density_mA_cm2": "f8", "step_index": "i4"}

#: Half-height of the step-marker segments; drawn with ignoreBounds so autorange skips them.
_MARKER_SPAN = 1e4
_RED = (198, 40, 40)


def time_axis(plot: pg.PlotItem, what: str = "test time") -> TimeAxis:
    """Give ``plot`` a :class:`~ui.axes.TimeAxis` at the bottom (seconds in the data)."""
    axis = TimeAxis("bottom", what=what)
    plot.setAxisItems({"bottom": axis})
    return axis


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


def _fmt(value: float, unit: str, digits: int = 4) -> str:
    return f"{value:.{digits}g} {unit}"


class RunPlots(PlotSet):
    """Voltage (V) and current density (mA cm⁻²) vs test time, linked in time, with thinned
    dashed markers at the step starts, the pauses shaded and a detected short marked; on the
    right the per-step overpotential (mV), Nyquist plot or j–E of linear sweeps."""

    COLUMNS = PLOTTED_COLUMNS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.canvas = pg.GraphicsLayoutWidget()
        layout.addWidget(self.canvas)
        self.voltage_plot: pg.PlotItem = self.canvas.addPlot(row=0, col=0)
        self.voltage_plot.setLabel("left", "voltage", units="V")
        self.density_plot: pg.PlotItem = self.canvas.addPlot(row=1, col=0)
        self.density_plot.setLabel("left", "current density (mA cm⁻²)")
        self.density_plot.setXLink(self.voltage_plot)
        for plot in (self.voltage_plot, self.density_plot):
            time_axis(plot)
            plot.showGrid(x=True, y=True, alpha=0.2)
        no_si_prefix(self.density_plot.getAxis("left"))
        self.voltage_curve = self.voltage_plot.plot(pen=pg.mkPen("#1565c0", width=1))
        self.density_curve = self.density_plot.plot(pen=pg.mkPen("#c62828", width=1))
        for curve in (self.voltage_curve, self.density_curve):
            fast(curve)
        marker_pen = pg.mkPen((120, 120, 120, 110), width=1, style=pg.QtCore.Qt.PenStyle.DashLine)
        self.voltage_markers = pg.PlotCurveItem(pen=marker_pen, connect="pairs", skipFiniteCheck=True)
        self.density_markers = pg.PlotCurveItem(pen=marker_pen, connect="pairs", skipFiniteCheck=True)
        self.voltage_plot.getViewBox().addItem(self.voltage_markers, ignoreBounds=True)
        self.density_plot.getViewBox().addItem(self.density_markers, ignoreBounds=True)
        self.pause_shading = [PauseShading(self.voltage_plot), PauseShading(self.density_plot)]
        self.result_lines: list[pg.InfiniteLine] = []
        self._result_items: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []

        # the right column: per-step overpotential, Nyquist, j–E of linear sweeps
        self.overpotential_plot = pg.PlotItem(axisItems={"bottom": IntegerAxis("bottom")})
        op = self.overpotential_plot
        self._per_step_V = 1e3  # mV per V of the per-step plot: overpotentials in mV, cell voltages in V
        self._label_per_step(symmetric=True)
        op.setLabel("bottom", "step")
        op.showGrid(x=True, y=True, alpha=0.2)
        self.overpotential_end = op.plot(pen=None, symbol="o", symbolSize=5, symbolBrush="#2e7d32", symbolPen=None)
        self.overpotential_mean = op.plot(pen=None, symbol="t1", symbolSize=6, symbolBrush="#ef6c00", symbolPen=None)
        self.overpotential_short = op.plot(pen=None, symbol="o", symbolSize=13, symbolBrush=None,
                                           symbolPen=pg.mkPen(_RED, width=2))
        self.nyquist_plot = pg.PlotItem(title="Nyquist")
        self.nyquist_plot.setLabel("bottom", "Re Z (Ω)")
        self.nyquist_plot.setLabel("left", "−Im Z (Ω)")
        self.nyquist_plot.showGrid(x=True, y=True, alpha=0.2)
        self.nyquist_plot.setAspectLocked(True)
        self.nyquist_curves: list[pg.PlotDataItem] = []
        self.lsv_plot = pg.PlotItem(title="linear sweep")
        self.lsv_plot.setLabel("bottom", "voltage", units="V")
        self.lsv_plot.setLabel("left", "current density (mA cm⁻²)")
        self.lsv_plot.showGrid(x=True, y=True, alpha=0.2)
        self.lsv_curve = self.lsv_plot.plot(pen=pg.mkPen("#6a1b9a", width=1.5))
        for plot in (self.nyquist_plot, self.lsv_plot):
            for axis in ("left", "bottom"):
                no_si_prefix(plot.getAxis(axis))
        self.side_plots: list[pg.PlotItem] = []
        self._arrange({"constant_current"})

        self.cursors = [
            CursorReadout(self.voltage_plot, lambda x, y: f"t = {self.time_text(x)} · V = {_fmt(y, 'V')}"),
            CursorReadout(self.density_plot, lambda x, y: f"t = {self.time_text(x)} · j = {_fmt(y, 'mA cm⁻²')}"),
            CursorReadout(op, lambda x, y: f"step {round(x):d} · |V| = {_fmt(y, 'mV')}"),
            CursorReadout(self.nyquist_plot, lambda x, y: f"Re Z = {_fmt(x, 'Ω')} · −Im Z = {_fmt(y, 'Ω')}"),
            CursorReadout(self.lsv_plot, lambda x, y: f"E = {_fmt(x, 'V')} · j = {_fmt(y, 'mA cm⁻²')}"),
        ]
        for cursor in self.cursors:
            cursor.text.connect(self.cursor)

        self._empty = np.empty(0)
        self._steps: list[dict[str, Any]] = []
        self._t = self._v = self._j = self._empty
        self._k = np.empty(0, np.int32)
        self._starts = self._empty
        self._pyramid_v = MinMaxPyramid()
        self._pyramid_j = MinMaxPyramid()
        self._lsv_steps: set[int] = set()
        self._short_step = -1
        self._spectra: dict[int, dict[str, list[np.ndarray]]] = {}
        self.drawn_points = 0
        self.shown_markers = 0
        self._range_timer = QTimer(self)
        self._range_timer.setSingleShot(True)
        self._range_timer.setInterval(30)
        self._range_timer.timeout.connect(self.redraw)
        self.voltage_plot.getViewBox().sigXRangeChanged.connect(self._range_changed)

    # -- layout ----------------------------------------------------------------------------------
    def _arrange(self, kinds: set[str]) -> None:
        """The right column for a program of these step kinds (at most two plots)."""
        wanted = []
        if "impedance" in kinds:
            wanted.append(self.nyquist_plot)
        if "linear_sweep" in kinds:
            wanted.append(self.lsv_plot)
        if "constant_current" in kinds or not wanted:
            wanted.append(self.overpotential_plot)
        wanted = wanted[:2]
        if wanted == self.side_plots:
            return
        for plot in self.side_plots:
            self.canvas.ci.removeItem(plot)
        self.side_plots = wanted
        span = 2 // len(wanted)
        for k, plot in enumerate(wanted):
            self.canvas.ci.addItem(plot, row=k, col=1, rowspan=span)
        self.canvas.ci.layout.setColumnStretchFactor(0, 3)
        self.canvas.ci.layout.setColumnStretchFactor(1, 1)

    @property
    def n_points(self) -> int:
        """Readings in the series shown."""
        return len(self._t)

    def time_text(self, t_s: float) -> str:
        """A test time in the unit the time axis shows for the span in view."""
        x0, x1 = self.voltage_plot.getViewBox().viewRange()[0]
        unit_s, unit = time_unit(abs(x1 - x0))
        return f"{t_s / unit_s:.4g} {unit}"

    def set_series(self, t_s: np.ndarray, voltage_V: np.ndarray, density_mA_cm2: np.ndarray,
                   step_index: np.ndarray | None = None) -> None:
        """Show the run so far: arrays of equal length that only grow between calls (views of
        a :class:`~ui.buffers.ColumnBuffer` are fine; nothing is copied). Call :meth:`clear`
        before showing another run."""
        self._t, self._v, self._j = t_s, voltage_V, density_mA_cm2
        if step_index is not None:
            self._k = step_index
        self._pyramid_v.update(voltage_V)
        self._pyramid_j.update(density_mA_cm2)
        self.redraw()
        if self._lsv_steps:
            self._draw_lsv()

    def _range_changed(self, *_: object) -> None:
        if not self.voltage_plot.getViewBox().autoRangeEnabled()[0]:
            self._range_timer.start()

    def redraw(self) -> None:
        """Hand the curves the points of the part in view (all of the run while auto-ranging)
        and the step markers the pixels can show."""
        t = self._t
        lo, hi = view_rows(self.voltage_plot, t)
        idx_v = self._pyramid_v.indices(lo, hi, MAX_POINTS)
        idx_j = self._pyramid_j.indices(lo, hi, MAX_POINTS)
        self.voltage_curve.setData(t[idx_v], self._v[idx_v])
        self.density_curve.setData(t[idx_j], self._j[idx_j])
        self.drawn_points = len(t[idx_v])
        self._draw_markers()

    def _draw_markers(self) -> None:
        box = self.voltage_plot.getViewBox()
        if box.autoRangeEnabled()[0] and len(self._t):
            x0, x1 = float(self._t[0]), float(self._t[-1])
        else:
            x0, x1 = box.viewRange()[0]
        shown = thin_markers(self._starts, x0 - 1e-9, x1 + 1e-9, max(1.0, box.width()))
        self.shown_markers = len(shown)
        x = np.repeat(shown, 2)
        y = np.tile([-_MARKER_SPAN, _MARKER_SPAN], len(shown))
        self.voltage_markers.setData(x, y)
        self.density_markers.setData(x, y)

    def set_step_markers(self, starts_s: np.ndarray) -> None:
        """Dashed vertical lines at the step starts (test time, s), thinned to one per
        :data:`~ui.plot_tools.MARKER_MIN_PX` pixels."""
        self._starts = np.asarray(starts_s, dtype=float)
        self._draw_markers()

    def set_overpotentials(self, step_index: np.ndarray, end_mV: np.ndarray, mean_mV: np.ndarray) -> None:
        """Per-step overpotentials: |V| at the step's end and |mean V| (mV) vs step index."""
        self.overpotential_end.setData(step_index, end_mV)
        self.overpotential_mean.setData(step_index, mean_mV)

    def _label_per_step(self, symmetric: bool) -> None:
        """The per-step plot of a Li | SSE | Li cell shows overpotentials (mV); of any other cell
        (a full cell, Li | Cu, SS | SSE | Li: :attr:`protocols.base.ProtocolBase.symmetric_cell`)
        its cell voltage (V, shown in mV or V as fits), which is not an overpotential."""
        self._per_step_V = 1e3 if symmetric else 1.0
        what = "overpotential" if symmetric else "cell voltage"
        self.overpotential_plot.setTitle(f"{what} per step &nbsp; " + title_key("●", (46, 125, 50), "end")
                                         + " " + title_key("▲", (239, 108, 0), "mean"))
        if symmetric:
            self.overpotential_plot.setLabel("left", "|V| (mV)", units="")
        else:  # from a few mV (Li | SS titrations) to 4.3 V (a full cell): pyqtgraph's SI prefix
            self.overpotential_plot.setLabel("left", "|V|", units="V")

    # -- PlotSet ---------------------------------------------------------------------------------
    def start(self, attrs: dict[str, Any]) -> None:
        kind = KINDS.get(str(attrs.get("protocol_kind", "")))
        self._label_per_step(symmetric=kind is None or kind.symmetric_cell)
        program = self.program_of(attrs)
        if program is not None:
            kinds = program_kinds(program)
            self._arrange(kinds)
            if "linear_sweep" in kinds:
                self._lsv_steps = {i for i, s, _c in program.iter_steps() if s.kind == "linear_sweep"} \
                    if program.n_steps <= 100_000 else set()

    def draw(self, buffer: ColumnBuffer) -> None:
        self.set_series(buffer.view("test_time_s"), buffer.view("voltage_V"), buffer.view("current_density_mA_cm2"),
                        buffer.view("step_index") if "step_index" in buffer.names else None)

    def set_step_starts(self, starts_s: np.ndarray) -> None:
        self.set_step_markers(starts_s)

    def add_steps(self, rows: list[dict[str, Any]]) -> None:
        """Overpotentials of the galvanostatic steps (rows with a current) among ``rows``."""
        self._steps.extend(s for s in rows if s.get("current_density_mA_cm2") and s.get("kind") == "constant_current")
        index = np.array([s["step_index"] for s in self._steps], dtype=float)
        end = np.array([abs(s["voltage_end_V"]) * self._per_step_V for s in self._steps])
        mean = np.array([abs(s["voltage_mean_V"]) * self._per_step_V for s in self._steps])
        self.set_overpotentials(index, end, mean)
        if self._short_step >= 0:
            self._ring_short()

    def set_pauses(self, spans: list[tuple[float, float]]) -> None:
        for shading in self.pause_shading:
            shading.set_spans(spans)

    def mark_events(self, events: list[dict[str, Any]]) -> None:
        """A short (or soft short) as it is detected: a red line at its time on both plots and
        its step ringed in the overpotential plot."""
        for event in events:
            if event["kind"] in ("short", "soft_short"):
                self._mark_short(float(event["t_s"]), int(event.get("step_index", -1)), event["kind"].replace("_", " "))

    def _mark_short(self, t_s: float, step: int, what: str) -> None:
        if any(abs(line.value() - t_s) < 1e-9 for line in self.result_lines):
            return
        for plot in (self.voltage_plot, self.density_plot):
            line = pg.InfiniteLine(t_s, angle=90, movable=False, pen=pg.mkPen(_RED, width=2),
                                   label=what if plot is self.voltage_plot else None,
                                   labelOpts={"position": 0.92, "color": _RED, "fill": (255, 255, 255, 200)})
            plot.addItem(line, ignoreBounds=True)
            self.result_lines.append(line)
            self._result_items.append((plot, line))
        if step >= 0:
            self._short_step = step
            self._ring_short()

    def _ring_short(self) -> None:
        """Ring the short's step in the overpotential plot (once its row has arrived)."""
        row = next((s for s in self._steps if s["step_index"] == self._short_step), None)
        if row is not None:
            self.overpotential_short.setData([self._short_step], [abs(row["voltage_end_V"]) * self._per_step_V])

    def show_results(self, results: dict[str, Any]) -> None:
        t = results.get("short_time_s")
        if results.get("short_detected") and t is not None and np.isfinite(t):
            self._mark_short(float(t), int(results.get("short_step_index", -1)),
                             "soft short" if results.get("ended_by") == "soft_short" else "short")
            ccd = results.get("ccd_mA_cm2")
            if ccd is not None and self.result_lines:
                self.result_lines[0].label.setFormat(f"short → CCD = {ccd:g} mA cm⁻²")

    def add_spectra(self, rows: dict[str, np.ndarray]) -> None:
        """New rows of the run's impedance spectra: one Nyquist curve per spectrum."""
        if not rows or "spectrum_index" not in rows:
            return
        for k in np.unique(rows["spectrum_index"]):
            keep = rows["spectrum_index"] == k
            spectrum = self._spectra.setdefault(int(k), {"z_real_ohm": [], "z_imag_neg_ohm": []})
            for name in spectrum:
                spectrum[name].append(np.asarray(rows[name][keep], dtype=float))
        colours = [pg.intColor(i, hues=max(len(self._spectra), 6), maxValue=200) for i in range(len(self._spectra))]
        for n, (k, spectrum) in enumerate(sorted(self._spectra.items())):
            if n >= len(self.nyquist_curves):
                curve = self.nyquist_plot.plot(pen=pg.mkPen(colours[n], width=1.5), symbol="o", symbolSize=4,
                                               symbolBrush=colours[n], symbolPen=None)
                self.nyquist_curves.append(curve)
            self.nyquist_curves[n].setData(np.concatenate(spectrum["z_real_ohm"]),
                                           np.concatenate(spectrum["z_imag_neg_ohm"]))
        self.nyquist_plot.setTitle(f"Nyquist: {len(self._spectra)} spectr{'a' if len(self._spectra) != 1 else 'um'}")

    @property
    def n_spectra(self) -> int:
        return len(self._spectra)

    def _draw_lsv(self) -> None:
        k = self._k
        if not len(k) or len(k) != len(self._v):
            return
        keep = np.isin(k, np.fromiter(self._lsv_steps, dtype=np.int64, count=len(self._lsv_steps)))
        self.lsv_curve.setData(self._v[keep], self._j[keep])

    def clear(self) -> None:
        """Forget the series (before showing another run)."""
        self._steps = []
        empty = self._empty
        self._pyramid_v.clear()
        self._pyramid_j.clear()
        self._lsv_steps = set()
        self._k = np.empty(0, np.int32)
        self.set_series(empty, empty, empty)
        self.set_step_markers(empty)
        self.set_overpotentials(empty, empty, empty)
        self.overpotential_short.setData([], [])
        self._short_step = -1
        self.set_pauses([])
        for plot, line in self._result_items:
            plot.removeItem(line)
        self._result_items = []
        self.result_lines = []
        for curve in self.nyquist_curves:
            self.nyquist_plot.removeItem(curve)
        self.nyquist_curves = []
        self._spectra = {}
        self.nyquist_plot.setTitle("Nyquist")
        self.lsv_curve.setData([], [])
        self._arrange({"constant_current"})
        for plot in (self.voltage_plot, self.density_plot, self.overpotential_plot, self.nyquist_plot, self.lsv_plot):
            plot.enableAutoRange()

    # -- export ------------------------------------------------------------------------------------
    def visible_table(self) -> tuple[list[str], list[np.ndarray]]:
        """The readings in the time span in view (every reading, not the drawn extremes)."""
        t = self._t
        x0, x1 = self.voltage_plot.getViewBox().viewRange()[0]
        lo, hi = np.searchsorted(t, [x0, x1 + 1e-9]) if len(t) else (0, 0)
        return (["test_time_s", "voltage_V", "current_density_mA_cm2"],
                [t[lo:hi], self._v[lo:hi], self._j[lo:hi]])
