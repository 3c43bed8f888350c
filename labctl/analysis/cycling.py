"""Per-cycle figures of galvanostatic Li | SSE | Li plating/stripping.

For each cycle (a plating half-cycle, current > 0, and a stripping half-cycle, current < 0):
overpotential at the end of each half-cycle and its mean (mV; |V|, as the open-circuit voltage
of a symmetric cell is 0), the area-specific resistance ASR = mean overpotential / |j|
(Ω cm²), and the charge passed (C) with its areal capacity (mAh cm⁻²). The seeds report
these qualitatively (seed-protocols.md §3 "Overpotential values", §8); the definitions are the
usual ones.

Input: the run's step table (mappings with ``cycle``, ``current_density_mA_cm2``, ``reason``,
``voltage_end_V``, ``voltage_mean_V``, ``charge_C``, ``end_s``) and the electrode area.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

_COMPLETED = {"time", "charge"}


def per_cycle(steps: Sequence[Mapping[str, Any]], area_cm2: float, *, label_prefix: str = "") -> dict[str, list[float]]:
    """Columns of equal length, one entry per cycle with both half-cycles completed.

    ``label_prefix`` keeps only steps whose label starts with it (e.g. the main cycling, not
    the activation). Keys: ``cycle``, ``end_s``, ``plating_overpotential_end_mV``,
    ``plating_overpotential_mean_mV``, ``stripping_overpotential_end_mV``,
    ``stripping_overpotential_mean_mV``, ``asr_ohm_cm2``, ``plated_mAh_cm2``, ``stripped_mAh_cm2``.
    """
    halves: dict[int, dict[str, Mapping[str, Any]]] = {}
    for s in steps:
        j = float(s["current_density_mA_cm2"])
        if j == 0 or s["reason"] not in _COMPLETED or not str(s.get("label", "")).startswith(label_prefix):
            continue
        halves.setdefault(int(s["cycle"]), {})["plate" if j > 0 else "strip"] = s
    keys = ("cycle", "end_s", "plating_overpotential_end_mV", "plating_overpotential_mean_mV",
            "stripping_overpotential_end_mV", "stripping_overpotential_mean_mV", "asr_ohm_cm2",
            "plated_mAh_cm2", "stripped_mAh_cm2")
    out: dict[str, list[float]] = {k: [] for k in keys}
    for cycle in sorted(halves):
        pair = halves[cycle]
        if len(pair) < 2:
            continue
        plate, strip = pair["plate"], pair["strip"]
        p_mean = abs(float(plate["voltage_mean_V"])) * 1e3
        s_mean = abs(float(strip["voltage_mean_V"])) * 1e3
        j = (abs(float(plate["current_density_mA_cm2"])) + abs(float(strip["current_density_mA_cm2"]))) / 2
        out["cycle"].append(cycle)
        out["end_s"].append(float(strip["end_s"]))
        out["plating_overpotential_end_mV"].append(abs(float(plate["voltage_end_V"])) * 1e3)
        out["plating_overpotential_mean_mV"].append(p_mean)
        out["stripping_overpotential_end_mV"].append(abs(float(strip["voltage_end_V"])) * 1e3)
        out["stripping_overpotential_mean_mV"].append(s_mean)
        out["asr_ohm_cm2"].append((p_mean + s_mean) / 2 / j)
        out["plated_mAh_cm2"].append(abs(float(plate["charge_C"])) / 3.6 / area_cm2)
        out["stripped_mAh_cm2"].append(abs(float(strip["charge_C"])) / 3.6 / area_cm2)
    return out
