"""Coulometric titration time analysis (CTTA, Aktekin et al. in [003 L547–L555]): how fast the
solid electrolyte consumes lithium, i.e. how its SEI grows.

Cell: stainless steel | SSE | Li (SS | LPSCl | Li at 25 °C, ~13 MPa [003 L551]), the steel on
the working terminal. Each titration plates a fixed charge of Li onto the steel
(``titration_charge_uAh_cm2`` at ``titration_current_density_mA_cm2``: a negative current);
open circuit follows, the potential staying at ≈ 0 V while the titrated Li lasts; when the
side reaction has used it up the potential rises, and at ``threshold_V`` (0.05 V [003 L555])
the next identical titration begins — a loop of (titration, rest until the potential reaches
``threshold_V``), ``titrations`` times. A rest also ends after ``max_rest_h``.

Results (:func:`labctl.analysis.lithium_inventory.ctta`): the titration count, the
side-reaction charge q_Σ = Σ q(τ_i) against t and √t, the √t slope
(``sqrt_time_slope_uAh_cm2_h05``) and R², the SEI charge (``sei_charge_uAh_cm2``) and its
thickness at 9 nm per µAh cm⁻² [003 L555].
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from labctl.analysis.lithium_inventory import ctta
from labctl.steps import MAX_LOOP_COUNT, ConstantCurrent, Loop, Rest, SafetyLimits, ShortDetection, StepProgram
from protocols.base import Hours, ProtocolBase, RecordInterval


class CTTA(ProtocolBase):
    """Protocol file of kind ``ctta`` (units in the field names)."""

    kind: Literal["ctta"] = "ctta"
    symmetric_cell: ClassVar[bool] = False
    titration_current_density_mA_cm2: float = Field(gt=0, le=10)
    titration_charge_uAh_cm2: float = Field(gt=0, le=1e4)
    threshold_V: float = Field(default=0.05, gt=0, le=5)
    titrations: Annotated[int, Field(ge=3, le=MAX_LOOP_COUNT)]
    """At least 3: the √t line needs three consumed titrations."""
    max_rest_h: Hours = 500.0
    voltage_limit_V: float = Field(default=5.0, gt=0, le=210)
    record_interval_s: RecordInterval = 30.0
    detection: ShortDetection = ShortDetection(enabled=False)
    """Off by default: a titration's voltage is its ohmic drop, millivolts, near any floor."""

    @model_validator(mode="after")
    def _consistent(self) -> CTTA:
        if self.threshold_V >= self.voltage_limit_V:
            raise ValueError("threshold_V must be below voltage_limit_V")
        return self

    @property
    def current_A(self) -> float:
        return self.titration_current_density_mA_cm2 * self.cell.area_cm2 * 1e-3

    def program(self) -> StepProgram:
        """A loop of (titration, rest until the threshold)."""
        titration_s = self.titration_charge_uAh_cm2 * 1e-3 * 3600.0 / self.titration_current_density_mA_cm2
        body = [ConstantCurrent(current_A=-self.current_A, duration_s=titration_s,
                                record_interval_s=min(self.record_interval_s, max(titration_s / 10.0, 0.01)),
                                label="titration"),
                Rest(duration_s=self.max_rest_h * 3600.0, stop_voltage_above_V=self.threshold_V,
                     record_interval_s=self.record_interval_s, label=f"OCV until {self.threshold_V:g} V")]
        return StepProgram(steps=[Loop(steps=body, count=self.titrations, first_cycle=1)], area_cm2=self.cell.area_cm2,
                           safety=SafetyLimits(max_abs_voltage_V=self.voltage_limit_V,
                                               max_abs_current_A=self.current_A * 1.05),
                           short_detection=self.detection)

    def analyse_run(self, columns: dict[str, np.ndarray], steps: list[dict[str, Any]]) -> dict[str, Any]:
        """The CTTA of the run's readings."""
        out: dict[str, Any] = {"ended_by": steps[-1]["reason"] if steps else "no steps",
                               "test_time_h": float(steps[-1]["end_s"]) / 3600.0 if steps else 0.0}
        if len(columns.get("test_time_s", ())) < 2:
            return out
        try:
            result = ctta(columns["test_time_s"], columns["voltage_V"], columns["current_A"],
                          area_cm2=self.cell.area_cm2, threshold_V=self.threshold_V, voltage_sign=1,
                          charge_C=columns["charge_C"])
        except ValueError as exc:
            out["ctta_note"] = str(exc)
            return out
        out.update(result.as_results())
        return out

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        if "sei_charge_uAh_cm2" not in results:
            return [f"ended by: {results['ended_by']}: {results.get('ctta_note', '')}"]
        return [f"{results['titration_count']} titrations in {results['test_time_h']:.1f} h: q_Σ = "
                f"{results['sei_charge_uAh_cm2']:.3g} µAh cm-2 ≈ {results['sei_thickness_nm']:.3g} nm SEI; "
                f"√t slope {results['sqrt_time_slope_uAh_cm2_h05']:.3g} µAh cm-2 h^-1/2 (R² "
                f"{results['sqrt_time_r_squared']:.4f})"]


__all__ = ["CTTA"]
