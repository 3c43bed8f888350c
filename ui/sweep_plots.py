"""Plots of a sweep run (c-AFM triggering bias, memristor cycling), live and on review.

Left, the I–V curves: current vs bias, or |I| on a log axis (*log |I|*, on by default: the
currents span pA to mA). The newest sweep is drawn bold; up to :data:`MAX_FADED_SWEEPS` before
it faded (c-AFM: coloured by site class, grain boundary red, grain interior blue). Right,
per protocol kind:

- memristor cycling: on/off ratio (R_HRS / R_LRS) vs cycle and R_HRS, R_LRS vs cycle, log y;
  cycles without a reset in red;
- c-AFM: the triggering bias of each sweep vs site, by site class, and the current map
  (log₁₀ |I|, in nm) — before or after — as soon as its readings are in, or from the results.

Fed from the window's in-memory buffer: each sweep is the run of rows with one step index
(found once, for new rows only); a frame hands pyqtgraph the newest sweep (≤ 2500 points) and,
when a sweep has ended, the faded ones (≤ :data:`MAX_FADED_SWEEPS` × 2500 points). Per-cycle
and per-site numbers come from :mod:`ui.sweep_results` as the steps end, and from the run
file's results at the end.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ui.axes import IntegerAxis, LogAxis
from ui.buffers import ColumnBuffer
from ui.plot_set import PlotSet, title_key
from ui.plot_tools import CursorReadout
from ui.sweep_results import SweepRun, current_maps, map_from_readings

#: The reading columns a sweep run's plots need (28 bytes a reading).
SWEEP_COLUMNS = {"test_time_s": "f8", "voltage_V": "f8", "current_A": "f8", "step_index": "i4"}
#: Sweeps drawn faded behind the newest one, at most.
MAX_FADED_SWEEPS = 40
#: Cycles beyond which the per-cycle plots draw lines instead of a symbol per cycle.
MAX_SYMBOLS = 2000
#: |I| below this (A) is drawn at it on the log axis (a reading of exactly 0 A has no log).
LOG_FLOOR_A = 1e-15
#: Colours of the site classes ("": no class, a memristor's cycles), for the newest sweep and
#: the points; the older sweeps are drawn in :data:`FADED_COLOURS`, translucent.
CLASS_COLOURS = {"GB": (198, 40, 40), "GI": (21, 101, 192), "HL": (46, 125, 50), "": (21, 101, 192)}
FADED_COLOURS = {**CLASS_COLOURS, "": (97, 97, 97)}
CLASS_NAMES = {"GB": "grain boundary", "GI": "grain interior", "HL": "homogenising layer"}
_SYMBOLS = {"GB": "o", "GI": "s", "HL": "t", "": "d"}
_GLYPHS = {"GB": "●", "GI": "■", "HL": "▼", "": "◆"}


def _key(glyph: str, colour: tuple[int, int, int], text: str) -> str:
    """A coloured legend entry for a plot title (a legend box would cover the points)."""
    return title_key("●" if glyph == "o" else glyph, colour, text)


def _positive(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points with a finite, positive y (for log axes)."""
    keep = np.isfinite(y) & (y > 0)
    return x[keep], y[keep]


