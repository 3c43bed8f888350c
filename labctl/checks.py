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
from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Gaussian σ from a median absolute value (1 / Φ⁻¹(3/4)).
_MAD_TO_SIGMA = 1.4826
#: σ of a second difference u_k − 2u_{k−1} + u_{k−2} of white noise is √6 σ.
_D2_PER_SIGMA = math.sqrt(6.0)


class ShortDetection(BaseModel):
    """Short-circuit and soft-short detection on constant-current steps.

    No seed gives numbers (seed-protocols.md §2.3, §10 item 15); the rules follow the seeds'
    descriptions and the defaults come from real files (``docs/detection.md``). Everything is
    judged on the polarity-corrected voltage u = V·sign(I): a symmetric Li | SSE | Li cell's
    overpotential follows the current, so u > 0 when it is healthy, whatever the sign of I.

    * **Reversal transient.** After a current reversal the double layers still carry the last
      half-cycle's polarisation: V jumps by the ohmic drop only and crosses zero as they
      relax (gcpl.mpr: from −98 to +105 mV within 10 ms). Nothing is judged until the step has
      *settled*: u above ``floor_V`` and no longer rising (a reading not above the one before),
      or above ``floor_V`` for ``settle_points`` readings, and, when time stamps are given,
      ``settle_s`` after the step's first reading.
    * **Short** — "a sudden voltage drop due to short-circuiting" [003 L522]; the current
      "suddenly dropped to nearly zero" once the path was metallic [001 L64]. After
      ``min_points`` settled readings, u below max((1 − ``drop_fraction``) × the step's running
      mean of u, ``floor_V``) and more than ``drop_sigma`` × the cell's noise under it, for
      ``drop_points`` readings in a row. Also a step whose |V| never leaves ``floor_V``
      (shorted from its start), over ``min_points`` readings, when the noise is below the floor.
    * **Soft short** — "the current abruptly increased, followed by high-frequency stochastic
      spikes" [001 L64]; a "voltage spark" [003 L508]. The cell's own noise when healthy is
      judged from the second differences d²u of its settled readings, robustly (σ = 1.4826 ×
      median |d²u|): each step's first ``baseline_points`` give that step's estimate, and the
      median of the last ``baseline_steps`` estimates of steps that raised nothing is the
      cell's carried baseline (one detector serves the run, :meth:`ShortDetector.reset`). The
      reference is the larger of the two, never below ``noise_floor_V``: a step's estimate
      from a few readings can by chance be several times too low (at 0.5 mV of noise a
      10-reading estimate fell to 67 µV once in 70 steps), the carried median cannot; a step
      noisier from its start than the cell was (a range change of the instrument) raises it.
      A reading whose second difference exceeds ``spike_factor`` × that σ is a spike;
      ``spike_count`` spikes within ``noise_window`` readings are a soft short. Second
      differences ignore drifts and bends (a Li-ion discharge knee, a diffusion rise).

    ``full_cell``: a cell with an open-circuit voltage (Li-ion, Li | SSE | cathode) keeps the
    sign of its voltage whatever the current, so it is judged on u = |V| (a short pulls it to
    0 V) instead of V·sign(I); its level is mostly that voltage, so the drop rule also judges
    against the median running level of its last ``baseline_steps`` steps (a step that starts
    shorted is seen; a symmetric cell's level follows the current, and is not carried). :func:`looks_like_full_cell` tells one from a symmetric cell in
    recorded data (``labctl import``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    enabled: bool = True
    drop_fraction: float = Field(default=0.5, gt=0, lt=1)
    floor_V: float = Field(default=1e-3, ge=0)
    min_points: int = Field(default=5, ge=1)
    """Settled readings in the step before the drop rule judges."""
    drop_points: int = Field(default=3, ge=1)
    """Readings in a row the drop must last (a hard short persists; a noise dip does not)."""
    drop_sigma: float = Field(default=4.0, ge=0)
    settle_points: int = Field(default=20, ge=1)
    settle_s: float = Field(default=1.0, ge=0)
    baseline_points: int = Field(default=10, ge=3)
    """Settled readings of a step from which its noise is estimated."""
    baseline_steps: int = Field(default=8, ge=1)
    """Steps whose noise estimates make up the cell's carried baseline (their median)."""
    spike_factor: float | None = Field(default=10.0, gt=0)
    """None: no soft-short detection."""
    spike_count: int = Field(default=4, ge=1)
    noise_window: int = Field(default=20, ge=2)
    noise_floor_V: float = Field(default=20e-6, ge=0)
    """The least noise σ assumed (an instrument's resolution: readings quantised to 0.1 mV
    show no noise at all between equal readings)."""
    full_cell: bool = False
    """Judge |V| (a cell with an open-circuit voltage), not V·sign(I) (a symmetric cell)."""

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        """Protocol files of labctl ≤ 0.x gave ``noise_fraction`` (None: soft shorts off) and
        ``noise_window``; the noise is now judged against the cell's own baseline."""
        if isinstance(data, dict) and "noise_fraction" in data:
            data = dict(data)
            if data.pop("noise_fraction") is None:
                data["spike_factor"] = None
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ShortDetection:
        if self.spike_count > self.noise_window:
            raise ValueError(f"spike_count ({self.spike_count}) must not exceed noise_window ({self.noise_window})")
        return self


