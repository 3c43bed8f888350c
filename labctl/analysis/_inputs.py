"""Input checks shared by the analyses: every array finite, every scale positive.

Each check raises :class:`ValueError` with one line naming the input, so a caller (a protocol
kind, ``labctl report``) can show it as it is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def finite_array(name: str, values: Any, *, min_length: int = 1, dtype: Any = np.float64) -> np.ndarray:
    """``values`` as a 1-D float array with at least ``min_length`` entries, all finite.

    Raises:
        ValueError: not 1-D, too short, or holding NaN/inf (the message names ``name``).
    """
    try:
        array = np.asarray(values, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not an array of numbers") from None
    if array.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {array.shape}")
    if len(array) < min_length:
        raise ValueError(f"{name}: needs at least {min_length} values, got {len(array)}")
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: {int(bad.sum())} non-finite value(s) (NaN/inf), the first at index {first}")
    return array


def same_length(**arrays: np.ndarray) -> int:
    """The common length of the named arrays.

    Raises:
        ValueError: the lengths differ (all are named with theirs).
    """
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("arrays of different lengths: " + ", ".join(f"{k} {v}" for k, v in lengths.items()))
    return next(iter(lengths.values()))


def positive(name: str, value: Any) -> float:
    """``value`` as a finite float > 0.

    Raises:
        ValueError: not a number, not finite, or ≤ 0.
    """
    number = finite(name, value)
    if not number > 0:
        raise ValueError(f"{name} must be > 0, got {number!r}")
    return number


def finite(name: str, value: Any) -> float:
    """``value`` as a finite float.

    Raises:
        ValueError: not a number, NaN or inf.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: not a number ({value!r})") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number


def non_decreasing(name: str, values: np.ndarray) -> None:
    """Raises ValueError if ``values`` (e.g. a time column) ever decreases."""
    if len(values) > 1 and np.any(np.diff(values) < 0):
        first = int(np.flatnonzero(np.diff(values) < 0)[0])
        raise ValueError(f"{name}: decreases at index {first + 1} ({values[first]!r} → {values[first + 1]!r})")
