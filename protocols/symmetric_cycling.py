"""Galvanostatic plating/stripping of a Li | SSE | Li symmetric cell, for hours to months.

An optional activation (seed 000: 0.1 mA cm⁻² for ≈ 20 h [000 L58, L183]) is followed by
cycling at one current density, each half-cycle lasting ``half_cycle_s`` or passing
``areal_capacity_mAh_cm2``, for ``cycles`` cycles or ``total_time_h`` hours (seed 000:
12 000 h at 0.2 mA cm⁻², 5400 h at 0.2 mA cm⁻² / 0.5 mAh cm⁻²; seed 004: > 1000 h at
0.8 mA cm⁻²; seed-protocols.md §3). The run ends at the planned count, or early on a short
(sudden drop), a soft short (noisy voltage) or polarisation past ``polarisation_limit_mV``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from labctl.analysis.cycling import per_cycle
from labctl.steps import MAX_LOOP_COUNT, ConstantCurrent, Loop, SafetyLimits, ShortDetection, StepProgram
from protocols.base import ArealCapacity, Count, CurrentDensity, Hours, ProtocolBase, RecordInterval, Seconds, _Model


class Activation(_Model):
    """Formation cycles at a low current density before the main cycling."""

    current_density_mA_cm2: CurrentDensity
    half_cycle_s: Seconds
    duration_h: Hours

    @property
    def cycles(self) -> int:
        return max(1, round(self.duration_h * 3600 / (2 * self.half_cycle_s)))


class SymmetricCycling(ProtocolBase):
    """Protocol file of kind ``symmetric_cycling`` (units in the field names)."""

    kind: Literal["symmetric_cycling"] = "symmetric_cycling"
    current_density_mA_cm2: CurrentDensity
    half_cycle_s: Seconds | None = None
    areal_capacity_mAh_cm2: ArealCapacity | None = None
    cycles: Count | None = None
    total_time_h: Hours | None = None
    activation: Activation | None = None
    voltage_limit_V: float = Field(gt=0, le=210)
    polarisation_limit_mV: float | None = Field(default=None, gt=0)
    record_interval_s: RecordInterval = 60.0
    detection: ShortDetection = ShortDetection()

    @model_validator(mode="after")
    def _consistent(self) -> SymmetricCycling:
        if (self.half_cycle_s is None) == (self.areal_capacity_mAh_cm2 is None):
            raise ValueError("give exactly one of half_cycle_s and areal_capacity_mAh_cm2")
        if (self.cycles is None) == (self.total_time_h is None):
            raise ValueError("give exactly one of cycles and total_time_h")
        if self.current_A > 1.05:
            raise ValueError(f"current_density_mA_cm2 × area needs {self.current_A:g} A; a 2400 sources at most 1.05 A")
        if self.polarisation_limit_mV is not None and self.polarisation_limit_mV >= self.voltage_limit_V * 1e3:
            raise ValueError("polarisation_limit_mV must be below voltage_limit_V")
        if self.n_cycles > MAX_LOOP_COUNT:
            raise ValueError(f"{self.n_cycles} cycles planned; at most {MAX_LOOP_COUNT} (shorten total_time_h)")
        if self.activation is not None and self.activation.cycles > MAX_LOOP_COUNT:
            raise ValueError(f"activation: {self.activation.cycles} cycles; at most {MAX_LOOP_COUNT}")
        return self

    @property
    def current_A(self) -> float:
        return self.current_density_mA_cm2 * self.cell.area_cm2 * 1e-3

    @property
    def half_cycle_duration_s(self) -> float:
        if self.half_cycle_s is not None:
            return self.half_cycle_s
        return self.areal_capacity_mAh_cm2 * 3600.0 / self.current_density_mA_cm2

    @property
    def n_cycles(self) -> int:
        """Planned cycles of the main cycling (activation not counted)."""
        if self.cycles is not None:
            return self.cycles
        return max(1, int(self.total_time_h * 3600 / (2 * self.half_cycle_duration_s) + 1e-9))

    def _pair(self, j_mA_cm2: float, half_cycle_s: float, prefix: str) -> list[ConstantCurrent]:
        i = j_mA_cm2 * self.cell.area_cm2 * 1e-3
        return [ConstantCurrent(current_A=sign * i, duration_s=half_cycle_s, record_interval_s=self.record_interval_s,
                                label=f"{prefix}{what} {j_mA_cm2:g} mA cm-2")
                for sign, what in ((1, "plate"), (-1, "strip"))]

    def program(self) -> StepProgram:
        """[activation loop] + cycling loop; cycle numbers run on from the activation."""
        entries: list[Any] = []
        first = 1
        if self.activation is not None:
            a = self.activation
            entries.append(Loop(steps=self._pair(a.current_density_mA_cm2, a.half_cycle_s, "activation "),
                                count=a.cycles, first_cycle=1))
            first = a.cycles + 1
        entries.append(Loop(steps=self._pair(self.current_density_mA_cm2, self.half_cycle_duration_s, ""),
                            count=self.n_cycles, first_cycle=first))
        peak_A = max(self.current_A, (self.activation.current_density_mA_cm2 * self.cell.area_cm2 * 1e-3)
                     if self.activation else 0.0)
        return StepProgram(
            steps=entries,
            area_cm2=self.cell.area_cm2,
            safety=SafetyLimits(max_abs_voltage_V=self.voltage_limit_V, max_abs_current_A=peak_A * 1.001),
            short_detection=self.detection,
            polarisation_limit_V=None if self.polarisation_limit_mV is None else self.polarisation_limit_mV * 1e-3,
        )

    def analyse(self, steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Per-cycle overpotentials, ASR and capacities of the main cycling, and how it ended."""
        main = per_cycle([s for s in steps if not str(s.get("label", "")).startswith("activation")],
                         self.cell.area_cm2, bulk_asr_ohm_cm2=self.cell.bulk_asr_ohm_cm2)
        last_reason = steps[-1]["reason"] if steps else "no steps"
        done = len(main["cycle"])
        return {
            "cycles_planned": self.n_cycles,
            "cycles_completed": done,
            "ended_by": "completed" if done == self.n_cycles and last_reason in ("time", "charge") else last_reason,
            "test_time_h": (float(steps[-1]["end_s"]) / 3600.0) if steps else 0.0,
            "per_cycle": main,
        }

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        """Lines for the terminal."""
        lines = [f"{results['cycles_completed']} of {results['cycles_planned']} cycles in "
                 f"{results['test_time_h']:.1f} h — ended by: {results['ended_by']}"]
        pc = results["per_cycle"]
        if pc["cycle"]:
            lines.append(f"last cycle ({pc['cycle'][-1]}): plating {pc['plating_overpotential_end_mV'][-1]:.1f} mV, "
                         f"stripping {pc['stripping_overpotential_end_mV'][-1]:.1f} mV (end of half-cycle), "
                         f"cell ASR {pc['cell_asr_ohm_cm2'][-1]:.1f} Ω cm²"
                         + (f", per interface {pc['interface_asr_ohm_cm2'][-1]:.1f} Ω cm²"
                            if "interface_asr_ohm_cm2" in pc else ""))
        return lines
