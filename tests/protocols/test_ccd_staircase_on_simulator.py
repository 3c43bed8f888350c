"""CCD staircases end to end: protocol file → engine → our driver → pyvisa-py → TCP → simulator."""

from __future__ import annotations

import math
import random

import pytest
import yaml

from drivers.keithley2400 import Keithley2400
from drivers.sim.physics.cell import CellParameters
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from labctl.steps import ConstantCurrent, SafetyLimits, StepProgram
from labctl.engine import SoftwareTimedExecutor, VirtualClock
from labctl.events import StepStarted
from labctl.app.run import run_protocol
from labctl.store import RunFile
from tests.conftest import EXAMPLES

BASE = yaml.safe_load((EXAMPLES / "ccd_llzo.yaml").read_text())


def staircase_case(seed: int) -> tuple[dict, dict, float]:
    """A random cell with its CCD in 0.1–9 mA cm⁻² (log-uniform), a staircase spanning it,
    and the CCD the staircase must report: the highest of its steps at or below the cell's."""
    rng = random.Random(seed)
    ccd = 10 ** rng.uniform(math.log10(0.1), math.log10(9.0))
    step = float(f"{ccd / rng.uniform(4, 12):.2g}")
    ratio = ccd / step
    if abs(ratio - round(ratio)) < 0.05:  # keep the true CCD clear of a staircase step
        ccd = (round(ratio) + 0.5) * step
    stop = float(f"{ccd * rng.uniform(1.3, 1.8) + step:.3g}")
    area = rng.choice([0.5, 1.0, 1.13, 2.0])
    protocol = {
        **BASE,
        "start_mA_cm2": step, "step_mA_cm2": step, "stop_mA_cm2": stop,
        "areal_capacity_mAh_cm2": 0.05, "record_interval_s": 0.05 * 3600 / stop / 10,
        "cell": {**BASE["cell"], "area_cm2": area},
        # The 1 mV default floor is above a healthy cell's |V| at 0.01 mA cm⁻²: an operator
        # running such low steps lowers it, as here (the lowest healthy |V| is ≥ 0.3 mV).
        "detection": {**BASE["detection"], "floor_V": 1e-4},
    }
    del protocol["half_cycle_s"]
    cell = {"ccd_mA_cm2": ccd, "seed": seed, "interfacial_asr_ohm_cm2": rng.uniform(5, 60),
            "ionic_conductivity_S_cm": 10 ** rng.uniform(-3.5, -3.0)}
    expected = round(math.floor(ccd / step + 1e-9) * step, 9)
    return protocol, cell, expected


@pytest.mark.parametrize("seed", range(20))
def test_staircase_finds_the_configured_ccd_step(tmp_path, seed):
    protocol, cell, expected = staircase_case(seed)
    path = tmp_path / "ccd.yaml"
    path.write_text(yaml.safe_dump(protocol))
    result = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "run.h5", cell_overrides=cell)
    r = result.results
    assert result.outcome.status == "short", result.outcome.reason
    assert r["short_detected"] and not r["ccd_is_lower_bound"]
    assert r["ccd_mA_cm2"] == pytest.approx(expected, rel=1e-9), (cell["ccd_mA_cm2"], protocol["step_mA_cm2"])
    assert r["short_current_density_mA_cm2"] == pytest.approx(expected + protocol["step_mA_cm2"], rel=1e-9)
    with RunFile(result.path) as rf:
        assert rf.attrs["status"] == "short"
        assert rf.results()["ccd_mA_cm2"] == pytest.approx(expected)
        assert any(e["kind"] == "short" for e in rf.events())


def test_healthy_cell_above_the_staircase_reports_no_short(tmp_path):
    protocol, cell, _ = staircase_case(3)
    cell["ccd_mA_cm2"] = protocol["stop_mA_cm2"] * 1.5
    path = tmp_path / "ccd.yaml"
    path.write_text(yaml.safe_dump(protocol))
    result = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "run.h5", cell_overrides=cell)
    assert result.outcome.status == "completed"
    r = result.results
    assert not r["short_detected"] and r["ccd_is_lower_bound"]
    assert r["ccd_mA_cm2"] == pytest.approx(protocol["stop_mA_cm2"], rel=1e-6) or r["ccd_mA_cm2"] <= protocol["stop_mA_cm2"]
    assert "no short" in result.summary[0]


def test_example_ccd_llzo_gives_the_seed_ccd(tmp_path):
    """ccd_llzo.yaml on its simulated H.L.-LLZO cell: CCD 1.8 mA cm⁻² as in [004 L87]."""
    result = run_protocol(EXAMPLES / "ccd_llzo.yaml", simulate=True, speed=math.inf, output=tmp_path / "run.h5")
    assert result.results["ccd_mA_cm2"] == pytest.approx(1.8)
    assert result.results["short_current_density_mA_cm2"] == pytest.approx(1.9)
    overpotentials = result.results["overpotentials"]
    assert len(overpotentials["cell_asr_ohm_cm2"]) == len(result.outcome.steps)
    # the cell's ASR at low current: bulk 30 + two interfaces 2 × 50 Ω cm², charge transfer
    # counted once (j₀ = RT/(F·50 Ω cm²), so Butler–Volmer linearised is the 50 Ω cm²); was
    # 130 + 2 × 25.7 while the simulator added RT/(F·j₀) on top of the interface
    assert overpotentials["cell_asr_ohm_cm2"][0] == pytest.approx(130, abs=1.0)
    # then falling: the interface evolves toward ~14 Ω cm² with the charge cycled [004 L87] and
    # Butler–Volmer bends at higher current
    asr = overpotentials["cell_asr_ohm_cm2"][:-1]
    assert all(b < a for a, b in zip(asr, asr[1:])) and 60 < asr[-1] < 80


# -- output off on every exit path, checked on the simulator's own state --------------------

@pytest.fixture
def wired():
    clock = VirtualClock()
    sim = Keithley2400Simulator(CellParameters(ccd_mA_cm2=5.0), now=clock.now)
    server = TcpServer(sim)
    smu = Keithley2400(server.resource, timeout_ms=2000)
    yield clock, sim, smu
    smu.close()
    server.close()


def _program() -> StepProgram:
    steps = [ConstantCurrent(current_A=(-1) ** k * 1e-3, duration_s=30, record_interval_s=1.0) for k in range(4)]
    return StepProgram(steps=steps, area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))


def _on_step(n, action):
    def subscriber(event):
        if isinstance(event, StepStarted):
            assert event  # the output is on while steps run
            if event.step_index == n:
                action()
    return subscriber


def test_output_off_after_normal_end(wired):
    clock, sim, smu = wired
    seen_on = []
    engine = SoftwareTimedExecutor(smu, clock, subscribers=[_on_step(1, lambda: seen_on.append(sim.model.output_enabled))])
    assert engine.run(_program()).status == "completed"
    assert seen_on == [True]
    assert sim.model.output_enabled is False


def test_output_off_after_an_exception(wired):
    clock, sim, smu = wired

    def boom():
        raise RuntimeError("plot window crashed")

    outcome = SoftwareTimedExecutor(smu, clock, subscribers=[_on_step(2, boom)]).run(_program())
    assert outcome.status == "error" and "plot window crashed" in outcome.reason
    assert sim.model.output_enabled is False


def test_output_off_after_keyboard_interrupt(wired):
    clock, sim, smu = wired

    def ctrl_c():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SoftwareTimedExecutor(smu, clock, subscribers=[_on_step(1, ctrl_c)]).run(_program())
    assert sim.model.output_enabled is False
