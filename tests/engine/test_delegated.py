"""Delegated execution on a simulated NEWARE BTS: the engine compiles, starts, follows and ends
the cycler's test, records every point once, and stops the channel whenever it decides to.

Real sockets on 127.0.0.1 (our BTS client against the simulator); simulated time on a
virtual clock, advanced by the engine's polls.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.sim.cell import CELL_PRESETS, CellParameters
from drivers.sim.neware import BtsServer, NewareBtsSimulator
from labctl.analysis.cycling import per_cycle
from labctl.engine import (
    ConstantCurrent,
    Engine,
    Loop,
    ReconnectPolicy,
    Readings,
    SafetyLimits,
    ShortDetection,
    StepProgram,
    StepStarted,
    VirtualClock,
)
from labctl.engine.delegated import DELEGATED_COLUMNS, DelegatedEngine
from labctl.engine.neware_adapter import NewareCycler, compile_native
from labctl.store import RunFile, RunFileWriter
from labctl.store.recover import attach_point
from tests.conftest import make_smu

pytestmark = pytest.mark.timeout(30)

FAST = ReconnectPolicy(retry_for_s=5.0, first_wait_s=0.05, max_wait_s=0.2)


def cycling(j_mA_cm2: float = 0.5, cycles: int = 3, half_cycle_s: float = 600, record_s: float = 1.0,
            detection: ShortDetection = ShortDetection(), v_limit: float = 5.0) -> StepProgram:
    i = j_mA_cm2 * 1e-3
    pair = [ConstantCurrent(current_A=i, duration_s=half_cycle_s, record_interval_s=record_s, label="plate"),
            ConstantCurrent(current_A=-i, duration_s=half_cycle_s, record_interval_s=record_s, label="strip")]
    return StepProgram(steps=[Loop(steps=pair, count=cycles)], area_cm2=1.0, short_detection=detection,
                       safety=SafetyLimits(max_abs_voltage_V=v_limit, max_abs_current_A=0.01))


class Bench:
    """A simulated BTS with one channel per cell on a virtual clock, and run files in ``tmp``."""

    def __init__(self, tmp: Path, *cells: CellParameters) -> None:
        self.tmp = tmp
        self.clock = VirtualClock()
        self.sim = NewareBtsSimulator(len(cells), cell=list(cells), now=self.clock.now)
        self.server = BtsServer(self.sim)
        self.port = self.server.address[1]

    def engine(self, name: str = "run.h5", *, pipeline: str = "1-1-1", poll_s: float = 60.0,
               subscribers: tuple = (), reconnect: ReconnectPolicy = FAST, append: bool = False):
        cycler = NewareCycler.open(f"127.0.0.1:{self.port}/{pipeline}", username="admin", password="neware",
                                   timeout_s=2.0, step_file_dir=self.tmp / "steps")
        path = self.tmp / name
        writer = RunFileWriter.append(path) if append else RunFileWriter(path, ["cyc"], {},
                                                                         extra_columns=DELEGATED_COLUMNS)
        engine = DelegatedEngine(cycler, self.clock, compile=compile_native, channel="cyc",
                                 subscribers=[writer, *subscribers], poll_interval_s=poll_s, reconnect=reconnect,
                                 label=path.stem)
        return engine, writer, cycler

    def run(self, program: StepProgram, name: str = "run.h5", **kwargs):
        engine, writer, cycler = self.engine(name, **kwargs)
        try:
            outcome = engine.run(program)
        finally:
            writer.close()
            cycler.close()
        return outcome, self.tmp / name

    def channel(self, pipeline: str = "1-1-1"):
        return self.sim.channel(pipeline)

    def restart_server(self) -> None:
        """The BTS client API comes back on its port (the channels ran on meanwhile)."""
        self.server = BtsServer(self.sim, port=self.port)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def bench(tmp_path):
    benches: list[Bench] = []

    def make(*cells: CellParameters) -> Bench:
        benches.append(Bench(tmp_path, *(cells or (CellParameters(),))))
        return benches[-1]

    yield make
    for b in benches:
        b.close()


def read(path: Path) -> tuple[dict, list[dict], list[dict]]:
    with RunFile(path) as run:
        return run.columns("cyc"), run.steps(), run.events()


def assert_every_point_once(path: Path, channel) -> dict:
    """The file holds each point the channel stored, once, in order."""
    cols, _, _ = read(path)
    stored = channel.test.points
    np.testing.assert_array_equal(cols["cycler_seq_id"], np.arange(1, len(stored) + 1))
    np.testing.assert_allclose(cols["voltage_V"], [p.voltage_V for p in stored], rtol=1e-14)  # 15 digits on the wire
    np.testing.assert_allclose(cols["test_time_s"], [p.test_time_s for p in stored], atol=1e-6)
    assert set(cols["cycler_test_id"]) == {channel.test.test_id}
    return cols


def kinds(events: list[dict]) -> list[str]:
    return [e["kind"] for e in events]


def test_a_program_runs_in_the_cycler_to_completion_and_the_analysis_matches_the_sourcemeter(bench) -> None:
    b = bench()
    program = cycling()
    outcome, path = b.run(program)
    assert (outcome.status, outcome.reason) == ("completed", "all steps completed")
    assert b.channel().status == "finish"
    cols = assert_every_point_once(path, b.channel())
    assert outcome.n_readings == len(cols["test_time_s"]) == 6 * 601
    _, steps, events = read(path)
    assert [(s["step_index"], s["cycle"], s["reason"]) for s in steps] == [
        (k, k // 2 + 1, "time") for k in range(6)]
    assert [s["end_s"] for s in steps] == pytest.approx([600.0 * (k + 1) for k in range(6)])
    np.testing.assert_array_equal(np.unique(cols["step_index"]), np.arange(6))
    assert np.all(np.diff(cols["charge_C"][:601]) > 0) and cols["charge_C"][-1] == pytest.approx(0.0, abs=1e-12)
    assert kinds(events) == ["run_started", "cycler_started", "run_ended"]
    # The same program on the sourcemeter engine, same cell: the per-cycle analysis agrees.
    clock = VirtualClock()
    smu_steps = []
    Engine(make_smu(clock), clock, subscribers=[lambda e: smu_steps.append(e.summary.__dict__)
                                                if hasattr(e, "summary") else None]).run(program)
    cycler_cycles, smu_cycles = per_cycle(steps, 1.0), per_cycle(smu_steps, 1.0)
    assert cycler_cycles["cycle"] == smu_cycles["cycle"] == [1, 2, 3]
    assert cycler_cycles["asr_ohm_cm2"] == pytest.approx(smu_cycles["asr_ohm_cm2"], rel=1e-3)
    assert cycler_cycles["plated_mAh_cm2"] == pytest.approx(smu_cycles["plated_mAh_cm2"], rel=1e-3)


def test_the_cyclers_protection_ends_the_run_as_a_safety_trip(bench) -> None:
    """Bare LLZO at 5 mA needs > 10 V: the 5 V Protect compiled into the step file ends the test."""
    b = bench(CELL_PRESETS["bare_llzo"])
    outcome, path = b.run(cycling(j_mA_cm2=5.0))
    assert outcome.status == "safety" and "V = " in outcome.reason
    assert b.channel().status == "protect"
    assert_every_point_once(path, b.channel())
    _, steps, events = read(path)
    assert kinds(events).count("safety") == 1 and steps[-1]["reason"] == "safety"


def test_a_hard_short_is_ended_by_the_cycler_itself_while_nobody_polls(bench) -> None:
    """CCD 0.4 < 0.5 mA cm⁻²: from ~72 s the filament flickers, then bridges, and |V| falls under
    the 1 mV floor. The engine polls every 3000 s, so the per-step floor Protect compiled from
    the detection settings ends the test first; the engine then finds the short in the
    downloaded points."""
    b = bench(CellParameters(ccd_mA_cm2=0.4))
    outcome, path = b.run(cycling(detection=ShortDetection(noise_fraction=None)), poll_s=3000.0)
    assert b.channel().status == "protect"
    assert outcome.status == "short" and outcome.reason.startswith("short circuit at 0.5 mA cm-2")
    cols = assert_every_point_once(path, b.channel())
    assert abs(cols["voltage_V"][-1]) < 1e-3  # the cycler's protection point, V = I·R_short
    _, steps, events = read(path)
    stopped = [e["message"] for e in events if e["kind"] == "cycler_stopped"]
    assert stopped == ["the channel had already ended its test (protect)"]
    assert [s["reason"] for s in steps] == ["short"]


def test_a_soft_short_seen_in_the_downloaded_points_stops_the_channel(bench) -> None:
    """A slowly flickering filament: the noise test fires on the PC; the engine stops the
    channel, reads the status back, and still records the points stored until the stop."""
    b = bench(CellParameters(ccd_mA_cm2=0.4, soft_short_flicker=0.3, soft_short_asr_ohm_cm2=600))
    outcome, path = b.run(cycling(), poll_s=10.0)
    assert outcome.status == "soft_short" and "voltage noise" in outcome.reason
    assert b.channel().status == "stop" and not b.channel().cell.shorted  # no current flows any more
    cols = assert_every_point_once(path, b.channel())
    _, steps, events = read(path)
    detected = next(e for e in events if e["kind"] == "soft_short")
    assert cols["test_time_s"][-1] > detected["t_s"]  # points after the detection are kept
    assert [e["message"] for e in events if e["kind"] == "cycler_stopped"] == [
        "channel stopped by labctl; the cycler confirms: stop"]
    assert [s["reason"] for s in steps] == ["soft_short"]


def test_an_operator_stop_goes_to_the_cycler(bench) -> None:
    b = bench()
    engine, writer, cycler = b.engine()
    engine.subscribe(lambda e: engine.request_stop() if isinstance(e, StepStarted) and e.step_index == 2 else None)
    outcome = engine.run(cycling())
    writer.close()
    assert (outcome.status, outcome.reason) == ("stopped", "stopped by the operator")
    assert b.channel().status == "stop"
    assert_every_point_once(b.tmp / "run.h5", b.channel())
    _, steps, events = read(b.tmp / "run.h5")
    assert [s["reason"] for s in steps] == ["time", "time", "stopped"]
    assert kinds(events)[-3:] == ["cycler_stopped", "stopped", "run_ended"]


def test_pause_is_refused_on_neware_and_the_test_runs_on(bench) -> None:
    b = bench()
    engine, writer, cycler = b.engine()
    engine.subscribe(lambda e: engine.request_pause() if isinstance(e, StepStarted) and e.step_index == 1 else None)
    outcome = engine.run(cycling(cycles=1))
    writer.close()
    assert outcome.status == "completed"
    _, _, events = read(b.tmp / "run.h5")
    assert [e["message"] for e in events if e["kind"] == "pause_refused"] == [
        f"127.0.0.1:{b.port}/1-1-1 cannot pause a running test at once: it runs on"]


def test_an_error_on_the_pc_side_stops_the_channel(bench) -> None:
    b = bench()
    engine, writer, cycler = b.engine()

    def broken(event) -> None:
        if isinstance(event, StepStarted) and event.step_index == 3:
            raise RuntimeError("plot window crashed")

    engine.subscribe(broken)
    outcome = engine.run(cycling())
    writer.close()
    assert outcome.status == "error"
    assert outcome.reason == ("RuntimeError: plot window crashed; channel stopped by labctl; "
                              "the cycler confirms: stop")
    assert b.channel().status == "stop"


def test_a_lost_bts_connection_loses_no_point(bench) -> None:
    """The BTS API goes away at step 2 while the channel runs on for half an hour of its time;
    the engine reconnects and downloads what was stored meanwhile."""
    b = bench()
    engine, writer, cycler = b.engine()

    def outage(event) -> None:
        if isinstance(event, StepStarted) and event.step_index == 2:
            b.server.close()

            def later() -> None:
                b.clock.sleep(1800.0)
                time.sleep(0.3)
                b.restart_server()

            threading.Thread(target=later, daemon=True).start()

    engine.subscribe(outage)
    outcome = engine.run(cycling())
    writer.close()
    assert outcome.status == "completed"
    assert_every_point_once(b.tmp / "run.h5", b.channel())
    _, steps, events = read(b.tmp / "run.h5")
    assert "instrument_error" in kinds(events) and "reconnected" in kinds(events)
    assert [s["step_index"] for s in steps] == list(range(6))


def test_when_the_reconnect_budget_runs_out_the_channel_runs_on_and_resume_collects_every_point(bench) -> None:
    """The BTS API disappears mid-step; after 0.3 s without it the PC side ends as
    instrument_lost without stopping the channel. The API comes back hours of cycling later;
    reattaching from the file's cursor gives the same file as a run that never broke."""
    b = bench()
    program = cycling(cycles=4)
    engine, writer, cycler = b.engine(reconnect=ReconnectPolicy(retry_for_s=0.3, first_wait_s=0.05, max_wait_s=0.1))
    seen = []

    def outage(event) -> None:
        if isinstance(event, Readings):
            seen.append(len(event))
            if sum(seen) > 900 and b.server is not None:  # in the middle of step 1
                b.server.close()
                b.server = None

    engine.subscribe(outage)
    lost = engine.run(program)
    writer.close()
    cycler.close()
    assert lost.status == "instrument_lost"
    assert "the channel was not stopped: its test runs on in the cycler" in lost.reason
    assert b.channel().status == "working"
    b.clock.sleep(2000.0)  # the cycler runs on: into step 4 by the time the API is back
    b.restart_server()
    with RunFile(b.tmp / "run.h5", swmr=True) as run:
        point = attach_point(run, "cyc")
    assert point.step_index == 1 and point.last_seq_id == sum(seen)  # step 1 open: its readings replay
    assert set(point.since_checkpoint["step_index"]) == {1}
    engine, writer, cycler = b.engine(append=True)
    resumed = engine.run(program, attach=point)
    writer.close()
    assert resumed.status == "completed"
    assert_every_point_once(b.tmp / "run.h5", b.channel())
    _, steps, _ = read(b.tmp / "run.h5")
    assert [(s["step_index"], s["reason"]) for s in steps] == [(k, "time") for k in range(8)]
    reference = bench()
    _, whole = reference.run(program, name="whole.h5")
    _, whole_steps, _ = read(whole)
    got, want = per_cycle(steps, 1.0), per_cycle(whole_steps, 1.0)
    assert got["cycle"] == want["cycle"] == [1, 2, 3, 4]
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    assert [s["n_points"] for s in steps] == [s["n_points"] for s in whole_steps]


def test_a_program_the_cycler_cannot_express_is_refused_before_anything_starts(bench) -> None:
    b = bench()
    program = StepProgram(steps=[ConstantCurrent(current_A=1e-3, stop_voltage_below_V=0.01, record_interval_s=1)],
                          area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))
    from drivers.neware import StepFileError

    with pytest.raises(StepFileError, match="step 0: a NEWARE CC charge cannot stop on stop_voltage_below_V"):
        compile_native(program)
    assert b.channel().status == "stop"
