"""Axes whose ticks read naturally.

* :class:`TimeAxis`: test time is kept in seconds in the data; the axis shows s, min, h or d,
  whichever fits the span in view (a 12 000 h run reads in days, the first minutes of a run in
  seconds, an empty plot "0 … 1 s" — never "5e-05 … 0.00025 h"), and says which in its label.
* :class:`IntegerAxis`: cycles, steps and sites: ticks on whole numbers only.
* :class:`LogAxis`: every decade labelled the same way (10⁻⁶, 10⁻³, 10⁰ …, not "1", "0.01",
  "10⁻⁶" side by side), without pyqtgraph's SI prefix: :func:`no_si_prefix`.

:func:`no_si_prefix` is also the fix of a wrong number: pyqtgraph's
``AxisItem.enableAutoSIPrefix(False)`` computes a prefix from the range in view at that
moment and keeps it (0.14.0), so a log axis turned off after a memristor run (µA in view) went
on multiplying every tick by 10⁶ — the c-AFM's 500 µA compliance read "3 × 10² A".
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

#: (seconds per unit, unit) from the largest; a span in view of at least twice a unit is shown in it.
TIME_UNITS = ((86400.0, "d"), (3600.0, "h"), (60.0, "min"), (1.0, "s"))
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def no_si_prefix(axis: pg.AxisItem) -> None:
    """Turn pyqtgraph's automatic SI prefix off for good (values shown as they are)."""
    axis.enableAutoSIPrefix(False)
    axis.autoSIPrefixScale = 1.0
    axis.labelUnitPrefix = ""
    axis._updateLabel()


def time_unit(span_s: float) -> tuple[float, str]:
    """The unit (seconds per unit, name) to show a span of ``span_s`` seconds in."""
    for seconds, name in TIME_UNITS:
        if span_s >= 2 * seconds:
            return seconds, name
    return 1.0, "s"


def _nice_spacing(span: float, ticks: float = 6.0) -> float:
    """A 1-2-5 spacing giving about ``ticks`` ticks over ``span``."""
    if not span > 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    decade = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * decade >= raw:
            return m * decade
    return 10 * decade


class TimeAxis(pg.AxisItem):
    """Test time in seconds shown in s, min, h or d as the span in view calls for.

    Args:
        what: the quantity in the label (``"test time"``).
    """

    def __init__(self, orientation: str = "bottom", what: str = "test time", **kw) -> None:
        super().__init__(orientation, **kw)
        self.what = what
        self.unit_s, self.unit = 1.0, "s"
        self.enableAutoSIPrefix(False)
        self.setLabel(f"{what} ({self.unit})")

    def _choose(self, lo: float, hi: float) -> None:
        unit_s, unit = time_unit(abs(hi - lo))
        if unit != self.unit:
            self.unit_s, self.unit = unit_s, unit
            self.setLabel(f"{self.what} ({unit})")

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803 - pyqtgraph API
        self._choose(minVal, maxVal)
        span = abs(maxVal - minVal) / self.unit_s
        ticks = max(2.0, min(10.0, size / 90.0))
        major = _nice_spacing(span, ticks)
        return [(major * self.unit_s, 0.0), (major * self.unit_s / 5, 0.0)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph API
        step = spacing / self.unit_s
        places = max(0, -int(math.floor(math.log10(step)))) if step > 0 else 0
        return [f"{v / self.unit_s:.{places}f}" for v in values]


class IntegerAxis(pg.AxisItem):
    """Ticks on whole numbers only (cycles, steps, sites)."""

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803 - pyqtgraph API
        span = abs(maxVal - minVal)
        ticks = max(2.0, min(10.0, size / 70.0))
        major = max(1.0, _nice_spacing(span, ticks))
        minor = major / 5 if major >= 5 else (major / 2 if major >= 2 else major)
        return [(major, 0.0), (max(1.0, minor), 0.0)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph API
        return [f"{int(round(v * scale)):d}" for v in values]


class LogAxis(pg.AxisItem):
    """An axis that may go logarithmic: in log mode every labelled decade reads 10ⁿ and no SI
    prefix is ever applied; in linear mode, ``si_prefix`` chooses pyqtgraph's prefix (µA, mA)."""

    def __init__(self, orientation: str = "left", *, si_prefix: bool = True, **kw) -> None:
        self.si_prefix = si_prefix  # before the base class sets its first range
        super().__init__(orientation, **kw)
        if not si_prefix:
            no_si_prefix(self)

    def updateAutoSIPrefix(self) -> None:  # noqa: N802 - pyqtgraph API
        if self.logMode or not getattr(self, "si_prefix", True):
            self.autoSIPrefixScale = 1.0
            self.labelUnitPrefix = ""
            self._updateLabel()
        else:
            super().updateAutoSIPrefix()

    def setLogMode(self, *args, **kwargs) -> None:  # noqa: N802 - pyqtgraph API
        super().setLogMode(*args, **kwargs)
        self.updateAutoSIPrefix()  # the prefix of the range in view in the other mode must go

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph API
        return [decade_label(int(round(v))) if abs(v - round(v)) < 1e-6 else "" for v in np.asarray(values, float)]


def decade_label(exponent: int) -> str:
    """``-6`` → ``10⁻⁶``."""
    return "10" + str(int(exponent)).translate(_SUPERSCRIPT)


__all__ = ["IntegerAxis", "LogAxis", "TIME_UNITS", "TimeAxis", "decade_label", "no_si_prefix", "time_unit"]
