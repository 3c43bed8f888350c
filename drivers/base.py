"""Capability interfaces the engine programs against, and the errors drivers raise.

A driver module (``drivers/keithley2400.py``, later the cyclers) implements one or more of
these small interfaces; the engine never sees a wire protocol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    import threading

    import numpy as np

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
    clamped at ``compliance_A``. Setting ``abort`` (from any thread) during the sweep stops
    it on the instrument at its current point, turns the output off and returns the
    readings taken so far. Raises :class:`InstrumentError` / :class:`InstrumentLost`.
    """

    address: str

    def configure_voltage_source(self, compliance_A: float, *, voltage_range_V: float | None = None,
                                 current_range_A: float | None = None, nplc: float = 1.0) -> None: ...
    def set_voltage(self, voltage_V: float) -> None: ...
    def output_on(self) -> None: ...
    def output_off(self) -> None: ...
    def read(self) -> Reading: ...
    def sweep_voltage(self, points_V: list[float], compliance_A: float, *, abort_on_compliance: bool = True,
                      nplc: float = 1.0, source_delay_s: float | None = None,
                      abort: threading.Event | None = None) -> list[Reading]: ...


# -- battery cyclers: delegated execution ------------------------------------------------------

#: States of a cycler channel's test as :meth:`CyclerChannel.status` reports them:
#: ``running`` and ``paused`` (the test goes on), ``finished`` (its program ran to the end),
#: ``protection`` (a limit the program pushed into the cycler ended it), ``stopped`` (a stop
#: command, from us or at the cycler, or the channel moved on to another test).
CYCLER_STATES = ("running", "paused", "finished", "protection", "stopped")
#: The states in which the channel is still executing its test.
CYCLER_ACTIVE_STATES = frozenset({"running", "paused"})

#: Columns of a :meth:`CyclerChannel.records` batch: name and numpy dtype. ``seq_id`` is the
#: cycler's 1-based number of the point in its test; ``test_time_s`` the time since the test
#: began (s); ``step_count`` the 1-based number of the executed step the point belongs to
#: (continuous through loops: the n-th executed step of the test); ``step_charge_C`` the
#: signed charge passed since that step began (C, + = charge, as ``current_A``).
CYCLER_RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("seq_id", "u8"), ("test_time_s", "f8"), ("voltage_V", "f8"), ("current_A", "f8"),
    ("step_count", "i4"), ("step_charge_C", "f8"),
)


class CyclerStatus(NamedTuple):
    """A cycler channel's test: ``state`` (one of :data:`CYCLER_STATES`) and ``detail``, the
    cycler's own word for it (NEWARE ``protect``, a Biologic channel state …)."""

    state: str
    detail: str


class CyclerChannel(Protocol):
    """One channel of a battery cycler that runs a native program in its own firmware.

    The engine (``labctl.engine.delegated``) compiles a step program to the vendor's native
    program text, hands it to :meth:`start`, then polls :meth:`status` and collects the
    points the channel stored with :meth:`records`, by cursor, each point once. The channel
    runs on whatever the PC does; after a PC crash :meth:`attach` puts the cursor back where
    the run file ends. Units: V, A, s, C.

    Errors: :class:`InstrumentLost` when the cycler cannot be reached (the test runs on; the
    cursor has not moved, so the next :meth:`records` returns the same points again),
    :class:`InstrumentError` when it refuses a command. Both name :attr:`address`.
    """

    address: str
    """Where the channel is, e.g. ``127.0.0.1:502/1-1-3`` (NEWARE host:port/pipeline id)."""
    can_pause: bool
    """Whether :meth:`pause` can hold a running test at once."""
    idn: str
    """What the cycler says it is and the channel's state, one line (the GUI's *Identify*)."""
    test_id: int | None
    """The cycler's id of the test this object follows (after :meth:`start` or :meth:`attach`)."""

    def start(self, native_program: str, label: str) -> int:
        """Load ``native_program`` (the vendor's program text) and start it; returns the test
        id. ``label`` names the test at the cycler (NEWARE barcode). The cursor is at the
        test's first point."""
        ...

    def attach(self, test_id: int, last_seq_id: int, last_test_time_s: float, last_step_count: int,
               native_program: str) -> None:
        """Follow test ``test_id``, started with ``native_program``, from after its point
        ``last_seq_id`` (0: from the start), whose test time and step count were
        ``last_test_time_s`` and ``last_step_count``."""
        ...

    def status(self) -> CyclerStatus:
        """The state of the followed test (``stopped`` if the channel has moved on to another)."""
        ...

    def records(self, max_points: int) -> dict[str, np.ndarray]:
        """The points stored since the cursor, at most ``max_points``, in order, as 1-D arrays
        of :data:`CYCLER_RECORD_COLUMNS` (all the same length, possibly 0); advances the
        cursor only when the whole batch has arrived."""
        ...

    def stop(self) -> None:
        """Stop the test (current off). InstrumentError if the cycler refuses (e.g. the
        test had already ended)."""
        ...

    def pause(self) -> None:
        """Hold the test at once (InstrumentError where the cycler cannot: :attr:`can_pause`)."""
        ...

    def resume(self) -> None:
        """Continue a paused test."""
        ...

    def reconnect(self) -> None:
        """Open a new connection to the cycler (the test and the cursor are unaffected)."""
        ...

    def close(self) -> None:
        """Close the connection; the test runs on in the cycler."""
        ...


