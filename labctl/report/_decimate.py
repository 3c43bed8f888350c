"""Min/max decimation of a long series read from HDF5 in blocks, for static figures.

A 12 000 h cycling run holds ~750 000 readings; a figure is ~1000 pixels wide. Drawing every
point costs time and memory and shows nothing more than the extremes of each pixel column, so
each column of the time axis is reduced to the minimum and the maximum of the readings that
fall in it — a short's spike is never lost — and drawn as a vertical stroke joined to the
next. The datasets are read ``block_rows`` rows at a time with h5py slicing.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

#: Pixel columns of a decimated series: about twice the width of a report figure's axes.
COLUMNS = 2000
#: Rows read from the file at a time (8 MB of float64).
BLOCK_ROWS = 1 << 20


class Sliceable(Protocol):
    """An h5py dataset or a numpy array: ``len`` and ``[a:b]``."""

    def __len__(self) -> int: ...
    def __getitem__(self, key: slice) -> np.ndarray: ...


def minmax_decimate(t: Sliceable, y: Sliceable, n: int | None = None, *, columns: int = COLUMNS,
                    block_rows: int = BLOCK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` points of ``(t, y)`` reduced to ≤ 2 points per column of the ``t`` range.

    Args:
        t: time (any unit), non-decreasing as the run file stores test time; 1-D.
        y: the values, same length; NaNs are ignored.
        n: points to use (default: all of ``t``); datasets of unequal length (a file still
            being written) are cut to the shorter.
        columns: number of equal-width columns the ``t`` range is split into.
        block_rows: rows read at a time.

    Returns:
        ``(t_out, y_out)``, 1-D float arrays: the input itself (copied) when it has at most
        ``2 * columns`` points; otherwise for every column holding readings its centre time
        twice, with the minimum then the maximum of ``y`` in it.

    Raises:
        ValueError: ``columns`` or ``block_rows`` is not ≥ 1.
    """
    if columns < 1 or block_rows < 1:
        raise ValueError(f"columns and block_rows must be >= 1, got {columns}, {block_rows}")
    n = min(len(t), len(y)) if n is None else min(n, len(t), len(y))
    if n <= 2 * columns:
        return np.asarray(t[:n], dtype=float), np.asarray(y[:n], dtype=float)
    t0, t1 = float(t[0]), float(t[n - 1])
    width = (t1 - t0) / columns if t1 > t0 else 1.0
    low = np.full(columns, np.inf)
    high = np.full(columns, -np.inf)
    for a in range(0, n, block_rows):
        b = min(a + block_rows, n)
        col = np.clip(((np.asarray(t[a:b], dtype=float) - t0) / width).astype(np.int64), 0, columns - 1)
        yb = np.asarray(y[a:b], dtype=float)
        starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
        np.fmin.at(low, col[starts], np.fmin.reduceat(yb, starts))
        np.fmax.at(high, col[starts], np.fmax.reduceat(yb, starts))
    filled = np.isfinite(low)
    centres = t0 + (np.flatnonzero(filled) + 0.5) * width
    return np.repeat(centres, 2), np.column_stack([low[filled], high[filled]]).ravel()
