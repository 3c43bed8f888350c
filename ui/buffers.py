"""Growing in-memory column buffers that feed the live plots.

The plots never re-read the run file: the run follower reads only the rows appended since
its last look and appends them here. Storage grows by doubling (amortised O(1) per row), and
:meth:`ColumnBuffer.view` returns zero-copy numpy views of the filled part.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


class ColumnBuffer:
    """Equal-length 1-D numpy columns that grow by appending.

    Args:
        dtypes: column name → numpy dtype (e.g. ``{"test_time_s": "f8", ...}``).
        initial_rows: capacity allocated at first.

    Memory: ``capacity × Σ itemsize`` bytes; capacity is at most twice the rows held.
    """

    def __init__(self, dtypes: Mapping[str, str | np.dtype], initial_rows: int = 65536) -> None:
        self._dtypes = {name: np.dtype(dtype) for name, dtype in dtypes.items()}
        self._capacity = max(1, int(initial_rows))
        self._data = {name: np.empty(self._capacity, dtype) for name, dtype in self._dtypes.items()}
        self._n = 0

    def __len__(self) -> int:
        return self._n

    @property
    def names(self) -> list[str]:
        return list(self._dtypes)

    @property
    def nbytes(self) -> int:
        """Bytes allocated (not only filled)."""
        return sum(array.nbytes for array in self._data.values())

    def append(self, columns: Mapping[str, np.ndarray]) -> None:
        """Append rows; ``columns`` must hold every column, all of one length.

        Raises:
            ValueError: a column is missing or the lengths differ.
        """
        missing = set(self._dtypes) - set(columns)
        if missing:
            raise ValueError(f"columns missing: {', '.join(sorted(missing))}")
        lengths = {len(columns[name]) for name in self._dtypes}
        if len(lengths) != 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        k = lengths.pop()
        if k == 0:
            return
        need = self._n + k
        if need > self._capacity:
            capacity = self._capacity
            while capacity < need:
                capacity *= 2
            for name, old in self._data.items():
                new = np.empty(capacity, old.dtype)
                new[: self._n] = old[: self._n]
                self._data[name] = new
            self._capacity = capacity
        for name in self._dtypes:
            self._data[name][self._n:need] = columns[name]
        self._n = need

    def view(self, name: str) -> np.ndarray:
        """The filled part of one column (a view: valid until the next append)."""
        return self._data[name][: self._n]

    def clear(self) -> None:
        self._n = 0