# -- temperature chambers ----------------------------------------------------------------------

if TYPE_CHECKING:  # here rather than at the top, so this section stays one block
    from collections.abc import Callable


class TemperatureChamber(Protocol):
    """A climate chamber holding cells at a temperature (BINDER MB1: :mod:`drivers.chamber`).

    Units: °C for temperatures and set points, K for differences (tolerances), s for times.

    :meth:`set_temperature_C` only sets the set point and returns; :meth:`wait_stable` is the
    soak: it returns True only once every reading has stayed within ±``tolerance_K`` of the set
    point for ``soak_s`` on the given clock, so a step that follows it starts at temperature.

    Limits: a set point outside [:attr:`min_setpoint_C`, :attr:`max_setpoint_C`] (the
    chamber's own range, from the station file) is refused before anything is sent.

    Errors: :class:`InstrumentError` when a set point is refused (out of range, not finite, or
    refused by the chamber), when the chamber is not stable within the timeout, is idle, or its
    set point is changed at the chamber during a wait; :class:`InstrumentLost` when the chamber
    does not answer (timeout, refused or dropped connection). Both name :attr:`address`.

    Safe: a chamber with cells inside is never switched off by labctl. Closing the driver, a
    lost connection, an error or the end of a run all leave the chamber controlling to its
    current set point; moving it to a standby temperature (e.g. 25 °C) at the end of a run is
    a step the protocol asks for, and switching it to idle is for the operator at the chamber.
    """

    address: str
    """Where the chamber is, e.g. ``192.168.1.20:10001``."""
    min_setpoint_C: float
    """Lowest set point the chamber accepts (°C)."""
    max_setpoint_C: float
    """Highest set point the chamber accepts (°C)."""

    @property
    def idn(self) -> str:
        """One line: what the chamber is, its temperature, set point and mode (the GUI's *Identify*)."""
        ...

    def set_temperature_C(self, setpoint_C: float) -> None:
        """Control the chamber to ``setpoint_C`` (°C); returns at once, without waiting."""
        ...

    def setpoint_C(self) -> float:
        """The set point the chamber is controlling to now (°C)."""
        ...

    def temperature_C(self) -> float:
        """The chamber's measured air temperature (°C)."""
        ...

    def wait_stable(self, tolerance_K: float, soak_s: float, timeout_s: float, *, poll_s: float = 10.0,
                    now: Callable[[], float] = ..., sleep: Callable[[float, threading.Event | None], None] = ...,
                    abort: threading.Event | None = None,
                    on_reading: Callable[[float, float], None] | None = None) -> bool:
        """Block until every reading has been within ±``tolerance_K`` of the set point for
        ``soak_s`` (True), or ``abort`` is set (False); InstrumentError after ``timeout_s``.
        Readings every ``poll_s`` on the clock ``now``/``sleep`` (engine clock: simulated time);
        ``on_reading(now_s, temperature_C)`` after each."""
        ...

    def reconnect(self) -> None:
        """Open a new connection to the chamber (its set point is unaffected)."""
        ...

    def state(self) -> dict[str, object]:
        """The chamber's own view: ``temperature_C``, ``setpoint_C``, ``mode`` and its range."""
        ...

    def close(self) -> None:
        """Close the connection; the chamber keeps controlling to its set point."""
        ...
