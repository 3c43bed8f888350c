"""The short detector's rules, each on the signal it is about (labctl.checks.ShortDetector)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.checks import ShortDetection, ShortDetector, first_short, looks_like_full_cell


def half_cycle(level_V: float, n: int, noise_V: float, rng: np.random.Generator, *, sign: float = 1.0,
               previous_V: float | None = None, dt_s: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One galvanostatic half-cycle of a symmetric cell: (V, I, t). After a reversal the voltage
    starts at the last half-cycle's value less the ohmic jump and relaxes through zero to the new
    level (time constant 3 readings), as gcpl.mpr does within ~10 ms."""
    k = np.arange(n)
    start = -sign * level_V * 0.9 if previous_V is None else previous_V * 0.92
    v = sign * level_V + (start - sign * level_V) * np.exp(-k / 3.0) + rng.normal(0.0, noise_V, n)
    return v, np.full(n, sign * 1e-3), k * dt_s


def run(detector: ShortDetector, *segments) -> list[tuple[int, int, str] | None]:
    """Feed half-cycles (one step each, reset before each); per step the first flag or None."""
    out = []
    for step, (v, i, t) in enumerate(segments):
        detector.reset()
        found = first_short(detector, v, i, t)
        out.append(None if found is None else (step, found[0], found[1]))
    return out


def test_a_reversal_through_zero_is_not_a_short_but_a_collapse_of_the_same_sign_is() -> None:
    rng = np.random.default_rng(1)
    det = ShortDetector(ShortDetection())
    steps, last = [], None
    for k in range(6):
        seg = half_cycle(0.105, 300, 30e-6, rng, sign=(-1) ** k, previous_V=last)
        last = seg[0][-1]
        steps.append(seg)
    assert run(det, *steps) == [None] * 6
    v, i, t = half_cycle(0.105, 300, 30e-6, rng, sign=1.0, previous_V=last)
    v[150:] = rng.normal(40e-6, 30e-6, 150)  # I·R_short
    (found,) = run(det, (v, i, t))
    assert found is not None and found[2] == "short" and found[1] == 152  # the third reading down


def test_a_step_shorted_from_its_first_reading() -> None:
    rng = np.random.default_rng(2)
    v = rng.normal(0.0, 30e-6, 50)
    assert run(ShortDetector(ShortDetection()), (v, np.full(50, 1e-3), np.arange(50.0))) == [(0, 4, "short")]


def test_the_noise_baseline_is_the_cells_not_a_few_lucky_readings() -> None:
    """0.5 mV of noise, a step whose first readings happen to be quiet (σ/8): judged against the
    cell's carried baseline, its later ordinary noise is no soft short. (With the step's own
    10-reading estimate the FSE cell at 0.5 mV noise was ended after 70 h.)"""
    rng = np.random.default_rng(3)
    det = ShortDetector(ShortDetection())
    steps = [half_cycle(0.016, 60, 0.5e-3, rng, sign=(-1) ** k) for k in range(8)]
    quiet = half_cycle(0.016, 240, 0.5e-3, rng)
    quiet[0][5:20] = 0.016 + rng.normal(0.0, 0.5e-3 / 8, 15)
    assert run(det, *steps, quiet) == [None] * 9
    assert det.baseline_noise_V == pytest.approx(0.5e-3, rel=0.3)
    # the same step judged by a fresh detector (its own estimate only) is flagged
    assert run(ShortDetector(ShortDetection()), quiet)[0][2] == "soft_short"


def test_a_step_noisier_from_its_start_raises_the_reference() -> None:
    """The instrument switching to a coarser range: 4× the noise from the step's first reading
    is judged against that step's own noise, not the quieter cell's."""
    rng = np.random.default_rng(4)
    det = ShortDetector(ShortDetection())
    steps = [half_cycle(0.1, 200, 50e-6, rng, sign=(-1) ** k) for k in range(8)]
    steps.append(half_cycle(0.1, 400, 200e-6, rng))
    assert run(det, *steps) == [None] * 9


def test_stochastic_spikes_are_a_soft_short() -> None:
    """A flickering parallel path [001 L64]: dips of 10–60 % on one reading in two."""
    rng = np.random.default_rng(5)
    det = ShortDetector(ShortDetection())
    steps = [half_cycle(0.1, 200, 30e-6, rng, sign=(-1) ** k) for k in range(4)]
    v, i, t = half_cycle(0.1, 200, 30e-6, rng)
    v[100::2] *= 1 - rng.uniform(0.1, 0.6, len(v[100::2]))
    found = run(det, *steps, (v, i, t))
    assert found[:4] == [None] * 4 and found[4][2] == "soft_short" and 100 <= found[4][1] <= 110


def test_a_full_cell_is_judged_on_its_voltage_not_its_sign() -> None:
    """A Li-ion discharge (V > 0, I < 0) then a charge: healthy; a collapse on discharge, and a
    discharge that starts shorted after healthy steps, are shorts."""
    rng = np.random.default_rng(6)
    n = 400
    discharge = (np.linspace(4.1, 3.0, n) + rng.normal(0, 50e-6, n), np.full(n, -1e-3), np.arange(n, dtype=float))
    charge = (np.linspace(3.3, 4.2, n) + rng.normal(0, 50e-6, n), np.full(n, 1e-3), np.arange(n, dtype=float))
    det = ShortDetector(ShortDetection(full_cell=True))
    assert run(det, discharge, charge, discharge, charge) == [None] * 4
    v = discharge[0].copy()
    v[200:] = rng.normal(5e-3, 50e-6, n - 200)
    assert run(det, (v, discharge[1], discharge[2]))[0][1:] == (202, "short")
    started = (rng.normal(6e-3, 50e-6, n), discharge[1], discharge[2])
    assert run(det, charge, started)[1][2] == "short"
    assert looks_like_full_cell(np.r_[discharge[0], charge[0]], np.r_[discharge[1], charge[1]])
    # the sign-aware judgement of a symmetric cell would see every discharge reading as reversed
    assert run(ShortDetector(ShortDetection()), discharge) == [None]


def test_a_symmetric_cell_does_not_look_like_a_full_cell() -> None:
    rng = np.random.default_rng(7)
    segs = [half_cycle(0.105, 300, 30e-6, rng, sign=(-1) ** k) for k in range(4)]
    assert not looks_like_full_cell(np.concatenate([s[0] for s in segs]), np.concatenate([s[1] for s in segs]))


def test_the_detector_holds_a_bounded_state_per_reading() -> None:
    """O(1) per reading: after 200 000 readings of one step its buffers hold at most their
    configured lengths."""
    cfg = ShortDetection()
    det = ShortDetector(cfg)
    det.reset()
    rng = np.random.default_rng(8)
    v = 0.1 + rng.normal(0, 30e-6, 200_000)
    assert first_short(det, v, np.full(len(v), 1e-3)) is None
    assert len(det._d2) <= cfg.baseline_points and len(det._spikes) <= cfg.noise_window
    assert len(det._history) <= cfg.baseline_steps and math.isfinite(det.baseline_noise_V)
