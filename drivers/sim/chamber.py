"""A simulated BINDER climate chamber: the MB1 controller's MODBus registers on loopback TCP.

:class:`BinderMB1Simulator` answers the register reads and writes of a BINDER chamber with an
MB1 controller, the way "BINDER Interface Technical Specifications" (BINDER GmbH, Art. No.
7001-0242; "techspec §N") describes them, in front of a :class:`~drivers.sim.physics.chamber.ChamberThermal`
air model running on the injected clock ``now``. :class:`ChamberServer` serves it with
pymodbus on ``127.0.0.1``: RTU frames (slave address, function, data, CRC-16; techspec §2.8,
§2.9) over a TCP stream, as the chamber's Ethernet interface (a Lantronix XPort on TCP port
10001) tunnels its RS-422 MODBus; ``framing="tcp"`` serves standard MODBus/TCP (MBAP header)
instead, as a MODBus TCP gateway in front of the chamber would.

Registers (techspec §2.11.7, MB1; floats are IEEE-754 in two registers, low word first,
techspec §2.11.1):

====== ===== ==== =====================================================================
0x11A9 float R    process value 1: the air temperature (°C), with sensor noise
0x1077 float R    set point 1 in effect (°C): the basic set point in basic mode, else the manual one
0x156F float R/W  set point 1, basic mode (°C)
0x1581 float R/W  set point 1, manual mode (°C)
0x1A22 int   R/W  mode: 0x0800 manual, 0x1000 basic, 0x0400 program, 0 idle
====== ===== ==== =====================================================================

Errors, as MODBus exception replies with BINDER's codes (techspec §2.7): 2 "invalid parameter
address" for any other register (pymodbus answers it), 3 "parameter value outside range of
values" for a set point outside ``min_setpoint_C … max_setpoint_C``, a non-finite or half-written
float, or a mode other than idle / manual / basic, 5 "write access to parameter denied" for a
write to a read-only register.

Choices where the techspec says nothing (a real MB1 may differ): program mode (0x0400) is
refused, as this simulator runs no programs; in idle mode the controller does not heat or cool
and the air drifts to ambient, while 0x1077 keeps showing the set point; power-on is manual
mode at ``start_C``; a request for another slave address gets no reply (as on an RS-422 bus).

The chamber's air temperature is there for the simulated cell: :meth:`BinderMB1Simulator.temperature_C`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from drivers.sim.server import loopback_ipv4
from drivers.sim.physics.chamber import ChamberParameters, ChamberThermal

__all__ = ["BinderMB1Simulator", "ChamberServer", "FRAMINGS", "float_to_words", "words_to_float"]

log = logging.getLogger(__name__)

# pymodbus logs through the "pymodbus" logger without a handler, so Python's last-resort
# handler would print its frame dumps on stderr beside our one-line errors; an application
# that configures logging still gets them.
logging.getLogger("pymodbus").addHandler(logging.NullHandler())

#: MB1 register addresses (techspec §2.11.7).
PROCESS_VALUE_TEMPERATURE = 0x11A9
SETPOINT_IN_EFFECT = 0x1077
SETPOINT_BASIC = 0x156F
SETPOINT_MANUAL = 0x1581
MODE = 0x1A22
#: Mode register values (techspec §2.11.7).
MODE_IDLE, MODE_PROGRAM, MODE_MANUAL, MODE_BASIC = 0x0000, 0x0400, 0x0800, 0x1000

_FLOATS = (PROCESS_VALUE_TEMPERATURE, SETPOINT_IN_EFFECT, SETPOINT_BASIC, SETPOINT_MANUAL)
_READ_ONLY = frozenset({PROCESS_VALUE_TEMPERATURE, PROCESS_VALUE_TEMPERATURE + 1,
                        SETPOINT_IN_EFFECT, SETPOINT_IN_EFFECT + 1})
#: BINDER's error 5, "write access to parameter denied" (techspec §2.7); MODBus calls code 5 ACKNOWLEDGE.
_WRITE_DENIED = ExcCodes.ACKNOWLEDGE

#: Wire framings: RTU frames in a TCP stream (the chamber's own Ethernet interface) or MODBus/TCP.
FRAMINGS = {"rtu": FramerType.RTU, "tcp": FramerType.SOCKET}


def float_to_words(value: float) -> list[int]:
    """An IEEE-754 single as two registers, low word first (techspec §2.11.1)."""
    high, low = struct.unpack(">HH", struct.pack(">f", value))
    return [low, high]


def words_to_float(words: list[int]) -> float:
    """Two registers, low word first, as the IEEE-754 single they hold (techspec §2.11.1)."""
    return struct.unpack(">f", struct.pack(">HH", words[1], words[0]))[0]


class BinderMB1Simulator:
    """The registers of an MB1 controller in front of a simulated chamber's air.

    Args:
        params: the chamber's model inputs (its set point range is what the controller accepts).
        now: the clock in seconds (share an accelerated or virtual clock with the client side).
        unit_id: the controller's slave address (techspec §2.4; 1 by default).

    :attr:`device` is the pymodbus device to serve; its ``action`` runs on each request.
    """

    def __init__(self, params: ChamberParameters | None = None, *, now: Callable[[], float] = time.monotonic,
                 unit_id: int = 1) -> None:
        self.params = params or ChamberParameters()
        self.now = now
        self.unit_id = unit_id
        self.air = ChamberThermal(self.params, now())
        self.mode = MODE_MANUAL
        self.setpoint_manual_C = self.params.start_C
        self.setpoint_basic_C = self.params.start_C
        self._lock = threading.Lock()
        blocks = [SimData(address, count=2, values=0, datatype=DataType.REGISTERS) for address in _FLOATS]
        blocks.append(SimData(MODE, values=MODE_MANUAL, datatype=DataType.REGISTERS))
        self.device = SimDevice(unit_id, simdata=blocks, action=self._action)

    # -- what the simulated cell and the tests see ---------------------------------------------
    def temperature_C(self, now_s: float | None = None) -> float:
        """The chamber's air temperature at ``now_s`` (default: the clock's now), °C, without the
        sensor's noise: the temperature a cell inside the chamber is held at."""
        return self.air.temperature_C(self.now() if now_s is None else now_s)

    @property
    def setpoint_C(self) -> float:
        """The set point in effect (register 0x1077), °C."""
        return self.setpoint_basic_C if self.mode == MODE_BASIC else self.setpoint_manual_C

    # -- the controller ------------------------------------------------------------------------
    def _control(self, now_s: float) -> None:
        self.air.set_target(None if self.mode == MODE_IDLE else self.setpoint_C, now_s)

    def _refresh(self, start: int, registers: list[int], first: int, count: int, now_s: float) -> None:
        """Put the live values of the registers ``first … first+count-1`` into ``registers``."""
        def put(address: int, words: list[int]) -> None:
            if address + len(words) > first and address < first + count:
                registers[address - start:address - start + len(words)] = words

        if first <= PROCESS_VALUE_TEMPERATURE + 1 and PROCESS_VALUE_TEMPERATURE < first + count:
            put(PROCESS_VALUE_TEMPERATURE, float_to_words(self.air.reading_C(now_s)))
        put(SETPOINT_IN_EFFECT, float_to_words(self.setpoint_C))
        put(SETPOINT_BASIC, float_to_words(self.setpoint_basic_C))
        put(SETPOINT_MANUAL, float_to_words(self.setpoint_manual_C))
        put(MODE, [self.mode])

    def _write(self, start: int, registers: list[int], first: int, values: list[int], now_s: float) -> ExcCodes | None:
        """Apply a write of ``values`` from register ``first``, or the exception code refusing it."""
        written = range(first, first + len(values))
        if any(address in _READ_ONLY for address in written):
            return _WRITE_DENIED
        words = list(registers)
        words[first - start:first - start + len(values)] = values
        changes: dict[str, float | int] = {}
        for address, name in ((SETPOINT_BASIC, "setpoint_basic_C"), (SETPOINT_MANUAL, "setpoint_manual_C")):
            touched = [a in written for a in (address, address + 1)]
            if not any(touched):
                continue
            if not all(touched):  # half a float: the value is not a set point
                return ExcCodes.ILLEGAL_VALUE
            value = words_to_float(words[address - start:address - start + 2])
            if not (math.isfinite(value) and self.params.min_setpoint_C <= value <= self.params.max_setpoint_C):
                return ExcCodes.ILLEGAL_VALUE
            changes[name] = value
        if MODE in written:
            mode = words[MODE - start]
            if mode not in (MODE_IDLE, MODE_MANUAL, MODE_BASIC):
                return ExcCodes.ILLEGAL_VALUE
            changes["mode"] = mode
        for name, value in changes.items():
            setattr(self, name, value)
        self._control(now_s)
        return None

    async def _action(self, function_code: int, start: int, address: int, count: int, registers: list[int],
                      values: list[int] | list[bool] | None) -> ExcCodes | None:
        """pymodbus calls this before it answers a request for registers it knows: refresh the
        live registers on a read, validate and apply a write (pymodbus then stores ``values``)."""
        with self._lock:
            now_s = self.now()
            if values is None:
                self._refresh(start, registers, address, count, now_s)
                return None
            return self._write(start, registers, address, [int(v) for v in values], now_s)


