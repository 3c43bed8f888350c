"""Our Keithley 2400 driver through pyvisa-py, against the simulator over TCP and a pty."""

from __future__ import annotations

import pytest

from drivers.base import InstrumentError, InstrumentLost
from drivers.keithley2400 import Keithley2400
from drivers.sim.keithley2400 import Keithley2400Simulator, PtyServer, TcpServer
from drivers.sim.smu import Resistor


@pytest.fixture
def sim():
    return Keithley2400Simulator(Resistor(1000.0))


@pytest.fixture
def smu(sim):
    with TcpServer(sim) as server:
        driver = Keithley2400(server.resource, timeout_ms=2000)
        yield driver
        driver.close()


def test_source_current_measure_voltage(sim, smu):
    smu.configure_current_source(10.0, nplc=0.1)
    assert sim.model.source_function == "CURR" and sim.model.compliance_V == 10.0
    smu.set_current(2e-3)
    smu.output_on()
    reading = smu.read()
    assert reading.voltage_V == pytest.approx(2.0, rel=1e-9)
    assert reading.current_A == pytest.approx(2e-3)
    assert not reading.compliance
    smu.check_errors()


def test_compliance_clamps_and_sets_the_status_bit(sim, smu):
    smu.configure_current_source(1.0)
    smu.set_current(5e-3)  # would need 5 V through 1 kΩ
    smu.output_on()
    reading = smu.read()
    assert reading.compliance and reading.status & 8
    assert reading.voltage_V == pytest.approx(1.0)
    assert reading.current_A == pytest.approx(1e-3)


def test_source_voltage_measure_current(sim, smu):
    smu.configure_voltage_source(1e-3, current_range_A=1e-3, nplc=1)
    smu.set_voltage(0.5)
    smu.output_on()
    reading = smu.read()
    assert reading.current_A == pytest.approx(0.5e-3)
    assert not reading.compliance


def test_output_on_is_refused_before_a_compliance(sim, smu):
    with pytest.raises(RuntimeError, match="compliance"):
        smu.output_on()
    assert sim.model.output_enabled is False


def test_output_off_is_confirmed_and_off_state_is_high_impedance(sim, smu):
    smu.configure_current_source(5.0)
    smu.output_on()
    assert smu.output_enabled
    smu.output_off()
    assert sim.model.output_enabled is False
    assert sim.handle(":OUTP:SMOD?") == "HIMP"


def test_impossible_settings_are_refused_before_anything_is_sent(sim, smu):
    with pytest.raises(ValueError, match=r"compliance 500 V outside"):
        smu.configure_current_source(500.0)  # beyond ±210 V
    with pytest.raises(ValueError, match=r"NPLC 20 outside"):
        smu.configure_current_source(5.0, nplc=20)
    assert sim.model.compliance_V == 21.0  # untouched *RST value


def test_an_instrument_error_names_the_address(smu):
    smu.write(":SOUR:CURR 5")  # beyond ±1.05 A: the instrument queues -222
    with pytest.raises(InstrumentError, match=r"TCPIP::127\.0\.0\.1::\d+::SOCKET: instrument reported -222"):
        smu.check_errors()


def test_reading_over_the_rs232_path_of_a_pty(sim):
    with PtyServer(sim) as server:
        smu = Keithley2400(server.resource, timeout_ms=2000)
        try:
            assert "MODEL 2400" in smu.idn
            smu.configure_current_source(5.0)
            smu.set_current(1e-3)
            smu.output_on()
            assert smu.read().voltage_V == pytest.approx(1.0)
        finally:
            smu.close()
    assert sim.model.output_enabled is False


def test_a_dead_link_is_instrument_lost():
    with pytest.raises(InstrumentLost, match=r"TCPIP::127\.0\.0\.1::9::SOCKET: connecting failed"):
        Keithley2400("TCPIP::127.0.0.1::9::SOCKET", timeout_ms=500)


def test_socket_resources_disable_nagle(smu):
    """Without TCP_NODELAY every step change waits ~40 ms for a delayed ACK."""
    import socket

    connection = smu.instrument.adapter.connection
    sock = connection.visalib.sessions[connection.session].interface
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
