"""The engine on an in-process simulated 2400: end conditions, shorts, safety, exit paths."""

from __future__ import annotations

import math
import threading
import time

import numpy as np

import pytest

from drivers.base import InstrumentLost
from labctl.steps import ConstantCurrent, Rest, SafetyLimits, StepProgram
from labctl.events import Detected, Readings, RunEnded, StepStarted
from labctl.engine import ScaledClock, SoftwareTimedExecutor
from tests.conftest import make_smu


def program(*steps, v_max=5.0, i_max=0.1, **kw) -> StepProgram:
    return StepProgram(steps=list(steps), area_cm2=1.0,
                       safety=SafetyLimits(max_abs_voltage_V=v_max, max_abs_current_A=i_max), **kw)


def cc(current_A, duration_s=100.0, interval=1.0, **kw) -> ConstantCurrent:
    return ConstantCurrent(current_A=current_A, duration_s=duration_s, record_interval_s=interval, **kw)


class Recorder:
    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def test_time_steps_sample_at_the_record_interval_and_integrate_charge(clock):
    smu = make_smu(clock, ccd_mA_cm2=10.0)
    rec = Recorder()
    outcome = SoftwareTimedExecutor(smu, clock, subscribers=[rec]).run(program(cc(1e-3, 100, 10), Rest(duration_s=50, record_interval_s=5)))
    assert outcome.status == "completed"
    first, rest = outcome.steps
    assert first.n_points == 11 and first.end_s == pytest.approx(100.0)
    assert first.charge_C == pytest.approx(0.1)  # 1 mA × 100 s
    assert rest.n_points == 11 and rest.end_s == pytest.approx(150.0)
    readings = rec.of(Readings)
    times = [t for batch in readings for t in batch.columns["test_time_s"]]
    assert times[:3] == [0.0, 10.0, 20.0]
    assert sum(len(b) for b in readings) == outcome.n_readings == 22
    # H.L.-LLZO default: 30 Ω cm² bulk × 1 mA cm⁻² plus two Butler–Volmer overpotentials, each
    # (2RT/F)·asinh(j / 2j₀) with j₀ = RT/(F·50 Ω cm²) at 25 °C (charge transfer counted once);
    # the first reading (t = 0) is the ohmic drop alone, before the double layers charge.
    b = 2 * 8.314462618 * 298.15 / 96485.33212
    eta_V = b * math.asinh(1.0 / (2 * b / 2 / 50 * 1e3))
    assert first.voltage_mean_V == pytest.approx((0.030 + 10 * (0.030 + 2 * eta_V)) / 11, abs=5e-4)
    assert not smu.model.output_enabled


def test_voltage_and_charge_end_conditions(clock):
    smu = make_smu(clock, ccd_mA_cm2=10.0)
    steps = (
        ConstantCurrent(current_A=1e-3, stop_voltage_above_V=0.1, record_interval_s=1.0),  # V ≈ 0.11 after 1 s
        ConstantCurrent(current_A=-1e-3, stop_charge_C=0.05, record_interval_s=1.0),
    )
    outcome = SoftwareTimedExecutor(smu, clock).run(program(*steps))
    assert [s.reason for s in outcome.steps] == ["voltage", "charge"]
    assert outcome.steps[0].n_points == 2  # 30 mV ohmic at t = 0, then the interfaces' η
    assert outcome.steps[1].end_s - outcome.steps[1].start_s == pytest.approx(50.0)


def test_short_circuit_ends_the_run_with_output_off(clock):
    smu = make_smu(clock, ccd_mA_cm2=1.0)
    rec = Recorder()
    steps = [cc(s * j * 1e-3, 600, 1, label=f"{j}") for j in (0.5, 1.0, 1.5, 2.0) for s in (1, -1)]
    outcome = SoftwareTimedExecutor(smu, clock, subscribers=[rec]).run(program(*steps))
    assert outcome.status == "short"
    short_step = outcome.steps[-1]
    assert short_step.reason == "short" and short_step.label == "1.5"
    assert [s.reason for s in outcome.steps[:-1]] == ["time"] * 4
    shorts = [e for e in rec.of(Detected) if e.kind == "short"]
    assert len(shorts) == 1 and shorts[0].step_index == 4
    assert rec.of(RunEnded)[0].status == "short"
    assert not smu.model.output_enabled


def test_healthy_cell_never_flags_a_short(clock):
    smu = make_smu(clock, ccd_mA_cm2=50.0, seed=7)
    steps = [cc(s * j * 1e-3, 300, 1) for j in (0.1, 1, 5, 10) for s in (1, -1)]
    outcome = SoftwareTimedExecutor(smu, clock).run(program(*steps))
    assert outcome.status == "completed"


