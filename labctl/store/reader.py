"""Reading run files, including ones that are still being written (SWMR) or whose writer died."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

import labctl.store.layout as layout
from labctl.store.layout import RunFileError, decode, read_group, records
from labctl.store.lock import LockInfo, live_owner, writer_may_be_alive


class RunFile:
    """A run file opened read-only, its layout checked (:func:`labctl.store.layout.check`). Use
    as a context manager.

    The file is opened in SWMR-read mode when a writer has it open or left it so (the
    superblock's "open for write" mark), else normally; see :func:`labctl.store.layout.open_file`.

    Args:
        path: the ``.h5`` file.
        swmr: None or True: SWMR-read mode when the file needs it (call :meth:`refresh` to see
            new rows of a file being written); False: refuse a file marked open for write.

    Attributes:
        owner: the live process writing the file (its lock), or None (also when the lock file
            is unreadable: reading never depends on it).

    Raises:
        RunFileError: missing file, not HDF5, truncated, damaged, or not a labctl run file;
            a part of the layout missing (one line naming the file and the part).
    """

    def __init__(self, path: str | Path, *, swmr: bool | None = None) -> None:
        self.path = Path(path)
        try:
            self.owner: LockInfo | None = live_owner(self.path)
        except RunFileError:
            self.owner = None
        self._file = layout.open_run(self.path, swmr=False if swmr is False else None,
                                     writer_alive=writer_may_be_alive(self.path))

    def __enter__(self) -> RunFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    @property
    def swmr(self) -> bool:
        """Whether the file is open in SWMR-read mode (a writer had it open, or died with it)."""
        return bool(self._file.swmr_mode)

    def _damaged(self, part: str, exc: BaseException) -> RunFileError:
        return layout.damaged(self._file, part, exc)

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes, decoded to Python values."""
        try:
            return {key: decode(value) for key, value in self._file.attrs.items()}
        except (OSError, RuntimeError, KeyError) as exc:
            raise self._damaged("its root attributes", exc) from None

    @property
    def channels(self) -> list[str]:
        return layout.channel_names(self._file)

    def channel_attrs(self, channel: str) -> dict[str, Any]:
        group = layout.channel_group(self._file, channel)
        try:
            return {key: decode(value) for key, value in group.attrs.items()}
        except (OSError, RuntimeError, KeyError) as exc:
            raise self._damaged(layout.channel_path(channel), exc) from None

    def column(self, channel: str, name: str) -> h5py.Dataset:
        """One reading column as its h5py dataset (to slice; see :meth:`n_rows` for its usable
        length). Raises RunFileError if missing."""
        return layout.column(self._file, channel, name)

    def column_names(self, channel: str) -> list[str]:
        return list(layout.columns(self._file, channel))

    def n_rows(self, channel: str) -> int:
        """Readings of ``channel``: the shortest column's length (a crash between the columns of
        one batch leaves the others longer)."""
        datasets = layout.columns(self._file, channel)
        try:
            if self.swmr:
                for ds in datasets.values():
                    ds.refresh()
            return min((ds.shape[0] for ds in datasets.values()), default=0)
        except (OSError, RuntimeError) as exc:
            raise self._damaged(layout.channel_path(channel), exc) from None

    def read(self, channel: str, name: str, rows: slice = slice(None)) -> np.ndarray:
        """Rows of one column (a damaged chunk is a RunFileError naming the file and column)."""
        ds = self.column(channel, name)
        try:
            return ds[rows]
        except (OSError, RuntimeError, ValueError) as exc:
            raise self._damaged(layout.column_path(channel, name), exc) from None

    def columns(self, channel: str) -> dict[str, np.ndarray]:
        """All columns of a channel as arrays of equal length (name → 1-D array)."""
        n = self.n_rows(channel)
        return {name: self.read(channel, name, slice(0, n)) for name in self.column_names(channel)}

    def units(self, channel: str) -> dict[str, str]:
        return {name: decode(ds.attrs.get(layout.A_UNITS, "")) for name, ds in layout.columns(self._file, channel).items()}

    def bdf_labels(self, channel: str) -> dict[str, str]:
        """Column name → its Battery Data Format label, for the columns that have one."""
        labels = {}
        for name, ds in layout.columns(self._file, channel).items():
            label = decode(ds.attrs.get(layout.A_BDF_LABEL, ""))
            if label:
                labels[name] = str(label)
        return labels

    def _table(self, ds: h5py.Dataset, rows: slice) -> list[dict[str, Any]]:
        try:
            if self.swmr:
                ds.refresh()
            return records(ds[rows])
        except (OSError, RuntimeError, ValueError) as exc:
            raise self._damaged(ds.name.lstrip("/"), exc) from None

    def n_events(self) -> int:
        return layout.events_table(self._file).shape[0]

    def n_steps(self) -> int:
        return layout.steps_table(self._file).shape[0]

    def events(self, rows: slice = slice(None)) -> list[dict[str, Any]]:
        """Rows of the ``events`` table (all, or ``rows``) as dicts."""
        return self._table(layout.events_table(self._file), rows)

    def steps(self, rows: slice = slice(None)) -> list[dict[str, Any]]:
        """Rows of the ``steps`` table (all, or ``rows``) as dicts."""
        return self._table(layout.steps_table(self._file), rows)

    def results(self) -> dict[str, Any]:
        """The ``results`` group: attributes and datasets, nested groups as dicts."""
        return read_group(layout.results_group(self._file))

    def results_group(self) -> h5py.Group:
        return layout.results_group(self._file)

    def spectra(self, channel: str) -> list[dict[str, np.ndarray]]:
        """The channel's impedance spectra (``spectra/<channel>``), one dict of columns per
        spectrum in index order (:mod:`labctl.store.spectra`); [] when it has none."""
        from labctl.store.spectra import GROUP, read_spectra, split_spectra

        if GROUP not in self._file or channel not in self._file[GROUP]:
            return []
        return split_spectra(read_spectra(self._file, channel))

    def refresh(self) -> None:
        """See rows appended since the file was opened (SWMR mode)."""
        for channel in self.channels:
            for ds in layout.columns(self._file, channel).values():
                ds.refresh()


__all__ = ["RunFile", "RunFileError", "decode", "read_group", "records"]
