"""The Keithley 2400 simulator: its SCPI parser, its command set, and pymeasure over the wire.

Real sockets on 127.0.0.1 and a real pseudo-terminal; no hardware.
"""

from __future__ import annotations

import socket
import time

import pytest
import pyvisa
from pymeasure.instruments.keithley import Keithley2400

from drivers.sim.keithley2400 import Keithley2400Simulator, PtyServer, TcpServer
from drivers.sim.physics.cell import CELL_PRESETS
from drivers.sim.scpi import Boolean, Choice, CommandTree, ErrorQueue, Numeric, QuotedChoice, String
from drivers.sim.smu import STATUS_COMPLIANCE, Resistor

pytestmark = pytest.mark.timeout(10)


@pytest.fixture
def sim() -> Keithley2400Simulator:
    return Keithley2400Simulator(Resistor(1000.0))


def errors(sim: Keithley2400Simulator) -> list[str]:
    """Drain the error queue through :SYST:ERR? until 0,"No error"."""
    found = []
    while (entry := sim.handle(":SYST:ERR?")) != '0,"No error"':
        found.append(entry)
    return found


def floats(reply: str) -> list[float]:
    return [float(x) for x in reply.split(",")]


# -- the generic parser ------------------------------------------------------------------

@pytest.fixture
def tree() -> tuple[CommandTree, dict]:
    """A toy instrument: one of each parameter type."""
    state: dict = {}
    t = CommandTree(ErrorQueue(capacity=3))
    t.command(":SOURce[1]:CURRent[:LEVel][:IMMediate][:AMPLitude]", lambda v: state.__setitem__("i", v),
              Numeric(-1.05, 1.05, default=0.0))
    t.query(":SOURce[1]:CURRent[:LEVel][:IMMediate][:AMPLitude]", lambda: f"{state.get('i', 0.0):g}")
    t.command(":SOURce[1]:VOLTage", lambda v: state.__setitem__("v", v), Numeric(-210, 210))
    t.command("[:SENSe[1]]:VOLTage[:DC]:PROTection[:LEVel]", lambda v: state.__setitem__("prot", v), Numeric(0, 210))
    t.command(":OUTPut[1][:STATe]", lambda b: state.__setitem__("out", b), Boolean())
    t.command(":SOURce[1]:FUNCtion[:MODE]", lambda f: state.__setitem__("func", f), Choice("VOLTage", "CURRent"))
    t.command(":FORMat:ELEMents", lambda *e: state.__setitem__("elem", e),
              Choice("VOLTage", "CURRent", "RESistance", "TIME", "STATus"), variadic=True)
    t.command(":SENSe:FUNCtion", lambda *f: state.__setitem__("sense", f), QuotedChoice("VOLTage[:DC]", "CURRent[:DC]"),
              variadic=True)
    t.command(":DISPlay:TEXT", lambda s: state.__setitem__("text", s), String())
    t.command(":CALCulate3:FORMat", lambda s: state.__setitem__("calc", s), Choice("MEAN", "SDEViation"))
    t.query("*IDN", lambda: "toy")
    return t, state


def test_long_and_short_forms_any_case(tree):
    t, state = tree
    t.execute(":SOURCE:CURRENT:LEVEL:IMMEDIATE:AMPLITUDE 1e-3")
    assert state["i"] == 1e-3
    t.execute(":sour:curr:lev -2.5E-02")
    assert state["i"] == -0.025
    t.execute(":Source1:Curr +1.000E-03")
    assert state["i"] == 1e-3
    assert t.execute(":SOUR:CURR?") == "0.001"
    t.execute(":CALC3:FORM SDEVIATION")
    assert state["calc"] == "SDEV"
    assert len(t.errors) == 0


def test_optional_nodes_may_be_omitted(tree):
    t, state = tree
    t.execute(":VOLT:PROT 5")
    assert state["prot"] == 5
    t.execute(":SENSE1:VOLTAGE:DC:PROTECTION:LEVEL 7.5")
    assert state["prot"] == 7.5
    t.execute(":OUTP 1;:OUTPUT:STATE OFF")
    assert state["out"] is False
    assert len(t.errors) == 0