class ChamberServer:
    """Serves a :class:`BinderMB1Simulator` on a loopback TCP port (pymodbus, in a daemon thread).

    Args:
        sim: the simulated chamber.
        host: an IPv4 loopback address (anything else raises ValueError).
        port: 0 picks a free port (see :attr:`address`); the chamber's XPort uses 10001.
        framing: ``rtu`` (RTU frames over TCP, the chamber's own interface) or ``tcp`` (MODBus/TCP).

    Raises:
        OSError: cannot listen on ``host:port``.
    """

    def __init__(self, sim: BinderMB1Simulator, host: str = "127.0.0.1", port: int = 0, *,
                 framing: str = "rtu") -> None:
        if framing not in FRAMINGS:
            raise ValueError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
        host = loopback_ipv4(host)
        if port:  # pymodbus logs the reason and raises RuntimeError; find the reason first
            with socket.create_server((host, port)):
                pass
        self.sim = sim
        self.framing = framing
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._server: ModbusTcpServer | None = None
        self._bound: tuple[str, int] = (host, port)
        self._thread = threading.Thread(target=self._run, args=(host, port), name=f"binder-sim-{port}", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            self._loop.close()
            raise OSError(f"cannot listen on {host}:{port}: {self._error}")

    def _run(self, host: str, port: int) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = ModbusTcpServer(self.sim.device, framer=FRAMINGS[self.framing], address=(host, port),
                                           ignore_missing_devices=True)
            await self._server.serve_forever(background=True)
            self._bound = self._server.transport.sockets[0].getsockname()[:2]

        try:
            self._loop.run_until_complete(start())
        except Exception as exc:  # noqa: BLE001 - reported to the constructor's thread
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on."""
        return str(self._bound[0]), int(self._bound[1])

    @property
    def resource(self) -> str:
        """``host:port``, the address a driver opens."""
        host, port = self.address
        return f"{host}:{port}"

    def close(self) -> None:
        """Stop listening and drop open connections."""
        if not self._thread.is_alive():
            return
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(timeout=5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        self._loop.close()

    def __enter__(self) -> ChamberServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
