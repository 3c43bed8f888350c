"""Galvanostatic cycling of a full cell (a cathode against Li metal through the solid
electrolyte), with currents given as C-rates of the cell's own capacity.

The ``cathode`` section says what 1C is: the cathode's active mass (mg) times its nominal
specific capacity (mAh g⁻¹), or the areal capacity (mAh cm⁻²) times the electrode area; with
the mass, capacities are also reported per gram. The program is:

* ``formation`` (optional): e.g. 0.1C × 2, "activated at 0.1C for two cycles" [000 L183];
* ``blocks``: blocks of identical cycles — rate capability (0.5C … 5C, [000 L145]), long
  cycling at one rate (C/3 for > 3000 cycles [000 L145], 0.5C for > 300 cycles [004 L89]);

each cycle a constant-current charge to ``upper_cutoff_V`` — followed, with ``cv_hold``, by a
constant-voltage hold at that voltage until the current falls to the hold's C-rate (a CC-CV
charge) —, an optional rest, a constant-current discharge to ``lower_cutoff_V`` and an optional
rest. A half-cycle also ends after ``half_cycle_limit_factor`` × its nominal time (1/C-rate),
so a cell that never reaches its cut-off cannot hold the run. Cycle numbers run on from the
formation. Temperature: ``cell.temperature_C`` is the cell's (the simulated cell runs at it);
with ``chamber_temperature_C`` the program first sets the station's chamber (``chamber``) to it
and waits ``soak_min`` within ``tolerance_K`` (a ``set_temperature`` step: the run then needs a
sourcemeter or potentiostat beside the chamber; a cycler channel cannot hold such a step).

The analysis (:func:`labctl.analysis.full_cell.full_cell_cycles`, on the readings): per cycle
charge and discharge capacity in mAh, mAh g⁻¹ and mAh cm⁻², Coulombic efficiency, energy,
mean voltages; retention against the first cycle after the formation and the decay per cycle;
per block the mean discharge capacity at its C-rate (rate capability).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from labctl.analysis.full_cell import full_cell_cycles
from labctl.steps import (
    MAX_CHAMBER_C,
    MIN_CHAMBER_C,
    ConstantCurrent,
    ConstantVoltage,
    Loop,
    Rest,
    SafetyLimits,
    SetTemperature,
    ShortDetection,
    StepProgram,
)
from labctl.store import RunFile
from protocols.base import ArealCapacity, Count, Hours, ProtocolBase, RecordInterval, Seconds, _Model

#: Short detection suited to a full cell: judged on |V| (``full_cell``: its voltage keeps its
#: sign whatever the current); no floor — its voltage is never near 0 V, and a cycler would hold
#: the floor as a per-step limit of a symmetric cell's sign, stopping a healthy discharge; spikes
#: at 100× the cell's noise — the approach to a cut-off bends the voltage by up to ~50× its noise
#: within a few readings (measured on the examples), a soft short's flicker by far more.
FULL_CELL_DETECTION = ShortDetection(floor_V=0.0, full_cell=True, spike_factor=100.0)


class Cathode(_Model):
    """What 1C is. ``active_mass_mg`` (the cathode's active material, mg) with
    ``nominal_specific_capacity_mAh_g``, or ``areal_capacity_mAh_cm2`` (then a mass only
    gives the per-gram figures)."""

    material: str = ""
    active_mass_mg: float | None = Field(default=None, gt=0, le=1e5)
    nominal_specific_capacity_mAh_g: float | None = Field(default=None, gt=0, le=5000)
    areal_capacity_mAh_cm2: ArealCapacity | None = None

    @model_validator(mode="after")
    def _one_basis(self) -> Cathode:
        by_mass = self.nominal_specific_capacity_mAh_g is not None
        if by_mass == (self.areal_capacity_mAh_cm2 is not None):
            raise ValueError("give exactly one of nominal_specific_capacity_mAh_g (with active_mass_mg) and "
                             "areal_capacity_mAh_cm2")
        if by_mass and self.active_mass_mg is None:
            raise ValueError("nominal_specific_capacity_mAh_g needs active_mass_mg")
        return self

    def nominal_capacity_mAh(self, area_cm2: float) -> float:
        """1C × 1 h (mAh)."""
        if self.nominal_specific_capacity_mAh_g is not None:
            return self.nominal_specific_capacity_mAh_g * self.active_mass_mg * 1e-3  # type: ignore[operator]
        return self.areal_capacity_mAh_cm2 * area_cm2  # type: ignore[operator]


class CVHold(_Model):
    """The constant-voltage half of a CC-CV charge: at ``upper_cutoff_V`` until the current
    falls to ``current_cutoff_c_rate`` (a C-rate) or ``max_duration_h`` has passed."""

    current_cutoff_c_rate: float = Field(gt=0, le=10)
    max_duration_h: Hours = 2.0


class CycleBlock(_Model):
    """``cycles`` identical cycles: charge at ``charge_c_rate`` and discharge at
    ``discharge_c_rate`` (both ``c_rate`` if given alone). ``record_interval_s`` replaces the
    protocol's for this block (fast cycling needs more points per half-cycle)."""

    cycles: Count
    c_rate: float | None = Field(default=None, gt=0, le=100)
    charge_c_rate: float | None = Field(default=None, gt=0, le=100)
    discharge_c_rate: float | None = Field(default=None, gt=0, le=100)
    record_interval_s: RecordInterval | None = None
    label: str = ""

    @model_validator(mode="after")
    def _rates(self) -> CycleBlock:
        if self.c_rate is None and (self.charge_c_rate is None or self.discharge_c_rate is None):
            raise ValueError("give c_rate, or charge_c_rate and discharge_c_rate")
        return self

    @property
    def charge(self) -> float:
        return self.charge_c_rate if self.charge_c_rate is not None else self.c_rate  # type: ignore[return-value]

    @property
    def discharge(self) -> float:
        return self.discharge_c_rate if self.discharge_c_rate is not None else self.c_rate  # type: ignore[return-value]

    def name(self) -> str:
        if self.label:
            return self.label
        return f"{_rate(self.charge)}" + ("" if self.charge == self.discharge else f"/{_rate(self.discharge)}")


def _rate(c: float) -> str:
    """``C/3``, ``0.5C``, ``5C``."""
    inverse = 1.0 / c
    if c < 1 and abs(inverse - round(inverse)) < 1e-4 * inverse:
        return f"C/{round(inverse)}"
    return f"{c:g}C"


class FullCellCycling(ProtocolBase):
    """Protocol file of kind ``full_cell_cycling`` (units in the field names)."""

    kind: Literal["full_cell_cycling"] = "full_cell_cycling"
    symmetric_cell: ClassVar[bool] = False
    cathode: Cathode
    upper_cutoff_V: float = Field(gt=0, le=10)
    lower_cutoff_V: float = Field(gt=0, le=10)
    formation: CycleBlock | None = None
    blocks: list[CycleBlock] = Field(min_length=1, max_length=100)
    cv_hold: CVHold | None = None
    rest_after_charge_s: Seconds | None = None
    rest_after_discharge_s: Seconds | None = None
    half_cycle_limit_factor: float = Field(default=1.5, gt=1, le=100)
    record_interval_s: RecordInterval = 60.0
    voltage_margin_V: float = Field(default=0.8, gt=0, le=5)
    """The safety limit (the 2400's voltage compliance): |V| beyond the upper cut-off by this
    much ends the run. The cut-off is the step's to stop at; the limit is the backstop."""
    detection: ShortDetection = FULL_CELL_DETECTION
    chamber: str = Field(default="chamber", min_length=1, max_length=100,
                         description="the station's temperature chamber")
    chamber_temperature_C: float | None = Field(default=None, ge=MIN_CHAMBER_C, le=MAX_CHAMBER_C)
    soak_min: float = Field(default=30.0, ge=0, le=7 * 1440)
    tolerance_K: float = Field(default=0.5, gt=0, le=20)

    @model_validator(mode="after")
    def _consistent(self) -> FullCellCycling:
        if not self.lower_cutoff_V < self.upper_cutoff_V:
            raise ValueError(f"lower_cutoff_V ({self.lower_cutoff_V:g}) must be below upper_cutoff_V "
                             f"({self.upper_cutoff_V:g})")
        if self.max_current_A > 1.05:
            raise ValueError(f"the highest C-rate needs {self.max_current_A:g} A; a 2400 sources at most 1.05 A")
        if self.detection.enabled and self.detection.floor_V > 0:
            raise ValueError("detection.floor_V: a full cell's voltage is never near 0 V; set 0 (a cycler would hold "
                             "the floor as a per-step limit of a symmetric cell's sign and stop a healthy discharge)")
        return self

    @property
    def nominal_capacity_mAh(self) -> float:
        """1C × 1 h of this cell (mAh)."""
        return self.cathode.nominal_capacity_mAh(self.cell.area_cm2)

    def current_A(self, c_rate: float) -> float:
        """The current of a C-rate (A)."""
        return c_rate * self.nominal_capacity_mAh * 1e-3

    @property
    def all_blocks(self) -> list[CycleBlock]:
        return ([self.formation] if self.formation is not None else []) + list(self.blocks)

    @property
    def max_current_A(self) -> float:
        return max(self.current_A(max(b.charge, b.discharge)) for b in self.all_blocks)

    def _cycle(self, block: CycleBlock) -> list[Any]:
        interval = block.record_interval_s or self.record_interval_s
        factor = self.half_cycle_limit_factor
        steps: list[Any] = [ConstantCurrent(
            current_A=self.current_A(block.charge), duration_s=factor * 3600.0 / block.charge,
            stop_voltage_above_V=self.upper_cutoff_V, record_interval_s=interval, label=f"charge {_rate(block.charge)}")]
        if self.cv_hold is not None:
            steps.append(ConstantVoltage(
                voltage_V=self.upper_cutoff_V, duration_s=self.cv_hold.max_duration_h * 3600.0,
                stop_current_below_A=self.current_A(self.cv_hold.current_cutoff_c_rate), direction="charge",
                record_interval_s=min(interval, 10.0), label=f"CV {self.upper_cutoff_V:g} V"))
        if self.rest_after_charge_s:
            steps.append(Rest(duration_s=self.rest_after_charge_s, record_interval_s=interval, label="rest"))
        steps.append(ConstantCurrent(
            current_A=-self.current_A(block.discharge), duration_s=factor * 3600.0 / block.discharge,
            stop_voltage_below_V=self.lower_cutoff_V, record_interval_s=interval,
            label=f"discharge {_rate(block.discharge)}"))
        if self.rest_after_discharge_s:
            steps.append(Rest(duration_s=self.rest_after_discharge_s, record_interval_s=interval, label="rest"))
        return steps

    def program(self) -> StepProgram:
        """A loop per block (formation first); cycle numbers continue across them."""
        entries: list[Any] = []
        if self.chamber_temperature_C is not None:
            entries.append(SetTemperature(temperature_C=self.chamber_temperature_C, tolerance_K=self.tolerance_K,
                                          soak_s=self.soak_min * 60.0, timeout_s=max(4 * 3600.0, self.soak_min * 120.0),
                                          label=f"chamber to {self.chamber_temperature_C:g} °C"))
        first = 1
        for block in self.all_blocks:
            entries.append(Loop(steps=self._cycle(block), count=block.cycles, first_cycle=first))
            first += block.cycles
        return StepProgram(
            steps=entries,
            area_cm2=self.cell.area_cm2,
            safety=SafetyLimits(max_abs_voltage_V=self.upper_cutoff_V + self.voltage_margin_V,
                                max_abs_current_A=self.max_current_A * 1.05),
            short_detection=self.detection,
        )

    def block_cycles(self) -> list[tuple[str, float, int, int]]:
        """(name, discharge C-rate, first cycle, last cycle) of each block, formation first."""
        out, first = [], 1
        for block in self.all_blocks:
            out.append((block.name(), block.discharge, first, first + block.cycles - 1))
            first += block.cycles
        return out

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """Per-cycle capacities, CE, energy and retention (after the formation), and the rate
        capability per block."""
        c = run.columns(channel)
        steps = [row for row in run.steps() if row["channel"] == channel]
        return self.analyse_run(c, steps)

    def analyse_run(self, columns: dict[str, np.ndarray], steps: list[dict[str, Any]]) -> dict[str, Any]:
        """:meth:`results` on a run's columns and step rows."""
        n_form = self.formation.cycles if self.formation is not None else 0
        out: dict[str, Any] = {"nominal_capacity_mAh": self.nominal_capacity_mAh,
                               "cycles_planned": sum(b.cycles for b in self.all_blocks),
                               "ended_by": steps[-1]["reason"] if steps else "no steps",
                               "test_time_h": float(steps[-1]["end_s"]) / 3600.0 if steps else 0.0}
        if len(columns.get("test_time_s", ())) < 2:
            return out
        mass_g = self.cathode.active_mass_mg * 1e-3 if self.cathode.active_mass_mg is not None else None
        nominal = self.cathode.nominal_specific_capacity_mAh_g
        if nominal is None and mass_g is not None:
            nominal = self.nominal_capacity_mAh / mass_g
        cycles = full_cell_cycles(columns["test_time_s"], columns["voltage_V"], columns["current_A"],
                                  columns["cycle_index"], charge_C=columns["charge_C"], active_mass_g=mass_g,
                                  area_cm2=self.cell.area_cm2, nominal_capacity_mAh_g=nominal if mass_g else None,
                                  formation_cycles=n_form)
        out.update(cycles.as_results())
        out["cycles_completed"] = int(cycles.summary.get("full_cell_complete_cycles", 0))
        per_cycle = cycles.columns
        key = "discharge_capacity_mAh_g" if "discharge_capacity_mAh_g" in per_cycle else "discharge_capacity_mAh"
        names, rates, means = [], [], []
        cyc = np.asarray(per_cycle["cycle"])
        done = np.asarray(per_cycle["complete"], dtype=bool)
        for name, rate, first, last in self.block_cycles():
            m = done & (cyc >= first) & (cyc <= last)
            if m.any():
                names.append(name)
                rates.append(rate)
                means.append(float(np.mean(np.asarray(per_cycle[key])[m])))
        out["rate_capability"] = {"block": names, "discharge_c_rate": rates, key: means}
        return out

    @staticmethod
    def headline(results: dict[str, Any]) -> str | None:
        """``retention 81.0 %, CE 99.980 %`` (at the last cycle, vs the first after formation)."""
        if "capacity_retention_pct" not in results:
            return None
        return f"retention {results['capacity_retention_pct']:.1f} %, CE {results['coulombic_efficiency_pct']:.3f} %"

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        """Lines for the terminal."""
        lines = [f"{results.get('cycles_completed', 0)} of {results['cycles_planned']} cycles in "
                 f"{results['test_time_h']:.1f} h — ended by: {results['ended_by']}"]
        if "capacity_retention_pct" in results:
            per_g = results.get("discharge_capacity_mAh_g")
            first = (f"{per_g:.1f} mAh g-1" if per_g is not None else
                     f"{results['reference_discharge_capacity_mAh']:.4g} mAh")
            lines.append(f"cycle {results['reference_cycle']} (after formation): {first}; retention "
                         f"{results['capacity_retention_pct']:.1f} % at cycle {results['last_cycle']} "
                         f"({results['capacity_decay_pct_per_cycle']:.4f} % per cycle); mean CE "
                         f"{results['coulombic_efficiency_pct']:.3f} %")
        rc = results.get("rate_capability", {})
        key = "discharge_capacity_mAh_g" if "discharge_capacity_mAh_g" in rc else "discharge_capacity_mAh"
        if len(rc.get("block", [])) > 1:
            unit = "mAh g-1" if key.endswith("_g") else "mAh"
            lines.append("rate capability: " + ", ".join(f"{b} {q:.1f}" for b, q in zip(rc["block"], rc[key]))
                         + f" {unit}")
        return lines


__all__ = ["Cathode", "CVHold", "CycleBlock", "FULL_CELL_DETECTION", "FullCellCycling"]