def test_relative_paths_after_semicolon(tree):
    t, state = tree
    t.execute(":SOUR:CURR 1e-3;VOLT 2")  # VOLT is relative to :SOUR
    assert state == {"i": 1e-3, "v": 2.0}
    t.execute(":SENS:VOLT:PROT 3;*IDN?;PROT 4")  # common commands leave the path alone
    assert state["prot"] == 4
    t.execute(":SOUR:VOLT 1;PROT 9")  # no :SOUR:PROT: undefined
    assert t.errors.pop() == '-113,"Undefined header"'


def test_parameter_types(tree):
    t, state = tree
    t.execute(":SOUR:CURR MAX")
    assert state["i"] == 1.05
    t.execute(":SOUR:CURR DEF")
    assert state["i"] == 0.0
    t.execute(":OUTP ON")
    assert state["out"] is True
    t.execute(":SOUR:FUNC current")
    assert state["func"] == "CURR"
    t.execute(":FORM:ELEM VOLT, CURR, RES, TIME, STAT")
    assert state["elem"] == ("VOLT", "CURR", "RES", "TIME", "STAT")
    t.execute(""":SENS:FUNC 'VOLT',"CURR:DC";:DISP:TEXT 'a;b,c'""")
    assert state["sense"] == ("VOLT", "CURR")
    assert state["text"] == "a;b,c"
    assert t.execute("*IDN?;:SOUR:CURR?;") == "toy;0"  # replies joined with ';', trailing ';' ok
    assert len(t.errors) == 0


@pytest.mark.parametrize(("message", "code"), [
    (":SOUR:BOGUS 1", '-113,"Undefined header"'),
    (":SOUR:CURR one", '-104,"Data type error"'),
    (":SOUR:CURR 'x'", '-104,"Data type error"'),
    (":SOUR:FUNC 1", '-104,"Data type error"'),
    (":SENS:FUNC VOLT", '-104,"Data type error"'),
    (":SOUR:CURR 2", '-222,"Parameter data out of range"'),
    (":SOUR:VOLT MAX", '-104,"Data type error"'),  # MIN/MAX/DEF only where declared
    (":SOUR:CURR", '-109,"Missing parameter"'),
    (":SOUR:CURR 1,2", '-108,"Parameter not allowed"'),
    (":SOUR:FUNC RESistance", '-224,"Illegal parameter value"'),
    (":OUTP MAYBE", '-224,"Illegal parameter value"'),
    (":SENS:FUNC 'RES'", '-224,"Illegal parameter value"'),
])
def test_error_codes(tree, message, code):
    t, _ = tree
    assert t.execute(message) is None
    assert t.errors.pop() == code
    assert t.errors.pop() == '0,"No error"'


def test_compound_message_errors(tree):
    t, state = tree
    # An execution error (-222) lets the rest run; a command error (-113) ends the message.
    t.execute(":SOUR:CURR 5;:SOUR:VOLT 1;:NOPE;:SOUR:CURR 1e-3")
    assert state == {"v": 1.0}
    assert t.errors.pop() == '-222,"Parameter data out of range"'
    assert t.errors.pop() == '-113,"Undefined header"'


def test_error_queue_overflow_and_clear():
    queue = ErrorQueue(capacity=3)
    for _ in range(5):
        queue.push(-113)
    assert len(queue) == 3
    assert [queue.pop() for _ in range(4)] == ['-113,"Undefined header"'] * 2 + ['-350,"Queue overflow"', '0,"No error"']
    queue.push(-222)
    assert queue.standard_event_status == 32 | 16  # CME from -113, EXE from -222
    queue.clear()
    assert len(queue) == 0 and queue.standard_event_status == 0


def test_malformed_table_is_a_bug():
    t = CommandTree(ErrorQueue())
    t.command(":OUTPut", lambda b: None, Boolean())
    with pytest.raises(ValueError):
        t.command(":OUTPut", lambda b: None, Boolean())
    with pytest.raises(ValueError):
        t.command(":OUTPut[:STATe", lambda b: None, Boolean())


# -- the simulated 2400 ------------------------------------------------------------------

