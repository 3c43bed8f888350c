"""Reading run files, including ones that are still being written (SWMR)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.store.writer import FORMAT


class RunFileError(Exception):
    """A file is missing, not HDF5, or not a labctl run file; the message names it."""


def decode(value: Any) -> Any:
    """An HDF5 value as plain Python: bytes → str (UTF-8), numpy scalars → Python numbers."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def records(data: np.ndarray) -> list[dict[str, Any]]:
    """Rows of a structured array (the ``events`` / ``steps`` tables) as dicts of Python values."""
    return [{name: decode(row[name]) for name in data.dtype.names} for row in data]


def _rows(dataset: h5py.Dataset) -> list[dict[str, Any]]:
    dataset.refresh()
    return records(dataset[()])


class RunFile:
    """A run file opened read-only. Use as a context manager.

    Args:
        path: the ``.h5`` file.
        swmr: open in SWMR-read mode, to follow a file that is still being written
            (call :meth:`refresh` to see new rows).

    Raises:
        RunFileError: missing file, not HDF5 / truncated, or not a labctl run file.
    """

    def __init__(self, path: str | Path, *, swmr: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise RunFileError(f"{self.path}: no such file")
        try:
            # Without a lock: a reader must never stop the writer from finishing the file.
            self._file = h5py.File(self.path, "r", swmr=swmr, libver="latest" if swmr else None, locking=False)
        except OSError as exc:
            raise RunFileError(f"{self.path}: not a readable HDF5 file ({exc.__class__.__name__}: {exc})") from None
        if decode(self._file.attrs.get("format", "")) != FORMAT or "channels" not in self._file:
            self._file.close()
            raise RunFileError(f"{self.path}: an HDF5 file, but not a labctl run file (no format '{FORMAT}')")

    def __enter__(self) -> RunFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes, decoded to Python values."""
        return {key: decode(value) for key, value in self._file.attrs.items()}

    @property
    def channels(self) -> list[str]:
        return list(self._file["channels"])

    def channel_attrs(self, channel: str) -> dict[str, Any]:
        return {key: decode(value) for key, value in self._file["channels"][channel].attrs.items()}

    def columns(self, channel: str) -> dict[str, np.ndarray]:
        """All columns of a channel as arrays of equal length (name → 1-D array)."""
        group = self._file["channels"][channel]
        for ds in group.values():
            ds.refresh()
        n = min(ds.shape[0] for ds in group.values())
        return {name: ds[:n] for name, ds in group.items()}

    def units(self, channel: str) -> dict[str, str]:
        return {name: decode(ds.attrs.get("units", "")) for name, ds in self._file["channels"][channel].items()}

    def events(self) -> list[dict[str, Any]]:
        return _rows(self._file["events"])

    def steps(self) -> list[dict[str, Any]]:
        return _rows(self._file["steps"])

    def results(self) -> dict[str, Any]:
        """The ``results`` group: attributes and datasets, nested groups as dicts."""
        return read_group(self._file["results"])

    def spectra(self, channel: str) -> list[dict[str, np.ndarray]]:
        """The channel's impedance spectra (``spectra/<channel>``), one dict of columns per
        spectrum in index order (:mod:`labctl.store.spectra`); [] when it has none."""
        from labctl.store.spectra import GROUP, read_spectra, split_spectra

        if GROUP not in self._file or channel not in self._file[GROUP]:
            return []
        return split_spectra(read_spectra(self._file, channel))

    def refresh(self) -> None:
        """See rows appended since the file was opened (SWMR mode)."""
        for group in self._file["channels"].values():
            for ds in group.values():
                ds.refresh()


def read_group(group: h5py.Group) -> dict[str, Any]:
    """A group's attributes and datasets as a dict, sub-groups as nested dicts; string
    datasets as lists of ``str``, the others as numpy arrays (or scalars)."""
    out: dict[str, Any] = {key: decode(value) for key, value in group.attrs.items()}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = read_group(item)
        elif h5py.check_string_dtype(item.dtype) is not None and item.ndim == 1:
            out[key] = list(item.asstr()[()])
        else:
            out[key] = item[()]
    return out
