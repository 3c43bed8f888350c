"""Sweep programs: plain, validated data for instrument-timed voltage sweeps with a tip.

A :class:`SweepProgram` is what :class:`labctl.engine.sweeps.SweepEngine` runs: tip moves
(withdraw, move, engage), voltage sweeps executed by the 2400 itself (list sweeps of up to
2500 points, read back in one transfer), and current maps (a grid of tip positions at one
bias, software-timed because every point needs a tip move). It prints, validates, is stored
in the run file as JSON, and has the same surface the CLI's ``validate`` and progress view
use on a :class:`~labctl.steps.StepProgram` (``iter_steps``, ``n_steps``,
``n_cycles``, ``planned_duration_s``, ``safety``, ``area_cm2``).

Units: V, A, s, nm, nN, cm². Bias sign: V of the working electrode (tip or pad) vs the Li
counter/reference electrode; negative plates Li at the working electrode [004 L54].
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from labctl.steps import SafetyLimits

#: The 2400's sweep and buffer capacity (manual §10).
MAX_SWEEP_POINTS = 2500
#: Auto source delay assumed for duration estimates (s).
AUTO_SOURCE_DELAY_S = 1e-3


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TipMove(_Model):
    """Bias to 0 V, withdraw, move to (x, y), engage: the tip is on the next site.

    ``site_class`` ("GB", "GI", "HL" or "") and ``distance_to_boundary_nm`` describe the
    site for the analysis; the engine does not use them.
    """

    kind: Literal["tip_move"] = "tip_move"
    x_nm: float
    y_nm: float
    site_class: str = ""
    distance_to_boundary_nm: float | None = None
    label: str = ""
    cycle: int = Field(default=0, ge=0)
    duration_s: float = 0.0


class VoltageSweep(_Model):
    """One list sweep run by the instrument: ``points_V`` in order, one reading per point.

    ``source_delay_s``: settling time per point (None: the instrument's auto delay);
    ``abort_on_compliance``: stop at the first reading in compliance (2400 ``:SWE:CAB``).
    ``reset_segment``: (first, last) point indices of a memristor reset excursion; the
    engine then checks on-line that a reset happened there (for
    :attr:`SweepProgram.stop_after_reset_failures`).
    """

    kind: Literal["voltage_sweep"] = "voltage_sweep"
    points_V: list[float] = Field(min_length=1, max_length=MAX_SWEEP_POINTS)
    source_delay_s: float | None = Field(default=None, ge=0, le=999.9999)
    nplc: float = Field(default=1.0, ge=0.01, le=10)
    abort_on_compliance: bool = True
    reset_segment: tuple[int, int] | None = None
    label: str = ""
    cycle: int = Field(default=0, ge=0)

    @property
    def duration_s(self) -> float:
        """Expected duration at 50 Hz mains (s): per point source delay + NPLC/50."""
        delay = AUTO_SOURCE_DELAY_S if self.source_delay_s is None else self.source_delay_s
        return len(self.points_V) * (delay + self.nplc / 50.0)


class CurrentMap(_Model):
    """The current at ``bias_V`` on an ``nx`` × ``ny`` grid from (x0, y0) at ``pitch_nm``,
    row by row (y outer, x inner), the tip in contact: the c-AFM current map of [004 L50]."""

    kind: Literal["current_map"] = "current_map"
    x0_nm: float
    y0_nm: float
    nx: int = Field(ge=1, le=512)
    ny: int = Field(ge=1, le=512)
    pitch_nm: float = Field(gt=0)
    bias_V: float
    label: str = ""
    cycle: int = Field(default=0, ge=0)
    duration_s: float = 0.0

    def positions_nm(self) -> Iterator[tuple[float, float]]:
        for j in range(self.ny):
            for i in range(self.nx):
                yield self.x0_nm + i * self.pitch_nm, self.y0_nm + j * self.pitch_nm


SweepStep = Annotated[TipMove | VoltageSweep | CurrentMap, Field(discriminator="kind")]


class SweepProgram(_Model):
    """What :class:`~labctl.engine.sweeps.SweepEngine` runs on one source-measure channel.

    ``safety.max_abs_current_A`` is the current compliance pushed into the 2400 (seed 004:
    1 mA [004 L117]); ``safety.max_abs_voltage_V`` bounds every sweep point (10 V).
    ``electrode``: "tip" (needs an AFM; ``contact_force_nN`` is its engage setpoint) or
    "pad" (no AFM, no tip moves). ``stop_after_reset_failures``: end the run (status
    ``reset_failures``) after this many sweeps whose ``reset_segment`` showed no reset.
    """

    kind: Literal["sweep_program"] = "sweep_program"
    steps: list[SweepStep] = Field(min_length=1)
    area_cm2: float = Field(gt=0)
    safety: SafetyLimits
    electrode: Literal["tip", "pad"] = "tip"
    contact_force_nN: float | None = Field(default=None, gt=0)
    stop_after_reset_failures: int | None = Field(default=None, ge=1)
    reset_drop_factor: float = Field(default=10.0, gt=1)
    """A reset is a fall of |I| by at least this factor between two points of the segment."""

    @model_validator(mode="after")
    def _consistent(self) -> SweepProgram:
        v_max = self.safety.max_abs_voltage_V
        for index, step in enumerate(self.steps):
            if isinstance(step, VoltageSweep):
                worst = max(abs(v) for v in step.points_V)
                if worst > v_max:
                    raise ValueError(f"step {index} ({step.label or step.kind}): a point of {worst:g} V exceeds "
                                     f"safety.max_abs_voltage_V {v_max:g}")
                if step.reset_segment is not None:
                    a, b = step.reset_segment
                    if not 0 <= a < b < len(step.points_V):
                        raise ValueError(f"step {index}: reset_segment {step.reset_segment} outside the sweep")
            elif isinstance(step, CurrentMap) and abs(step.bias_V) > v_max:
                raise ValueError(f"step {index}: map bias {step.bias_V:g} V exceeds safety.max_abs_voltage_V {v_max:g}")
            if self.electrode == "pad" and not isinstance(step, VoltageSweep):
                raise ValueError(f"step {index} ({step.kind}): a pad electrode has no tip to move or map")
        return self

    def iter_steps(self, start: int = 0) -> Iterator[tuple[int, SweepStep, int]]:
        """(step index, step, cycle) from ``start``."""
        for index, step in enumerate(self.steps):
            if index >= start:
                yield index, step, step.cycle

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def n_cycles(self) -> int:
        return max(step.cycle for step in self.steps)

    @property
    def planned_duration_s(self) -> float:
        """Sum of the sweeps' expected durations (moves and maps count as zero)."""
        return sum(step.duration_s for step in self.steps)