def test_idn_version_and_common_commands(sim):
    assert sim.handle("*IDN?") == "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4123456,C30   Mar 17 2006 09:29:29/A02  /K/J"
    assert sim.handle(":SYST:VERS?") == "1996.0"
    assert sim.handle("*OPC?") == "1"
    assert sim.handle("*ESR?") == "0"
    sim.handle(":BOGUS")
    assert sim.handle("*STB?") == "4"  # error available
    assert sim.handle("*ESR?") == "32"  # command error
    assert sim.handle(":SYST:ERR:NEXT?") == '-113,"Undefined header"'
    assert sim.handle("SYST:ERR?") == '0,"No error"'


def test_error_queue_holds_ten_and_cls_clears(sim):
    for _ in range(12):
        sim.handle(":BOGUS")
    assert sim.handle(":SYST:ERR:COUN?") == "10"
    assert errors(sim) == ['-113,"Undefined header"'] * 9 + ['-350,"Queue overflow"']
    sim.handle(":SOUR:CURR 5")
    sim.handle("*CLS")
    assert errors(sim) == []


def test_source_levels_and_compliance_are_range_checked(sim):
    sim.handle(":SOUR:CURR 1.06;:SOUR:VOLT -211;:SENS:VOLT:PROT 250;:SENS:CURR:PROT 2")
    assert errors(sim) == ['-222,"Parameter data out of range"'] * 4
    sim.handle(":SOUR:CURR -1.05;:SOUR:VOLT 210;:SENS:VOLT:PROT 210;:SENS:CURR:PROT 1.05")
    assert errors(sim) == []
    assert sim.handle(":SOUR:CURR?;:SOUR:VOLT?;:SENS:VOLT:PROT?;:CURR:PROT:LEV?") == (
        "-1.050000E+00;+2.100000E+02;+2.100000E+02;+1.050000E+00")


def test_reading_obeys_ohms_law_and_format_elements(sim):
    sim.handle(":SOUR:FUNC CURR;:SOUR:CURR 2e-3;:SENS:VOLT:PROT 10;:OUTP ON")
    v, i, r, t, status = floats(sim.handle(":READ?"))
    assert (v, i, r) == (pytest.approx(2.0), pytest.approx(2e-3), 9.91e37)
    assert int(status) & STATUS_COMPLIANCE == 0
    sim.handle(":FORM:ELEM STAT, VOLT")
    assert sim.handle(":FORM:ELEM?") == "VOLT,STAT"
    assert len(floats(sim.handle(":READ?"))) == 2
    sim.handle(":FORM:ELEM CURR;:TRIG:COUN 3")
    assert floats(sim.handle(":READ?")) == [pytest.approx(2e-3)] * 3
    assert errors(sim) == []


def test_readings_carry_the_resolution_of_their_measurement_range() -> None:
    """2400 specifications: 1 µV on the 200 mV range, 10 µV on 2 V, 100 µV on 20 V; 10 nA on
    the 1 mA current range. Auto-range picks the most sensitive range holding the reading."""
    sim = Keithley2400Simulator(Resistor(123.456789))
    sim.handle(":SOUR:FUNC CURR;:SENS:VOLT:PROT 10;:SENS:FUNC 'VOLT','CURR';:OUTP ON")
    for current_A, volts in ((1e-3, "0.123457"), (1e-2, "1.23457"), (5e-2, "6.1728")):
        sim.handle(f":SOUR:CURR {current_A:g}")
        v, i, *_ = floats(sim.handle(":READ?"))
        assert v == pytest.approx(float(volts), abs=1e-12) and i == pytest.approx(current_A, abs=1e-15)
    sim.handle(":SOUR:CURR 1.234567e-4;:SENS:CURR:RANG 1e-3")  # fixed 1 mA range: 10 nA
    assert floats(sim.handle(":READ?"))[1] == pytest.approx(1.2346e-4, abs=1e-15)
    sim.handle(":SENS:VOLT:RANG 20")  # fixed 20 V range: 100 µV, whatever the reading
    assert floats(sim.handle(":READ?"))[0] == pytest.approx(0.0152, abs=1e-12)
    sim.handle(":SENS:VOLT:RANG:AUTO ON")
    assert floats(sim.handle(":READ?"))[0] == pytest.approx(0.015242, abs=1e-12)