class ShortDetector:
    """Feeds on a run's constant-current readings one at a time; :meth:`update` returns
    ``(kind, message)`` when it sees a short (``kind`` "short") or a soft short
    ("soft_short"), else ``None``. O(1) per reading.

    Call :meth:`reset` at every step start. One detector for the whole run (reset per step)
    carries the cell's healthy noise from one step to the next, so a step that is noisy from
    its first readings is still judged against the cell's baseline; a new detector per step
    learns it afresh in each step.
    """

    __slots__ = ("_cfg", "_keep", "_sign", "_t0", "_n", "_settled", "_pos_run", "_prev_u", "_seen_voltage",
                 "_low_run", "_sum", "_m", "_drop_run", "_u1", "_u2", "_d2", "_sigma_step", "_sigma_carry",
                 "_history", "_levels", "_cell_level", "_spikes", "_spike_n", "_spike_limit", "_flagged")

    def __init__(self, config: ShortDetection) -> None:
        self._cfg = config
        self._keep = 1.0 - config.drop_fraction
        self._history: deque[float] = deque(maxlen=config.baseline_steps)
        self._levels: deque[float] = deque(maxlen=config.baseline_steps)
        self._cell_level = 0.0
        self._m = 0
        self._sigma_carry: float | None = None
        self._sigma_step: float | None = None
        self._flagged = False
        self.reset()

    @property
    def baseline_noise_V(self) -> float | None:
        """The cell's healthy voltage noise σ (V) the soft-short rule judges against, if known."""
        ref = self._reference()
        return None if ref is None else ref / _D2_PER_SIGMA

    def reset(self) -> None:
        """Start a new step (the level depends on the current); keep the cell's noise baseline
        if the step that ended learnt one and raised nothing."""
        if self._sigma_step is not None and not self._flagged:
            self._history.append(self._sigma_step)
            self._sigma_carry = _median(list(self._history))
        if self._cfg.full_cell and self._m >= self._cfg.min_points and not self._flagged:
            self._levels.append(self._sum / self._m)
            self._cell_level = _median(list(self._levels))
        self._sigma_step = None
        self._flagged = False
        self._sign = 0.0
        self._t0: float | None = None
        self._n = 0
        self._settled = False
        self._pos_run = 0
        self._prev_u: float | None = None
        self._seen_voltage = False
        self._low_run = 0
        self._sum = 0.0
        self._m = 0
        self._drop_run = 0
        self._u1: float | None = None
        self._u2: float | None = None
        self._d2: list[float] = []
        self._spikes: deque[bool] = deque(maxlen=self._cfg.noise_window)
        self._spike_n = 0
        self._spike_limit: float | None = None

    def _reference(self) -> float | None:
        """σ of second differences the spikes are judged against: the larger of the step's own
        estimate (once learnt) and the cell's carried baseline."""
        known = [x for x in (self._sigma_step, self._sigma_carry) if x is not None]
        if not known:
            return None
        return max(*known, self._cfg.noise_floor_V * _D2_PER_SIGMA)

    def _noise_V(self) -> float | None:
        """The cell's voltage noise σ for the drop rule: the carried healthy baseline if known,
        else the step's (provisional while it is being learnt)."""
        ref = self._sigma_carry
        if ref is None:
            if self._sigma_step is not None:
                ref = self._sigma_step
            elif len(self._d2) >= 3:
                ref = _MAD_TO_SIGMA * _median(self._d2)
            else:
                return None
        return max(ref / _D2_PER_SIGMA, self._cfg.noise_floor_V)

    def update(self, voltage_V: float, current_A: float, t_s: float | None = None) -> tuple[str, str] | None:
        """Check one reading (V, A, optional time stamp in s); ``None`` if nothing is wrong."""
        cfg = self._cfg
        if not cfg.enabled or current_A == 0.0:
            return None
        sign = 1.0 if current_A > 0 else -1.0
        if self._sign == 0.0:
            self._sign, self._t0 = sign, t_s
        elif sign != self._sign:
            return None
        u = abs(voltage_V) if cfg.full_cell else sign * voltage_V
        self._n += 1
        if not self._settled:
            return self._settling(u, t_s)
        found = None
        if self._m >= cfg.min_points:
            found = self._drop(u)
            if self._drop_run:
                return found
        if self._u1 is not None and self._u2 is not None:
            found = self._spike(u - 2.0 * self._u1 + self._u2)
        self._u2, self._u1 = self._u1, u
        self._sum += u
        self._m += 1
        if found is not None:
            self._flagged = True
        return found

    def _settling(self, u: float, t_s: float | None) -> tuple[str, str] | None:
        cfg = self._cfg
        if abs(u) >= cfg.floor_V:
            self._seen_voltage = True
            self._low_run = 0
        else:
            self._low_run += 1
            noise = self._noise_V()
            if (not self._seen_voltage and self._low_run >= cfg.min_points
                    and (noise is None or cfg.floor_V > cfg.drop_sigma * noise)):
                self._flagged = True
                return "short", (f"|V| stayed under the floor {cfg.floor_V * 1e3:.3g} mV for {self._low_run} readings "
                                 "with current flowing")
        timed = t_s is None or self._t0 is None or t_s - self._t0 >= cfg.settle_s
        if u > cfg.floor_V and timed:
            self._pos_run += 1
            if (self._pos_run >= 2 and self._prev_u is not None and u <= self._prev_u) or self._pos_run >= cfg.settle_points:
                self._settled = True
                self._u1 = u
                self._sum, self._m = u, 1
        else:
            self._pos_run = 0
        self._prev_u = u
        return None

    def _drop(self, u: float) -> tuple[str, str] | None:
        cfg = self._cfg
        # a full cell's voltage is mostly its open-circuit voltage: judged against the level its
        # earlier steps showed too, so a step that starts shorted is seen
        level = max(self._sum / self._m, self._cell_level)
        threshold = max(self._keep * level, cfg.floor_V)
        noise = self._noise_V()
        if u < threshold and (noise is None or level - u > cfg.drop_sigma * noise):
            self._drop_run += 1
            if self._drop_run >= cfg.drop_points:
                self._flagged = True
                what = "the step's running level" if level > self._cell_level else "the cell's level in earlier steps"
                return "short", (f"|V| fell to {u * 1e3:.4g} mV, {100 * (1 - u / level):.0f}% under {what} "
                                 f"{level * 1e3:.4g} mV, for {self._drop_run} readings")
        else:
            self._drop_run = 0
        return None

    def _spike(self, d2: float) -> tuple[str, str] | None:
        cfg = self._cfg
        if self._sigma_step is None:
            self._d2.append(abs(d2))
            if len(self._d2) >= cfg.baseline_points:
                self._sigma_step = _MAD_TO_SIGMA * _median(self._d2)
                self._spike_limit = None
        if cfg.spike_factor is None:
            return None
        if self._spike_limit is None:
            ref = self._reference()
            if ref is None:
                return None
            self._spike_limit = cfg.spike_factor * ref
        spike = abs(d2) > self._spike_limit
        spikes = self._spikes
        if len(spikes) == spikes.maxlen and spikes[0]:
            self._spike_n -= 1
        spikes.append(spike)
        if spike:
            self._spike_n += 1
            if self._spike_n >= cfg.spike_count:
                noise = self._spike_limit / cfg.spike_factor / _D2_PER_SIGMA
                return "soft_short", (f"voltage noise: {self._spike_n} spikes in {len(spikes)} readings, each over "
                                      f"{cfg.spike_factor:g}× the cell's healthy noise (σ = {noise * 1e6:.3g} µV)")
        return None


