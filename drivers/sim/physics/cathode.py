"""A cathode half-cell against Li metal through a solid electrolyte: the full cells of the seeds
(Li | FSE | LFP and NMC811 [000 L145]; LFP | H.L.-LLZO | Li [004 L89]), behind the simulators.

An equivalent-circuit model with solid diffusion, chosen over PyBaMM's half-cell DFN models:
it is a few arithmetic operations per reading, so a 1000-cycle dry run takes minutes on the
2400 simulator, runs inside the cycler simulators with no solver or extra dependency, and its
few parameters map onto what the seeds report (capacity, rate, fade, CE). PyBaMM supplies the
open-circuit curves it uses: the same fits its parameter sets carry.

The model, per cell (units in the names; current positive = charge = Li out of the cathode,
the cycler's sign; V = cathode potential − Li potential):

* stoichiometry x of the cathode (Li fraction of the OCP fit's variable): the bulk x_b moves
  by the stored current, dx_b/dt = −I_stored / Q_x, Q_x the charge per unit of x (the
  usable capacity, ``specific_capacity_mAh_g`` × ``active_mass_mg``, spread over
  [``sto_charged``, ``sto_discharged``]);
* solid diffusion: the surface runs ahead of the bulk, x_s = x_b + δ, with δ relaxing to
  t_d·dx_b/dt with the time constant 1.5·t_d — the polynomial approximation of a sphere's
  concentration profile (Subramanian, Diwakar & Tapriyal, J. Electrochem. Soc. 152 (2005)
  A2002: c_surf − c_avg = −R·flux/(5D), i.e. t_d = R²/(15 D) in time units of the
  stoichiometry's rate) with a first-order lag of R²/(π²D) ≈ 1.5 t_d. This is what makes the
  capacity rate-dependent: at a high C-rate the surface reaches the cut-off early;
* open-circuit potential U(x_s) — past [``sto_charged``, ``sto_discharged``] a steep wall, so
  a slow cycle between the cut-offs spans the window; within it — LFP — Afshar, Morris & Khajepour (2017), arXiv:1709.03970,
  U = 3.4077 − 0.020269x + 0.5e^(−150x) − 0.9e^(−30(1−x)), the flat ~3.4 V plateau (PyBaMM's
  ``LFP_ocp_Afshar2017``, parameter set Prada2013); NMC811 — Chen et al., J. Electrochem. Soc.
  167 (2020) 080534, U = −0.8090x + 4.4875 − 0.0428 tanh(18.5138(x − 0.5542))
  − 17.7326 tanh(15.7890(x − 0.3117)) + 17.5842 tanh(15.9308(x − 0.3120)), the sloping curve
  (PyBaMM's ``nmc_LGM50_ocp_Chen2020``, parameter set Chen2020);
* terminal voltage V = U(x_s) + I·R + η, R the series area-specific resistance (electrolyte
  bulk and both interfaces) over the area and η the Butler–Volmer overpotential of the two
  electrodes lumped, η = (2RT/F)·asinh(j / 2j₀) (Bard & Faulkner, eq. 3.4.11, α = 0.5);
* temperature: R, j₀ and t_d scale with an Arrhenius factor exp(E_a/k_B·(1/T − 1/T_ref));
* Coulombic efficiency: on charge a fraction f of the current goes to side reactions and is
  not stored, f = (1 − CE/100) + f₁·exp(−Q_charged/Q), so the first cycles lose more
  (``first_cycle_loss_pct``), and a cycle gives back CE % of what it took;
* fade: per equivalent full cycle (discharge throughput / capacity) the usable capacity falls
  by ``capacity_fade_pct_per_cycle`` (loss of active material) and the series resistance grows
  by ``resistance_growth_pct_per_cycle`` (interphase growth), which is what fades a cell
  cycled at a high rate;
* noise: Gaussian, ``noise_V`` σ on each voltage, from one seeded generator.

Model inputs: every field of :class:`CathodeParameters` (the presets say which come from the
seeds). The model produces the voltage curves, the capacity at each rate, CE and retention.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, replace
from typing import Any

FARADAY_C_MOL = 96485.33212
GAS_CONSTANT_J_MOL_K = 8.314462618
BOLTZMANN_EV_K = 8.617333262e-5

#: Height scale (V) and width (in stoichiometry) of the wall past the window's ends: a model
#: choice, steep enough that the window's capacity is what a slow cycle gives.
WALL_V = 0.05
WALL_WIDTH = 0.015

__all__ = ["CathodeParameters", "CathodeHalfCell", "CATHODE_PRESETS", "open_circuit_potential_V", "OCP_MATERIALS"]


def _lfp_afshar2017(x: float) -> float:
    return 3.4077 - 0.020269 * x + 0.5 * math.exp(-150.0 * x) - 0.9 * math.exp(-30.0 * (1.0 - x))


def _nmc811_chen2020(x: float) -> float:
    return (-0.8090 * x + 4.4875 - 0.0428 * math.tanh(18.5138 * (x - 0.5542))
            - 17.7326 * math.tanh(15.7890 * (x - 0.3117)) + 17.5842 * math.tanh(15.9308 * (x - 0.3120)))


#: Open-circuit potential fits by material: U(x) in V vs Li/Li⁺, x the Li fraction.
OCP_MATERIALS = {"LFP": _lfp_afshar2017, "NMC811": _nmc811_chen2020}


def open_circuit_potential_V(material: str, x: float) -> float:
    """U(x) of ``material`` (V vs Li/Li⁺), x clipped to [0.001, 0.999] (the fits' range).

    Raises:
        KeyError: an unknown material.
    """
    return OCP_MATERIALS[material](min(max(x, 1e-3), 1.0 - 1e-3))


@dataclass(frozen=True)
class CathodeParameters:
    """A cathode | solid electrolyte | Li half-cell (model inputs; see the module doc).

    ``specific_capacity_mAh_g`` is the capacity of the stoichiometry window
    [``sto_charged``, ``sto_discharged``] at a vanishing rate; the cell starts discharged, at
    ``sto_discharged``. ``series_asr_ohm_cm2`` and ``exchange_current_density_mA_cm2`` are at
    ``reference_temperature_C``.
    """

    material: str = "LFP"
    active_mass_mg: float = 3.33
    specific_capacity_mAh_g: float = 150.0
    sto_charged: float = 0.02
    sto_discharged: float = 0.98
    area_cm2: float = 1.0
    temperature_C: float = 25.0
    reference_temperature_C: float = 25.0
    series_asr_ohm_cm2: float = 100.0
    exchange_current_density_mA_cm2: float = 1.0
    diffusion_time_s: float = 300.0
    activation_energy_eV: float = 0.3
    coulombic_efficiency_pct: float = 99.9
    first_cycle_loss_pct: float = 5.0
    capacity_fade_pct_per_cycle: float = 0.01
    resistance_growth_pct_per_cycle: float = 0.0
    noise_V: float = 0.2e-3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.material not in OCP_MATERIALS:
            raise ValueError(f"material must be one of {', '.join(OCP_MATERIALS)}, got {self.material!r}")
        for name in ("active_mass_mg", "specific_capacity_mAh_g", "area_cm2", "exchange_current_density_mA_cm2",
                     "diffusion_time_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        for name in ("series_asr_ohm_cm2", "activation_energy_eV", "first_cycle_loss_pct", "capacity_fade_pct_per_cycle",
                     "resistance_growth_pct_per_cycle", "noise_V"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if not 0.0 <= self.sto_charged < self.sto_discharged <= 1.0:
            raise ValueError("need 0 <= sto_charged < sto_discharged <= 1")
        if not 50.0 < self.coulombic_efficiency_pct <= 100.0:
            raise ValueError(f"coulombic_efficiency_pct must be in (50, 100], got {self.coulombic_efficiency_pct!r}")
        if (self.first_cycle_loss_pct >= 50.0 or self.capacity_fade_pct_per_cycle >= 10.0
                or self.resistance_growth_pct_per_cycle >= 100.0):
            raise ValueError("first_cycle_loss_pct must be < 50, capacity_fade_pct_per_cycle < 10 and "
                             "resistance_growth_pct_per_cycle < 100")
        for name in ("temperature_C", "reference_temperature_C"):
            if not -80.0 <= getattr(self, name) <= 300.0:
                raise ValueError(f"{name} must be within -80…300 °C")

    @property
    def capacity_mAh(self) -> float:
        """The fresh cell's usable capacity at a vanishing rate (mAh)."""
        return self.specific_capacity_mAh_g * self.active_mass_mg * 1e-3

    def arrhenius(self) -> float:
        """exp(E_a/k_B·(1/T − 1/T_ref)): > 1 below the reference temperature."""
        t, t_ref = self.temperature_C + 273.15, self.reference_temperature_C + 273.15
        return math.exp(self.activation_energy_eV / BOLTZMANN_EV_K * (1.0 / t - 1.0 / t_ref))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CathodeParameters:
        """The parameters a run file recorded (:meth:`as_dict`). Raises TypeError/ValueError."""
        return cls(**values)


#: Named half-cells with the seeds' numbers (the protocol's ``cell`` and ``cathode`` sections
#: set area, temperature and active mass). Capacity, resistance and kinetic values the seeds do
#: not state are model choices, tuned so that the seeds' reported figures come out.
CATHODE_PRESETS: dict[str, CathodeParameters] = {
    # LFP | H.L.-LLZO | Li at 40 °C, 2.5–4.2 V: ~120 mAh g⁻¹ at 0.5C for > 300 cycles [004 L89, L119].
    # 300 µm LLZO (≈ 30 Ω cm² bulk at 1 mS cm⁻¹) + H.L. interfaces (~50 → 14 Ω cm² [004 L87]) + the
    # composite cathode: 150 Ω cm² at 25 °C (NS); window capacity 135 mAh g⁻¹ (NS).
    "lfp_hl_llzo": CathodeParameters(material="LFP", specific_capacity_mAh_g=135.0, sto_charged=0.0, series_asr_ohm_cm2=150.0,
                                     exchange_current_density_mA_cm2=0.5, diffusion_time_s=900.0,
                                     coulombic_efficiency_pct=99.8, first_cycle_loss_pct=4.0,
                                     capacity_fade_pct_per_cycle=0.005),
    # LFP | Janus FSE | Li at r.t.: 81 % after > 3000 cycles at C/3, 0.0062 % per cycle [000 L145];
    # FSE total 78 Ω cm² at 30 °C [000 L183]; capacity NS (155 mAh g⁻¹, 0.1C formation × 2 [000 L183]).
    "lfp_fse": CathodeParameters(material="LFP", specific_capacity_mAh_g=158.0, sto_charged=0.0, series_asr_ohm_cm2=90.0,
                                 exchange_current_density_mA_cm2=1.0, diffusion_time_s=600.0,
                                 coulombic_efficiency_pct=99.95, first_cycle_loss_pct=3.0,
                                 capacity_fade_pct_per_cycle=0.0068),
    # NMC811 | Janus FSE | Li: 195 mAh g⁻¹ at 0.5C, 118 at 5C [000 L145]; 84 % after 1100 cycles at
    # 5C = 3 mA cm⁻², CE 99.98 % [000 L145] (50 °C, "50 or 70" [000 L183]); FSE 56 Ω cm² at 50 °C
    # [000 L183]; window 2.8–4.3 V (NS in [000]; [002 L47] cycles NCM811 to 4.3 V).
    "nmc811_fse": CathodeParameters(material="NMC811", specific_capacity_mAh_g=215.0, sto_charged=0.2,
                                    sto_discharged=0.95, series_asr_ohm_cm2=68.0, exchange_current_density_mA_cm2=2.0,
                                    diffusion_time_s=600.0, coulombic_efficiency_pct=99.98, first_cycle_loss_pct=10.0,
                                    capacity_fade_pct_per_cycle=0.021, resistance_growth_pct_per_cycle=0.06),
}


class CathodeHalfCell:
    """State and response of one cathode half-cell (the :class:`drivers.sim.smu.Load`
    interface: :meth:`advance`, :meth:`voltage_V`, :meth:`current_A`). Not thread-safe: the
    instrument model that owns it serialises access. Time is the caller's (s)."""

    def __init__(self, params: CathodeParameters | None = None) -> None:
        self.params = params or CathodeParameters()
        p = self.params
        self._rng = random.Random(p.seed)
        self._ocp = OCP_MATERIALS[p.material]
        self.x_bulk = p.sto_discharged
        self.delta = 0.0
        self.charged_C = 0.0
        """Charge passed on charge since assembly (C)."""
        self.discharged_C = 0.0
        self.side_reaction_C = 0.0
        """Charge that went to side reactions (C): what CE < 100 % is made of."""
        self._q0_C = p.capacity_mAh * 3.6
        f = p.arrhenius()
        self._r_ohm = p.series_asr_ohm_cm2 * f / p.area_cm2
        self._i0_A = 2.0 * p.exchange_current_density_mA_cm2 / f * p.area_cm2 * 1e-3
        self._eta_scale_V = 2.0 * GAS_CONSTANT_J_MOL_K * (p.temperature_C + 273.15) / FARADAY_C_MOL
        self._t_d = p.diffusion_time_s * f

    def reconfigure(self, **changes: Any) -> None:
        """Replace parameters (e.g. ``temperature_C=50``); the state is kept."""
        state = (self.x_bulk, self.delta, self.charged_C, self.discharged_C, self.side_reaction_C)
        self.__init__(replace(self.params, **changes))  # type: ignore[misc]
        self.x_bulk, self.delta, self.charged_C, self.discharged_C, self.side_reaction_C = state

    # -- state ---------------------------------------------------------------------------------
    @property
    def capacity_C(self) -> float:
        """The usable capacity now (C), after fade."""
        p = self.params
        return self._q0_C * max(0.05, 1.0 - p.capacity_fade_pct_per_cycle / 100.0 * self.equivalent_cycles)

    def _q_per_x_C(self) -> float:
        p = self.params
        return self.capacity_C / (p.sto_discharged - p.sto_charged)

    def side_reaction_fraction(self) -> float:
        """f: the fraction of a charge current going to side reactions now."""
        p = self.params
        return (1.0 - p.coulombic_efficiency_pct / 100.0) + (p.first_cycle_loss_pct / 100.0) * math.exp(
            -self.charged_C / self._q0_C)

    @property
    def x_surface(self) -> float:
        """x at the particles' surface (may pass the window's ends: the wall's region)."""
        return self.x_bulk + self.delta

    def advance(self, dt_s: float, current_A: float) -> None:
        """Integrate the state over ``dt_s`` (s) at a constant ``current_A`` (A, + = charge);
        exact for the diffusion lag at constant current."""
        if dt_s <= 0:
            return
        if current_A > 0:
            f = self.side_reaction_fraction()
            stored = current_A * (1.0 - f)
            self.side_reaction_C += current_A * f * dt_s
            self.charged_C += current_A * dt_s
        else:
            stored = current_A
            self.discharged_C -= current_A * dt_s
        rate = -stored / self._q_per_x_C()  # dx_b/dt (1/s)
        p = self.params
        # Past the window's ends the charge goes to side reactions at the wall's voltage; the
        # bound only keeps the state finite.
        self.x_bulk = min(max(self.x_bulk + rate * dt_s, p.sto_charged - 0.2), p.sto_discharged + 0.2)
        tau = 1.5 * self._t_d
        target = self._t_d * rate
        self.delta = target + (self.delta - target) * math.exp(-dt_s / tau)

    # -- response ------------------------------------------------------------------------------
    @property
    def equivalent_cycles(self) -> float:
        """Discharge throughput over the fresh capacity."""
        return self.discharged_C / self._q0_C

    def _series_ohm(self) -> float:
        return self._r_ohm * (1.0 + self.params.resistance_growth_pct_per_cycle / 100.0 * self.equivalent_cycles)

    def _overpotential_V(self, current_A: float) -> float:
        return current_A * self._series_ohm() + self._eta_scale_V * math.asinh(current_A / self._i0_A)

    def open_circuit_V(self) -> float:
        """U(x_s): the voltage at zero current now, without noise (V). Past the window's ends the
        material has no more Li to give or room to take: a steep wall (:data:`WALL_V`, width
        :data:`WALL_WIDTH`) on the fit makes the cut-offs come there."""
        p = self.params
        x = self.x_surface
        u = open_circuit_potential_V(p.material, x)
        if x < p.sto_charged:
            u += WALL_V * math.expm1(min((p.sto_charged - x) / WALL_WIDTH, 50.0))
        elif x > p.sto_discharged:
            u -= WALL_V * math.expm1(min((x - p.sto_discharged) / WALL_WIDTH, 50.0))
        return u

    def voltage_V(self, current_A: float) -> float:
        """Terminal voltage (V) with ``current_A`` (A) forced through the cell, with noise."""
        v = self.open_circuit_V() + self._overpotential_V(current_A)
        return v + (self._rng.gauss(0.0, self.params.noise_V) if self.params.noise_V else 0.0)

    def current_A(self, voltage_V: float) -> float:
        """Current (A) the cell takes with ``voltage_V`` (V) held across it (Newton on the
        monotonic overpotential, bracketed)."""
        target = voltage_V - self.open_circuit_V()
        if target == 0.0:
            return 0.0
        r = self._series_ohm()
        if r == 0.0:
            return self._i0_A * math.sinh(target / self._eta_scale_V)
        # |η(I)| ≥ |I·R| with the sign of I, so the root lies between 0 and target/R.
        lo, hi = sorted((0.0, target / r))
        x = 0.5 * (lo + hi)
        for _ in range(60):
            g = self._overpotential_V(x) - target
            if abs(g) < 1e-12:
                break
            if g > 0:
                hi = x
            else:
                lo = x
            slope = r + self._eta_scale_V / math.sqrt(self._i0_A ** 2 + x * x)
            x_new = x - g / slope
            x = x_new if lo < x_new < hi else 0.5 * (lo + hi)
        return x
