"""Delegated execution on a simulated NEWARE BTS and a simulated BioLogic instrument, every test
on both: the engine compiles, starts, follows and ends the cycler's test, records every point
once, and stops the channel whenever it decides to.

NEWARE over real sockets on 127.0.0.1 (our BTS client against the simulator), BioLogic through
its Development-Package calls; simulated time on a virtual clock, advanced by the engine's polls.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.biologic import ChannelState
from drivers.sim.biologic import SimulatedBackend
from drivers.sim.physics.cell import CELL_PRESETS, CellParameters
from drivers.sim.neware import BtsServer, NewareBtsSimulator
from labctl.analysis.cycling import per_cycle
from labctl.steps import ConstantCurrent, Loop, SafetyLimits, StepProgram
from labctl.engine import ReconnectPolicy, SoftwareTimedExecutor, VirtualClock
from labctl.events import Readings, StepStarted
from labctl.checks import ShortDetection
from drivers.biologic import BiologicCycler
from drivers.biologic import compile_native as biologic_native
from labctl.engine.delegated import DELEGATED_COLUMNS, DelegatedExecutor
from drivers.neware import NewareCycler, compile_native
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


class Rig:
    """A simulated cycler with one channel per cell on a virtual clock, and run files in ``tmp``."""

    kind = ""
    journal = False

    def __init__(self, tmp: Path, cells: tuple[CellParameters, ...]) -> None:
        self.tmp = tmp
        self.clock = VirtualClock()
        self.cells = cells

    def open(self, path: Path):
        raise NotImplementedError

    def compile(self, program: StepProgram) -> str:
        raise NotImplementedError

    def engine(self, name: str = "run.h5", *, poll_s: float = 60.0, subscribers: tuple = (),
               reconnect: ReconnectPolicy = FAST, append: bool = False):
        path = self.tmp / name
        cycler = self.open(path)
        writer = RunFileWriter.append(path) if append else RunFileWriter(path, ["cyc"], {},
                                                                         extra_columns=DELEGATED_COLUMNS)
        engine = DelegatedExecutor(cycler, self.clock, compile=self.compile, channel="cyc",
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

    def state(self) -> str:
        """The channel's own state in NEWARE's words: working, finish, protect or stop."""
        raise NotImplementedError

    def stored(self) -> int:
        """How many points the channel stored in its current test."""
        raise NotImplementedError

    def stored_voltages(self) -> list[float] | None:
        return None

    def cut(self) -> None:
        """The cycler's API goes away; the channel runs on."""
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class NewareRig(Rig):
    """A BTS served over loopback TCP, reached by our BTS client."""

    kind = "neware"

    def __init__(self, tmp: Path, cells: tuple[CellParameters, ...]) -> None:
        super().__init__(tmp, cells)
        self.sim = NewareBtsSimulator(len(cells), cell=list(cells), now=self.clock.now)
        self.server: BtsServer | None = BtsServer(self.sim)
        self.port = self.server.address[1]
        self.address = f"127.0.0.1:{self.port}/1-1-1"

    def open(self, path: Path):
        return NewareCycler.open(self.address, username="admin", password="neware", timeout_s=2.0,
                                 step_file_dir=self.tmp / "steps")

    def compile(self, program: StepProgram) -> str:
        return compile_native(program)

    def state(self) -> str:
        return self.sim.channel("1-1-1").status

    def stored(self) -> int:
        return len(self.sim.channel("1-1-1").test.points)

    def stored_voltages(self) -> list[float]:
        return [p.voltage_V for p in self.sim.channel("1-1-1").test.points]

    def cut(self) -> None:
        self.server.close()
        self.server = None

    def restore(self) -> None:
        """The BTS client API comes back on its port (the channels ran on meanwhile)."""
        self.server = BtsServer(self.sim, port=self.port)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


class BiologicRig(Rig):
    """A BioLogic instrument behind its Development-Package calls, journaling to a file."""

    kind = "biologic"
    journal = True

    def __init__(self, tmp: Path, cells: tuple[CellParameters, ...]) -> None:
        super().__init__(tmp, cells)
        self.backend = SimulatedBackend(len(cells), cell=list(cells), now=self.clock.now)
        self.address = "USB0/1"

    def open(self, path: Path):
        return BiologicCycler.open(self.address, backend=self.backend, journal_path=path.with_suffix(".bljournal"))

    def compile(self, program: StepProgram) -> str:
        return biologic_native(program)

    def state(self) -> str:
        ch = self.backend.channel(0)
        if ch.state != ChannelState.STOP:
            return "working"
        return {"finished": "finish", "stopped": "stop", "safety_limit": "protect", "limit_stop": "protect"}[ch.end_reason]

    def stored(self) -> int:
        return self.backend.channel(0).points_stored

    def cut(self) -> None:
        self.backend.reachable = False

    def restore(self) -> None:
        self.backend.reachable = True


