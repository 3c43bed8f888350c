"""The online checks, each with its message, in one place.

* short circuit and soft short on constant-current steps (:class:`ShortDetector`, configured
  by :class:`ShortDetection`);
* the run's safety limits (:func:`safety_violation`, :func:`first_safety_index`): a reading at
  or beyond the voltage limit, over the current limit, in the instrument's compliance, or not
  finite at all (a NaN or inf from an instrument ends the run as ``safety``);
* the polarisation limit (:func:`first_polarisation_index`);
* a step's end conditions (:class:`EndConditions`, :func:`time_is_up`): time, voltage,
  current, charge.

The same code serves the software-timed executor (per reading, scalar forms), the delegated
executor (on downloaded blocks, array forms that return the first flagged index) and
``labctl import`` (replayed over old data), so a rule and its message are written once.
Messages use the field's units (mV, mA cm⁻², s) and name the step.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class ShortDetection(BaseModel):
    """Short-circuit detection on constant-current steps.

    No seed gives numbers (seed-protocols.md §2.3, §10 item 15): these are defaults.
    A short is flagged when, with current flowing, either
    * |V| falls below ``(1 - drop_fraction)`` × the step's running mean of |V|, after at
      least ``min_points`` readings in the step (the "sudden voltage drop", [003 L522]); or
    * |V| falls below ``floor_V`` (a hard short: V = I·R_short).
    A soft short is flagged when the voltage turns noisy (``noise_fraction``); seed 003
    describes soft shorts but gives no signature for them ([003 L156, L488]).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    drop_fraction: float = Field(default=0.5, gt=0, lt=1)
    floor_V: float = Field(default=1e-3, ge=0)
    min_points: int = Field(default=5, ge=1)
    noise_fraction: float | None = Field(default=0.05, gt=0)
    """Soft short: the mean |ΔV| between successive readings over ``noise_window`` readings
    exceeds this fraction of the running level (a healthy cell's is ≪ 1 %). None = off."""
    noise_window: int = Field(default=10, ge=2)


class ShortDetector:
    """Feeds on one step's readings; :meth:`update` returns ``(kind, message)`` when it sees a
    short (``kind`` "short") or a soft short ("soft_short"), else ``None``.

    The running level is the mean of |V| over the step so far, excluding the reading under
    test. Call :meth:`reset` at every step start (the level depends on the current).
    """

    __slots__ = ("_cfg", "_sum", "_n", "_keep", "_last", "_diffs", "_diff_sum")

    def __init__(self, config: ShortDetection) -> None:
        self._cfg = config
        self._keep = 1.0 - config.drop_fraction
        self.reset()

    def reset(self) -> None:
        self._sum = 0.0
        self._n = 0
        self._last: float | None = None
        self._diffs: deque[float] = deque(maxlen=self._cfg.noise_window)
        self._diff_sum = 0.0

    def update(self, voltage_V: float, current_A: float) -> tuple[str, str] | None:
        """Check one reading; ``None`` if nothing is wrong."""
        cfg = self._cfg
        if not cfg.enabled or current_A == 0.0:
            return None
        v = abs(voltage_V)
        if v < cfg.floor_V:
            return "short", f"|V| = {v * 1e3:.3g} mV under the floor {cfg.floor_V * 1e3:.3g} mV with current flowing"
        if self._n >= cfg.min_points:
            level = self._sum / self._n
            if v < self._keep * level:
                return "short", (
                    f"|V| fell to {v * 1e3:.4g} mV, {100 * (1 - v / level):.0f}% under the step's "
                    f"running level {level * 1e3:.4g} mV"
                )
            if cfg.noise_fraction is not None and self._last is not None:
                diffs = self._diffs
                if len(diffs) == diffs.maxlen:
                    self._diff_sum -= diffs[0]
                d = abs(v - self._last)
                diffs.append(d)
                self._diff_sum += d
                if len(diffs) == diffs.maxlen and self._diff_sum / len(diffs) > cfg.noise_fraction * level:
                    noise = self._diff_sum / len(diffs)
                    return "soft_short", (
                        f"voltage noise {noise * 1e3:.3g} mV (mean |ΔV| over {len(diffs)} readings) is "
                        f"{100 * noise / level:.0f}% of the running level {level * 1e3:.4g} mV"
                    )
        self._last = v
        self._sum += v
        self._n += 1
        return None


# -- shorts: messages and the array form ---------------------------------------------------------

def short_message(kind: str, current_density_mA_cm2: float, t_s: float, step_index: int, detail: str) -> str:
    """The run's reason for a short (``kind`` "short") or a soft short ("soft_short")."""
    what = "short circuit" if kind == "short" else "soft short"
    return f"{what} at {current_density_mA_cm2:.4g} mA cm-2, t = {t_s:.1f} s (step {step_index}): {detail}"


def first_short(detector: ShortDetector, voltage_V: np.ndarray, current_A: np.ndarray,
                stop: int | None = None) -> tuple[int, str, str] | None:
    """Feed ``detector`` the readings in order (up to index ``stop``, exclusive) and return the
    first it flags as (index, kind, detail), or None. The detector keeps its state, so
    successive blocks of one step continue where the last ended. Shapes: 1-D, equal length."""
    update = detector.update
    n = len(voltage_V) if stop is None else min(stop, len(voltage_V))
    for j in range(n):
        found = update(float(voltage_V[j]), float(current_A[j]))
        if found is not None:
            return j, found[0], found[1]
    return None


# -- safety limits -------------------------------------------------------------------------------

