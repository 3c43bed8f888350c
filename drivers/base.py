"""Capability interfaces the engine programs against, and the errors drivers raise.

A driver module (``drivers/keithley2400.py``, later the cyclers) implements one or more of
these small interfaces; the engine never sees a wire protocol.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

#: Bit 3 of the Keithley 2400 status word: "in real compliance" (2400 manual §18, Table 18-4).
COMPLIANCE_BIT = 1 << 3


class Reading(NamedTuple):
    """One source-measure reading.

    ``time_s`` is the instrument's own timestamp (s); ``status`` its status word.
    """

    voltage_V: float
    current_A: float
    time_s: float
    status: int

    @property
    def compliance(self) -> bool:
        """True when the instrument was clamped at its compliance limit."""
        return bool(self.status & COMPLIANCE_BIT)


class InstrumentError(Exception):
    """An instrument refused a command or replied with an error; names its address."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(f"{address}: {message}")
        self.address = address


class InstrumentLost(InstrumentError):
    """The instrument stopped answering: timeout, dropped connection, garbage reply."""


class SourceMeter(Protocol):
    """A source-measure unit sourcing current and measuring voltage (or the reverse).

    Units: A, V, s. Implementations must refuse :meth:`output_on` before a compliance
    limit has been configured (safety: compliance before output-on).
    """

    address: str

    def configure_current_source(
        self,
        compliance_V: float,
        *,
        current_range_A: float | None = None,
        voltage_range_V: float | None = None,
        nplc: float = 1.0,
    ) -> None:
        """Source current, measure voltage, clamp at ``compliance_V``; output stays off."""
        ...

    def set_current(self, current_A: float) -> None: ...

    def output_on(self) -> None: ...

    def output_off(self) -> None: ...

    def read(self) -> Reading: ...

    def reconnect(self) -> None:
        """Open a new session to the instrument; compliance must then be configured again."""
        ...

    def state(self) -> dict[str, object]:
        """The instrument's own view: ``output_on``, source function and levels, compliance."""
        ...

    def close(self) -> None: ...


class SweepingSourceMeter(Protocol):
    """A source-measure unit sourcing voltage that runs list sweeps itself (Keithley 2400).

    Units: V, A, s. :meth:`sweep_voltage` runs ``points_V`` on the instrument's own
    source memory and buffer (at most 2500 points, 2400 manual §10) and returns every
    reading in one transfer; with ``abort_on_compliance`` it stops at the first point
    clamped at ``compliance_A``. Raises :class:`InstrumentError` / :class:`InstrumentLost`.
    """

    address: str

    def configure_voltage_source(self, compliance_A: float, *, voltage_range_V: float | None = None,
                                 current_range_A: float | None = None, nplc: float = 1.0) -> None: ...
    def set_voltage(self, voltage_V: float) -> None: ...
    def output_on(self) -> None: ...
    def output_off(self) -> None: ...
    def read(self) -> Reading: ...
    def sweep_voltage(self, points_V: list[float], compliance_A: float, *, abort_on_compliance: bool = True,
                      nplc: float = 1.0, source_delay_s: float | None = None) -> list[Reading]: ...
