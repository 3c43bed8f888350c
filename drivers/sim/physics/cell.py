"""Li | solid electrolyte | Li (or SS) cell: the physics behind the simulated instruments.

One set of parameters gives the cell's DC behaviour, its transients and its impedance, so a
simulated EIS spectrum and a simulated galvanostatic trace of the same cell agree. The cell is,
in series (per unit area; Ω cm², F s^(α−1) cm⁻²):

* bulk resistance R_b = d / σ_ion ([000 L187–L189] solved for R·S);
* grain boundaries R_gb ‖ CPE_gb (the R2‖CPE2 arc of [003 L80], Q ~ 10⁻⁶ F s^(α−1));
* two electrode interfaces. A Li interface is a charge-transfer resistance R_int ‖ CPE_dl
  (R_int = R_SEI + R_CT [003 L82]; Q ~ 10⁻⁴–10⁻² F s^(α−1) [003 L82]) whose faradaic current
  follows Butler–Volmer with α = 0.5, I_F = 2 I₀ sinh(F η / 2RT), and I₀ = RT / (F R_int):
  the linearised kinetics *are* R_int, so charge transfer is counted once. A stainless-steel
  (SS) interface is blocking (CPE only); in a Li | SSE | SS cell it oxidises the electrolyte
  above ``oxidation_onset_V`` (Tafel) and plates Li below 0 V;
* concentration (diffusion) polarisation when t_Li+ < 1: a finite-length Warburg ``Ws`` with
  R_d = R_b (1/t₊ − 1) (the Bruce–Vincent steady state, [002 L41–L43]) and τ_d = (d/2)² / D;
* in parallel with all of it: the electrolyte's electronic conductivity, R_e = d / σ_e
  ([000 L185], [003 L386]), and, once a lithium filament grows, its path (below).

Time domain. The double layers, the grain-boundary arc and the diffusion element hold state:
after a current reversal the terminal voltage jumps by the ohmic part only and the
overpotentials relax (milliseconds for the double layers, τ_d for diffusion), so |V| rises
within a half-cycle as real traces do. ``advance(dt, I)`` integrates the state: exactly for
the linear elements (exponential of the R‖C with the CPE's effective capacitance), with the
Butler–Volmer interface relaxing towards its exact steady state. The Warburg element is its
partial-fraction series of R‖C terms (:func:`drivers.sim.physics.impedance.warburg_foster_terms`).
What :meth:`advance` holds constant is whichever the caller last set: after ``voltage_V(I)``
the current (a galvanostat), after ``current_A(V)`` the voltage (a potentiostat, or a current
source clamped at its compliance) — then the ionic current is solved for at each step.

Temperature (Arrhenius, k(T)/k(T_ref) = exp(−E_a/k_B · (1/T − 1/T_ref)), the form of
[002 L37]): σ_ion, the grain boundaries, R_int (hence I₀), σ_e, D and the CCD. Parameters are
given at ``reference_temperature_C``; ``temperature_C`` is where the cell is.

Failure. The CCD ("the highest current density before a Li|LLZO|Li cell shorts", [004 L36])
depends on temperature (with the interface, [003 L179]), stack pressure ([003 L158, L166]) and
the areal capacity passed in the half-cycle ([003 L156, L176]); it equals ``ccd_mA_cm2`` at the
reference conditions. While |j| exceeds it — or once an optional stochastic lifetime has
elapsed (Weibull in hours under current, for the baseline electrolytes of [000 L64]) — a
lithium filament grows with the charge passed; from ``soft_short_fraction`` an electronic path
in parallel flickers (soft short: stochastic spikes, [001 L64], the "voltage spark" of
[003 L508]); at 1 it bridges the electrolyte and V collapses to I·R_short (hard short,
[001 L54, L62–L64]). The interface evolves with the charge cycled through it (seed 004:
~50 → ~14 Ω cm² after cycling [004 L87]).

Randomness (noise, flicker, lifetime) comes from seeded generators: a run is reproducible.
Time is whatever the caller passes (seconds); the cell has no clock of its own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from drivers.sim.physics.impedance import effective_capacitance_F, finite_warburg, parallel, r_cpe, cpe, \
    warburg_foster_terms

__all__ = ["CellParameters", "CELL_PRESETS", "CELL_PRESET_LABELS", "SymmetricCell", "cells_for_channels",
           "arrhenius_factor", "BOLTZMANN_EV_K", "FARADAY_C_MOL", "GAS_CONSTANT_J_MOL_K", "LI_UM_PER_MAH_CM2"]

FARADAY_C_MOL = 96485.33212
GAS_CONSTANT_J_MOL_K = 8.314462618
BOLTZMANN_EV_K = 8.617333262e-5
#: Li thickness per areal capacity: 1 mAh cm⁻² ≈ 4.85 µm ([003 L176] says 4.9 µm).
LI_UM_PER_MAH_CM2 = 3.6 / FARADAY_C_MOL * 6.941 / 0.534 * 1e4
#: Partial-fraction terms of the Warburg element kept in the time domain.
_WARBURG_TERMS = 10
_ELECTRODES = ("li", "ss", "li_ss")


def arrhenius_factor(activation_energy_eV: float, temperature_C: float, reference_temperature_C: float) -> float:
    """k(T) / k(T_ref) for a thermally activated rate or conductance:
    exp(−E_a/k_B · (1/T − 1/T_ref)) ([002 L37]: σ_T = A·exp(−E_a/RT)). Exactly 1.0 at T_ref."""
    if temperature_C == reference_temperature_C:
        return 1.0
    t, t_ref = temperature_C + 273.15, reference_temperature_C + 273.15
    return math.exp(-activation_energy_eV / BOLTZMANN_EV_K * (1.0 / t - 1.0 / t_ref))


@dataclass(frozen=True)
class CellParameters:
    """Parameters of a simulated Li | SSE | Li (or SS | SSE | SS, Li | SSE | SS) cell: model inputs.

    Values are at ``reference_temperature_C`` (and, for the CCD, ``reference_stack_pressure_MPa``
    and areal capacities up to ``ccd_capacity_limit_mAh_cm2``); the model produces the rest (see
    the properties and :class:`SymmetricCell`). Defaults: the Li | H.L.-LLZO | Li cell of seed 004
    (300 µm [004 L115], interface ~50 → ~14 Ω cm² after cycling [004 L87], CCD 1.8 mA cm⁻² at
    25 °C [004 L87, L119]); σ_ion 1 mS cm⁻¹ is the order of [004 L36] (printed "10³", a typo).
    Numbers the seeds do not state are model choices, marked NS in ``docs/cell-presets.md``.

    Raises:
        ValueError: a value out of range (one line naming the field).
    """

    # -- geometry and conditions ---------------------------------------------------------------
    area_cm2: float = 1.0
    electrolyte_thickness_um: float = 300.0
    electrodes: str = "li"
    """``li`` (Li | SSE | Li), ``ss`` (SS | SSE | SS, blocking: conductivity, DC polarisation)
    or ``li_ss`` (Li | SSE | SS: LSV, plating on SS)."""
    li_thickness_um: float = 100.0
    """Li foil per electrode (metadata: the model does not deplete it; the seeds' half-cycles
    strip ≤ 1 mAh cm⁻² ≈ 4.9 µm [003 L176] of 100–250 µm)."""
    temperature_C: float = 25.0
    reference_temperature_C: float = 25.0
    stack_pressure_MPa: float = 0.0
    reference_stack_pressure_MPa: float = 0.0
    # -- bulk and grain boundaries ----------------------------------------------------------------
    ionic_conductivity_S_cm: float = 1.0e-3
    """Bulk (grain) Li⁺ conductivity: R_b = d / σ."""
    ionic_activation_energy_eV: float = 0.40
    grain_boundary_ratio: float = 0.0
    """R_gb / R_b at the reference temperature (0: no grain-boundary arc)."""
    grain_boundary_activation_energy_eV: float = 0.40
    grain_boundary_cpe_q: float = 1.0e-6
    """Q of the grain-boundary CPE, F s^(α−1) cm⁻² ([003 L80]: ~10⁻⁶)."""
    grain_boundary_cpe_alpha: float = 0.9
    # -- interfaces --------------------------------------------------------------------------------
    interfacial_asr_ohm_cm2: float = 50.0
    """Per Li | SSE interface (the cell has two), as assembled: R_int = R_SEI + R_CT [003 L82].
    It is the only charge-transfer parameter: I₀ = RT / (F·R_int)."""
    interfacial_asr_after_cycling_ohm_cm2: float = 14.0
    """What R_int tends to as charge is cycled through the interface ([004 L87]: ~50 → ~14)."""
    interface_evolution_mAh_cm2: float = 5.0
    """Charge (|q| summed over both directions) over which R_int moves 63 % of the way."""
    interface_activation_energy_eV: float = 0.17
    double_layer_cpe_q: float = 1.0e-4
    """Q of each interface's CPE, F s^(α−1) cm⁻² ([003 L82]: 10⁻⁴–10⁻²)."""
    double_layer_cpe_alpha: float = 0.9
    open_circuit_voltage_V: float = 2.5
    """SS vs Li at rest (``li_ss`` only)."""
    oxidation_onset_V: float = 5.0
    """SS vs Li where the oxidation current reaches ``oxidation_onset_current_density_mA_cm2``."""
    oxidation_onset_current_density_mA_cm2: float = 0.01
    oxidation_tafel_slope_mV: float = 100.0
    """mV per decade of the oxidation current above onset."""
    oxidation_activation_energy_eV: float = 0.5
    # -- transport numbers -------------------------------------------------------------------------
    transference_number: float = 1.0
    """t_Li+ (1: single-ion conductor, no concentration polarisation)."""
    salt_diffusion_coefficient_cm2_s: float = 5.0e-8
    electronic_conductivity_S_cm: float = 1.0e-8
    electronic_activation_energy_eV: float = 0.40
    # -- critical current density and failure ------------------------------------------------------
    ccd_mA_cm2: float = 1.8
    """CCD at the reference temperature and pressure, for half-cycles up to
    ``ccd_capacity_limit_mAh_cm2``."""
    ccd_capacity_limit_mAh_cm2: float = 1.0
    """Areal capacity per half-cycle up to which the CCD does not depend on it; beyond, it
    falls as (limit / q)^½ (voids on stripping, [003 L154, L176])."""
    ccd_pressure_scale_MPa: float = 1.0
    ccd_pressure_exponent: float = 0.5
    """CCD ∝ ((P + P₀) / (P_ref + P₀))^n ([003 L158, L166]; form and numbers NS)."""
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
    lifetime_h: float | None = None
    """Characteristic (Weibull scale) life in hours under current; None: no stochastic failure."""
    lifetime_weibull_shape: float = 3.0
    # -- measurement ------------------------------------------------------------------------------
    noise_V: float = 30e-6
    """σ of the Gaussian noise on the voltage (the real gcpl.mpr shows 29–41 µV)."""
    seed: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{f.name} must be finite, got {value!r}")
        positive = (
            "area_cm2", "electrolyte_thickness_um", "li_thickness_um", "ionic_conductivity_S_cm",
            "interfacial_asr_ohm_cm2", "interfacial_asr_after_cycling_ohm_cm2", "interface_evolution_mAh_cm2",
            "grain_boundary_cpe_q", "double_layer_cpe_q", "salt_diffusion_coefficient_cm2_s",
            "electronic_conductivity_S_cm", "oxidation_onset_current_density_mA_cm2", "oxidation_tafel_slope_mV",
            "ccd_mA_cm2", "ccd_capacity_limit_mAh_cm2", "ccd_pressure_scale_MPa", "filament_charge_to_short_mAh_cm2",
            "soft_short_asr_ohm_cm2", "hard_short_resistance_ohm", "lifetime_weibull_shape",
        )
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        non_negative = ("grain_boundary_ratio", "noise_V", "stack_pressure_MPa", "reference_stack_pressure_MPa",
                        "ionic_activation_energy_eV", "grain_boundary_activation_energy_eV",
                        "interface_activation_energy_eV", "electronic_activation_energy_eV",
                        "oxidation_activation_energy_eV", "ccd_pressure_exponent")
        for name in non_negative:
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("temperature_C", "reference_temperature_C"):
            if not -100.0 <= getattr(self, name) <= 400.0:
                raise ValueError(f"{name} must be in [-100, 400] °C, got {getattr(self, name)!r}")
        for name in ("grain_boundary_cpe_alpha", "double_layer_cpe_alpha", "transference_number"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        if not 0 < self.soft_short_fraction <= 1:
            raise ValueError("soft_short_fraction must be in (0, 1]")
        if self.electrodes not in _ELECTRODES:
            raise ValueError(f"electrodes must be one of {', '.join(_ELECTRODES)}, got {self.electrodes!r}")
        if self.lifetime_h is not None and not (math.isfinite(self.lifetime_h) and self.lifetime_h > 0):
            raise ValueError(f"lifetime_h must be > 0 or None, got {self.lifetime_h!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> CellParameters:
        """From :meth:`as_dict` output, also of older labctl versions: their
        ``exchange_current_density_mA_cm2`` (now produced from R_int) is dropped.

        Raises:
            ValueError: an unknown field or a bad value.
        """
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in values.items() if k != "exchange_current_density_mA_cm2"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown cell parameter(s) {', '.join(unknown)}")
        return cls(**data)

    # -- what the model produces from the inputs (at temperature_C, as assembled) ---------------
    def _f(self, energy_eV: float) -> float:
        return arrhenius_factor(energy_eV, self.temperature_C, self.reference_temperature_C)

    @property
    def ionic_conductivity_at_temperature_S_cm(self) -> float:
        return self.ionic_conductivity_S_cm * self._f(self.ionic_activation_energy_eV)

    @property
    def bulk_asr_ohm_cm2(self) -> float:
        """R_b = d / σ(T) in Ω cm² ([000 L187–L189])."""
        return self.electrolyte_thickness_um * 1e-4 / self.ionic_conductivity_at_temperature_S_cm

    @property
    def grain_boundary_asr_ohm_cm2(self) -> float:
        r_ref = self.grain_boundary_ratio * self.electrolyte_thickness_um * 1e-4 / self.ionic_conductivity_S_cm
        return r_ref / self._f(self.grain_boundary_activation_energy_eV)

    def interfacial_asr_at(self, cycled_mAh_cm2: float = 0.0) -> float:
        """R_int of one Li interface at temperature_C after ``cycled_mAh_cm2`` (Ω cm²)."""
        r0, r1 = self.interfacial_asr_ohm_cm2, self.interfacial_asr_after_cycling_ohm_cm2
        r = r1 + (r0 - r1) * math.exp(-cycled_mAh_cm2 / self.interface_evolution_mAh_cm2)
        return r / self._f(self.interface_activation_energy_eV)

    @property
    def charge_transfer_asr_ohm_cm2(self) -> float:
        """The cell's charge-transfer resistance as an EIS fit of a Li | SSE | Li cell reports it
        (both interfaces: R_CT of [000 L87, L183]); 0 for blocking electrodes."""
        n_li = {"li": 2, "li_ss": 1, "ss": 0}[self.electrodes]
        return n_li * self.interfacial_asr_at(0.0)

    @property
    def exchange_current_density_mA_cm2(self) -> float:
        """I₀ / A = RT / (F·R_int) (Bard & Faulkner eq. 3.4.12), in mA cm⁻²."""
        return GAS_CONSTANT_J_MOL_K * (self.temperature_C + 273.15) / FARADAY_C_MOL / self.interfacial_asr_at(0.0) * 1e3

    @property
    def diffusion_asr_ohm_cm2(self) -> float:
        """Concentration polarisation at steady state, R_b (1/t₊ − 1) (0 for t₊ = 1)."""
        return self.bulk_asr_ohm_cm2 * (1.0 / self.transference_number - 1.0)

    @property
    def diffusion_time_constant_s(self) -> float:
        """τ_d = (d/2)² / D(T) of the finite Warburg element."""
        d_cm = self.electrolyte_thickness_um * 1e-4
        return (d_cm / 2) ** 2 / (self.salt_diffusion_coefficient_cm2_s * self._f(self.ionic_activation_energy_eV))

    @property
    def electronic_conductivity_at_temperature_S_cm(self) -> float:
        return self.electronic_conductivity_S_cm * self._f(self.electronic_activation_energy_eV)

    @property
    def total_resistance_ohm_cm2(self) -> float:
        """R_b + R_gb + R_CT: the low-frequency end of the arcs, as [000 L183] totals them."""
        return self.bulk_asr_ohm_cm2 + self.grain_boundary_asr_ohm_cm2 + self.charge_transfer_asr_ohm_cm2

    @property
    def dc_asr_ohm_cm2(self) -> float:
        """Small-current DC resistance × area of a Li | SSE | Li cell at steady state: the total
        plus the diffusion polarisation (= Z(f → 0) × area)."""
        return self.total_resistance_ohm_cm2 + self.diffusion_asr_ohm_cm2

    @property
    def ohmic_resistance_ohm(self) -> float:
        """Small-current DC resistance of the whole cell in Ω (``dc_asr_ohm_cm2 / area``)."""
        return self.dc_asr_ohm_cm2 / self.area_cm2

    def ccd_at(self, half_cycle_mAh_cm2: float = 0.0) -> float:
        """CCD (mA cm⁻²) at temperature_C and stack_pressure_MPa after ``half_cycle_mAh_cm2``
        passed in the present direction; ``ccd_mA_cm2`` at the reference conditions."""
        f_t = self._f(self.interface_activation_energy_eV)
        p0 = self.ccd_pressure_scale_MPa
        f_p = 1.0 if self.stack_pressure_MPa == self.reference_stack_pressure_MPa else (
            (self.stack_pressure_MPa + p0) / (self.reference_stack_pressure_MPa + p0)) ** self.ccd_pressure_exponent
        q, q_lim = half_cycle_mAh_cm2, self.ccd_capacity_limit_mAh_cm2
        f_q = 1.0 if q <= q_lim else math.sqrt(q_lim / q)
        return self.ccd_mA_cm2 * f_t * f_p * f_q

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- presets -------------------------------------------------------------------------------------

def _at(params: CellParameters, temperature_C: float, **changes: Any) -> CellParameters:
    """``params`` (material values at its reference temperature) restated at ``temperature_C``:
    the preset's values and its CCD are then those at that temperature, which becomes both its
    operating and its reference temperature."""
    p = replace(params, temperature_C=temperature_C)
    f = p._f  # noqa: SLF001 - the same Arrhenius factors the model uses
    moved = dict(
        ionic_conductivity_S_cm=p.ionic_conductivity_S_cm * f(p.ionic_activation_energy_eV),
        grain_boundary_ratio=p.grain_boundary_ratio * f(p.ionic_activation_energy_eV)
        / f(p.grain_boundary_activation_energy_eV),
        interfacial_asr_ohm_cm2=p.interfacial_asr_ohm_cm2 / f(p.interface_activation_energy_eV),
        interfacial_asr_after_cycling_ohm_cm2=p.interfacial_asr_after_cycling_ohm_cm2 / f(p.interface_activation_energy_eV),
        salt_diffusion_coefficient_cm2_s=p.salt_diffusion_coefficient_cm2_s * f(p.ionic_activation_energy_eV),
        electronic_conductivity_S_cm=p.electronic_conductivity_S_cm * f(p.electronic_activation_energy_eV),
        ccd_mA_cm2=p.ccd_mA_cm2 * f(p.interface_activation_energy_eV),
    )
    return replace(p, reference_temperature_C=temperature_C, **{**moved, **changes})


# H.L.-LLZO family, seed 004, 25 °C [004 L119], 300 µm pellet [004 L115], t₊ = 1 (garnet).
_LLZO = CellParameters()
# FSE (PolyEA-IL 33 wt % + LPSCl 67 wt %), seed 000, material values at 30 °C: σ 1.5 mS cm⁻¹
# [000 L64, L171]; R_b 16, R_gb 14, R_CT 46 Ω cm² (Fig. S7) [000 L87] at d = σ·R_b = 240 µm
# (the EIS cell's thickness is NS; 240 µm makes σ and R_b agree); activation energies fitted
# to R_CT 47/37/19 and totals 78/56/33 Ω cm² at 30/50/70 °C [000 L183]; σ_e 2.73e-10 S cm⁻¹
# [000 L171]; t₊ 0.69 [000 L87]; 1.13 cm² [000 L183]; CCD 9 mA cm⁻² at 50 °C [000 L141, L183].
_FSE_30C = CellParameters(
    area_cm2=1.13, electrolyte_thickness_um=240.0, li_thickness_um=250.0, temperature_C=30.0,
    reference_temperature_C=30.0, stack_pressure_MPa=0.1, reference_stack_pressure_MPa=0.1,
    ionic_conductivity_S_cm=1.5e-3, ionic_activation_energy_eV=0.171, grain_boundary_ratio=14.0 / 16.0,
    grain_boundary_activation_energy_eV=0.171, interfacial_asr_ohm_cm2=23.0, interfacial_asr_after_cycling_ohm_cm2=23.0,
    interface_activation_energy_eV=0.17, transference_number=0.69, salt_diffusion_coefficient_cm2_s=5.2e-8,
    electronic_conductivity_S_cm=2.73e-10, electronic_activation_energy_eV=0.171, oxidation_onset_V=4.5,
    ccd_mA_cm2=9.0 / arrhenius_factor(0.17, 50.0, 30.0),
)
# Li6PS5Cl, seed 003 (Hood et al.): 0.9 mS cm⁻¹ at 25 °C, E_a 0.31 eV [003 L374], σ_e 6.3e-9
# [003 L386]; as seed 000's baseline: 800 µm pellet cold-pressed at 150 MPa [000 L58, L157],
# short within 40 h [000 L64]; onset of oxidation ~2.5 V [003 L422].
_LPSCL = CellParameters(
    area_cm2=1.13, electrolyte_thickness_um=800.0, li_thickness_um=250.0, stack_pressure_MPa=0.1,
    reference_stack_pressure_MPa=0.1, ionic_conductivity_S_cm=0.9e-3, ionic_activation_energy_eV=0.31,
    grain_boundary_activation_energy_eV=0.31, interfacial_asr_ohm_cm2=100.0, interfacial_asr_after_cycling_ohm_cm2=100.0,
    electronic_conductivity_S_cm=6.3e-9, electronic_activation_energy_eV=0.31, oxidation_onset_V=2.5,
    ccd_mA_cm2=0.55, lifetime_h=25.0,
)

#: Named cells with the seeds' numbers. Keys are what ``--cell`` and protocol files accept. The
#: table of what each reproduces, and which numbers are inputs, is ``docs/cell-presets.md``.
CELL_PRESETS: dict[str, CellParameters] = {
    # Li | H.L.-LLZO | Li: CCD 1.8 mA cm⁻², interface ~50 → ~14 Ω cm² after cycling [004 L87].
    "hl_llzo": _LLZO,
    # Li | Au-LLZO | Li: CCD ~0.2 mA cm⁻² [004 L87]; interface NS (above 14 Ω cm² [004 L87]).
    "au_llzo": replace(_LLZO, ccd_mA_cm2=0.2, interfacial_asr_ohm_cm2=200.0, interfacial_asr_after_cycling_ohm_cm2=200.0),
    # Li | LLZO | Li, no interlayer: CCD < 0.1 mA cm⁻², interface ~1000 Ω cm² [004 L44, L87].
    "bare_llzo": replace(_LLZO, ccd_mA_cm2=0.08, interfacial_asr_ohm_cm2=1000.0,
                         interfacial_asr_after_cycling_ohm_cm2=1000.0),
    # Li⁰ | FSE | Li⁰, the EIS cell of [000 L87, L183] at 30 °C (50 and 70 °C via temperature_C).
    "fse": _FSE_30C,
    # Li⁰ | FSE (350 µm) | Li⁰ at room temperature, the 12 000 h cycling [000 L7, L58, L64].
    "fse_rt": _at(replace(_FSE_30C, electrolyte_thickness_um=350.0), 25.0),
    # Li⁰ | FSE (140 µm) | Li⁰ at 50 °C: CCD 9 mA cm⁻² [000 L141, L175, L183].
    "fse_50C": _at(replace(_FSE_30C, electrolyte_thickness_um=140.0), 50.0),
    # SS | FSE | SS at 30 °C: σ_ion by EIS, σ_e by 150 mV DC polarisation [000 L185].
    "fse_ss": replace(_FSE_30C, electrodes="ss"),
    # Li | LPSCl (800 µm) | Li, seed 000's baseline: shorts within 40 h [000 L64].
    "lpscl": _LPSCL,
    # SS | LPSCl | SS, 25 → 80 °C Arrhenius (0.31 eV) and 200 mV DC polarisation [003 L374–L386].
    "lpscl_ss": replace(_LPSCL, electrodes="ss", lifetime_h=None),
    # SS | LPSCl (10 ALD Al2O3 cycles) | SS: 1.7 mS cm⁻¹, 0.28 eV [003 L374]; σ_e "as low as" 1.7e-9 [003 L386].
    "lpscl_ald10_ss": replace(_LPSCL, electrodes="ss", lifetime_h=None, ionic_conductivity_S_cm=1.7e-3,
                              ionic_activation_energy_eV=0.28, grain_boundary_activation_energy_eV=0.28,
                              electronic_conductivity_S_cm=1.7e-9),
    # Li | PolyEA-IL (350 µm) | Li, seed 000's baseline: t₊ 0.31, concentration polarisation over
    # the first 0.4 mAh cm⁻² at 0.2 mA cm⁻² (D from it) [000 L87]; shorts within 700 h [000 L64].
    "polyea_il": replace(_FSE_30C, electrolyte_thickness_um=350.0, temperature_C=25.0, reference_temperature_C=25.0,
                         ionic_conductivity_S_cm=0.3e-3, grain_boundary_ratio=0.0, interfacial_asr_ohm_cm2=50.0,
                         interfacial_asr_after_cycling_ohm_cm2=50.0, transference_number=0.31,
                         salt_diffusion_coefficient_cm2_s=5.2e-8, electronic_conductivity_S_cm=1.09e-10,
                         ccd_mA_cm2=1.0, lifetime_h=450.0),
    # Li | LATP (1.3 mm) | Li, seed 001: σ_ion 6e-4, σ_e 1.2e-8 S cm⁻¹ [001 L20]; fails < 100 h [001 L30, L46].
    "latp": replace(_LLZO, area_cm2=1.13, electrolyte_thickness_um=1300.0, temperature_C=22.0,
                    reference_temperature_C=22.0, ionic_conductivity_S_cm=6e-4, interfacial_asr_ohm_cm2=500.0,
                    interfacial_asr_after_cycling_ohm_cm2=500.0, electronic_conductivity_S_cm=1.2e-8,
                    ccd_mA_cm2=0.3, lifetime_h=60.0),
    # Li | LATP/polymer hybrid (350 µm) | Li, seed 001: 22 °C, 0.2 mA cm⁻², long cycling [001 L30];
    # σ_e of the polymer 1.09e-10 S cm⁻¹ [001 L118].
    "latp_polymer": replace(_LLZO, area_cm2=1.13, electrolyte_thickness_um=350.0, temperature_C=22.0,
                            reference_temperature_C=22.0, ionic_conductivity_S_cm=3e-4, interfacial_asr_ohm_cm2=50.0,
                            interfacial_asr_after_cycling_ohm_cm2=50.0, transference_number=0.6,
                            electronic_conductivity_S_cm=1.09e-10, ccd_mA_cm2=1.0),
    # Li | CSE (12.6 µm) | SS, seed 002: LSV from OCV to 6 V at 0.5 mV s⁻¹ [002 L39]; all values NS.
    "cse_li_ss": replace(_LLZO, electrodes="li_ss", area_cm2=1.0, electrolyte_thickness_um=12.6,
                         ionic_conductivity_S_cm=1e-4, interfacial_asr_ohm_cm2=50.0,
                         interfacial_asr_after_cycling_ohm_cm2=50.0, transference_number=0.5,
                         electronic_conductivity_S_cm=1e-10, oxidation_onset_V=4.8, ccd_mA_cm2=1.0),
}


#: What cell each preset is, for titles and the run file (``simulated_cell_label``): the
#: electrodes and the electrolyte as the seeds name them (thickness and temperature are the
#: parameters', given beside it).
CELL_PRESET_LABELS: dict[str, str] = {
    "hl_llzo": "Li | H.L.-LLZO | Li",
    "au_llzo": "Li | Au-LLZO | Li",
    "bare_llzo": "Li | LLZO | Li, no interlayer",
    "fse": "Li⁰ | FSE | Li⁰",
    "fse_rt": "Li⁰ | FSE | Li⁰",
    "fse_50C": "Li⁰ | FSE | Li⁰",
    "fse_ss": "SS | FSE | SS",
    "lpscl": "Li | LPSCl | Li",
    "lpscl_ss": "SS | LPSCl | SS",
    "lpscl_ald10_ss": "SS | LPSCl (10 ALD Al₂O₃ cycles) | SS",
    "polyea_il": "Li | PolyEA-IL | Li",
    "latp": "Li | LATP | Li",
    "latp_polymer": "Li | LATP/polymer hybrid | Li",
    "cse_li_ss": "Li | CSE | SS",
}


class SymmetricCell:
    """State and response of one cell (see the module docstring for the model).

    Use :meth:`advance` to integrate the state over a period, then :meth:`voltage_V` /
    :meth:`current_A` for the terminal value at an applied current or voltage (in V and A,
    positive current = plating on the working electrode of a Li | Li cell), and
    :meth:`impedance_ohm` for the small-signal impedance at the present state. Not
    thread-safe; the instrument model that owns it serialises access.
    """

    def __init__(self, params: CellParameters | None = None) -> None:
        self.params = params or CellParameters()
        self._rng = random.Random(self.params.seed)
        self.filament_fraction = 0.0
        self.charge_passed_C = 0.0
        """Signed charge passed (C)."""
        self.cycled_mAh_cm2 = 0.0
        """|charge| passed through the interfaces, both directions (drives their evolution)."""
        self.half_cycle_mAh_cm2 = 0.0
        """|charge| passed since the current last changed sign."""
        self.time_under_current_s = 0.0
        self._sign = 0
        self._eta_gb = 0.0
        self._eta_li = 0.0
        self._eta_ss = self.params.open_circuit_voltage_V if self.params.electrodes == "li_ss" else 0.0
        self._eta_w: list[float] = [0.0] * _WARBURG_TERMS
        self._held: tuple[float, float] | None = None
        self._last_x: float | None = None
        self._lifetime_s = self._draw_lifetime()
        self._derive()

    # -- configuration -------------------------------------------------------------------------
    def reconfigure(self, **changes: Any) -> None:
        """Replace parameters (e.g. ``temperature_C=70``); the state (overpotentials, filament,
        charge counters) is kept.

        Raises:
            ValueError: an unknown or invalid parameter.
        """
        old = self.params
        self.params = replace(self.params, **changes)
        if (old.lifetime_h, old.lifetime_weibull_shape, old.seed) != (
                self.params.lifetime_h, self.params.lifetime_weibull_shape, self.params.seed):
            self._lifetime_s = self._draw_lifetime()
        self._derive()

    def _draw_lifetime(self) -> float:
        p = self.params
        if p.lifetime_h is None:
            return math.inf
        u = random.Random(p.seed * 7919 + 104729).random()
        return p.lifetime_h * 3600.0 * (-math.log(1.0 - u)) ** (1.0 / p.lifetime_weibull_shape)

    def _derive(self) -> None:
        """Temperature-dependent constants in whole-cell units (Ω, F, A)."""
        p = self.params
        a = p.area_cm2
        self._b = 2.0 * GAS_CONSTANT_J_MOL_K * (p.temperature_C + 273.15) / FARADAY_C_MOL
        self._n_li = {"li": 2, "li_ss": 1, "ss": 0}[p.electrodes]
        self._n_ss = {"li": 0, "li_ss": 1, "ss": 2}[p.electrodes]
        self._r_b = p.bulk_asr_ohm_cm2 / a
        self._r_gb = p.grain_boundary_asr_ohm_cm2 / a
        self._tau_gb = (p.grain_boundary_asr_ohm_cm2 * p.grain_boundary_cpe_q) ** (1.0 / p.grain_boundary_cpe_alpha) \
            if self._r_gb > 0 else 0.0
        r_d = p.diffusion_asr_ohm_cm2 / a
        if r_d > 0:
            self._rw, self._tauw, r_rem = warburg_foster_terms(r_d, p.diffusion_time_constant_s, _WARBURG_TERMS)
        else:
            self._rw, self._tauw, r_rem = [], [], 0.0
        self._r_o = self._r_b + r_rem
        self._r_e = p.electrolyte_thickness_um * 1e-4 / p.electronic_conductivity_at_temperature_S_cm / a
        self._f_int = p._f(p.interface_activation_energy_eV)  # noqa: SLF001
        self._q_dl = p.double_layer_cpe_q * a
        self._c_ss = p.double_layer_cpe_q * a  # a blocking CPE's capacitance at 1 rad/s
        self._i_th = p.oxidation_onset_current_density_mA_cm2 * 1e-3 * a * p._f(p.oxidation_activation_energy_eV)  # noqa: SLF001
        self._ox_per_V = math.log(10.0) / (p.oxidation_tafel_slope_mV * 1e-3)
        self._factors_h = -1.0
        # CCD at temperature and pressure (ccd_at without the capacity factor), per-area factor
        self._ccd_tp = p.ccd_at(0.0)
        self._soft_fraction = p.soft_short_fraction
        self._j_per_A = 1e3 / a
        self._evolves = p.interfacial_asr_after_cycling_ohm_cm2 != p.interfacial_asr_ohm_cm2
        self._evolution_grid = 1e-3 * p.interface_evolution_mAh_cm2
        self._update_interface()
        self._r_scale = self._r_o + self._r_gb + sum(self._rw) + 2.0 * p.interfacial_asr_at(0.0) / a

    def _update_interface(self) -> None:
        p = self.params
        grid = 1e-3 * p.interface_evolution_mAh_cm2
        self._evolved_at = math.floor(self.cycled_mAh_cm2 / grid)
        self._r_int_asr = p.interfacial_asr_at(self._evolved_at * grid)
        r_int = self._r_int_asr / p.area_cm2
        self._i0 = self._b / (2.0 * r_int)
        self._c_dl = effective_capacitance_F(r_int, self._q_dl, p.double_layer_cpe_alpha)

    def _factors(self, h: float) -> tuple[float, list[float]]:
        """exp(−h/τ) of the linear elements, cached for the last step length."""
        if h != self._factors_h:
            self._factors_h = h
            self._e_gb = math.exp(-h / self._tau_gb) if self._tau_gb > 0 else 0.0
            self._e_w = [math.exp(-h / t) for t in self._tauw]
        return self._e_gb, self._e_w

    # -- failure state -------------------------------------------------------------------------
    @property
    def shorted(self) -> bool:
        """True once the filament bridges the electrolyte (hard short)."""
        return self.filament_fraction >= 1.0

    @property
    def soft_shorted(self) -> bool:
        return self.filament_fraction >= self.params.soft_short_fraction

    @property
    def interfacial_asr_ohm_cm2(self) -> float:
        """R_int of one Li interface now (Ω cm²): after the charge cycled, at temperature_C."""
        return self._r_int_asr

    @property
    def ccd_mA_cm2(self) -> float:
        """The CCD now: at the present temperature, pressure and half-cycle charge."""
        return self.params.ccd_at(self.half_cycle_mAh_cm2)

    def _filament_resistance_ohm(self) -> float:
        """Deterministic resistance of the filament path (inf before the soft short)."""
        p = self.params
        if self.shorted:
            return p.hard_short_resistance_ohm
        if not self.soft_shorted:
            return math.inf
        progress = (self.filament_fraction - p.soft_short_fraction) / max(1.0 - p.soft_short_fraction, 1e-12)
        r_onset = p.soft_short_asr_ohm_cm2 / p.area_cm2
        return r_onset * (p.hard_short_resistance_ohm / r_onset) ** progress

    def _parallel_ohm(self, flicker: bool) -> float:
        """Everything in parallel with the ionic path: electronic conduction and the filament."""
        r_f = self._filament_resistance_ohm()
        if math.isinf(r_f):
            return self._r_e
        if flicker and not self.shorted:
            r_f *= math.exp(self._rng.gauss(0.0, self.params.soft_short_flicker))
        return 1.0 / (1.0 / r_f + 1.0 / self._r_e)

    # -- elements ------------------------------------------------------------------------------
    def _state_V(self) -> float:
        """Σ of the stateful overpotentials (gb, interfaces, diffusion), V."""
        return self._eta_gb + self._n_li * self._eta_li + self._n_ss * self._eta_ss + sum(self._eta_w)

    def _ss_faradaic_A(self, eta: float) -> tuple[float, float]:
        """Faradaic current at an SS interface and its derivative: oxidation of the electrolyte
        above the onset (Tafel), Li plating below 0 V (Butler–Volmer with the Li I₀)."""
        if self.params.electrodes != "li_ss":
            return 0.0, 0.0
        x = min((eta - self.params.oxidation_onset_V) * self._ox_per_V, 60.0)
        i_ox = self._i_th * math.exp(x)
        i, di = i_ox, i_ox * self._ox_per_V
        if eta < 0:
            y = max(eta / self._b, -60.0)
            i += 2.0 * self._i0 * math.sinh(y)
            di += 2.0 * self._i0 * math.cosh(y) / self._b
        return i, di

    def _li_step(self, eta: float, x: float, h: float) -> tuple[float, float]:
        """One Li interface after ``h`` s at ionic current ``x``: towards the exact Butler–Volmer
        steady state η* = b·asinh(x / 2I₀) with the local time constant C·dη*/dx. Returns
        (η', dη'/dx)."""
        s = x / (2.0 * self._i0)
        eta_star = self._b * math.asinh(s)
        r_loc = self._b / (2.0 * self._i0 * math.sqrt(1.0 + s * s))
        e = math.exp(-h / (r_loc * self._c_dl))
        return eta_star + (eta - eta_star) * e, r_loc * (1.0 - e)

    def _ss_step(self, eta: float, x: float, h: float) -> tuple[float, float]:
        """One SS interface after ``h`` s at ionic current ``x``, implicit Euler (Newton, bracketed):
        C (η' − η)/h + I_F(η') = x. Returns (η', dη'/dx)."""
        c_h = self._c_ss / h
        lo, hi = eta - 1.0, eta + 1.0
        g = lambda e_: c_h * (e_ - eta) + self._ss_faradaic_A(e_)[0] - x  # noqa: E731
        while g(lo) > 0:
            lo -= 2.0 * (hi - lo)
        while g(hi) < 0:
            hi += 2.0 * (hi - lo)
        e_new = min(max(eta, lo), hi)
        for _ in range(60):
            val = g(e_new)
            if val > 0:
                hi = e_new
            else:
                lo = e_new
            deriv = c_h + self._ss_faradaic_A(e_new)[1]
            nxt = e_new - val / deriv
            if not lo < nxt < hi:
                nxt = 0.5 * (lo + hi)
            if abs(nxt - e_new) <= 1e-12 + 1e-12 * abs(e_new):
                e_new = nxt
                break
            e_new = nxt
        return e_new, 1.0 / (c_h + self._ss_faradaic_A(e_new)[1])

    def _step_states(self, x: float, h: float, commit: bool) -> tuple[float, float]:
        """Advance every stateful element by ``h`` at ionic current ``x``; returns
        (Σ η', dΣη'/dx) and stores the new states if ``commit``."""
        e_gb, e_w = self._factors(h)
        total, deriv = 0.0, 0.0
        if self._r_gb > 0:
            ss = x * self._r_gb
            eta_gb = ss + (self._eta_gb - ss) * e_gb
            total += eta_gb
            deriv += self._r_gb * (1.0 - e_gb)
        new_w = []
        for r, e, eta in zip(self._rw, e_w, self._eta_w):
            ss = x * r
            new_w.append(ss + (eta - ss) * e)
            deriv += r * (1.0 - e)
        total += sum(new_w)
        if self._n_li:
            eta_li, d = self._li_step(self._eta_li, x, h)
            total += self._n_li * eta_li
            deriv += self._n_li * d
        if self._n_ss:
            eta_ss, d = self._ss_step(self._eta_ss, x, h)
            total += self._n_ss * eta_ss
            deriv += self._n_ss * d
        if commit:
            if self._r_gb > 0:
                self._eta_gb = eta_gb
            if new_w:
                self._eta_w = new_w
            if self._n_li:
                self._eta_li = eta_li
            if self._n_ss:
                self._eta_ss = eta_ss
        return total, deriv

    # -- time ------------------------------------------------------------------------------------
    def advance(self, dt_s: float, current_A: float) -> None:
        """Integrate the cell over ``dt_s`` seconds.

        Holds ``current_A`` constant — unless the caller's last call was :meth:`current_A` and
        ``current_A`` is the value it returned: then the voltage it was given is held (a
        potentiostat, or a current source at its voltage compliance) and the current follows.
        The filament grows while |j| exceeds the CCD or once the stochastic lifetime is spent.
        """
        if not dt_s > 0:
            return
        held = self._held
        if held is not None and current_A == held[1]:
            n = min(20, max(1, math.ceil(dt_s / 5.0)))
            for _ in range(n):
                current_A = self._advance_potentiostatic(dt_s / n, held[0])
            self._held = (held[0], held[1])
            return
        # no filament yet: the parallel path is the electronic one
        r_p = self._r_e if self.filament_fraction < self._soft_fraction else self._parallel_ohm(flicker=False)
        # An explicit split of the current is stable and accurate while the parallel path is far
        # above the cell's own resistance (electronic leakage); a filament needs the implicit one.
        if self._n_ss or r_p < 1e3 * self._r_scale:
            n = min(20, max(1, math.ceil(dt_s / 5.0)))
            for _ in range(n):
                self._advance_coupled(dt_s / n, current_A, r_p)
        else:
            x = current_A - self._state_V() / r_p
            self._step_states(x, dt_s, commit=True)
            self._account(dt_s, current_A, x)

    def _advance_coupled(self, h: float, current_A: float, r_p: float) -> None:
        """Galvanostatic step with a parallel path that matters: x' + V'(x')/R_p = I."""
        def f(x: float) -> tuple[float, float]:
            s, d = self._step_states(x, h, commit=False)
            v = x * self._r_o + s
            return x + v / r_p, 1.0 + (self._r_o + d) / r_p
        x = self._solve_monotone(f, current_A, current_A)
        self._step_states(x, h, commit=True)
        self._account(h, current_A, x)
        if r_p < 1e-3 * self._r_e:  # the filament may have changed within the step
            r_p = self._parallel_ohm(flicker=False)

    def _advance_potentiostatic(self, h: float, voltage_V: float) -> float:
        """Potentiostatic step: V'(x') = V; returns the terminal current at its end."""
        r_p = self._parallel_ohm(flicker=False)

        def f(x: float) -> tuple[float, float]:
            s, d = self._step_states(x, h, commit=False)
            return x * self._r_o + s, self._r_o + d
        x = self._solve_monotone(f, voltage_V, self.ionic_current_A(voltage_V) if self._last_x is None else self._last_x)
        self._step_states(x, h, commit=True)
        self._last_x = x
        current = x + voltage_V / r_p
        self._account(h, current, x)
        return current

    def _account(self, h: float, current_A: float, ionic_A: float) -> None:
        """Charge counters, interface evolution, Li depletion, lifetime and filament growth."""
        self.charge_passed_C += current_A * h
        if current_A == 0.0:
            return
        sign = 1 if current_A > 0 else -1
        if sign != self._sign:
            self._sign = sign
            self.half_cycle_mAh_cm2 = 0.0
        dq = abs(ionic_A) * h * self._j_per_A / 3600.0
        q = self.half_cycle_mAh_cm2 = self.half_cycle_mAh_cm2 + dq
        self.cycled_mAh_cm2 += dq
        self.time_under_current_s += h
        # R_int moves on a fixed grid of charge (0.1 % of the evolution scale), so the state does
        # not depend on how a period was cut into advance() calls.
        if self._evolves and math.floor(self.cycled_mAh_cm2 / self._evolution_grid) != self._evolved_at:
            self._update_interface()
        # A filament needs Li plated into the electrolyte: at either electrode of a Li | Li cell,
        # at the SS of a Li | SSE | SS cell under negative current, never in SS | SSE | SS.
        if self.filament_fraction >= 1.0 or self._n_li == 0 or (self._n_ss and current_A > 0):
            return
        p = self.params
        j_mA_cm2 = abs(current_A) * self._j_per_A
        # ccd_at(q), from the cached factors; relative tolerance: a step programmed at exactly the
        # CCD (1.8 mA cm⁻² from 0.1 × 18 in floating point) must not count as above it.
        q_lim = p.ccd_capacity_limit_mAh_cm2
        ccd = self._ccd_tp if q <= q_lim else self._ccd_tp * math.sqrt(q_lim / q)
        if j_mA_cm2 > ccd * (1 + 1e-9) or self.time_under_current_s >= self._lifetime_s:
            growth = j_mA_cm2 * h / (p.filament_charge_to_short_mAh_cm2 * 3600.0)
            self.filament_fraction = min(1.0, self.filament_fraction + growth)

    @staticmethod
    def _solve_monotone(f, target: float, guess: float = 0.0) -> float:
        """x with f(x)[0] = target for increasing f returning (value, derivative): Newton from
        ``guess`` while it converges, else bracketing and bisection."""
        x, best = guess, math.inf
        for _ in range(12):
            val, deriv = f(x)
            err = abs(val - target)
            if err <= 1e-13 * max(abs(target), 1e-9) or not deriv > 0:
                return x
            if err >= best:
                break
            best = err
            nxt = x - (val - target) / deriv
            if abs(nxt - x) <= 1e-14 + 1e-12 * abs(x):
                return nxt
            x = nxt
        span = max(abs(guess), 1e-9)
        lo, hi = guess - span, guess + span
        while f(lo)[0] > target and lo > -1e9:
            lo -= 2.0 * (hi - lo)
        while f(hi)[0] < target and hi < 1e9:
            hi += 2.0 * (hi - lo)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if f(mid)[0] < target:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-15 + 1e-13 * abs(mid):
                break
        return 0.5 * (lo + hi)

    # -- terminal values -----------------------------------------------------------------------
    def voltage_V(self, current_A: float) -> float:
        """Terminal voltage (V) with ``current_A`` forced through the cell now, with noise:
        the ohmic drop of the ionic share of the current plus the stateful overpotentials."""
        self._held = self._last_x = None
        r_p = self._r_e if self.filament_fraction < self._soft_fraction else self._parallel_ohm(flicker=True)
        h = self._state_V()
        v = (current_A * self._r_o + h) * r_p / (r_p + self._r_o)
        noise = self.params.noise_V
        return v + (self._rng.gauss(0.0, noise) if noise else 0.0)

    def ionic_current_A(self, voltage_V: float) -> float:
        """Current (A) through the ionic path at a terminal voltage, now."""
        return (voltage_V - self._state_V()) / self._r_o

    def current_A(self, voltage_V: float) -> float:
        """Current (A) the cell draws with ``voltage_V`` applied now; later :meth:`advance` calls
        with this current hold the voltage."""
        i = self.ionic_current_A(voltage_V) + voltage_V / self._parallel_ohm(flicker=True)
        self._held = (voltage_V, i)
        return i

    # -- impedance ---------------------------------------------------------------------------------
    def impedance_ohm(self, frequency_Hz: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Small-signal impedance Z(f) (complex, Ω, whole cell) at the present state: R_b +
        R_gb‖CPE + interfaces (R_ct‖CPE, linearised at their present overpotential; blocking:
        CPE) + finite Warburg, all in parallel with the electronic and filament paths.
        Z(f → 0) equals the small-current DC resistance, so EIS and DC agree.

        Raises:
            ValueError: a frequency ≤ 0.
        """
        f_hz = np.atleast_1d(np.asarray(frequency_Hz, dtype=float))
        if np.any(~(f_hz > 0)):
            raise ValueError("frequencies must be > 0 Hz")
        p, a = self.params, self.params.area_cm2
        w = 2.0 * np.pi * f_hz
        z = np.full(w.shape, self._r_b, dtype=complex)
        if self._r_gb > 0:
            z += r_cpe(w, self._r_gb, p.grain_boundary_cpe_q * a, p.grain_boundary_cpe_alpha)
        if self._n_li:
            s = self._i0 * 2.0 * math.sinh(self._eta_li / self._b) / (2.0 * self._i0)
            r_loc = self._b / (2.0 * self._i0 * math.sqrt(1.0 + s * s))
            z += self._n_li * r_cpe(w, r_loc, self._q_dl, p.double_layer_cpe_alpha)
        if self._n_ss:
            di = self._ss_faradaic_A(self._eta_ss)[1]
            z_ss = cpe(w, self._q_dl, p.double_layer_cpe_alpha)
            if di > 0:
                z_ss = parallel(z_ss, np.full(w.shape, 1.0 / di, dtype=complex))
            z += self._n_ss * z_ss
        r_d = p.diffusion_asr_ohm_cm2 / a
        if r_d > 0:
            z += finite_warburg(w, r_d, p.diffusion_time_constant_s)
        return parallel(z, np.full(w.shape, self._parallel_ohm(flicker=False), dtype=complex))


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
