"""What every report figure shares: the run opened for plotting, the figure record, and the
one place where the house look is decided — file format and resolution (:data:`FORMATS`,
:data:`DPI`), titles from the run's own cell (:attr:`ReportRun.title`), units written with
superscripts (:func:`unit_text`, applied to every text of a figure when it is saved), site-class
colours — and saving (:func:`save`). A figure module draws with :func:`new_figure`, titles
with ``run.title`` and saves with :func:`save`: format, resolution, title and units follow."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from labctl.store import RunFile, RunFileError
from labctl.store.layout import column_path

#: File formats of the figures (``labctl report --format``); the first is the default.
FORMATS = ("png", "svg", "pdf")
#: Resolution of a PNG (dots per inch; also of images inside an SVG or PDF): print quality, a
#: 10 in figure is 3000 px wide. ``labctl report --dpi`` changes it within :data:`DPI_RANGE`.
DPI = 300
DPI_RANGE = (50, 1200)
#: Resolution at which figures are laid out (sizes are in inches; it does not change the file).
_LAYOUT_DPI = 100
#: What each run kind is, in the titles (other kinds: the kind's name with spaces).
KIND_NAMES: dict[str, str] = {
    "cafm_trigger_sweep": "c-AFM triggering-bias sweeps",
    "memristor_cycling": "memristor set/reset cycling",
    "ccd_staircase": "CCD staircase",
    "symmetric_cycling": "symmetric cycling",
    "imported": "imported cycler data",
    "eis": "impedance (EIS)",
    "arrhenius": "conductivity vs temperature",
    "dc_polarisation": "DC polarisation",
    "transference_number": "Li⁺ transference number",
    "lsv": "linear sweep voltammetry",
    "sequence": "characterisation sequence",
    "full_cell_cycling": "full-cell cycling",
    "li_cu_efficiency": "Li | Cu Coulombic efficiency",
    "continuous_plating": "plating to short",
    "ctta": "coulometric titration (CTTA)",
    "soft_short_amperometry": "soft-short amperometry",
}
#: Site classes of a c-AFM run, their names and colours (also used for the memristor's tip site).
SITE_CLASSES: dict[str, tuple[str, str]] = {
    "GB": ("grain boundary", "tab:red"),
    "GI": ("grain interior", "tab:blue"),
    "HL": ("homogenising layer", "tab:green"),
}


def check_output(format: str, dpi: int) -> None:
    """Check a figure format and resolution.

    Raises:
        ValueError: a format not in :data:`FORMATS`, or a resolution outside
            :data:`DPI_RANGE` (one line, no prefix).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown figure format {format!r}; known: {', '.join(FORMATS)}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not DPI_RANGE[0] <= dpi <= DPI_RANGE[1]:
        raise ValueError(f"the resolution must be {DPI_RANGE[0]} … {DPI_RANGE[1]} dpi, got {dpi!r}")


@dataclass(frozen=True)
class ReportFigure:
    """One figure file written by the report.

    ``name`` is the file-name suffix (``iv``, ``trigger_hist`` …; the file is
    ``<run stem>_<name>.<format>``); ``data`` holds the numbers drawn, under names carrying their
    units (``bias_V``, ``time_h`` …), so tests and scripts can check what a figure shows;
    ``title`` is the figure's title (its suptitle, else its first axes' title) and ``texts``
    every text it shows (titles, axis labels, legend entries, annotations) as written.
    """

    name: str
    path: Path
    data: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    texts: tuple[str, ...] = ()


