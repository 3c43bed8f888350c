"""What the c-AFM and memristor protocols share: the tip contact, the compliance of the
nano-electrochemical setup, cyclic sweep points, the simulated sample, and results computed
from the readings (not only the step rows)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from labctl.analysis.cafm import hertz_contact_area_nm2
from labctl.steps import MAX_SWEEP_POINTS
from protocols.base import ProtocolBase


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TipContact(_Model):
    """The c-AFM tip: seed 004's Pt tip r = 20 nm [004 L117], 400 nN, E* = 60 GPa [004 L129].

    ``stated_contact_area_nm2`` is what a paper reports for these inputs (seed 004: 30 nm²);
    the analysis computes the Hertzian area itself and records both.
    """

    radius_nm: float = Field(default=20.0, gt=0, le=1e5)
    force_nN: float = Field(default=400.0, gt=0, lt=10000)
    modulus_GPa: float = Field(default=60.0, gt=0, le=1e4)
    stated_contact_area_nm2: float | None = Field(default=30.0, gt=0, le=1e12)

    @property
    def contact_area_nm2(self) -> float:
        return hertz_contact_area_nm2(self.radius_nm, self.force_nN, self.modulus_GPa)


class SimulatedSample(_Model):
    """The sample behind the simulated AFM and 2400 (``--simulate`` only): Voronoi LLZO
    grains (:class:`drivers.sim.physics.tip.SampleParameters`) and junction overrides
    (:class:`drivers.sim.physics.tip.JunctionParameters` field names, e.g. ``gi_trigger_bias_V``)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    field_nm: float = Field(default=1000.0, gt=0, le=1e6)
    grain_size_nm: float = Field(default=250.0, gt=0, le=1e6)
    gb_width_nm: float = Field(default=3.0, gt=0, le=1e4)
    homogenising_layer: bool = False
    sample_seed: int = 4
    seed: int = 0

    def junction_overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def cyclic_points_V(start_V: float, vertex_V: float, step_V: float, end_V: float | None = None) -> list[float]:
    """start → vertex → end (default: start) in steps of |step_V|, both ends included,
    rounded to 1 µV (so 0.01 V steps give −0.12 V exactly).

    Raises:
        ValueError: more than :data:`MAX_SWEEP_POINTS` points (counted before any is made).
    """
    end_V = start_V if end_V is None else end_V
    step = abs(step_V)
    if not step > 0 or (abs(vertex_V - start_V) + abs(end_V - vertex_V)) / step > MAX_SWEEP_POINTS:
        raise ValueError(f"a sweep {start_V:g} → {vertex_V:g} → {end_V:g} V in steps of {step_V:g} V has more than "
                         f"{MAX_SWEEP_POINTS} points, the 2400's sweep memory (raise step_V)")

    def ramp(a: float, b: float) -> np.ndarray:
        n = int(round(abs(b - a) / step))
        return np.linspace(a, b, n + 1) if n else np.array([a])

    points = np.concatenate([ramp(start_V, vertex_V), ramp(vertex_V, end_V)[1:]])
    return [round(float(p), 6) for p in points]


class SweepProtocolBase(ProtocolBase):
    """Protocol fields of every sweep kind (seed 004's limits: 1 mA, 10 V [004 L117])."""

    afm: str = Field(default="afm", description="the AFM controller's name in the station file")
    compliance_current_A: float = Field(default=1e-3, gt=0, le=1.05)
    voltage_limit_V: float = Field(default=10.0, gt=0, le=210)
    nplc: float = Field(default=0.01, ge=0.01, le=10)
    dwell_s: float | None = Field(default=None, ge=0, le=999)
    """Settling time per sweep point (2400 source delay); or give ``rate_V_s``."""
    rate_V_s: float | None = Field(default=None, gt=0, le=1e4)
    simulated_sample: SimulatedSample = SimulatedSample()

    @model_validator(mode="after")
    def _dwell_or_rate(self) -> SweepProtocolBase:
        if self.dwell_s is not None and self.rate_V_s is not None:
            raise ValueError("give dwell_s or rate_V_s, not both")
        return self

    def source_delay_s(self, step_V: float) -> float | None:
        """Per-point source delay: ``dwell_s``, or step/rate less the integration time."""
        if self.rate_V_s is not None:
            return max(0.0, abs(step_V) / self.rate_V_s - self.nplc / 50.0)
        return self.dwell_s
