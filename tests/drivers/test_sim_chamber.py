"""The simulated BINDER chamber: its air model against a numerical integration, the noise, the
temperature the cell sees, and the MB1 registers' answers to a plain pymodbus client (not the
driver under test), including BINDER's error codes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse

from drivers.sim.chamber import BinderMB1Simulator, ChamberServer, float_to_words, words_to_float
from drivers.sim.physics.chamber import ChamberParameters, ChamberThermal, advance_temperature_C
from labctl.engine.clock import VirtualClock

pytestmark = pytest.mark.timeout(30)


def euler(temperature_C: float, target_C: float, dt_s: float, tau_s: float, up_K_s: float, down_K_s: float,
          step_s: float = 0.01) -> float:
    for _ in range(int(round(dt_s / step_s))):
        temperature_C += step_s * min(max((target_C - temperature_C) / tau_s, -down_K_s), up_K_s)
    return temperature_C


@pytest.mark.parametrize("start_C, target_C, dt_s", [(25.0, 60.0, 200.0), (25.0, 60.0, 900.0), (25.0, 30.0, 300.0),
                                                     (80.0, -10.0, 1500.0), (80.0, 79.0, 50.0)])
def test_the_closed_form_matches_a_numerical_integration(start_C, target_C, dt_s):
    exact = advance_temperature_C(start_C, target_C, dt_s, 300.0, 3.0 / 60, 2.0 / 60)
    assert exact == pytest.approx(euler(start_C, target_C, dt_s, 300.0, 3.0 / 60, 2.0 / 60), abs=2e-3)


def test_one_long_step_equals_many_short_ones():
    one = advance_temperature_C(20.0, 90.0, 3000.0, 300.0, 0.05, 0.03)
    many = 20.0
    for _ in range(300):
        many = advance_temperature_C(many, 90.0, 10.0, 300.0, 0.05, 0.03)
    assert one == pytest.approx(many, abs=1e-9)


def test_idle_drifts_to_ambient_with_the_idle_time_constant():
    air = ChamberThermal(ChamberParameters(start_C=60.0, ambient_C=20.0, idle_time_constant_s=3600.0), 0.0)
    air.set_target(None, 0.0)
    assert air.temperature_C(3600.0) == pytest.approx(20.0 + 40.0 / math.e)


def test_time_never_runs_backwards():
    air = ChamberThermal(ChamberParameters(), 100.0)
    air.set_target(60.0, 100.0)
    later = air.temperature_C(400.0)
    assert air.temperature_C(200.0) == later


def test_the_readings_noise_has_the_stated_spread_and_is_seeded():
    def readings(seed: int) -> np.ndarray:
        air = ChamberThermal(ChamberParameters(noise_K=0.05, seed=seed), 0.0)
        return np.array([air.reading_C(float(t)) for t in range(2000)]) - 25.0

    a = readings(1)
    assert a.std() == pytest.approx(0.05, rel=0.1)
    assert abs(a.mean()) < 0.01
    assert np.array_equal(a, readings(1)) and not np.array_equal(a, readings(2))


@pytest.mark.parametrize("change, message", [
    (dict(start_C=200.0), "start_C 200 °C is outside its set point range -40 … 180 °C"),
    (dict(time_constant_s=0.0), "time_constant_s must be > 0"),
    (dict(noise_K=-0.1), "noise_K must be ≥ 0"),
    (dict(ambient_C=math.nan), "ambient_C must be finite"),
])
def test_bad_parameters_are_one_line(change, message):
    with pytest.raises(ValueError, match=message):
        ChamberParameters(**change)


def test_floats_are_low_word_first():
    assert float_to_words(25.5) == [0x0000, 0x41CC]
    assert words_to_float([0x0000, 0xC120]) == -10.0


# -- the registers, from a plain client ----------------------------------------------------------

@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def sim(clock):
    return BinderMB1Simulator(ChamberParameters(noise_K=0.0, max_setpoint_C=100.0), now=clock.now)


@pytest.fixture
def client(sim):
    with ChamberServer(sim) as server:
        host, port = server.address
        c = ModbusTcpClient(host, port=port, framer=FramerType.RTU, timeout=10, retries=0)
        assert c.connect()
        yield c
        c.close()


def read_float(client: ModbusTcpClient, address: int) -> float:
    return words_to_float(client.read_holding_registers(address, count=2, device_id=1).registers)


def error_code(reply) -> int | None:
    return reply.exception_code if isinstance(reply, ExceptionResponse) else None


def test_power_on_is_manual_mode_at_the_start_temperature(client):
    assert client.read_holding_registers(0x1A22, count=1, device_id=1).registers == [0x0800]
    assert read_float(client, 0x11A9) == 25.0
    assert read_float(client, 0x1077) == 25.0


def test_the_set_point_in_effect_follows_the_mode(client, sim, clock):
    assert error_code(client.write_registers(0x1581, float_to_words(40.0), device_id=1)) is None
    assert error_code(client.write_registers(0x156F, float_to_words(30.0), device_id=1)) is None
    assert read_float(client, 0x1077) == 40.0
    assert error_code(client.write_register(0x1A22, 0x1000, device_id=1)) is None
    assert read_float(client, 0x1077) == 30.0
    clock.sleep(100.0)
    assert read_float(client, 0x11A9) == pytest.approx(30.0 - 5.0 * math.exp(-100.0 / 300.0), abs=1e-4)
    assert sim.temperature_C() == pytest.approx(30.0 - 5.0 * math.exp(-100.0 / 300.0))


def test_the_cell_sees_the_air_temperature_at_its_own_time(sim, clock):
    assert sim.temperature_C(0.0) == 25.0
    sim.air.set_target(60.0, 0.0)
    assert sim.temperature_C(200.0) == pytest.approx(35.0)
    assert sim.temperature_C() == pytest.approx(35.0)  # the clock's now is still 0: time does not go back


@pytest.mark.parametrize("address, words, code", [
    (0x1581, float_to_words(150.0), 3),         # above the chamber's range
    (0x1581, float_to_words(math.nan), 3),      # not a number
    (0x11A9, float_to_words(30.0), 5),          # process value: read-only
    (0x1077, float_to_words(30.0), 5),          # set point in effect: read-only
    (0x1A22, [0x0400], 3),                      # program mode: not simulated
    (0x1A22, [0x0001], 3),                      # not a mode
    (0x2000, [0x0001], 2),                      # no such parameter
])
def test_binders_error_codes(client, address, words, code):
    reply = client.write_registers(address, words, device_id=1) if len(words) == 2 else \
        client.write_register(address, words[0], device_id=1)
    assert error_code(reply) == code
    assert read_float(client, 0x1077) == 25.0
    assert client.read_holding_registers(0x1A22, count=1, device_id=1).registers == [0x0800]


def test_half_a_set_point_is_refused(client):
    assert error_code(client.write_register(0x1581, 0x4200, device_id=1)) == 3
    assert read_float(client, 0x1581) == 25.0


def test_reading_an_unknown_register_is_error_2(client):
    assert error_code(client.read_holding_registers(0x1100, count=2, device_id=1)) == 2


def test_a_server_only_listens_on_loopback(sim):
    with pytest.raises(ValueError, match="not an IPv4 loopback address"):
        ChamberServer(sim, host="0.0.0.0")


def test_a_busy_port_is_an_os_error(sim):
    with ChamberServer(sim) as first:
        with pytest.raises(OSError):
            ChamberServer(sim, port=first.address[1])