#: :func:`looks_like_full_cell`: the share of constant-current readings with V·I < 0 above which
#: the voltage does not follow the current (a symmetric cell shows it only in reversal transients:
#: 2 % of gcpl.mpr's readings), and the median |V| above which it is a cell voltage, not an
#: overpotential (Li | SSE | Li cells polarise by mV to a few 100 mV; Li-ion cells sit at 3–4 V).
FULL_CELL_OPPOSITE_FRACTION = 0.2
FULL_CELL_MEDIAN_V = 1.0


def looks_like_full_cell(voltage_V: np.ndarray, current_A: np.ndarray) -> bool:
    """Whether recorded readings (1-D, V and A) come from a cell with an open-circuit voltage
    (judge with ``ShortDetection(full_cell=True)``): among readings with current, V·I < 0 for
    more than ``FULL_CELL_OPPOSITE_FRACTION`` of them and median |V| above
    ``FULL_CELL_MEDIAN_V``. A file of charges only looks symmetric, and is judged correctly so
    (V·sign(I) = V > 0)."""
    v, i = np.asarray(voltage_V, dtype=float), np.asarray(current_A, dtype=float)
    flowing = (i != 0) & np.isfinite(v) & np.isfinite(i)
    if not flowing.any():
        return False
    opposite = float(np.mean(v[flowing] * i[flowing] < 0))
    return opposite > FULL_CELL_OPPOSITE_FRACTION and float(np.median(np.abs(v[flowing]))) > FULL_CELL_MEDIAN_V


