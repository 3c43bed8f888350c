"""Instrument faults injected into the simulated 2400, through the real driver and VISA link."""

from __future__ import annotations

import pytest

from drivers.keithley2400 import Keithley2400
from drivers.sim.physics.cell import CellParameters
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from labctl.steps import ConstantCurrent, SafetyLimits, StepProgram
from labctl.events import Detected, StepStarted
from labctl.engine import ReconnectPolicy, SoftwareTimedExecutor, VirtualClock
from labctl.store import RunFile, RunFileWriter

FAST = ReconnectPolicy(retry_for_s=5.0, first_wait_s=0.05, max_wait_s=0.2)


@pytest.fixture
def bench():
    clock = VirtualClock()
    sim = Keithley2400Simulator(CellParameters(ccd_mA_cm2=5.0), now=clock.now)
    server = TcpServer(sim)
    smu = Keithley2400(server.resource, timeout_ms=300)
    yield clock, sim, server, smu
    smu.close()
    server.close()


def _program() -> StepProgram:
    steps = [ConstantCurrent(current_A=(-1) ** k * 1e-3, duration_s=60, record_interval_s=1.0, label=f"s{k}")
             for k in range(4)]
    return StepProgram(steps=steps, area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))


def _run(clock, sim, smu, fault, policy=FAST, writer=None):
    """Run the program, injecting ``fault()`` when step 1 starts; return outcome and events."""
    events = []
    during = {}

    def subscriber(event):
        if isinstance(event, Detected):
            events.append(event)
        if isinstance(event, StepStarted) and event.step_index == 1:
            fault()
        if isinstance(event, StepStarted) and event.step_index == 2:
            smu.instrument.ask("*OPC?")  # the simulator has processed every command sent so far
            during["output_on"] = sim.model.output_enabled
            during["current_A"] = sim.model.source_current_A

    subscribers = [subscriber] + ([writer] if writer else [])
    outcome = SoftwareTimedExecutor(smu, clock, subscribers=subscribers, reconnect=policy).run(_program())
    return outcome, events, during


@pytest.mark.parametrize("fault", ["drop", "garbage", "hang"])
def test_link_faults_are_survived_and_the_source_reapplied(bench, fault):
    clock, sim, server, smu = bench
    inject = {"drop": server.drop_connections, "garbage": lambda: server.reply_garbage(2),
              "hang": lambda: server.hang(0.8)}[fault]
    outcome, events, during = _run(clock, sim, smu, inject)
    assert outcome.status == "completed", outcome.reason
    kinds = [e.kind for e in events]
    assert "instrument_error" in kinds and kinds[-1] == "reconnected"
    assert [s.n_points for s in outcome.steps] == [61] * 4
    assert during == {"output_on": True, "current_A": 1e-3}  # step 2 plates again after the fault
    assert sim.model.output_enabled is False


def test_a_power_cycle_is_seen_in_the_instrument_state_and_the_source_reapplied(bench):
    clock, sim, server, smu = bench
    outcome, events, during = _run(clock, sim, smu, lambda: server.power_cycle(off_s=0.5))
    assert outcome.status == "completed", outcome.reason
    reconnected = [e for e in events if e.kind == "reconnected"]
    assert reconnected and "had its output off" in reconnected[0].message
    assert during["output_on"] is True
    assert sim.model.compliance_V == 5.0  # re-applied after *RST set it to 21 V
    assert sim.model.output_enabled is False


def test_policy_stop_leaves_the_output_off_after_reconnecting(bench):
    clock, sim, server, smu = bench
    policy = ReconnectPolicy(retry_for_s=5.0, first_wait_s=0.05, reapply=False)
    outcome, events, _ = _run(clock, sim, smu, server.drop_connections, policy)
    assert outcome.status == "instrument_lost"
    assert "the policy is to stop" in outcome.reason
    assert sim.model.output_enabled is False


def test_an_instrument_gone_for_good_ends_the_run_with_its_data(bench, tmp_path):
    clock, sim, server, smu = bench
    writer = RunFileWriter(tmp_path / "lost.h5", ["ch1"], {})
    policy = ReconnectPolicy(retry_for_s=1.0, first_wait_s=0.05, max_wait_s=0.2)
    outcome, events, _ = _run(clock, sim, smu, lambda: server.power_cycle(off_s=3600), policy, writer)
    assert outcome.status == "instrument_lost"
    assert server.resource in outcome.reason
    with RunFile(tmp_path / "lost.h5") as run:
        assert run.attrs["status"] == "instrument_lost"
        assert len(run.columns("ch1")["test_time_s"]) == 61  # all of step 0; step 1 never read
        assert [e["kind"] for e in run.events()][-2:] == ["instrument_lost", "run_ended"]
    assert sim.model.output_enabled is False  # the power cycle left it off; nothing turned it on


def test_the_station_file_sets_the_policy(tmp_path):
    from labctl.station import load_station

    station = tmp_path / "station.yaml"
    station.write_text("instruments:\n  smu:\n    driver: keithley2400\n    address: GPIB0::24::INSTR\n"
                       "    on_lost: {retry_for_s: 600, reapply: false}\n")
    policy = load_station(station).instruments["smu"].on_lost
    assert policy.retry_for_s == 600 and policy.reapply is False and policy.max_wait_s == 30.0