def test_compliance_clamps_voltage_and_sets_status_bit_3(sim):
    sim.handle(":SOUR:FUNC CURR;:SOUR:CURR 50e-3;:SENS:VOLT:PROT 5;:OUTP ON")
    v, i, _r, _t, status = floats(sim.handle(":READ?"))
    assert v == pytest.approx(5.0) and i == pytest.approx(5e-3)
    assert int(status) & 8 == 8
    assert sim.handle(":SENS:VOLT:PROT:TRIP?") == "1"
    assert int(sim.handle(":STAT:MEAS?")) & (1 << 14)


def test_read_with_output_off_is_refused(sim):
    assert sim.handle(":OUTP?") == "0"
    assert sim.handle(":READ?") is None
    assert errors(sim) == ['803,"Not permitted with OUTPUT off"']
    sim.handle(":SOUR:CLE:AUTO ON;:SOUR:FUNC VOLT;:SOUR:VOLT 1;:SENS:CURR:PROT 0.1")
    assert floats(sim.handle(":READ?"))[1] == pytest.approx(1e-3)  # output on for the reading only
    assert sim.handle(":OUTP?") == "0"


def test_measure_turns_the_output_on_and_off_only_with_auto_off(sim):
    sim.handle(":SOUR:FUNC VOLT;:SOUR:VOLT 2;:SENS:CURR:PROT 0.1;:SOUR:CLE:AUTO 1")
    assert floats(sim.handle(":MEAS:CURR?"))[1] == pytest.approx(2e-3)
    assert sim.handle(":OUTP?") == "0"
    sim.handle(":SOUR:CLE:AUTO OFF")
    assert floats(sim.handle(":MEAS:VOLT?"))[0] == pytest.approx(2.0)
    assert sim.handle(":OUTP?") == "1"
    assert sim.handle(':SENS:FUNC?') == '"VOLT:DC","CURR:DC"'


def test_buffer_statistics_and_buffer_full_bit(sim):
    sim.handle(":SOUR:FUNC CURR;:SOUR:CURR 1e-3;:SENS:VOLT:PROT 10;:SENS:FUNC:ALL;:OUTP ON")
    sim.handle(":STAT:PRES;*CLS;*SRE 1;:STAT:MEAS:ENAB 512;:TRAC:CLE;:TRAC:POIN 4;:TRIG:COUN 2")
    sim.handle(":TRAC:FEED SENS;:TRAC:FEED:CONT NEXT")
    sim.handle(":INIT")
    assert int(sim.handle("*STB?")) & 65 == 0 and sim.handle(":TRAC:POIN:ACT?") == "2"
    sim.handle(":INIT")
    assert int(sim.handle("*STB?")) & 65 == 65
    assert sim.handle(":TRAC:FEED:CONT?") == "NEV"
    data = floats(sim.handle(":TRAC:DATA?"))
    assert len(data) == 4 * 5 and data[3] == 0.0  # timestamps relative to the first reading
    assert floats(sim.handle(":CALC3:FORM MEAN;:CALC3:DATA?")) == pytest.approx([1.0, 1e-3, 1000.0])
    assert floats(sim.handle(":CALC3:FORM SDEV;:CALC3:DATA?")) == pytest.approx([0.0, 0.0, 0.0])
    assert sim.handle(":STAT:MEAS:EVEN?") == str(512)
    assert int(sim.handle("*STB?")) & 65 == 0
    assert errors(sim) == []


def test_bus_trigger_and_count_limits(sim):
    sim.handle(":OUTP ON;:ARM:SOUR BUS;:INIT")
    assert sim.handle(":FETC?") is None  # nothing taken yet
    assert errors(sim) == ['-230,"Data corrupt or stale"']
    sim.handle("*TRG")
    assert len(floats(sim.handle(":FETC?"))) == 5
    sim.handle(":TRIG:COUN 100;:ARM:COUN 26")
    assert sim.handle(":ARM:COUN?;:TRIG:COUN?") == "1;100"
    assert errors(sim) == ['-221,"Settings conflict"']


def test_reset_restores_defaults(sim):
    sim.handle(":SOUR:FUNC CURR;:SOUR:CURR 1e-3;:OUTP ON;:SENS:VOLT:NPLC 0.1;:FORM:ELEM VOLT;:ROUT:TERM REAR")
    sim.handle("*RST")
    assert sim.handle(":SOUR:FUNC?;:SOUR:CURR?;:OUTP?;:SENS:CURR:NPLC?;:FORM:ELEM?;:ROUT:TERM?") == (
        "VOLT;+0.000000E+00;0;+1.000000E+00;VOLT,CURR,RES,TIME,STAT;FRON")
    assert sim.handle(":SENS:VOLT:PROT?;:SENS:CURR:PROT?;:SOUR:CLE:AUTO?") == "+2.100000E+01;+1.050000E-04;0"


