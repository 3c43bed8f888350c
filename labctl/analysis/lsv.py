"""Oxidation onset of a linear sweep voltammogram.

[002 L39]: Li | CSE | SS, from OCV to 6.0 V at 0.5 mV s⁻¹, "to evaluate the electrochemical
stability". The seeds give no onset criterion (seed-protocols.md §7.3). Here the onset is the
first voltage of the anodic sweep at which the current density exceeds a threshold and stays
above it for ``sustain_points`` consecutive readings. The default threshold, 10 µA cm⁻²
(0.01 mA cm⁻²), is a cut-off often used for polymer and composite electrolytes; it is a
parameter, and the result names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labctl.analysis._inputs import finite_array, positive, same_length

#: Default onset threshold, µA cm⁻² (a convention; the seeds state none).
DEFAULT_THRESHOLD_UA_CM2 = 10.0


@dataclass(frozen=True)
class OxidationOnset:
    """``oxidation_onset_V``: the onset (V), or the sweep's highest voltage when the current
    never crossed the threshold (``is_lower_bound`` True: stable at least up to there);
    ``index``: the reading of the onset (``None`` without one); ``threshold_uA_cm2``."""

    oxidation_onset_V: float
    is_lower_bound: bool
    index: int | None
    threshold_uA_cm2: float
    sustain_points: int

    def as_results(self) -> dict[str, Any]:
        return {"oxidation_onset_V": self.oxidation_onset_V,
                "oxidation_onset_is_lower_bound": self.is_lower_bound,
                "oxidation_onset_threshold_uA_cm2": self.threshold_uA_cm2}


def oxidation_onset(voltage_V: Any, current_A: Any, *, area_cm2: float,
                    threshold_uA_cm2: float = DEFAULT_THRESHOLD_UA_CM2, sustain_points: int = 3) -> OxidationOnset:
    """First voltage of the anodic sweep where j ≥ threshold for ``sustain_points`` readings.

    Only the sweep up to its highest voltage is searched (a back scan is ignored); the
    current is taken with its sign (anodic = positive, the potentiostat's convention).

    Args:
        voltage_V, current_A: the sweep (V, A), 1-D, equal length, in time order.
        area_cm2: electrode area (cm²).
        threshold_uA_cm2: onset current density (µA cm⁻²).
        sustain_points: consecutive readings that must stay above it (≥ 1).

    Raises:
        ValueError: bad input (named).
    """
    v = finite_array("voltage_V", voltage_V, min_length=2)
    i = finite_array("current_A", current_A)
    same_length(voltage_V=v, current_A=i)
    area = positive("area_cm2", area_cm2)
    threshold = positive("threshold_uA_cm2", threshold_uA_cm2)
    if sustain_points < 1:
        raise ValueError(f"sustain_points must be ≥ 1, got {sustain_points}")
    top = int(np.argmax(v))
    j_uA_cm2 = i[: top + 1] * 1e6 / area
    above = j_uA_cm2 >= threshold
    if sustain_points > 1 and len(above) >= sustain_points:
        window = np.lib.stride_tricks.sliding_window_view(above, sustain_points).all(axis=1)
    elif sustain_points > 1:
        window = np.zeros(0, dtype=bool)
    else:
        window = above
    hits = np.flatnonzero(window)
    if len(hits) == 0:
        return OxidationOnset(float(v[top]), True, None, threshold, sustain_points)
    k = int(hits[0])
    return OxidationOnset(float(v[k]), False, k, threshold, sustain_points)
