"""What the window asks of the plots of a run, whatever the run's kind.

The window follows one run (:mod:`labctl.store.follow`), keeps the readings it needs in a
:class:`~ui.buffers.ColumnBuffer` and hands a :class:`PlotSet` what arrives: the root
attributes (which tell the protocol kind and carry the protocol text), step starts, step
rows, events, pauses, impedance spectra, and at the end the results. A frame timer calls
:meth:`PlotSet.draw` when something new came. Which plot set shows a run is chosen by its
protocol kind (:func:`plot_set_name`): I–V and per-cycle or per-site results for the
voltage-sweep kinds (:class:`ui.sweep_plots.SweepPlots`), time series for every other kind
(:class:`ui.plots.RunPlots`, whose side plots follow the step kinds of the run's program), so
a new kind needs no GUI code of its own.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from labctl.steps import StepProgram
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


def stored_protocol_model(attrs: dict[str, Any]) -> Any | None:
    """The protocol model a run file stores (None if it does not load: an old or foreign file)."""
    from labctl.app.run import stored_protocol
    from labctl.yamlfile import FileError

    try:
        return stored_protocol(attrs)
    except (FileError, ValueError, TypeError):
        return None


def title_key(glyph: str, colour: tuple[int, int, int], text: str) -> str:
    """A coloured legend entry for a plot title (a legend box would cover the data)."""
    return f'<span style="color: rgb{tuple(colour)}">{glyph}</span> {text}'


class PlotSet(QWidget):
    """Base of the plots of one run (the methods do nothing unless a plot set needs them).

    ``COLUMNS``: the reading columns (name → dtype) the window must keep in memory for it.
    Signal ``cursor(str)``: where the mouse points, in words with units.
    """

    COLUMNS: ClassVar[dict[str, str]] = {}
    cursor = Signal(str)

    @property
    def n_points(self) -> int:
        """Readings drawn from (the length of the series last handed to :meth:`draw`)."""
        return 0

    @staticmethod
    def program_of(attrs: dict[str, Any]) -> StepProgram | None:
        """The run's step program from its stored protocol (None if it does not load)."""
        protocol = stored_protocol_model(attrs)
        try:
            return protocol.program() if protocol is not None else None
        except (ValueError, TypeError):
            return None

    def clear(self) -> None:
        """Forget the run (before showing another)."""

    def start(self, attrs: dict[str, Any]) -> None:
        """The run's root attributes are known (``protocol_kind``, ``protocol_text`` …)."""

    def set_step_starts(self, starts_s: np.ndarray) -> None:
        """Test times (s) of every step start so far."""

    def add_steps(self, rows: list[dict[str, Any]]) -> None:
        """Rows of the run file's ``steps`` table for steps that have ended."""

    def mark_events(self, events: list[dict[str, Any]]) -> None:
        """New rows of the ``events`` table (a short to mark …)."""

    def set_pauses(self, spans: list[tuple[float, float]]) -> None:
        """The run's pauses as (start, end) test times (s), to shade."""

    def add_spectra(self, rows: dict[str, np.ndarray]) -> None:
        """New rows of the run's impedance spectra (:mod:`labctl.store.spectra` columns)."""

    def show_results(self, results: dict[str, Any]) -> None:
        """The run's ``results`` group, once the run has ended and been analysed."""

    def draw(self, buffer: ColumnBuffer) -> None:
        """Show the readings so far (the buffer only grows between calls until :meth:`clear`)."""

    def live_result(self) -> str | None:
        """The run's result so far in one line (e.g. the median on/off ratio), if the plots know it."""
        return None

    def visible_table(self) -> tuple[list[str], list[np.ndarray]]:
        """The data in view: column names (with units) and columns, for a CSV export."""
        return [], []

    def export_scene(self) -> Any:
        """What an image export shows: the plots (their canvas)."""
        return self.canvas  # type: ignore[attr-defined]
