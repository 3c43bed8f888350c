"""Several techniques on one cell, in order and in loops, each part analysed as its own kind.

Seed 000 measures impedance at intervals while plating Li continuously at 0.2 mA cm⁻² up to
12 mAh cm⁻² (R_b, R_gb and R_CT stay constant [000 L83–L87]): "EIS, then (plate 1 mAh cm⁻², EIS)
× 12". A ``sequence`` protocol lists ``parts``, each one of

* ``rest``: open circuit for ``duration_s``;
* ``constant_current``: ``current_density_mA_cm2`` (signed: + plates onto the working electrode)
  for ``duration_s`` or until ``areal_capacity_mAh_cm2`` has passed;
* ``eis``: a spectrum (:class:`~protocols.characterisation.ImpedanceSettings`), fitted as the
  ``eis`` kind fits it (``fit`` of the protocol);
* ``set_temperature``: the chamber's set point and soak (as the ``arrhenius`` kind);
* ``dc_polarisation``: a bias held for ``duration_h``; σ_e as the ``dc_polarisation`` kind;
* ``lsv``: a linear sweep; its oxidation onset as the ``lsv`` kind;
* ``loop``: ``count`` passes of its own ``parts`` (no loop inside a loop).

Each part has a ``label`` (default: its kind and position, ``eis 2``), unique in the protocol;
its results go to ``results/parts/<label>``, one entry per execution (arrays over a loop's
passes). The first spectrum, σ_e and onset also go under the issue's names at the top.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from labctl.steps import ConstantCurrent, ConstantVoltage, LinearSweep, Loop, SafetyLimits, SetTemperature, StepProgram
from labctl.store import RunFile
from protocols.base import ProtocolBase, _Model
from protocols.characterisation import (SPECTRUM_SERIES, FitSettings, ImpedanceSettings, Limits, fit_one, rest, series,
                                        spectrum_results, step_record)
from protocols.dc_polarisation import SteadyStateSettings, analyse_hold
from protocols.lsv import analyse_sweep

_LONG = 7 * 86400.0


class RestSpec(_Model):
    duration_s: float = Field(gt=0, le=365 * 86400)
    label: str = ""


class CurrentSpec(_Model):
    current_density_mA_cm2: float = Field(ge=-1000, le=1000)
    duration_s: float | None = Field(default=None, gt=0, le=365 * 86400)
    areal_capacity_mAh_cm2: float | None = Field(default=None, gt=0, le=1000)
    label: str = ""

    @model_validator(mode="after")
    def _one_end(self) -> CurrentSpec:
        if (self.duration_s is None) == (self.areal_capacity_mAh_cm2 is None):
            raise ValueError("give exactly one of duration_s and areal_capacity_mAh_cm2")
        if self.current_density_mA_cm2 == 0:
            raise ValueError("current_density_mA_cm2 must not be 0 (use a rest part)")
        return self


class EISSpec(ImpedanceSettings):
    label: str = ""


class TemperatureSpec(_Model):
    temperature_C: float = Field(ge=-80, le=300)
    tolerance_K: float = Field(default=0.5, gt=0, le=20)
    soak_min: float = Field(default=30.0, ge=0, le=7 * 1440)
    timeout_h: float = Field(default=4.0, gt=0, le=7 * 24)
    label: str = ""


class DCSpec(_Model):
    bias_mV: float = Field(ge=-5000, le=5000)
    duration_h: float = Field(gt=0, le=1000)
    steady_state: SteadyStateSettings = SteadyStateSettings()
    label: str = ""


class LSVSpec(_Model):
    start_at_ocv: bool = True
    start_V: float = Field(default=0.0, ge=-10, le=10)
    end_V: float = Field(ge=-10, le=10)
    scan_rate_mV_s: float = Field(gt=0, le=10_000)
    record_every_mV: float = Field(default=1.0, ge=0.01, le=1000)
    onset_threshold_uA_cm2: float = Field(default=10.0, gt=0, le=1e6)
    label: str = ""


class RestPart(_Model):
    rest: RestSpec


class CurrentPart(_Model):
    constant_current: CurrentSpec


class EISPart(_Model):
    eis: EISSpec


class TemperaturePart(_Model):
    set_temperature: TemperatureSpec


class DCPart(_Model):
    dc_polarisation: DCSpec


class LSVPart(_Model):
    lsv: LSVSpec


Part = RestPart | CurrentPart | EISPart | TemperaturePart | DCPart | LSVPart


class LoopSpec(_Model):
    count: int = Field(ge=1, le=100_000)
    parts: list[Part] = Field(min_length=1, max_length=100)


class LoopPart(_Model):
    loop: LoopSpec


def _kind_spec(part: Any) -> tuple[str, Any]:
    name = next(iter(type(part).model_fields))
    return name, getattr(part, name)


class Sequence(ProtocolBase):
    """Protocol file of kind ``sequence`` (see the module docstring)."""

    kind: Literal["sequence"] = "sequence"
    chamber: str = Field(default="chamber", description="the station's temperature chamber")
    parts: list[Part | LoopPart] = Field(min_length=1, max_length=1000)
    fit: FitSettings = FitSettings()
    record_interval_s: float = Field(default=60.0, ge=0.01, le=3600)
    limits: Limits = Limits()

    @model_validator(mode="after")
    def _labels(self) -> Sequence:
        seen: set[str] = set()
        for label, _name, _spec in self.labelled_parts():
            if label in seen:
                raise ValueError(f"parts: two parts are labelled {label!r}; labels must be unique")
            seen.add(label)
        return self

    def labelled_parts(self) -> list[tuple[str, str, Any]]:
        """(label, kind, spec) of every part, loops looked into, in order."""
        out, position = [], 0
        for part in self.parts:
            inner = part.loop.parts if isinstance(part, LoopPart) else [part]
            for p in inner:
                position += 1
                name, spec = _kind_spec(p)
                out.append((spec.label or f"{name} {position}", name, spec))
        return out

    def _step(self, label: str, name: str, spec: Any) -> Any:
        area, dt = self.cell.area_cm2, self.record_interval_s
        if name == "rest":
            return rest(spec.duration_s, dt, label)
        if name == "constant_current":
            current = spec.current_density_mA_cm2 * area * 1e-3
            duration = spec.duration_s if spec.duration_s is not None else \
                spec.areal_capacity_mAh_cm2 / abs(spec.current_density_mA_cm2) * 3600.0
            return ConstantCurrent(current_A=current, duration_s=duration, record_interval_s=dt, label=label)
        if name == "eis":
            return spec.step(label)
        if name == "set_temperature":
            return SetTemperature(temperature_C=spec.temperature_C, tolerance_K=spec.tolerance_K,
                                  soak_s=spec.soak_min * 60, timeout_s=spec.timeout_h * 3600, label=label)
        if name == "dc_polarisation":
            return ConstantVoltage(voltage_V=spec.bias_mV * 1e-3, duration_s=spec.duration_h * 3600,
                                   record_interval_s=dt, label=label)
        return LinearSweep(start_V=spec.start_V, start_at_ocv=spec.start_at_ocv, end_V=spec.end_V,
                           scan_rate_V_s=spec.scan_rate_mV_s * 1e-3, record_every_dE_V=spec.record_every_mV * 1e-3,
                           label=label)

    def program(self) -> StepProgram:
        """The parts in order; a loop part is a :class:`labctl.steps.Loop` of its parts."""
        labelled = iter(self.labelled_parts())
        entries: list[Any] = []
        for part in self.parts:
            if isinstance(part, LoopPart):
                body = [self._step(*next(labelled)) for _ in part.loop.parts]
                entries.append(Loop(steps=body, count=part.loop.count))
            else:
                entries.append(self._step(*next(labelled)))
        return StepProgram(steps=entries, area_cm2=self.cell.area_cm2,
                           safety=SafetyLimits(max_abs_voltage_V=self.limits.voltage_limit_V,
                                               max_abs_current_A=self.limits.current_limit_mA * 1e-3))

    def results(self, run: RunFile, channel: str) -> dict[str, Any]:
        """Per part (``parts/<label>``) what its own kind reports, one entry per execution;
        EIS parts also the areal charge passed before each spectrum (mAh cm⁻²)."""
        area, d = self.cell.area_cm2, self.cell.electrolyte_thickness_um
        rows = [s for s in run.steps() if s["channel"] == channel]
        by_label: dict[str, list[dict]] = {}
        for row in rows:
            by_label.setdefault(str(row["label"]), []).append(row)
        spectra = {int(s["step_index"][0]): s for s in run.spectra(channel) if "step_index" in s}
        parts: dict[str, Any] = {}
        top: dict[str, Any] = {}
        problems: list[str] = []
        for label, name, spec in self.labelled_parts():
            executed = by_label.get(label, [])
            if name == "eis":
                fits, passed = [], []
                for row in executed:
                    spec_cols = spectra.get(int(row["step_index"]))
                    if spec_cols is None:
                        continue
                    try:
                        result = spectrum_results(fit_one(spec_cols, self.fit, area), self.fit, d, area)
                    except ValueError as exc:
                        problems.append(f"{label}, step {row['step_index']}: {exc}")
                        continue
                    result.update(spectrum_index=int(spec_cols["spectrum_index"][0]), step_index=int(row["step_index"]),
                                  test_time_s=float(row["end_s"]))
                    fits.append(result)
                    passed.append(abs_charge_before(rows, int(row["step_index"])) / 3.6 / area)
                if fits:
                    parts[label] = {**series(fits, SPECTRUM_SERIES), "charge_passed_mAh_cm2": passed}
                    if "bulk_resistance_ohm_cm2" not in top:
                        top.update({k: v for k, v in fits[0].items()
                                    if k not in ("spectrum_index", "step_index", "test_time_s")})
            elif name == "dc_polarisation":
                found = [analyse_hold(step_record(run, channel, int(r["step_index"])), spec.bias_mV * 1e-3, d, area,
                                      spec.steady_state) for r in executed]
                parts[label] = _collect(found, ("electronic_conductivity_S_cm", "steady_state_current_A"))
                problems += [p for f in found for p in f.get("problems", [])]
                top.setdefault("electronic_conductivity_S_cm", next(
                    (f["electronic_conductivity_S_cm"] for f in found if "electronic_conductivity_S_cm" in f), None))
            elif name == "lsv":
                found = [analyse_sweep(step_record(run, channel, int(r["step_index"])), area,
                                       spec.onset_threshold_uA_cm2, 3) for r in executed]
                parts[label] = _collect(found, ("oxidation_onset_V", "sweep_end_V"))
                problems += [p for f in found for p in f.get("problems", [])]
                top.setdefault("oxidation_onset_V", next(
                    (f["oxidation_onset_V"] for f in found if "oxidation_onset_V" in f), None))
            elif name == "constant_current":
                parts[label] = {"charge_mAh_cm2": [float(r["charge_C"]) / 3.6 / area for r in executed],
                                "voltage_end_V": [float(r["voltage_end_V"]) for r in executed],
                                "ended_by": [str(r["reason"]) for r in executed]}
        top = {k: v for k, v in top.items() if v is not None}
        return {**top, "parts": parts, "problems": problems}

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        lines = []
        for label, values in results.get("parts", {}).items():
            if "bulk_resistance_ohm_cm2" in values:
                rb, rct = values["bulk_resistance_ohm_cm2"], values["charge_transfer_resistance_ohm_cm2"]
                lines.append(f"{label}: {len(rb)} spectra, R_b {min(rb):.3g}–{max(rb):.3g}, R_CT "
                             f"{np.nanmin(rct):.3g}–{np.nanmax(rct):.3g} Ω cm²")
            elif "electronic_conductivity_S_cm" in values:
                lines.append(f"{label}: σ_e {values['electronic_conductivity_S_cm']} S cm⁻¹")
            elif "oxidation_onset_V" in values:
                lines.append(f"{label}: oxidation onset {values['oxidation_onset_V']} V")
        return lines + list(results.get("problems", []))


def abs_charge_before(rows: list[dict], step_index: int) -> float:
    """|charge| passed (C) by the constant-current steps before ``step_index``."""
    return float(sum(abs(float(r["charge_C"])) for r in rows
                     if int(r["step_index"]) < step_index and r["kind"] == "constant_current"))


def _collect(found: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, list[float]]:
    return {key: [float(f.get(key, float("nan"))) for f in found] for key in keys}
