"""An inorganic solid electrolyte under a constant bias shorting softly, then hard: the
current–time signature of seed 001's in situ TEM cells (LATP between a Li source and a Cu
electrode [001 L36, L50, L62–L64]), as a sourcemeter at its low current ranges sees it.

What the seed describes and the model does (times from the start of the bias, s; currents A):

* before the onset: the Faradaic current, at most ~10² pA [001 L36, L60]
  (``faradaic_current_A``), under the ammeter's noise of ≈ 0.5 nA [001 L64] (``noise_A``,
  Gaussian σ per reading);
* at ``onset_s`` "the current abruptly increased" [001 L64]: an electronic leakage of
  ``leakage_onset_A`` that keeps "building up" [001 L62] to ``leakage_final_A`` at the hard
  short (growing exponentially);
* "followed by high-frequency stochastic spikes": spikes arrive as a Poisson process of
  constant rate ``spike_rate_per_min`` ("the frequency … remains almost unchanged") with
  amplitudes growing exponentially from ``spike_amplitude_start_A`` to
  ``spike_amplitude_end_A`` ("to hundreds of nA") and a log-normal spread
  (``spike_amplitude_spread``); each lasts ``spike_duration_s`` (the non-Faradaic bursts are
  "much larger in amplitude and shorter in duration" [001 L64]);
* at ``hard_short_s`` the system "suddenly short-circuited" [001 L62]: the current is
  V / ``short_resistance_ohm`` (it reads in compliance if that is more than the compliance);
* at ``burnout_s`` "the current suddenly dropped to nearly zero … melting like a fuse"
  [001 L64]: an open circuit, only the noise remains.

The event times are model inputs: the seed's LATP particle shorted at 399.5 s [001 L56, L60]
(a bunch of particles at 341.5 s, GB cracking at 53.4 s [001 L64]); the onset, the spike rate
and the bias are NS (Fig. 3 only). The spike times and amplitudes are drawn once, seeded, for
the whole run, so a reading at time t returns the same current whenever it is taken. Sign: the
current has the sign of the applied voltage. Time is what :meth:`advance` has integrated (s).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["SoftShortParameters", "SoftShortJunction", "SOFT_SHORT_PRESETS"]


@dataclass(frozen=True)
class SoftShortParameters:
    """A solid electrolyte shorting under bias (model inputs; see the module doc)."""

    faradaic_current_A: float = 50e-12
    noise_A: float = 0.5e-9
    onset_s: float = 200.0
    leakage_onset_A: float = 2e-9
    leakage_final_A: float = 20e-9
    spike_rate_per_min: float = 40.0
    spike_amplitude_start_A: float = 5e-9
    spike_amplitude_end_A: float = 300e-9
    spike_amplitude_spread: float = 0.3
    spike_duration_s: float = 0.15
    hard_short_s: float = 399.5
    short_resistance_ohm: float = 1e5
    burnout_s: float = 402.0
    ionic_resistance_ohm: float = 1e11
    """What a current source sees before the short (V = I·R)."""
    duration_s: float = 3600.0
    """How far ahead spikes are drawn (s)."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("noise_A", "faradaic_current_A", "leakage_onset_A", "leakage_final_A", "spike_rate_per_min",
                     "spike_amplitude_spread"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        for name in ("spike_amplitude_start_A", "spike_amplitude_end_A", "spike_duration_s", "short_resistance_ohm",
                     "ionic_resistance_ohm", "duration_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not 0 <= self.onset_s < self.hard_short_s <= self.burnout_s:
            raise ValueError("need 0 <= onset_s < hard_short_s <= burnout_s")
        if self.duration_s > 30 * 86400 or self.spike_rate_per_min > 6000:
            raise ValueError("duration_s must be <= 30 days and spike_rate_per_min <= 6000")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SoftShortParameters:
        """The parameters a run file recorded (:meth:`as_dict`). Raises TypeError/ValueError."""
        return cls(**values)


#: LATP (single particle, [001 L56, L60]: short at 399.5 s); the LATP/polymer hybrid, whose
#: current "remains stable … close to the background noise" [001 L72, L112]: no onset within
#: the run (times beyond a day).
SOFT_SHORT_PRESETS: dict[str, SoftShortParameters] = {
    "latp": SoftShortParameters(),
    "latp_polymer": SoftShortParameters(onset_s=1e6, hard_short_s=2e6, burnout_s=2e6),
}


class SoftShortJunction:
    """The current through the electrolyte at a held voltage, in time (the
    :class:`drivers.sim.smu.Load` interface). Not thread-safe."""

    def __init__(self, params: SoftShortParameters | None = None) -> None:
        self.params = params or SoftShortParameters()
        p = self.params
        self.t_s = 0.0
        self._noise = random.Random(p.seed + 104729)
        rng = random.Random(p.seed)
        self.spike_times_s: list[float] = []
        self.spike_amplitudes_A: list[float] = []
        rate_per_s = p.spike_rate_per_min / 60.0
        t = p.onset_s
        end = min(p.hard_short_s, p.duration_s)
        while rate_per_s > 0:
            t += rng.expovariate(rate_per_s)
            if t >= end:
                break
            self.spike_times_s.append(t)
            self.spike_amplitudes_A.append(self._grown(p.spike_amplitude_start_A, p.spike_amplitude_end_A, t)
                                           * math.exp(rng.gauss(0.0, p.spike_amplitude_spread)))

    def _grown(self, start: float, end: float, t: float) -> float:
        """Exponential growth from ``start`` at the onset to ``end`` at the hard short."""
        p = self.params
        span = p.hard_short_s - p.onset_s
        return start * (end / start) ** (min(max(t - p.onset_s, 0.0), span) / span)

    def advance(self, dt_s: float, current_A: float) -> None:
        """Let ``dt_s`` (s) pass."""
        if dt_s > 0:
            self.t_s += dt_s

    def _magnitude_A(self, voltage_V: float) -> float:
        """|I| without noise at a held ``voltage_V`` (V) now."""
        p, t = self.params, self.t_s
        if t >= p.burnout_s:
            return 0.0
        if t >= p.hard_short_s:
            return abs(voltage_V) / p.short_resistance_ohm
        i = p.faradaic_current_A
        if t >= p.onset_s:
            i += self._grown(p.leakage_onset_A, p.leakage_final_A, t) if p.leakage_onset_A > 0 else 0.0
            k = bisect.bisect_right(self.spike_times_s, t) - 1
            if k >= 0 and t - self.spike_times_s[k] < p.spike_duration_s:
                i += self.spike_amplitudes_A[k]
        return i

    def current_A(self, voltage_V: float) -> float:
        """Current (A) at a held ``voltage_V`` (V) now, with the ammeter's noise."""
        i = math.copysign(self._magnitude_A(voltage_V), voltage_V) if voltage_V else 0.0
        return i + (self._noise.gauss(0.0, self.params.noise_A) if self.params.noise_A else 0.0)

    def voltage_V(self, current_A: float) -> float:
        """Voltage (V) with ``current_A`` (A) forced through: the short's or the ionic path's."""
        p, t = self.params, self.t_s
        if p.hard_short_s <= t < p.burnout_s:
            return current_A * p.short_resistance_ohm
        return current_A * p.ionic_resistance_ohm
