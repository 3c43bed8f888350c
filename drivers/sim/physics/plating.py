"""Plating in one direction until the cell shorts: the continuous-plating test of seed 000
("short-circuiting time" at 0.2 mA cm⁻²: Li | LPSCl | Li shorted at 1.2 mAh cm⁻², PolyEA-IL at
1.6, the FSE stable beyond 12 mAh cm⁻² [000 L87]).

A Li | SSE | Li cell below its critical current density does not short by the CCD mechanism of
:class:`drivers.sim.physics.cell.SymmetricCell`; plated long enough in one direction, Li still
works its way through pores and grain boundaries until it bridges the electrolyte. This model
wraps a symmetric cell (any :class:`drivers.sim.smu.Load`; its voltage is the healthy cell's)
and adds that failure, by the areal capacity plated in one direction (units in the names):

* q, the areal charge plated since the current last changed direction (mAh cm⁻²; a reversal
  strips the protrusion back and q restarts);
* the short happens at q* = ``capacity_to_short_mAh_cm2`` × a log-normal factor of σ
  ``capacity_to_short_spread`` (drawn once, seeded): from q* − ``soft_short_window_mAh_cm2``
  a flickering electronic path in parallel (its resistance falling log-linearly from
  ``soft_short_resistance_ohm`` to ``short_resistance_ohm``, log-normal flicker
  ``soft_short_flicker`` per reading) — the soft short; from q*, V = I·``short_resistance_ohm``
  — the hard short [001 L62–L64].

Model inputs: the fields of :class:`PlatingParameters` (the capacity to short is the seed's
measured value); the model produces the voltage and the time of the short.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["PlatingParameters", "PlatingToShortCell", "PLATING_PRESETS"]


@dataclass(frozen=True)
class PlatingParameters:
    """The failure added to a symmetric cell (model inputs; see the module doc)."""

    area_cm2: float = 1.13
    capacity_to_short_mAh_cm2: float = 1.2
    capacity_to_short_spread: float = 0.05
    soft_short_window_mAh_cm2: float = 0.05
    soft_short_resistance_ohm: float = 2000.0
    soft_short_flicker: float = 0.8
    short_resistance_ohm: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("area_cm2", "capacity_to_short_mAh_cm2", "soft_short_resistance_ohm", "short_resistance_ohm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in ("capacity_to_short_spread", "soft_short_window_mAh_cm2", "soft_short_flicker"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PlatingParameters:
        """The parameters a run file recorded (:meth:`as_dict`). Raises TypeError/ValueError."""
        return cls(**values)


#: Capacity to short at 0.2 mA cm⁻² [000 L87]; the FSE did not short within 12 mAh cm⁻²
#: (40 here, an assumption beyond what was measured).
PLATING_PRESETS: dict[str, PlatingParameters] = {
    "lpscl": PlatingParameters(capacity_to_short_mAh_cm2=1.2),
    "polyea_il": PlatingParameters(capacity_to_short_mAh_cm2=1.6),
    "fse": PlatingParameters(capacity_to_short_mAh_cm2=40.0),
}


class PlatingToShortCell:
    """A symmetric cell (``base``) that shorts after plating q* in one direction (the
    :class:`drivers.sim.smu.Load` interface). Not thread-safe."""

    def __init__(self, base: Any, params: PlatingParameters | None = None) -> None:
        self.base = base
        self.params = params or PlatingParameters()
        p = self.params
        rng = random.Random(p.seed)
        self._flicker = random.Random(p.seed + 15485863)
        self.capacity_to_short_mAh_cm2 = p.capacity_to_short_mAh_cm2 * math.exp(rng.gauss(0.0, p.capacity_to_short_spread))
        self.plated_mAh_cm2 = 0.0
        self._direction = 0.0

    @property
    def shorted(self) -> bool:
        return self.plated_mAh_cm2 >= self.capacity_to_short_mAh_cm2

    def advance(self, dt_s: float, current_A: float) -> None:
        """Integrate over ``dt_s`` (s) at ``current_A`` (A)."""
        if dt_s <= 0:
            return
        self.base.advance(dt_s, current_A)
        if current_A == 0:
            return
        direction = math.copysign(1.0, current_A)
        if direction != self._direction and not self.shorted:
            self.plated_mAh_cm2 = 0.0
        self._direction = direction
        self.plated_mAh_cm2 += abs(current_A) * dt_s / 3.6 / self.params.area_cm2

    def _parallel_ohm(self) -> float:
        """The electronic path's resistance now (inf before the soft short)."""
        p = self.params
        q, q_star = self.plated_mAh_cm2, self.capacity_to_short_mAh_cm2
        if q >= q_star:
            return p.short_resistance_ohm
        start = q_star - p.soft_short_window_mAh_cm2
        if q < start or p.soft_short_window_mAh_cm2 == 0:
            return math.inf
        progress = (q - start) / p.soft_short_window_mAh_cm2
        r = p.soft_short_resistance_ohm * (p.short_resistance_ohm / p.soft_short_resistance_ohm) ** progress
        return r * math.exp(self._flicker.gauss(0.0, p.soft_short_flicker))

    def voltage_V(self, current_A: float) -> float:
        """Terminal voltage (V) at ``current_A`` (A): the base cell's, or with the electronic
        path r in parallel: the cell's chord resistance R = V_cell(I)/I in parallel with r."""
        r = self._parallel_ohm()
        v_cell = self.base.voltage_V(current_A)
        if math.isinf(r) or current_A == 0:
            return v_cell
        if self.shorted:
            return current_A * r
        chord = v_cell / current_A
        return current_A * chord * r / (chord + r) if chord > 0 else v_cell

    def current_A(self, voltage_V: float) -> float:
        """Current (A) at a held ``voltage_V`` (V)."""
        r = self._parallel_ohm()
        return self.base.current_A(voltage_V) + (0.0 if math.isinf(r) else voltage_V / r)