class ReportRun:
    """A run file opened for plotting: its tables read once, its readings sliced on demand.

    One :class:`~labctl.store.reader.RunFile` (layout checked, also a file whose writer died)
    gives the attributes, ``steps``, ``events`` and ``results``; readings are read from the
    first channel's datasets with h5py slicing (never whole columns of a long run into Python
    lists). Use as a context manager.

    ``format`` and ``dpi`` are what :func:`save` writes (:data:`FORMATS`, :data:`DPI`).

    Raises:
        RunFileError: missing, corrupt or non-labctl file, or a run without readings.
        ValueError: a format or resolution :func:`check_output` refuses.
    """

    def __init__(self, path: str | Path, *, format: str = FORMATS[0], dpi: int = DPI) -> None:
        check_output(format, dpi)
        self.format, self.dpi = format, dpi
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
    def cell(self) -> str:
        """What cell the run is on, from the run file alone: a simulated cell's preset
        (``simulated_cell_label``, e.g. ``Li | LLZO | Li, no interlayer``) with the recorded
        cell's electrolyte thickness and temperature, marked simulated; else the protocol's
        ``cell`` (``cell_electrolyte``, thickness, temperature); ``""`` when the file names none.
        A run that set temperatures gives their range (``results/temperature_C``) instead.
        A ``--cell bare_llzo`` run is titled with the bare LLZO cell, whatever its protocol's
        ``cell`` says."""
        label = str(self.attrs.get("simulated_cell_label") or "")
        recorded = _json_dict(self.attrs.get("simulated_cell")) if label else {}
        if label:
            thickness, temperature = recorded.get("electrolyte_thickness_um"), recorded.get("temperature_C")
        else:
            label = str(self.attrs.get("cell_electrolyte") or "")
            thickness = self.attrs.get("cell_electrolyte_thickness_um")
            temperature = self.attrs.get("cell_temperature_C")
        if not label:
            return ""
        parts = [label]
        if _finite(thickness):
            parts.append(f"{float(thickness):g} µm")
        if any(step["kind"] == "set_temperature" for step in self.steps):  # the run changed it
            measured = np.asarray(self.results.get("temperature_C", []), dtype=float).ravel()
            measured = measured[np.isfinite(measured)]
            parts.append(f"{measured.min():g}–{measured.max():g} °C" if len(measured) else "temperature stepped")
        elif _finite(temperature):
            parts.append(f"{float(temperature):g} °C")
        text = ", ".join(parts)
        return f"{text} (simulated)" if self.attrs.get("simulated") else text

    @property
    def experiment(self) -> str:
        """What the run is (:data:`KIND_NAMES`), e.g. ``CCD staircase``."""
        return KIND_NAMES.get(self.kind, self.kind.replace("_", " ") or "run")

    @property
    def title(self) -> str:
        """The figures' title: the experiment and the cell it ran on (:attr:`cell`), e.g.
        ``CCD staircase, Li | LLZO | Li, no interlayer, 300 µm, 25 °C (simulated)``; without a
        named cell the protocol's name (an imported file's name), else the file's. Text from the
        file is shown as written (a ``$`` is not mathematics)."""
        cell = self.cell or str(self.attrs.get("protocol_name") or self.path.name)
        return f"{self.experiment}, {cell}".replace("$", r"\$")

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


