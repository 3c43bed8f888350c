"""What every plot of the window offers: a cursor readout with units, pauses shaded, step
markers thinned to what the pixels can show, and export (PNG, SVG, CSV of the data in view).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRect, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QWidget

#: Least distance between two drawn step markers (px): closer ones are thinned out.
MARKER_MIN_PX = 10.0
#: Shading of a pause span; a pause of no test time (a simulated clock stands still) is a line.
PAUSE_BRUSH = (255, 193, 7, 60)
PAUSE_PEN = (255, 160, 0, 200)


def thin_markers(starts_s: np.ndarray, x0: float, x1: float, width_px: float,
                 min_px: float = MARKER_MIN_PX) -> np.ndarray:
    """The step starts to draw in the x range [x0, x1] shown over ``width_px`` pixels: those in
    view, at most one per ``min_px`` pixels (the first of each bin), so a long cycling run
    does not become a solid block of dashed lines.

    Args:
        starts_s: step start times (s), increasing.
    """
    starts_s = np.asarray(starts_s, dtype=float)
    if not len(starts_s) or not width_px > 0 or not x1 > x0:
        return starts_s[:0]
    lo, hi = int(np.searchsorted(starts_s, x0, side="left")), int(np.searchsorted(starts_s, x1, side="right"))
    shown = starts_s[lo:hi]
    min_dt = (x1 - x0) * min_px / width_px
    if len(shown) <= 1 or min_dt <= 0:
        return shown
    bins = np.floor((shown - x0) / min_dt)
    keep = np.concatenate(([True], bins[1:] != bins[:-1]))
    return shown[keep]


class CursorReadout(QObject):
    """A crosshair on a plot and its position in words with units (signal ``text``), e.g.
    ``t = 2.31 h · V = 0.1234 V``.

    Args:
        plot: the plot.
        describe: (x, y) in data coordinates → the text (a log axis gets log₁₀ values).
    """

    text = Signal(str)

    def __init__(self, plot: pg.PlotItem, describe: Callable[[float, float], str]) -> None:
        super().__init__()
        self.plot = plot
        self.describe = describe
        pen = pg.mkPen((90, 90, 90, 160), width=1, style=pg.QtCore.Qt.PenStyle.DotLine)
        self.vline = pg.InfiniteLine(angle=90, movable=False, pen=pen)
        self.hline = pg.InfiniteLine(angle=0, movable=False, pen=pen)
        for line in (self.vline, self.hline):
            line.setVisible(False)
            plot.addItem(line, ignoreBounds=True)
        self.last = ""
        self._connected = False
        self.connect_scene()

    def connect_scene(self) -> None:
        """Hook the scene's mouse moves (call once the plot is in a scene)."""
        if not self._connected and self.plot.scene() is not None:
            self.plot.scene().sigMouseMoved.connect(self._moved)
            self._connected = True

    def _moved(self, pos) -> None:
        box = self.plot.getViewBox()
        if not self.plot.sceneBoundingRect().contains(pos) or not box.sceneBoundingRect().contains(pos):
            if self.vline.isVisible():
                self.vline.setVisible(False)
                self.hline.setVisible(False)
            return
        point = box.mapSceneToView(pos)
        self.show_at(point.x(), point.y())

    def show_at(self, x: float, y: float) -> str:
        """Put the crosshair at data point (x, y) (view coordinates) and say where it is."""
        self.vline.setPos(x)
        self.hline.setPos(y)
        self.vline.setVisible(True)
        self.hline.setVisible(True)
        log_x, log_y = self.plot.ctrl.logXCheck.isChecked(), self.plot.ctrl.logYCheck.isChecked()
        self.last = self.describe(10 ** x if log_x else x, 10 ** y if log_y else y)
        self.text.emit(self.last)
        return self.last


class PauseShading:
    """The run's pauses on a time plot: shaded spans (a pause in real time) or amber lines
    (a pause of a simulated clock, which stands still: no test time)."""

    def __init__(self, plot: pg.PlotItem) -> None:
        self.plot = plot
        self.items: list[pg.GraphicsObject] = []

    def set_spans(self, spans: Sequence[tuple[float, float]]) -> None:
        """Show these (start, end) test times (s); replaces what was shown."""
        for item in self.items:
            self.plot.removeItem(item)
        self.items = []
        for start, end in spans:
            if end - start > 0:
                item = pg.LinearRegionItem((start, end), movable=False, brush=pg.mkBrush(*PAUSE_BRUSH),
                                           pen=pg.mkPen(PAUSE_PEN))
            else:
                item = pg.InfiniteLine(start, angle=90, movable=False, pen=pg.mkPen(PAUSE_PEN, width=2))
            item.setZValue(-5)
            item.setToolTip("paused: the cell held at 0 A (no part of the step's mean)")
            self.plot.addItem(item, ignoreBounds=True)
            self.items.append(item)

    @property
    def n_spans(self) -> int:
        return len(self.items)


def export_image(widget: QWidget, path: str | Path) -> Path:
    """The plots of ``widget`` (a plot set's canvas) as a PNG or SVG, by the suffix of
    ``path``: a PNG at twice the screen's resolution, an SVG of vectors (Qt's SVG generator:
    pyqtgraph's own SVG exporter fails on some of the plots' items).

    Raises:
        ValueError: another suffix.
        OSError: the file cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    size = widget.size()
    if suffix == ".png":
        image = QImage(size * 2, QImage.Format.Format_ARGB32)
        image.setDevicePixelRatio(2.0)
        image.fill(QColor("white"))
        painter = QPainter(image)
        try:
            widget.render(painter)
        finally:
            painter.end()
        if not image.save(str(path), "PNG"):
            raise OSError(f"{path}: cannot write the image")
    elif suffix == ".svg":
        generator = QSvgGenerator()
        generator.setFileName(str(path))
        generator.setSize(size)
        generator.setViewBox(QRect(0, 0, size.width(), size.height()))
        generator.setTitle("labctl plots")
        painter = QPainter(generator)
        try:
            widget.render(painter)
        finally:
            painter.end()
        if not path.exists():
            raise OSError(f"{path}: cannot write the drawing")
    else:
        raise ValueError(f"{path.name}: export to .png or .svg")
    return path


def write_csv(path: str | Path, header: Sequence[str], columns: Sequence[np.ndarray]) -> Path:
    """Columns of equal length as CSV with ``header`` (names with units)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in zip(*(np.asarray(c) for c in columns)):
            writer.writerow([f"{v:.10g}" if isinstance(v, float | np.floating) else v for v in row])
    return path


__all__ = ["CursorReadout", "MARKER_MIN_PX", "PauseShading", "export_image", "thin_markers", "write_csv"]
