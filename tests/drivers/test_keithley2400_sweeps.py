"""2400 sweeps and buffer on the simulator (manual §10, §18) and the driver's sweep_voltage."""

from __future__ import annotations

import pytest

from drivers.keithley2400 import Keithley2400
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from drivers.sim.smu import Resistor


@pytest.fixture
def sim():
    return Keithley2400Simulator(Resistor(1000.0))


def _values(reply: str) -> list[float]:
    return [float(x) for x in reply.split(",")]


def test_staircase_sweep_read_in_one_transfer(sim):
    for command in ("*RST", ":SOUR:FUNC VOLT", ":SENS:CURR:PROT 0.01", ":SOUR:VOLT:MODE SWE", ":SOUR:VOLT:STAR -1",
                    ":SOUR:VOLT:STOP 1", ":SOUR:VOLT:STEP 0.5", ":SOUR:SWE:SPAC LIN", ":SOUR:SWE:RANG BEST"):
        sim.handle(command)
    assert sim.handle(":SOUR:SWE:POIN?") == "5"
    sim.handle(":TRIG:COUN 5;:OUTP ON")
    values = _values(sim.handle(":READ?"))
    assert values[0::5] == pytest.approx([-1, -0.5, 0, 0.5, 1])
    assert values[1::5] == pytest.approx([-1e-3, -0.5e-3, 0, 0.5e-3, 1e-3])
    assert values[3::5] == sorted(values[3::5])  # timestamps advance point by point
    assert sim.model.source_voltage_V == 0.0  # back to the bias level
    assert sim.handle(":SYST:ERR?") == '0,"No error"'


def test_list_sweep_into_the_buffer_and_the_list_limits(sim):
    sim.handle("*RST;:SOUR:FUNC VOLT;:SENS:CURR:PROT 0.01;:SOUR:VOLT:MODE LIST")
    sim.handle(":SOUR:LIST:VOLT " + ",".join(["0.1"] * 100))
    sim.handle(":SOUR:LIST:VOLT:APP 0.2,0.3")
    assert sim.handle(":SOUR:LIST:VOLT:POIN?") == "102"
    sim.handle(":SOUR:LIST:VOLT:APP " + ",".join(["0.1"] * 101))
    assert sim.handle(":SYST:ERR?").startswith("-223")
    sim.handle(":TRIG:COUN 102;:TRAC:CLE;:TRAC:POIN 102;:TRAC:FEED SENS;:TRAC:FEED:CONT NEXT;:OUTP ON;:INIT")
    values = _values(sim.handle(":TRAC:DATA?"))
    assert len(values) == 5 * 102 and values[-5] == pytest.approx(0.3)


def test_abort_on_compliance_stops_the_sweep(sim):
    sim.handle("*RST;:SOUR:FUNC VOLT;:SENS:CURR:PROT 1e-3;:SOUR:VOLT:MODE LIST;:SOUR:LIST:VOLT 0.5,1.5,2,3")
    sim.handle(":SOUR:SWE:CAB EARL;:TRIG:COUN 4;:OUTP ON")
    values = _values(sim.handle(":READ?"))
    assert len(values) == 10 and int(values[-1]) & 8  # stopped at the first compliance
    sim.handle(":SOUR:SWE:CAB NEV")
    assert len(_values(sim.handle(":READ?"))) == 20


def test_driver_sweep_voltage_2500_points_and_compliance_abort(sim):
    with TcpServer(sim) as server:
        smu = Keithley2400(server.resource, timeout_ms=2000)
        try:
            with pytest.raises(RuntimeError, match="configure_voltage_source"):
                smu.sweep_voltage([0.1], 1e-3)
            smu.configure_voltage_source(1e-2, nplc=0.01)
            points = [round(-2 + 4 * k / 2499, 6) for k in range(2500)]
            readings = smu.sweep_voltage(points, 1e-2, nplc=0.01)
            assert len(readings) == 2500 and not any(r.compliance for r in readings)
            assert [r.current_A for r in readings[:3]] == pytest.approx([v / 1000 for v in points[:3]])
            assert not smu.output_enabled  # found off, left off
            readings = smu.sweep_voltage([0.5, 1.0, 1.5, 2.0], 1e-3, abort_on_compliance=True)
            assert len(readings) == 3 and readings[-1].compliance
            assert max(abs(r.current_A) for r in readings) <= 1e-3
            with pytest.raises(ValueError, match="1–2500 points"):
                smu.sweep_voltage([0.0] * 2501, 1e-3)
            smu.check_errors()
        finally:
            smu.close()


def test_a_sweep_aborted_mid_way_returns_what_was_measured_and_the_output_is_off():
    """Real-time clock: :ABOR reaches the 2400 while *OPC? waits behind the sweep (manual §11)."""
    import threading
    import time

    from labctl.engine import ScaledClock

    clock = ScaledClock(1.0)
    sim = Keithley2400Simulator(Resistor(1000.0), now=clock.now)
    with TcpServer(sim) as server:
        smu = Keithley2400(server.resource, timeout_ms=2000)
        try:
            smu.configure_voltage_source(1e-2)
            points = [0.001 * k for k in range(500)]  # 500 × (1 ms + 1/60 s) ≈ 8.8 s
            abort = threading.Event()
            aborted_at: list[float] = []

            def stop_after_20_points() -> None:  # the operator's stop, once the sweep is under way
                while sim.points_taken < 20:
                    time.sleep(0.005)
                aborted_at.append(time.monotonic())
                abort.set()

            stopper = threading.Thread(target=stop_after_20_points, daemon=True)
            stopper.start()
            readings = smu.sweep_voltage(points, 1e-2, nplc=1.0, source_delay_s=1e-3, abort=abort)
            latency_s = time.monotonic() - aborted_at[0]
            assert latency_s < 4.0, latency_s  # at once, not the ~8 s the rest of the sweep would take
            assert 20 <= len(readings) < len(points)
            assert [r.voltage_V for r in readings] == pytest.approx(points[:len(readings)])
            assert sim.model.output_enabled is False and not smu.output_enabled
            assert not sim.sweeping
            smu.check_errors()
            # afterwards a normal sweep still returns every point in one transfer
            readings = smu.sweep_voltage(points[:20], 1e-2, nplc=0.01)
            assert len(readings) == 20
        finally:
            smu.close()
