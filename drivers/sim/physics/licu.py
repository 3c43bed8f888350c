"""Li | solid electrolyte | Cu: lithium plated on a bare current collector and stripped back,
the Coulombic-efficiency cell of seed 000 (Li | FSE | Cu 99.1 % over cycles 500–700 [000 L136];
Li | LPSCl | Cu 20–70 %, shorted after 6 cycles [000 L143]).

Sign and voltage: V = V_Cu − V_Li; current positive = oxidation at the Cu (stripping, the
cycler's charge); plating Li onto the Cu is a negative current with V < 0 — Cu on the
instrument's working terminal, the usual cabling (``plating_sign = −1`` of
:func:`labctl.analysis.lithium_inventory.li_cu_efficiency`).

The model (per cell; units in the names):

* Li inventory on the Cu, q (mAh cm⁻²): plating adds (1 − f)·|j|·dt, the rest f becomes
  inactive (SEI, dead Li) at once; stripping removes |j|·dt while Li is left. f per plating
  half-cycle = 1 − CE/100 with CE relaxing from ``initial_coulombic_efficiency_pct`` to
  ``coulombic_efficiency_pct`` over the first ``formation_capacity_mAh_cm2`` plated, plus a
  Gaussian spread ``coulombic_efficiency_spread_pct`` drawn per half-cycle (seeded);
* voltage: V = −(|j|·ASR + η_nuc) on plating — ASR the electrolyte bulk and both interfaces,
  η_nuc = ``nucleation_overpotential_V``·exp(−q/q_nuc), the nucleation barrier on bare Cu
  fading over the first ``nucleation_capacity_mAh_cm2`` (Pei et al., Nano Lett. 17 (2017)
  1132: a nucleation overpotential that vanishes once Li covers the Cu); stripping:
  V = j·ASR/θ with θ = min(1, q/``coverage_capacity_mAh_cm2``) the covered fraction of the Cu,
  so the voltage rises over the last Li and reaches the cut-off while a little Li is left (it
  carries over to the next cycle); with no Li at all the Cu rests at ``cu_rest_potential_V``.
  At open circuit V = 0 with Li on the Cu, else the Cu's rest potential;
* failure (optional): after ``capacity_to_short_mAh_cm2`` plated in all (a Weibull draw of
  shape 3 around it, seeded) Li bridges the electrolyte: V = I·``short_resistance_ohm``;
* noise: Gaussian, ``noise_V`` σ.

Model inputs: every field of :class:`LiCuParameters`. The model produces the voltage curves,
the plated and stripped charge, CE per cycle and the short.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["LiCuParameters", "LiCuCell", "LICU_PRESETS"]


@dataclass(frozen=True)
class LiCuParameters:
    """A Li | SSE | Cu cell (model inputs; see the module doc)."""

    area_cm2: float = 1.13
    temperature_C: float = 25.0
    asr_ohm_cm2: float = 78.0
    coulombic_efficiency_pct: float = 99.1
    initial_coulombic_efficiency_pct: float = 90.0
    formation_capacity_mAh_cm2: float = 2.0
    coulombic_efficiency_spread_pct: float = 0.1
    nucleation_overpotential_V: float = 0.02
    nucleation_capacity_mAh_cm2: float = 0.002
    coverage_capacity_mAh_cm2: float = 0.25
    cu_rest_potential_V: float = 2.8
    capacity_to_short_mAh_cm2: float | None = None
    short_resistance_ohm: float = 0.5
    noise_V: float = 50e-6
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("area_cm2", "asr_ohm_cm2", "formation_capacity_mAh_cm2", "nucleation_capacity_mAh_cm2",
                     "coverage_capacity_mAh_cm2", "short_resistance_ohm"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in ("coulombic_efficiency_spread_pct", "nucleation_overpotential_V", "cu_rest_potential_V", "noise_V"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        for name in ("coulombic_efficiency_pct", "initial_coulombic_efficiency_pct"):
            if not 0.0 < getattr(self, name) <= 100.0:
                raise ValueError(f"{name} must be in (0, 100], got {getattr(self, name)!r}")
        if self.capacity_to_short_mAh_cm2 is not None and not self.capacity_to_short_mAh_cm2 > 0:
            raise ValueError("capacity_to_short_mAh_cm2 must be > 0 or None")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LiCuParameters:
        """The parameters a run file recorded (:meth:`as_dict`). Raises TypeError/ValueError."""
        return cls(**values)


#: Named Li | SSE | Cu cells with the seeds' numbers (area and temperature from the protocol).
LICU_PRESETS: dict[str, LiCuParameters] = {
    # Li | FSE | Cu: CE 99.1 % averaged over cycles 500–700, > 700 cycles [000 L136]; FSE total
    # 78 Ω cm² at 30 °C [000 L183]. First-cycle CE and its formation NS.
    "fse": LiCuParameters(),
    # Li | LPSCl | Cu: CE 20–70 %, fails (short) after 6 cycles [000 L143]; LPSCl 800 µm pellet at
    # 0.9 mS cm⁻¹ [000 L58, 003 L374] ≈ 90 Ω cm² bulk + interfaces (NS).
    "lpscl": LiCuParameters(asr_ohm_cm2=200.0, coulombic_efficiency_pct=45.0, initial_coulombic_efficiency_pct=45.0,
                            coulombic_efficiency_spread_pct=12.0, capacity_to_short_mAh_cm2=2.9),
}


class LiCuCell:
    """State and response of one Li | SSE | Cu cell (the :class:`drivers.sim.smu.Load`
    interface). Not thread-safe; time is the caller's (s)."""

    def __init__(self, params: LiCuParameters | None = None) -> None:
        self.params = params or LiCuParameters()
        p = self.params
        self._rng = random.Random(p.seed)
        self._noise = random.Random(p.seed + 7919)
        self.li_mAh_cm2 = 0.0
        """Active Li on the Cu (mAh cm⁻²)."""
        self.plated_mAh_cm2 = 0.0
        """All Li plated so far (mAh cm⁻²)."""
        self.inactive_mAh_cm2 = 0.0
        """Li lost to SEI and dead Li (mAh cm⁻²)."""
        self._plating = False
        self._loss = self._draw_loss()
        self.shorted = False
        self._short_at = (None if p.capacity_to_short_mAh_cm2 is None else
                          p.capacity_to_short_mAh_cm2 * (-math.log(1.0 - self._rng.random())) ** (1.0 / 3.0)
                          / math.gamma(1.0 + 1.0 / 3.0))

    def _draw_loss(self) -> float:
        """f of the next plating half-cycle."""
        p = self.params
        ce = p.coulombic_efficiency_pct + (p.initial_coulombic_efficiency_pct - p.coulombic_efficiency_pct) * math.exp(
            -self.plated_mAh_cm2 / p.formation_capacity_mAh_cm2)
        ce += self._rng.gauss(0.0, p.coulombic_efficiency_spread_pct) if p.coulombic_efficiency_spread_pct else 0.0
        return min(max(1.0 - ce / 100.0, 0.0), 1.0)

    def reconfigure(self, **changes: Any) -> None:
        """Replace parameters (e.g. ``temperature_C``); the state is kept."""
        self.params = replace(self.params, **changes)

    def advance(self, dt_s: float, current_A: float) -> None:
        """Integrate over ``dt_s`` (s) at ``current_A`` (A; < 0 plates Li on the Cu)."""
        if dt_s <= 0:
            return
        q = abs(current_A) * dt_s / 3.6 / self.params.area_cm2  # mAh cm⁻²
        if current_A < 0:
            if not self._plating:
                self._plating = True
                self._loss = self._draw_loss()
            self.li_mAh_cm2 += (1.0 - self._loss) * q
            self.inactive_mAh_cm2 += self._loss * q
            self.plated_mAh_cm2 += q
            if self._short_at is not None and self.plated_mAh_cm2 >= self._short_at:
                self.shorted = True
        elif current_A > 0:
            self._plating = False
            self.li_mAh_cm2 = max(0.0, self.li_mAh_cm2 - q)

    def _voltage(self, current_A: float) -> float:
        p = self.params
        if self.shorted:
            return current_A * p.short_resistance_ohm
        j = current_A * 1e3 / p.area_cm2  # mA cm⁻²
        ohmic = j * 1e-3 * p.asr_ohm_cm2  # V
        if current_A < 0:
            return ohmic - p.nucleation_overpotential_V * math.exp(-self.li_mAh_cm2 / p.nucleation_capacity_mAh_cm2)
        if self.li_mAh_cm2 <= 0.0:
            return p.cu_rest_potential_V + ohmic
        if current_A == 0:
            return 0.0
        theta = min(1.0, self.li_mAh_cm2 / p.coverage_capacity_mAh_cm2)
        return min(ohmic / theta, p.cu_rest_potential_V + ohmic)

    def voltage_V(self, current_A: float) -> float:
        """Terminal voltage (V) at ``current_A`` (A), with noise."""
        noise = self._noise.gauss(0.0, self.params.noise_V) if self.params.noise_V else 0.0
        return self._voltage(current_A) + noise

    def current_A(self, voltage_V: float) -> float:
        """Current (A) at a held ``voltage_V`` (V), by bisection on the monotonic V(I)."""
        lo, hi = -1.0, 1.0
        if self._voltage(lo) > voltage_V or self._voltage(hi) < voltage_V:
            return lo if self._voltage(lo) > voltage_V else hi
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if self._voltage(mid) < voltage_V:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)
