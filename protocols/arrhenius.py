"""Ionic conductivity at several temperatures and its Arrhenius activation energy.

Seed 002: SS | CSE | SS from 25 to 80 °C, σ_T = A·exp(−E_a/RT) (Eq. S2 [002 L31–L39]); seed 003:
LPSCl 0.9 mS cm⁻¹ at 25 °C, E_a 0.31 ± 0.03 eV [003 L374]; seed 000: 30 / 50 / 70 °C [000 L183].
At each temperature the chamber is set and the run waits until its air has stayed within
``tolerance_K`` for ``soak_min`` (the cell follows it), then a spectrum is measured and fitted;
E_a comes from a straight line through ln σ (``arrhenius_form: sigma``, Eq. S2 as written) or
ln(σT) (``sigma_T``) against 1/T (:func:`labctl.analysis.arrhenius`). ``return_to_C`` sets the
chamber back at the end without waiting (the chamber is never switched off by labctl).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from labctl.analysis.conductivity import arrhenius
from labctl.steps import MAX_CHAMBER_C, MIN_CHAMBER_C, SafetyLimits, SetTemperature, StepProgram
from labctl.store import RunFile
from protocols.base import ProtocolBase
from protocols.characterisation import FitSettings, ImpedanceSettings, Limits, fitted_spectra, rest

Temperature = Field(ge=MIN_CHAMBER_C, le=MAX_CHAMBER_C)


class Arrhenius(ProtocolBase):
    """Protocol file of kind ``arrhenius`` (units in the field names)."""

    kind: Literal["arrhenius"] = "arrhenius"
    chamber: str = Field(default="chamber", description="the station's temperature chamber")
    temperatures_C: list[float] = Field(min_length=3, max_length=100)
    tolerance_K: float = Field(default=0.5, gt=0, le=20)
    soak_min: float = Field(default=30.0, ge=0, le=7 * 1440)
    timeout_h: float = Field(default=4.0, gt=0, le=7 * 24)
    poll_s: float = Field(default=10.0, ge=0.1, le=3600)
    return_to_C: float | None = Field(default=None, ge=MIN_CHAMBER_C, le=MAX_CHAMBER_C)
    impedance: ImpedanceSettings = ImpedanceSettings()
    fit: FitSettings = FitSettings(circuit="Rb-CPE")
    arrhenius_form: Literal["sigma", "sigma_T"] = "sigma"
    record_interval_s: float = Field(default=60.0, ge=0.01, le=3600)
    limits: Limits = Limits()

    @model_validator(mode="after")
    def _consistent(self) -> Arrhenius:
        for k, t in enumerate(self.temperatures_C):
            if not MIN_CHAMBER_C <= t <= MAX_CHAMBER_C:
                raise ValueError(f"temperatures_C[{k}]: {t:g} °C is outside {MIN_CHAMBER_C:g} … {MAX_CHAMBER_C:g} °C")
        if len(set(self.temperatures_C)) < 3:
            raise ValueError("temperatures_C: an Arrhenius fit needs at least 3 distinct temperatures")
        if self.timeout_h * 3600 < self.soak_min * 60:
            raise ValueError("timeout_h is shorter than soak_min")
        return self

    def program(self) -> StepProgram:
        """Per temperature: set point and soak, then a spectrum; optionally a last set point."""
        steps: list[Any] = [rest(60.0, self.record_interval_s, "rest before")]
        for t in self.temperatures_C:
            steps += [SetTemperature(temperature_C=t, tolerance_K=self.tolerance_K, soak_s=self.soak_min * 60,
                                     timeout_s=self.timeout_h * 3600, poll_s=self.poll_s, label=f"{t:g} °C"),
                      self.impedance.step(f"EIS {t:g} °C")]
        if self.return_to_C is not None:
            steps.append(SetTemperature(temperature_C=self.return_to_C, wait=False, soak_s=0.0, label="standby"))
        return StepProgram(steps=steps, area_cm2=self.cell.area_cm2,
                           safety=SafetyLimits(max_abs_voltage_V=self.limits.voltage_limit_V,
                                               max_abs_current_A=self.limits.current_limit_mA * 1e-3))

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """σ_ion at each temperature (the set point the chamber held) and E_a (eV); the first
        temperature's σ_ion and fit under the issue's names."""
        rows, problems = fitted_spectra(run, channel, self.fit, self.cell.electrolyte_thickness_um, self.cell.area_cm2)
        by_step = {int(s["step_index"]): s for s in run.steps() if s["channel"] == channel}
        temperatures, sigmas = [], []
        for row in rows:
            label = str(by_step.get(row["step_index"], {}).get("label", ""))
            t = next((t for t in self.temperatures_C if label == f"EIS {t:g} °C"), None)
            if t is None:
                problems.append(f"spectrum {row['spectrum_index']}: not one of the protocol's temperature steps")
                continue
            temperatures.append(t)
            sigmas.append(row["ionic_conductivity_S_cm"])
        out: dict[str, Any] = {"temperature_C": temperatures, "ionic_conductivity_S_cm_vs_T": sigmas,
                               "problems": problems}
        if rows:
            out.update({k: v for k, v in rows[0].items() if k not in ("spectrum_index", "step_index", "test_time_s")})
        if len(set(temperatures)) >= 3:
            out.update(arrhenius(temperatures, sigmas, form=self.arrhenius_form).as_results())
        else:
            problems.append(f"{len(set(temperatures))} temperature(s) with a fitted spectrum; E_a needs 3")
        return out

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        lines = [f"σ_ion {s * 1e3:.3g} mS cm⁻¹ at {t:g} °C" for t, s in
                 zip(results.get("temperature_C", []), results.get("ionic_conductivity_S_cm_vs_T", []))]
        if "activation_energy_eV" in results:
            lines.append(f"E_a = {results['activation_energy_eV']:.3f} ± {results['activation_energy_std_eV']:.3f} eV "
                         f"(ln {'σ' if results['arrhenius_form'] == 'sigma' else 'σT'} vs 1/T, R² "
                         f"{results['arrhenius_r_squared']:.4f})")
        return lines + list(results.get("problems", []))
