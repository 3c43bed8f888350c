"""Li⁺ transference number by the Bruce–Vincent method on a Li | SSE | Li cell.

Seed 002: impedance, a 10 mV chronoamperometry held until the current is steady, impedance
again; t_Li+ = I_ss(ΔV − I_0·R_0) / (I_0(ΔV − I_ss·R_ss)) (Eq. S3 [002 L39–L43]). Seed 000:
FSE 0.69, PolyEA-IL 0.31 [000 L87]. R_0 and R_ss come from the fitted spectra
(``interface_resistance``: the charge-transfer arc, or every arc after the bulk intercept);
I_0 is ΔV / (R_b + R_gb + R_ct) from the first spectrum (``initial_current: ohmic``, the
current once the double layers have charged) or the hold's first reading (``first``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from labctl.analysis.transference import transference_number
from labctl.steps import ConstantVoltage, SafetyLimits, StepProgram
from labctl.store import RunFile
from protocols.base import ProtocolBase
from protocols.characterisation import FitSettings, ImpedanceSettings, Limits, fit_one, rest, spectrum_results, \
    step_record, steps_of
from protocols.dc_polarisation import SteadyStateSettings


class TransferenceNumber(ProtocolBase):
    """Protocol file of kind ``transference_number`` (units in the field names)."""

    kind: Literal["transference_number"] = "transference_number"
    delta_mV: float = Field(default=10.0, gt=0, le=100)
    hold_h: float = Field(gt=0, le=1000)
    rest_before_s: float = Field(default=600.0, gt=0, le=86400)
    record_interval_s: float = Field(default=10.0, ge=0.01, le=3600)
    impedance: ImpedanceSettings = ImpedanceSettings()
    fit: FitSettings = FitSettings()
    interface_resistance: Literal["charge_transfer", "all_arcs"] = "charge_transfer"
    initial_current: Literal["ohmic", "first"] = "ohmic"
    steady_state: SteadyStateSettings = SteadyStateSettings()
    limits: Limits = Limits(voltage_limit_V=1.0, current_limit_mA=10.0)

    @model_validator(mode="after")
    def _consistent(self) -> TransferenceNumber:
        if self.steady_state.window_s >= self.hold_h * 3600:
            raise ValueError("steady_state.window_s must be shorter than the hold (hold_h)")
        return self

    def program(self) -> StepProgram:
        """Rest, EIS, ΔV held for ``hold_h``, EIS."""
        return StepProgram(
            steps=[rest(self.rest_before_s, self.record_interval_s), self.impedance.step("EIS before"),
                   ConstantVoltage(voltage_V=self.delta_mV * 1e-3, duration_s=self.hold_h * 3600,
                                   record_interval_s=self.record_interval_s, label="polarisation"),
                   self.impedance.step("EIS after")],
            area_cm2=self.cell.area_cm2,
            safety=SafetyLimits(max_abs_voltage_V=self.limits.voltage_limit_V,
                                max_abs_current_A=self.limits.current_limit_mA * 1e-3))

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """t_Li+ with its inputs, and both spectra's fits (``before`` / ``after``)."""
        spectra = run.spectra(channel)
        holds = steps_of(run, channel, "constant_voltage")
        if len(spectra) < 2 or not holds:
            return {"problems": [f"{len(spectra)} spectrum(s) and {len(holds)} polarisation step(s); "
                                 "the method needs 2 and 1"]}
        area, d = self.cell.area_cm2, self.cell.electrolyte_thickness_um
        try:
            before, after = fit_one(spectra[0], self.fit, area), fit_one(spectra[-1], self.fit, area)
            record = step_record(run, channel, int(holds[0]["step_index"]))
            t = record["test_time_s"]
            found = transference_number(t - t[0], record["current_A"], delta_V=self.delta_mV * 1e-3,
                                        fit_before=before, fit_after=after, initial_current=self.initial_current,
                                        max_relative_change_per_h=self.steady_state.max_relative_change_per_h,
                                        window_s=self.steady_state.window_s, interface=self.interface_resistance)
        except ValueError as exc:
            return {"problems": [f"transference number: {exc}"]}
        first = spectrum_results(before, self.fit, d, area)
        return {**found.as_results(), "transference_interface_resistance": self.interface_resistance,
                "transference_initial_current_from": self.initial_current,
                **{k: v for k, v in first.items()},
                "before": first, "after": spectrum_results(after, self.fit, d, area), "problems": []}

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        if "transference_number" not in results:
            return list(results.get("problems", ["no result"]))
        return [f"t_Li+ = {results['transference_number']:.3f} (I_0 {results['transference_initial_current_A']:.4g} A, "
                f"I_ss {results['transference_steady_current_A']:.4g} A, R_0 {results['transference_R0_ohm']:.4g} Ω, "
                f"R_ss {results['transference_Rss_ohm']:.4g} Ω)"]
