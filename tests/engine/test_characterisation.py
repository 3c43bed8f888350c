"""Characterisation steps through the one run path: impedance spectra stored in the run file,
a chamber whose soak comes before the next step and whose air sets the cell's temperature,
linear sweeps on a BioLogic channel and on a 2400, the channel made safe, one-line errors.

The cell's impedance is a stand-in (R_b(T) + R‖CPE) so these test the plumbing whatever the
cell physics gives; tests/protocols/test_characterisation_examples.py checks the seeds' numbers."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from drivers.biologic import BiologicPotentiostat
from drivers.biologic.records import ChannelState
from drivers.sim.biologic import SimulatedBackend
from drivers.sim.physics.cell import CellParameters, SymmetricCell
from labctl.app.run import load_checked, run_protocol
from labctl.engine import SoftwareTimedExecutor, VirtualClock
from labctl.events import Readings, Spectrum
from labctl.steps import ConstantCurrent, Impedance, LinearSweep, Rest, SafetyLimits, SetTemperature, StepProgram
from labctl.store import RunFile
from labctl.yamlfile import FileError
from tests.conftest import make_smu

R_B, R_CT, Q, N = 10.0, 20.0, 1e-4, 0.9


def stand_in_impedance(self, frequency_Hz):
    """R_b (∝ 1/T in K, so a temperature change shows) + R_ct‖CPE, Ω."""
    w = 2 * np.pi * np.atleast_1d(np.asarray(frequency_Hz, float))
    r_b = R_B * 298.15 / (self.params.temperature_C + 273.15)
    return r_b + R_CT / (1 + R_CT * Q * (1j * w) ** N)


@pytest.fixture(autouse=True)
def stand_in(monkeypatch):
    monkeypatch.setattr(SymmetricCell, "impedance_ohm", stand_in_impedance, raising=False)


CELL = {"area_cm2": 1.0, "electrolyte": "stand-in", "electrolyte_thickness_um": 100.0, "li_thickness_um": 100.0,
        "stack_pressure_MPa": 0.1, "temperature_C": 25.0}


def _write(tmp_path: Path, data: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"name": "test", "instrument": "pot", "cell": CELL, **data}, sort_keys=False))
    return path


def test_an_eis_run_stores_its_spectra_and_names_the_results(tmp_path):
    path = _write(tmp_path, {"kind": "eis", "rest_before_s": 60, "spectra": 2, "interval_s": 30,
                             "impedance": {"initial_frequency_Hz": 1e5, "final_frequency_Hz": 1.0},
                             "fit": {"circuit": "Rb-(Rct|CPE)", "conductivity_from": "bulk"}})
    result = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "eis.h5")
    assert result.outcome.status == "completed"
    with h5py.File(result.path, "r") as f:
        group = f["spectra/pot"]
        assert {k: group[k].attrs["units"] for k in ("frequency_Hz", "z_real_ohm", "z_abs_ohm", "phase_deg")} == \
            {"frequency_Hz": "Hz", "z_real_ohm": "Ohm", "z_abs_ohm": "Ohm", "phase_deg": "deg"}
        assert sorted(set(group["spectrum_index"][:])) == [0, 1]
        assert len(group["frequency_Hz"]) == 2 * 51
        steps = {int(s) for s in group["step_index"][:]}
        assert steps == {1, 3}  # rest, EIS, rest between, EIS
    results = result.results
    assert results["bulk_resistance_ohm_cm2"] == pytest.approx(R_B, rel=0.02)
    assert results["charge_transfer_resistance_ohm_cm2"] == pytest.approx(R_CT, rel=0.02)
    assert results["ionic_conductivity_S_cm"] == pytest.approx(100e-4 / R_B, rel=0.02)
    assert len(results["per_spectrum"]["bulk_resistance_ohm_cm2"]) == 2
    with RunFile(result.path) as run:
        assert run.results()["bulk_resistance_ohm_cm2"] == pytest.approx(results["bulk_resistance_ohm_cm2"])


def test_the_soak_ends_before_the_next_step_and_the_chamber_sets_the_cells_temperature(tmp_path):
    path = _write(tmp_path, {"kind": "sequence", "record_interval_s": 30, "fit": {"circuit": "Rb-(Rct|CPE)"},
                             "parts": [{"eis": {"initial_frequency_Hz": 1e5, "final_frequency_Hz": 1.0,
                                                "label": "EIS 25"}},
                                       {"set_temperature": {"temperature_C": 55, "soak_min": 20, "label": "to 55"}},
                                       {"eis": {"initial_frequency_Hz": 1e5, "final_frequency_Hz": 1.0,
                                                "label": "EIS 55"}}]})
    result = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "t.h5")
    assert result.outcome.status == "completed", result.outcome.reason
    with RunFile(result.path) as run:
        steps = {s["label"]: s for s in run.steps()}
        events = run.events()
    stable = next(e for e in events if e["kind"] == "temperature_stable")
    soak = steps["to 55"]
    assert soak["end_s"] - soak["start_s"] >= 20 * 60 + 30 * 60 / 3  # 30 K at ≤ 3 K/min, then the 20 min soak
    assert steps["EIS 55"]["start_s"] >= soak["end_s"] >= stable["t_s"] - 1e-6
    r25 = result.results["parts"]["EIS 25"]["bulk_resistance_ohm_cm2"][0]
    r55 = result.results["parts"]["EIS 55"]["bulk_resistance_ohm_cm2"][0]
    assert r55 / r25 == pytest.approx(298.15 / 328.15, rel=0.01)  # the cell was at 55 °C (±0.5 K)


def test_a_set_point_beyond_the_chamber_ends_the_run_naming_it(tmp_path):
    path = _write(tmp_path, {"kind": "sequence", "parts": [{"set_temperature": {"temperature_C": 250}},
                                                            {"rest": {"duration_s": 60}}]})
    result = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "hot.h5")
    assert result.outcome.status == "error"
    assert "outside the chamber's range" in result.outcome.reason and "127.0.0.1:" in result.outcome.reason
    assert [s["kind"] for s in result.outcome.steps] == []  # the rest never started


def test_an_lsv_run_on_the_simulated_channel(tmp_path):
    path = _write(tmp_path, {"kind": "lsv", "rest_before_s": 60, "start_at_ocv": False, "start_V": 0.0, "end_V": 0.3,
                             "scan_rate_mV_s": 5, "record_every_mV": 5, "onset_threshold_uA_cm2": 1000,
                             "limits": {"voltage_limit_V": 1.0, "current_limit_mA": 100}})
    result = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "lsv.h5")
    assert result.outcome.status == "completed", result.outcome.reason
    with RunFile(result.path) as run:
        cols = run.columns("pot")
    sweep = cols["step_index"] == 1
    assert np.allclose(np.diff(cols["voltage_V"][sweep]), 0.005, atol=1e-6)
    assert np.all(np.diff(cols["test_time_s"][sweep]) == pytest.approx(1.0))
    assert "oxidation_onset_V" in result.results


@pytest.mark.parametrize(("data", "expected"), [
    ({"kind": "eis", "impedance": {"amplitude_mV": -5}}, r"impedance\.amplitude_mV: must be > 0"),
    ({"kind": "eis", "impedance": {"initial_frequency_Hz": 1e9}}, r"impedance\.initial_frequency_Hz: must be <= 7"),
    ({"kind": "eis", "fit": {"circuit": "R-C"}}, r"fit\.circuit: .*unknown circuit 'R-C'"),
    ({"kind": "arrhenius", "temperatures_C": [25, 25, 40]}, r"at least 3 distinct temperatures"),
    ({"kind": "arrhenius", "temperatures_C": [25, 40, float("nan")]}, r"temperatures_C\.2: .*finite"),
    ({"kind": "dc_polarisation", "bias_mV": 1500, "duration_h": 1}, r"bias_mV 1500 exceeds limits\.voltage_limit_V"),
    ({"kind": "lsv", "end_V": 6.0, "scan_rate_mV_s": 0.5, "limits": {"voltage_limit_V": 5}}, r"end_V 6 exceeds"),
    ({"kind": "transference_number", "hold_h": 0.1}, r"window_s must be shorter"),
    ({"kind": "sequence", "parts": [{"rest": {"duration_s": 1, "label": "a"}}, {"rest": {"duration_s": 1, "label": "a"}}]},
     r"labelled 'a'"),
])
def test_bad_values_give_one_line(tmp_path, data, expected):
    path = _write(tmp_path, data)
    with pytest.raises(FileError) as info:
        load_checked(path)
    assert len(info.value.lines) == 1
    assert info.value.lines[0].startswith("p.yaml")
    import re
    assert re.search(expected, info.value.lines[0]), info.value.lines[0]


def _potentiostat(clock):
    backend = SimulatedBackend(1, cell=CellParameters(), now=clock.now)
    return BiologicPotentiostat.open("USB0/1", backend=backend), backend


def test_make_safe_stops_the_channel_on_a_stop_mid_spectrum_series():
    clock = VirtualClock()
    pot, backend = _potentiostat(clock)
    program = StepProgram(steps=[ConstantCurrent(current_A=1e-4, duration_s=3600, record_interval_s=10),
                                 Impedance(initial_frequency_Hz=1e4, final_frequency_Hz=0.01, amplitude_V=0.005),
                                 Rest(duration_s=600, record_interval_s=10)],
                          area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))
    seen: list = []

    def subscriber(event):
        seen.append(event)
        if isinstance(event, Readings) and len(seen) > 3:
            executor.request_stop("test stop")

    executor = SoftwareTimedExecutor(pot, clock, channel="pot", subscribers=[subscriber], publish_interval_s=0.0)
    outcome = executor.run(program)
    assert outcome.status == "stopped"
    assert backend.channel(0).state == ChannelState.STOP
    assert not any(isinstance(e, Spectrum) for e in seen)


def test_a_spectrum_event_per_impedance_step_and_the_cell_at_open_circuit():
    clock = VirtualClock()
    pot, backend = _potentiostat(clock)
    step = Impedance(initial_frequency_Hz=1e4, final_frequency_Hz=1.0, amplitude_V=0.005, points_per_decade=5)
    program = StepProgram(steps=[Rest(duration_s=60, record_interval_s=10), step, step,
                                 Rest(duration_s=60, record_interval_s=10)],
                          area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))
    events: list = []
    outcome = SoftwareTimedExecutor(pot, clock, channel="pot", subscribers=[events.append]).run(program)
    assert outcome.status == "completed"
    spectra = [e for e in events if isinstance(e, Spectrum)]
    assert [(s.spectrum_index, s.step_index) for s in spectra] == [(0, 1), (1, 2)]
    assert len(spectra[0].frequency_Hz) == 21
    readings = np.concatenate([e.columns["current_A"] for e in events if isinstance(e, Readings)])
    assert np.all(readings == 0.0)  # open circuit before, between and after
    assert backend.channel(0).state == ChannelState.STOP


def test_impedance_and_chamber_steps_need_their_instruments(clock):
    smu = make_smu(clock)
    imp = StepProgram(steps=[Impedance(initial_frequency_Hz=1e4, final_frequency_Hz=1.0, amplitude_V=0.005)],
                      area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))
    with pytest.raises(ValueError, match="impedance-capable instrument"):
        SoftwareTimedExecutor(smu, clock).run(imp)
    hot = StepProgram(steps=[SetTemperature(temperature_C=40)], area_cm2=1.0,
                      safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))
    with pytest.raises(ValueError, match="temperature chamber"):
        SoftwareTimedExecutor(smu, clock).run(hot)


def test_a_linear_sweep_on_a_2400_is_a_timed_staircase(clock):
    from drivers.keithley2400 import Keithley2400
    from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
    from drivers.sim.smu import Resistor

    server = TcpServer(Keithley2400Simulator(Resistor(1000.0), now=clock.now))
    smu = Keithley2400(server.resource, timeout_ms=5000)
    program = StepProgram(steps=[LinearSweep(start_V=0.0, end_V=0.1, scan_rate_V_s=0.01, record_every_dE_V=0.01),
                                 Rest(duration_s=10, record_interval_s=1)],
                          area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.1))
    events: list = []
    try:
        outcome = SoftwareTimedExecutor(smu, clock, subscribers=[events.append]).run(program)
    finally:
        smu.close()
        server.close()
    assert outcome.status == "completed", outcome.reason
    batch = next(e for e in events if isinstance(e, Readings) and e.columns["step_index"][0] == 0)
    assert np.allclose(batch.columns["voltage_V"], np.linspace(0, 0.1, 11), atol=2e-3)
    assert np.allclose(np.diff(batch.columns["test_time_s"]), 1.0)
    rest = np.concatenate([e.columns["current_A"] for e in events if isinstance(e, Readings)
                           and e.columns["step_index"][0] == 1])
    assert np.allclose(rest, 0.0, atol=1e-9)  # back at 0 A afterwards
    assert np.allclose(batch.columns["current_A"], batch.columns["voltage_V"] / 1000.0, rtol=1e-3, atol=1e-9)


def test_a_stopped_eis_run_resumes_after_its_last_spectrum(tmp_path):
    from labctl.app.run import resume_run

    path = _write(tmp_path, {"kind": "eis", "rest_before_s": 60, "spectra": 3, "interval_s": 60,
                             "impedance": {"initial_frequency_Hz": 1e4, "final_frequency_Hz": 1.0},
                             "fit": {"circuit": "Rb-(Rct|CPE)"}})
    engines: list = []

    def stop_after_first_spectrum(event):
        if isinstance(event, Spectrum):
            engines[0].request_stop("test stop")

    first = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "r.h5",
                         subscribers=[stop_after_first_spectrum], on_engine=engines.append)
    assert first.outcome.status == "stopped"
    resumed = resume_run(first.path)
    assert resumed.outcome.status == "completed", resumed.outcome.reason
    with RunFile(first.path) as run:
        indices = [int(s["spectrum_index"][0]) for s in run.spectra("pot")]
        steps = [int(s["step_index"][0]) for s in run.spectra("pot")]
    assert indices == [0, 1, 2]
    assert steps == [1, 3, 5]  # the first spectrum is not measured again
