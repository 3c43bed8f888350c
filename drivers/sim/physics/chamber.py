"""The air temperature of a simulated climate chamber: a first-order lag with a ramp limit.

A chamber's controller drives its air toward the set point; far from it the heater or the
compressor is saturated and the air moves at the chamber's maximum rate, near it the approach
is exponential. :class:`ChamberThermal` models exactly that:

    dT/dt = clip((T_set − T) / τ, −r_cool, +r_heat)

solved in closed form (a linear ramp while |T_set − T| > r·τ, then T_set − (T_set − T)·e^(−t/τ)),
so any time step is exact and a virtual clock may jump hours at once. With the controller
idle the air drifts toward ambient with its own, longer time constant and no ramp limit.
Overshoot and the door are not modelled.

Every number of :class:`ChamberParameters` is a model input, typical of a 50–250 L benchtop
climate chamber (heating 2–4 K min⁻¹, cooling 1–3 K min⁻¹, settling over minutes); none is
taken from a datasheet. The model produces the air temperature (°C) at a time (s).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["ChamberParameters", "ChamberThermal", "advance_temperature_C"]


@dataclass(frozen=True)
class ChamberParameters:
    """Model inputs of a simulated chamber (see the module docstring).

    Raises:
        ValueError: a number is not finite, a time constant or rate is not positive, the noise
            is negative, or the set point range is empty or does not hold ``start_C``.
    """

    start_C: float = 25.0
    """Air temperature and set point at power-on (°C)."""
    ambient_C: float = 22.0
    """Room temperature the air drifts to while the controller is idle (°C)."""
    time_constant_s: float = 300.0
    """τ of the controlled approach to the set point (s)."""
    max_heating_K_min: float = 3.0
    """Fastest heating (K min⁻¹)."""
    max_cooling_K_min: float = 2.0
    """Fastest cooling (K min⁻¹)."""
    idle_time_constant_s: float = 3600.0
    """τ of the drift to ambient with the controller idle (s)."""
    noise_K: float = 0.03
    """Standard deviation of the sensor's reading noise (K); 0 for none."""
    min_setpoint_C: float = -40.0
    """Lowest set point the controller accepts (°C)."""
    max_setpoint_C: float = 180.0
    """Highest set point the controller accepts (°C)."""
    seed: int = 0
    """Seed of the reading noise."""

    def __post_init__(self) -> None:
        for name in ("start_C", "ambient_C", "time_constant_s", "max_heating_K_min", "max_cooling_K_min",
                     "idle_time_constant_s", "noise_K", "min_setpoint_C", "max_setpoint_C"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"chamber {name} must be finite, got {getattr(self, name)!r}")
        for name in ("time_constant_s", "max_heating_K_min", "max_cooling_K_min", "idle_time_constant_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"chamber {name} must be > 0, got {getattr(self, name)!r}")
        if self.noise_K < 0:
            raise ValueError(f"chamber noise_K must be ≥ 0, got {self.noise_K!r}")
        if not self.min_setpoint_C <= self.start_C <= self.max_setpoint_C:
            raise ValueError(f"chamber start_C {self.start_C:g} °C is outside its set point range "
                             f"{self.min_setpoint_C:g} … {self.max_setpoint_C:g} °C")


def advance_temperature_C(temperature_C: float, target_C: float, dt_s: float, time_constant_s: float,
                          max_heating_K_s: float = math.inf, max_cooling_K_s: float = math.inf) -> float:
    """The air temperature ``dt_s`` seconds later under dT/dt = clip((target − T)/τ, −r_cool, r_heat).

    Exact for any ``dt_s`` ≥ 0: a linear ramp at the saturated rate until |target − T| = r·τ,
    then the exponential approach. Rates in K s⁻¹ (``inf``: no limit). Units °C, s.
    """
    if dt_s <= 0:
        return temperature_C
    gap_K = target_C - temperature_C
    rate_K_s = max_heating_K_s if gap_K > 0 else max_cooling_K_s
    saturated_gap_K = rate_K_s * time_constant_s
    if abs(gap_K) > saturated_gap_K:
        ramp_s = (abs(gap_K) - saturated_gap_K) / rate_K_s
        if dt_s <= ramp_s:
            return temperature_C + math.copysign(rate_K_s * dt_s, gap_K)
        dt_s -= ramp_s
        gap_K = math.copysign(saturated_gap_K, gap_K)
    return target_C - gap_K * math.exp(-dt_s / time_constant_s)


class ChamberThermal:
    """The air of one chamber, advanced to whatever time it is asked about (thread-safe).

    Time never runs backwards: a question about a time before the last one answers for the
    last one. The target changes at the time it is set.

    Args:
        params: the model inputs.
        start_s: the clock's time at power-on (s).
    """

    def __init__(self, params: ChamberParameters, start_s: float) -> None:
        self.params = params
        self._t_s = float(start_s)
        self._temperature_C = params.start_C
        self._target_C: float | None = params.start_C
        self._rng = np.random.default_rng(params.seed)
        self._lock = threading.Lock()

    def _advance(self, now_s: float) -> None:
        dt_s = now_s - self._t_s
        if dt_s <= 0:
            return
        p = self.params
        if self._target_C is None:
            self._temperature_C = advance_temperature_C(self._temperature_C, p.ambient_C, dt_s, p.idle_time_constant_s)
        else:
            self._temperature_C = advance_temperature_C(
                self._temperature_C, self._target_C, dt_s, p.time_constant_s,
                p.max_heating_K_min / 60.0, p.max_cooling_K_min / 60.0)
        self._t_s = now_s

    def set_target(self, target_C: float | None, now_s: float) -> None:
        """From ``now_s`` on, control toward ``target_C`` (°C), or drift to ambient (None: idle)."""
        with self._lock:
            self._advance(now_s)
            self._target_C = None if target_C is None else float(target_C)

    def temperature_C(self, now_s: float) -> float:
        """The true air temperature at ``now_s`` (°C), without sensor noise: what a cell inside feels."""
        with self._lock:
            self._advance(now_s)
            return self._temperature_C

    def reading_C(self, now_s: float) -> float:
        """What the chamber's sensor reads at ``now_s`` (°C): the air temperature plus noise."""
        with self._lock:
            self._advance(now_s)
            noise = float(self._rng.normal(0.0, self.params.noise_K)) if self.params.noise_K > 0 else 0.0
            return self._temperature_C + noise
