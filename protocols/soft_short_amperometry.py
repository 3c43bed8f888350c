"""Soft-short amperometry: a constant bias across a solid electrolyte and the current through it
at the sourcemeter's low current ranges, for the signature of seed 001 ([001 L36–L64]): the
current at the ≈ 0.5 nA noise floor, an abrupt rise, stochastic spikes whose amplitude grows to
hundreds of nA while their rate stays, then the hard short and the fuse-like burn-out.

The program is one constant-voltage step (the 2400 in voltage-source mode, current compliance
``compliance_A``; auto-ranging down to its 1 µA range) for ``duration_s``, read every
``record_interval_s``; optionally it ends when |I| reaches ``stop_current_A``. The bias is NS
in [001]; seed 000 biased its in situ TEM cell at 5 V [000 L97, L201].

Results (:func:`labctl.analysis.spikes.soft_short_spikes`, scipy's peak finding): the spike
count (``spike_count``), amplitudes and rate per minute, the onset of the abrupt rise
(``soft_short_onset_s``), the hard short (``hard_short_s``: |I| ≥ ``hard_short_A``) and the
burn-out, and the amplitude's growth with time (Spearman's ρ).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from labctl.analysis.spikes import soft_short_spikes
from labctl.steps import ConstantVoltage, SafetyLimits, StepProgram
from protocols.base import ProtocolBase, RecordInterval, Seconds


class SoftShortAmperometry(ProtocolBase):
    """Protocol file of kind ``soft_short_amperometry`` (units in the field names)."""

    kind: Literal["soft_short_amperometry"] = "soft_short_amperometry"
    bias_V: float = Field(ge=-200, le=200)
    duration_s: Seconds
    record_interval_s: RecordInterval = 0.1
    compliance_A: float = Field(default=1e-3, gt=0, le=1.05)
    stop_current_A: float | None = Field(default=None, gt=0, le=1.05)
    hard_short_A: float = Field(gt=0, le=1.05)
    n_sigma: float = Field(default=5.0, gt=0, le=100)
    baseline_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> SoftShortAmperometry:
        if self.bias_V == 0:
            raise ValueError("bias_V must not be 0")
        if self.hard_short_A >= self.compliance_A:
            raise ValueError("hard_short_A must be below compliance_A (the hard short must be measurable)")
        if self.stop_current_A is not None and self.stop_current_A >= self.compliance_A:
            raise ValueError("stop_current_A must be below compliance_A")
        return self

    def program(self) -> StepProgram:
        """One constant-voltage step at the bias."""
        step = ConstantVoltage(voltage_V=self.bias_V, duration_s=self.duration_s, stop_current_above_A=self.stop_current_A,
                               record_interval_s=self.record_interval_s, label=f"bias {self.bias_V:g} V")
        return StepProgram(steps=[step], area_cm2=self.cell.area_cm2,
                           safety=SafetyLimits(max_abs_voltage_V=max(1.0, abs(self.bias_V) * 1.1),
                                               max_abs_current_A=self.compliance_A))

    def analyse_run(self, columns: dict[str, np.ndarray], steps: list[dict[str, Any]]) -> dict[str, Any]:
        """Spikes, onset, hard short and burn-out of the bias step's current."""
        out: dict[str, Any] = {"ended_by": steps[-1]["reason"] if steps else "no steps", "bias_V": self.bias_V}
        t = columns.get("test_time_s", ())
        if len(t) < 10:
            return out
        result = soft_short_spikes(t, columns["current_A"], hard_short_A=self.hard_short_A, baseline_s=self.baseline_s,
                                   n_sigma=self.n_sigma)
        out.update(result.as_results())
        return out

    @staticmethod
    def summary(results: dict[str, Any]) -> list[str]:
        if "spike_count" not in results:
            return [f"ended by: {results['ended_by']}"]

        def at(key: str) -> str:
            return "none" if results[key] == "" else f"{results[key]:.1f} s"

        return [f"noise floor {results['noise_floor_A'] * 1e9:.2g} nA; soft-short onset {at('soft_short_onset_s')}, "
                f"hard short {at('hard_short_s')}, burn-out {at('burnout_s')}",
                f"{results['spike_count']} spikes ({results['spike_rate_per_min']:.1f} per min), amplitude growth "
                f"ρ = {results['spike_amplitude_growth_spearman']:.2f}"]


__all__ = ["SoftShortAmperometry"]
