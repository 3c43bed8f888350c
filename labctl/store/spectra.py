"""Impedance spectra in a run file: the ``spectra/<channel>`` group.

Layout (plain h5py can read it): one resizable, chunked 1-D dataset per column of
:data:`SPECTRUM_COLUMNS`, all of equal length, one row per frequency point, each with a
``units`` attribute:

==================  =====  ==============================================================
column              units  meaning
==================  =====  ==============================================================
``frequency_Hz``    Hz     excitation frequency (> 0)
``z_real_ohm``      Ohm    Re Z
``z_imag_neg_ohm``  Ohm    −Im Z (positive for a capacitive arc, as EC-Lab's ``-Im(Z)/Ohm``)
``z_abs_ohm``       Ohm    |Z|
``phase_deg``       deg    arg Z = atan2(Im Z, Re Z) (negative for a capacitive arc, EC-Lab's
                           ``Phase(Z)/deg``)
``spectrum_index``  1      0, 1, 2 … : which spectrum of the run the point belongs to
``test_time_s``     s      when the point was measured (run clock); optional
``cycle_index``     1      the cycle the spectrum belongs to; optional
``step_index``      1      the executed step that measured it (a run's ``impedance`` step); optional
==================  =====  ==============================================================

The optional columns exist when the first write gives them, and every later write to the group
must give them too. :func:`create_spectra` makes the group (before a writer switches a file to
SWMR mode, which cannot create datasets); :func:`append_spectrum` then only resizes and
writes, which SWMR allows — so the engine can publish each spectrum as it comes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.events import Column

GROUP = "spectra"
SPECTRUM_COLUMNS: tuple[Column, ...] = (
    Column("frequency_Hz", "f8", "Hz", None),
    Column("z_real_ohm", "f8", "Ohm", None),
    Column("z_imag_neg_ohm", "f8", "Ohm", None),
    Column("z_abs_ohm", "f8", "Ohm", None),
    Column("phase_deg", "f8", "deg", None),
    Column("spectrum_index", "i4", "1", None),
    Column("test_time_s", "f8", "s", None),
    Column("cycle_index", "i4", "1", None),
    Column("step_index", "i4", "1", None),
)
OPTIONAL = ("test_time_s", "cycle_index", "step_index")
CHUNK_ROWS = 1024


class SpectrumError(ValueError):
    """Spectrum arrays that cannot be stored; the message names the array."""


def create_spectra(root: h5py.Group, channel: str, *, with_time: bool = True, with_cycle: bool = True,
                   with_step: bool = False) -> h5py.Group:
    """Create (or return) the empty group ``spectra/<channel>`` under ``root`` (a file's root).

    ``with_time`` / ``with_cycle`` / ``with_step`` create the optional ``test_time_s`` /
    ``cycle_index`` / ``step_index``.
    """
    parent = root.require_group(GROUP)
    if channel in parent:
        return parent[channel]
    group = parent.create_group(channel)
    for column in SPECTRUM_COLUMNS:
        if (column.name == "test_time_s" and not with_time) or (column.name == "cycle_index" and not with_cycle) \
                or (column.name == "step_index" and not with_step):
            continue
        ds = group.create_dataset(column.name, shape=(0,), maxshape=(None,), dtype=column.dtype, chunks=(CHUNK_ROWS,))
        ds.attrs["units"] = column.units
    return group


def _checked(name: str, values: Any, n: int | None) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise SpectrumError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if n is not None and len(array) != n:
        raise SpectrumError(f"{name}: {len(array)} values, frequency_Hz has {n}")
    if not np.all(np.isfinite(array)):
        raise SpectrumError(f"{name}: {int(np.sum(~np.isfinite(array)))} non-finite value(s)")
    return array


def spectrum_columns(frequency_Hz: Any, z_real_ohm: Any, z_imag_neg_ohm: Any, *, z_abs_ohm: Any = None,
                     phase_deg: Any = None, spectrum_index: Any = 0, test_time_s: Any = None,
                     cycle_index: Any = None, step_index: Any = None) -> dict[str, np.ndarray]:
    """Checked columns of one or more spectra (see the module docstring for units).

    ``z_abs_ohm`` and ``phase_deg`` default to those computed from Re and −Im Z (give the
    instrument's own to keep them as recorded); ``spectrum_index`` and ``cycle_index`` may be
    one number for every point or an array.

    Raises:
        SpectrumError: an array not 1-D, of another length than ``frequency_Hz``, with a
            non-finite value, or a frequency ≤ 0 (one line naming it).
    """
    f = _checked("frequency_Hz", frequency_Hz, None)
    n = len(f)
    if np.any(f <= 0):
        raise SpectrumError(f"frequency_Hz: {int(np.sum(f <= 0))} value(s) ≤ 0")
    zr = _checked("z_real_ohm", z_real_ohm, n)
    zi = _checked("z_imag_neg_ohm", z_imag_neg_ohm, n)
    out = {"frequency_Hz": f, "z_real_ohm": zr, "z_imag_neg_ohm": zi,
           "z_abs_ohm": _checked("z_abs_ohm", z_abs_ohm, n) if z_abs_ohm is not None else np.hypot(zr, zi),
           "phase_deg": _checked("phase_deg", phase_deg, n) if phase_deg is not None
           else np.degrees(np.arctan2(-zi, zr))}
    for name, value in (("spectrum_index", spectrum_index), ("cycle_index", cycle_index),
                        ("step_index", step_index)):
        if value is None:
            continue
        array = np.broadcast_to(np.asarray(value), (n,)) if np.ndim(value) == 0 else value
        array = _checked(name, array, n)
        if np.any(array != np.round(array)) or np.any(array < 0):
            raise SpectrumError(f"{name}: not whole numbers ≥ 0")
        out[name] = array.astype(np.int32)
    if test_time_s is not None:
        out["test_time_s"] = _checked("test_time_s", test_time_s, n)
    return out


def append_spectrum(group: h5py.Group, columns: Mapping[str, np.ndarray]) -> int:
    """Append rows (from :func:`spectrum_columns`) to a group made by :func:`create_spectra`.

    Returns the number of rows appended.

    Raises:
        SpectrumError: the columns do not match the group's (an optional one missing or extra).
    """
    present = set(group)
    given = set(columns)
    if given != present:
        missing, extra = sorted(present - given), sorted(given - present)
        raise SpectrumError(f"spectra/{Path(group.name).name}: columns differ from the group's"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; not in the group {', '.join(extra)}" if extra else ""))
    n = len(columns["frequency_Hz"])
    for name, values in columns.items():
        ds = group[name]
        start = ds.shape[0]
        ds.resize((start + n,))
        ds[start:] = values
    return n


def write_spectra(path: str | Path, channel: str, frequency_Hz: Any, z_real_ohm: Any, z_imag_neg_ohm: Any,
                  **options: Any) -> int:
    """Append spectra to ``spectra/<channel>`` of a closed run file (created if missing).

    Plain arrays in; ``options`` as :func:`spectrum_columns`. Returns the rows written.

    Raises:
        SpectrumError: bad arrays (named); OSError: the file cannot be opened for writing.
    """
    columns = spectrum_columns(frequency_Hz, z_real_ohm, z_imag_neg_ohm, **options)
    with h5py.File(path, "r+", locking=False) as f:
        group = create_spectra(f, channel, with_time="test_time_s" in columns, with_cycle="cycle_index" in columns,
                               with_step="step_index" in columns)
        return append_spectrum(group, columns)


def spectra_channels(source: str | Path | h5py.File) -> list[str]:
    """Channels that hold spectra in a run file."""
    with _opened(source) as f:
        return list(f[GROUP]) if GROUP in f else []


def read_spectra(source: str | Path | h5py.File, channel: str) -> dict[str, np.ndarray]:
    """All spectrum columns of a channel (name → 1-D array, equal lengths).

    Raises:
        KeyError: the file has no spectra for ``channel``.
    """
    with _opened(source) as f:
        if GROUP not in f or channel not in f[GROUP]:
            raise KeyError(f"no spectra for channel {channel!r} (have: {', '.join(f[GROUP]) if GROUP in f else 'none'})")
        group = f[GROUP][channel]
        if f.swmr_mode:
            for ds in group.values():
                ds.refresh()
        n = min(ds.shape[0] for ds in group.values())
        return {name: ds[:n] for name, ds in group.items()}


def split_spectra(columns: Mapping[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The rows of :func:`read_spectra` split by ``spectrum_index`` (in index order)."""
    index = columns["spectrum_index"]
    return [{name: values[index == k] for name, values in columns.items()} for k in np.unique(index)]


class _opened:
    """Context: a path opened read-only (closed after), or an open file used as it is."""

    def __init__(self, source: str | Path | h5py.File) -> None:
        self._source = source
        self._own = not isinstance(source, h5py.File)

    def __enter__(self) -> h5py.File:
        self._file = h5py.File(self._source, "r", locking=False) if self._own else self._source
        return self._file

    def __exit__(self, *exc: object) -> None:
        if self._own:
            self._file.close()