def _median(values: list[float]) -> float:
    s = sorted(values)
    k = len(s) // 2
    return s[k] if len(s) % 2 else 0.5 * (s[k - 1] + s[k])

# -- shorts: messages and the array form ---------------------------------------------------------

def short_message(kind: str, current_density_mA_cm2: float, t_s: float, step_index: int, detail: str) -> str:
    """The run's reason for a short (``kind`` "short") or a soft short ("soft_short")."""
    what = "short circuit" if kind == "short" else "soft short"
    return f"{what} at {current_density_mA_cm2:.4g} mA cm-2, t = {t_s:.1f} s (step {step_index}): {detail}"


def first_short(detector: ShortDetector, voltage_V: np.ndarray, current_A: np.ndarray, t_s: np.ndarray | None = None,
                stop: int | None = None) -> tuple[int, str, str] | None:
    """Feed ``detector`` the readings in order (up to index ``stop``, exclusive; with their
    test times ``t_s`` when known) and return the first it flags as (index, kind, detail), or
    None. The detector keeps its state, so successive blocks of one step continue where the
    last ended. Shapes: 1-D, equal length."""
    update = detector.update
    n = len(voltage_V) if stop is None else min(stop, len(voltage_V))
    for j in range(n):
        found = update(float(voltage_V[j]), float(current_A[j]), None if t_s is None else float(t_s[j]))
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
           "first_short", "looks_like_full_cell", "polarisation_message", "safety_message", "safety_violation", "short_message", "time_is_up"]
