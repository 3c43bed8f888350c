"""A Keithley 2400 SourceMeter simulator that speaks its SCPI over TCP and over a pty.

:class:`Keithley2400Simulator` puts the 2400's command set (the subset in
``Keithley2400Simulator.__doc__``: everything pymeasure's ``Keithley2400`` sends, plus the
IEEE 488.2 common commands, status model, trigger model and reading buffer) in front of a
:class:`~drivers.sim.smu.SourceMeterModel`. :class:`TcpServer` serves it as
``TCPIP::127.0.0.1::<port>::SOCKET`` (LF-terminated, like the 2400's GPIB terminator) and
:class:`PtyServer` as a serial device ``ASRL/dev/pts/N::INSTR`` (CR-terminated, like its
RS-232 port). Both listen on this machine only.

References are to the Series 2400 SourceMeter User's Manual, 2400S-900-01 Rev. K
("manual §N"): §14 remote interfaces, §15 status model, §16 common commands, §17 signal
oriented measurement commands, §18 SCPI command reference, App. B error messages.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import re
import select
import socket
import statistics
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers.sim.physics.cell import CellParameters, SymmetricCell
from drivers.sim.scpi import (
    ESR_OPERATION_COMPLETE,
    Boolean,
    Choice,
    CommandTree,
    ErrorQueue,
    Numeric,
    QuotedChoice,
    ScpiError,
)
from drivers.sim.server import LoopbackServer
from drivers.sim.smu import (
    MAX_CURRENT_A,
    MAX_VOLTAGE_V,
    MEASURE_RESOLUTION,
    NOT_A_NUMBER,
    STATUS_COMPLIANCE,
    Load,
    SourceMeterModel,
)

log = logging.getLogger(__name__)

IDN_FORMAT = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,{serial},C30   Mar 17 2006 09:29:29/A02  /K/J"
SCPI_VERSION = "1996.0"

#: ``:FORM:ELEM`` data elements, in the fixed order the 2400 sends them (manual §18 FORMat).
ELEMENTS = ("VOLT", "CURR", "RES", "TIME", "STAT")

#: Full-scale values of the 2400's ranges (manual §1 specifications; 105 % of nominal).
RANGES = {
    "CURR": tuple(scale for scale, _ in MEASURE_RESOLUTION["CURR"]),
    "VOLT": tuple(scale for scale, _ in MEASURE_RESOLUTION["VOLT"]),
    "RES": (21.0, 210.0, 2.1e3, 2.1e4, 2.1e5, 2.1e6, 2.1e7, 2.1e8),
}
_LIMIT = {"CURR": MAX_CURRENT_A, "VOLT": MAX_VOLTAGE_V, "RES": RANGES["RES"][-1]}
_LONG = {"CURR": "CURRent[:DC]", "VOLT": "VOLTage[:DC]", "RES": "RESistance"}
_SOURCE_LONG = {"CURR": "CURRent", "VOLT": "VOLTage"}
_FUNCTION_REPLY = {"VOLT": '"VOLT:DC"', "CURR": '"CURR:DC"', "RES": '"RES"'}

#: Status-model bits (manual §15): measurement event register and status byte.
MEAS_BUFFER_FULL = 1 << 9
MEAS_COMPLIANCE = 1 << 14
STB_MEASUREMENT_SUMMARY = 1 << 0
STB_ERROR_AVAILABLE = 1 << 2
STB_QUESTIONABLE_SUMMARY = 1 << 3
STB_EVENT_SUMMARY = 1 << 5
STB_MASTER_SUMMARY = 1 << 6
STB_OPERATION_SUMMARY = 1 << 7

#: Buffer capacity and the cap on arm count × trigger count (manual §9, §11).
MAX_READINGS = 2500

#: Error +803 (manual App. B, Table B-1): ``:READ?``/``:INIT`` with the output off and
#: auto output-off disabled (manual §17 ``:READ?``, §18 ``:SOURce:CLEar:AUTO``).
ERROR_OUTPUT_OFF = (803, "Not permitted with OUTPUT off")

#: Settings restored by ``*RST`` / ``:SYST:PRES`` (manual §C "Default parameters").
_RST_SETTINGS: dict[str, Any] = {
    "source_range:CURR": 1.05e-4, "source_range:VOLT": 21.0,
    "source_range_auto:CURR": True, "source_range_auto:VOLT": True,
    "source_delay_s": 0.0, "source_delay_auto": True, "auto_off_mode": "ALW",
    "output_off_mode": "NORM",
    "sense_range:CURR": 1.05e-4, "sense_range:VOLT": 21.0, "sense_range:RES": 2.1e5,
    "sense_range_auto:CURR": True, "sense_range_auto:VOLT": True, "sense_range_auto:RES": True,
    "nplc": 1.0, "resistance_mode": "MAN", "concurrent": True,
    "filter": False, "filter_count": 10, "filter_type": "REP",
    "auto_zero": True, "remote_sense": False, "terminals": "FRON", "display": True, "beeper": True,
    "arm_source": "IMM", "arm_count": 1, "arm_timer_s": 0.1, "arm_input_line": 1,
    "arm_output_line": 2, "arm_output": ("NONE",),
    "trigger_source": "IMM", "trigger_count": 1, "trigger_delay_s": 0.0, "trigger_input_line": 1,
    "trigger_output_line": 2, "trigger_output": ("NONE",), "trigger_input": ("SENS",),
    "feed": "SENS", "feed_control": "NEV", "timestamp_format": "ABS", "statistic": "MEAN",
    "elements": frozenset(ELEMENTS), "data_format": "ASC",
    "source_mode:CURR": "FIX", "source_mode:VOLT": "FIX",
    "sweep_start:CURR": 0.0, "sweep_start:VOLT": 0.0, "sweep_stop:CURR": 0.0, "sweep_stop:VOLT": 0.0,
    "sweep_points": MAX_READINGS, "sweep_spacing": "LIN", "sweep_ranging": "BEST", "sweep_abort": "NEV",
    "sweep_direction": "UP", "list:CURR": (0.0,), "list:VOLT": (0.0,),
}
#: Settings that ``*RST`` leaves alone (power-on values).
_POWER_ON_SETTINGS: dict[str, Any] = {
    "line_frequency_Hz": 60, "line_frequency_auto": True, "buffer_points": 100, "sre": 0, "ese": 0,
}


def nr3(value: float) -> str:
    """A number as the 2400 sends it: ``+1.000000E-03`` (manual §18 FORMat, ASCII)."""
    return f"{value:+.6E}"


def _nr1(value: int) -> str:
    return str(int(value))


def _bool(value: bool) -> str:
    return "1" if value else "0"


def _char(value: str) -> str:
    return value


def _char_list(values: tuple[str, ...]) -> str:
    return ",".join(values)


def _range_for(function: str, magnitude: float) -> float:
    """The most sensitive full-scale range of ``function`` that holds ``magnitude``."""
    for full_scale in RANGES[function]:
        if abs(magnitude) <= full_scale * (1 + 1e-9):
            return full_scale
    return RANGES[function][-1]


@dataclass
class _EventRegister:
    """An SCPI status register set (SCPI-99 §9): event (latched) and enable."""

    event: int = 0
    enable: int = 0


Reading = tuple[float, float, float, float, int]

#: A program message that is only ``:ABORt`` (any spelling): executed at once, ahead of
#: queued commands, also while the trigger model runs (manual §11 "Idle and initiate").
_ABORT_MESSAGE = re.compile(r"^\s*:?ABOR(T)?\s*;?\s*$", re.IGNORECASE)


def is_abort(message: str) -> bool:
    """True if ``message`` is ``:ABORt`` alone (the one command not queued behind a sweep)."""
    return bool(_ABORT_MESSAGE.match(message))


@dataclass
class _SweepRun:
    """A source sweep in progress in the trigger model (manual §10, §11).

    Point k is sourced at ``start_s + k * period_s`` and measured at the end of its
    source-delay-measure cycle, ``start_s + (k + 1) * period_s`` (clock time); its
    timestamp is ``t0_s + (k + 1) * period_s`` on the instrument's timestamp scale.
    """

    function: str
    fixed: float
    points: list[float]
    count: int
    start_s: float
    t0_s: float
    period_s: float
    abort_on_compliance: bool
    readings: list[Reading] = field(default_factory=list)


class Keithley2400Simulator:
    """A Keithley 2400 behind its SCPI command set, over a simulated load.

    Args:
        load: a :class:`~drivers.sim.physics.cell.CellParameters` (builds a
            :class:`~drivers.sim.physics.cell.SymmetricCell`), any :class:`~drivers.sim.smu.Load`
            (e.g. ``Resistor(1000)``), or None for the default Li | H.L.-LLZO | Li cell.
        now: clock in seconds, passed to :class:`~drivers.sim.smu.SourceMeterModel`; share
            an accelerated clock with the engine to run faster than real time.
        serial_number: third field of ``*IDN?``.

    :meth:`handle` runs one program message and is thread-safe, so any number of servers
    may serve one simulator. Implemented (short forms; ``[...]`` optional, any long/short
    spelling accepted):

    * common (manual §16): ``*IDN? *RST *CLS *OPC *OPC? *WAI *TRG *STB? *SRE[?] *ESE[?]
      *ESR? *TST? *OPT?``
    * source (§18 SOURce, OUTPut): ``:SOUR:FUNC[:MODE] VOLT|CURR``, ``:SOUR:CURR|VOLT[:LEV]``
      (±1.05 A / ±210 V, else -222), ``:SOUR:CURR|VOLT:RANG[:AUTO]``, ``:SOUR:DEL[:AUTO]``,
      ``:SOUR:CLE[:IMM]``, ``:SOUR:CLE:AUTO[:MODE]``, ``:OUTP[:STAT]``, ``:OUTP:SMOD``
    * sweeps (§10, §18 SOURce): ``:SOUR:CURR|VOLT:MODE FIX|SWE|LIST``, ``:STAR``, ``:STOP``,
      ``:STEP``, ``:SOUR:SWE:POIN`` (2–2500), ``:SWE:SPAC LIN|LOG``, ``:SWE:RANG``,
      ``:SWE:CAB NEV|EARL|LATE`` (abort on compliance), ``:SWE:DIR``,
      ``:SOUR:LIST:CURR|VOLT`` and ``:APP`` (≤ 100 values a command, ≤ 2500 in all),
      ``:LIST:CURR|VOLT:POIN?``; with ``:TRIG:COUN`` = points, ``:READ?`` (or ``:INIT`` +
      ``:TRAC:DATA?``) returns the whole sweep in one transfer
    * sense (§18 SENSe): ``[:SENS]:FUNC[:ON] "VOLT","CURR",...``, ``:FUNC:OFF``,
      ``:FUNC[:ON]:ALL``, ``:FUNC:OFF:ALL``, ``:FUNC:CONC``, ``:FUNC:STAT?``,
      ``:FUNC[:ON]|OFF:COUN?``, ``:CURR|VOLT:PROT[:LEV]`` (compliance), ``:PROT:TRIP?``,
      ``:CURR|VOLT|RES:RANG[:UPP]``, ``:RANG:AUTO``, ``:NPLC`` (0.01–10, one global value),
      ``:RES:MODE``, ``:AVER[:STAT]``, ``:AVER:TCON``, ``:AVER:COUN``
    * measurement (§17): ``:READ? :FETC? :INIT[:IMM] :ABOR :CONF:<f> :CONF? :MEAS[:<f>]?``
    * trigger model (§18 ARM, TRIGger): ``:ARM|:TRIG:COUN``, ``:SOUR``, ``:ILIN``, ``:OLIN``,
      ``:OUTP``, ``:ARM:TIM``, ``:TRIG:DEL``, ``:TRIG:INP``, ``:TRIG:CLE``
    * buffer and statistics (§18 TRACe, CALCulate3): ``:TRAC:POIN[:ACT]``, ``:TRAC:CLE``,
      ``:TRAC:FEED``, ``:TRAC:FEED:CONT NEXT|NEV``, ``:TRAC:DATA?``, ``:TRAC:TST:FORM``,
      ``:CALC3:FORM MEAN|SDEV|MAX|MIN|PKPK``, ``:CALC3:DATA?``
    * format, status, system (§18): ``:FORM[:DATA] ASC``, ``:FORM:ELEM``, ``:STAT:PRES``,
      ``:STAT:MEAS|QUES|OPER[:EVEN]? :ENAB :COND?``, ``:STAT:QUE[:NEXT]?``, ``:STAT:QUE:CLE``,
      ``:SYST:ERR[:NEXT]? :ERR:ALL? :ERR:COUN? :ERR:CLE``, ``:SYST:PRES``, ``:SYST:VERS?``,
      ``:SYST:TIME:RES``, ``:SYST:AZER[:STAT] ON|OFF|ONCE``, ``:SYST:LFR[:AUTO]``,
      ``:SYST:RSEN``, ``:SYST:BEEP[:IMM] <Hz>,<s>``, ``:SYST:BEEP:STAT``,
      ``:SYST:LOC|REM|RWL``, ``:ROUT:TERM``, ``:DISP:ENAB``

    Behaviour of the trigger model (manual §11): in FIXed source mode ``:INIT`` / ``:READ?``
    take arm count × trigger count readings at once (in the clock's present instant). A
    sweep (SWEep/LIST source mode) runs in the clock's time, one source-delay-measure
    cycle per point (trigger delay + source delay, auto = 1 ms, + NPLC / line frequency);
    ``:INIT`` returns at once and the sweep goes on, ``:READ?`` replies when it ends. While
    it runs every command but ``:ABORt`` waits until the trigger model is idle again (§11
    "Idle and initiate": commands are queued), so ``*OPC?`` or ``:TRAC:DATA?`` sent after
    ``:INIT`` reply at its end; ``:ABORt`` stops it after the last completed point, leaves
    the output on and the completed points in the buffer. With a clock only its sleepers
    advance (``VirtualClock``, ``speed`` inf) a sweep is taken at once, with the same
    timestamps. With arm source BUS, ``:INIT`` waits for ``*TRG``. With ``:TRAC:FEED:CONT NEXT`` the
    readings also fill the buffer up to ``:TRAC:POIN``; a full buffer sets bit 9 of the
    measurement event register and feed control returns to NEVer.

    Output off: with auto output-off disabled (the ``*RST`` default), ``:READ?`` and
    ``:INIT`` need the output on (manual §17 ``:READ?``, §18 ``:SOURce:CLEar:AUTO``); with
    the output off they push error ``803,"Not permitted with OUTPUT off"`` (App. B) and
    ``:READ?`` sends no reply, as QCoDeS's driver expects of the instrument. With auto
    output-off enabled each reading is taken with the output momentarily on.
    ``:MEAS:<f>?`` = ``:CONF:<f>`` + ``:READ?``: it turns the output on, and off again after
    the reading only if auto output-off is enabled (§17 ``:MEASure?``).

    Modelled only as stored values: ranges, NPLC, delays, filter, auto-zero, line frequency,
    remote sense, terminals, display, beeper, trigger-link lines and output-off state.
    """

    def __init__(self, load: Load | CellParameters | None = None, *,
                 now: Callable[[], float] = time.monotonic, serial_number: str = "4123456") -> None:
        if load is None or isinstance(load, CellParameters):
            load = SymmetricCell(load)
        self.model = SourceMeterModel(load, now=now)
        self.serial_number = serial_number
        self.errors = ErrorQueue(capacity=10)
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._now = now
        # A clock only its sleepers advance (VirtualClock, speed inf) would never run a sweep
        # while the client waits for it: there the sweep is taken at once, as before.
        self._instant_sweeps = math.isinf(getattr(getattr(now, "__self__", None), "speed", 0.0))
        self._run: _SweepRun | None = None
        self._settings: dict[str, Any] = {**_RST_SETTINGS, **_POWER_ON_SETTINGS}
        self._registers = {name: _EventRegister() for name in ("MEAS", "QUES", "OPER")}
        self._buffer: list[Reading] = []
        self._last_readings: list[Reading] = []
        self._waiting_for_bus_trigger = False
        self._tree = CommandTree(self.errors)
        self._declare_common()
        self._declare_source()
        self._declare_sweep()
        self._declare_sense()
        self._declare_measurement()
        self._declare_trigger_model()
        self._declare_buffer()
        self._declare_format_status_system()

    # -- public ----------------------------------------------------------------------------
    def handle(self, message: str) -> str | None:
        """Process one program message (one line, no terminator); the reply line or None.

        SCPI errors go to the instrument's error queue (read with ``:SYST:ERR?``), never
        raised. Thread-safe.

        While a sweep runs (trigger model out of idle) the message waits until the sweep
        ends, as the 2400 queues every command but ``:ABORt`` (and the GPIB DCL/SDC/IFC
        bus commands) until it is idle again (manual §11 "Idle and initiate"); a message
        that is only ``:ABORt`` runs at once. A transport must therefore read on while a
        message waits (see :class:`TcpServer`).
        """
        with self._idle:
            if not is_abort(message):
                self._wait_idle()
            return self._tree.execute(message)

    @property
    def sweeping(self) -> bool:
        """True while a sweep runs in the trigger model (the clock has not reached its end)."""
        with self._idle:
            self._advance()
            return self._run is not None

    @property
    def points_taken(self) -> int:
        """Readings the running sweep has taken so far (0 when none runs)."""
        with self._idle:
            self._advance()
            return 0 if self._run is None else len(self._run.readings)

    def _wait_idle(self) -> None:
        """Block (lock released) until no sweep runs, advancing it with the clock."""
        self._advance()
        while self._run is not None:
            self._idle.wait(0.002)
            self._advance()

    def _advance(self) -> None:
        """Take the sweep's points whose source-delay-measure cycle has ended by now."""
        run = self._run
        if run is None:
            return
        m = self.model
        due = run.count if self._instant_sweeps else min(
            run.count, int(math.floor((self._now() - run.start_s) / run.period_s + 1e-9)))
        while len(run.readings) < due:
            k = len(run.readings)
            m.set_level(run.function, run.points[k % len(run.points)])
            v, i, r, _t, status = m.read()
            reading = (v, i, r, run.t0_s + (k + 1) * run.period_s, status)
            run.readings.append(reading)
            self._store([reading])
            if run.abort_on_compliance and status & STATUS_COMPLIANCE:
                break
        if len(run.readings) >= run.count or (run.readings and run.abort_on_compliance
                                               and run.readings[-1][4] & STATUS_COMPLIANCE):
            self._end_sweep()

    def _end_sweep(self) -> None:
        """Back to idle: the source returns to its FIXed (bias) level (manual §10)."""
        run, self._run = self._run, None
        if run is None:
            return
        self.model.set_level(run.function, run.fixed)
        if run.readings:
            self._last_readings = run.readings
        self._idle.notify_all()

    def _abort(self) -> None:
        """``:ABORt`` (manual §18, §11): the trigger model returns to idle at once; a sweep
        stops after its last completed point (stored in the buffer if feeding); the output
        stays as it is (on, with auto output-off disabled)."""
        self._advance()
        self._end_sweep()
        self._waiting_for_bus_trigger = False

    # -- declaration helpers ---------------------------------------------------------------
    def _setting(self, pattern: str, key: str, param: Any, reply: Callable[[Any], str], *,
                 check: Callable[[Any], None] | None = None, on_set: Callable[[Any], None] | None = None,
                 variadic: bool = False) -> None:
        """A stored setting: ``pattern <value>`` stores it, ``pattern?`` returns it.

        ``check(value)`` may refuse a value by raising ScpiError before it is stored;
        ``on_set(value)`` runs after. Numeric settings with a declared default also answer
        ``pattern? MIN|MAX|DEF``.
        """

        def write(*values: Any) -> None:
            value = tuple(dict.fromkeys(values)) if variadic else values[0]
            if check is not None:
                check(value)
            self._settings[key] = value
            if on_set is not None:
                on_set(value)

        self._tree.command(pattern, write, param, variadic=variadic)
        if isinstance(param, Numeric) and param.default is not None:
            named = Choice("MINimum", "MAXimum", "DEFault")
            self._tree.query(pattern, lambda which=None: reply(self._settings[key] if which is None else param.named(which)),
                             named, required=0)
        else:
            self._tree.query(pattern, lambda: reply(self._settings[key]))

    # -- common commands (manual §16) ------------------------------------------------------
    def _declare_common(self) -> None:
        t = self._tree
        t.query("*IDN", lambda: IDN_FORMAT.format(serial=self.serial_number))
        t.command("*RST", self._reset)
        t.command("*CLS", self._clear_status)
        t.command("*OPC", self._operation_complete)
        t.query("*OPC", lambda: "1")
        t.command("*WAI", lambda: None)
        t.command("*TRG", self._bus_trigger)
        t.query("*STB", lambda: _nr1(self._status_byte()))
        t.query("*TST", lambda: "0")
        t.query("*OPT", lambda: "0")
        t.query("*ESR", self._read_event_status)
        byte = Numeric(0, 255, integer=True)
        t.command("*SRE", lambda v: self._settings.__setitem__("sre", v & ~STB_MASTER_SUMMARY), byte)
        t.query("*SRE", lambda: _nr1(self._settings["sre"]))
        t.command("*ESE", lambda v: self._settings.__setitem__("ese", v), byte)
        t.query("*ESE", lambda: _nr1(self._settings["ese"]))

    def _reset(self) -> None:
        """``*RST`` / ``:SYST:PRES``: model and settings to their defaults; the buffer, the
        status registers and the error queue are kept (IEEE 488.2 §10.32)."""
        self._end_sweep()
        self.model.reset()
        self._settings.update(_RST_SETTINGS)
        self._waiting_for_bus_trigger = False

    def _clear_status(self) -> None:
        self.errors.clear()
        for register in self._registers.values():
            register.event = 0

    def _operation_complete(self) -> None:
        self.errors.standard_event_status |= ESR_OPERATION_COMPLETE

    def _read_event_status(self) -> str:
        value = self.errors.standard_event_status
        self.errors.standard_event_status = 0
        return _nr1(value)

    def _status_byte(self) -> int:
        """The status byte (manual §15, IEEE 488.2 §11.2), with MSS computed from ``*SRE``."""
        stb = 0
        for name, bit in (("MEAS", STB_MEASUREMENT_SUMMARY), ("QUES", STB_QUESTIONABLE_SUMMARY),
                          ("OPER", STB_OPERATION_SUMMARY)):
            register = self._registers[name]
            if register.event & register.enable:
                stb |= bit
        if len(self.errors):
            stb |= STB_ERROR_AVAILABLE
        if self.errors.standard_event_status & self._settings["ese"]:
            stb |= STB_EVENT_SUMMARY
        if stb & self._settings["sre"]:
            stb |= STB_MASTER_SUMMARY
        return stb

    # -- source (manual §18 SOURce, OUTPut) ------------------------------------------------
    def _declare_source(self) -> None:
        t, m = self._tree, self.model
        t.command(":OUTPut[1][:STATe]", m.set_output, Boolean())
        t.query(":OUTPut[1][:STATe]", lambda: _bool(m.output_enabled))
        self._setting(":OUTPut[1]:SMODe", "output_off_mode", Choice("HIMPedance", "NORMal", "ZERO", "GUARd"), _char)
        t.command(":SOURce[1]:FUNCtion[:MODE]", m.set_source_function, Choice("VOLTage", "CURRent"))
        t.query(":SOURce[1]:FUNCtion[:MODE]", lambda: m.source_function)
        for function, long in _SOURCE_LONG.items():
            limit = _LIMIT[function]
            level = Numeric(-limit, limit, default=0.0)
            attribute = "source_current_A" if function == "CURR" else "source_voltage_V"
            pattern = f":SOURce[1]:{long}[:LEVel][:IMMediate][:AMPLitude]"
            t.command(pattern, lambda v, f=function: m.set_level(f, v), level)
            t.query(pattern, lambda which=None, a=attribute, p=level: nr3(getattr(m, a) if which is None else p.named(which)),
                    Choice("MINimum", "MAXimum", "DEFault"), required=0)
            self._range_commands(f":SOURce[1]:{long}:RANGe", "", "source", function,
                                 lambda a=attribute: getattr(m, a))
        self._setting(":SOURce[1]:DELay", "source_delay_s", Numeric(0, 999.9999, default=0.0), nr3,
                      on_set=lambda _v: self._settings.__setitem__("source_delay_auto", False))
        self._setting(":SOURce[1]:DELay:AUTO", "source_delay_auto", Boolean(), _bool)
        t.command(":SOURce[1]:CLEar[:IMMediate]", lambda: m.set_output(False))
        t.command(":SOURce[1]:CLEar:AUTO", lambda v: setattr(m, "auto_output_off", v), Boolean())
        t.query(":SOURce[1]:CLEar:AUTO", lambda: _bool(m.auto_output_off))
        self._setting(":SOURce[1]:CLEar:AUTO:MODE", "auto_off_mode", Choice("ALWays", "TCOunt"), _char)

    def _range_commands(self, pattern: str, upper: str, kind: str, function: str,
                        auto_value: Callable[[], float]) -> None:
        """``<pattern>[<upper>] <n>`` picks the most sensitive range holding n and turns
        auto-range off; ``<pattern>:AUTO`` turns it on or off.

        With auto-range on, the range query answers the range ``auto_value()`` needs.
        """
        key, auto_key = f"{kind}_range:{function}", f"{kind}_range_auto:{function}"
        limit = _LIMIT[function]
        lower = 0.0 if function == "RES" else -limit

        def write(value: float) -> None:
            self._settings[key] = _range_for(function, value)
            self._settings[auto_key] = False
            measured()

        def measured(_auto: bool | None = None) -> None:
            """The model reads on the sense range: fixed, or auto-ranged (None)."""
            if kind == "sense" and function in self.model.measure_range:
                self.model.measure_range[function] = None if self._settings[auto_key] else self._settings[key]

        def query() -> str:
            if self._settings[auto_key]:
                return nr3(_range_for(function, auto_value()))
            return nr3(self._settings[key])

        self._tree.command(pattern + upper, write, Numeric(lower, limit, default=RANGES[function][-1]))
        self._tree.query(pattern + upper, query)
        self._setting(f"{pattern}:AUTO", auto_key, Boolean(), _bool, on_set=measured)

    # -- sweeps (manual §10 "Sweep operation", §18 SOURce SWEep/LIST) -----------------------
    def _declare_sweep(self) -> None:
        t = self._tree
        for function, long in _SOURCE_LONG.items():
            limit = _LIMIT[function]
            level = Numeric(-limit, limit, default=0.0)
            self._setting(f":SOURce[1]:{long}:MODE", f"source_mode:{function}",
                          Choice("FIXed", "SWEep", "LIST"), _char)
            self._setting(f":SOURce[1]:{long}:STARt", f"sweep_start:{function}", level, nr3)
            self._setting(f":SOURce[1]:{long}:STOP", f"sweep_stop:{function}", level, nr3)
            t.command(f":SOURce[1]:{long}:STEP", lambda v, f=function: self._set_step(f, v), Numeric(-2 * limit, 2 * limit))
            t.query(f":SOURce[1]:{long}:STEP", lambda f=function: nr3(self._step(f)))
            t.command(f":SOURce[1]:LIST:{long}[:VALues]", lambda *v, f=function: self._set_list(f, v, append=False),
                      level, variadic=True)
            t.query(f":SOURce[1]:LIST:{long}[:VALues]", lambda f=function: ",".join(nr3(v) for v in self._settings[f"list:{f}"]))
            t.command(f":SOURce[1]:LIST:{long}:APPend", lambda *v, f=function: self._set_list(f, v, append=True),
                      level, variadic=True)
            t.query(f":SOURce[1]:LIST:{long}:POINts", lambda f=function: _nr1(len(self._settings[f"list:{f}"])))
        self._setting(":SOURce[1]:SWEep:POINts", "sweep_points", Numeric(2, MAX_READINGS, default=MAX_READINGS, integer=True), _nr1)
        self._setting(":SOURce[1]:SWEep:SPACing", "sweep_spacing", Choice("LINear", "LOGarithmic"), _char)
        self._setting(":SOURce[1]:SWEep:RANGing", "sweep_ranging", Choice("BEST", "AUTO", "FIXed"), _char)
        self._setting(":SOURce[1]:SWEep:CABort", "sweep_abort", Choice("NEVer", "EARLy", "LATE"), _char)
        self._setting(":SOURce[1]:SWEep:DIRection", "sweep_direction", Choice("UP", "DOWN"), _char)

    def _step(self, function: str) -> float:
        span = self._settings[f"sweep_stop:{function}"] - self._settings[f"sweep_start:{function}"]
        return span / (self._settings["sweep_points"] - 1)

    def _set_step(self, function: str, step: float) -> None:
        """``:SOUR:<f>:STEP``: sets the point count to span/step + 1 (manual §18: step and
        points are two views of one setting); a step of 0 or over the span is -222."""
        span = self._settings[f"sweep_stop:{function}"] - self._settings[f"sweep_start:{function}"]
        if step == 0 or abs(step) > abs(span) > 0:
            raise ScpiError(-222)
        points = int(round(abs(span / step))) + 1
        if points > MAX_READINGS:
            raise ScpiError(-222)
        self._settings["sweep_points"] = max(points, 2)

    def _set_list(self, function: str, values: tuple[float, ...], append: bool) -> None:
        """``:SOUR:LIST:<f>`` (replace) or ``:APPend``: at most 100 values per command and
        2500 in the list (manual §18 SOURce LIST); more is -223 "Too much data"."""
        if len(values) > 100:
            raise ScpiError(-223)
        current = self._settings[f"list:{function}"] if append else ()
        if len(current) + len(values) > MAX_READINGS:
            raise ScpiError(-223)
        self._settings[f"list:{function}"] = tuple(current) + tuple(values)

    def _sweep_points(self) -> list[float] | None:
        """Source values of the sweep the trigger model steps through, None in FIXed mode.

        SWEep: linear (or logarithmic) staircase from start to stop in ``:SWE:POIN`` points
        (DOWN runs it stop to start); LIST: the source list (manual §10).
        """
        function = self.model.source_function
        mode = self._settings[f"source_mode:{function}"]
        if mode == "FIX":
            return None
        if mode == "LIST":
            return list(self._settings[f"list:{function}"])
        start, stop = self._settings[f"sweep_start:{function}"], self._settings[f"sweep_stop:{function}"]
        n = self._settings["sweep_points"]
        if self._settings["sweep_spacing"] == "LOG":
            if start <= 0 or stop <= 0:
                raise ScpiError(-221)
            values = [start * (stop / start) ** (k / (n - 1)) for k in range(n)]
        else:
            values = [start + (stop - start) * k / (n - 1) for k in range(n)]
        return values[::-1] if self._settings["sweep_direction"] == "DOWN" else values

    def _point_period_s(self) -> float:
        """One source-delay-measure cycle (manual §10): trigger delay + source delay (auto:
        1 ms) + integration time NPLC / line frequency."""
        source_delay = 1e-3 if self._settings["source_delay_auto"] else self._settings["source_delay_s"]
        return (self._settings["trigger_delay_s"] + source_delay
                + self._settings["nplc"] / self._settings["line_frequency_Hz"])

    def _start_sweep(self, points: list[float], count: int) -> None:
        """Start sourcing ``count`` points of the sweep (point k mod len(points)).

        The points run in the clock's time, one source-delay-measure cycle each
        (:meth:`_point_period_s`); with ``:SOUR:SWE:CAB EARL|LATE`` the sweep stops at the
        first reading in compliance (that reading is kept; on the instrument EARLy and
        LATE differ only in where in the cycle the abort falls). Under a virtual clock
        (see :class:`Keithley2400Simulator`) every point is taken at once; the timestamps
        are the same.
        """
        m = self.model
        function = m.source_function
        self._run = _SweepRun(
            function=function, fixed=m.source_current_A if function == "CURR" else m.source_voltage_V,
            points=points, count=count, start_s=self._now(), t0_s=m.read()[3], period_s=self._point_period_s(),
            abort_on_compliance=self._settings["sweep_abort"] != "NEV")
        self._advance()

    # -- sense (manual §18 SENSe) ----------------------------------------------------------
    def _declare_sense(self) -> None:
        t, m = self._tree, self.model
        functions = QuotedChoice("VOLTage[:DC]", "CURRent[:DC]", "RESistance")
        t.command("[:SENSe[1]]:FUNCtion[:ON]", lambda *f: self._sense_on(f), functions, variadic=True)
        t.query("[:SENSe[1]]:FUNCtion[:ON]", lambda: self._function_list(m.sense_functions))
        t.command("[:SENSe[1]]:FUNCtion:OFF", lambda *f: self._sense_off(f), functions, variadic=True)
        t.query("[:SENSe[1]]:FUNCtion:OFF", lambda: self._function_list(set(ELEMENTS[:3]) - m.sense_functions))
        t.command("[:SENSe[1]]:FUNCtion[:ON]:ALL", lambda: self._sense_on(ELEMENTS[:3]))
        t.command("[:SENSe[1]]:FUNCtion:OFF:ALL", lambda: self._sense_off(ELEMENTS[:3]))
        t.query("[:SENSe[1]]:FUNCtion[:ON]:COUNt", lambda: _nr1(len(m.sense_functions)))
        t.query("[:SENSe[1]]:FUNCtion:OFF:COUNt", lambda: _nr1(3 - len(m.sense_functions)))
        t.query("[:SENSe[1]]:FUNCtion:STATe", lambda f: _bool(f in m.sense_functions), functions)
        self._setting("[:SENSe[1]]:FUNCtion:CONCurrent", "concurrent", Boolean(), _bool, on_set=self._concurrent)
        for function in ("CURR", "VOLT"):
            limit, long = _LIMIT[function], _LONG[function]
            attribute = "compliance_A" if function == "CURR" else "compliance_V"
            protection = f"[:SENSe[1]]:{long}:PROTection[:LEVel]"
            t.command(protection, lambda v, f=function: m.set_compliance(f, v), Numeric(-limit, limit))
            t.query(protection, lambda a=attribute: nr3(getattr(m, a)))
            # Tripped: in compliance on this function, i.e. sourcing the other one.
            tripped = "VOLT" if function == "CURR" else "CURR"
            t.query(f"[:SENSe[1]]:{long}:PROTection:TRIPped",
                    lambda s=tripped: _bool(self._in_compliance() and m.source_function == s))
        for function, long in _LONG.items():
            index = ELEMENTS.index(function)
            self._range_commands(f"[:SENSe[1]]:{long}:RANGe", "[:UPPer]", "sense", function,
                                 lambda i=index: self._last_readings[-1][i] if self._last_readings else 0.0)
            self._setting(f"[:SENSe[1]]:{long}:NPLCycles", "nplc", Numeric(0.01, 10, default=1.0), nr3)
        self._setting("[:SENSe[1]]:RESistance:MODE", "resistance_mode", Choice("MANual", "AUTO"), _char)
        self._setting("[:SENSe[1]]:AVERage[:STATe]", "filter", Boolean(), _bool)
        self._setting("[:SENSe[1]]:AVERage:TCONtrol", "filter_type", Choice("REPeat", "MOVing"), _char)
        self._setting("[:SENSe[1]]:AVERage:COUNt", "filter_count", Numeric(1, 100, default=10, integer=True), _nr1)

    @staticmethod
    def _function_list(functions: set[str]) -> str:
        return ",".join(_FUNCTION_REPLY[f] for f in ELEMENTS[:3] if f in functions)

    def _sense_on(self, functions: tuple[str, ...]) -> None:
        """Enable measurement functions; without concurrent measurements (manual §18
        ``:FUNCtion:CONCurrent``) only one may be on, and the new one replaces the old."""
        wanted = set(functions)
        if not self._settings["concurrent"]:
            if len(wanted) > 1:
                raise ScpiError(-221)
            self.model.sense_functions = wanted
        else:
            self.model.sense_functions = self.model.sense_functions | wanted

    def _sense_off(self, functions: tuple[str, ...]) -> None:
        self.model.sense_functions = self.model.sense_functions - set(functions)

    def _concurrent(self, enabled: bool) -> None:
        if not enabled and len(self.model.sense_functions) > 1:
            first = next(f for f in ELEMENTS if f in self.model.sense_functions)
            self.model.sense_functions = {first}

    def _in_compliance(self) -> bool:
        return bool(self._last_readings and self._last_readings[-1][4] & STATUS_COMPLIANCE)

    # -- measurement (manual §17) ----------------------------------------------------------
    def _declare_measurement(self) -> None:
        t = self._tree
        t.query(":READ", lambda: self._format(self._acquire()))
        t.query(":FETCh", self._fetch)
        t.command(":INITiate[:IMMediate]", self._initiate)
        t.command(":ABORt", self._abort)
        t.query(":MEASure", lambda: self._measure(None))
        t.query(":CONFigure", lambda: self._function_list(self.model.sense_functions))
        for function, long in _LONG.items():
            t.query(f":MEASure:{long}", lambda f=function: self._measure(f))
            t.command(f":CONFigure:{long}", lambda f=function: self._configure(f))

    def _acquire(self, wait: bool = True) -> list[Reading]:
        """Run the trigger model once (arm count × trigger count source-measure cycles).

        In FIXed source mode the readings are taken at once. A sweep (SWEep or LIST mode)
        runs in the clock's time: with ``wait`` (``:READ?``) this returns when it ends or
        is aborted; without (``:INIT``) it returns at once and the sweep goes on.
        """
        if not (self.model.output_enabled or self.model.auto_output_off):
            raise ScpiError(*ERROR_OUTPUT_OFF)
        count = self._settings["arm_count"] * self._settings["trigger_count"]
        points = self._sweep_points()
        if points is None:
            readings = [self.model.read() for _ in range(count)]
            self._store(readings)
            self._last_readings = readings
            return readings
        self._start_sweep(points, count)
        if not wait:
            return []
        self._wait_idle()
        return self._last_readings

    def _store(self, readings: list[Reading]) -> None:
        """Compliance event bit, and the buffer with ``:TRAC:FEED:CONT NEXT`` up to
        ``:TRAC:POIN``; a full buffer sets bit 9 of the measurement event register and
        feed control returns to NEVer (manual §9, §15)."""
        if any(r[4] & STATUS_COMPLIANCE for r in readings):
            self._registers["MEAS"].event |= MEAS_COMPLIANCE
        if self._settings["feed_control"] == "NEXT":
            room = self._settings["buffer_points"] - len(self._buffer)
            self._buffer.extend(readings[:max(room, 0)])
            if len(self._buffer) >= self._settings["buffer_points"]:
                self._settings["feed_control"] = "NEV"
                self._registers["MEAS"].event |= MEAS_BUFFER_FULL

    def _initiate(self) -> None:
        if self._settings["arm_source"] == "BUS":
            if not (self.model.output_enabled or self.model.auto_output_off):
                raise ScpiError(*ERROR_OUTPUT_OFF)
            self._waiting_for_bus_trigger = True
        else:
            self._acquire(wait=False)

    def _bus_trigger(self) -> None:
        if self._waiting_for_bus_trigger:
            self._waiting_for_bus_trigger = False
            self._acquire(wait=False)

    def _fetch(self) -> str:
        if not self._last_readings:
            raise ScpiError(-230)
        return self._format(self._last_readings)

    def _configure(self, function: str | None) -> None:
        """``:CONF:<f>`` (manual §17): function on, one-shot trigger model, output on."""
        if function is not None:
            self._sense_on((function,))
        self._settings.update(arm_source="IMM", trigger_source="IMM", arm_count=1, trigger_count=1,
                              trigger_delay_s=0.0, feed_control="NEV", auto_zero=True)
        self._waiting_for_bus_trigger = False
        self.model.set_output(True)

    def _measure(self, function: str | None) -> str:
        self._configure(function)
        try:
            return self._format(self._acquire())
        finally:
            if self.model.auto_output_off:
                self.model.set_output(False)

    def _format(self, readings: list[Reading], time_origin_s: float = 0.0, delta: bool = False) -> str:
        """Readings as the 2400 sends them: the ``:FORM:ELEM`` elements of each, in the
        order V, I, R, TIME, STAT, all comma-separated (manual §18 FORMat)."""
        selected = [i for i, name in enumerate(ELEMENTS) if name in self._settings["elements"]]
        fields = []
        previous_t = readings[0][3] if readings else 0.0
        for reading in readings:
            for i in selected:
                value = reading[i]
                if i == 3:
                    value = value - (previous_t if delta else time_origin_s)
                fields.append(nr3(value))
            previous_t = reading[3]
        return ",".join(fields)

    # -- trigger model (manual §18 ARM, TRIGger) -------------------------------------------
    def _declare_trigger_model(self) -> None:
        arm, trigger = ":ARM[:SEQuence[1]][:LAYer[1]]", ":TRIGger[:SEQuence[1]]"
        count = Numeric(1, MAX_READINGS, default=1, integer=True)
        self._setting(f"{arm}:COUNt", "arm_count", count, _nr1,
                      check=lambda n: self._check_counts(n * self._settings["trigger_count"]))
        self._setting(f"{trigger}:COUNt", "trigger_count", count, _nr1,
                      check=lambda n: self._check_counts(n * self._settings["arm_count"]))
        self._setting(f"{arm}:SOURce", "arm_source",
                      Choice("IMMediate", "TLINk", "TIMer", "MANual", "BUS", "NSTest", "PSTest", "BSTest"), _char)
        self._setting(f"{trigger}:SOURce", "trigger_source", Choice("IMMediate", "TLINk"), _char)
        self._setting(f"{arm}:TIMer", "arm_timer_s", Numeric(0.001, 99999.99, default=0.1), nr3)
        self._setting(f"{trigger}:DELay", "trigger_delay_s", Numeric(0, 999.9999, default=0.0), nr3)
        line = Numeric(1, 4, default=1, integer=True)
        for layer, name in ((arm, "arm"), (trigger, "trigger")):
            self._setting(f"{layer}:ILINe", f"{name}_input_line", line, _nr1)
            self._setting(f"{layer}:OLINe", f"{name}_output_line", line, _nr1)
        self._setting(f"{arm}:OUTPut", "arm_output", Choice("TENTer", "TEXit", "NONE"), _char_list, variadic=True)
        self._setting(f"{trigger}:OUTPut", "trigger_output", Choice("SOURce", "DELay", "SENSe", "NONE"),
                      _char_list, variadic=True)
        self._setting(f"{trigger}:INPut", "trigger_input", Choice("SOURce", "DELay", "SENSe", "NONE"),
                      _char_list, variadic=True)
        self._tree.command(":TRIGger:CLEar", lambda: None)

    @staticmethod
    def _check_counts(readings: int) -> None:
        """Arm count × trigger count may not exceed 2500 (manual §18 ARM:COUNt)."""
        if readings > MAX_READINGS:
            raise ScpiError(-221)

    # -- buffer and statistics (manual §18 TRACe, CALCulate3) ------------------------------
    def _declare_buffer(self) -> None:
        t = self._tree
        self._setting(":TRACe:POINts", "buffer_points", Numeric(1, MAX_READINGS, default=100, integer=True), _nr1)
        t.query(":TRACe:POINts:ACTual", lambda: _nr1(len(self._buffer)))
        t.command(":TRACe:CLEar", self._buffer.clear)
        self._setting(":TRACe:FEED", "feed", Choice("SENSe[1]", "CALCulate1", "CALCulate2"), _char)
        self._setting(":TRACe:FEED:CONTrol", "feed_control", Choice("NEXT", "NEVer"), _char)
        self._setting(":TRACe:TSTamp:FORMat", "timestamp_format", Choice("ABSolute", "DELTa"), _char)
        t.query(":TRACe:DATA", self._buffer_data)
        self._setting(":CALCulate3:FORMat", "statistic", Choice("MEAN", "SDEViation", "MAXimum", "MINimum", "PKPK"), _char)
        t.query(":CALCulate3:DATA", self._statistics)

    def _buffer_data(self) -> str:
        """Buffer readings; timestamps relative to the first stored reading (ABSolute) or
        to the previous one (DELTa), manual §9 "Timestamp format"."""
        if not self._buffer:
            raise ScpiError(-230)
        delta = self._settings["timestamp_format"] == "DELT"
        return self._format(self._buffer, time_origin_s=self._buffer[0][3], delta=delta)

    def _statistics(self) -> str:
        """``:CALC3:FORM`` statistic of each buffered V, I, R element selected by
        ``:FORM:ELEM`` (manual §9 "Buffer statistics"); 9.91e37 entries are skipped."""
        if not self._buffer:
            raise ScpiError(-230)
        statistic = {"MEAN": statistics.fmean, "SDEV": lambda v: statistics.stdev(v) if len(v) > 1 else 0.0,
                     "MAX": max, "MIN": min, "PKPK": lambda v: max(v) - min(v)}[self._settings["statistic"]]
        results = []
        for i, name in enumerate(ELEMENTS[:3]):
            if name in self._settings["elements"]:
                values = [r[i] for r in self._buffer if r[i] != NOT_A_NUMBER]
                results.append(nr3(statistic(values) if values else NOT_A_NUMBER))
        return ",".join(results)

    # -- format, status and system (manual §18 FORMat, STATus, SYSTem) ---------------------
    def _declare_format_status_system(self) -> None:
        t = self._tree
        self._setting(":FORMat[:DATA]", "data_format", Choice("ASCii"), _char)
        t.command(":FORMat:ELEMents[:SENSe[1]]", lambda *e: self._settings.__setitem__("elements", frozenset(e)),
                  Choice("VOLTage", "CURRent", "RESistance", "TIME", "STATus"), variadic=True)
        t.query(":FORMat:ELEMents[:SENSe[1]]", lambda: ",".join(e for e in ELEMENTS if e in self._settings["elements"]))
        t.command(":STATus:PRESet", self._status_preset)
        for name, long in (("MEAS", "MEASurement"), ("QUES", "QUEStionable"), ("OPER", "OPERation")):
            register = self._registers[name]
            t.query(f":STATus:{long}[:EVENt]", lambda r=register: _nr1(self._take_event(r)))
            t.command(f":STATus:{long}:ENABle", lambda v, r=register: setattr(r, "enable", v),
                      Numeric(0, 65535, integer=True))
            t.query(f":STATus:{long}:ENABle", lambda r=register: _nr1(r.enable))
            t.query(f":STATus:{long}:CONDition", lambda n=name: _nr1(self._condition(n)))
        for error_queue in (":STATus:QUEue[:NEXT]", ":SYSTem:ERRor[:NEXT]"):
            t.query(error_queue, self.errors.pop)
        t.command(":STATus:QUEue:CLEar", self.errors.clear)
        t.command(":SYSTem:ERRor:CLEar", self.errors.clear)
        t.query(":SYSTem:ERRor:ALL", self._all_errors)
        t.query(":SYSTem:ERRor:COUNt", lambda: _nr1(len(self.errors)))
        t.command(":SYSTem:PRESet", self._reset)
        t.query(":SYSTem:VERSion", lambda: SCPI_VERSION)
        t.command(":SYSTem:TIME:RESet", self.model.reset_timestamp)
        t.command(":SYSTem:AZERo[:STATe]", self._auto_zero, Boolean("ONCE"))
        t.query(":SYSTem:AZERo[:STATe]", lambda: _bool(self._settings["auto_zero"]))
        t.command(":SYSTem:LFRequency", self._line_frequency, Numeric(50, 60, integer=True))
        t.query(":SYSTem:LFRequency", lambda: _nr1(self._settings["line_frequency_Hz"]))
        self._setting(":SYSTem:LFRequency:AUTO", "line_frequency_auto", Boolean(), _bool)
        self._setting(":SYSTem:RSENse", "remote_sense", Boolean(), _bool)
        t.command(":SYSTem:BEEPer[:IMMediate]", lambda _hz, _s: None, Numeric(65, 2e6), Numeric(0, 7.9))
        self._setting(":SYSTem:BEEPer:STATe", "beeper", Boolean(), _bool)
        for mode in ("LOCal", "REMote", "RWLock"):
            t.command(f":SYSTem:{mode}", lambda: None)
        self._setting(":ROUTe:TERMinals", "terminals", Choice("FRONt", "REAR"), _char)
        self._setting(":DISPlay:ENABle", "display", Boolean(), _bool)

    def _status_preset(self) -> None:
        """``:STAT:PRES``: enable registers of the measurement, questionable and operation
        sets cleared (manual §18 STATus)."""
        for register in self._registers.values():
            register.enable = 0

    @staticmethod
    def _take_event(register: _EventRegister) -> int:
        value, register.event = register.event, 0
        return value

    def _condition(self, name: str) -> int:
        if name == "MEAS":
            return (MEAS_COMPLIANCE if self._in_compliance() else 0) | (
                MEAS_BUFFER_FULL if len(self._buffer) >= self._settings["buffer_points"] else 0)
        return 0

    def _all_errors(self) -> str:
        entries = [self.errors.pop() for _ in range(len(self.errors))]
        return ",".join(entries) if entries else self.errors.pop()

    def _auto_zero(self, value: bool | str) -> None:
        """ON/OFF sets the auto-zero state; ``ONCE`` forces one auto-zero and leaves it."""
        if value != "ONCE":
            self._settings["auto_zero"] = value

    def _line_frequency(self, hz: int) -> None:
        if hz not in (50, 60):
            raise ScpiError(-224)
        self._settings["line_frequency_Hz"] = hz


# -- transports ------------------------------------------------------------------------------

class _CommandFramer:
    """Splits a byte stream into commands at any of ``terminators``; ``discard`` bytes are
    dropped and ``clear`` bytes throw away the command being received (RS-232 ^C/^X,
    manual §14 "RS-232 interface")."""

    def __init__(self, terminators: bytes, discard: bytes = b"", clear: bytes = b"") -> None:
        self._terminators = terminators
        self._discard = discard
        self._clear = clear
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[str]:
        if self._discard:
            data = data.translate(None, self._discard)
        commands = []
        start = 0
        for i, byte in enumerate(data):
            if byte in self._terminators:
                self._pending += data[start:i]
                if self._pending.strip():
                    commands.append(self._pending.decode("latin-1").strip())
                self._pending.clear()
                start = i + 1
            elif byte in self._clear:
                self._pending.clear()
                start = i + 1
        self._pending += data[start:]
        return commands


def _answer(sim: Keithley2400Simulator, command: str) -> str | None:
    """``sim.handle(command)``; a simulator bug is logged, not allowed to kill the server."""
    try:
        return sim.handle(command)
    except Exception:
        log.exception("Keithley 2400 simulator failed on %r", command)
        return None


class _Dispatcher:
    """Runs a connection's commands in order in a worker thread, so the transport reads on
    while a command waits for a sweep to end; a ``:ABORt`` is run at once, ahead of the
    queued commands, as the 2400 does (manual §11 "Idle and initiate").

    ``answer(command)`` returns the reply or None; ``send(reply)`` delivers a reply.
    """

    def __init__(self, sim: Keithley2400Simulator, answer: Callable[[str], str | None],
                 send: Callable[[str], None], name: str) -> None:
        self._sim, self._answer, self._send = sim, answer, send
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def feed(self, command: str) -> None:
        if is_abort(command):
            _answer(self._sim, command)
        else:
            self._queue.put(command)

    def _work(self) -> None:
        while (command := self._queue.get()) is not None:
            reply = self._answer(command)
            if reply is not None:
                try:
                    self._send(reply)
                except OSError:
                    return

    def close(self) -> None:
        self._queue.put(None)


#: What :meth:`TcpServer.reply_garbage` sends instead of a reply: line noise, then LF.
GARBAGE_REPLY = b"\xff\xfe#\x00@!\x1b[0m\n"


class TcpServer(LoopbackServer):
    """Serves a :class:`Keithley2400Simulator` on a loopback TCP socket, in daemon threads
    (:class:`drivers.sim.server.LoopbackServer`).

    Commands end with LF, CR or CRLF; replies end with LF (the 2400's GPIB terminator,
    manual App. G). Several clients may connect; they share the one instrument.

    Args:
        sim: the simulated instrument.
        host: an IPv4 loopback address; anything else raises ValueError.
        port: 0 picks a free port (see :attr:`address`).
    """

    def __init__(self, sim: Keithley2400Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        self._hang_until = 0.0  # wall clock (time.monotonic)
        self._down_until = 0.0
        self._garbage_left = 0
        super().__init__(host, port, name="k2400-tcp")

    def serve_connection(self, sock: socket.socket) -> None:
        """SCPI lines in, replies out, through a :class:`_Dispatcher` (``:ABORt`` jumps the queue)."""
        if time.monotonic() < self._down_until:  # powered off: the connection goes nowhere
            sock.close()
            return
        framer = _CommandFramer(b"\r\n")

        def send(reply: str) -> None:
            if self._garbage_left > 0:
                self._garbage_left -= 1
                sock.sendall(GARBAGE_REPLY)
            else:
                sock.sendall(reply.encode("latin-1") + b"\n")

        dispatcher = _Dispatcher(self.sim, lambda c: _answer(self.sim, c), send, "k2400-tcp-worker")
        try:
            while data := sock.recv(65536):
                for command in framer.feed(data):
                    if time.monotonic() < self._hang_until:
                        continue  # hung: commands vanish, nothing comes back
                    dispatcher.feed(command)
        finally:
            dispatcher.close()

    # -- fault injection (wall-clock durations), for the lost-instrument tests ----------------
    # drop_connections() (LoopbackServer) cuts every open connection, as a pulled cable or a
    # rebooted LAN bridge does.

    def hang(self, duration_s: float) -> None:
        """Swallow every command for ``duration_s`` without replying (a wedged instrument)."""
        self._hang_until = time.monotonic() + duration_s

    def reply_garbage(self, count: int = 1) -> None:
        """Replace the next ``count`` replies with bytes that are no SCPI reply."""
        self._garbage_left = count

    def power_cycle(self, off_s: float = 0.0) -> None:
        """Mains off and on: output off, ``*RST`` state, error queue empty, connections cut,
        and for ``off_s`` new connections are closed at once."""
        self._down_until = time.monotonic() + off_s
        self.sim.handle(":ABOR")
        self.sim.handle("*RST;*CLS")
        self.drop_connections()

    @property
    def resource(self) -> str:
        """VISA resource string, e.g. ``TCPIP::127.0.0.1::50123::SOCKET``."""
        host, port = self.address
        return f"TCPIP::{host}::{port}::SOCKET"


class PtyServer:
    """Serves a :class:`Keithley2400Simulator` on a pseudo-terminal: the RS-232 path.

    The slave side (:attr:`device`, e.g. ``/dev/pts/5``) is in raw mode; open it with
    pyserial or pyvisa-py (:attr:`resource`). Commands end with CR — the 2400 processes
    input after CR and ignores LF (manual §14 "RS-232 interface"); ^C or ^X drops a
    partly received command. Replies end with ``reply_terminator`` (CR by default; the
    2400's selectable TX terminator is CR, CR+LF, LF or LF+CR). Baud rate and framing
    set on the device are ignored. Unix only.
    """

    def __init__(self, sim: Keithley2400Simulator, reply_terminator: str = "\r") -> None:
        self.sim = sim
        self.reply_terminator = reply_terminator
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.device = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"k2400-pty-{self.device}", daemon=True)
        self._thread.start()

    @property
    def resource(self) -> str:
        """VISA resource string, e.g. ``ASRL/dev/pts/5::INSTR``."""
        return f"ASRL{self.device}::INSTR"

    def _serve(self) -> None:
        framer = _CommandFramer(b"\r", discard=b"\n", clear=b"\x03\x18")

        def send(reply: str) -> None:
            if not self._write((reply + self.reply_terminator).encode("latin-1")):
                raise OSError("pty closed")

        dispatcher = _Dispatcher(self.sim, lambda c: _answer(self.sim, c), send, f"k2400-pty-worker-{self.device}")
        try:
            while True:
                ready, _, _ = select.select([self._master, self._wake_r], [], [])
                if self._wake_r in ready:
                    return
                try:
                    data = os.read(self._master, 4096)
                except OSError:
                    return
                for command in framer.feed(data):
                    dispatcher.feed(command)
        finally:
            dispatcher.close()

    def _write(self, data: bytes) -> bool:
        """Write all of ``data`` to the master side; False once the pty is closed."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._master, view):]
        except OSError:
            return False
        return True

    def close(self) -> None:
        """Stop serving and close the pseudo-terminal."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=1.0)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            os.close(fd)

    def __enter__(self) -> PtyServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