def _json_dict(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(float(value))


def new_figure(width_in: float, height_in: float) -> Figure:
    """A matplotlib figure drawn by the Agg renderer (no pyplot, no GUI backend involved)."""
    return Figure(figsize=(width_in, height_in), dpi=_LAYOUT_DPI, layout="constrained")


_SUPERSCRIPTS = str.maketrans("-−+0123456789", "⁻⁻⁺⁰¹²³⁴⁵⁶⁷⁸⁹")
#: A unit's exponent in mathtext (``cm$^{-2}$``, ``cm$^2$``) or ASCII (``cm-2``, ``g^-1``, ``cm2``).
_MATH_EXPONENT = re.compile(r"\$\^\{?([-−+]?\d)\}?\$")
_ASCII_EXPONENT = re.compile(r"(?<![\w.])(cm|mol|g|K|s|L)\^?([-−]\d)(?![\w.])")
_ASCII_POWER = re.compile(r"(?<![\w.])(cm)\^?([23])(?![\w.])")
_MICRO_METRE = re.compile(r"(?<=\d)( ?)um(?![\w.])")


def unit_text(text: str) -> str:
    """``text`` with units in the figures' one form, exponents as superscripts: ``mA cm-2``,
    ``mA cm$^{-2}$`` → ``mA cm⁻²``; ``Ω cm2`` → ``Ω cm²``; ``mAh g^-1`` → ``mAh g⁻¹``; ``K-1``,
    ``S cm-1`` likewise; ``500 um`` → ``500 µm``. Other mathematics (``R$_b$``, ``Li/Li$^+$``) is
    left alone."""
    text = _MATH_EXPONENT.sub(lambda m: m.group(1).translate(_SUPERSCRIPTS), text)
    text = _ASCII_EXPONENT.sub(lambda m: m.group(1) + m.group(2).translate(_SUPERSCRIPTS), text)
    text = _ASCII_POWER.sub(lambda m: m.group(1) + m.group(2).translate(_SUPERSCRIPTS), text)
    return _MICRO_METRE.sub(lambda m: m.group(1) + "µm", text)


def _house_texts(fig: Figure) -> tuple[str, tuple[str, ...]]:
    """Put every text of ``fig`` in the house form (:func:`unit_text`); (its title, its texts)."""
    texts = []
    for artist in fig.findobj(Text):
        text = artist.get_text()
        if text:
            artist.set_text(unit_text(text))
            texts.append(artist.get_text())
    suptitle = fig.get_suptitle()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    return suptitle or (titles[0] if titles else ""), tuple(texts)


def _width(artist: Text, text: str, renderer: Any) -> float:
    """Width in pixels ``artist`` takes showing ``text`` (which it then shows)."""
    artist.set_text(text)
    return artist.get_window_extent(renderer).width


def _fit_titles(fig: Figure) -> None:
    """Break every title line too wide for the figure after a comma (or a space), so a long
    cell name never runs off the edge; titles that fit are left as they are."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()  # the layout: where each title sits
    right = fig.bbox.x1
    suptitle = fig._suptitle  # the Text of fig.suptitle (matplotlib has no public accessor for it)
    for title in [t for t in (suptitle, *(ax.title for ax in fig.axes)) if t is not None and t.get_text()]:
        text = title.get_text()
        box = title.get_window_extent(renderer)
        centre = (box.x0 + box.x1) / 2
        room = 2 * min(centre, right - centre) * 0.96
        if box.width <= room:
            continue
        lines: list[str] = []
        for line in text.split("\n"):
            current = ""
            for piece in re.split(r"(?<=,) ", line) if "," in line else line.split(" "):
                joined = f"{current} {piece}" if current else piece
                if current and _width(title, joined, renderer) > room:
                    lines.append(current)
                    current = piece
                else:
                    current = joined
            lines.append(current)
        title.set_text("\n".join(lines))


def _metadata(format: str, title: str) -> dict[str, Any]:
    """The file's metadata: the figure's title; no creation date (a figure drawn twice from one
    run file is the same file)."""
    plain = " ".join(title.replace("\\$", "$").split())
    if format == "png":
        return {"Title": plain, "Software": f"labctl report (matplotlib {matplotlib.__version__})"}
    if format == "svg":
        return {"Title": plain, "Date": None}
    return {"Title": plain, "CreationDate": None}


def save(fig: Figure, run: ReportRun, out_dir: Path, name: str, data: dict[str, Any]) -> ReportFigure:
    """Write ``fig`` as ``<out_dir>/<run stem>_<name>.<format>`` in the run's format and resolution
    (replacing an older file), its texts in the house form (:func:`unit_text`). A PDF keeps its
    text as TrueType (editable, as journals ask), an SVG draws it as paths (the same everywhere)."""
    title, texts = _house_texts(fig)
    _fit_titles(fig)
    path = out_dir / f"{run.stem}_{name}.{run.format}"
    with matplotlib.rc_context({"pdf.fonttype": 42, "svg.hashsalt": "labctl", "svg.fonttype": "path"}):
        fig.savefig(path, format=run.format, dpi=run.dpi, metadata=_metadata(run.format, title))
    return ReportFigure(name, path, data, title=title, texts=texts)


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
    """A number for a label: ``digits`` significant figures, minus sign U+2212, powers of ten
    as ``1.25 × 10⁵`` (not ``1.25e+05``), ``—`` for NaN."""
    if not math.isfinite(value):
        return "—"
    text = f"{value:.{digits}g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPTS)}"
    return text.replace("-", "\u2212")


def log_floor(values: np.ndarray, floor: float = 1e-15) -> np.ndarray:
    """|values| with zeros raised to ``floor`` (so a log axis can show them); NaN stays NaN."""
    a = np.abs(np.asarray(values, dtype=float))
    return np.where(np.isnan(a), np.nan, np.maximum(a, floor))
