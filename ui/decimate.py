"""Min/max level-of-detail index for long, growing curves.

pyqtgraph's own peak downsampling and clip-to-view work on whatever array they are given,
every frame: with ten million points that alone costs more than 100 ms here (measured by
``benchmarks/bench_gui.py``). :class:`MinMaxPyramid` keeps, for blocks of 16, 256 and 4096
readings, the positions of each block's minimum and maximum, updated only for the rows
appended since the last update. A frame then hands pyqtgraph at most ``max_points`` points —
the extremes of every block in view, so no spike (a short!) is ever hidden — and pyqtgraph
reduces those to the plot's pixel width as usual. Zoomed in far enough, the raw readings are
shown.
"""

from __future__ import annotations

import numpy as np

from ui.buffers import ColumnBuffer

#: Block sizes of the levels, finest first.
FACTORS = (16, 256, 4096)


class MinMaxPyramid:
    """Positions of block minima and maxima of one growing series, at several block sizes.

    Call :meth:`update` with the whole series so far (a view is fine) after each append; only
    the new complete blocks are processed. :meth:`indices` gives the positions to draw.
    """

    def __init__(self, factors: tuple[int, ...] = FACTORS) -> None:
        self.factors = tuple(sorted(factors))
        self._levels = {f: ColumnBuffer({"i": "i8"}, initial_rows=4096) for f in self.factors}

    def clear(self) -> None:
        for level in self._levels.values():
            level.clear()

    def update(self, y: np.ndarray) -> None:
        """Index the complete blocks of ``y`` not yet indexed (``y`` only ever grows)."""
        for f, level in self._levels.items():
            done = len(level) // 2 * f
            full = len(y) // f * f
            if full <= done:
                continue
            block = y[done:full].reshape(-1, f)
            base = done + np.arange(block.shape[0], dtype=np.int64) * f
            i_min = block.argmin(axis=1) + base
            i_max = block.argmax(axis=1) + base
            pairs = np.empty(2 * block.shape[0], dtype=np.int64)
            pairs[0::2] = np.minimum(i_min, i_max)
            pairs[1::2] = np.maximum(i_min, i_max)
            level.append({"i": pairs})

    def indices(self, lo: int, hi: int, max_points: int) -> np.ndarray | slice:
        """Positions of the points to draw for rows ``[lo, hi)``.

        Returns ``slice(lo, hi)`` when that is at most ``max_points`` rows; otherwise an index
        array of block extremes from the finest level that fits (plus the raw rows of the
        last, incomplete block).
        """
        if hi - lo <= max_points:
            return slice(lo, hi)
        for f in self.factors:
            if 2 * (hi - lo) // f <= max_points or f == self.factors[-1]:
                level = self._levels[f].view("i")
                b0, b1 = lo // f, min(hi // f, len(level) // 2)
                tail = np.arange(max(b1 * f, lo), hi, dtype=np.int64)
                return np.concatenate((level[2 * b0: 2 * b1], tail))
        raise AssertionError("unreachable")
