"""What the window asks of the plots of a run, whatever the run's kind.

The window follows one run (:mod:`labctl.store.follow`), keeps the readings it needs in a
:class:`~ui.buffers.ColumnBuffer` and hands a :class:`PlotSet` what arrives: the root
attributes (which tell the protocol kind and carry the protocol text), step starts, step
rows, and at the end the results. A frame timer calls :meth:`PlotSet.draw` when something new
came. Which plot set shows a run is chosen by its protocol kind (:func:`plot_set_name`):
time series for constant-current kinds (:class:`ui.plots.RunPlots`), I–V and per-cycle or
per-site results for sweep kinds (:class:`ui.sweep_plots.SweepPlots`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from protocols import KINDS
from protocols.tip_common import SweepProtocolBase
from ui.buffers import ColumnBuffer


#: Every plot of the window: black on white, no antialiasing (it costs frame time).
pg.setConfigOptions(antialias=False, background="w", foreground="k")


def plot_set_name(protocol_kind: str | None) -> str:
    """``"sweeps"`` for the voltage-sweep kinds (c-AFM, memristor: I–V and per-cycle or
    per-site results), else ``"time"`` (voltage and current density vs time; also for an
    unknown kind)."""
    cls = KINDS.get(protocol_kind or "")
    return "sweeps" if cls is not None and issubclass(cls, SweepProtocolBase) else "time"


class PlotSet(QWidget):
    """Base of the plots of one run (the methods do nothing unless a plot set needs them).

    ``COLUMNS``: the reading columns (name → dtype) the window must keep in memory for it.
    """

    COLUMNS: ClassVar[dict[str, str]] = {}

    @property
    def n_points(self) -> int:
        """Readings drawn from (the length of the series last handed to :meth:`draw`)."""
        return 0

    def clear(self) -> None:
        """Forget the run (before showing another)."""

    def start(self, attrs: dict[str, Any]) -> None:
        """The run's root attributes are known (``protocol_kind``, ``protocol_text`` …)."""

    def set_step_starts(self, starts_s: np.ndarray) -> None:
        """Test times (s) of every step start so far."""

    def add_steps(self, rows: list[dict[str, Any]]) -> None:
        """Rows of the run file's ``steps`` table for steps that have ended."""

    def show_results(self, results: dict[str, Any]) -> None:
        """The run's ``results`` group, once the run has ended and been analysed."""

    def draw(self, buffer: ColumnBuffer) -> None:
        """Show the readings so far (the buffer only grows between calls until :meth:`clear`)."""
