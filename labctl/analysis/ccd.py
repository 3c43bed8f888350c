"""Critical current density (CCD) and per-step overpotentials of a plating/stripping staircase.

CCD: "the highest current density before a Li|LLZO|Li cell shorts" ([004 L36]; seed-protocols.md
§2.1). Here: the highest |current density| at which every half-cycle of the staircase ran to its
planned end, below the first step in which a short was detected.

Overpotential of a step in a symmetric Li | SSE | Li cell: |V| (the open-circuit voltage is 0),
taken at the stated point — the last reading of the half-cycle — and as the step mean (which
includes the reversal transient). The cell's DC area-specific resistance ``cell_asr_ohm_cm2`` is
the end-of-half-cycle overpotential / |j| (Ω cm²): bulk, grain boundaries, both interfaces and
any concentration polarisation. Where the bulk is known (R_b = d/σ, [000 L187]) the
per-interface value is ``interface_asr_ohm_cm2`` = (cell − R_b)/2, the quantity seed 004 quotes
(~1000 / ~50 / ~14 Ω cm² [004 L87]). The seeds give no formula for either (seed-protocols.md §8
"Overpotential / polarisation"); these are the usual definitions.

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
    CCD is at least that value. ``ccd_below_start`` is True when the first current density
    shorted: the CCD is below the staircase's start (printed "CCD < start", not 0). The
    ``short_*`` fields are None without a short; ``ended_by`` is the step's end reason
    (``short`` or ``soft_short``, else why the run ended).
    """

    ccd_mA_cm2: float
    ccd_is_lower_bound: bool
    ccd_below_start: bool
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
        return CCDResult(ccd, True, False, False, None, None, None, last_reason)
    first = min((round(abs(float(j)), 9) for j in planned_densities_mA_cm2 if float(j) != 0), default=None)
    short_j = round(abs(float(short["current_density_mA_cm2"])), 9)
    return CCDResult(
        ccd_mA_cm2=ccd,
        ccd_is_lower_bound=False,
        ccd_below_start=ccd == 0.0 and first is not None and short_j <= first,
        short_detected=True,
        short_current_density_mA_cm2=round(abs(float(short["current_density_mA_cm2"])), 9),
        short_time_s=float(short["end_s"]),
        short_step_index=int(short["step_index"]),
        ended_by=str(short["reason"]),
    )


def step_overpotentials(steps: Sequence[Mapping[str, Any]], bulk_asr_ohm_cm2: float | None = None
                        ) -> dict[str, list[float]]:
    """Per-step overpotentials and area-specific resistances of the galvanostatic steps.

    Args:
        steps: the step table (module docstring).
        bulk_asr_ohm_cm2: R_b × area = d/σ of the electrolyte (Ω cm²) when known; then the
            per-interface ASR is given too.

    Returns columns of equal length: ``step_index``, ``current_density_mA_cm2`` (signed),
    ``overpotential_end_mV`` (|V| at the step's last reading), ``overpotential_mean_mV``
    (|mean V|), ``cell_asr_ohm_cm2`` (end overpotential / |j|) and, with the bulk,
    ``interface_asr_ohm_cm2`` ((cell − bulk) / 2).
    """
    keys = ["step_index", "current_density_mA_cm2", "overpotential_end_mV", "overpotential_mean_mV", "cell_asr_ohm_cm2"]
    if bulk_asr_ohm_cm2 is not None:
        keys.append("interface_asr_ohm_cm2")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for s in steps:
        j = float(s["current_density_mA_cm2"])
        if j == 0:
            continue
        end_mV = abs(float(s["voltage_end_V"])) * 1e3
        out["step_index"].append(int(s["step_index"]))
        out["current_density_mA_cm2"].append(j)
        out["overpotential_end_mV"].append(end_mV)
        out["overpotential_mean_mV"].append(abs(float(s["voltage_mean_V"])) * 1e3)
        cell = end_mV / abs(j)
        out["cell_asr_ohm_cm2"].append(cell)
        if bulk_asr_ohm_cm2 is not None:
            out["interface_asr_ohm_cm2"].append(interface_asr_ohm_cm2(cell, bulk_asr_ohm_cm2))
    return out


def interface_asr_ohm_cm2(cell_asr_ohm_cm2: float, bulk_asr_ohm_cm2: float) -> float:
    """Per-interface ASR of a symmetric cell, (cell − bulk) / 2 (Ω cm²); the bulk is d/σ."""
    return (cell_asr_ohm_cm2 - bulk_asr_ohm_cm2) / 2.0