def test_compliance_ends_the_run_as_a_safety_trip(clock):
    smu = make_smu(clock, ccd_mA_cm2=50.0)
    rec = Recorder()
    # 10 mA through ~130 Ω needs ~1.3 V; a 0.5 V compliance clamps it.
    outcome = SoftwareTimedExecutor(smu, clock, subscribers=[rec]).run(program(cc(10e-3), v_max=0.5))
    assert outcome.status == "safety"
    assert "compliance" in outcome.reason
    assert [e.kind for e in rec.of(Detected)][0] == "compliance"
    assert not smu.model.output_enabled


class Exploding:
    """Raises ``exc`` on the n-th StepStarted."""

    def __init__(self, exc, at_step=1):
        self.exc, self.at = exc, at_step

    def __call__(self, event):
        if isinstance(event, StepStarted) and event.step_index == self.at:
            raise self.exc


def test_output_off_after_an_exception(clock):
    smu = make_smu(clock)
    outcome = SoftwareTimedExecutor(smu, clock, subscribers=[Exploding(RuntimeError("disk full"))]).run(
        program(cc(1e-3, 10), cc(-1e-3, 10)))
    assert outcome.status == "error" and "disk full" in outcome.reason
    assert not smu.model.output_enabled


def test_output_off_after_ctrl_c_and_run_ended_published(clock):
    smu = make_smu(clock)
    rec = Recorder()
    engine = SoftwareTimedExecutor(smu, clock, subscribers=[rec, Exploding(KeyboardInterrupt())])
    with pytest.raises(KeyboardInterrupt):
        engine.run(program(cc(1e-3, 10), cc(-1e-3, 10)))
    assert not smu.model.output_enabled
    assert rec.of(RunEnded)[0].status == "interrupted"
    assert engine.last_outcome.status == "interrupted"


class LosingSmu:
    """Delegates to a simulated SMU; ``read`` fails after ``n`` readings (a dropped link)."""

    def __init__(self, smu, n):
        self.smu, self.n, self.calls = smu, n, []
        self.address = "TCPIP::127.0.0.1::1::SOCKET"

    def __getattr__(self, name):
        attr = getattr(self.smu, name)
        if callable(attr):
            def wrapped(*a, **k):
                self.calls.append(name)
                return attr(*a, **k)
            return wrapped
        return attr

    def read(self):
        self.n -= 1
        if self.n < 0:
            raise InstrumentLost(self.address, "VISA timeout")
        return self.smu.read()


def test_lost_instrument_ends_the_run_and_still_tries_output_off(clock):
    from labctl.engine import ReconnectPolicy

    lossy = LosingSmu(make_smu(clock), 5)  # reconnects fine, but never reads again
    engine = SoftwareTimedExecutor(lossy, clock, reconnect=ReconnectPolicy(retry_for_s=0.3, first_wait_s=0.01, max_wait_s=0.05))
    outcome = engine.run(program(cc(1e-3, 100)))
    assert outcome.status == "instrument_lost"
    assert "TCPIP::127.0.0.1::1::SOCKET" in outcome.reason
    assert lossy.calls[-1] == "output_off"
    assert not lossy.smu.model.output_enabled


def test_compliance_is_configured_before_output_on(clock):
    lossy = LosingSmu(make_smu(clock), 10**9)
    SoftwareTimedExecutor(lossy, clock).run(program(cc(1e-3, 5)))
    assert lossy.calls.index("configure_current_source") < lossy.calls.index("output_on")
    assert lossy.smu.model.compliance_V == 5.0


def test_request_stop_ends_after_the_current_reading(clock):
    smu = make_smu(clock)
    engine = SoftwareTimedExecutor(smu, clock)

    def stopper(event):
        if isinstance(event, StepStarted) and event.step_index == 1:
            engine.request_stop("operator pressed Stop")

    engine.subscribe(stopper)
    outcome = engine.run(program(cc(1e-3, 10), cc(-1e-3, 10), cc(1e-3, 10)))
    assert outcome.status == "stopped" and outcome.reason == "operator pressed Stop"
    assert len(outcome.steps) == 2 and outcome.steps[-1].n_points == 1
    assert not smu.model.output_enabled


def test_step_program_refuses_currents_beyond_the_safety_limit():
    with pytest.raises(ValueError, match="max_abs_current_A"):
        program(cc(0.5), i_max=0.1)


