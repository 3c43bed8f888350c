"""Coulombic efficiency of lithium plating on a bare current collector: a Li | SSE | Cu cell
([000 L136]: Li | FSE | Cu 99.1 % averaged over cycles 500–700; [000 L143]: Li | LPSCl | Cu
20–70 %, failing after 6 cycles).

Cabling: the Cu on the instrument's working terminal, so plating Li onto it is a negative
current (the cycler's discharge) and V = V_Cu − V_Li. Two methods, named in the results:

* ``plain`` cycling: each cycle plates ``areal_capacity_mAh_cm2`` at
  ``current_density_mA_cm2``, then strips at the same current until the voltage reaches
  ``strip_cutoff_V``; per cycle CE = Q_strip / Q_plate, and its mean over
  ``ce_first_cycle``…``ce_last_cycle`` (default all cycles);
* ``adams``: Adams, Zheng, Ren, Xu, Zhang, Adv. Energy Mater. 8 (2018) 1702097 — a
  conditioning cycle (plate ``reservoir_mAh_cm2``, strip to the cut-off), a reservoir of
  ``reservoir_mAh_cm2`` plated, ``cycles`` × (strip, plate ``areal_capacity_mAh_cm2``), a final
  strip to the cut-off; CE = (n·Q_C + Q_S) / (n·Q_C + Q_T) (measured charges:
  :func:`labctl.analysis.lithium_inventory.adams_reservoir_from_record`).

A short (the LPSCl cell's failure) ends the run; the cycle it happened in is reported.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from labctl.analysis.lithium_inventory import adams_reservoir_from_record, li_cu_efficiency
from labctl.steps import ConstantCurrent, Loop, SafetyLimits, ShortDetection, StepProgram
from protocols.base import ArealCapacity, Count, CurrentDensity, ProtocolBase, RecordInterval

#: Short detection suited to Li | Cu: a drop to under 30 % of the running level or the floor is
#: a short; no soft-short spike rule — each strip ends in a climb to the cut-off whose second
#: differences reach thousands of times the cell's noise (measured on the example).
LI_CU_DETECTION = ShortDetection(drop_fraction=0.7, spike_factor=None)


class LiCuEfficiency(ProtocolBase):
    """Protocol file of kind ``li_cu_efficiency`` (units in the field names)."""

    kind: Literal["li_cu_efficiency"] = "li_cu_efficiency"
    symmetric_cell: ClassVar[bool] = False
    method: Literal["plain", "adams"] = "plain"
    current_density_mA_cm2: CurrentDensity
    areal_capacity_mAh_cm2: ArealCapacity
    strip_cutoff_V: float = Field(default=1.0, gt=0, le=5)
    cycles: Count
    ce_first_cycle: int | None = Field(default=None, ge=1)
    ce_last_cycle: int | None = Field(default=None, ge=1)
    reservoir_mAh_cm2: ArealCapacity | None = None
    strip_limit_factor: float = Field(default=3.0, gt=1, le=100)
    """A strip also ends after this many times the plating time (a cell that never reaches
    the cut-off cannot hold the run)."""
    record_interval_s: RecordInterval = 30.0
    voltage_limit_V: float = Field(default=5.0, gt=0, le=210)
    detection: ShortDetection = LI_CU_DETECTION

    @model_validator(mode="after")
    def _consistent(self) -> LiCuEfficiency:
        if self.method == "adams" and self.reservoir_mAh_cm2 is None:
            raise ValueError("method adams needs reservoir_mAh_cm2 (Q_T)")
        if self.method == "adams" and (self.ce_first_cycle is not None or self.ce_last_cycle is not None):
            raise ValueError("ce_first_cycle/ce_last_cycle apply to method plain")
        first, last = self.ce_first_cycle or 1, self.ce_last_cycle or self.cycles
        if not first <= last <= self.cycles:
            raise ValueError(f"ce_first_cycle..ce_last_cycle ({first}..{last}) must lie within 1..cycles ({self.cycles})")
        if self.strip_cutoff_V >= self.voltage_limit_V:
            raise ValueError("strip_cutoff_V must be below voltage_limit_V")
        if self.current_A > 1.05:
            raise ValueError(f"current_density_mA_cm2 × area needs {self.current_A:g} A; a 2400 sources at most 1.05 A")
        return self

    @property
    def current_A(self) -> float:
        return self.current_density_mA_cm2 * self.cell.area_cm2 * 1e-3

    def _seconds(self, capacity_mAh_cm2: float) -> float:
        return capacity_mAh_cm2 * 3600.0 / self.current_density_mA_cm2

    def _plate(self, capacity_mAh_cm2: float, label: str, cycle: int = 0) -> ConstantCurrent:
        return ConstantCurrent(current_A=-self.current_A, duration_s=self._seconds(capacity_mAh_cm2),
                               record_interval_s=self.record_interval_s, label=label, cycle=cycle)

    def _strip(self, label: str, *, capacity_mAh_cm2: float | None = None, cycle: int = 0) -> ConstantCurrent:
        """To the cut-off (``capacity_mAh_cm2`` None) or a fixed charge (the cut-off then a guard)."""
        limit = self._seconds(capacity_mAh_cm2 if capacity_mAh_cm2 is not None else
                              self.strip_limit_factor * max(self.areal_capacity_mAh_cm2, self.reservoir_mAh_cm2 or 0.0))
        return ConstantCurrent(current_A=self.current_A, duration_s=limit, stop_voltage_above_V=self.strip_cutoff_V,
                               record_interval_s=self.record_interval_s, label=label, cycle=cycle)

    def program(self) -> StepProgram:
        """Plain: a loop of (plate, strip to the cut-off). Adams: conditioning, reservoir, a loop
        of (strip, plate) Q_C, final strip."""
        if self.method == "plain":
            entries: list[Any] = [Loop(steps=[self._plate(self.areal_capacity_mAh_cm2, "plate"), self._strip("strip")],
                                       count=self.cycles, first_cycle=1)]
        else:
            q_t, q_c = self.reservoir_mAh_cm2, self.areal_capacity_mAh_cm2
            entries = [self._plate(q_t, "conditioning plate", 1), self._strip("conditioning strip", cycle=1),
                       self._plate(q_t, "reservoir plate", 2),
                       Loop(steps=[self._strip("strip", capacity_mAh_cm2=q_c), self._plate(q_c, "plate")],
                            count=self.cycles, first_cycle=3),
                       self._strip("final strip", cycle=self.cycles + 3)]
        return StepProgram(steps=entries, area_cm2=self.cell.area_cm2,
                           safety=SafetyLimits(max_abs_voltage_V=self.voltage_limit_V,
                                               max_abs_current_A=self.current_A * 1.05),
                           short_detection=self.detection)

    def analyse_run(self, columns: dict[str, np.ndarray], steps: list[dict[str, Any]]) -> dict[str, Any]:
        """CE by the protocol's method; the short's cycle if the cell shorted."""
        out: dict[str, Any] = {"ended_by": steps[-1]["reason"] if steps else "no steps",
                               "test_time_h": float(steps[-1]["end_s"]) / 3600.0 if steps else 0.0,
                               "cycles_planned": self.cycles}
        shorted = [s for s in steps if s["reason"] in ("short", "soft_short")]
        out["short_cycle"] = int(shorted[0]["cycle"]) if shorted else ""
        t, v, i = columns.get("test_time_s", ()), columns.get("voltage_V", ()), columns.get("current_A", ())
        if len(t) < 2:
            return out
        try:
            if self.method == "plain":
                cyc = columns["cycle_index"]
                done = [s["cycle"] for s in steps if s["label"] == "strip" and s["reason"] in ("voltage", "time")]
                last = min(self.ce_last_cycle or self.cycles, max(done) if done else 0)
                first = self.ce_first_cycle or 1
                result = li_cu_efficiency(t, v, i, cyc, plating_sign=-1, charge_C=columns["charge_C"],
                                          cycle_range=(first, last) if last >= first else None)
                out["cycles_completed"] = len(done)
            else:
                result = adams_reservoir_from_record(t, v, i, plating_sign=-1, conditioning=True,
                                                     charge_C=columns["charge_C"])
        except ValueError as exc:  # too few complete cycles (a cell that shorted early)
            out["coulombic_efficiency_note"] = str(exc)
            return out
        out.update(result.as_results())
        return out

    @staticmethod
    def headline(results: dict[str, Any]) -> str | None:
        """``CE 99.10 %`` (the mean over the stated cycles), when there is one."""
        if "coulombic_efficiency_pct" not in results:
            return None
        return f"CE {results['coulombic_efficiency_pct']:.2f} % ({results['coulombic_efficiency_method']})"

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        lines = [f"ended by: {results['ended_by']} after {results['test_time_h']:.1f} h"
                 + (f" (short in cycle {results['short_cycle']})" if results.get("short_cycle") != "" else "")]
        if "coulombic_efficiency_pct" in results:
            span = (f" over cycles {results['coulombic_efficiency_first_cycle']}–"
                    f"{results['coulombic_efficiency_last_cycle']}" if "coulombic_efficiency_first_cycle" in results else "")
            lines.append(f"Li | Cu CE ({results['coulombic_efficiency_method']}): "
                         f"{results['coulombic_efficiency_pct']:.2f} %{span}")
        return lines


__all__ = ["LI_CU_DETECTION", "LiCuEfficiency"]
