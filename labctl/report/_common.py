"""What every report figure shares: the run opened for plotting, the figure record, the
house look (size, resolution, site-class colours) and saving."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from matplotlib.figure import Figure

from labctl.store import RunFile, RunFileError
from labctl.store.layout import column_path

#: Resolution of the PNGs (dots per inch); with the figure sizes below a figure is ~1000 px wide.
DPI = 100
#: Site classes of a c-AFM run, their names and colours (also used for the memristor's tip site).
SITE_CLASSES: dict[str, tuple[str, str]] = {
    "GB": ("grain boundary", "tab:red"),
    "GI": ("grain interior", "tab:blue"),
    "HL": ("homogenising layer", "tab:green"),
}


@dataclass(frozen=True)
class ReportFigure:
    """One PNG written by the report.

    ``name`` is the file-name suffix (``iv``, ``trigger_hist`` …; the file is
    ``<run stem>_<name>.png``); ``data`` holds the numbers drawn, under names carrying their
    units (``bias_V``, ``time_h`` …), so tests and scripts can check what a figure shows.
    """

    name: str
    path: Path
    data: dict[str, Any] = field(default_factory=dict)


class ReportRun:
    """A run file opened for plotting: its tables read once, its readings sliced on demand.

    One :class:`~labctl.store.reader.RunFile` (layout checked, also a file whose writer died)
    gives the attributes, ``steps``, ``events`` and ``results``; readings are read from the
    first channel's datasets with h5py slicing (never whole columns of a long run into Python
    lists). Use as a context manager.

    Raises:
        RunFileError: missing, corrupt or non-labctl file, or a run without readings.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._run = RunFile(self.path)
        try:
            self.attrs: dict[str, Any] = self._run.attrs
            channels = self._run.channels
            if not channels:
                raise RunFileError(f"{self.path}: the run file has no channel")
            self.channel: str = channels[0]
            self.steps: list[dict[str, Any]] = [s for s in self._run.steps() if s["channel"] == self.channel]
            self.events: list[dict[str, Any]] = self._run.events()
            self.results: dict[str, Any] = self._run.results()
            self.n_readings: int = self._run.n_rows(self.channel)
            if self.n_readings == 0:
                raise RunFileError(f"{self.path}: channel {self.channel!r} has no readings; nothing to plot")
        except BaseException:
            self._run.close()
            raise
        self.kind: str = str(self.attrs.get("protocol_kind", "") or "")
        self._step_index: np.ndarray | None = None

    def damaged(self, what: str, exc: BaseException) -> RunFileError:
        """The one-line error for a run file whose content cannot be read."""
        detail = " ".join(str(exc).split())
        return RunFileError(f"{self.path}: damaged run file, cannot read {what} ({exc.__class__.__name__}: {detail})")

    def __enter__(self) -> ReportRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._run.close()

    @property
    def stem(self) -> str:
        return self.path.stem

    @property
    def title(self) -> str:
        """The protocol's name, else the file's."""
        return str(self.attrs.get("protocol_name") or self.path.name)

    def dataset(self, column: str) -> Column:
        """A reading column of the channel (``voltage_V``, ``current_A`` …), read by slicing.

        Raises:
            RunFileError: no such column.
        """
        return Column(self, column, self._run.column(self.channel, column))

    def readings(self, rows: slice, *columns: str) -> dict[str, np.ndarray]:
        """``columns`` at ``rows`` (a slice), each a 1-D array."""
        return {name: self.dataset(name)[rows] for name in columns}

    def step_rows(self, step_index: int) -> slice:
        """The rows of one executed step (the ``step_index`` column never decreases)."""
        if self._step_index is None:
            self._step_index = self.dataset("step_index")[: self.n_readings]
        s = self._step_index
        return slice(int(np.searchsorted(s, step_index, "left")), int(np.searchsorted(s, step_index, "right")))

    def result(self, *keys: str) -> Any:
        """``results[keys[0]][keys[1]]…``.

        Raises:
            RunFileError: the entry is missing (a run killed before its analysis, or not
                of the kind the report expects), naming the file and the entry.
        """
        value: Any = self.results
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                raise RunFileError(f"{self.path}: no results/{'/'.join(keys)} in the run file "
                                   "(run not analysed? `labctl inspect` shows what it holds)")
            value = value[key]
        return value

    def _sequence(self, keys: tuple[str, ...]) -> Any:
        """A result that is a sequence: a dataset, or a JSON attribute (how run files written
        before string and empty datasets stored lists of strings and empty lists)."""
        value = self.result(*keys)
        if isinstance(value, str):
            try:
                value = json.loads(value) if value else []
            except json.JSONDecodeError:
                value = None
            if not isinstance(value, list):
                raise RunFileError(f"{self.path}: results/{'/'.join(keys)} is not a list") from None
        return value

    def float_array(self, *keys: str) -> np.ndarray:
        """A result as a 1-D float array.

        Raises:
            RunFileError: missing, or not numbers.
        """
        try:
            return np.atleast_1d(np.asarray(self._sequence(keys), dtype=float))
        except (TypeError, ValueError):
            raise RunFileError(f"{self.path}: results/{'/'.join(keys)} is not a list of numbers") from None

    def string_list(self, *keys: str) -> list[str]:
        """A result that is a list of strings (a string dataset; a JSON attribute in older files)."""
        return [str(v) for v in self._sequence(keys)]


