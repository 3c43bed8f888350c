"""Keithley 2400 SourceMeter, built on pymeasure's ``Keithley2400`` over pyvisa.

The default VISA backend is pyvisa-py (``@py``), so no vendor VISA library is needed. Any
VISA resource string works: ``GPIB0::24::INSTR`` (factory address 24), a serial port
``ASRL/dev/ttyUSB0::INSTR`` (CR-terminated, as the 2400 processes input after CR —
manual 2400S-900-01 §14 "RS-232 interface") or a socket ``TCPIP::127.0.0.1::5025::SOCKET``
(the simulator, or a GPIB/LAN bridge).

Every wire failure (VISA timeout, dropped connection, a reply that does not parse) is raised
as :class:`~drivers.base.InstrumentLost` naming the resource; an error in the instrument's
own error queue after configuration as :class:`~drivers.base.InstrumentError`.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import pyvisa
from pymeasure.adapters import Adapter
from pymeasure.instruments.keithley import Keithley2400 as _PymeasureKeithley2400

from drivers.base import InstrumentError, InstrumentLost, Reading

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Exceptions that mean "the link is broken or the reply is garbage".
_WIRE_ERRORS = (pyvisa.errors.VisaIOError, pyvisa.errors.InvalidSession, OSError, ConnectionError, ValueError, IndexError)


@contextmanager
def _wire(address: str, doing: str) -> Iterator[None]:
    try:
        yield
    except InstrumentError:
        raise
    except _WIRE_ERRORS as exc:
        raise InstrumentLost(address, f"{doing} failed: {type(exc).__name__}: {exc}") from exc


def terminations(address: str) -> tuple[str, str]:
    """(read, write) terminations for a resource: CR on serial lines, LF elsewhere."""
    return ("\r", "\r") if address.upper().startswith("ASRL") else ("\n", "\n")


class Keithley2400:
    """A Keithley 2400 as a :class:`drivers.base.SourceMeter` (and source-V/measure-I).

    Args:
        address: VISA resource string.
        visa_library: pyvisa backend; ``"@py"`` (pyvisa-py) by default, ``"@ivi"`` for a
            vendor VISA.
        timeout_ms: VISA timeout per reply.
        baud_rate: for serial resources (2400 factory default 9600, manual §14).

    Raises:
        InstrumentLost: the resource cannot be opened or does not answer ``*IDN?``.
    """

    def __init__(self, address: str, *, visa_library: str = "@py", timeout_ms: int = 5000, baud_rate: int = 9600) -> None:
        self.address = address
        self._adapter: Adapter | None = None
        self._options = {"visa_library": visa_library, "timeout": timeout_ms, "asrl": {"baud_rate": baud_rate}}
        self._open()

    @classmethod
    def from_adapter(cls, adapter: Adapter, *, address: str = "adapter") -> Keithley2400:
        """The driver over a pymeasure adapter made elsewhere instead of a VISA session of its
        own: the wire tests pass pymeasure's ``ProtocolAdapter`` (``pymeasure.test.expected_protocol``).
        Everything after opening is the same code; ``address`` names the instrument in errors,
        and :meth:`reconnect` reuses the adapter.

        Raises:
            InstrumentLost: no answer to ``*IDN?``.
        """
        self = cls.__new__(cls)
        self.address = address
        self._adapter = adapter
        self._options = {}
        self._open()
        return self

    def _open(self) -> None:
        read_term, write_term = terminations(self.address)
        with _wire(self.address, "connecting"):
            if self._adapter is not None:
                self.instrument = _PymeasureKeithley2400(self._adapter)
            else:
                self.instrument = _PymeasureKeithley2400(
                    self.address, read_termination=read_term, write_termination=write_term, **self._options)
                if self.address.upper().startswith("TCPIP"):
                    _disable_nagle(self.instrument.adapter.connection)
            self.idn = self.instrument.id
        self._compliance_set = False
        self._source: str | None = None

    def reconnect(self) -> None:
        """Drop the VISA session and open a new one (after a timeout or a dropped link).

        The instrument may have been reset meanwhile: compliance must be configured again
        before the output can go on. Raises :class:`InstrumentLost` if it does not answer.
        """
        try:
            self.instrument.adapter.close()
        except Exception as exc:  # noqa: BLE001 - the old session is dead anyway
            log.debug("%s: closing the dead session: %s", self.address, exc)
        self._open()

    def state(self) -> dict[str, object]:
        """What the instrument is doing: output on/off, source function and levels, compliance."""
        inst = self.instrument

        def ask() -> dict[str, object]:
            return {"output_on": bool(inst.source_enabled), "source": inst.source_mode,
                    "source_current_A": inst.source_current, "source_voltage_V": inst.source_voltage,
                    "compliance_V": inst.compliance_voltage, "compliance_A": inst.compliance_current}

        return self._call("reading the state", ask)

    # -- generic ----------------------------------------------------------------------------
    def _call(self, doing: str, fn: Callable[[], T]) -> T:
        with _wire(self.address, doing):
            return fn()

    def write(self, command: str) -> None:
        """Send one SCPI command (wire errors as :class:`InstrumentLost`)."""
        self._call(command, lambda: self.instrument.write(command))

    def check_errors(self) -> None:
        """Raise :class:`InstrumentError` with every entry of ``:SYST:ERR?`` if any."""
        errors = self._call(":SYST:ERR?", self.instrument.check_errors)
        if errors:
            joined = "; ".join(f"{code},{text}" for code, text in errors)
            raise InstrumentError(self.address, f"instrument reported {joined}")

    def reset(self) -> None:
        """``*RST`` and the reading format (V, I, R, time, status)."""
        self._call("*RST", self.instrument.reset)
        self._call(":FORM:ELEM", self.instrument.reset_data_format)
        self._compliance_set = False

    # -- configuration ----------------------------------------------------------------------
    def _configure(self, source: str, compliance: float, source_range: float | None,
                   measure_range: float | None, nplc: float) -> None:
        limit, unit = (210.0, "V") if source == "CURR" else (1.05, "A")
        if not 0 < compliance <= limit:
            raise ValueError(f"{self.address}: compliance {compliance:g} {unit} outside (0, {limit:g}] {unit}")
        if not 0.01 <= nplc <= 10:
            raise ValueError(f"{self.address}: NPLC {nplc:g} outside 0.01–10 (manual §7)")
        inst = self.instrument
        measure = "VOLT" if source == "CURR" else "CURR"

        def configure() -> None:
            inst.source_enabled = False
            inst.output_off_state = "disconnected"  # HIMP: never sink a cell through the SMU
            inst.auto_output_off_enabled = False  # keep the output on between readings
            inst.source_mode = "current" if source == "CURR" else "voltage"
            if source == "CURR":
                inst.source_current = 0.0
                inst.compliance_voltage = compliance
            else:
                inst.source_voltage = 0.0
                inst.compliance_current = compliance
            inst.write(f":SOUR:{source}:RANG:AUTO 1" if source_range is None else f":SOUR:{source}:RANG {source_range:g}")
            inst.write(f':SENS:FUNC:CONC 1;:SENS:FUNC "VOLT","CURR";:SENS:{measure}:NPLC {nplc:g}')
            inst.write(f":SENS:{measure}:RANG:AUTO 1" if measure_range is None else f":SENS:{measure}:RANG {measure_range:g}")

        self._call(f"configuring {source} source", configure)
        self.check_errors()
        self._compliance_set = True
        self._source = source

    def configure_current_source(self, compliance_V: float, *, current_range_A: float | None = None,
                                 voltage_range_V: float | None = None, nplc: float = 1.0) -> None:
        """Source current (0 A), measure voltage, voltage compliance ``compliance_V``.

        The output is switched off first and stays off. Ranges ``None`` mean auto-range.
        NPLC 0.01–10 (manual §7 "Speed").

        Raises:
            ValueError: compliance outside (0, 210] V or NPLC outside 0.01–10 (nothing sent).
            InstrumentError: the instrument put an error in its queue while configuring.
        """
        self._configure("CURR", compliance_V, current_range_A, voltage_range_V, nplc)

    def configure_voltage_source(self, compliance_A: float, *, voltage_range_V: float | None = None,
                                 current_range_A: float | None = None, nplc: float = 1.0) -> None:
        """Source voltage (0 V), measure current, current compliance ``compliance_A``."""
        self._configure("VOLT", compliance_A, voltage_range_V, current_range_A, nplc)

    def set_current(self, current_A: float) -> None:
        self._call(f":SOUR:CURR {current_A:g}", lambda: setattr(self.instrument, "source_current", current_A))

    def set_voltage(self, voltage_V: float) -> None:
        self._call(f":SOUR:VOLT {voltage_V:g}", lambda: setattr(self.instrument, "source_voltage", voltage_V))

    def output_on(self) -> None:
        """Turn the output on. Refused (RuntimeError) before a compliance is configured."""
        if not self._compliance_set:
            raise RuntimeError(f"{self.address}: configure a compliance limit before turning the output on")
        self._call(":OUTP ON", lambda: setattr(self.instrument, "source_enabled", True))

    def output_off(self) -> None:
        """``:OUTP OFF``, then ``:OUTP?`` to confirm the instrument has processed it.

        Raises:
            InstrumentError: the instrument still reports its output on.
            InstrumentLost: no answer.
        """
        self._call(":OUTP OFF", lambda: setattr(self.instrument, "source_enabled", False))
        if self.output_enabled:
            raise InstrumentError(self.address, "output still on after :OUTP OFF")

    @property
    def output_enabled(self) -> bool:
        return self._call(":OUTP?", lambda: bool(self.instrument.source_enabled))

    # -- measurement ------------------------------------------------------------------------
    def read(self) -> Reading:
        """One ``:READ?``: (voltage_V, current_A, time_s, status). 9.91e37 becomes NaN."""
        values = self._call(":READ?", lambda: self.instrument.values(":READ?"))
        if len(values) != 5:
            raise InstrumentLost(self.address, f":READ? returned {len(values)} values, expected 5: {values!r}")
        v, i, _r, t, status = values
        return Reading(_nan(v), _nan(i), t, int(status))

    def sweep_voltage(self, points_V: Sequence[float], compliance_A: float, *, abort_on_compliance: bool = True,
                      nplc: float = 1.0, source_delay_s: float | None = None,
                      abort: threading.Event | None = None, poll_s: float = 0.05) -> list[Reading]:
        """Run a source-V list sweep on the instrument and read it back in one transfer.

        The 2400 steps through ``points_V`` with its own source-delay-measure cycle (manual
        §10 "Sweep operation": ``:SOUR:VOLT:MODE LIST``, ``:SOUR:LIST:VOLT`` in chunks of
        100 with ``:APP``, ``:TRIG:COUN`` = points, ``:SOUR:SWE:RANG BEST``) into its
        buffer (§9, §18 TRACe: ``:TRAC:CLE``, ``:TRAC:POIN`` = points, ``:TRAC:FEED SENS``,
        ``:TRAC:FEED:CONT NEXT``), started with ``:INIT`` and followed by ``*OPC?``. While
        the sweep runs the 2400 queues every command but ``:ABORt`` (§11 "Idle and
        initiate"), so ``*OPC?`` replies when it ends; its reply is awaited in reads of
        ``poll_s`` (s), between which ``abort`` is checked. At the end ``:TRAC:DATA?``
        returns every reading at once. If ``abort`` is set meanwhile, ``:ABORt`` stops the
        sweep after its current point, the output is turned off (``:OUTP OFF``, confirmed)
        and the readings stored so far come back (``:TRAC:POIN:ACT?``, then one
        ``:TRAC:DATA?``; none if it was aborted before the first point). With ``abort_on_compliance`` the sweep stops at the
        first reading in compliance (``:SOUR:SWE:CAB EARL``, §18), so fewer readings than
        points come back; the last one then has :attr:`Reading.compliance` set. Afterwards the
        source is back in FIXed mode at its level, and the output in the state it was found
        in (turned on for the sweep if it was off: the compliance is set first).

        Args:
            points_V: 1–2500 source values (V), |V| ≤ 210.
            compliance_A: current compliance (A), (0, 1.05].
            abort_on_compliance: stop the sweep at the first reading in compliance.
            nplc: integration time per point, 0.01–10 power-line cycles.
            source_delay_s: settling time per point (s); None = the instrument's auto delay.

        Returns:
            One :class:`Reading` per executed point; time (s) = the buffer timestamp,
            relative to the sweep's first reading (``:TRAC:TST:FORM ABS``, §9).

        Raises:
            RuntimeError: the instrument was not configured as a voltage source
                (:meth:`configure_voltage_source`).
            ValueError: bad points, compliance, NPLC or delay (nothing sent).
            InstrumentError: the instrument refused the sweep setup (its error queue).
            InstrumentLost: no (complete) answer, or the sweep did not end within 1.5 × its
                expected duration + 2 s.
        """
        points = [float(v) for v in points_V]
        if not 1 <= len(points) <= 2500:
            raise ValueError(f"{self.address}: a sweep has 1–2500 points (manual §10), got {len(points)}")
        if any(not math.isfinite(v) or abs(v) > 210.0 for v in points):
            raise ValueError(f"{self.address}: sweep points must be finite and within ±210 V")
        if not 0 < compliance_A <= 1.05:
            raise ValueError(f"{self.address}: compliance {compliance_A:g} A outside (0, 1.05] A")
        if not 0.01 <= nplc <= 10:
            raise ValueError(f"{self.address}: NPLC {nplc:g} outside 0.01–10 (manual §7)")
        if source_delay_s is not None and not 0 <= source_delay_s <= 999.9999:
            raise ValueError(f"{self.address}: source delay {source_delay_s:g} s outside 0–999.9999 s")
        if self._source != "VOLT" or not self._compliance_set:
            raise RuntimeError(f"{self.address}: configure_voltage_source() before a voltage sweep")
        inst = self.instrument
        delay = ":SOUR:DEL:AUTO 1" if source_delay_s is None else f":SOUR:DEL {source_delay_s:g}"
        setup = [f":SENS:CURR:PROT {compliance_A:g};:SENS:CURR:NPLC {nplc:g};{delay}",
                 f":SOUR:VOLT:MODE LIST;:SOUR:SWE:RANG BEST;:SOUR:SWE:CAB {'EARL' if abort_on_compliance else 'NEV'}"]
        for k in range(0, len(points), 100):
            values = ",".join(f"{v:.6g}" for v in points[k:k + 100])
            setup.append(f":SOUR:LIST:VOLT {values}" if k == 0 else f":SOUR:LIST:VOLT:APP {values}")
        setup.append(f":ARM:COUN 1;:TRIG:COUN {len(points)}")
        setup.append(f":TRAC:FEED:CONT NEV;:TRAC:CLE;:TRAC:POIN {len(points)};:TRAC:FEED SENS;:TRAC:FEED:CONT NEXT")
        # One point is at most delay + NPLC at 50 Hz + ~2 ms of overhead; allow 1.5x and 2 s.
        expected_s = len(points) * ((source_delay_s or 1e-3) + nplc / 50.0 + 2e-3)
        connection = inst.adapter.connection
        was_on = self.output_enabled
        aborted = False

        def sweep() -> list[float]:
            nonlocal aborted
            for command in setup:
                inst.write(command)
            self.check_errors()
            if not was_on:
                inst.source_enabled = True
            inst.write(":INIT")
            inst.write("*OPC?")  # a message of its own: queued until the sweep ends
            timeout = connection.timeout
            deadline = time.monotonic() + 1.5 * expected_s + 2.0
            try:
                connection.timeout = max(1, int(poll_s * 1e3))
                while True:
                    if abort is not None and abort.is_set():
                        aborted = True
                        inst.write(":ABOR")
                        connection.timeout = timeout
                        inst.read()  # *OPC? completes once the trigger model is idle
                        break
                    try:
                        inst.read()
                        break
                    except pyvisa.errors.VisaIOError as exc:
                        if exc.error_code != pyvisa.constants.StatusCode.error_timeout:
                            raise
                    if time.monotonic() > deadline:
                        raise InstrumentLost(self.address, f"sweep of {len(points)} points not done after "
                                                           f"{1.5 * expected_s + 2.0:.1f} s")
            finally:
                connection.timeout = timeout
            if aborted:
                inst.write(":OUTP OFF")
                if int(inst.values(":TRAC:POIN:ACT?")[0]) == 0:
                    return []
            return inst.values(":TRAC:DATA?")

        try:
            values = self._call(":INIT (sweep)", sweep)
        finally:
            self._call(":SOUR:VOLT:MODE FIX", lambda: inst.write(":SOUR:VOLT:MODE FIX;:TRIG:COUN 1;:TRAC:FEED:CONT NEV"))
            if aborted or not was_on:
                self.output_off()
        if len(values) % 5 or (not values and not aborted):
            raise InstrumentLost(self.address, f"sweep returned {len(values)} values, not 5 per reading")
        return [Reading(_nan(values[k]), _nan(values[k + 1]), values[k + 3], int(values[k + 4]))
                for k in range(0, len(values), 5)]

    def close(self) -> None:
        """Output off (best effort: a failure is logged, not raised) and release the session.

        The engine turns the output off itself and reports a failure in the run's end
        reason; this is the last line of defence when an instrument object is dropped.
        """
        try:
            self.output_off()
        except InstrumentError as exc:
            log.warning("%s", exc)
        try:
            self.instrument.adapter.close()
        except Exception as exc:  # noqa: BLE001 - closing a dead session must not mask the cause
            log.debug("%s: closing the VISA session: %s", self.address, exc)


def _disable_nagle(resource: pyvisa.resources.MessageBasedResource) -> None:
    """TCP_NODELAY on a socket resource.

    Without it a write followed by a write (``:SOUR:CURR x`` then ``:READ?``) waits for the
    peer's delayed ACK under Nagle's algorithm, ~40 ms per step change (measured: a 200-step
    cycling run over loopback took 12 s instead of 3 s). ``VI_ATTR_TCPIP_NODELAY`` is the VISA
    way, but pyvisa-py 0.8 wires that attribute's setter of TCPIP SOCKET sessions to a method
    that raises, so the socket pyvisa-py holds is set directly; other backends take the
    attribute.
    """
    try:
        resource.set_visa_attribute(pyvisa.constants.VI_ATTR_TCPIP_NODELAY, pyvisa.constants.VI_TRUE)
        return
    except Exception:  # noqa: BLE001 - pyvisa-py raises its own UnknownAttribute here
        pass
    session = getattr(resource.visalib, "sessions", {}).get(resource.session)
    sock = getattr(session, "interface", None)
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _nan(value: float) -> float:
    return math.nan if value >= 9.9e37 else value
