"""Impedance spectroscopy of a cell at open circuit, fitted with an equivalent circuit.

SS | SSE | SS for the ionic conductivity σ = d / (R·A) [000 L185–L189], [002 L31–L35]; Li | SSE | Li
for R_b, R_gb and R_CT (FSE at 30 °C: 16 / 14 / 46 Ω cm² [000 L87]); 3 MHz – 1 Hz, 5 mV
[000 L185]. The cell rests at open circuit for ``rest_before_s``, then ``spectra`` spectra are
measured ``interval_s`` apart (a rest between). Results: the first spectrum's fit under the
issue's names, and every spectrum's values as arrays (``per_spectrum``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from labctl.steps import Loop, SafetyLimits, StepProgram
from labctl.store import RunFile
from protocols.base import ProtocolBase
from protocols.characterisation import (SPECTRUM_SERIES, FitSettings, ImpedanceSettings, Limits, fitted_spectra, rest,
                                        series)


class EIS(ProtocolBase):
    """Protocol file of kind ``eis`` (units in the field names)."""

    kind: Literal["eis"] = "eis"
    impedance: ImpedanceSettings = ImpedanceSettings()
    fit: FitSettings = FitSettings()
    rest_before_s: float = Field(default=600.0, gt=0, le=7 * 86400)
    spectra: int = Field(default=1, ge=1, le=10_000)
    interval_s: float = Field(default=0.0, ge=0, le=7 * 86400)
    record_interval_s: float = Field(default=10.0, ge=0.01, le=3600)
    limits: Limits = Limits()

    def program(self) -> StepProgram:
        """Rest at open circuit, then the spectra (a loop when there are several)."""
        body: list[Any] = [self.impedance.step("EIS")]
        if self.interval_s > 0 and self.spectra > 1:
            body.append(rest(self.interval_s, self.record_interval_s, "rest between spectra"))
        entries: list[Any] = [rest(self.rest_before_s, self.record_interval_s, "rest before EIS")]
        entries += body if self.spectra == 1 else [Loop(steps=body, count=self.spectra)]
        return StepProgram(steps=entries, area_cm2=self.cell.area_cm2,
                           safety=SafetyLimits(max_abs_voltage_V=self.limits.voltage_limit_V,
                                               max_abs_current_A=self.limits.current_limit_mA * 1e-3))

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """The first spectrum's fit (R_b, R_gb, R_CT in Ω cm², σ_ion, fit quality) and every
        spectrum's as arrays; ``problems`` lists spectra that could not be fitted."""
        rows, problems = fitted_spectra(run, channel, self.fit, self.cell.electrolyte_thickness_um, self.cell.area_cm2)
        out: dict[str, Any] = {"spectra_measured": len(run.spectra(channel)), "spectra_fitted": len(rows),
                               "problems": problems}
        if rows:
            out.update({k: v for k, v in rows[0].items() if k not in ("spectrum_index", "step_index", "test_time_s")})
            out["per_spectrum"] = series(rows, SPECTRUM_SERIES)
        return out

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        """Lines for the terminal."""
        if "bulk_resistance_ohm_cm2" not in results:
            return [f"no spectrum fitted ({results.get('spectra_measured', 0)} measured)"] + list(results.get("problems", []))
        return [impedance_line(results), f"σ_ion = {results['ionic_conductivity_S_cm'] * 1e3:.3g} mS cm⁻¹ "
                f"(from {'R_b + R_gb' if results['ionic_conductivity_from'] == 'total' else 'R_b'})"]


def impedance_line(results: dict[str, Any]) -> str:
    """``R_b 16.0, R_gb 14.1, R_CT 46.2 Ω cm² (circuit …, fit residual 0.3 %)``."""
    parts = [f"R_b {results['bulk_resistance_ohm_cm2']:.3g}"]
    if "grain_boundary_resistance_ohm_cm2" in results:
        parts.append(f"R_gb {results['grain_boundary_resistance_ohm_cm2']:.3g}")
    if "charge_transfer_resistance_ohm_cm2" in results:
        parts.append(f"R_CT {results['charge_transfer_resistance_ohm_cm2']:.3g}")
    return (f"{', '.join(parts)} Ω cm² (circuit {results['impedance_circuit']}, fit residual "
            f"{results['impedance_fit_relative_residual_rms'] * 100:.2g} %)")
