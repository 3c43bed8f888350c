"""The BINDER chamber driver: exact MODBus frames against a scripted chamber, then the driver
against the simulated chamber over loopback on a virtual clock (lag, soak, abort, timeouts,
limits), and what happens when the chamber cannot be reached.

Frames are written out in hex and their CRC-16 computed here, from the techspec's
definition (§2.8), not by pymodbus.
"""

from __future__ import annotations

import inspect
import socket
import threading
import time

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.framer import FramerType

from drivers.base import InstrumentError, InstrumentLost, TemperatureChamber
from drivers.chamber import BinderChamber, open_chamber, parse_address
from drivers.sim.chamber import BinderMB1Simulator, ChamberServer
from drivers.sim.physics.chamber import ChamberParameters
from labctl.engine.clock import VirtualClock

pytestmark = pytest.mark.timeout(30)


# -- exact frames ------------------------------------------------------------------------------

def crc16(data: bytes) -> int:
    """CRC-16 of a MODBus RTU frame: start 0xFFFF, reflected polynomial 0xA001 (techspec §2.8)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def frame(hex_text: str) -> bytes:
    """An RTU frame from its hex digits, with its CRC appended low byte first."""
    body = bytes.fromhex(hex_text)
    return body + crc16(body).to_bytes(2, "little")


def test_the_crc_helper_matches_a_frame_from_the_wire():
    # read 2 registers from 0x11A9 of slave 1, as a BINDER client sends it
    assert frame("01 03 11A9 0002") == bytes.fromhex("010311A9 0002 1117")


class ScriptedChamber:
    """A TCP peer that expects ``script``'s requests in order and sends each reply (None: none).

    :attr:`received` holds every request as it arrived, for the test to compare.
    """

    def __init__(self, script: list[tuple[bytes, bytes | None]]) -> None:
        self.script = script
        self.received: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        conn.settimeout(10.0)  # generous for a loaded machine: the driver closing ends it at once
        with conn:
            for request, reply in self.script:
                data = b""
                try:
                    while len(data) < len(request):
                        chunk = conn.recv(len(request) - len(data))
                        if not chunk:
                            break
                        data += chunk
                except TimeoutError:
                    pass
                self.received.append(data)
                if data != request:
                    return
                if reply is not None:
                    conn.sendall(reply)
            try:  # anything more the driver sends is a failure too
                extra = conn.recv(256)
            except TimeoutError:
                extra = b""
            if extra:
                self.received.append(extra)

    def close(self) -> list[bytes]:
        """Wait for the peer to finish; the requests received."""
        self._thread.join(timeout=5)
        self._listener.close()
        return self.received


def scripted(script: list[tuple[bytes, bytes | None]], **options) -> tuple[BinderChamber, ScriptedChamber]:
    peer = ScriptedChamber(script)
    return BinderChamber(peer.address, **({"timeout_s": 5.0} | options)), peer


def test_temperature_is_process_value_1_a_float_low_word_first():
    chamber, peer = scripted([(frame("01 03 11A9 0002"), frame("01 03 04 0000 41CC"))])  # 25.5 = 0x41CC0000
    assert chamber.temperature_C() == 25.5
    chamber.close()
    assert peer.close() == [frame("01 03 11A9 0002")]


def test_set_point_goes_to_the_manual_set_point_then_manual_mode_is_switched_on():
    script = [
        (frame("01 10 1581 0002 04 0000 41F0"), frame("01 10 1581 0002")),  # 30.0 °C = 0x41F00000
        (frame("01 03 1A22 0001"), frame("01 03 02 0000")),                  # idle
        (frame("01 06 1A22 0800"), frame("01 06 1A22 0800")),                # manual on
        (frame("01 03 1077 0002"), frame("01 03 04 0000 41F0")),             # in effect: 30.0
    ]
    chamber, peer = scripted(script)
    chamber.set_temperature_C(30.0)
    chamber.close()
    assert peer.close() == [request for request, _ in script]


def test_a_chamber_already_in_manual_mode_gets_no_mode_write():
    script = [
        (frame("01 10 1581 0002 04 0000 C120"), frame("01 10 1581 0002")),  # -10.0 °C = 0xC1200000
        (frame("01 03 1A22 0001"), frame("01 03 02 0800")),
        (frame("01 03 1077 0002"), frame("01 03 04 0000 C120")),
    ]
    chamber, peer = scripted(script)
    chamber.set_temperature_C(-10.0)
    chamber.close()
    assert peer.close() == [request for request, _ in script]


def test_the_slave_address_is_the_first_byte_of_every_frame():
    chamber, peer = scripted([(frame("05 03 1077 0002"), frame("05 03 04 0000 4270"))], unit_id=5)  # 60.0
    assert chamber.setpoint_C() == 60.0
    chamber.close()
    assert peer.close() == [frame("05 03 1077 0002")]


def test_a_refusal_is_an_instrument_error_with_binders_error_text():
    chamber, peer = scripted([(frame("01 10 1581 0002 04 0000 4316"), frame("01 90 03"))])  # 150.0 °C
    with pytest.raises(InstrumentError) as refused:
        chamber.set_temperature_C(150.0)
    assert not isinstance(refused.value, InstrumentLost)
    assert str(refused.value) == (f"{peer.address}: set point 150 °C: the chamber refused it, error 3 "
                                  "(parameter value outside range of values)")
    chamber.close()
    peer.close()


def test_a_set_point_the_chamber_does_not_take_up_is_refused():
    # a program runs: the manual set point is stored but 0x1077 shows the program's
    script = [
        (frame("01 10 1581 0002 04 0000 4248"), frame("01 10 1581 0002")),  # 50.0
        (frame("01 03 1A22 0001"), frame("01 03 02 0400")),                  # program mode
        (frame("01 06 1A22 0800"), frame("01 06 1A22 0800")),
        (frame("01 03 1077 0002"), frame("01 03 04 0000 41C8")),             # 25.0 in effect
        (frame("01 03 1A22 0001"), frame("01 03 02 0400")),
    ]
    chamber, peer = scripted(script)
    with pytest.raises(InstrumentError, match=r"set point 50 °C written, but the chamber controls to 25 °C \(mode program\)"):
        chamber.set_temperature_C(50.0)
    chamber.close()
    assert peer.close() == [request for request, _ in script]


@pytest.mark.parametrize("setpoint_C", [95.5, -20.5, float("nan"), float("inf")])
def test_set_points_outside_the_chambers_range_are_refused_before_anything_is_sent(setpoint_C):
    chamber, peer = scripted([], min_setpoint_C=-20.0, max_setpoint_C=95.0)
    with pytest.raises(InstrumentError) as refused:
        chamber.set_temperature_C(setpoint_C)
    message = str(refused.value)
    assert message.startswith(f"{peer.address}: set point ") and "\n" not in message
    assert ("-20 … 95 °C" in message) or ("not a finite number" in message)
    chamber.close()
    assert peer.close() == []


def test_a_non_finite_reading_is_an_instrument_error():
    chamber, peer = scripted([(frame("01 03 11A9 0002"), frame("01 03 04 0000 7FC0"))])  # NaN
    with pytest.raises(InstrumentError, match="read temperature: the chamber reports nan"):
        chamber.temperature_C()
    chamber.close()
    peer.close()


def test_a_read_answered_with_function_0x04_is_accepted():
    # techspec §2.9.1: the reply to "read n words" may carry function code 0x04
    chamber, peer = scripted([(frame("01 03 11A9 0002"), frame("01 04 04 0000 41CC"))])
    assert chamber.temperature_C() == 25.5
    chamber.close()
    peer.close()


def test_a_chamber_that_stops_answering_is_lost_after_the_timeout():
    chamber, peer = scripted([(frame("01 03 11A9 0002"), None)], timeout_s=0.3)
    t0 = time.monotonic()
    with pytest.raises(InstrumentLost, match=rf"^{peer.address}: read temperature: no reply"):
        chamber.temperature_C()
    assert 0.3 <= time.monotonic() - t0 < 5.0
    chamber.close()
    assert peer.close() == [frame("01 03 11A9 0002")]


def test_an_address_nobody_listens_on_is_lost_naming_it():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    with pytest.raises(InstrumentLost) as lost:
        BinderChamber(f"127.0.0.1:{port}", timeout_s=1.0)
    assert str(lost.value) == f"127.0.0.1:{port}: cannot connect to the chamber at 127.0.0.1:{port}"


@pytest.mark.parametrize("address", ["", "host:port", "host:0", "a b:10001", ":10001"])
def test_malformed_addresses_are_one_line(address):
    with pytest.raises(ValueError, match=r"chamber address .*: expected host\[:port\]"):
        parse_address(address)


@pytest.mark.parametrize("options, message", [
    (dict(timeout_s=0.0), "chamber 127.0.0.1:1: timeout_s must be a finite number > 0, got 0.0"),
    (dict(min_setpoint_C=50.0, max_setpoint_C=20.0), "chamber 127.0.0.1:1: min_setpoint_C 50 °C is not below max_setpoint_C 20 °C"),
    (dict(max_setpoint_C=float("inf")), "chamber 127.0.0.1:1: max_setpoint_C must be finite, got inf"),
    (dict(unit_id=0), "chamber 127.0.0.1:1: unit_id must be 1…247, got 0"),
])
def test_bad_options_are_one_line_naming_the_chamber(options, message):
    with pytest.raises(ValueError) as bad:
        BinderChamber("127.0.0.1:1", **options)
    assert str(bad.value) == message


def test_the_port_defaults_to_the_framings():
    assert parse_address("192.168.1.20") == ("192.168.1.20", 10001)
    assert parse_address("192.168.1.20", "tcp") == ("192.168.1.20", 502)
    assert parse_address("chamber.lab:4001") == ("chamber.lab", 4001)


# -- against the simulator -----------------------------------------------------------------------

@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def serve(clock):
    """serve(**params) → (simulator, server) on the virtual clock; closed after the test."""
    servers: list[ChamberServer] = []

    def start(framing: str = "rtu", **params) -> tuple[BinderMB1Simulator, ChamberServer]:
        sim = BinderMB1Simulator(ChamberParameters(**params), now=clock.now)
        servers.append(ChamberServer(sim, framing=framing))
        return sim, servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def chamber(serve):
    sim, server = serve(noise_K=0.0)
    with BinderChamber(server.resource, timeout_s=10.0) as driver:
        yield driver


def test_the_driver_has_the_temperature_chamber_interface(chamber):
    def public(cls) -> dict[str, object]:
        return {name: getattr(cls, name) for name in dir(cls) if not name.startswith("_")}

    interface, driver = public(TemperatureChamber), public(BinderChamber)
    for name, member in interface.items():
        assert name in driver, name
        if callable(member):  # same parameters, same defaults where the interface gives one
            want = inspect.signature(member).parameters
            have = inspect.signature(driver[name]).parameters
            assert list(have)[:len(want)] == list(want), name
            for p in want.values():
                if p.default not in (inspect.Parameter.empty, ...):
                    assert have[p.name].default == p.default, (name, p.name)
    for name in TemperatureChamber.__annotations__:  # the attributes
        assert hasattr(chamber, name), name


def test_set_point_state_and_idn(chamber):
    assert chamber.state() == {"temperature_C": 25.0, "setpoint_C": 25.0, "mode": "manual",
                               "min_setpoint_C": -40.0, "max_setpoint_C": 180.0}
    chamber.set_temperature_C(62.5)
    assert chamber.setpoint_C() == 62.5
    assert chamber.idn == (f"BINDER chamber, MB1 controller, slave 1 at {chamber.address}: 25.0 °C, "
                           "set point 62.5 °C, manual mode")


def test_heating_ramps_at_the_rate_limit_then_approaches_with_the_time_constant(chamber, clock):
    # 25 → 60 °C at ≤ 3 K/min with τ = 300 s: a ramp until 15 K (= 3 K/min × τ) below the set
    # point, at 400 s, then 60 − 15·exp(−t/τ)
    chamber.set_temperature_C(60.0)
    seen = {}
    for t_s in (200.0, 400.0, 700.0, 1000.0):
        clock.sleep(t_s - clock.now())
        seen[t_s] = chamber.temperature_C()
    assert seen[200.0] == pytest.approx(35.0, abs=1e-4)
    assert seen[400.0] == pytest.approx(45.0, abs=1e-4)
    assert seen[700.0] == pytest.approx(60.0 - 15.0 * 0.36787944, abs=1e-4)
    assert seen[1000.0] == pytest.approx(60.0 - 15.0 * 0.13533528, abs=1e-4)


def test_cooling_is_limited_by_the_cooling_rate(chamber, clock):
    chamber.set_temperature_C(-10.0)  # 2 K/min
    clock.sleep(300.0)
    assert chamber.temperature_C() == pytest.approx(15.0, abs=1e-4)


def test_wait_stable_returns_only_after_every_reading_of_the_soak_is_in_the_band(serve, clock):
    sim, server = serve(noise_K=0.2, seed=3)  # noise comparable with the band: the soak restarts
    readings: list[tuple[float, float]] = []
    with BinderChamber(server.resource, timeout_s=10.0) as chamber:
        chamber.set_temperature_C(40.0)
        start_s = clock.now()
        assert chamber.wait_stable(0.5, 600.0, 7200.0, poll_s=10.0, now=clock.now, sleep=clock.sleep,
                                   on_reading=lambda t, T: readings.append((t, T)))
    end_s = clock.now()
    assert readings[-1][0] == end_s
    in_band = [abs(T - 40.0) <= 0.5 for _, T in readings]
    first_of_soak = len(in_band) - in_band[::-1].index(False)  # after the last reading outside
    # the soak began at the first reading after the last one outside the band, and the wait
    # ended the moment it had lasted 600 s
    assert readings[first_of_soak][0] == end_s - 600.0
    assert any(in_band[:first_of_soak - 1]), "the soak restarted at least once (noise)"
    assert all(t2 - t1 <= 10.0 + 1e-9 for (t1, _), (t2, _) in zip(readings, readings[1:]))
    assert abs(sim.temperature_C() - 40.0) < 0.5
    assert end_s - start_s > 400.0  # 15 K at 3 K/min before it can even start


def test_wait_stable_at_the_set_point_with_no_soak_returns_at_the_first_reading(chamber, clock):
    assert chamber.wait_stable(0.1, 0.0, 60.0, now=clock.now, sleep=clock.sleep)
    assert clock.now() == 0.0


def test_wait_stable_stops_when_aborted(chamber, clock):
    chamber.set_temperature_C(80.0)
    abort = threading.Event()
    readings = []

    def on_reading(t_s, temperature_C):
        readings.append(t_s)
        if len(readings) == 3:
            abort.set()

    assert chamber.wait_stable(0.5, 600.0, 7200.0, poll_s=10.0, now=clock.now, sleep=clock.sleep,
                               abort=abort, on_reading=on_reading) is False
    assert readings == [0.0, 10.0, 20.0]


def test_an_abort_wakes_a_wait_on_the_wall_clock(chamber):
    chamber.set_temperature_C(80.0)
    abort = threading.Event()
    threading.Timer(0.2, abort.set).start()
    t0 = time.monotonic()
    assert chamber.wait_stable(0.5, 600.0, 7200.0, poll_s=60.0, abort=abort) is False
    assert time.monotonic() - t0 < 10.0


def test_wait_stable_gives_up_after_the_timeout_with_one_line(chamber, clock):
    chamber.set_temperature_C(60.0)
    with pytest.raises(InstrumentError) as late:
        chamber.wait_stable(0.5, 60.0, 300.0, poll_s=10.0, now=clock.now, sleep=clock.sleep)
    assert clock.now() == 300.0
    assert str(late.value) == (f"{chamber.address}: not within ±0.5 K of 60 °C for 60 s after 300 s "
                               "(last reading 40.00 °C)")


def test_wait_stable_stops_when_the_set_point_is_changed_at_the_chamber(chamber, clock, serve):
    chamber.set_temperature_C(60.0)
    other = BinderChamber(chamber.address, timeout_s=10.0)

    def operator_at_the_panel(t_s, _temperature_C):
        if t_s == 30.0:
            other.set_temperature_C(20.0)

    with pytest.raises(InstrumentError, match="the set point changed at the chamber from 60 °C to 20 °C while waiting"):
        chamber.wait_stable(0.5, 60.0, 3600.0, now=clock.now, sleep=clock.sleep, on_reading=operator_at_the_panel)
    other.close()


def test_wait_stable_stops_when_the_chamber_is_switched_idle(chamber, clock):
    chamber.set_temperature_C(60.0)
    host, port = parse_address(chamber.address)
    panel = ModbusTcpClient(host, port=port, framer=FramerType.RTU, timeout=10, retries=0)
    panel.connect()

    def idle(t_s, _temperature_C):
        if t_s == 20.0:
            assert not panel.write_register(0x1A22, 0, device_id=1).isError()

    with pytest.raises(InstrumentError, match="the chamber is idle: it will not reach 60 °C"):
        chamber.wait_stable(0.5, 60.0, 3600.0, now=clock.now, sleep=clock.sleep, on_reading=idle)
    panel.close()


@pytest.mark.parametrize("bad", [dict(tolerance_K=0.0), dict(soak_s=-1.0), dict(timeout_s=float("nan")),
                                 dict(poll_s=0.0), dict(soak_s=600.0, timeout_s=300.0)])
def test_wait_stable_refuses_bad_numbers(chamber, bad):
    args = dict(tolerance_K=0.5, soak_s=60.0, timeout_s=600.0) | bad
    with pytest.raises(ValueError):
        chamber.wait_stable(args.pop("tolerance_K"), args.pop("soak_s"), args.pop("timeout_s"), **args)


def test_the_chambers_own_range_refuses_what_the_driver_was_told_to_allow(serve):
    sim, server = serve(max_setpoint_C=100.0)
    with BinderChamber(server.resource, timeout_s=10.0, max_setpoint_C=180.0) as chamber:
        with pytest.raises(InstrumentError) as refused:
            chamber.set_temperature_C(120.0)
        assert str(refused.value) == (f"{server.resource}: set point 120 °C: the chamber refused it, error 3 "
                                      "(parameter value outside range of values)")
        assert chamber.setpoint_C() == 25.0


def test_a_chamber_that_goes_away_is_lost_and_reconnect_finds_it_again(serve, clock):
    sim, server = serve(noise_K=0.0)
    host, port = server.address
    chamber = BinderChamber(server.resource, timeout_s=10.0)
    chamber.set_temperature_C(30.0)
    server.close()
    with pytest.raises(InstrumentLost, match=rf"^{server.resource}: read temperature: no reply"):
        chamber.temperature_C()
    restarted = ChamberServer(sim, port=port)  # the same chamber, its interface back
    try:
        chamber.reconnect()
        assert chamber.setpoint_C() == 30.0
    finally:
        chamber.close()
        restarted.close()


def test_modbus_tcp_framing(serve):
    sim, server = serve(framing="tcp", noise_K=0.0)
    with open_chamber(server.resource, framing="tcp", min_setpoint_C=-40.0, max_setpoint_C=180.0) as chamber:
        chamber.set_temperature_C(45.0)
        assert chamber.setpoint_C() == 45.0
        assert sim.setpoint_C == 45.0


def test_open_chamber_names_unknown_drivers():
    with pytest.raises(ValueError, match="chamber 127.0.0.1:1: no chamber driver 'espec'; known: binder"):
        open_chamber("127.0.0.1:1", driver="espec", min_setpoint_C=0.0, max_setpoint_C=100.0)
