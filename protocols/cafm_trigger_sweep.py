"""c-AFM triggering-bias sweeps at grain boundaries and inside grains (seed 004).

The 2400 sweeps the tip bias cyclically (start → vertex → start) at each site the AFM puts
the tip on; per sweep the analysis finds the triggering bias (the ionic → electronic current
surge, parameterised) and checks that the back scan is ohmic [004 L54]; the triggering
current density uses the Hertzian contact area [004 L127–L129]. Sites are listed, or laid
along transects perpendicular to a boundary (triggering bias vs distance, Fig. 2e
[004 L50]). Optional current maps at +0.1 V before and after (Fig. 2b [004 L50]) are stored
as 2-D image datasets. Compliance 1 mA / 10 V [004 L117]. Sweep rate, step and dwell are
not in the seed (its SI is missing, seed-protocols.md §4.2): they are parameters.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from labctl.analysis.cafm import analyse_trigger_sweep, class_statistics
from labctl.steps import MAX_PROGRAM_STEPS, MAX_SWEEP_POINTS, CurrentMap, SafetyLimits, StepProgram, TipMove, VoltageSweep
from protocols.tip_common import SweepProtocolBase, TipContact, _Model, cyclic_points_V


class CyclicSweep(_Model):
    """start → vertex → start in steps of ``step_V`` (V vs Li/Li⁺; negative plates Li)."""

    start_V: float = 0.0
    vertex_V: float = -10.0
    step_V: float = Field(default=0.01, gt=0)


class Site(_Model):
    """A tip position (nm) and what the operator knows of it (from topography/modulus)."""

    x_nm: float = Field(ge=-1e9, le=1e9)
    y_nm: float = Field(ge=-1e9, le=1e9)
    site_class: Literal["GB", "GI", "HL"]
    distance_to_boundary_nm: float | None = Field(default=None, ge=0)


class Transect(_Model):
    """Sites along a line from a point on a boundary, perpendicular to it, into a grain."""

    x_nm: float = Field(ge=-1e9, le=1e9)
    y_nm: float = Field(ge=-1e9, le=1e9)
    direction_deg: float = Field(ge=-360, le=360)
    distances_nm: list[Annotated[float, Field(ge=0, le=1e6)]] = Field(min_length=1, max_length=10_000)


class Detection(_Model):
    """Surge criterion (no numbers in the seed): |I| ≥ ``surge_factor`` × the median of the
    5 points before and ≥ ``min_current_A``; back scan ohmic when the linear fit's
    R² ≥ ``ohmic_r2_min``."""

    surge_factor: float = Field(default=100.0, gt=1)
    min_current_A: float = Field(default=1e-9, gt=0)
    ohmic_r2_min: float = Field(default=0.99, gt=0, le=1)


class MapSpec(_Model):
    """Current map at ``bias_V`` (seed: +0.1 V [004 L50]) on an nx × ny grid."""

    x0_nm: float = Field(ge=-1e9, le=1e9)
    y0_nm: float = Field(ge=-1e9, le=1e9)
    nx: int = Field(ge=1, le=512)
    ny: int = Field(ge=1, le=512)
    pitch_nm: float = Field(gt=0, le=1e6)
    bias_V: float = Field(default=0.1, ge=-210, le=210)
    before: bool = True
    after: bool = True


class CafmTriggerSweep(SweepProtocolBase):
    """Protocol file of kind ``cafm_trigger_sweep``."""

    kind: Literal["cafm_trigger_sweep"] = "cafm_trigger_sweep"
    tip: TipContact = TipContact()
    sweep: CyclicSweep = CyclicSweep()
    sweeps_per_site: int = Field(default=1, ge=1, le=10_000)
    sites: list[Site] = Field(default=[], max_length=100_000)
    transects: list[Transect] = Field(default=[], max_length=10_000)
    gb_half_width_nm: float = Field(default=1.5, ge=0)
    """Transect points within this distance of the boundary count as GB, the rest as GI."""
    detection: Detection = Detection()
    map: MapSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CafmTriggerSweep:
        if not self.sites and not self.transects:
            raise ValueError("give sites or transects (where to put the tip)")
        n_sites = len(self.sites) + sum(len(t.distances_nm) for t in self.transects)
        if n_sites * (1 + self.sweeps_per_site) > MAX_PROGRAM_STEPS:
            raise ValueError(f"{n_sites} sites × {self.sweeps_per_site} sweeps is more than {MAX_PROGRAM_STEPS} steps")
        n = len(self.points_V())
        if n > MAX_SWEEP_POINTS:
            raise ValueError(f"sweep: {n} points; the 2400 holds at most {MAX_SWEEP_POINTS} (raise step_V)")
        for name in ("start_V", "vertex_V"):
            if abs(getattr(self.sweep, name)) > self.voltage_limit_V:
                raise ValueError(f"sweep.{name}: beyond voltage_limit_V {self.voltage_limit_V:g}")
        if self.map is not None and abs(self.map.bias_V) > self.voltage_limit_V:
            raise ValueError(f"map.bias_V beyond voltage_limit_V {self.voltage_limit_V:g}")
        return self

    def points_V(self) -> list[float]:
        return cyclic_points_V(self.sweep.start_V, self.sweep.vertex_V, self.sweep.step_V)

    def all_sites(self) -> list[Site]:
        """The listed sites, then the transects' points (class by ``gb_half_width_nm``)."""
        sites = list(self.sites)
        for t in self.transects:
            ux, uy = math.cos(math.radians(t.direction_deg)), math.sin(math.radians(t.direction_deg))
            for d in t.distances_nm:
                sites.append(Site(x_nm=round(t.x_nm + d * ux, 3), y_nm=round(t.y_nm + d * uy, 3),
                                  site_class="GB" if d <= self.gb_half_width_nm else "GI", distance_to_boundary_nm=d))
        return sites

    @property
    def contact_area_cm2(self) -> float:
        return self.tip.contact_area_nm2 * 1e-14

    def _map_step(self, label: str) -> CurrentMap:
        m = self.map
        return CurrentMap(x0_nm=m.x0_nm, y0_nm=m.y0_nm, nx=m.nx, ny=m.ny, pitch_nm=m.pitch_nm, bias_V=m.bias_V,
                          label=label)

    def program(self) -> StepProgram:
        """[map before] + per site: tip move, ``sweeps_per_site`` cyclic sweeps + [map after]."""
        steps: list = []
        if self.map is not None and self.map.before:
            steps.append(self._map_step("current map before"))
        points = self.points_V()
        delay = self.source_delay_s(self.sweep.step_V)
        for n, site in enumerate(self.all_sites(), start=1):
            label = f"site {n} {site.site_class}" + (
                f" d={site.distance_to_boundary_nm:g} nm" if site.distance_to_boundary_nm is not None else "")
            steps.append(TipMove(x_nm=site.x_nm, y_nm=site.y_nm, site_class=site.site_class,
                                 distance_to_boundary_nm=site.distance_to_boundary_nm, label=label, cycle=n))
            for k in range(self.sweeps_per_site):
                steps.append(VoltageSweep(points_V=points, source_delay_s=delay, nplc=self.nplc, abort_on_compliance=True,
                                          label=f"{label} sweep {k + 1}", cycle=n))
        if self.map is not None and self.map.after:
            steps.append(self._map_step("current map after"))
        return StepProgram(steps=steps, area_cm2=self.contact_area_cm2, electrode="tip",
                            contact_force_nN=self.tip.force_nN,
                            safety=SafetyLimits(max_abs_voltage_V=self.voltage_limit_V,
                                                max_abs_current_A=self.compliance_current_A))

    # -- analysis ---------------------------------------------------------------------------
    def analyse_run(self, columns: dict[str, np.ndarray], steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Results from the channel's columns and step rows (see :mod:`labctl.analysis.cafm`)."""
        program = self.program()
        executed = {row["step_index"] for row in steps}
        step_of = columns["step_index"]
        area_cm2 = self.contact_area_cm2
        per_site: dict[str, list] = {k: [] for k in (
            "x_nm", "y_nm", "site_class", "distance_to_boundary_nm", "triggering_bias_V", "triggering_current_A",
            "onset_current_A", "onset_current_density_A_cm2", "back_scan_resistance_ohm", "back_scan_r2", "back_scan_ohmic")}
        site = None
        maps: dict[str, Any] = {}
        for index, step, _cycle in program.iter_steps():
            if index not in executed:
                continue
            mask = step_of == index
            if isinstance(step, TipMove):
                site = step
            elif isinstance(step, VoltageSweep) and site is not None:
                r = analyse_trigger_sweep(columns["voltage_V"][mask], columns["current_A"][mask],
                                          surge_factor=self.detection.surge_factor,
                                          min_current_A=self.detection.min_current_A,
                                          ohmic_r2_min=self.detection.ohmic_r2_min)
                for key, value in (("x_nm", site.x_nm), ("y_nm", site.y_nm), ("site_class", site.site_class),
                                   ("distance_to_boundary_nm", math.nan if site.distance_to_boundary_nm is None
                                    else site.distance_to_boundary_nm),
                                   ("triggering_bias_V", r.triggering_bias_V),
                                   ("triggering_current_A", r.triggering_current_A),
                                   ("onset_current_A", r.onset_current_A),
                                   ("onset_current_density_A_cm2", r.onset_current_A / area_cm2),
                                   ("back_scan_resistance_ohm", r.back_scan_resistance_ohm),
                                   ("back_scan_r2", r.back_scan_r2), ("back_scan_ohmic", float(r.ohmic))):
                    per_site[key].append(value)
            elif isinstance(step, CurrentMap):
                current = np.full(step.nx * step.ny, np.nan)
                got = columns["current_A"][mask]
                current[:len(got)] = got
                name = "current_map_before" if "before" in step.label else "current_map_after"
                maps[name] = {"current_A": current.reshape(step.ny, step.nx),
                              "x_nm": [step.x0_nm + i * step.pitch_nm for i in range(step.nx)],
                              "y_nm": [step.y0_nm + j * step.pitch_nm for j in range(step.ny)],
                              "bias_V": step.bias_V}
        classes = np.array(per_site["site_class"], dtype=object)
        bias = np.array(per_site["triggering_bias_V"], dtype=float)
        stats = {c: class_statistics(bias[classes == c]) for c in ("GB", "GI", "HL") if np.any(classes == c)}
        gb, gi = stats.get("GB", {}).get("median", math.nan), stats.get("GI", {}).get("median", math.nan)
        area = self.tip.contact_area_nm2
        stated = self.tip.stated_contact_area_nm2
        results: dict[str, Any] = {
            "contact_area_nm2": area,
            "stated_contact_area_nm2": stated if stated is not None else math.nan,
            "contact_area_note": (f"Hertz contact area from r = {self.tip.radius_nm:g} nm, P = {self.tip.force_nN:g} nN, "
                                  f"E* = {self.tip.modulus_GPa:g} GPa is {area:.1f} nm²"
                                  + (f"; the stated {stated:g} nm² differs by {area / stated:.2f}×" if stated else "")),
            "sweep_step_V": self.sweep.step_V,
            "sites": per_site,
            "statistics": {c: s for c, s in stats.items()},
            "gb_median_triggering_bias_V": gb,
            "gi_median_triggering_bias_V": gi,
            "gi_to_gb_ratio": gi / gb if math.isfinite(gb) and math.isfinite(gi) and gb else math.nan,
            "n_sweeps": len(bias),
            "n_triggered": int(np.sum(np.isfinite(bias))),
            "n_ohmic_back_scans": int(np.sum(per_site["back_scan_ohmic"])) if per_site["back_scan_ohmic"] else 0,
            **maps,
        }
        return results

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        """Lines for the terminal."""
        lines = []
        for c, name in (("GB", "grain boundary"), ("GI", "grain interior"), ("HL", "homogenising layer")):
            s = results["statistics"].get(c)
            if s and s["n"]:
                lines.append(f"triggering bias, {name}: {s['median']:.3g} V (median of {s['n']}; "
                             f"{s['min']:.3g} … {s['max']:.3g} V)")
        if math.isfinite(results["gi_to_gb_ratio"]):
            lines.append(f"grain interior / boundary: {results['gi_to_gb_ratio']:.0f}×")
        lines.append(f"{results['n_triggered']} of {results['n_sweeps']} sweeps triggered, "
                     f"{results['n_ohmic_back_scans']} with an ohmic back scan")
        lines.append(results["contact_area_note"])
        return lines
