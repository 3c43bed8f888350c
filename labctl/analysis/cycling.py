"""Per-cycle figures of galvanostatic Li | SSE | Li plating/stripping.

For each cycle (a plating half-cycle, current > 0, and a stripping half-cycle, current < 0):
overpotential at the stated point — the last reading of each half-cycle — and its mean (mV; |V|,
as the open-circuit voltage of a symmetric cell is 0), the cell's DC area-specific resistance
``cell_asr_ohm_cm2`` = mean of the two end-of-half-cycle overpotentials / |j| (Ω cm²), with the
bulk known the per-interface ``interface_asr_ohm_cm2`` = (cell − d/σ)/2
(:func:`labctl.analysis.ccd.interface_asr_ohm_cm2`), and the charge passed with its areal
capacity (mAh cm⁻²). The seeds report
these qualitatively (seed-protocols.md §3 "Overpotential values", §8); the definitions are the
usual ones.

Input: the run's step table (mappings with ``cycle``, ``current_density_mA_cm2``, ``reason``,
``voltage_end_V``, ``voltage_mean_V``, ``charge_C``, ``end_s``) and the electrode area.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labctl.analysis.ccd import interface_asr_ohm_cm2

_COMPLETED = {"time", "charge"}


def per_cycle(steps: Sequence[Mapping[str, Any]], area_cm2: float, *, label_prefix: str = "",
              bulk_asr_ohm_cm2: float | None = None) -> dict[str, list[float]]:
    """Columns of equal length, one entry per cycle with both half-cycles completed.

    ``label_prefix`` keeps only steps whose label starts with it (e.g. the main cycling, not
    the activation); ``bulk_asr_ohm_cm2`` (d/σ, Ω cm²) when known adds the per-interface ASR.
    Keys: ``cycle``, ``end_s``, ``plating_overpotential_end_mV``,
    ``plating_overpotential_mean_mV``, ``stripping_overpotential_end_mV``,
    ``stripping_overpotential_mean_mV``, ``cell_asr_ohm_cm2``, [``interface_asr_ohm_cm2``],
    ``plated_mAh_cm2``, ``stripped_mAh_cm2``.
    """
    halves: dict[int, dict[str, Mapping[str, Any]]] = {}
    for s in steps:
        j = float(s["current_density_mA_cm2"])
        if j == 0 or s["reason"] not in _COMPLETED or not str(s.get("label", "")).startswith(label_prefix):
            continue
        halves.setdefault(int(s["cycle"]), {})["plate" if j > 0 else "strip"] = s
    keys = ("cycle", "end_s", "plating_overpotential_end_mV", "plating_overpotential_mean_mV",
            "stripping_overpotential_end_mV", "stripping_overpotential_mean_mV", "cell_asr_ohm_cm2",
            *(("interface_asr_ohm_cm2",) if bulk_asr_ohm_cm2 is not None else ()), "plated_mAh_cm2", "stripped_mAh_cm2")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for cycle in sorted(halves):
        pair = halves[cycle]
        if len(pair) < 2:
            continue
        plate, strip = pair["plate"], pair["strip"]
        p_mean = abs(float(plate["voltage_mean_V"])) * 1e3
        s_mean = abs(float(strip["voltage_mean_V"])) * 1e3
        p_end = abs(float(plate["voltage_end_V"])) * 1e3
        s_end = abs(float(strip["voltage_end_V"])) * 1e3
        j = (abs(float(plate["current_density_mA_cm2"])) + abs(float(strip["current_density_mA_cm2"]))) / 2
        out["cycle"].append(cycle)
        out["end_s"].append(float(strip["end_s"]))
        out["plating_overpotential_end_mV"].append(p_end)
        out["plating_overpotential_mean_mV"].append(p_mean)
        out["stripping_overpotential_end_mV"].append(s_end)
        out["stripping_overpotential_mean_mV"].append(s_mean)
        cell = (p_end + s_end) / 2 / j
        out["cell_asr_ohm_cm2"].append(cell)
        if bulk_asr_ohm_cm2 is not None:
            out["interface_asr_ohm_cm2"].append(interface_asr_ohm_cm2(cell, bulk_asr_ohm_cm2))
        out["plated_mAh_cm2"].append(abs(float(plate["charge_C"])) / 3.6 / area_cm2)
        out["stripped_mAh_cm2"].append(abs(float(strip["charge_C"])) / 3.6 / area_cm2)
    return out
