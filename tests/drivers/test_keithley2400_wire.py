"""The Keithley 2400 driver at the wire: exact command/response pairs through pymeasure's own
test helper (``pymeasure.test.expected_protocol``), no simulator, no timing.

Each test lists every message the driver must send, in order, and the instrument's replies
(terminators excluded); the helper fails on a message out of order, a missing one, or one
left over. Command forms: pymeasure's ``Keithley2400`` properties (``OUTPUT 1``,
``:SENSE:VOLTAGE:PROTECTION 2``) and the driver's own SCPI (2400 manual 2400S-900-01 §10, §18).
"""

from __future__ import annotations

import math
import threading

import pytest
from pymeasure.test import expected_protocol

from drivers.base import InstrumentError, InstrumentLost
from drivers.keithley2400 import Keithley2400

ADDRESS = "GPIB0::24::INSTR"
IDN = "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4123456,C30   Mar 17 2006 09:29:29/A02  /K/J"
#: What opening sends: pymeasure's reading format (V, I, R, time, status), then *IDN?.
OPEN = [(":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None), ("*IDN?", IDN)]
NO_ERROR = ("SYST:ERR?", '0,"No error"')
#: Output off, confirmed by reading the output state back (the safe state).
OFF_CONFIRMED = [("OUTPUT 0", None), ("OUTPUT?", "0")]


def wire(pairs):
    """The driver on pymeasure's ProtocolAdapter, expecting ``OPEN`` then ``pairs``."""
    return expected_protocol(Keithley2400.from_adapter, OPEN + pairs, address=ADDRESS)


# -- configuration ---------------------------------------------------------------------------------

def test_current_source_sets_the_voltage_compliance_before_the_output_goes_on() -> None:
    with wire([
        ("OUTPUT 0", None),                          # off first, whatever it was
        (":OUTPUT:SMODE HIMP", None),                # off = high impedance: never sink the cell
        (":SOURCE:CLEAR:AUTO 0", None),              # keep the output on between readings
        (":SOURCE:FUNCTION CURR", None),
        (":SOURCE:CURRENT 0", None),
        (":SENSE:VOLTAGE:PROTECTION 2", None),       # the compliance, before any OUTPUT 1
        (":SOUR:CURR:RANG:AUTO 1", None),
        (':SENS:FUNC:CONC 1;:SENS:FUNC "VOLT","CURR";:SENS:VOLT:NPLC 1', None),
        (":SENS:VOLT:RANG:AUTO 1", None),
        NO_ERROR,
        (":SOURCE:CURRENT 0.001", None),
        ("OUTPUT 1", None),
    ]) as smu:
        assert smu.idn == IDN
        smu.configure_current_source(2.0)
        smu.set_current(1e-3)
        smu.output_on()


def test_voltage_source_with_fixed_ranges_and_fast_integration() -> None:
    with wire([
        ("OUTPUT 0", None),
        (":OUTPUT:SMODE HIMP", None),
        (":SOURCE:CLEAR:AUTO 0", None),
        (":SOURCE:FUNCTION VOLT", None),
        (":SOURCE:VOLTAGE 0", None),
        (":SENSE:CURRENT:PROTECTION 0.01", None),    # current compliance, 10 mA
        (":SOUR:VOLT:RANG 2", None),
        (':SENS:FUNC:CONC 1;:SENS:FUNC "VOLT","CURR";:SENS:CURR:NPLC 0.1', None),
        (":SENS:CURR:RANG 0.01", None),
        NO_ERROR,
        (":SOURCE:VOLTAGE -0.25", None),
    ]) as smu:
        smu.configure_voltage_source(0.01, voltage_range_V=2.0, current_range_A=0.01, nplc=0.1)
        smu.set_voltage(-0.25)


def test_an_error_in_the_queue_after_configuring_is_raised_with_its_text() -> None:
    with wire([
        ("OUTPUT 0", None), (":OUTPUT:SMODE HIMP", None), (":SOURCE:CLEAR:AUTO 0", None),
        (":SOURCE:FUNCTION CURR", None), (":SOURCE:CURRENT 0", None), (":SENSE:VOLTAGE:PROTECTION 2", None),
        (":SOUR:CURR:RANG 5", None),
        (':SENS:FUNC:CONC 1;:SENS:FUNC "VOLT","CURR";:SENS:VOLT:NPLC 1', None),
        (":SENS:VOLT:RANG:AUTO 1", None),
        ("SYST:ERR?", '-222,"Parameter data out of range"'),
        NO_ERROR,
    ]) as smu:
        reported = rf'^{ADDRESS}: instrument reported -222(\.0)?,"Parameter data out of range"$'
        with pytest.raises(InstrumentError, match=reported):
            smu.configure_current_source(2.0, current_range_A=5.0)
        with pytest.raises(RuntimeError, match="configure a compliance"):
            smu.output_on()  # the configuration failed: still no compliance, nothing sent


def test_output_on_is_refused_before_a_compliance_and_nothing_is_sent() -> None:
    with wire([]) as smu:  # only the opening: any write would fail the protocol
        with pytest.raises(RuntimeError, match=rf"^{ADDRESS}: configure a compliance limit"):
            smu.output_on()


def test_bad_compliance_or_nplc_is_refused_before_anything_is_sent() -> None:
    with wire([]) as smu:
        for call in (lambda: smu.configure_current_source(0.0), lambda: smu.configure_current_source(211.0),
                     lambda: smu.configure_voltage_source(1.1), lambda: smu.configure_current_source(2.0, nplc=20)):
            with pytest.raises(ValueError, match=ADDRESS):
                call()


def test_output_off_is_confirmed_by_reading_the_output_state_back() -> None:
    with wire(OFF_CONFIRMED) as smu:
        smu.output_off()


def test_output_still_on_after_off_is_an_instrument_error() -> None:
    with wire([("OUTPUT 0", None), ("OUTPUT?", "1")]) as smu:
        with pytest.raises(InstrumentError, match="output still on after :OUTP OFF"):
            smu.output_off()


# -- readings ---------------------------------------------------------------------------------------

def test_a_reading_is_parsed_with_its_time_status_and_compliance_bit() -> None:
    with wire([
        # V, I, R (not measured: 9.91e37), time (s), status: 38912 = V and I measured, I source
        (":READ?", "+1.000000E-01,+1.000000E-03,+9.910000E+37,+5.479400E-03,+3.891200E+04"),
        # the same with bit 3, "in real compliance" (manual Table 18-4): 38920
        (":READ?", "+2.000000E+00,+1.500000E-04,+9.910000E+37,+1.234000E+01,+3.892000E+04"),
        # voltage not measured (9.91e37) becomes NaN
        (":READ?", "+9.910000E+37,-1.000000E-03,+9.910000E+37,+1.300000E+01,+3.891200E+04"),
    ]) as smu:
        first = smu.read()
        assert first == (0.1, 1e-3, 5.4794e-3, 38912) and not first.compliance
        clamped = smu.read()
        assert clamped == (2.0, 1.5e-4, 12.34, 38920) and clamped.compliance
        missing = smu.read()
        assert math.isnan(missing.voltage_V) and missing.current_A == -1e-3


def test_a_reading_of_the_wrong_length_is_a_lost_instrument() -> None:
    with wire([(":READ?", "+1.000000E-01,+1.000000E-03,+9.910000E+37,+5.479400E-03")]) as smu:
        with pytest.raises(InstrumentLost, match=rf"^{ADDRESS}: :READ\? returned 4 values, expected 5"):
            smu.read()


# -- list sweeps on the instrument ------------------------------------------------------------------

#: Configured as a voltage source with 10 mA compliance (the sweeps' precondition).
VOLTAGE_SOURCE = [
    ("OUTPUT 0", None), (":OUTPUT:SMODE HIMP", None), (":SOURCE:CLEAR:AUTO 0", None),
    (":SOURCE:FUNCTION VOLT", None), (":SOURCE:VOLTAGE 0", None), (":SENSE:CURRENT:PROTECTION 0.01", None),
    (":SOUR:VOLT:RANG:AUTO 1", None), (':SENS:FUNC:CONC 1;:SENS:FUNC "VOLT","CURR";:SENS:CURR:NPLC 1', None),
    (":SENS:CURR:RANG:AUTO 1", None), NO_ERROR,
]
#: Three readings of a 100 Ω resistor at 0, 0.5 and 1 V: V, I, R, time, status.
BUFFER_3 = ("+0.000000E+00,+0.000000E+00,+9.910000E+37,+0.000000E+00,+2.252800E+04,"
            "+5.000000E-01,+5.000000E-03,+9.910000E+37,+1.666667E-03,+2.252800E+04,"
            "+1.000000E+00,+1.000000E-02,+9.910000E+37,+3.333333E-03,+2.252800E+04")


def _sweep_setup(points: str, count: int, *, abort_on_compliance: bool = True) -> list:
    return [
        (":SENS:CURR:PROT 0.01;:SENS:CURR:NPLC 0.1;:SOUR:DEL 0", None),
        (f":SOUR:VOLT:MODE LIST;:SOUR:SWE:RANG BEST;:SOUR:SWE:CAB {'EARL' if abort_on_compliance else 'NEV'}", None),
        (f":SOUR:LIST:VOLT {points}", None),
        (f":ARM:COUN 1;:TRIG:COUN {count}", None),
        (f":TRAC:FEED:CONT NEV;:TRAC:CLE;:TRAC:POIN {count};:TRAC:FEED SENS;:TRAC:FEED:CONT NEXT", None),
        NO_ERROR,
    ]
#: After every sweep: the source back in FIXed mode, one trigger, the buffer closed.
SWEEP_END = (":SOUR:VOLT:MODE FIX;:TRIG:COUN 1;:TRAC:FEED:CONT NEV", None)


def test_a_list_sweep_runs_on_the_instrument_and_is_read_back_in_one_transfer() -> None:
    with wire(VOLTAGE_SOURCE + [
        ("OUTPUT?", "0"),                            # found off: turned on for the sweep, off after
        *_sweep_setup("0,0.5,1", 3),
        ("OUTPUT 1", None),
        (":INIT", None),
        ("*OPC?", "1"),                              # answered when the sweep has ended
        (":TRAC:DATA?", BUFFER_3),
        SWEEP_END,
        *OFF_CONFIRMED,
    ]) as smu:
        smu.configure_voltage_source(0.01)
        readings = smu.sweep_voltage([0.0, 0.5, 1.0], 0.01, nplc=0.1, source_delay_s=0.0)
    assert [(r.voltage_V, r.current_A, r.time_s) for r in readings] == [
        (0.0, 0.0, 0.0), (0.5, 5e-3, 1.666667e-3), (1.0, 1e-2, 3.333333e-3)]
    assert not any(r.compliance for r in readings)


def test_a_sweep_found_with_the_output_on_leaves_it_on_and_long_lists_are_appended() -> None:
    hundred = ",".join(["0.5"] * 100)
    with wire(VOLTAGE_SOURCE + [
        ("OUTPUT?", "1"),
        (":SENS:CURR:PROT 0.01;:SENS:CURR:NPLC 0.1;:SOUR:DEL 0", None),
        (":SOUR:VOLT:MODE LIST;:SOUR:SWE:RANG BEST;:SOUR:SWE:CAB NEV", None),
        (f":SOUR:LIST:VOLT {hundred}", None),        # source memory in chunks of 100 (§10)
        (":SOUR:LIST:VOLT:APP 0.5", None),
        (":ARM:COUN 1;:TRIG:COUN 101", None),
        (":TRAC:FEED:CONT NEV;:TRAC:CLE;:TRAC:POIN 101;:TRAC:FEED SENS;:TRAC:FEED:CONT NEXT", None),
        NO_ERROR,
        (":INIT", None),                             # no OUTPUT 1: it is on already
        ("*OPC?", "1"),
        (":TRAC:DATA?", ",".join(["+5.000000E-01,+5.000000E-03,+9.910000E+37,+0.000000E+00,+2.252800E+04"] * 101)),
        SWEEP_END,                                   # and no OUTPUT 0 afterwards
    ]) as smu:
        smu.configure_voltage_source(0.01)
        readings = smu.sweep_voltage([0.5] * 101, 0.01, nplc=0.1, source_delay_s=0.0, abort_on_compliance=False)
    assert len(readings) == 101 and {r.current_A for r in readings} == {5e-3}


def test_a_sweep_stopped_at_compliance_returns_the_readings_up_to_the_clamped_one() -> None:
    with wire(VOLTAGE_SOURCE + [
        ("OUTPUT?", "0"),
        *_sweep_setup("0,0.5,1", 3),
        ("OUTPUT 1", None), (":INIT", None), ("*OPC?", "1"),
        # :SOUR:SWE:CAB EARL stopped the sweep at its second point, clamped at 10 mA (bit 3)
        (":TRAC:DATA?", "+0.000000E+00,+0.000000E+00,+9.910000E+37,+0.000000E+00,+2.252800E+04,"
                        "+4.000000E-01,+1.000000E-02,+9.910000E+37,+1.666667E-03,+2.253600E+04"),
        SWEEP_END, *OFF_CONFIRMED,
    ]) as smu:
        smu.configure_voltage_source(0.01)
        readings = smu.sweep_voltage([0.0, 0.5, 1.0], 0.01, nplc=0.1, source_delay_s=0.0)
    assert [r.compliance for r in readings] == [False, True] and readings[-1].current_A == 1e-2


def test_an_aborted_sweep_is_stopped_on_the_instrument_and_the_output_turned_off() -> None:
    abort = threading.Event()
    abort.set()  # set before the first poll: the abort path, deterministically
    with wire(VOLTAGE_SOURCE + [
        ("OUTPUT?", "0"),
        *_sweep_setup("0,0.5,1", 3),
        ("OUTPUT 1", None), (":INIT", None),
        ("*OPC?", None),                             # its reply is still pending when ...
        (":ABOR", None),                             # ... :ABORt stops the trigger model
        (None, "1"),                                 # then *OPC? completes
        (":OUTP OFF", None),
        (":TRAC:POIN:ACT?", "2"),                    # two points were stored
        (":TRAC:DATA?", BUFFER_3.rsplit(",", 5)[0]),
        SWEEP_END,
        *OFF_CONFIRMED,                              # and the output off is confirmed
    ]) as smu:
        smu.configure_voltage_source(0.01)
        readings = smu.sweep_voltage([0.0, 0.5, 1.0], 0.01, nplc=0.1, source_delay_s=0.0, abort=abort)
    assert [r.voltage_V for r in readings] == [0.0, 0.5]


def test_a_sweep_aborted_before_its_first_point_reads_no_buffer() -> None:
    abort = threading.Event()
    abort.set()
    with wire(VOLTAGE_SOURCE + [
        ("OUTPUT?", "0"), *_sweep_setup("0,0.5,1", 3), ("OUTPUT 1", None), (":INIT", None),
        ("*OPC?", None), (":ABOR", None), (None, "1"), (":OUTP OFF", None),
        (":TRAC:POIN:ACT?", "0"),                    # nothing stored: no :TRAC:DATA?
        SWEEP_END, *OFF_CONFIRMED,
    ]) as smu:
        smu.configure_voltage_source(0.01)
        assert smu.sweep_voltage([0.0, 0.5, 1.0], 0.01, nplc=0.1, source_delay_s=0.0, abort=abort) == []


def test_a_sweep_needs_a_voltage_source_and_sane_points_before_anything_is_sent() -> None:
    with wire([]) as smu:
        with pytest.raises(RuntimeError, match="configure_voltage_source"):
            smu.sweep_voltage([0.0, 1.0], 0.01)
        for points in ([], [0.0] * 2501, [0.0, math.inf], [0.0, 211.0]):
            with pytest.raises(ValueError, match=ADDRESS):
                smu.sweep_voltage(points, 0.01)