class SweepPlots(PlotSet):
    """I–V curves and per-cycle (memristor) or per-site (c-AFM) results of a sweep run."""

    COLUMNS = SWEEP_COLUMNS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.log_box = QCheckBox("log |I|")
        self.log_box.setChecked(True)
        self.log_box.setToolTip("|current| on a log axis (else the signed current, linear)")
        self.map_label = QLabel("current map")
        self.map_box = QComboBox()
        self.map_box.setToolTip("which current map to show")
        self.sweep_label = QLabel("")
        bar.addWidget(self.log_box)
        bar.addStretch(1)
        bar.addWidget(self.sweep_label)
        bar.addStretch(1)
        bar.addWidget(self.map_label)
        bar.addWidget(self.map_box)
        layout.addLayout(bar)
        self.canvas = pg.GraphicsLayoutWidget()
        layout.addWidget(self.canvas, 1)

        self.iv_plot: pg.PlotItem = pg.PlotItem(axisItems={"left": LogAxis("left")})
        self.iv_plot.setLabel("bottom", "bias", units="V")
        self.iv_plot.showGrid(x=True, y=True, alpha=0.2)
        self.iv_plot.setTitle("I–V")
        self.newest_curve = self.iv_plot.plot(pen=pg.mkPen(CLASS_COLOURS[""], width=2))
        # the last ended sweep's result on the I–V: set and reset (memristor), the triggering bias (c-AFM)
        self.result_lines: list[pg.InfiniteLine] = []
        for position in (0.92, 0.8):
            line = pg.InfiniteLine(angle=90, movable=False,
                                   pen=pg.mkPen((198, 40, 40), width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine),
                                   label="", labelOpts={"position": position, "color": (198, 40, 40),
                                                        "fill": (255, 255, 255, 210)})
            line.setVisible(False)
            self.iv_plot.addItem(line, ignoreBounds=True)
            self.result_lines.append(line)
        self.faded_curves: dict[str, pg.PlotDataItem] = {}

        # memristor: on/off ratio and HRS/LRS vs cycle
        self.ratio_plot = pg.PlotItem(title=f"on/off &nbsp; {_key('o', (46, 125, 50), 'reset')} "
                                            f"{_key('×', (198, 40, 40), 'failed')}",
                                      axisItems={"left": LogAxis("left", si_prefix=False),
                                                 "bottom": IntegerAxis("bottom")})
        self.ratio_plot.setLogMode(y=True)
        self.ratio_plot.setLabel("left", "R_HRS / R_LRS")
        self.ratio_plot.setLabel("bottom", "cycle")
        self.ratio_plot.showGrid(y=True, alpha=0.2)  # decades; grid lines cost most of a frame
        self.ratio_points = self.ratio_plot.plot(pen=pg.mkPen((46, 125, 50, 120)), symbol="o", symbolSize=5,
                                                 symbolBrush=(46, 125, 50), symbolPen=None)
        self.ratio_failed = self.ratio_plot.plot(pen=None, symbol="x", symbolSize=9, symbolBrush=(198, 40, 40),
                                                 symbolPen=pg.mkPen((198, 40, 40), width=2))
        self.resistance_plot = pg.PlotItem(title=f"R (read) &nbsp; {_key('o', (21, 101, 192), 'HRS')} "
                                                 f"{_key('▲', (239, 108, 0), 'LRS')}",
                                           axisItems={"left": LogAxis("left", si_prefix=False),
                                                      "bottom": IntegerAxis("bottom")})
        self.resistance_plot.setLogMode(y=True)
        self.resistance_plot.setLabel("left", "R (Ω)")
        self.resistance_plot.setLabel("bottom", "cycle")
        self.resistance_plot.showGrid(y=True, alpha=0.2)
        self.resistance_plot.setXLink(self.ratio_plot)
        self.hrs_points = self.resistance_plot.plot(pen=None, symbol="o", symbolSize=5, symbolBrush=(21, 101, 192),
                                                    symbolPen=None)
        self.lrs_points = self.resistance_plot.plot(pen=None, symbol="t1", symbolSize=7, symbolBrush=(239, 108, 0),
                                                    symbolPen=None)
        for item in (self.ratio_points, self.hrs_points, self.lrs_points):
            item.setDownsampling(auto=True, method="peak")  # 100 000 cycles: to the pixel width
        for plot in (self.ratio_plot, self.resistance_plot):
            plot.getViewBox().setLimits(minYRange=1.0)  # at least a decade in view

        # c-AFM: triggering bias per site, current map
        self.bias_plot = pg.PlotItem(axisItems={"bottom": IntegerAxis("bottom")})
        self.bias_plot.setLabel("left", "triggering bias", units="V")
        self.bias_plot.setLabel("bottom", "site")
        self.bias_plot.showGrid(y=True, alpha=0.2)
        self.bias_points: dict[str, pg.PlotDataItem] = {}
        for cls in ("GB", "GI", "HL"):
            colour = CLASS_COLOURS[cls]
            self.bias_points[cls] = self.bias_plot.plot(pen=None, symbol=_SYMBOLS[cls], symbolSize=8,
                                                        symbolBrush=colour, symbolPen=None)
        self.map_plot = pg.PlotItem(title="current map")
        self.map_plot.setLabel("bottom", "x", units="nm")
        self.map_plot.setLabel("left", "y", units="nm")
        for axis in ("bottom", "left"):
            self.map_plot.getAxis(axis).enableAutoSIPrefix(False)
        self.map_plot.setAspectLocked(True)
        self.map_image = pg.ImageItem(axisOrder="row-major")
        self.map_plot.addItem(self.map_image)
        self.map_bar = pg.ColorBarItem(values=(-12, -3), colorMap=pg.colormap.get("viridis"), label="log₁₀ |I| / A",
                                       interactive=False, width=12)
        self.map_bar.setImageItem(self.map_image)

        self.cursors = [
            CursorReadout(self.iv_plot, lambda x, y: f"V = {x:.4g} V · {'|I|' if self.log_box.isChecked() else 'I'}"
                                                     f" = {pg.siFormat(y, suffix='A', precision=4)}"),
            CursorReadout(self.ratio_plot, lambda x, y: f"cycle {round(x):d} · R_HRS/R_LRS = {y:.3g}"),
            CursorReadout(self.resistance_plot, lambda x, y: f"cycle {round(x):d} · R = {y:.3g} Ω"),
            CursorReadout(self.bias_plot, lambda x, y: f"site {round(x):d} · V = {y:.4g} V"),
            CursorReadout(self.map_plot, lambda x, y: f"x = {x:.4g} nm · y = {y:.4g} nm"),
        ]
        for cursor in self.cursors:
            cursor.text.connect(self.cursor)
        self.log_box.toggled.connect(self._log_toggled)
        self.map_box.currentTextChanged.connect(lambda _text: self._show_map())
        self.run = SweepRun(None)
        self._layout_kind: str | None = None
        self._arrange("")
        self.clear()

    # -- layout per kind ---------------------------------------------------------------------------
    def _arrange(self, kind: str) -> None:
        if kind == self._layout_kind:
            return
        self._layout_kind = kind
        self.canvas.ci.clear()
        self.canvas.ci.addItem(self.iv_plot, row=0, col=0, rowspan=2)
        if kind == "memristor_cycling":
            self.canvas.ci.addItem(self.ratio_plot, row=0, col=1)
            self.canvas.ci.addItem(self.resistance_plot, row=1, col=1)
        elif kind == "cafm_trigger_sweep":
            self.canvas.ci.addItem(self.bias_plot, row=0, col=1)
            self.canvas.ci.addItem(self.map_plot, row=1, col=1)
            self.canvas.ci.addItem(self.map_bar, row=1, col=2)
        self.canvas.ci.layout.setColumnStretchFactor(0, 3)
        self.canvas.ci.layout.setColumnStretchFactor(1, 2)
        self.map_label.setVisible(kind == "cafm_trigger_sweep")
        self.map_box.setVisible(kind == "cafm_trigger_sweep")

    # -- PlotSet ---------------------------------------------------------------------------------
    @property
    def n_points(self) -> int:
        return self._seen

    @property
    def n_sweeps(self) -> int:
        """Sweeps seen so far (the newest possibly still arriving)."""
        return len(self._sweeps)

    def clear(self) -> None:
        self.run = SweepRun(None)
        self._seen = 0
        self._last_step = -1
        self._segments: list[tuple[int, int]] = []  # (step index, first row), in row order
        self._position: dict[int, int] = {}  # step index → position in _segments
        self._sweeps: list[int] = []  # positions in _segments of the voltage sweeps
        self._maps: dict[str, dict[str, Any]] = {}  # live or from the results
        self._map_segments: dict[str, int] = {}  # map name → position in _segments (live)
        self._pending: list[dict[str, Any]] = []  # ended steps to analyse at the next frame
        self._faded_for: tuple[int, bool] | None = None
        self._buffer: ColumnBuffer | None = None
        for curve in self.faded_curves.values():
            self.iv_plot.removeItem(curve)
        self.faded_curves = {}
        self.newest_curve.setData([], [])
        for line in self.result_lines:
            line.setVisible(False)
        self.sweep_label.setText("")
        for item in (self.ratio_points, self.ratio_failed, self.hrs_points, self.lrs_points,
                     *self.bias_points.values()):
            item.setData([], [])
        self.map_image.clear()
        self.map_box.blockSignals(True)
        self.map_box.clear()
        self.map_box.blockSignals(False)
        self._set_log_axis()
        for plot in (self.iv_plot, self.ratio_plot, self.resistance_plot, self.bias_plot, self.map_plot):
            plot.enableAutoRange()

    def start(self, attrs: dict[str, Any]) -> None:
        self.run = SweepRun.from_attrs(attrs)
        self._arrange(self.run.kind)
        # short keys in the title (a long title widens the column); HL only where there is one
        classes = {s.site_class for s in getattr(self.run.protocol, "all_sites", list)()} or {"GB", "GI"}
        keys = " ".join(_key(_GLYPHS[c], CLASS_COLOURS[c], c) for c in ("GB", "GI", "HL") if c in classes)
        self.bias_plot.setTitle(f"triggering bias &nbsp; {keys}")
        self.bias_plot.setToolTip("; ".join(f"{c}: {n}" for c, n in CLASS_NAMES.items()))
        name = str(attrs.get("protocol_name", "") or self.run.kind)
        self.iv_plot.setTitle(f"I–V: {name}" if name else "I–V")

    def add_steps(self, rows: list[dict[str, Any]]) -> None:
        self._pending.extend(rows)

    def show_results(self, results: dict[str, Any]) -> None:
        self.run.use_results(results)
        self._pending = []
        maps = current_maps(results)
        if maps:
            self._maps.update(maps)
            self._map_segments = {}
            self._update_map_box()
        self._show_results()

    def draw(self, buffer: ColumnBuffer) -> None:
        self._buffer = buffer
        self._scan(buffer)
        if self._pending:
            self._analyse(buffer)
        self._show_newest(buffer)
        self._show_faded(buffer)
        self._show_live_maps(buffer)

    # -- readings → sweeps -----------------------------------------------------------------------
    def _scan(self, buffer: ColumnBuffer) -> None:
        """Find the step boundaries among the rows new since the last frame."""
        steps = buffer.view("step_index")
        n = len(steps)
        if n <= self._seen:
            return
        new = steps[self._seen:n]
        prev = np.concatenate(([self._last_step], new[:-1]))
        for k in np.flatnonzero(new != prev):
            index = int(new[k])
            self._segments.append((index, self._seen + int(k)))
            self._position[index] = len(self._segments) - 1
            kind = self.run.step_kind(index)
            if kind == "voltage_sweep":
                self._sweeps.append(len(self._segments) - 1)
            elif kind == "current_map" and not self.run.final:
                step = self.run.step(index)
                name = "before" if "before" in getattr(step, "label", "") else "after" \
                    if "after" in getattr(step, "label", "") else f"step {index}"
                self._map_segments[name] = len(self._segments) - 1
        self._last_step = int(new[-1])
        self._seen = n

    def _rows(self, position: int) -> tuple[int, int]:
        """Rows ``[a, b)`` of the segment at ``position`` in :attr:`_segments`."""
        a = self._segments[position][1]
        b = self._segments[position + 1][1] if position + 1 < len(self._segments) else self._seen
        return a, b

    def _analyse(self, buffer: ColumnBuffer) -> None:
        """Per-cycle / per-site numbers of the steps that ended since the last frame."""
        if not self.run.final:
            v, i = buffer.view("voltage_V"), buffer.view("current_A")
            for row in self._pending:
                pos = self._position.get(int(row["step_index"]))
                if pos is not None:
                    a, b = self._rows(pos)
                    self.run.add_sweep(row, v[a:b], i[a:b])
        self._pending = []
        self._show_results()

    # -- drawing ---------------------------------------------------------------------------------
    def _y(self, current_A: np.ndarray) -> np.ndarray:
        return np.maximum(np.abs(current_A), LOG_FLOOR_A) if self.log_box.isChecked() else current_A

    def _show_newest(self, buffer: ColumnBuffer) -> None:
        if not self._sweeps:
            self.newest_curve.setData([], [])
            return
        pos = self._sweeps[-1]
        a, b = self._rows(pos)
        index = self._segments[pos][0]
        group = self.run.group(index)
        self.newest_curve.setPen(pg.mkPen(CLASS_COLOURS.get(group, CLASS_COLOURS[""]), width=2))
        self.newest_curve.setData(buffer.view("voltage_V")[a:b], self._y(buffer.view("current_A")[a:b]))
        what = "cycle" if self.run.kind == "memristor_cycling" else "sweep"
        self.sweep_label.setText(f"{len(self._sweeps)} {what}{'s' if len(self._sweeps) != 1 else ''}; "
                                 f"bold: the newest, {self.run.label(index)}")

    def _show_faded(self, buffer: ColumnBuffer) -> None:
        """The sweeps before the newest (at most MAX_FADED_SWEEPS), faded, one curve per site
        class; rebuilt only when a sweep has been added or the axis changed."""
        key = (len(self._sweeps), self.log_box.isChecked())
        if key == self._faded_for:
            return
        self._faded_for = key
        v, i = buffer.view("voltage_V"), buffer.view("current_A")
        parts: dict[str, list[np.ndarray]] = {}
        for pos in self._sweeps[-MAX_FADED_SWEEPS - 1:-1]:
            a, b = self._rows(pos)
            group = self.run.group(self._segments[pos][0])
            parts.setdefault(group, []).append(np.arange(a, b))
        for group in set(self.faded_curves) - set(parts):
            self.iv_plot.removeItem(self.faded_curves.pop(group))
        for group, ranges in parts.items():
            curve = self.faded_curves.get(group)
            if curve is None:
                colour = FADED_COLOURS.get(group, FADED_COLOURS[""])
                curve = pg.PlotDataItem(pen=pg.mkPen((*colour, 90), width=1), connect="finite")
                curve.setZValue(-1)
                self.iv_plot.addItem(curve)
                self.faded_curves[group] = curve
            # one curve, sweeps separated by NaN so they are not joined
            rows = np.concatenate([np.append(r, -1) for r in ranges])
            x = v[rows].astype(float)
            y = self._y(i[rows]).astype(float)
            x[rows < 0] = np.nan
            y[rows < 0] = np.nan
            curve.setData(x, y)

    def _set_log_axis(self) -> None:
        """|I| on a log axis (decades of A, never an SI prefix) or the signed current, linear
        (µA, mA as the range calls for): :class:`ui.axes.LogAxis` drops the prefix of one mode
        when switching to the other."""
        log = self.log_box.isChecked()
        self.iv_plot.setLogMode(y=log)
        self.iv_plot.setLabel("left", "|current|" if log else "current", units="A")
        self.iv_plot.getAxis("left").updateAutoSIPrefix()

    def _log_toggled(self, _on: bool) -> None:
        self._set_log_axis()
        if self._buffer is not None:
            self._show_newest(self._buffer)
            self._show_faded(self._buffer)
        self.iv_plot.enableAutoRange()

    def _show_results(self) -> None:
        run = self.run
        if run.kind == "memristor_cycling":
            c = {k: np.asarray(v, dtype=float) for k, v in run.cycles.items()}
            many = len(c["cycle"]) > MAX_SYMBOLS  # thousands of cycles: lines, symbols cost too much
            for item, key, symbol, colour in ((self.ratio_points, "on_off_ratio", "o", (46, 125, 50)),
                                              (self.hrs_points, "hrs_resistance_ohm", "o", (21, 101, 192)),
                                              (self.lrs_points, "lrs_resistance_ohm", "t1", (239, 108, 0))):
                if many != (item.opts["symbol"] is None):
                    item.setSymbol(None if many else symbol)
                    item.setPen(pg.mkPen(colour) if many or item is self.ratio_points else None)
                item.setData(*_positive(c["cycle"], c[key]))
            failed = c["reset_failed"] > 0
            self.ratio_failed.setData(*_positive(c["cycle"][failed], c["on_off_ratio"][failed]))
            if len(c["cycle"]):
                n = int(c["cycle"][-1])
                self._mark(0, c["set_voltage_V"][-1], f"set {c['set_voltage_V'][-1]:+.3g} V (cycle {n})")
                self._mark(1, c["reset_voltage_V"][-1], f"reset {c['reset_voltage_V'][-1]:+.3g} V"
                           if not c["reset_failed"][-1] else "")
        elif run.kind == "cafm_trigger_sweep":
            site = np.asarray(run.sites["site"], dtype=float)
            bias = np.asarray(run.sites["triggering_bias_V"], dtype=float)
            classes = np.asarray(run.sites["site_class"], dtype=object)
            for cls, item in self.bias_points.items():
                keep = (classes == cls) & np.isfinite(bias)
                item.setData(site[keep], bias[keep])
            if len(bias):
                self._mark(0, bias[-1], f"triggering {bias[-1]:+.3g} V (site {int(site[-1])} {classes[-1]})")

    def _mark(self, k: int, bias_V: float, text: str) -> None:
        """Result line ``k`` on the I–V at ``bias_V`` (hidden when not a number or no text)."""
        line = self.result_lines[k]
        show = bool(text) and bias_V is not None and bool(np.isfinite(bias_V))
        line.setVisible(show)
        if show:
            line.setValue(float(bias_V))
            line.label.setFormat(text)

    def live_result(self) -> str | None:
        return self.run.headline()

    def visible_table(self) -> tuple[list[str], list[np.ndarray]]:
        """The readings of the sweeps drawn (the newest and the faded ones before it)."""
        if self._buffer is None or not self._sweeps:
            return ["step_index", "voltage_V", "current_A"], [np.empty(0)] * 3
        rows = np.concatenate([np.arange(*self._rows(pos)) for pos in self._sweeps[-MAX_FADED_SWEEPS - 1:]])
        b = self._buffer
        return (["step_index", "voltage_V", "current_A"],
                [b.view("step_index")[rows], b.view("voltage_V")[rows], b.view("current_A")[rows]])

    # -- current maps ----------------------------------------------------------------------------
    def _show_live_maps(self, buffer: ColumnBuffer) -> None:
        if self.run.final or not self._map_segments:
            return
        current = buffer.view("current_A")
        changed = False
        for name, pos in self._map_segments.items():
            a, b = self._rows(pos)
            old = self._maps.get(name)
            if old is not None and old.get("_rows") == b - a:
                continue
            self._maps[name] = {**map_from_readings(self.run.step(self._segments[pos][0]), current[a:b]),
                                "_rows": b - a}
            changed = True
        if changed:
            self._update_map_box(prefer_newest=True)
            self._show_map()

    def _update_map_box(self, prefer_newest: bool = False) -> None:
        current = self.map_box.currentText()
        names = list(self._maps)
        self.map_box.blockSignals(True)
        self.map_box.clear()
        self.map_box.addItems(names)
        if prefer_newest and names:
            self.map_box.setCurrentText(names[-1])
        elif current in names:
            self.map_box.setCurrentText(current)
        self.map_box.blockSignals(False)
        self._show_map()

    @property
    def map_shown(self) -> str:
        """Name of the current map on show (``""``: none)."""
        return self.map_box.currentText() if self._maps else ""

    def _show_map(self) -> None:
        m = self._maps.get(self.map_box.currentText())
        if m is None:
            self.map_image.clear()
            return
        current = np.abs(m["current_A"])
        with np.errstate(divide="ignore", invalid="ignore"):
            image = np.log10(np.maximum(current, LOG_FLOOR_A))
        finite = image[np.isfinite(current)]
        low, high = (float(np.percentile(finite, 1)), float(np.percentile(finite, 99.5))) if finite.size else (-12, -3)
        high = max(high, low + 1.0)  # at least a decade: a uniform map looks uniform, not like noise
        image = np.where(np.isfinite(current), image, low)
        x, y = m["x_nm"], m["y_nm"]
        pitch_x = float(x[1] - x[0]) if len(x) > 1 else 1.0
        pitch_y = float(y[1] - y[0]) if len(y) > 1 else pitch_x
        self.map_image.setImage(image, autoLevels=False)
        self.map_bar.setLevels((low, high))
        self.map_image.setRect(float(x[0]) - pitch_x / 2, float(y[0]) - pitch_y / 2, pitch_x * len(x), pitch_y * len(y))
        bias = m.get("bias_V")
        self.map_plot.setTitle(f"current map {self.map_box.currentText()}"
                               + (f" at {bias:+g} V" if bias is not None and np.isfinite(bias) else ""))