def test_cell_load():
    """Default load: the Li | H.L.-LLZO | Li cell: the first reading after the output turns on is
    the bulk's ohmic drop (30 mV at 1 mA), then the interfaces' double layers charge."""
    clock = [0.0]
    sim = Keithley2400Simulator(CELL_PRESETS["hl_llzo"], now=lambda: clock[0])
    sim.handle(":SOUR:FUNC CURR;:SOUR:CURR 1e-3;:SENS:VOLT:PROT 5;:OUTP ON")
    v, i, *_ = floats(sim.handle(":READ?"))
    assert i == pytest.approx(1e-3) and v == pytest.approx(0.030, abs=5e-4)
    clock[0] = 1.0
    v, i, *_ = floats(sim.handle(":READ?"))
    assert 0.10 < v < 0.13


def test_now_is_the_models_clock():
    clock = [100.0]
    sim = Keithley2400Simulator(Resistor(10.0), now=lambda: clock[0])
    sim.handle(":OUTP ON;:SYST:TIME:RES")
    clock[0] += 3600.0
    assert floats(sim.handle(":READ?"))[3] == pytest.approx(3600.0)


# -- over TCP, with pymeasure and pyvisa-py ------------------------------------------------

def test_tcp_server_refuses_non_loopback_hosts(sim):
    for host in ("0.0.0.0", "192.168.1.10", "example.org", "::1"):
        with pytest.raises(ValueError):
            TcpServer(sim, host=host)


def test_tcp_framing_and_shared_state(sim):
    with TcpServer(sim) as server:
        assert server.resource == f"TCPIP::127.0.0.1::{server.address[1]}::SOCKET"
        with socket.create_connection(server.address, timeout=2) as a, \
                socket.create_connection(server.address, timeout=2) as b:
            a.sendall(b":SOUR:VOLT 1.5\r*IDN?\r\n:SOUR:VOLT?\n")
            reply = b""
            while reply.count(b"\n") < 2:
                reply += a.recv(4096)
            assert reply.split(b"\n")[1] == b"+1.500000E+00"
            b.sendall(b":SOUR:VOLT?\n")
            assert b.recv(4096) == b"+1.500000E+00\n"


@pytest.fixture
def k2400(sim):
    with TcpServer(sim) as server:
        inst = Keithley2400(server.resource, visa_library="@py", read_termination="\n",
                            write_termination="\n", timeout=2000)
        try:
            yield inst
        finally:
            inst.adapter.close()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # apply_current/measure_voltage are deprecated
def test_pymeasure_session(k2400, sim):
    k2400.reset()
    k2400.apply_current(compliance_voltage=10)  # includes check_errors()
    k2400.measure_voltage(nplc=0.1)
    k2400.source_current = 3e-3
    assert k2400.source_current == pytest.approx(3e-3)
    assert k2400.compliance_voltage == pytest.approx(10)
    assert k2400.source_mode == "current"
    k2400.enable_source()
    assert k2400.source_enabled is True
    assert k2400.voltage == pytest.approx(3.0)  # :MEAS:VOLT?
    result = k2400.measure_all()
    assert result["voltage"] == pytest.approx(3.0) and result["current"] == pytest.approx(3e-3)
    assert result["resistance"] == pytest.approx(1000.0)
    assert result["status"] & 8 == 0
    k2400.source_current = 20e-3  # 20 V needed, compliance 10 V
    result = k2400.measure_all()
    assert result["voltage"] == pytest.approx(10.0) and result["status"] & 8 == 8
    k2400.source_current = 1e-3
    k2400.config_buffer(points=10)
    k2400.start_buffer()
    k2400.wait_for_buffer(timeout=2, interval=0.01)
    data = k2400.buffer_data
    assert data.shape == (50,)
    assert data[0::5] == pytest.approx([1.0] * 10) and data[1::5] == pytest.approx([1e-3] * 10)
    assert k2400.mean_voltage == pytest.approx(1.0) and k2400.max_current == pytest.approx(1e-3)
    k2400.wires = 4
    k2400.line_frequency = 50
    k2400.auto_zero_enabled = False
    k2400.display_enabled = True
    k2400.filter_enabled = True
    k2400.filter_count = 5
    k2400.trigger_on_bus()
    k2400.sample_continuously()
    assert (k2400.wires, k2400.line_frequency, k2400.filter_count, k2400.arm_source) == (4, 50, 5, "immediate")
    k2400.shutdown()
    assert k2400.source_enabled is False and k2400.source_current == 0
    assert k2400.next_error == [0, '"No error"']
    assert sim.handle(":SYST:ERR:COUN?") == "0"


