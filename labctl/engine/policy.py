"""What the engine does when an instrument stops answering (a station-file setting)."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from drivers.base import InstrumentLost


class ReconnectPolicy(BaseModel):
    """Retry with exponential backoff, then re-apply the source or stop safely.

    After a VISA timeout, a dropped connection or a garbage reply the engine reconnects,
    re-reads the instrument's state (it may have been power-cycled: output off, ``*RST``
    settings) and, with ``reapply``, configures compliance and the source again and turns
    the output back on; without it, it leaves the output off and ends the run as
    ``instrument_lost`` (``labctl resume`` continues it later). Past ``retry_for_s`` seconds
    of wall time without an answer the run ends as ``instrument_lost``, its data intact.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    retry_for_s: float = Field(default=300.0, ge=0)
    first_wait_s: float = Field(default=0.5, gt=0)
    max_wait_s: float = Field(default=30.0, gt=0)
    reapply: bool = True

    def budget_s(self, lost_since: float, now: float) -> float:
        """Seconds of retrying left at ``now`` (``time.monotonic()``): ``retry_for_s`` counted
        from the first failure since the last good answer (``lost_since``), so an instrument
        that reconnects but never answers again cannot keep the run in limbo. ≤ 0: give up."""
        return self.retry_for_s - (now - lost_since)

    def retry(self, attempt: Callable[[], None], budget_s: float) -> None:
        """Call ``attempt`` until it returns, again after each :class:`InstrumentLost` with
        exponential waits (``first_wait_s`` doubling up to ``max_wait_s``), for at most
        ``budget_s`` seconds (tenacity's ``Retrying``).

        Raises:
            InstrumentLost: the last attempt's, when the budget is spent.
        """
        for trial in Retrying(stop=stop_after_delay(budget_s), reraise=True,
                              wait=wait_exponential(multiplier=self.first_wait_s, max=self.max_wait_s),
                              retry=retry_if_exception_type(InstrumentLost)):
            with trial:
                attempt()
