"""Resistive-switching criteria on a sweep's readings: the ionic → electronic conductance
surge (triggering bias, memristor set) and the fall back to ionic conduction (reset).

Seed 004 names the signatures but no numbers: at the triggering bias "the measured current
goes through an abrupt change" and "a surge in the conductivity is detected" [004 L54]. The
criteria work on the conductance |I/V| of each point, so that the current's plain rise with
the bias near 0 V is not mistaken for a surge; the thresholds are parameters. Used on-line
by the sweep engine (reset failures) and by the c-AFM and memristor analyses.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: Points with |V| below this (V) carry no conductance information and are skipped.
MIN_BIAS_V = 1e-6


def _conductance(voltage_V: Sequence[float], current_A: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = np.asarray(voltage_V, dtype=float)
    i = np.asarray(current_A, dtype=float)
    valid = np.abs(v) >= MIN_BIAS_V
    g = np.where(valid, np.abs(i) / np.where(valid, np.abs(v), 1.0), np.nan)
    return v, i, g


def surge_index(voltage_V: Sequence[float], current_A: Sequence[float], surge_factor: float, min_current_A: float,
                baseline_points: int = 5) -> int | None:
    """Index of the first point whose conductance |I/V| is ≥ ``surge_factor`` × the
    baseline and whose |I| ≥ ``min_current_A``, or None.

    The baseline at point k is the median conductance of the up to ``baseline_points``
    valid points before it (robust to one noisy point), floored at 1 fS. Shapes: two 1-D
    sequences of equal length.
    """
    _v, i, g = _conductance(voltage_V, current_A)
    history: list[float] = []
    for k in range(len(g)):
        if np.isnan(g[k]):
            continue
        if history:
            base = max(float(np.median(history[-baseline_points:])), 1e-15)
            if g[k] >= surge_factor * base and abs(i[k]) >= min_current_A:
                return k
        history.append(float(g[k]))
    return None


def drop_index(voltage_V: Sequence[float], current_A: Sequence[float], drop_factor: float) -> int | None:
    """Index of the first point at positive bias whose conductance fell by ≥ ``drop_factor``
    from the previous valid point (a filament stripped: reset), or None."""
    v, _i, g = _conductance(voltage_V, current_A)
    previous = None
    for k in range(len(g)):
        if np.isnan(g[k]):
            continue
        if previous is not None and v[k] > 0 and g[k] * drop_factor <= previous:
            return k
        previous = float(g[k])
    return None


def reset_seen(voltage_V: Sequence[float], current_A: Sequence[float], drop_factor: float) -> bool:
    """True when the readings show a reset (see :func:`drop_index`)."""
    return drop_index(voltage_V, current_A, drop_factor) is not None