def test_pause_on_a_simulated_clock_holds_zero_current_and_adds_no_test_time(clock):
    """A pause of a simulated (virtual or sped-up) run freezes its time: the cell is not
    credited with rest the pause never gave it; the step resumes its remaining time."""
    smu = make_smu(clock, ccd_mA_cm2=10.0)
    engine = SoftwareTimedExecutor(smu, clock)
    rec = Recorder()
    engine.subscribe(rec)
    real_read = smu.read

    def read():  # the operator pauses 20 s into the run
        if clock.now() == 20.0:
            engine.request_pause()
        return real_read()

    smu.read = read
    result = {}
    runner = threading.Thread(target=lambda: result.update(outcome=engine.run(program(cc(1e-3, 100, 1), cc(-1e-3, 10, 1)))))
    runner.start()
    assert _wait(lambda: engine.state.value == "paused")
    held_at = clock.now()
    assert smu.model.source_current_A == 0.0 and smu.model.output_enabled  # held at 0 A, output on
    assert clock.now() == held_at  # frozen while paused
    engine.request_resume()
    runner.join(timeout=30)
    outcome = result["outcome"]
    first = outcome.steps[0]
    assert outcome.status == "completed"
    assert first.end_s == pytest.approx(100.0)  # no paused time in the step
    assert first.charge_C == pytest.approx(0.1, abs=2e-3)
    assert [e.kind for e in rec.of(Detected)] == ["paused", "resumed"]


def test_pause_in_real_time_records_the_open_circuit_voltage_at_zero_current():
    """In real time the pause is the cell's own: it is recorded (at 0 A) and the step's
    remaining time runs after the resume."""
    clock = ScaledClock(1.0)
    smu = make_smu(clock, ccd_mA_cm2=10.0)
    engine = SoftwareTimedExecutor(smu, clock)
    rec = Recorder()
    engine.subscribe(rec)
    runner = threading.Thread(target=lambda: engine.run(program(cc(1e-3, 0.5, 0.05))))
    runner.start()
    assert _wait(lambda: any(isinstance(e, Readings) for e in rec.events))
    engine.request_pause()
    assert _wait(lambda: engine.state.value == "paused")
    paused_readings = len([e for e in rec.events if isinstance(e, Readings)])
    assert _wait(lambda: smu.model.source_current_A == 0.0)
    time.sleep(0.3)  # the operator's pause: wall time that is the cell's
    engine.request_resume()
    runner.join(timeout=30)
    outcome = engine.last_outcome
    assert outcome.status == "completed"
    assert outcome.steps[0].end_s >= 0.5 + 0.3  # the pause is in the step, the remaining time ran after it
    currents = np.concatenate([e.columns["current_A"] for e in rec.of(Readings)])
    assert np.any(currents == 0.0) and paused_readings >= 1


def _wait(condition, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return False


def test_loops_unroll_with_continuous_step_index_and_cycle_numbers():
    from labctl.steps import Loop

    prog = program(Rest(duration_s=10, record_interval_s=1),
                   Loop(steps=[cc(1e-3, 5), cc(-1e-3, 5)], count=3),
                   Rest(duration_s=10, record_interval_s=1, cycle=9))
    assert prog.n_steps == 8 and prog.n_cycles == 9
    assert prog.planned_duration_s == 10 + 3 * 10 + 10
    assert [(i, c) for i, _, c in prog.iter_steps()] == [(0, 0), (1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3), (7, 9)]
    assert [(i, c) for i, _, c in prog.iter_steps(4)] == [(4, 2), (5, 3), (6, 3), (7, 9)]


def test_resume_runs_only_the_remainder_of_the_interrupted_step(clock):
    from labctl.steps import Loop
    from labctl.engine import ResumePoint

    smu = make_smu(clock, ccd_mA_cm2=10.0)
    prog = program(Loop(steps=[cc(1e-3, 100, 10), cc(-1e-3, 100, 10)], count=3))
    resume = ResumePoint(step_index=3, t_offset_s=340.0, charge_C=0.06, step_elapsed_s=40.0,
                         step_charge_C=-0.04, step_start_s=300.0)
    outcome = SoftwareTimedExecutor(smu, clock).run(prog, resume=resume)
    assert [s.step_index for s in outcome.steps] == [3, 4, 5]
    resumed = outcome.steps[0]
    assert resumed.start_s == 300.0 and resumed.end_s == pytest.approx(400.0)
    assert resumed.charge_C == pytest.approx(-0.1)  # 40 s before the crash + 60 s after
    assert [s.cycle for s in outcome.steps] == [2, 3, 3]
    assert outcome.steps[-1].end_s == pytest.approx(600.0)
    assert outcome.steps[-1].cumulative_charge_C == pytest.approx(0.0, abs=1e-9)


def test_a_stop_before_the_run_begins_ends_it_before_its_first_step(clock):
    """A control socket is served from before the start: a stop that arrives then must not be lost."""
    smu = make_smu(clock)
    engine = SoftwareTimedExecutor(smu, clock)
    engine.request_stop("stopped by the operator")
    outcome = engine.run(program(cc(1e-4, 3600)))
    assert outcome.status == "stopped" and outcome.reason == "stopped by the operator"
    assert outcome.n_readings == 0 and not smu.model.output_enabled
    assert engine.state.value == "ended"
