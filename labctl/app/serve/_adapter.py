"""The Tiled adapter that serves one labctl run file, also while it is written.

Tiled's own HDF5 adapter (``tiled.adapters.hdf5.HDF5Adapter``, tiled 0.2.20) is the base; this
subclass changes what a run file needs:

* every open is without HDF5 file locking, also for the attributes of groups and datasets
  (the base class reads those with its defaults), and in the mode labctl's own readers use
  (:func:`labctl.store.layout.open_file`): an SWMR read for a file marked open for write (a
  run still being written, or killed), a plain read otherwise — HDF5 refuses one process two
  opens of one file in different modes, and the server's catalog reads the files too; the
  server can never stop the bench's writer from re-opening its file at the end of a run;
* the ``events`` and ``steps`` tables are compound datasets with UTF-8 string fields; h5py
  tags those fields' dtype with metadata that Tiled's ``StructDtype`` cannot describe (it
  fails with "invalid shape in fixed-type tuple"), so the tables are served with the same
  layout, untagged: string fields arrive as UTF-8 ``bytes``;
* an empty dataset (a run with no reading yet) keeps its shape ``(0,)`` (the base class
  stacks it to ``(1, 0)``), scalar datasets keep ``()``, and variable-length string
  datasets (a results list of names) are served as unicode arrays;
* a group's metadata is its own attributes, JSON-safe (non-finite numbers → ``None``).

Nothing is cached: each request opens the file, so a client sees the rows appended since its
last request. The server never writes to a run file.
"""

from __future__ import annotations

from typing import Any

import dask.array
import h5py
import numpy as np
from tiled.adapters.hdf5 import HDF5Adapter, HDF5ArrayAdapter, h5open
from tiled.server.core import NoEntry
from tiled.structures.array import ArrayStructure
from tiled.utils import path_from_uri

from labctl.store.catalog import json_value
from labctl.store.layout import superblock

#: The data-source mimetype labctl registers run files with; the server maps it to
#: :class:`RunFileAdapter`.
RUN_FILE_MIMETYPE = "application/x-hdf5+labctl-run"


def _open_options(path: Any) -> dict[str, Any]:
    """h5py open options for a run file: SWMR only if its superblock says a writer has it."""
    sb = superblock(path)
    return {"swmr": True, "libver": "latest", "locking": False} if sb is not None and sb.open_for_write \
        else {"locking": False}


def plain_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` with the same layout but without h5py's metadata (nested fields too)."""
    if dtype.names is None:
        return np.dtype(dtype.str)
    return np.dtype({"names": list(dtype.names),
                     "formats": [plain_dtype(dtype.fields[name][0]) for name in dtype.names],
                     "offsets": [dtype.fields[name][1] for name in dtype.names],
                     "itemsize": dtype.itemsize})


def _attrs(uri: str, dataset: str | None) -> dict[str, Any]:
    path = path_from_uri(uri)
    with h5open(path, dataset, **_open_options(path)) as node:
        return json_value(dict(node.attrs))


def _array_adapter(uri: str, dataset: str) -> HDF5ArrayAdapter:
    """One dataset of a run file as a lazily read array (read in its HDF5 chunks)."""
    path = path_from_uri(uri)
    options = _open_options(path)
    with h5open(path, dataset, **options) as ds:
        shape, dtype = ds.shape, ds.dtype
        small = ds.ndim == 0 or 0 in shape or dtype.kind == "O"
        if small:  # scalars, empty datasets, variable-length strings: read now, whole
            if h5py.check_string_dtype(dtype) is not None and dtype.kind == "O":
                data = np.asarray(ds.asstr()[()], dtype=str)
            else:
                data = np.asarray(ds[()])
        attrs = json_value(dict(ds.attrs))
    if small:
        array = dask.array.from_array(data.astype(plain_dtype(data.dtype)), chunks=data.shape or ())
    else:
        array = HDF5ArrayAdapter.lazy_load_hdf5_array(path, dataset=dataset, **options)
        if dtype.names is not None:  # astype() would keep the tagged dtype: numpy finds them equal
            plain = plain_dtype(dtype)
            array = array.map_blocks(lambda block: block.view(plain), dtype=plain)
    return HDF5ArrayAdapter(array, ArrayStructure.from_array(array), metadata=attrs)


class RunFileAdapter(HDF5Adapter):
    """A run file (or one of its groups) as a Tiled container; see the module docstring.

    Built by the catalog from a data source of mimetype :data:`RUN_FILE_MIMETYPE` whose one
    asset is the file.
    """

    @classmethod
    def from_catalog(cls, data_source: Any, node: Any, /, **_parameters: Any) -> RunFileAdapter:
        return super().from_catalog(data_source, node, dataset="/",
                                    **_open_options(path_from_uri(data_source.assets[0].data_uri)))

    @classmethod
    def from_uris(cls, *data_uris: str, **_kwargs: Any) -> RunFileAdapter:
        return super().from_uris(*data_uris, dataset="/", **_open_options(path_from_uri(data_uris[0])))

    def metadata(self) -> dict[str, Any]:
        return {**_attrs(self.uris[0], self.dataset), **self._metadata}

    def __getitem__(self, key: str) -> RunFileAdapter | HDF5ArrayAdapter:
        segments = [s for s in key.strip("/").split("/") if s]
        node: Any = self._tree
        for segment in segments:
            if not isinstance(node, dict) or segment not in node:
                raise NoEntry(f"{self.uris[0]}: no {key!r} under {self.dataset or '/'}")
            node = node[segment]
        dataset = f"{(self.dataset or '').rstrip('/')}/{'/'.join(segments)}"
        if isinstance(node, dict):
            return RunFileAdapter(node, *self.uris, dataset=dataset, **_open_options(path_from_uri(self.uris[0])))
        return _array_adapter(self.uris[0], dataset)
