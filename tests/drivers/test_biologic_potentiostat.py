"""A BioLogic channel run one technique at a time (drivers.biologic.BiologicPotentiostat) on the
simulated instrument: PEIS/GEIS spectra of the cell's impedance, a linear sweep, held levels,
compliance first, a stop confirmed. The cell's impedance is a stand-in R + R‖CPE here, so the
plumbing is tested whatever the cell physics gives."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from drivers.base import InstrumentError
from drivers.biologic import GEIS, PEIS, BiologicPotentiostat, LinearSweepCV, decode_impedance_rows
from drivers.biologic.records import ChannelState, DataInfo, IRange, TechniqueId
from drivers.sim.biologic import SimulatedBackend
from drivers.sim.physics.cell import CellParameters, SymmetricCell
from labctl.engine import VirtualClock

R0, R1, Q1, N1 = 10.0, 20.0, 1e-4, 0.9


def stand_in_impedance(self, frequency_Hz):
    """R0 + R1‖CPE (Ω): the small load the tests put behind the channel."""
    w = 2 * np.pi * np.atleast_1d(np.asarray(frequency_Hz, float))
    return R0 + R1 / (1 + R1 * Q1 * (1j * w) ** N1)


@pytest.fixture
def stand_in(monkeypatch):
    monkeypatch.setattr(SymmetricCell, "impedance_ohm", stand_in_impedance, raising=False)


@pytest.fixture
def channel(stand_in):
    clock = VirtualClock()
    backend = SimulatedBackend(1, cell=CellParameters(), now=clock.now)
    pot = BiologicPotentiostat.open("USB0/1", backend=backend)
    yield pot, clock, backend
    pot.close()


def test_peis_gives_the_cells_impedance_within_the_noise(channel):
    pot, clock, backend = channel
    t0 = clock.now()
    spectrum = pot.measure_impedance(mode="potentiostatic", initial_frequency_Hz=1e6, final_frequency_Hz=1.0,
                                     points_per_decade=10, amplitude_V=0.005, now=clock.now, sleep=clock.sleep)
    assert len(spectrum.frequency_Hz) == 61
    assert spectrum.frequency_Hz[0] == pytest.approx(1e6, rel=1e-6) and spectrum.frequency_Hz[-1] == pytest.approx(1.0)
    z = spectrum.z_real_ohm - 1j * spectrum.z_imag_neg_ohm
    expected = stand_in_impedance(None, spectrum.frequency_Hz)
    assert np.max(np.abs(z - expected) / np.abs(expected)) < 0.01  # 0.1 % noise, float32 rows
    assert np.all(np.diff(spectrum.time_s) > 0)
    # the spectrum took simulated time: (0.1 + 1) periods per frequency, the 1 Hz end dominating
    assert clock.now() - t0 == pytest.approx(np.sum(1.1 / spectrum.frequency_Hz) + 0.02 * 61, rel=0.1)
    assert backend.channel(0).state == ChannelState.STOP  # it was off before, and is left off


def test_geis_and_averaging(channel):
    pot, clock, _ = channel
    spectrum = pot.measure_impedance(mode="galvanostatic", initial_frequency_Hz=1e4, final_frequency_Hz=10.0,
                                     points_per_decade=5, amplitude_A=1e-5, average_n=4, now=clock.now,
                                     sleep=clock.sleep)
    z = spectrum.z_real_ohm - 1j * spectrum.z_imag_neg_ohm
    assert np.max(np.abs(z - stand_in_impedance(None, spectrum.frequency_Hz)) / np.abs(z)) < 0.005


def test_a_spectrum_puts_the_held_level_back(channel):
    pot, clock, backend = channel
    pot.configure_current_source(5.0)
    pot.output_on()
    pot.set_current(1e-4)
    clock.sleep(5.0)
    assert pot.read().current_A == pytest.approx(1e-4, rel=1e-6)
    pot.measure_impedance(mode="potentiostatic", initial_frequency_Hz=1e3, final_frequency_Hz=10.0,
                          points_per_decade=2, amplitude_V=0.01, now=clock.now, sleep=clock.sleep)
    clock.sleep(5.0)
    assert backend.channel(0).state == ChannelState.RUN
    assert pot.read().current_A == pytest.approx(1e-4, rel=1e-6)


def test_compliance_before_output_and_a_confirmed_stop(channel):
    pot, clock, backend = channel
    with pytest.raises(RuntimeError, match="compliance"):
        pot.output_on()
    with pytest.raises(ValueError, match="compliance_V must be a finite number > 0"):
        pot.configure_current_source(float("nan"))
    with pytest.raises(ValueError, match="10 V"):
        pot.configure_current_source(20.0)
    pot.configure_voltage_source(1e-3)
    pot.output_on()
    pot.set_voltage(0.01)
    clock.sleep(2.0)
    assert backend.channel(0).state == ChannelState.RUN
    pot.output_off()
    assert backend.channel(0).state == ChannelState.STOP
    assert pot.state()["output_on"] is False


def test_a_held_voltage_past_the_current_limit_reads_as_compliance(channel):
    pot, clock, backend = channel
    pot.configure_voltage_source(1e-4)  # 0.5 V over ~130 Ω wants ~4 mA
    pot.output_on()
    pot.set_voltage(0.5)
    clock.sleep(2.0)
    reading = pot.read()
    assert reading.compliance
    assert backend.channel(0).state == ChannelState.STOP and backend.channel(0).end_reason == "safety_limit"


def test_linear_sweep_steps_the_potential_and_stops_at_the_current_limit(channel):
    pot, clock, _ = channel
    readings = pot.linear_sweep(start_V=0.0, end_V=0.2, scan_rate_V_s=0.01, record_every_dE_V=0.005,
                                compliance_A=1.0, start_at_ocv=False, now=clock.now, sleep=clock.sleep)
    v = np.array([r.voltage_V for r in readings])
    assert len(v) == 41 and v[0] == pytest.approx(0.0, abs=1e-7) and v[-1] == pytest.approx(0.2, abs=1e-6)
    assert np.allclose(np.diff(v), 0.005, atol=1e-6)
    assert readings[-1].time_s - readings[0].time_s == pytest.approx(0.2 / 0.01, rel=1e-3)
    limited = pot.linear_sweep(start_V=0.0, end_V=2.0, scan_rate_V_s=0.1, record_every_dE_V=0.01,
                               compliance_A=2e-4, now=clock.now, sleep=clock.sleep)
    assert limited[-1].compliance and limited[-1].voltage_V < 2.0
    assert all(not r.compliance for r in limited[:-1])


def test_abort_ends_a_spectrum_at_once(channel):
    import threading

    pot, clock, _ = channel
    abort = threading.Event()

    def sleep(dt, wake=None):
        clock.sleep(dt, wake)
        if clock.now() > 3.0:
            abort.set()

    spectrum = pot.measure_impedance(mode="potentiostatic", initial_frequency_Hz=1e3, final_frequency_Hz=1e-3,
                                     points_per_decade=5, amplitude_V=0.005, now=clock.now, sleep=sleep, abort=abort)
    assert 0 < len(spectrum.frequency_Hz) < 31
    assert clock.now() < 20.0  # the whole spectrum down to 1 mHz would take ~2 h


def test_technique_parameters_and_rows():
    peis = PEIS(initial_frequency_Hz=3e6, final_frequency_Hz=1.0, frequency_number=66, amplitude_V=0.005)
    names = {p.ParamStr: p.ParamVal for p in peis.ecc_params()}
    assert names["Amplitude_Voltage"] == pytest.approx(0.005) and names["Frequency_number"] == 66
    assert names["sweep"] is False and names["vs_initial"] is True and peis.technique_id == TechniqueId.PEIS
    assert GEIS(initial_frequency_Hz=1e3, final_frequency_Hz=1.0, frequency_number=4, amplitude_A=1e-6,
                i_range=IRange.I_10uA).ecc_name == "geis"
    cv = LinearSweepCV(start_V=0.0, end_V=6.0, start_at_ocv=True, scan_rate_V_s=5e-4, record_every_dE_V=1e-3,
                       i_range=IRange.I_1mA)
    steps = [p.ParamVal for p in cv.ecc_params() if p.ParamStr == "Voltage_step"]
    assert steps == [0.0, 6.0, 6.0, 6.0, 6.0]
    with pytest.raises(ValueError, match="not impedance rows"):
        decode_impedance_rows(np.zeros(15, np.uint32), DataInfo(0, 1, 15, 0, int(TechniqueId.CP), 0, 0, 0.0), 22)


def test_the_simulator_refuses_a_dc_biased_spectrum(stand_in):
    clock = VirtualClock()
    backend = SimulatedBackend(1, now=clock.now)
    pot = BiologicPotentiostat.open("USB0/1", backend=backend)
    params = PEIS(initial_frequency_Hz=1e3, final_frequency_Hz=1.0, frequency_number=4, amplitude_V=0.005).ecc_params()
    biased = [replace(p, ParamVal=0.1) if p.ParamStr == "Initial_Voltage_step" else p for p in params]
    with pytest.raises(InstrumentError, match="open circuit"):
        pot.channel.load_techniques([_Loaded(biased)])
    pot.close()


class _Loaded:
    """A technique as the driver loads it, with given ECC parameters."""

    kind, ecc_name = "peis", "peis"

    def __init__(self, params):
        self._params = params

    def ecc_params(self):
        return self._params
