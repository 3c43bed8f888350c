"""The live readout: what an operator looks for first, in large type.

Voltage, current, current density; step n / N with its label and the cycle; time left in the
step, elapsed and remaining for the run (pauses excluded, :mod:`ui.progress`); the output state
and the instrument; the run's result (CCD, on/off ratio, triggering biases, retention …) as soon
as it is known.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QSizePolicy, QWidget

from ui.text import tidy

from ui.progress import Progress, format_duration

#: Point size of the values (the captions are the window's own size).
VALUE_PT = 14
RESULT_PT = 16
#: Characters of a result line shown in large type (the whole line in its tooltip).
RESULT_CHARS = 34

_VALUE_STYLE = f"font-size: {VALUE_PT}pt; font-weight: bold;"


def _si(value: float | None, unit: str, precision: int = 4) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return pg.siFormat(value, suffix=unit, precision=precision, space=True)


def headline(line: str) -> str:
    """A result line short enough for large type: up to its first parenthesis, elided."""
    text = tidy(line).split(" (")[0].strip()
    return text if len(text) <= RESULT_CHARS else text[: RESULT_CHARS - 1] + "…"


class _Cell(QWidget):
    """A caption above a value; a value wider than its room is elided (the whole in the
    tooltip), so the readout never widens the window: ``min_px`` is what it always gets."""

    def __init__(self, caption: str, tip: str = "", min_px: int = 70) -> None:
        super().__init__()
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 1, 4, 1)
        grid.setVerticalSpacing(0)
        self.caption = QLabel(caption)
        self.caption.setStyleSheet("color: #616161;")
        self.value = QLabel("—")
        self.value.setStyleSheet(_VALUE_STYLE)
        self.value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.value.setMinimumWidth(min_px)
        self.value.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        grid.addWidget(self.caption, 0, 0)
        grid.addWidget(self.value, 1, 0)
        self.setToolTip(tip)
        self.text = "—"
        self._style = _VALUE_STYLE

    def sizeHint(self):  # noqa: N802 - Qt API: room for the whole text when there is room
        hint = super().sizeHint()
        hint.setWidth(max(hint.width(), QFontMetrics(self.value.font()).horizontalAdvance(self.text) + 16))
        return hint

    def set(self, text: str, style: str = "") -> None:
        changed = text != self.text
        self.text = text
        wanted = _VALUE_STYLE + style
        if self._style != wanted:
            self._style = wanted
            self.value.setStyleSheet(wanted)
        self._elide()
        if changed:
            self.updateGeometry()

    def _elide(self) -> None:
        width = max(self.value.width(), self.value.minimumWidth())
        shown = QFontMetrics(self.value.font()).elidedText(self.text, Qt.TextElideMode.ElideRight, width)
        self.value.setToolTip(self.text if shown != self.text else "")
        if self.value.text() != shown:
            self.value.setText(shown)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        self._elide()


class ReadoutPanel(QFrame):
    """Large-type readout of the run in view (:meth:`show_reading`, :meth:`show_progress`,
    :meth:`show_output`, :meth:`show_result`; :meth:`clear` for no run)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("readout")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        grid = QGridLayout(self)
        grid.setContentsMargins(2, 2, 2, 2)
        grid.setHorizontalSpacing(4)
        grid.setVerticalSpacing(2)
        self.voltage = _Cell("voltage", "the newest reading", min_px=105)
        self.current = _Cell("current", "the newest reading", min_px=100)
        self.density = _Cell("current density", "the newest reading, per electrode area", min_px=150)
        self.output = _Cell("output", "the instrument's output, from the run's control socket", min_px=60)
        self.instrument = _Cell("instrument", "the instrument that runs it", min_px=160)
        self.step = _Cell("step", "executed step n of N and its label", min_px=200)
        self.cycle = _Cell("cycle", min_px=60)
        self.step_left = _Cell("left in step", "planned time left in this step, pauses excluded; — for a step "
                               "that ends on a condition (a voltage, a current, a charge)", min_px=90)
        self.elapsed = _Cell("elapsed", "test time the run has spent running (pauses excluded)", min_px=110)
        self.remaining = _Cell("remaining", "planned time of the rest of the program, at the pace kept so far",
                               min_px=130)
        self.result = QLabel("")
        self.result.setObjectName("result")
        self.result.setWordWrap(True)
        self.result.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.result.setStyleSheet(f"font-size: {RESULT_PT}pt; font-weight: bold; color: #1b5e20;")
        self.result.setMinimumWidth(130)
        self.result.setMaximumWidth(360)
        self.result.setMaximumHeight(2 * QFontMetrics(self.result.font()).height() * RESULT_PT // 9 + 10)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.result_caption = QLabel("result")
        self.result_caption.setStyleSheet("color: #616161;")
        for col, cell in enumerate((self.voltage, self.current, self.density, self.output)):
            grid.addWidget(cell, 0, col)
        grid.addWidget(self.instrument, 0, 4, 1, 2)
        grid.addWidget(self.step, 1, 0, 1, 2)
        for col, cell in enumerate((self.cycle, self.step_left, self.elapsed, self.remaining), start=2):
            grid.addWidget(cell, 1, col)
        grid.addWidget(self.result_caption, 0, 6, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.result, 0, 6, 2, 1)
        for col in range(5):  # the values as wide as they need; what is left to the instrument and the result
            grid.setColumnStretch(col, 0)
        grid.setColumnStretch(5, 1)
        grid.setColumnStretch(6, 2)
        self.step.value.setWordWrap(False)
        self.clear()

    def clear(self) -> None:
        for cell in (self.voltage, self.current, self.density, self.step, self.cycle, self.step_left,
                     self.elapsed, self.remaining, self.output, self.instrument):
            cell.set("—")
        self.result.setText("")
        self.result_caption.setVisible(False)

    def show_reading(self, row: dict[str, float]) -> None:
        """The newest reading: ``voltage_V``, ``current_A``, ``current_density_mA_cm2`` (any missing: —)."""
        self.voltage.set(_si(row.get("voltage_V"), "V"))
        self.current.set(_si(row.get("current_A"), "A"))
        j = row.get("current_density_mA_cm2")
        self.density.set("—" if j is None or not math.isfinite(j) else f"{j:.4g} mA cm⁻²")

    def show_progress(self, p: Progress, *, ended: bool = False) -> None:
        if p.step_index < 0:
            self.step.set("—")
        else:
            n = f"{p.step_index + 1} / {p.n_steps}" if p.n_steps else f"{p.step_index + 1}"
            self.step.set(f"{n}  {tidy(p.label)}" if p.label else n)
        self.cycle.set(str(p.cycle) if p.step_index >= 0 and p.cycle else "—")
        if ended:
            self.step_left.set("—")
            self.remaining.set("ended")
        else:
            self.step_left.set(format_duration(p.step_left_s) if p.step_left_s is not None else "—")
            self.remaining.set("—" if p.remaining_s is None else f"≈ {format_duration(p.remaining_s)}")
        paused = f" (+{format_duration(p.paused_s)} paused)" if p.paused_s >= 1 else ""
        self.elapsed.set(format_duration(p.elapsed_s) + paused)
        self.step_left.caption.setText("left in step (paused)" if p.paused and not ended else "left in step")

    def show_output(self, output: str) -> None:
        style = {"on": " color: #c62828;", "off": " color: #2e7d32;"}.get(output, " color: #757575;")
        self.output.set({"on": "ON", "off": "OFF"}.get(output, "?"), style)

    def show_instrument(self, attrs: dict[str, Any], channel: str | None) -> None:
        """The instrument: its name in the station and what it says it is (simulated or not)."""
        idn = str(attrs.get("instrument_idn", "") or "")
        parts = [p.strip() for p in idn.split(",") if p.strip()]
        # *IDN? is maker, model, serial, firmware: the model says it; a one-field reply whole
        model = parts[1] if len(parts) > 1 else (parts[0].split(" s/n")[0] if parts else "")
        name = channel or ""
        sim = " (sim.)" if attrs.get("simulated") else ""
        self.instrument.set((f"{name}: {model}" if model else name or "—") + sim)
        self.instrument.setToolTip(idn or "the instrument that runs it")

    def show_result(self, text: str | None, *, final: bool = False) -> None:
        """The run's result in large type, cut to its headline (``final``: from the run
        file's results); the whole line in the tooltip."""
        shown = headline(text) if text else ""
        self.result.setText(shown)
        self.result.setToolTip(tidy(text or ""))
        self.result_caption.setText("result" if final else "result so far")
        self.result_caption.setVisible(bool(text))
