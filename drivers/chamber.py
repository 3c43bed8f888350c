"""Temperature chambers: a BINDER chamber with an MB1 controller, over its MODBus interface.

:class:`BinderChamber` implements :class:`drivers.base.TemperatureChamber` with pymodbus. It
follows "BINDER Interface Technical Specifications" (BINDER GmbH, Art. No. 7001-0242;
"techspec §N"), the document BINDER gives developers for the MB1 controller's MODBus:

* §2.4, §2.8, §2.9: RTU frames (slave address, function code, data, CRC-16), functions 0x03
  "read n words" (the techspec allows the reply to carry 0x04; pymodbus accepts either),
  0x06 "write one word", 0x10 "write n words".
  The chamber's Ethernet interface (a Lantronix XPort, TCP port 10001) carries these frames
  unchanged over TCP (``framing="rtu"``, the default); ``framing="tcp"`` speaks standard
  MODBus/TCP (MBAP header, port 502) to a chamber behind a MODBus TCP gateway.
* §2.7: the controller's error codes in a MODBus exception reply: 1 invalid function,
  2 invalid parameter address, 3 parameter value outside range of values, 4 slave not ready,
  5 write access to parameter denied; it answers within 250 ms.
* §2.11.1: a float is an IEEE-754 single in two registers, low word first.
* §2.11.7, MB1: 0x11A9 process value 1 (air temperature, R), 0x1077 set point 1 in effect (R),
  0x1581 set point 1 manual (R/W), 0x156F set point 1 basic (R/W), 0x1A22 mode (0x0800
  manual, 0x1000 basic, 0x0400 program, 0 idle; write 0x0800 to switch manual mode on).

The section numbers and register addresses are as the open-source BINDER clients cite them
(ovenctl, Solarflare, which quotes the techspec section by section; the basil ``binder_mk53``
driver of SiLab Bonn; the RTS2 ``binder`` sensor daemon), which agree on every address used
here. One client (fzu.cz, for an MKFT 115) swaps 0x1581 and 0x156F; :meth:`BinderChamber.set_temperature_C`
therefore reads 0x1077 back and refuses to go on when the set point in effect is not the one
written. MB2 controllers (newer chambers) use other addresses and are not supported here.

A set point is written to the manual set point, then manual mode is switched on if the chamber
is in another mode (set point first: switching the mode on first would start the chamber toward
the old set point). The chamber's own set point range (its data sheet) must be given; a set
point outside it is refused before anything is sent.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Literal

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse

from drivers.base import InstrumentError, InstrumentLost

__all__ = ["BinderChamber", "open_chamber", "parse_address", "CHAMBER_DRIVERS"]

# pymodbus logs through the "pymodbus" logger without a handler, so Python's last-resort
# handler would print its frame dumps on stderr beside our one-line errors; an application
# that configures logging still gets them.
logging.getLogger("pymodbus").addHandler(logging.NullHandler())

#: MB1 register addresses (techspec §2.11.7).
REG_TEMPERATURE = 0x11A9
REG_SETPOINT_IN_EFFECT = 0x1077
REG_SETPOINT_MANUAL = 0x1581
REG_MODE = 0x1A22
#: Mode bits (techspec §2.11.7), most specific first.
MODE_BITS = ((0x0400, "program"), (0x0800, "manual"), (0x1000, "basic"))
MODE_MANUAL = 0x0800

#: BINDER's error codes in an exception reply (techspec §2.7).
ERROR_TEXT = {
    1: "invalid function",
    2: "invalid parameter address",
    3: "parameter value outside range of values",
    4: "slave not ready",
    5: "write access to parameter denied",
}

#: Default TCP port per framing: the XPort's (techspec) and MODBus/TCP's.
DEFAULT_PORT = {"rtu": 10001, "tcp": 502}
_FRAMER = {"rtu": FramerType.RTU, "tcp": FramerType.SOCKET}

#: Station-file driver names this module opens.
CHAMBER_DRIVERS = ("binder",)

Framing = Literal["rtu", "tcp"]


def parse_address(address: str, framing: Framing = "rtu") -> tuple[str, int]:
    """``host[:port]`` → (host, port); the port defaults to the framing's (10001 or 502).

    Raises:
        ValueError: not of that form, naming the address.
    """
    host, sep, port = address.rpartition(":")
    if not sep:
        host, port = address, str(DEFAULT_PORT[framing])
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() for c in host):
        raise ValueError(f"chamber address {address!r}: expected host[:port], e.g. 192.168.1.20:10001")
    return host, int(port)


def _finite(name: str, value: float, *, positive: bool = False) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value)) or (positive and value <= 0) or value < 0:
        need = "> 0" if positive else "≥ 0"
        raise ValueError(f"{name} must be a finite number {need}, got {value!r}")
    return float(value)


def _sleep(dt_s: float, wake: threading.Event | None = None) -> None:
    if wake is None:
        time.sleep(dt_s)
    else:
        wake.wait(dt_s)


class BinderChamber:
    """A BINDER chamber with an MB1 controller (see the module docstring for the registers).

    Args:
        address: ``host[:port]`` of the chamber's Ethernet interface.
        timeout_s: longest wait for one reply (s); the controller answers within 0.25 s.
        min_setpoint_C, max_setpoint_C: the chamber's set point range (°C, its data sheet);
            set points outside it are refused before anything is sent. The defaults are the
            MK 53's rated −40 … 180 °C (as ovenctl sets them); a station names its chamber's.
        unit_id: the controller's slave address (1 unless changed at the chamber).
        framing: ``rtu`` (RTU frames over TCP, the chamber's own interface) or ``tcp`` (MODBus/TCP).

    Raises:
        ValueError: malformed address, range or timeout.
        InstrumentLost: the chamber cannot be reached (names the address).

    Pymodbus retries nothing (``retries=0``): a lost reply is reported at once, and the
    engine's reconnect policy decides what to do.
    """

    def __init__(self, address: str, *, timeout_s: float = 2.0, min_setpoint_C: float = -40.0,
                 max_setpoint_C: float = 180.0, unit_id: int = 1, framing: Framing = "rtu") -> None:
        if framing not in _FRAMER:
            raise ValueError(f"chamber {address}: framing must be rtu or tcp, got {framing!r}")
        self.address = address
        self._host, self._port = parse_address(address, framing)
        self.timeout_s = _finite(f"chamber {address}: timeout_s", timeout_s, positive=True)
        for name, value in (("min_setpoint_C", min_setpoint_C), ("max_setpoint_C", max_setpoint_C)):
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"chamber {address}: {name} must be finite, got {value!r}")
        if not min_setpoint_C < max_setpoint_C:
            raise ValueError(f"chamber {address}: min_setpoint_C {min_setpoint_C:g} °C is not below "
                             f"max_setpoint_C {max_setpoint_C:g} °C")
        if not 1 <= unit_id <= 247:
            raise ValueError(f"chamber {address}: unit_id must be 1…247, got {unit_id!r}")
        self.min_setpoint_C = float(min_setpoint_C)
        self.max_setpoint_C = float(max_setpoint_C)
        self.unit_id = unit_id
        self.framing = framing
        self._lock = threading.RLock()
        self._client: ModbusTcpClient | None = None
        self.reconnect()

    # -- wire ----------------------------------------------------------------------------------
    def reconnect(self) -> None:
        """Open a new connection to the chamber (its set point and mode are unaffected).

        Raises:
            InstrumentLost: the chamber cannot be reached.
        """
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = ModbusTcpClient(self._host, port=self._port, framer=_FRAMER[self.framing],
                                           timeout=self.timeout_s, retries=0)
            if not self._client.connect():
                raise InstrumentLost(self.address, f"cannot connect to the chamber at {self._host}:{self._port}")

    def _call(self, what: str, request: Callable[[ModbusTcpClient], object]) -> object:
        with self._lock:
            if self._client is None:
                raise InstrumentLost(self.address, f"{what}: the connection is closed")
            try:
                reply = request(self._client)
            except (ModbusException, OSError) as exc:
                # RTU frames carry no transaction id: drop the connection so that a late reply
                # cannot pass for the answer to the next request (the next call connects anew)
                self._client.close()
                raise InstrumentLost(self.address, f"{what}: no reply ({exc})") from None
        if isinstance(reply, ExceptionResponse):
            code = reply.exception_code
            raise InstrumentError(self.address, f"{what}: the chamber refused it, error {code} "
                                                f"({ERROR_TEXT.get(code, 'unknown error')})")
        if reply.isError():  # type: ignore[attr-defined]
            raise InstrumentLost(self.address, f"{what}: bad reply {reply}")
        return reply

    def _read(self, register: int, count: int, what: str) -> list[int]:
        reply = self._call(what, lambda c: c.read_holding_registers(register, count=count, device_id=self.unit_id))
        words = list(reply.registers)  # type: ignore[attr-defined]
        if len(words) != count:
            raise InstrumentLost(self.address, f"{what}: {len(words)} registers in the reply, expected {count}")
        return words

    def _read_float(self, register: int, what: str) -> float:
        value = float(ModbusTcpClient.convert_from_registers(
            self._read(register, 2, what), ModbusTcpClient.DATATYPE.FLOAT32, word_order="little"))
        if not math.isfinite(value):
            raise InstrumentError(self.address, f"{what}: the chamber reports {value} (sensor fault?)")
        return value

    # -- TemperatureChamber --------------------------------------------------------------------
    def temperature_C(self) -> float:
        """The chamber's air temperature (°C, process value 1, register 0x11A9)."""
        return self._read_float(REG_TEMPERATURE, "read temperature")

    def setpoint_C(self) -> float:
        """The set point in effect (°C, register 0x1077): what the chamber is controlling to."""
        return self._read_float(REG_SETPOINT_IN_EFFECT, "read set point")

    def mode(self) -> str:
        """The controller's mode: ``manual``, ``basic``, ``program`` or ``idle`` (register 0x1A22)."""
        word = self._read(REG_MODE, 1, "read mode")[0]
        return next((name for bit, name in MODE_BITS if word & bit), "idle")

    def set_temperature_C(self, setpoint_C: float) -> None:
        """Control the chamber to ``setpoint_C`` (°C) in manual mode; returns at once.

        Writes the manual set point (0x1581, function 0x10), switches manual mode on (0x1A22 ←
        0x0800, function 0x06) unless it already is, then reads the set point in effect back.

        Raises:
            InstrumentError: ``setpoint_C`` outside the chamber's range or not finite (nothing
                sent), the chamber refuses it, or the set point in effect is not the one written
                (e.g. a program runs at the chamber).
            InstrumentLost: no reply.
        """
        if not (isinstance(setpoint_C, (int, float)) and math.isfinite(setpoint_C)):
            raise InstrumentError(self.address, f"set point {setpoint_C!r} °C is not a finite number")
        if not self.min_setpoint_C <= setpoint_C <= self.max_setpoint_C:
            raise InstrumentError(self.address, f"set point {setpoint_C:g} °C is outside the chamber's range "
                                                f"{self.min_setpoint_C:g} … {self.max_setpoint_C:g} °C")
        words = ModbusTcpClient.convert_to_registers(float(setpoint_C), ModbusTcpClient.DATATYPE.FLOAT32,
                                                     word_order="little")
        with self._lock:
            self._call(f"set point {setpoint_C:g} °C",
                       lambda c: c.write_registers(REG_SETPOINT_MANUAL, words, device_id=self.unit_id))
            if self.mode() != "manual":
                self._call("switch manual mode on",
                           lambda c: c.write_register(REG_MODE, MODE_MANUAL, device_id=self.unit_id))
            in_effect = self.setpoint_C()
        if abs(in_effect - setpoint_C) > 1e-3 * max(1.0, abs(setpoint_C)):
            raise InstrumentError(self.address, f"set point {setpoint_C:g} °C written, but the chamber controls to "
                                                f"{in_effect:g} °C (mode {self.mode()})")

    def wait_stable(self, tolerance_K: float, soak_s: float, timeout_s: float, *, poll_s: float = 10.0,
                    now: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float, threading.Event | None], None] = _sleep,
                    abort: threading.Event | None = None,
                    on_reading: Callable[[float, float], None] | None = None) -> bool:
        """Wait until the air has stayed within ±``tolerance_K`` of the set point for ``soak_s``.

        Reads the temperature every ``poll_s`` (and exactly at the end of the soak); any reading
        outside the band restarts the soak. Each poll also checks that the set point in effect is
        still the one waited for and that the chamber is not idle. Times are on the clock
        ``now``/``sleep`` (s; pass an engine clock's ``now`` and ``sleep`` to run on simulated
        time); ``sleep(dt_s, abort)`` must return early when ``abort`` is set.

        Args:
            tolerance_K: half-width of the band (K), > 0.
            soak_s: how long every reading must stay in the band (s), ≥ 0.
            timeout_s: give up after this long (s), ≥ ``soak_s``.
            poll_s: seconds between readings, > 0.
            abort: set from any thread to stop waiting.
            on_reading: called with (``now()``, temperature °C) after each reading.

        Returns:
            True when the soak is complete, False when ``abort`` was set first.

        Raises:
            ValueError: a bad number.
            InstrumentError: not stable within ``timeout_s``; the set point changed at the
                chamber; the chamber is idle (it would never get there).
            InstrumentLost: no reply.
        """
        tolerance_K = _finite("tolerance_K", tolerance_K, positive=True)
        soak_s = _finite("soak_s", soak_s)
        timeout_s = _finite("timeout_s", timeout_s, positive=True)
        poll_s = _finite("poll_s", poll_s, positive=True)
        if timeout_s < soak_s:
            raise ValueError(f"timeout_s {timeout_s:g} s is shorter than soak_s {soak_s:g} s")
        target_C = self.setpoint_C()
        start_s = now()
        in_band_since: float | None = None
        while True:
            if abort is not None and abort.is_set():
                return False
            t_s = now()
            last_C = self.temperature_C()
            if on_reading is not None:
                on_reading(t_s, last_C)
            if abs(last_C - target_C) <= tolerance_K:
                in_band_since = t_s if in_band_since is None else in_band_since
                if t_s - in_band_since >= soak_s:
                    return True
            else:
                in_band_since = None
            if t_s - start_s >= timeout_s:
                raise InstrumentError(self.address, f"not within ±{tolerance_K:g} K of {target_C:g} °C for "
                                                    f"{soak_s:g} s after {timeout_s:g} s (last reading {last_C:.2f} °C)")
            if self.mode() == "idle":
                raise InstrumentError(self.address, f"the chamber is idle: it will not reach {target_C:g} °C")
            if (now_setpoint_C := self.setpoint_C()) != target_C:
                raise InstrumentError(self.address, f"the set point changed at the chamber from {target_C:g} °C "
                                                    f"to {now_setpoint_C:g} °C while waiting")
            dt_s = min(poll_s, start_s + timeout_s - t_s)
            if in_band_since is not None:
                dt_s = min(dt_s, in_band_since + soak_s - t_s)
            sleep(dt_s, abort)

    @property
    def idn(self) -> str:
        """One line: what the chamber is and what it is doing (the MB1 has no identity register)."""
        return (f"BINDER chamber, MB1 controller, slave {self.unit_id} at {self.address}: {self.temperature_C():.1f} °C, "
                f"set point {self.setpoint_C():.1f} °C, {self.mode()} mode")

    def state(self) -> dict[str, object]:
        """The chamber's own view: ``temperature_C``, ``setpoint_C``, ``mode``, and the range."""
        return {"temperature_C": self.temperature_C(), "setpoint_C": self.setpoint_C(), "mode": self.mode(),
                "min_setpoint_C": self.min_setpoint_C, "max_setpoint_C": self.max_setpoint_C}

    def close(self) -> None:
        """Close the connection; the chamber keeps controlling to its set point."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def __enter__(self) -> BinderChamber:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_chamber(address: str, *, driver: str = "binder", timeout_s: float = 2.0, min_setpoint_C: float,
                 max_setpoint_C: float, unit_id: int = 1, framing: Framing = "rtu") -> BinderChamber:
    """Connect to the temperature chamber a station file names (driver ``binder``).

    Raises:
        ValueError: unknown driver or bad options (one line).
        InstrumentLost: the chamber cannot be reached (names the address).
    """
    if driver not in CHAMBER_DRIVERS:
        raise ValueError(f"chamber {address}: no chamber driver {driver!r}; known: {', '.join(CHAMBER_DRIVERS)}")
    return BinderChamber(address, timeout_s=timeout_s, min_setpoint_C=min_setpoint_C,
                         max_setpoint_C=max_setpoint_C, unit_id=unit_id, framing=framing)
