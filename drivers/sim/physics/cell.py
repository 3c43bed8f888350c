"""Li | solid electrolyte | Li symmetric cell: the physics behind the simulated instruments.

The model, per unit area (current density ``j`` in mA cm⁻², positive = plating on the
working electrode):

* bulk ohmic drop, ASR_bulk = thickness / σ_ion (Ω cm²) — the σ = d/(R·S) relation of
  seed [000 L187–L189] solved for R·S;
* two Li | SSE interfaces, each with an interfacial ASR (Ω cm²) — seed [004 L44, L87] gives
  ~1000 Ω cm² bare LLZO, ~50 Ω cm² with the H.L. homogenising layer;
* Butler–Volmer kinetic overpotential at each interface, symmetric transfer coefficient
  α = 0.5: η = (2RT/F)·asinh(j / 2j₀) (Bard & Faulkner, Electrochemical Methods, eq. 3.4.11
  with α = 0.5);
* a critical current density (CCD, "the highest current density before a Li|LLZO|Li cell
  shorts", [004 L36]). While |j| > CCD a lithium filament grows with the charge passed;
  its length fraction ``f`` rises by |j|·dt / q_short. From ``f ≥ soft_short_fraction`` an
  electronic path in parallel with the cell flickers (soft short: a noisy, partly collapsing
  voltage, the "voltage spark" of [003 L508]); at ``f ≥ 1`` the filament bridges the
  electrolyte and the voltage collapses to I·R_short (hard short, [001 L54, L62–L64]).

Randomness (measurement noise, soft-short flicker) comes from one seeded generator, so a run
is exactly reproducible. Time is whatever the caller passes in (seconds, monotonic); the
cell has no clock of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

FARADAY_C_MOL = 96485.33212
GAS_CONSTANT_J_MOL_K = 8.314462618


@dataclass(frozen=True)
class CellParameters:
    """Parameters of a simulated Li | SSE | Li symmetric cell.

    Defaults are the Li | H.L.-LLZO | Li cell of seed 004: 300 µm pellet [004 L115],
    interfacial resistance ~50 Ω cm² [004 L87], CCD 1.8 mA cm⁻² at 25 °C [004 L87, L119].
    σ_ion 1 mS cm⁻¹ is the order the paper gives for LLZO [004 L36] (printed there as
    "10³", a typo for 10⁻³). Exchange current density, filament charge and short
    resistances are not in the seeds; they are model choices.
    """

    area_cm2: float = 1.0
    electrolyte_thickness_um: float = 300.0
    ionic_conductivity_S_cm: float = 1.0e-3
    interfacial_asr_ohm_cm2: float = 50.0
    """Per Li | SSE interface; the cell has two."""
    exchange_current_density_mA_cm2: float = 1.0
    temperature_C: float = 25.0
    ccd_mA_cm2: float = 1.8
    filament_charge_to_short_mAh_cm2: float = 0.02
    """Charge passed above the CCD for the filament to bridge the electrolyte."""
    soft_short_fraction: float = 0.5
    """Filament length fraction at which the soft short begins."""
    soft_short_asr_ohm_cm2: float = 60.0
    """Area-specific resistance of the electronic path at soft-short onset; it falls
    exponentially toward the hard-short resistance as the filament completes."""
    soft_short_flicker: float = 0.8
    """σ of the log-normal flicker of the soft-short conductance, per reading."""
    hard_short_resistance_ohm: float = 0.05
    noise_V: float = 20e-6
    """σ of the Gaussian measurement noise on the voltage."""
    seed: int = 0

    def __post_init__(self) -> None:
        positive = (
            "area_cm2",
            "electrolyte_thickness_um",
            "ionic_conductivity_S_cm",
            "exchange_current_density_mA_cm2",
            "ccd_mA_cm2",
            "filament_charge_to_short_mAh_cm2",
            "soft_short_asr_ohm_cm2",
            "hard_short_resistance_ohm",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.interfacial_asr_ohm_cm2 < 0 or self.noise_V < 0:
            raise ValueError("interfacial_asr_ohm_cm2 and noise_V must be >= 0")
        if not 0 < self.soft_short_fraction <= 1:
            raise ValueError("soft_short_fraction must be in (0, 1]")

    @property
    def bulk_asr_ohm_cm2(self) -> float:
        """Bulk area-specific resistance d/σ in Ω cm² ([000 L187–L189])."""
        return self.electrolyte_thickness_um * 1e-4 / self.ionic_conductivity_S_cm

    @property
    def ohmic_resistance_ohm(self) -> float:
        """Bulk plus both interfaces, in Ω, for the whole electrode area."""
        return (self.bulk_asr_ohm_cm2 + 2 * self.interfacial_asr_ohm_cm2) / self.area_cm2

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


#: Named cells with the seeds' numbers. Keys are what ``--cell`` and protocol files accept.
CELL_PRESETS: dict[str, CellParameters] = {
    # Li | H.L.-LLZO | Li: CCD 1.8 mA cm⁻², interface ~50 Ω cm², 25 °C [004 L87, L119].
    "hl_llzo": CellParameters(),
    # Li | Au-LLZO | Li: CCD ~0.2 mA cm⁻² [004 L87]. Interface value NS; between bare and H.L.
    "au_llzo": CellParameters(ccd_mA_cm2=0.2, interfacial_asr_ohm_cm2=200.0),
    # Li | LLZO | Li, no interlayer: CCD < 0.1 mA cm⁻², interface ~1000 Ω cm² [004 L44, L87].
    "bare_llzo": CellParameters(ccd_mA_cm2=0.08, interfacial_asr_ohm_cm2=1000.0),
    # Li⁰ | FSE (140 µm) | Li⁰ at 50 °C: CCD 9 mA cm⁻² [000 L141, L175, L183];
    # 1.5 mS cm⁻¹ at 30 °C [000 L64]; R_CT 37 Ω cm² at 50 °C [000 L183]; 1.13 cm² [000 L183].
    "fse_50C": CellParameters(
        area_cm2=1.13,
        electrolyte_thickness_um=140.0,
        ionic_conductivity_S_cm=1.5e-3,
        interfacial_asr_ohm_cm2=18.5,
        exchange_current_density_mA_cm2=5.0,
        temperature_C=50.0,
        ccd_mA_cm2=9.0,
    ),
    # Li⁰ | FSE (350 µm) | Li⁰ at room temperature, for long cycling [000 L58, L64, L183]:
    # 1.5 mS cm⁻¹ and R_CT 47 Ω cm² at 30 °C; CCD at r.t. not stated (NS): 3 mA cm⁻².
    "fse_rt": CellParameters(
        area_cm2=1.13,
        electrolyte_thickness_um=350.0,
        ionic_conductivity_S_cm=1.5e-3,
        interfacial_asr_ohm_cm2=23.5,
        exchange_current_density_mA_cm2=2.0,
        temperature_C=25.0,
        ccd_mA_cm2=3.0,
    ),
}


class SymmetricCell:
    """State and response of one Li | SSE | Li symmetric cell.

    Use :meth:`advance` to integrate the filament over a period at a given current, then
    :meth:`voltage_V` / :meth:`current_A` for the operating point at an applied current or
    voltage. Not thread-safe; the instrument model that owns it serialises access.
    """

    def __init__(self, params: CellParameters | None = None) -> None:
        self.params = params or CellParameters()
        self._rng = random.Random(self.params.seed)
        self.filament_fraction = 0.0
        self.charge_passed_C = 0.0
        self._thermal_V = GAS_CONSTANT_J_MOL_K * (self.params.temperature_C + 273.15) / FARADAY_C_MOL

    def reconfigure(self, **changes: float) -> None:
        """Replace parameters (e.g. ``ccd_mA_cm2=0.5``); the filament state is kept."""
        self.params = replace(self.params, **changes)
        self._thermal_V = GAS_CONSTANT_J_MOL_K * (self.params.temperature_C + 273.15) / FARADAY_C_MOL

    @property
    def shorted(self) -> bool:
        """True once the filament bridges the electrolyte (hard short)."""
        return self.filament_fraction >= 1.0

    @property
    def soft_shorted(self) -> bool:
        return self.filament_fraction >= self.params.soft_short_fraction

    def advance(self, dt_s: float, current_A: float) -> None:
        """Integrate the cell state over ``dt_s`` seconds at a constant ``current_A``.

        The filament grows only while |j| exceeds the CCD, by |j|·dt / q_short.
        """
        if dt_s <= 0:
            return
        p = self.params
        self.charge_passed_C += current_A * dt_s
        j_mA_cm2 = abs(current_A) * 1e3 / p.area_cm2
        # Relative tolerance: a step programmed at exactly the CCD (1.8 mA cm⁻² from
        # 0.1 × 18 in floating point) must not count as above it.
        if j_mA_cm2 > p.ccd_mA_cm2 * (1 + 1e-9) and not self.shorted:
            growth = j_mA_cm2 * dt_s / (p.filament_charge_to_short_mAh_cm2 * 3600.0)
            self.filament_fraction = min(1.0, self.filament_fraction + growth)

    def _ionic_voltage_V(self, current_A: float) -> float:
        """Voltage across the ionic path (ohmic + two Butler–Volmer overpotentials)."""
        p = self.params
        j = current_A * 1e3 / p.area_cm2
        eta = 2.0 * self._thermal_V * math.asinh(j / (2.0 * p.exchange_current_density_mA_cm2))
        return current_A * p.ohmic_resistance_ohm + 2.0 * eta

    def _electronic_resistance_ohm(self) -> float:
        """Resistance of the filament path in parallel with the cell (inf before soft short)."""
        p = self.params
        if self.shorted:
            return p.hard_short_resistance_ohm
        if not self.soft_shorted:
            return math.inf
        progress = (self.filament_fraction - p.soft_short_fraction) / max(1.0 - p.soft_short_fraction, 1e-12)
        r_onset = p.soft_short_asr_ohm_cm2 / p.area_cm2
        r = r_onset * (p.hard_short_resistance_ohm / r_onset) ** progress
        return r * math.exp(self._rng.gauss(0.0, p.soft_short_flicker))

    def voltage_V(self, current_A: float) -> float:
        """Terminal voltage (V) when ``current_A`` is forced through the cell, with noise."""
        r_e = self._electronic_resistance_ohm()
        if math.isinf(r_e):
            v = self._ionic_voltage_V(current_A)
        else:
            # The current divides between the ionic path and the filament: with x the ionic
            # current, I = x + V_ion(x) / r_e is monotonic in x; solve it once, V = V_ion(x).
            x = self._solve(lambda x_: x_ + self._ionic_voltage_V(x_) / r_e, current_A)
            v = self._ionic_voltage_V(x)
        return v + (self._rng.gauss(0.0, self.params.noise_V) if self.params.noise_V else 0.0)

    def ionic_current_A(self, voltage_V: float) -> float:
        """Current (A) through the ionic path at a terminal voltage (inverse of the ionic V(I))."""
        return self._solve(self._ionic_voltage_V, voltage_V)

    def current_A(self, voltage_V: float) -> float:
        """Current (A) the cell draws when ``voltage_V`` is applied across it."""
        r_e = self._electronic_resistance_ohm()
        i_e = 0.0 if math.isinf(r_e) else voltage_V / r_e
        return self.ionic_current_A(voltage_V) + i_e

    @staticmethod
    def _solve(f, target: float) -> float:
        """x with f(x) = target for monotonically increasing f, by bracketing and bisection."""
        if target == 0:
            return 0.0
        lo, hi = 0.0, math.copysign(1e-6, target)
        while (f(hi) - target) * math.copysign(1, target) < 0:
            lo, hi = hi, hi * 4
            if abs(hi) > 1e9:
                return hi
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            if (f(mid) - target) * math.copysign(1, target) < 0:
                lo = mid
            else:
                hi = mid
            if abs(hi - lo) <= 1e-12 * max(abs(hi), 1e-15):
                break
        return 0.5 * (lo + hi)


def cells_for_channels(cell: CellParameters | Sequence[CellParameters] | None, channels: int) -> list[CellParameters]:
    """One cell per channel of a simulated multichannel instrument (cycler).

    ``cell`` a sequence: one per channel, as given; a single cell (default
    :class:`CellParameters`): that cell on every channel, channel k seeded ``seed + k`` so
    the channels differ as real cells do.

    Raises:
        ValueError: a sequence whose length is not ``channels``.
    """
    if isinstance(cell, Sequence):
        if len(cell) != channels:
            raise ValueError(f"{len(cell)} cell parameter sets for {channels} channels")
        return list(cell)
    base = cell or CellParameters()
    return [replace(base, seed=base.seed + k) for k in range(channels)]
