"""What the engine does when an instrument stops answering (a station-file setting)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