def test_pymeasure_every_control_round_trips(k2400):
    """Every settable pymeasure control is accepted and reads back (nothing unknown is sent)."""
    values = {
        "source_delay": 0.5, "source_delay_auto_enabled": True, "auto_zero_enabled": True,
        "output_off_state": "disconnected", "auto_output_off_enabled": True, "filter_enabled": False,
        "repeat_filter_enabled": False, "filter_count": 20, "current_range": 1e-3,
        "current_range_auto_enabled": False, "compliance_current": 0.5,
        "source_current_range": 1e-2, "source_current_range_auto_enabled": False, "voltage_range": 20,
        "voltage_range_auto_enabled": False, "source_voltage": -5,
        "source_voltage_range": 200, "source_voltage_range_auto_enabled": False,
        "resistance_mode_auto_enabled": True, "resistance_range": 2e5, "resistance_range_auto_enabled": False,
        "resistance_nplc": 2, "trigger_delay": 0.25, "arm_timer": 1.5, "trigger_source": "trigger_link",
        "arm_source": "timer", "trigger_output_event": "sense", "arm_output_event": "trigger_exit",
        "trigger_input_line": 2, "arm_input_line": 3, "trigger_output_line": 4, "arm_output_line": 1,
        "display_enabled": False, "line_frequency_auto_enabled": False, "front_terminals_enabled": False,
        "buffer_points": 500, "trigger_count": 10, "arm_count": 5,
    }
    for name, value in values.items():
        setattr(k2400, name, value)
    ranges = {"current_range": 1.05e-3, "source_current_range": 1.05e-2, "voltage_range": 21,
              "source_voltage_range": 210, "resistance_range": 2.1e5}
    for name, value in values.items():
        assert getattr(k2400, name) == pytest.approx(ranges.get(name, value)), name
    assert (k2400.current_nplc, k2400.voltage_nplc) == (2, 2)  # NPLC is global (manual §18)
    k2400.source_voltage_range_auto_enabled = True  # auto range follows the level (-5 V)
    assert k2400.source_voltage_range == 21
    k2400.auto_zero_once()
    k2400.beep(1000, 0.1)
    k2400.clear_trigger()
    k2400.trigger()
    k2400.reset_buffer()
    k2400.disable_buffer()
    k2400.reset_trigger()
    k2400.clear()
    assert k2400.id.startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2400,")
    assert k2400.complete == "1" and k2400.status == "0" and k2400.options == "0"
    assert k2400.check_errors() == []


def test_read_round_trip_is_fast(k2400, sim):
    k2400.write(":OUTP ON")
    k2400.ask(":READ?")
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        k2400.ask(":READ?")
    per_read_s = (time.perf_counter() - start) / n
    assert per_read_s < 5e-3


# -- over a pseudo-terminal (RS-232 path) -------------------------------------------------

def test_pty_serial_path(sim):
    with PtyServer(sim) as server:
        assert server.resource == f"ASRL{server.device}::INSTR"
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(server.resource, write_termination="\r", read_termination="\r", timeout=2000)
        try:
            assert inst.query("*IDN?").startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2400,")
            inst.write(":SOUR:FUNC CURR;:SOUR:CURR 1e-3;:SENS:VOLT:PROT 10;:OUTP ON")
            v, i, *_ = floats(inst.query(":READ?"))
            assert (v, i) == (pytest.approx(1.0), pytest.approx(1e-3))
            assert inst.query(":SYST:ERR?") == '0,"No error"'
        finally:
            inst.close()
            rm.close()
