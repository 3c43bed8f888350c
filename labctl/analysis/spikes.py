"""Soft-short amperometry: spikes, the abrupt rise and the hard short in a current–time trace
recorded at a constant bias.

The signature (seed 001, seed-protocols.md §6.1): the current sits at the noise floor
(≈ 0.5 nA [001 L64]); "at a certain point, the current abruptly increased, followed by
high-frequency stochastic spikes" whose amplitude grows (to hundreds of nA) while their
frequency stays "almost unchanged"; then the current "kept building up until the whole system
suddenly short-circuited and burnt out", finally dropping "to nearly zero" as the path melted
like a fuse [001 L54, L62–L64]. No seed gives numbers for detecting any of this
(seed-protocols.md §2.3, §10 item 15), so every threshold is a parameter.

Method, on the current oriented so that the bias drives it positive (the sign of the net
current; the bias's sign does not matter):

* baseline: the first ``baseline_s`` of the trace (default its first 10 %); its median is the
  baseline level, and its noise σ = 1.4826 × MAD (median absolute deviation: a robust σ
  that a few spikes cannot inflate); σ is never taken below the trace's resolution (the
  smallest non-zero step between readings);
* level: a running median over ``window_points`` readings (``scipy.ndimage.median_filter``),
  which spikes a few readings wide do not move;
* spikes: ``scipy.signal.find_peaks`` on I − level with height and prominence n_sigma·σ;
  amplitude = I − level at the peak (A); rate = spikes per minute between the onset and the
  hard short (or the end);
* soft-short onset (the abrupt rise): the earlier of the first spike and the first reading
  where the level stays ≥ baseline + n_sigma·σ for ``sustain_points`` readings;
* hard short: the first reading where the current stays ≥ ``hard_short_A`` for
  ``hard_short_points`` readings; the burn-out after it: the first reading where it falls
  back within baseline + n_sigma·σ. Spikes are counted before the hard short only;
* growth: Spearman's rank correlation of the spike amplitudes with time and a least-squares
  slope (A s⁻¹), so "the amplitude of the spike increases with time" [001 L54] is a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.analysis._inputs import finite_array, non_decreasing, positive, same_length

#: σ of a normal distribution per MAD.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class SpikeAnalysis:
    """Result of :func:`soft_short_spikes`. Times in s (of the trace's clock), currents in A;
    ``None`` where the event did not happen. ``spike_time_s`` and ``spike_amplitude_A`` list
    the spikes; ``spike_rate_per_min`` is 0 without an onset; the growth figures are 0 with
    fewer than 3 spikes."""

    spike_count: int
    spike_time_s: list[float]
    spike_amplitude_A: list[float]
    spike_rate_per_min: float
    soft_short_onset_s: float | None
    hard_short_s: float | None
    burnout_s: float | None
    baseline_A: float
    noise_sigma_A: float
    amplitude_growth_spearman: float
    amplitude_growth_A_per_s: float

    def as_results(self) -> dict[str, Any]:
        def opt(x: float | None) -> Any:
            return "" if x is None else x

        return {"spike_count": self.spike_count, "soft_short_onset_s": opt(self.soft_short_onset_s),
                "hard_short_s": opt(self.hard_short_s), "burnout_s": opt(self.burnout_s),
                "spike_rate_per_min": self.spike_rate_per_min, "noise_floor_A": self.noise_sigma_A,
                "baseline_current_A": self.baseline_A,
                "spike_amplitude_growth_spearman": self.amplitude_growth_spearman,
                "spike_amplitude_growth_A_per_s": self.amplitude_growth_A_per_s,
                "spikes": {"time_s": self.spike_time_s, "amplitude_A": self.spike_amplitude_A}}


def _first_sustained(mask: np.ndarray, points: int) -> int | None:
    if points <= 1:
        hits = np.flatnonzero(mask)
    elif len(mask) >= points:
        hits = np.flatnonzero(np.lib.stride_tricks.sliding_window_view(mask, points).all(axis=1))
    else:
        hits = np.zeros(0, dtype=np.int64)
    return int(hits[0]) if len(hits) else None


def soft_short_spikes(time_s: Any, current_A: Any, *, hard_short_A: float, baseline_s: float | None = None,
                      n_sigma: float = 5.0, window_points: int = 21, sustain_points: int = 5,
                      hard_short_points: int = 3, min_spike_distance_points: int = 1) -> SpikeAnalysis:
    """Spikes, soft-short onset, hard short and burn-out of a constant-bias I–t trace.

    Args:
        time_s: 1-D, s, non-decreasing. current_A: 1-D, A, same length (sign ignored).
        hard_short_A: |I| at which the cell counts as hard-shorted (e.g. a fraction of the
            compliance, or bias / expected metallic resistance); [001] gives none.
        baseline_s: length of the quiet start used for the baseline and noise (default the
            first 10 % of the trace's time, at least 10 readings).
        n_sigma: detection threshold in noise σ (spikes, onset, burn-out).
        window_points: running-median window (odd, ≥ 3).
        sustain_points, hard_short_points: readings a rise / a hard short must last.
        min_spike_distance_points: the least distance between two spikes (readings).

    Raises:
        ValueError: bad input (named), fewer than 10 readings.
    """
    from scipy.ndimage import median_filter
    from scipy.signal import find_peaks
    from scipy.stats import spearmanr

    t = finite_array("time_s", time_s, min_length=10)
    signed = finite_array("current_A", current_A)
    # Oriented by the bias (the sign of the net current), not folded with abs(): at the noise
    # floor the current crosses zero, and |I| would halve the noise's spread.
    i = signed if np.sum(signed) >= 0 else -signed
    same_length(time_s=t, current_A=i)
    non_decreasing("time_s", t)
    hard = positive("hard_short_A", hard_short_A)
    k_sigma = positive("n_sigma", n_sigma)
    if window_points < 3 or window_points % 2 == 0:
        raise ValueError(f"window_points must be odd and ≥ 3, got {window_points}")
    if min(sustain_points, hard_short_points, min_spike_distance_points) < 1:
        raise ValueError("sustain_points, hard_short_points and min_spike_distance_points must be ≥ 1")
    span = float(t[-1] - t[0])
    base_len = positive("baseline_s", baseline_s) if baseline_s is not None else 0.1 * span
    n_base = max(int(np.searchsorted(t, t[0] + base_len, side="right")), 10)
    base = i[:n_base]
    baseline = float(np.median(base))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(base - baseline)))
    steps = np.abs(np.diff(i))
    resolution = float(steps[steps > 0].min()) if np.any(steps > 0) else 0.0
    sigma = max(sigma, resolution, 1e-18)
    threshold = k_sigma * sigma

    k_hard = _first_sustained(i >= hard, hard_short_points)
    stop = k_hard if k_hard is not None else len(i)
    level = median_filter(i, size=window_points, mode="nearest")
    residual = i - level
    peaks, _ = find_peaks(residual[:stop], height=threshold, prominence=threshold, distance=min_spike_distance_points)
    k_rise = _first_sustained(level[:stop] >= baseline + threshold, sustain_points)
    candidates = [k for k in (k_rise, int(peaks[0]) if len(peaks) else None) if k is not None]
    k_onset = min(candidates) if candidates else None
    burnout = None
    if k_hard is not None:
        back = np.flatnonzero(i[k_hard:] <= baseline + threshold)
        burnout = float(t[k_hard + back[0]]) if len(back) else None
    times = t[peaks]
    amplitudes = residual[peaks]
    rate = 0.0
    if k_onset is not None:
        t_end = float(t[k_hard]) if k_hard is not None else float(t[-1])
        minutes = (t_end - float(t[k_onset])) / 60.0
        rate = len(peaks) / minutes if minutes > 0 else 0.0
    rho, slope = 0.0, 0.0
    if len(peaks) >= 3 and np.ptp(times) > 0:
        r = spearmanr(times, amplitudes).statistic
        rho = float(r) if math.isfinite(r) else 0.0
        slope = float(np.polyfit(times, amplitudes, 1)[0])
    return SpikeAnalysis(
        spike_count=int(len(peaks)), spike_time_s=times.tolist(), spike_amplitude_A=amplitudes.tolist(),
        spike_rate_per_min=float(rate), soft_short_onset_s=float(t[k_onset]) if k_onset is not None else None,
        hard_short_s=float(t[k_hard]) if k_hard is not None else None, burnout_s=burnout,
        baseline_A=baseline, noise_sigma_A=sigma, amplitude_growth_spearman=rho, amplitude_growth_A_per_s=slope,
    )
