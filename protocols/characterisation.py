"""What the characterisation kinds share (``eis``, ``arrhenius``, ``dc_polarisation``,
``transference_number``, ``lsv``, ``sequence``): the impedance settings of a protocol file and
their step, the fit settings, fitting a run's spectra, and reading one step's I–t record.

Every analysis here reads the finished run file (:meth:`protocols.base.ProtocolBase.results`)
and names its results as the issue does (``ionic_conductivity_S_cm``, ``bulk_resistance_ohm_cm2``,
``grain_boundary_resistance_ohm_cm2``, ``charge_transfer_resistance_ohm_cm2``, …).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from labctl.analysis.conductivity import conductivity_from_fit, ionic_conductivity_S_cm
from labctl.analysis.impedance import CIRCUITS, ImpedanceFit, fit_spectrum
from labctl.steps import Impedance, Rest
from labctl.store import RunFile
from protocols.base import _Model

#: 2400-class instruments source at most this current (A); BioLogic channels 1 A without booster.
MAX_CURRENT_LIMIT_MA = 1000.0


class ImpedanceSettings(_Model):
    """An impedance measurement as a protocol file writes it. Seed 000: 3 MHz – 1 Hz, 5 mV
    [000 L185]; seed 002: 0.1 Hz – 100 kHz [002 L31]. ``amplitude_mV`` for PEIS
    (``mode: potentiostatic``), ``amplitude_uA`` for GEIS."""

    mode: Literal["potentiostatic", "galvanostatic"] = "potentiostatic"
    initial_frequency_Hz: float = Field(default=3e6, ge=1e-5, le=7e6)
    final_frequency_Hz: float = Field(default=1.0, ge=1e-5, le=7e6)
    points_per_decade: int = Field(default=10, ge=1, le=100)
    amplitude_mV: float | None = Field(default=5.0, gt=0, le=1000)
    amplitude_uA: float | None = Field(default=None, gt=0, le=1e6)
    average_n: int = Field(default=1, ge=1, le=100)
    wait_periods: float = Field(default=0.1, ge=0, le=100)

    @model_validator(mode="after")
    def _amplitude(self) -> ImpedanceSettings:
        if self.mode == "galvanostatic" and self.amplitude_uA is None:
            raise ValueError("a galvanostatic measurement needs amplitude_uA")
        return self

    def step(self, label: str, cycle: int = 0) -> Impedance:
        """The ``impedance`` step of these settings."""
        potentiostatic = self.mode == "potentiostatic"
        return Impedance(mode=self.mode, initial_frequency_Hz=self.initial_frequency_Hz,
                         final_frequency_Hz=self.final_frequency_Hz, points_per_decade=self.points_per_decade,
                         amplitude_V=self.amplitude_mV * 1e-3 if potentiostatic else None,
                         amplitude_A=None if potentiostatic else self.amplitude_uA * 1e-6,
                         average_n=self.average_n, wait_periods=self.wait_periods, label=label, cycle=cycle)


class FitSettings(_Model):
    """How spectra are fitted (:func:`labctl.analysis.impedance.fit_spectrum`).

    ``circuit``: a name of :data:`labctl.analysis.impedance.CIRCUITS`; ``f_min_Hz`` /
    ``f_max_Hz``: the points fitted; ``conductivity_from``: the resistance σ_ion = d / (R·A)
    [000 L187] uses — ``total`` (R_b + R_gb, a pellet's total conductivity [003 L374]) or
    ``bulk`` (R_b alone, the grains'). ``interfaces``: how many identical interfaces R_ct
    stands for (1: the whole cell's value, as [000 L87] reports it).
    """

    circuit: str = "Rb-(Rgb|CPE)-(Rct|CPE)"
    f_min_Hz: float | None = Field(default=None, gt=0)
    f_max_Hz: float | None = Field(default=None, gt=0)
    conductivity_from: Literal["total", "bulk"] = "total"
    interfaces: int = Field(default=1, ge=1, le=2)

    @field_validator("circuit")
    @classmethod
    def _known(cls, circuit: str) -> str:
        if circuit not in CIRCUITS:
            raise ValueError(f"unknown circuit {circuit!r}; known: {', '.join(CIRCUITS)}")
        return circuit


class Limits(_Model):
    """The run's safety limits as a protocol writes them: |V| (V) and |I| (mA). For a
    potentiostatic step the current limit must hold the first, ohmic current V / R_b."""

    voltage_limit_V: float = Field(default=5.0, gt=0, le=10)
    current_limit_mA: float = Field(default=10.0, gt=0, le=MAX_CURRENT_LIMIT_MA)


def rest(duration_s: float, record_interval_s: float, label: str = "rest", cycle: int = 0) -> Rest:
    """An open-circuit rest."""
    return Rest(duration_s=duration_s, record_interval_s=record_interval_s, label=label, cycle=cycle)


def fit_one(spectrum: dict[str, np.ndarray], fit: FitSettings, area_cm2: float) -> ImpedanceFit:
    """Fit one stored spectrum (columns of :meth:`labctl.store.RunFile.spectra`).

    Raises:
        ValueError: the fit failed (bad or too few points, no convergence).
    """
    return fit_spectrum(spectrum["frequency_Hz"], spectrum["z_real_ohm"], spectrum["z_imag_neg_ohm"],
                        circuit=fit.circuit, area_cm2=area_cm2, f_min_Hz=fit.f_min_Hz, f_max_Hz=fit.f_max_Hz)


def spectrum_results(result: ImpedanceFit, fit: FitSettings, thickness_um: float, area_cm2: float) -> dict[str, Any]:
    """The named results of one fitted spectrum: the areal resistances, the fit quality and
    σ_ion = d / (R·A) from R_b + R_gb (``total``) or R_b (``bulk``), with the other one too."""
    out = result.as_results(interfaces=fit.interfaces)
    sigma = conductivity_from_fit(result, thickness_um, area_cm2)
    out["total_ionic_conductivity_S_cm"] = sigma["ionic_conductivity_S_cm"]
    out["bulk_ionic_conductivity_S_cm"] = sigma["bulk_ionic_conductivity_S_cm"]
    r = result.electrolyte_resistance_ohm if fit.conductivity_from == "total" else result.bulk_resistance_ohm
    out["ionic_conductivity_S_cm"] = ionic_conductivity_S_cm(r, thickness_um, area_cm2)
    out["ionic_conductivity_from"] = fit.conductivity_from
    return out


def fitted_spectra(run: RunFile, channel: str, fit: FitSettings, thickness_um: float,
                   area_cm2: float) -> tuple[list[dict[str, Any]], list[str]]:
    """Every spectrum of the run fitted: (per spectrum its results plus ``spectrum_index``,
    ``step_index``, ``test_time_s``; problems as lines). A spectrum that cannot be fitted is a
    problem line, not an exception: the run's other results still count."""
    rows, problems = [], []
    for spec in run.spectra(channel):
        index = int(spec["spectrum_index"][0])
        try:
            result = fit_one(spec, fit, area_cm2)
        except ValueError as exc:
            problems.append(f"spectrum {index}: {exc}")
            continue
        row = spectrum_results(result, fit, thickness_um, area_cm2)
        row.update(spectrum_index=index, step_index=int(spec["step_index"][0]) if "step_index" in spec else -1,
                   test_time_s=float(spec["test_time_s"][-1]) if "test_time_s" in spec else float("nan"))
        rows.append(row)
    return rows, problems


def series(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-spectrum values as lists (NaN where a spectrum lacks one), for the results group."""
    return {key: [float(r.get(key, float("nan"))) for r in rows] for key in keys}


#: Per-spectrum results stored as arrays.
SPECTRUM_SERIES = ("spectrum_index", "step_index", "test_time_s", "bulk_resistance_ohm_cm2",
                   "grain_boundary_resistance_ohm_cm2", "charge_transfer_resistance_ohm_cm2", "ionic_conductivity_S_cm",
                   "impedance_fit_relative_residual_rms")


def step_record(run: RunFile, channel: str, step_index: int) -> dict[str, np.ndarray]:
    """One executed step's readings (every column), in time order."""
    cols = run.columns(channel)
    keep = cols["step_index"] == step_index
    return {name: values[keep] for name, values in cols.items()}


def steps_of(run: RunFile, channel: str, kind: str, label: str | None = None) -> list[dict[str, Any]]:
    """The ``steps`` rows of ``channel`` of one kind (and label), in order."""
    return [s for s in run.steps() if s["channel"] == channel and s["kind"] == kind
            and (label is None or s["label"] == label)]


__all__ = ["FitSettings", "ImpedanceSettings", "Limits", "SPECTRUM_SERIES", "fit_one", "fitted_spectra", "rest", "series",
           "spectrum_results", "step_record", "steps_of"]
