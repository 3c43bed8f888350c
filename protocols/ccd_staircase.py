"""Critical-current-density (CCD) staircase on a Li | SSE | Li symmetric cell.

At each current density of a rising staircase the cell is plated, then stripped, for
``cycles_per_step`` cycles, each half-cycle lasting ``half_cycle_s`` or passing
``areal_capacity_mAh_cm2``. The run ends at the first short circuit; the CCD is the highest
current density completed without one (seed-protocols.md §2; seed 004: 0 → 3 mA cm⁻² at
25 °C [004 L119]; seed 000: 1 mA cm⁻² steps, 10 cycles per step, 50 °C [000 L183]).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from labctl.analysis.ccd import critical_current_density, step_overpotentials
from labctl.steps import MAX_PROGRAM_STEPS, ConstantCurrent, SafetyLimits, ShortDetection, StepProgram
from protocols.base import ArealCapacity, Count, CurrentDensity, ProtocolBase, RecordInterval, Seconds


class CCDStaircase(ProtocolBase):
    """Protocol file of kind ``ccd_staircase`` (units in the field names)."""

    kind: Literal["ccd_staircase"] = "ccd_staircase"
    start_mA_cm2: CurrentDensity
    step_mA_cm2: CurrentDensity
    stop_mA_cm2: CurrentDensity
    half_cycle_s: Seconds | None = None
    areal_capacity_mAh_cm2: ArealCapacity | None = None
    cycles_per_step: Count = 1
    voltage_limit_V: float = Field(gt=0, le=210)
    record_interval_s: RecordInterval = 1.0
    detection: ShortDetection = ShortDetection()

    @model_validator(mode="after")
    def _consistent(self) -> CCDStaircase:
        if self.stop_mA_cm2 < self.start_mA_cm2:
            raise ValueError(f"stop_mA_cm2 ({self.stop_mA_cm2:g}) is below start_mA_cm2 ({self.start_mA_cm2:g})")
        if (self.half_cycle_s is None) == (self.areal_capacity_mAh_cm2 is None):
            raise ValueError("give exactly one of half_cycle_s and areal_capacity_mAh_cm2")
        if self.max_current_A > 1.05:
            raise ValueError(f"stop_mA_cm2 × area needs {self.max_current_A:g} A; a 2400 sources at most 1.05 A")
        n_steps = 2 * self.cycles_per_step * (self._n_densities)
        if n_steps > MAX_PROGRAM_STEPS:
            raise ValueError(f"the staircase expands to {n_steps:.3g} half-cycles; at most {MAX_PROGRAM_STEPS} "
                             "(raise step_mA_cm2 or lower cycles_per_step)")
        return self

    @property
    def _n_densities(self) -> int:
        """Number of current densities of the staircase (computed, never listed)."""
        return int((self.stop_mA_cm2 - self.start_mA_cm2) / self.step_mA_cm2 + 1e-9) + 1

    @property
    def current_densities_mA_cm2(self) -> list[float]:
        """The staircase, ascending; exact to 1e-9 (no 0.1 × 3 = 0.30000000000000004)."""
        return [round(self.start_mA_cm2 + k * self.step_mA_cm2, 9) for k in range(self._n_densities)]

    @property
    def max_current_A(self) -> float:
        return self.stop_mA_cm2 * self.cell.area_cm2 * 1e-3

    def half_cycle_duration_s(self, j_mA_cm2: float) -> float:
        if self.half_cycle_s is not None:
            return self.half_cycle_s
        return self.areal_capacity_mAh_cm2 * 3600.0 / j_mA_cm2

    def program(self) -> StepProgram:
        """Plate (+I) then strip (−I) at each current density, ``cycles_per_step`` times."""
        steps = []
        cycle = 0
        area = self.cell.area_cm2
        for j in self.current_densities_mA_cm2:
            duration = self.half_cycle_duration_s(j)
            for _ in range(self.cycles_per_step):
                cycle += 1
                for sign, label in ((1, "plate"), (-1, "strip")):
                    steps.append(ConstantCurrent(
                        current_A=sign * j * area * 1e-3, duration_s=duration,
                        record_interval_s=self.record_interval_s,
                        label=f"{label} {j:g} mA cm-2", cycle=cycle,
                    ))
        return StepProgram(
            steps=steps,
            area_cm2=area,
            safety=SafetyLimits(max_abs_voltage_V=self.voltage_limit_V, max_abs_current_A=self.max_current_A * 1.001),
            short_detection=self.detection,
            end_run_on_short=True,
        )

    def planned_half_cycle_densities(self) -> list[float]:
        return [j for j in self.current_densities_mA_cm2 for _ in range(2 * self.cycles_per_step)]

    def analyse(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Results for the run file's ``results`` group: the CCD and per-step overpotentials."""
        result = critical_current_density(steps, self.planned_half_cycle_densities())
        return {**result.as_dict(), "start_mA_cm2": self.start_mA_cm2,
                "overpotentials": step_overpotentials(steps, self.cell.bulk_asr_ohm_cm2)}

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        """Lines for the terminal, e.g. ``CCD = 1.8 mA cm⁻²`` (``CCD < 0.1 mA cm⁻²`` when the
        first step shorted)."""
        ccd = results["ccd_mA_cm2"]
        if results["short_detected"]:
            t_h = results["short_time_s"] / 3600.0
            what = "soft short" if results.get("ended_by") == "soft_short" else "short circuit"
            first = (f"CCD < {results['short_current_density_mA_cm2']:g} mA cm⁻² (the first step shorted)"
                     if results.get("ccd_below_start") else f"CCD = {ccd:g} mA cm⁻²")
            return [
                first,
                f"{what} at {results['short_current_density_mA_cm2']:g} mA cm⁻², "
                f"t = {t_h:.3f} h (step {results['short_step_index']})",
            ]
        return [f"CCD ≥ {ccd:g} mA cm⁻² (no short; run ended by: {results['ended_by']})"]