@pytest.fixture(params=["neware", "biologic"])
def rig(request, tmp_path):
    rigs: list[Rig] = []

    def make(*cells: CellParameters, sub: str = "") -> Rig:
        folder = tmp_path / sub if sub else tmp_path
        folder.mkdir(exist_ok=True)
        kind = NewareRig if request.param == "neware" else BiologicRig
        rigs.append(kind(folder, cells or (CellParameters(),)))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


def read(path: Path) -> tuple[dict, list[dict], list[dict]]:
    with RunFile(path) as run:
        return run.columns("cyc"), run.steps(), run.events()


def assert_every_point_once(path: Path, r: Rig) -> dict:
    """The file holds each point the channel stored, once, in order."""
    cols, _, _ = read(path)
    np.testing.assert_array_equal(cols["cycler_seq_id"], np.arange(1, r.stored() + 1))
    voltages = r.stored_voltages()
    if voltages is not None:
        np.testing.assert_allclose(cols["voltage_V"], voltages, rtol=1e-14)  # 15 digits on the wire
    assert np.all(np.diff(cols["test_time_s"]) >= 0)
    assert len(set(cols["cycler_test_id"])) == 1
    return cols


def kinds(events: list[dict]) -> list[str]:
    return [e["kind"] for e in events]


def test_a_program_runs_in_the_cycler_to_completion_and_the_analysis_matches_the_sourcemeter(rig) -> None:
    r = rig()
    program = cycling()
    outcome, path = r.run(program)
    assert (outcome.status, outcome.reason) == ("completed", "all steps completed")
    assert r.state() == "finish"
    cols = assert_every_point_once(path, r)
    assert outcome.n_readings == len(cols["test_time_s"]) == 6 * 601  # a point at each step's start, then every s
    _, steps, events = read(path)
    assert [(s["step_index"], s["cycle"], s["reason"]) for s in steps] == [
        (k, k // 2 + 1, "time") for k in range(6)]
    assert [s["end_s"] for s in steps] == pytest.approx([600.0 * (k + 1) for k in range(6)])
    np.testing.assert_array_equal(np.unique(cols["step_index"]), np.arange(6))
    assert np.all(np.diff(cols["charge_C"][:601]) > 0) and cols["charge_C"][-1] == pytest.approx(0.0, abs=1e-9)
    assert kinds(events) == ["run_started", "cycler_started", "run_ended"]
    # The same program on the sourcemeter engine, same cell: the per-cycle analysis agrees.
    clock = VirtualClock()
    smu_steps = []
    SoftwareTimedExecutor(make_smu(clock), clock, subscribers=[lambda e: smu_steps.append(e.summary.__dict__)
                                                if hasattr(e, "summary") else None]).run(program)
    cycler_cycles, smu_cycles = per_cycle(steps, 1.0), per_cycle(smu_steps, 1.0)
    assert cycler_cycles["cycle"] == smu_cycles["cycle"] == [1, 2, 3]
    assert cycler_cycles["cell_asr_ohm_cm2"] == pytest.approx(smu_cycles["cell_asr_ohm_cm2"], rel=1e-3)
    assert cycler_cycles["plated_mAh_cm2"] == pytest.approx(smu_cycles["plated_mAh_cm2"], rel=1e-3)


def test_the_cyclers_protection_ends_the_run_as_a_safety_trip(rig) -> None:
    """Bare LLZO (1000 Ω cm² per interface) at 0.05 mA cm⁻², under its CCD, polarises to ~90 mV:
    the 50 mV limit pushed into the cycler ends the test. (At 5 mA cm⁻², as this test once ran,
    the Butler–Volmer interfaces counted once give < 1 V and the cell shorts first.)"""
    r = rig(CELL_PRESETS["bare_llzo"])
    outcome, path = r.run(cycling(j_mA_cm2=0.05, v_limit=0.05))
    assert outcome.status == "safety" and "V = " in outcome.reason
    assert r.state() == "protect"
    assert_every_point_once(path, r)
    _, steps, events = read(path)
    assert kinds(events).count("safety") == 1 and steps[-1]["reason"] == "safety"


def test_a_hard_short_is_ended_by_the_cycler_itself_while_nobody_polls(rig) -> None:
    """CCD 0.4 < 0.5 mA cm⁻²: from ~72 s the filament flickers, then bridges, and |V| falls under
    the 1 mV floor. The engine polls every 3000 s, so the per-step floor compiled from the
    detection settings (NEWARE Protect, BioLogic limit test with exit = stop) ends the test
    first; the engine then finds the short in the downloaded points."""
    r = rig(CellParameters(ccd_mA_cm2=0.4))
    outcome, path = r.run(cycling(detection=ShortDetection(noise_fraction=None)), poll_s=3000.0)
    assert r.state() == "protect"
    assert outcome.status == "short" and outcome.reason.startswith("short circuit at 0.5 mA cm-2")
    cols = assert_every_point_once(path, r)
    assert abs(cols["voltage_V"][-1]) < 1e-3  # the point that tripped the cycler's floor
    _, steps, events = read(path)
    stopped = [e["message"] for e in events if e["kind"] == "cycler_stopped"]
    assert len(stopped) == 1 and stopped[0].startswith("the channel had already ended its test")
    assert [s["reason"] for s in steps] == ["short"]


def test_a_soft_short_seen_in_the_downloaded_points_stops_the_channel(rig) -> None:
    """A slowly flickering filament: the noise test fires on the PC; the engine stops the
    channel, reads the status back, and still records the points stored until the stop."""
    r = rig(CellParameters(ccd_mA_cm2=0.4, soft_short_flicker=0.3, soft_short_asr_ohm_cm2=600))
    outcome, path = r.run(cycling(), poll_s=10.0)
    assert outcome.status == "soft_short" and "voltage noise" in outcome.reason
    assert r.state() == "stop"  # no current flows any more
    cols = assert_every_point_once(path, r)
    _, steps, events = read(path)
    detected = next(e for e in events if e["kind"] == "soft_short")
    assert cols["test_time_s"][-1] > detected["t_s"]  # points after the detection are kept
    stopped = [e["message"] for e in events if e["kind"] == "cycler_stopped"]
    assert len(stopped) == 1 and stopped[0].startswith("channel stopped by labctl; the cycler confirms: ")
    assert [s["reason"] for s in steps] == ["soft_short"]


def test_an_operator_stop_goes_to_the_cycler(rig) -> None:
    r = rig()
    engine, writer, cycler = r.engine()
    engine.subscribe(lambda e: engine.request_stop() if isinstance(e, StepStarted) and e.step_index == 2 else None)
    outcome = engine.run(cycling())
    writer.close()
    assert (outcome.status, outcome.reason) == ("stopped", "stopped by the operator")
    assert r.state() == "stop"
    assert_every_point_once(r.tmp / "run.h5", r)
    _, steps, events = read(r.tmp / "run.h5")
    assert [s["reason"] for s in steps] == ["time", "time", "stopped"]
    assert kinds(events)[-3:] == ["cycler_stopped", "stopped", "run_ended"]


def test_pause_holds_the_cycler_where_it_can_and_is_refused_where_it_cannot(rig) -> None:
    """BioLogic (EC-Lab) pauses a channel at once; the NEWARE API cannot (only at a later step)."""
    r = rig()
    engine, writer, cycler = r.engine(poll_s=30.0)
    polls = []

    def operator(event) -> None:
        if isinstance(event, StepStarted) and event.step_index == 1:
            engine.request_pause()
        elif isinstance(event, Readings) and engine.state.value == "paused":
            polls.append(event)
            if len(polls) == 1:
                threading.Timer(0.2, engine.request_resume).start()

    engine.subscribe(operator)
    outcome = engine.run(cycling(cycles=1))
    writer.close()
    assert outcome.status == "completed"
    _, steps, events = read(r.tmp / "run.h5")
    if r.kind == "neware":
        assert [e["message"] for e in events if e["kind"] == "pause_refused"] == [
            f"{r.address} cannot pause a running test at once: it runs on"]
        assert steps[1]["end_s"] == pytest.approx(1200.0)
    else:
        assert "paused" in kinds(events) and "resumed" in kinds(events)
        assert steps[1]["end_s"] > 1200.0  # the paused time does not count
        assert [s["reason"] for s in steps] == ["time", "time"]
    assert_every_point_once(r.tmp / "run.h5", r)


def test_an_error_on_the_pc_side_stops_the_channel(rig) -> None:
    r = rig()
    engine, writer, cycler = r.engine()

    def broken(event) -> None:
        if isinstance(event, StepStarted) and event.step_index == 3:
            raise RuntimeError("plot window crashed")

    engine.subscribe(broken)
    outcome = engine.run(cycling())
    writer.close()
    assert outcome.status == "error"
    assert outcome.reason.startswith("RuntimeError: plot window crashed; channel stopped by labctl; "
                                     "the cycler confirms: ")
    assert r.state() == "stop"


def test_a_lost_connection_loses_no_point(rig) -> None:
    """The cycler's API goes away at step 2 while the channel runs on for half an hour of its
    time; the engine reconnects and collects what was stored meanwhile."""
    r = rig()
    engine, writer, cycler = r.engine()

    def outage(event) -> None:
        if isinstance(event, StepStarted) and event.step_index == 2:
            r.cut()

            def later() -> None:
                r.clock.sleep(1800.0)
                time.sleep(0.3)
                r.restore()

            threading.Thread(target=later, daemon=True).start()

    engine.subscribe(outage)
    outcome = engine.run(cycling())
    writer.close()
    assert outcome.status == "completed"
    assert_every_point_once(r.tmp / "run.h5", r)
    _, steps, events = read(r.tmp / "run.h5")
    assert "instrument_error" in kinds(events) and "reconnected" in kinds(events)
    assert [s["step_index"] for s in steps] == list(range(6))


def test_when_the_reconnect_budget_runs_out_the_channel_runs_on_and_resume_collects_every_point(rig) -> None:
    """The API disappears mid-step; after 0.3 s without it the PC side ends as instrument_lost
    without stopping the channel. The API comes back hours of cycling later; reattaching from
    the file's cursor gives the same file as a run that never broke."""
    r = rig()
    program = cycling(cycles=4)
    engine, writer, cycler = r.engine(reconnect=ReconnectPolicy(retry_for_s=0.3, first_wait_s=0.05, max_wait_s=0.1))
    seen, cut = [], []

    def outage(event) -> None:
        if isinstance(event, Readings):
            seen.append(len(event))
            if sum(seen) > 900 and not cut:  # in the middle of step 1
                cut.append(True)
                r.cut()

    engine.subscribe(outage)
    lost = engine.run(program)
    writer.close()
    cycler.close()
    assert lost.status == "instrument_lost"
    assert "the channel was not stopped: its test runs on in the cycler" in lost.reason
    assert r.state() == "working"
    r.clock.sleep(2000.0)  # the cycler runs on: into step 4 by the time the API is back
    r.restore()
    with RunFile(r.tmp / "run.h5", swmr=True) as run:
        point = attach_point(run, "cyc")
    assert point.step_index == 1 and point.last_seq_id == sum(seen)  # step 1 open: its readings replay
    assert set(point.since_checkpoint["step_index"]) == {1}
    engine, writer, cycler = r.engine(append=True)
    resumed = engine.run(program, attach=point)
    writer.close()
    assert resumed.status == "completed"
    assert_every_point_once(r.tmp / "run.h5", r)
    _, steps, _ = read(r.tmp / "run.h5")
    assert [(s["step_index"], s["reason"]) for s in steps] == [(k, "time") for k in range(8)]
    reference = rig(sub="reference")
    _, whole = reference.run(program)
    _, whole_steps, _ = read(whole)
    got, want = per_cycle(steps, 1.0), per_cycle(whole_steps, 1.0)
    assert got["cycle"] == want["cycle"] == [1, 2, 3, 4]
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-12), key
    assert [s["n_points"] for s in steps] == [s["n_points"] for s in whole_steps]


def test_a_program_the_cycler_cannot_express_is_refused_by_its_compiler(rig) -> None:
    r = rig()
    program = StepProgram(steps=[ConstantCurrent(current_A=1e-3, stop_voltage_below_V=0.01, record_interval_s=1)],
                          area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))
    with pytest.raises(ValueError, match="step 0"):
        r.compile(program)


def test_the_cycler_channel_identifies_itself(rig, tmp_path):
    r = rig()
    channel = r.open(tmp_path / "idn.h5")
    try:
        idn = channel.idn
    finally:
        channel.close()
    expected = {"neware": f"NEWARE BTS at 127.0.0.1:{getattr(r, 'port', '')}, channel 1-1-1", "biologic": "BioLogic "}
    assert idn.startswith(expected[r.kind]), idn
