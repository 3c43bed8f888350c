"""Online checks: short-circuit and soft-short detection for galvanostatic steps (see
:class:`ShortDetection`), used live, on cycler downloads and on imported data."""

from __future__ import annotations

from collections import deque

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

    model_config = ConfigDict(extra="forbid", frozen=True)

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
