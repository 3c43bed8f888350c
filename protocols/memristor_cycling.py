"""Memristor set/reset cycling of a Li | LLZO | tip (or Au pad) junction (seed 004).

Each cycle is one list sweep on the 2400: a read at ``read_bias_V`` (HRS), the set
excursion 0 → ``set_limit_V`` → 0, a read (LRS), the reset excursion 0 → ``reset_limit_V``
→ 0. Seed 004: set −0.2 V, reset +1 V, > 200 cycles, on/off ~10⁵ with the tip, ≤ 10 and
hardly resettable with a 500 µm Au pad [004 L101–L107]; compliance 1 mA / 10 V [004 L117].
The read bias is not in the seed (a parameter). The run ends after ``cycles`` cycles, or
earlier after ``max_reset_failures`` cycles without a reset (checked on-line by the engine).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from labctl.analysis.memristor import CycleLayout, analyse_cycle
from labctl.steps import SafetyLimits, StepProgram, TipMove, VoltageSweep
from protocols.tip_common import SweepProtocolBase, TipContact, _Model, cyclic_points_V


class WorkingElectrode(_Model):
    """The AFM tip at (x, y) nm, or a square Au pad of ``pad_side_um`` (seed: 500 µm)."""

    kind: Literal["tip", "pad"] = "tip"
    x_nm: float | None = Field(default=None, ge=-1e9, le=1e9)
    y_nm: float | None = Field(default=None, ge=-1e9, le=1e9)
    pad_side_um: float = Field(default=500.0, gt=0, le=1e5)

    @model_validator(mode="after")
    def _placed(self) -> WorkingElectrode:
        if self.kind == "tip" and (self.x_nm is None or self.y_nm is None):
            raise ValueError("a tip electrode needs x_nm and y_nm")
        return self


class SwitchingDetection(_Model):
    """Set: |I| surges ≥ ``surge_factor`` × the points before (and ≥ ``min_current_A``);
    reset: |I| falls ≥ ``drop_factor`` between two points at positive bias. No numbers in
    the seed."""

    surge_factor: float = Field(default=20.0, gt=1)
    min_current_A: float = Field(default=1e-9, gt=0)
    drop_factor: float = Field(default=10.0, gt=1)


class MemristorCycling(SweepProtocolBase):
    """Protocol file of kind ``memristor_cycling``."""

    kind: Literal["memristor_cycling"] = "memristor_cycling"
    electrode: WorkingElectrode
    tip: TipContact = TipContact()
    cycles: int = Field(default=200, ge=1, le=100000)
    set_limit_V: float = Field(default=-0.2, lt=0, ge=-210)
    reset_limit_V: float = Field(default=1.0, gt=0, le=210)
    step_V: float = Field(default=0.01, gt=0, le=10)
    read_bias_V: float = 0.05
    max_reset_failures: int | None = Field(default=5, ge=1)
    detection: SwitchingDetection = SwitchingDetection()

    @model_validator(mode="after")
    def _consistent(self) -> MemristorCycling:
        if not self.set_limit_V < self.read_bias_V < self.reset_limit_V or self.read_bias_V == 0:
            raise ValueError(f"read_bias_V must be non-zero and between set_limit_V ({self.set_limit_V:g}) and "
                             f"reset_limit_V ({self.reset_limit_V:g})")
        for name in ("set_limit_V", "reset_limit_V"):
            if abs(getattr(self, name)) > self.voltage_limit_V:
                raise ValueError(f"{name}: beyond voltage_limit_V {self.voltage_limit_V:g}")
        if len(self.cycle_points_V()[0]) > 2500:
            raise ValueError("one cycle needs more than 2500 points; raise step_V")
        return self

    def cycle_points_V(self) -> tuple[list[float], CycleLayout]:
        """One cycle's sweep points and where the reads and excursions are in it."""
        set_ramp = cyclic_points_V(0.0, self.set_limit_V, self.step_V)
        reset_ramp = cyclic_points_V(0.0, self.reset_limit_V, self.step_V)
        points = [self.read_bias_V, *set_ramp, self.read_bias_V, *reset_ramp]
        a = 1
        b = a + len(set_ramp) - 1
        c = b + 2
        layout = CycleLayout(read_hrs=0, set_segment=(a, b), read_lrs=b + 1, reset_segment=(c, c + len(reset_ramp) - 1))
        return points, layout

    @property
    def electrode_area_cm2(self) -> float:
        if self.electrode.kind == "pad":
            return (self.electrode.pad_side_um * 1e-4) ** 2
        return self.tip.contact_area_nm2 * 1e-14

    def program(self) -> StepProgram:
        """[tip move] + one sweep per cycle (cycle numbers from 1)."""
        points, layout = self.cycle_points_V()
        steps: list = []
        if self.electrode.kind == "tip":
            steps.append(TipMove(x_nm=self.electrode.x_nm, y_nm=self.electrode.y_nm, label="memristor site"))
        delay = self.source_delay_s(self.step_V)
        for n in range(1, self.cycles + 1):
            steps.append(VoltageSweep(points_V=points, source_delay_s=delay, nplc=self.nplc, abort_on_compliance=True,
                                      reset_segment=layout.reset_segment, label=f"cycle {n}", cycle=n))
        return StepProgram(steps=steps, area_cm2=self.electrode_area_cm2, electrode=self.electrode.kind,
                            contact_force_nN=self.tip.force_nN if self.electrode.kind == "tip" else None,
                            stop_after_reset_failures=self.max_reset_failures,
                            reset_drop_factor=self.detection.drop_factor,
                            safety=SafetyLimits(max_abs_voltage_V=self.voltage_limit_V,
                                                max_abs_current_A=self.compliance_current_A))

    # -- analysis ---------------------------------------------------------------------------
    def analyse_run(self, columns: dict[str, np.ndarray], steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Per cycle R_HRS, R_LRS, on/off, set and reset voltage, reset failure; and summaries."""
        _, layout = self.cycle_points_V()
        per_cycle: dict[str, list] = {k: [] for k in ("cycle", "hrs_resistance_ohm", "lrs_resistance_ohm", "on_off_ratio",
                                                      "set_voltage_V", "reset_voltage_V", "reset_failed")}
        step_of = columns["step_index"]
        for row in steps:
            if row["kind"] != "voltage_sweep":
                continue
            mask = step_of == row["step_index"]
            r = analyse_cycle(columns["voltage_V"][mask], columns["current_A"][mask], layout,
                              surge_factor=self.detection.surge_factor, min_current_A=self.detection.min_current_A,
                              drop_factor=self.detection.drop_factor)
            per_cycle["cycle"].append(row["cycle"])
            for key, value in r.as_dict().items():
                per_cycle[key].append(float(value))
        ratio = np.array(per_cycle["on_off_ratio"], dtype=float)
        finite = ratio[np.isfinite(ratio)]
        after10 = ratio[10:][np.isfinite(ratio[10:])]

        def median(values: list[float]) -> float:
            a = np.asarray(values, dtype=float)
            a = a[np.isfinite(a)]
            return float(np.median(a)) if len(a) else math.nan

        return {
            "electrode": self.electrode.kind,
            "electrode_area_cm2": self.electrode_area_cm2,
            "read_bias_V": self.read_bias_V,
            "cycles": per_cycle,
            "n_cycles": len(ratio),
            "on_off_median": float(np.median(finite)) if len(finite) else math.nan,
            "on_off_min": float(finite.min()) if len(finite) else math.nan,
            "on_off_max": float(finite.max()) if len(finite) else math.nan,
            "on_off_min_after_10_cycles": float(after10.min()) if len(after10) else math.nan,
            "set_voltage_median_V": median(per_cycle["set_voltage_V"]),
            "reset_voltage_median_V": median(per_cycle["reset_voltage_V"]),
            "n_reset_failures": int(np.sum(per_cycle["reset_failed"])) if per_cycle["reset_failed"] else 0,
        }

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        return [
            f"on/off ratio (R_HRS/R_LRS at {results['read_bias_V']:g} V): median {results['on_off_median']:.3g}, "
            f"{results['on_off_min']:.3g} … {results['on_off_max']:.3g} over {results['n_cycles']} cycles "
            f"({results['electrode']})",
            f"set at {results['set_voltage_median_V']:.3g} V, reset at {results['reset_voltage_median_V']:.3g} V (medians)",
            f"failed resets: {results['n_reset_failures']}",
        ]
