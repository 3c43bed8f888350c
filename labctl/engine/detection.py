"""Online short-circuit detection for galvanostatic steps (see :class:`ShortDetection`)."""

from __future__ import annotations

from labctl.engine.steps import ShortDetection


class ShortDetector:
    """Feeds on one step's readings; :meth:`update` returns a message when a short is seen.

    The running level is the mean of |V| over the step so far, excluding the reading under
    test. Call :meth:`reset` at every step start (the level depends on the current).
    """

    __slots__ = ("_cfg", "_sum", "_n", "_keep")

    def __init__(self, config: ShortDetection) -> None:
        self._cfg = config
        self._keep = 1.0 - config.drop_fraction
        self.reset()

    def reset(self) -> None:
        self._sum = 0.0
        self._n = 0

    def update(self, voltage_V: float, current_A: float) -> str | None:
        """Check one reading; ``None`` if nothing is wrong."""
        if not self._cfg.enabled or current_A == 0.0:
            return None
        v = abs(voltage_V)
        if v < self._cfg.floor_V:
            return f"|V| = {v * 1e3:.3g} mV under the floor {self._cfg.floor_V * 1e3:.3g} mV with current flowing"
        if self._n >= self._cfg.min_points:
            level = self._sum / self._n
            if v < self._keep * level:
                return (
                    f"|V| fell to {v * 1e3:.4g} mV, {100 * (1 - v / level):.0f}% under the step's "
                    f"running level {level * 1e3:.4g} mV"
                )
        self._sum += v
        self._n += 1
        return None
