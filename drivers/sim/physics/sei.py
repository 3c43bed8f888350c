"""Stainless steel | solid electrolyte | Li with a growing SEI: the cell of a coulometric
titration time analysis (CTTA, Aktekin et al. in [003 L547–L555]: SS | LPSCl | Li at 25 °C,
~13 MPa [003 L551]).

Sign and voltage: V = V_SS − V_Li; titrating Li onto the steel is a negative current (V < 0).

The model (units in the names):

* Li on the steel, q_Li (µAh cm⁻²): a titration adds |j|·dt; the side reaction between Li and
  the electrolyte consumes it while any is left;
* SEI growth, parabolic (diffusion-limited growth through its own layer): the side-reaction
  charge q_SEI obeys dq_SEI/dt = k² / (2 q_SEI) while Li is present, so q_SEI = k·√t over the
  time with Li on the electrode — the √t law of [003 L555], k = ``sei_rate_uAh_cm2_h05``
  (µAh cm⁻² h^−½; NS in the seed, a model input). q_SEI starts at ``initial_sei_uAh_cm2``;
* potential: with Li on the steel V = 0 at rest (Li | Li), I·ASR − η on titration; once the Li
  is used up the steel's potential relaxes from 0 toward ``rest_potential_V`` with the time
  constant ``rise_time_s`` ("the rise in potential happens swiftly" in LPSCl [003 L555]), so
  a rest "until the potential reaches 0.05 V" ends soon after;
* noise: Gaussian, ``noise_V`` σ.

Model inputs: every field of :class:`SEIParameters`. The model produces the potential, the
time each titration's Li lasts and the side-reaction charge (1 µAh cm⁻² ≈ 9 nm of SEI
[003 L555]).
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["SEIParameters", "SEICell", "SEI_PRESETS"]


@dataclass(frozen=True)
class SEIParameters:
    """An SS | SSE | Li cell with a growing SEI (model inputs; see the module doc)."""

    area_cm2: float = 1.0
    temperature_C: float = 25.0
    asr_ohm_cm2: float = 150.0
    sei_rate_uAh_cm2_h05: float = 1.0
    initial_sei_uAh_cm2: float = 0.01
    rest_potential_V: float = 1.2
    rise_time_s: float = 30.0
    noise_V: float = 20e-6
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("area_cm2", "asr_ohm_cm2", "sei_rate_uAh_cm2_h05", "initial_sei_uAh_cm2", "rise_time_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if not (self.rest_potential_V > 0 and self.noise_V >= 0):
            raise ValueError("rest_potential_V must be > 0 and noise_V >= 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SEIParameters:
        """The parameters a run file recorded (:meth:`as_dict`). Raises TypeError/ValueError."""
        return cls(**values)


#: Named cells. SS | LPSCl | Li at 25 °C [003 L551]: LPSCl 0.9 mS cm⁻¹ [003 L374] (a ~1 mm pellet,
#: ≈ 110 Ω cm², + interfaces: 150 Ω cm², NS); k = 1 µAh cm⁻² h^−½ and the rest potential are NS.
SEI_PRESETS: dict[str, SEIParameters] = {"lpscl": SEIParameters()}


class SEICell:
    """State and response of one SS | SSE | Li cell (the :class:`drivers.sim.smu.Load`
    interface). Not thread-safe; time is the caller's (s)."""

    def __init__(self, params: SEIParameters | None = None) -> None:
        self.params = params or SEIParameters()
        self._rng = random.Random(self.params.seed)
        self.li_uAh_cm2 = 0.0
        self.sei_uAh_cm2 = self.params.initial_sei_uAh_cm2
        self.titrated_uAh_cm2 = 0.0
        self._since_empty_s = 0.0
        self._k2_per_s = (self.params.sei_rate_uAh_cm2_h05 ** 2) / 3600.0  # k² in (µAh cm⁻²)² s⁻¹

    def reconfigure(self, **changes: Any) -> None:
        """Replace parameters (e.g. ``temperature_C``); the state is kept."""
        self.params = replace(self.params, **changes)

    def advance(self, dt_s: float, current_A: float) -> None:
        """Integrate over ``dt_s`` (s) at ``current_A`` (A; < 0 titrates Li onto the steel)."""
        if dt_s <= 0:
            return
        p = self.params
        plated = max(0.0, -current_A) * dt_s / 3.6e-3 / p.area_cm2  # µAh cm⁻²
        stripped = max(0.0, current_A) * dt_s / 3.6e-3 / p.area_cm2
        self.titrated_uAh_cm2 += plated
        li = self.li_uAh_cm2 + plated - stripped
        if li <= 0.0:
            self.li_uAh_cm2 = 0.0
            self._since_empty_s += dt_s
            return
        # q_SEI² grows by k²·dt while Li lasts; the consumption is what it takes from the Li.
        grown = math.sqrt(self.sei_uAh_cm2 ** 2 + self._k2_per_s * dt_s)
        used = grown - self.sei_uAh_cm2
        if used <= li:
            self.sei_uAh_cm2, self.li_uAh_cm2 = grown, li - used
            self._since_empty_s = 0.0
            return
        # The Li runs out within dt: the SEI takes what is left; the rest of dt the steel is bare.
        q_end = self.sei_uAh_cm2 + li
        t_used = (q_end ** 2 - self.sei_uAh_cm2 ** 2) / self._k2_per_s
        self.sei_uAh_cm2, self.li_uAh_cm2 = q_end, 0.0
        self._since_empty_s = max(0.0, dt_s - t_used)

    def _voltage(self, current_A: float) -> float:
        p = self.params
        ohmic = current_A * 1e3 / p.area_cm2 * 1e-3 * p.asr_ohm_cm2
        if self.li_uAh_cm2 > 0.0 or current_A < 0:
            return ohmic
        return p.rest_potential_V * (1.0 - math.exp(-self._since_empty_s / p.rise_time_s)) + ohmic

    def voltage_V(self, current_A: float) -> float:
        """Terminal voltage (V) at ``current_A`` (A), with noise."""
        return self._voltage(current_A) + (self._rng.gauss(0.0, self.params.noise_V) if self.params.noise_V else 0.0)

    def current_A(self, voltage_V: float) -> float:
        """Current (A) at a held ``voltage_V`` (V): ohmic from the electrode's potential now."""
        p = self.params
        rest = self._voltage(0.0)
        return (voltage_V - rest) / (p.asr_ohm_cm2 / p.area_cm2)
