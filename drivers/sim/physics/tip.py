"""c-AFM tip | LLZO | Li junction: the physics behind the simulated 2400 in c-AFM runs.

A :class:`TipJunction` is a :class:`drivers.sim.smu.Load`: the simulated 2400 sources the tip
bias (V vs Li/Li⁺, the Li counter/reference electrode [004 L52]) and measures the current.
The AFM simulator (:mod:`drivers.sim.afm`) moves the tip and brings it into or out of
contact on the same object, so the 2400 sees the junction under the tip.

The model (seed 004, seed-protocols.md §4, §5, §9):

* **Sample** (:class:`SampleMap`): polycrystalline LLZO, Voronoi grains (seeded), grain
  boundaries (GB) ``gb_width_nm`` wide; optionally covered by a homogenising layer (H.L.),
  on which the triggering bias is larger than at the LLZO grain boundaries and the same
  everywhere [004 L72, L78].
* **Contact**: Hertzian, contact radius a = (3·P·r / (4·E*))^(1/3), area A = π·a²
  [004 L127]. The seed's own inputs (r = 20 nm, P = 400 nN, E* = 60 GPa [004 L129]) give
  a = 4.64 nm and A ≈ 68 nm², not the ≈ 30 nm² it states (seed-protocols.md §10 item 5).
* **HRS / ionic current**: before a filament, the current is ionic (Li⁺), the tip-contact
  spreading resistance R = 1/(4·σ·a) (Holm; a disc contact on a half-space), or for a pad
  electrode the pellet's bulk resistance t/(σ·A). With the default effective σ this is
  tens of pA at −0.1 V under the tip ("pA order").
* **Triggering bias**: a Li filament penetrates when the bias reaches the site's triggering
  bias: −0.12 V at a grain boundary [004 L54], rising toward the grain-interior value
  (< −9 V [004 L56]) with the distance from the boundary (Fig. 2e [004 L50]; the shape of
  that curve is not in the seed: here an exponential approach with ``trigger_decay_length_nm``).
  Then the junction is ohmic: the filament's resistance in parallel with the ionic path (the
  back scan is linear [004 L54]). A penetrated spot stays conductive (the "highly conductive
  bumps" of the +0.1 V current map after penetration [004 L50, L56]).
* **Memristor** (seed-protocols.md §5): LRS = filament ∥ ionic path, HRS = ionic path. Set
  at the site's triggering bias the first time, then at a threshold relaxing toward
  ``set_bias_steady_V``; reset when the bias reaches ``reset_bias_V`` (below the +1 V reset
  limit [004 L101]). Under the tip the reset always succeeds [004 L107] and R_HRS/R_LRS is
  ≈ 10⁵ [004 L22, L107]; under a 500 µm pad the ionic path is a few tens of kΩ, so
  R_HRS/R_LRS stays below 10, and the thick filament can hardly be reset [004 L105–L107]
  (``pad_reset_probability``).

Not in the seeds (model choices, marked NS where they are defined): the effective ionic
conductivity near the surface, the filament resistance, the decay length, the scatter, the
H.L. triggering bias, the steady set threshold and the reset threshold. The seed's set bias
"~ −0.25 V" lies outside its own −0.2 V set limit (seed-protocols.md §10 item 6); the steady
set threshold here is −0.18 V so that the −0.2 V limit sets the junction.

Randomness (site-to-site scatter, current noise, set/reset jitter, pad reset failures) comes
from generators seeded by ``seed``, so runs are exactly reproducible.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

#: Defaults of seed 004: Pt tip radius 20 nm [004 L117], force 400 nN, E* 60 GPa [004 L129].
SEED_TIP_RADIUS_NM = 20.0
SEED_FORCE_NN = 400.0
SEED_MODULUS_GPA = 60.0
#: The contact area seed 004 states for those inputs [004 L129]; the formula gives ≈ 68 nm².
SEED_STATED_CONTACT_AREA_NM2 = 30.0


def hertz_contact_radius_nm(tip_radius_nm: float, force_nN: float, modulus_GPa: float) -> float:
    """Hertzian contact radius a = (3·P·r / (4·E*))^(1/3) in nm [004 L127].

    Args:
        tip_radius_nm: tip radius r (nm), > 0.
        force_nN: tip force P (nN), > 0.
        modulus_GPa: effective modulus E* (GPa), > 0.

    Raises:
        ValueError: an input is not > 0.
    """
    for name, value in (("tip_radius_nm", tip_radius_nm), ("force_nN", force_nN), ("modulus_GPa", modulus_GPa)):
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")
    a_cubed_m3 = 3.0 * (force_nN * 1e-9) * (tip_radius_nm * 1e-9) / (4.0 * modulus_GPa * 1e9)
    return a_cubed_m3 ** (1.0 / 3.0) * 1e9


@dataclass(frozen=True)
class SampleParameters:
    """The LLZO surface under the tip.

    ``field_nm``: side of the square sample field (nm), origin at a corner.
    ``grain_size_nm``: mean grain diameter; grains are Voronoi cells of seeds on a jittered
    square grid of this pitch. ``gb_width_nm``: width of a grain boundary ("a few nm").
    ``homogenising_layer``: the H.L. covers the surface (uniform triggering bias).
    """

    field_nm: float = 1000.0
    grain_size_nm: float = 250.0
    gb_width_nm: float = 3.0
    homogenising_layer: bool = False
    seed: int = 4

    def __post_init__(self) -> None:
        for name in ("field_nm", "grain_size_nm", "gb_width_nm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")


class SampleMap:
    """Voronoi grains over a square field; where the boundaries are.

    All coordinates in nm. Seeds extend one grain beyond the field so that cells at the edge
    are closed.
    """

    def __init__(self, params: SampleParameters = SampleParameters()) -> None:
        self.params = params
        rng = np.random.default_rng(params.seed)
        g = params.grain_size_nm
        n = int(math.ceil(params.field_nm / g)) + 2
        ix, iy = np.meshgrid(np.arange(-1, n), np.arange(-1, n), indexing="ij")
        centres = (np.stack([ix.ravel(), iy.ravel()], axis=1) + 0.5) * g
        self.seeds_nm = centres + rng.uniform(-0.35 * g, 0.35 * g, size=centres.shape)

    def grain_and_distance(self, x_nm: float, y_nm: float) -> tuple[int, float]:
        """(grain index, distance in nm from (x, y) to the nearest grain boundary's centre line).

        Exact for Voronoi cells: the distance to a convex cell's boundary is the smallest
        distance to the bisectors with the neighbouring seeds.
        """
        p = np.array([x_nm, y_nm])
        d2 = np.sum((self.seeds_nm - p) ** 2, axis=1)
        i = int(np.argmin(d2))
        others = np.delete(np.arange(len(d2)), i)
        sep = np.linalg.norm(self.seeds_nm[others] - self.seeds_nm[i], axis=1)
        return i, float(np.min((d2[others] - d2[i]) / (2.0 * sep)))

    def distance_to_boundary_nm(self, x_nm: float, y_nm: float) -> float:
        """Distance (nm) from (x, y) to the nearest grain boundary's centre line."""
        return self.grain_and_distance(x_nm, y_nm)[1]

    def site_class(self, x_nm: float, y_nm: float) -> Literal["GB", "GI"]:
        """"GB" within half a boundary width of a boundary's centre line, else "GI"."""
        return "GB" if self.distance_to_boundary_nm(x_nm, y_nm) <= self.params.gb_width_nm / 2 else "GI"

    def transect(self, grain: int, neighbour: int) -> tuple[tuple[float, float], float]:
        """A point on the boundary between two neighbouring grains and the direction (degrees)
        pointing from it into ``grain``, perpendicular to the boundary: the line along which
        the triggering bias is measured vs distance (Fig. 2e [004 L50]).

        Raises:
            ValueError: the midpoint of the two seeds is not on their common boundary.
        """
        a, b = self.seeds_nm[grain], self.seeds_nm[neighbour]
        mid = (a + b) / 2
        if self.distance_to_boundary_nm(*mid) > 1e-6 or self.grain_and_distance(*(mid + 1e-3 * (a - b)))[0] != grain:
            raise ValueError(f"grains {grain} and {neighbour} do not share a boundary at their seeds' midpoint")
        direction = math.degrees(math.atan2(a[1] - b[1], a[0] - b[0]))
        return (float(mid[0]), float(mid[1])), direction


@dataclass(frozen=True)
class JunctionParameters:
    """Electrical parameters of the tip (or pad) | LLZO | Li junction. Units in the names."""

    gb_trigger_bias_V: float = -0.12
    """Triggering bias at a grain boundary [004 L54]."""
    gi_trigger_bias_V: float = -9.5
    """Triggering bias far inside a grain: "< −9 V" [004 L56]."""
    trigger_decay_length_nm: float = 12.0
    """NS: how fast the triggering bias approaches the grain-interior value with distance."""
    trigger_scatter_fraction: float = 0.02
    """NS: site-to-site relative scatter of the triggering bias (seeded, fixed per site)."""
    layer_trigger_bias_V: float = -2.5
    """NS: triggering bias on the H.L.; the seed says only "significantly larger" than at the
    LLZO grain boundaries and uniform [004 L72, L78]."""
    ionic_conductivity_S_cm: float = 2.5e-4
    """NS: effective ionic conductivity under the electrode (below the bulk > 10⁻³ S cm⁻¹ of
    [004 L36]: the surface under a nano-contact)."""
    pellet_thickness_um: float = 300.0
    """LLZO pellet thickness [004 L115] (pad electrodes: bulk ionic resistance)."""
    filament_resistance_ohm: float = 2.0e4
    """NS: resistance of a Li filament between the electrode and the Li counter electrode."""
    current_noise_A: float = 1.0e-12
    """NS: rms noise of the measured ionic current."""
    set_bias_steady_V: float = -0.18
    """NS: set threshold after several cycles (seed: "~ −0.25 V", outside its −0.2 V limit)."""
    set_relax_cycles: float = 3.0
    """NS: cycles over which the set threshold relaxes from the triggering bias to steady."""
    set_jitter_V: float = 0.005
    """NS: cycle-to-cycle rms jitter of the set threshold."""
    reset_bias_V: float = 0.6
    """NS: reset threshold (below the +1 V reset limit [004 L101])."""
    reset_jitter_V: float = 0.03
    pad_reset_probability: float = 0.05
    """NS: chance that a reset excursion strips a pad's thick filament ("can hardly be
    reset" [004 L105–L107]); under the tip the reset always succeeds [004 L107]."""
    bump_radius_nm: float = 5.0
    """NS: radius around a penetration point that conducts through its filament."""


@dataclass(frozen=True)
class Electrode:
    """The working electrode: the AFM tip (Hertzian contact) or a square Au pad."""

    kind: Literal["tip", "pad"] = "tip"
    tip_radius_nm: float = SEED_TIP_RADIUS_NM
    force_nN: float = SEED_FORCE_NN
    modulus_GPa: float = SEED_MODULUS_GPA
    pad_side_um: float = 500.0

    def contact_radius_nm(self, force_nN: float | None = None) -> float:
        """Hertzian contact radius (tip); for a pad, the radius of a disc of its area."""
        if self.kind == "pad":
            return self.pad_side_um * 1e3 / math.sqrt(math.pi)
        return hertz_contact_radius_nm(self.tip_radius_nm, force_nN or self.force_nN, self.modulus_GPa)

    def area_cm2(self, force_nN: float | None = None) -> float:
        """Contact area in cm² (tip: π·a²; pad: side²)."""
        if self.kind == "pad":
            return (self.pad_side_um * 1e-4) ** 2
        return math.pi * (self.contact_radius_nm(force_nN) * 1e-7) ** 2


@dataclass
class _Spot:
    """A point where a filament grew (penetration) and its memristor state."""

    x_nm: float
    y_nm: float
    filament: bool = True
    sets: int = 1
    set_threshold_V: float = 0.0
    reset_threshold_V: float = 0.0
    reset_armed: bool = True


@dataclass
class JunctionLog:
    """What happened in the junction (for tests): set and reset events, failed resets."""

    sets: list[tuple[float, float, float]] = field(default_factory=list)
    """(x_nm, y_nm, bias_V) of every set / penetration."""
    resets: list[tuple[float, float, float]] = field(default_factory=list)
    failed_resets: int = 0


class TipJunction:
    """The junction under the electrode, as a :class:`drivers.sim.smu.Load` with memory.

    ``current_A(voltage_V)`` applies the bias: it may grow a filament (bias ≤ the triggering
    or set threshold) or strip one (bias ≥ the reset threshold), then returns the current at
    the new state. ``voltage_V(current_A)`` is the inverse at the present state (used by the
    SMU in compliance) and changes nothing. Thread-safe. With the tip out of contact the
    junction is open (0 A).

    Args:
        sample: the sample map (``None``: default :class:`SampleParameters`).
        params: junction parameters.
        electrode: tip or pad.
        seed: seed of the noise and switching randomness.
    """

    def __init__(self, sample: SampleMap | SampleParameters | None = None, params: JunctionParameters = JunctionParameters(),
                 electrode: Electrode = Electrode(), *, seed: int = 0) -> None:
        self.sample = sample if isinstance(sample, SampleMap) else SampleMap(sample or SampleParameters())
        self.params = params
        self.electrode = electrode
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._lock = threading.RLock()
        self._spots: list[_Spot] = []
        self.log = JunctionLog()
        self.x_nm = self.sample.params.field_nm / 2
        self.y_nm = self.sample.params.field_nm / 2
        self.force_nN = electrode.force_nN
        self.in_contact = electrode.kind == "pad"

    # -- positioning (the AFM simulator drives these) -------------------------------------
    def move_to(self, x_nm: float, y_nm: float) -> None:
        with self._lock:
            self.x_nm, self.y_nm = float(x_nm), float(y_nm)

    def set_contact(self, in_contact: bool, force_nN: float | None = None) -> None:
        with self._lock:
            self.in_contact = bool(in_contact) or self.electrode.kind == "pad"
            if force_nN is not None and force_nN > 0:
                self.force_nN = float(force_nN)

    # -- the site under the electrode -----------------------------------------------------
    def triggering_bias_V(self, x_nm: float, y_nm: float) -> float:
        """The bias (V vs Li/Li⁺, negative) at which a filament penetrates at (x, y).

        GB: ``gb_trigger_bias_V``; with distance d from the boundary's edge it approaches
        ``gi_trigger_bias_V`` as 1 − exp(−d/λ); on the H.L., ``layer_trigger_bias_V``; times
        a fixed, seeded site scatter. A pad electrode spans many boundaries: GB value.
        """
        p = self.params
        if self.electrode.kind == "pad":
            base = p.gb_trigger_bias_V
        elif self.sample.params.homogenising_layer:
            base = p.layer_trigger_bias_V
        else:
            d = max(0.0, self.sample.distance_to_boundary_nm(x_nm, y_nm) - self.sample.params.gb_width_nm / 2)
            base = p.gi_trigger_bias_V + (p.gb_trigger_bias_V - p.gi_trigger_bias_V) * math.exp(-d / p.trigger_decay_length_nm)
        site_rng = np.random.default_rng([self.seed, self.sample.params.seed, int(round(x_nm)) & 0xFFFFFFFF,
                                          int(round(y_nm)) & 0xFFFFFFFF])
        scatter = float(np.clip(site_rng.normal(0.0, p.trigger_scatter_fraction), -0.06, 0.06))
        return base * (1.0 + scatter)

    def ionic_resistance_ohm(self) -> float:
        """HRS: spreading resistance 1/(4σa) under the tip, bulk t/(σA) under a pad."""
        sigma_S_m = self.params.ionic_conductivity_S_cm * 100.0
        if self.electrode.kind == "pad":
            return self.params.pellet_thickness_um * 1e-6 / (sigma_S_m * self.electrode.area_cm2() * 1e-4)
        return 1.0 / (4.0 * sigma_S_m * self.electrode.contact_radius_nm(self.force_nN) * 1e-9)

    def lrs_resistance_ohm(self) -> float:
        """LRS: the filament in parallel with the ionic path."""
        r_ion, r_fil = self.ionic_resistance_ohm(), self.params.filament_resistance_ohm
        return r_ion * r_fil / (r_ion + r_fil)

    def _spot_here(self) -> _Spot | None:
        if self.electrode.kind == "pad":
            return self._spots[0] if self._spots else None
        radius2 = self.params.bump_radius_nm ** 2
        best, best_d2 = None, radius2
        for spot in self._spots:
            d2 = (spot.x_nm - self.x_nm) ** 2 + (spot.y_nm - self.y_nm) ** 2
            if d2 <= best_d2:
                best, best_d2 = spot, d2
        return best

    def filament_here(self) -> bool:
        """True when the electrode sits on a conducting filament (LRS)."""
        with self._lock:
            spot = self._spot_here()
            return bool(spot and spot.filament and self.in_contact)

    # -- switching --------------------------------------------------------------------------
    def _apply(self, bias_V: float) -> _Spot | None:
        p = self.params
        spot = self._spot_here()
        if spot is None:
            if bias_V <= self.triggering_bias_V(self.x_nm, self.y_nm):
                spot = _Spot(self.x_nm, self.y_nm)
                self._spots.append(spot)
                self._rearm(spot)
                self.log.sets.append((self.x_nm, self.y_nm, bias_V))
            return spot
        if not spot.filament:
            if bias_V <= spot.set_threshold_V:
                spot.filament = True
                spot.sets += 1
                self.log.sets.append((spot.x_nm, spot.y_nm, bias_V))
            return spot
        if bias_V <= 0.0:
            spot.reset_armed = True
        elif spot.reset_armed and bias_V >= spot.reset_threshold_V:
            spot.reset_armed = False  # one chance per positive excursion
            ok = self.electrode.kind == "tip" or self._rng.random() < p.pad_reset_probability
            if ok:
                spot.filament = False
                self._rearm(spot)
                self.log.resets.append((spot.x_nm, spot.y_nm, bias_V))
            else:
                self.log.failed_resets += 1
        return spot

    def _rearm(self, spot: _Spot) -> None:
        """Draw the thresholds of the spot's next set and reset."""
        p = self.params
        first = self.triggering_bias_V(spot.x_nm, spot.y_nm)
        steady = p.set_bias_steady_V + (first - p.set_bias_steady_V) * math.exp(-spot.sets / p.set_relax_cycles)
        spot.set_threshold_V = min(-1e-3, steady + float(self._rng.normal(0.0, p.set_jitter_V)))
        spot.reset_threshold_V = max(1e-3, p.reset_bias_V + float(self._rng.normal(0.0, p.reset_jitter_V)))

    # -- Load -------------------------------------------------------------------------------
    def advance(self, dt_s: float, current_A: float) -> None:
        """Nothing integrates over time in this model (switching is by bias thresholds)."""

    def current_A(self, voltage_V: float) -> float:
        """Apply ``voltage_V`` (V vs Li/Li⁺) and return the current (A, negative = Li plating
        at the electrode); 0 A with the tip out of contact."""
        with self._lock:
            if not self.in_contact:
                return 0.0
            spot = self._apply(voltage_V)
            if spot is not None and spot.filament:
                return voltage_V / self.lrs_resistance_ohm()
            return voltage_V / self.ionic_resistance_ohm() + float(self._rng.normal(0.0, self.params.current_noise_A))

    def voltage_V(self, current_A: float) -> float:
        """Bias that drives ``current_A`` at the present state (no switching); an open
        junction (out of contact) has no defined voltage and returns ±210 V (the SMU limit)."""
        with self._lock:
            if not self.in_contact:
                return math.copysign(210.0, current_A) if current_A else 0.0
            spot = self._spot_here()
            r = self.lrs_resistance_ohm() if spot is not None and spot.filament else self.ionic_resistance_ohm()
            return current_A * r