class Column:
    """One reading column of a :class:`ReportRun`: ``len`` and slicing like the h5py dataset,
    a read error (corrupt chunk) raised as a one-line :class:`RunFileError` naming the file."""

    def __init__(self, run: ReportRun, name: str, dataset: h5py.Dataset) -> None:
        self._run, self._name, self._dataset = run, name, dataset

    def __len__(self) -> int:
        return self._dataset.shape[0]

    def __getitem__(self, key: slice | int) -> Any:
        try:
            return self._dataset[key]
        except (OSError, RuntimeError, ValueError) as exc:
            raise self._run.damaged(column_path(self._run.channel, self._name), exc) from None


def new_figure(width_in: float, height_in: float) -> Figure:
    """A matplotlib figure drawn by the Agg renderer (no pyplot, no GUI backend involved)."""
    return Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")


def save(fig: Figure, run: ReportRun, out_dir: Path, name: str, data: dict[str, Any]) -> ReportFigure:
    """Write ``fig`` as ``<out_dir>/<run stem>_<name>.png`` (replacing an older one)."""
    path = out_dir / f"{run.stem}_{name}.png"
    fig.savefig(path, dpi=DPI)
    return ReportFigure(name, path, data)


def time_unit(span_s: float) -> tuple[float, str]:
    """Seconds per plotted unit and its name: h for runs of 2 h or more, else s."""
    return (3600.0, "h") if span_s >= 7200 else (1.0, "s")


def duration_text(span_s: float) -> str:
    """``12,020 h``, ``9.005 h`` or ``177 s``."""
    hours = span_s / 3600.0
    if hours >= 100:
        return f"{hours:,.0f} h"
    return f"{hours:.4g} h" if span_s >= 7200 else f"{span_s:.4g} s"


def current_unit(max_abs_A: float) -> tuple[float, str]:
    """Amperes per plotted unit and its name (A, mA, µA or nA) for currents up to ``max_abs_A``."""
    for scale, unit in ((1.0, "A"), (1e-3, "mA"), (1e-6, "µA")):
        if max_abs_A >= scale:
            return scale, unit
    return 1e-9, "nA"


def log_limits(ax: Any, values: np.ndarray, *, min_decades: float = 2.0, bottom: float | None = None) -> None:
    """Y limits of a log axis covering ``values`` and at least ``min_decades`` decades (so it
    gets labelled decade ticks), from ``bottom`` if given."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a) & (a > 0)]
    if not len(a):
        return
    lo, hi = float(a.min()) / 1.5, float(a.max()) * 1.5
    if bottom is not None:
        lo = min(lo, bottom)
    missing = min_decades - math.log10(hi / lo)
    if missing > 0:
        lo, hi = lo / 10 ** (missing / 2), hi * 10 ** (missing / 2)
        if bottom is not None and lo < bottom:
            hi, lo = hi * bottom / lo, bottom
    ax.set_ylim(lo, hi)


def fmt(value: float, digits: int = 3) -> str:
    """A number for a label: ``digits`` significant figures, minus sign U+2212, ``—`` for NaN."""
    if not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}".replace("-", "\u2212")


def log_floor(values: np.ndarray, floor: float = 1e-15) -> np.ndarray:
    """|values| with zeros raised to ``floor`` (so a log axis can show them); NaN stays NaN."""
    a = np.abs(np.asarray(values, dtype=float))
    return np.where(np.isnan(a), np.nan, np.maximum(a, floor))
