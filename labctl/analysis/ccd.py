"""Critical current density (CCD) and per-step overpotentials of a plating/stripping staircase.

CCD: "the highest current density before a Li|LLZO|Li cell shorts" ([004 L36]; seed-protocols.md
§2.1). Here: the highest |current density| at which every half-cycle of the staircase ran to its
planned end, below the first step in which a short was detected.

Overpotential of a step in a symmetric Li | SSE | Li cell: |V| (the open-circuit voltage is 0),
taken at the end of the half-cycle and as the step mean; the area-specific resistance (ASR)
is mean overpotential / current density (Ω cm²). The seeds give no formula for either
(seed-protocols.md §8 "Overpotential / polarisation"); these are the usual definitions.

Input is the run's step table: one mapping per executed step with at least ``step_index``,
``current_density_mA_cm2``, ``reason`` (why the step ended: time, short, safety, …),
``end_s``, ``voltage_end_V`` and ``voltage_mean_V`` — as in the engine's
:class:`~labctl.events.StepSummary` and the run file's ``steps`` dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Step end reasons meaning "this half-cycle ran as planned".
_COMPLETED = {"time", "charge"}
#: Step end reasons meaning a (soft) short circuit was detected.
SHORT_REASONS = {"short", "soft_short"}


@dataclass(frozen=True)
class CCDResult:
    """Outcome of a CCD staircase.

    ``ccd_mA_cm2`` is the highest current density completed without a short (0 if not even
    the first completed). ``ccd_is_lower_bound`` is True when no short happened: the cell's
    CCD is at least that value. The ``short_*`` fields are None without a short.
    """

    ccd_mA_cm2: float
    ccd_is_lower_bound: bool
    short_detected: bool
    short_current_density_mA_cm2: float | None
    short_time_s: float | None
    short_step_index: int | None
    ended_by: str

    def as_dict(self) -> dict[str, Any]:
        return {k: ("" if v is None else v) for k, v in self.__dict__.items()}


def critical_current_density(steps: Sequence[Mapping[str, Any]], planned_densities_mA_cm2: Sequence[float]) -> CCDResult:
    """CCD from a staircase's step table.

    Args:
        steps: executed steps in order (see module docstring for the keys).
        planned_densities_mA_cm2: the staircase's current densities (magnitudes, ascending),
            so a density counts as completed only if all of its planned half-cycles ran.

    Returns:
        :class:`CCDResult`. A density interrupted by anything but a short (an operator stop, a
        safety trip) is not counted as completed, and the CCD is then a lower bound.
    """
    by_density: dict[float, list[Mapping[str, Any]]] = {}
    short = next((s for s in steps if s["reason"] in SHORT_REASONS), None)
    for step in steps:
        if short is not None and step["step_index"] >= short["step_index"]:
            break
        j = round(abs(float(step["current_density_mA_cm2"])), 9)
        if j > 0:
            by_density.setdefault(j, []).append(step)
    planned_counts: dict[float, int] = {}
    for j in planned_densities_mA_cm2:
        key = round(abs(float(j)), 9)
        planned_counts[key] = planned_counts.get(key, 0) + 1
    ccd = 0.0
    for j in sorted(by_density):
        done = [s for s in by_density[j] if s["reason"] in _COMPLETED]
        if len(done) < planned_counts.get(j, len(by_density[j])):
            break
        ccd = j
    last_reason = steps[-1]["reason"] if steps else "no steps"
    if short is None:
        return CCDResult(ccd, True, False, None, None, None, last_reason)
    return CCDResult(
        ccd_mA_cm2=ccd,
        ccd_is_lower_bound=False,
        short_detected=True,
        short_current_density_mA_cm2=round(abs(float(short["current_density_mA_cm2"])), 9),
        short_time_s=float(short["end_s"]),
        short_step_index=int(short["step_index"]),
        ended_by="short",
    )


def step_overpotentials(steps: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    """Per-step overpotentials and ASR of the galvanostatic steps.

    Returns columns of equal length: ``step_index``, ``current_density_mA_cm2`` (signed),
    ``overpotential_end_mV`` (|V| at the step's end), ``overpotential_mean_mV`` (|mean V|),
    ``asr_ohm_cm2`` (mean overpotential / |j|).
    """
    out: dict[str, list[float]] = {k: [] for k in (
        "step_index", "current_density_mA_cm2", "overpotential_end_mV", "overpotential_mean_mV", "asr_ohm_cm2")}
    for s in steps:
        j = float(s["current_density_mA_cm2"])
        if j == 0:
            continue
        mean_mV = abs(float(s["voltage_mean_V"])) * 1e3
        out["step_index"].append(int(s["step_index"]))
        out["current_density_mA_cm2"].append(j)
        out["overpotential_end_mV"].append(abs(float(s["voltage_end_V"])) * 1e3)
        out["overpotential_mean_mV"].append(mean_mV)
        out["asr_ohm_cm2"].append(mean_mV / abs(j))
    return out