def safety_violation(voltage_V: float, current_A: float, max_abs_voltage_V: float, max_abs_current_A: float,
                     *, compliance: bool = False) -> str | None:
    """Why one reading breaks the run's safety limits, or None.

    A reading breaks them when the instrument reports compliance, when |V| ≥
    ``max_abs_voltage_V``, when |I| > ``max_abs_current_A``, or when V or I is not finite
    (an instrument's NaN or overflow must never pass as "within limits").
    """
    if compliance:
        return "compliance"
    if not (abs(voltage_V) < max_abs_voltage_V and abs(current_A) <= max_abs_current_A):
        return "non-finite reading" if not (math.isfinite(voltage_V) and math.isfinite(current_A)) else "safety limit"
    return None


def safety_message(what: str, voltage_V: float, current_A: float, step_index: int, max_abs_voltage_V: float,
                   max_abs_current_A: float) -> str:
    """The run's reason for a safety ending (``what`` from :func:`safety_violation`)."""
    return (f"{what}: V = {voltage_V:.4g} V, I = {current_A:.4g} A at step {step_index} "
            f"(limits {max_abs_voltage_V:g} V, {max_abs_current_A:g} A)")


def first_safety_index(voltage_V: np.ndarray, current_A: np.ndarray, max_abs_voltage_V: float,
                       max_abs_current_A: float, compliance: np.ndarray | None = None) -> int | None:
    """Index of the first reading :func:`safety_violation` flags, or None (1-D arrays)."""
    with np.errstate(invalid="ignore"):
        ok = (np.abs(voltage_V) < max_abs_voltage_V) & (np.abs(current_A) <= max_abs_current_A)
    if compliance is not None:
        ok &= ~compliance
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if len(bad) else None


# -- polarisation --------------------------------------------------------------------------------

def polarisation_message(voltage_V: float, limit_V: float, t_s: float, step_index: int) -> str:
    """The run's reason for a polarisation ending ([003 L522], [002 L165])."""
    return (f"polarisation: |V| = {abs(voltage_V) * 1e3:.4g} mV exceeds the limit {limit_V * 1e3:.4g} mV "
            f"at t = {t_s:.1f} s (step {step_index})")


def first_polarisation_index(voltage_V: np.ndarray, limit_V: float) -> int | None:
    """Index of the first reading with |V| > ``limit_V``, or None (1-D array)."""
    over = np.flatnonzero(np.abs(voltage_V) > limit_V)
    return int(over[0]) if len(over) else None


# -- end conditions ------------------------------------------------------------------------------

class EndConditions:
    """A step's end conditions other than its duration, read once from the step so that the
    check per reading is a few comparisons: ``voltage`` (``stop_voltage_above_V`` /
    ``stop_voltage_below_V``), ``current`` (|I| ≤ ``stop_current_below_A`` or ≥
    ``stop_current_above_A``), ``charge`` (|charge passed in the step| ≥ ``stop_charge_C``),
    checked in that order (a constant-voltage step with a ``direction`` compares its current
    signed in that direction). The duration is the executor's to check against its own clock
    (:func:`time_is_up`). ``step`` is any step of :mod:`labctl.steps` (attributes it lacks are
    not conditions). ``charge_rtol`` and ``voltage_tolerance_V`` let a cycler's rounded report
    count as the condition met.
    """

    __slots__ = ("_v_above", "_v_below", "_i_below", "_i_above", "_q_stop", "_sign", "any")

    def __init__(self, step: Any, *, charge_rtol: float = 0.0, voltage_tolerance_V: float = 0.0) -> None:
        inf = math.inf
        above, below = getattr(step, "stop_voltage_above_V", None), getattr(step, "stop_voltage_below_V", None)
        i_below, i_above = getattr(step, "stop_current_below_A", None), getattr(step, "stop_current_above_A", None)
        q_stop = getattr(step, "stop_charge_C", None)
        self._v_above = inf if above is None else above - voltage_tolerance_V
        self._v_below = -inf if below is None else below + voltage_tolerance_V
        self._i_below = -inf if i_below is None else i_below
        self._i_above = inf if i_above is None else i_above
        self._q_stop = inf if q_stop is None else q_stop * (1 - charge_rtol)
        direction = getattr(step, "direction", None)
        self._sign = 1.0 if direction == "charge" else -1.0 if direction == "discharge" else 0.0
        self.any = any(x is not None for x in (above, below, i_below, i_above, q_stop))

    def reason(self, voltage_V: float, current_A: float, charge_C: float) -> str | None:
        """``voltage``, ``current`` or ``charge`` when a reading with the step's charge so far
        (C) meets that condition, else None."""
        if voltage_V >= self._v_above or voltage_V <= self._v_below:
            return "voltage"
        # A directed constant-voltage hold's current is signed in its direction (a current that
        # turned back has fallen below the cut-off too); otherwise its magnitude counts.
        i = self._sign * current_A if self._sign else abs(current_A)
        if i <= self._i_below or i >= self._i_above:
            return "current"
        if abs(charge_C) >= self._q_stop:
            return "charge"
        return None


def time_is_up(step: Any, elapsed_s: float, tolerance_s: float = 1e-9) -> bool:
    """Whether a step that has run ``elapsed_s`` (s, pauses excluded) reached its
    ``duration_s`` within ``tolerance_s`` (a step without a duration never does)."""
    duration = getattr(step, "duration_s", None)
    return duration is not None and elapsed_s >= duration - tolerance_s


__all__ = ["EndConditions", "ShortDetection", "ShortDetector", "first_polarisation_index", "first_safety_index",
           "first_short", "polarisation_message", "safety_message", "safety_violation", "short_message", "time_is_up"]
