"""c-AFM triggering-bias sweeps end to end on the simulated 2400 + AFM (seed 004 numbers),
and the sweep engine's safe endings."""

from __future__ import annotations

import math
import threading
import time

import h5py
import numpy as np
import pytest

from drivers.afm import NanonisAfm
from drivers.keithley2400 import Keithley2400
from drivers.sim.afm import NanonisAfmSimulator, NanonisServer
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from drivers.sim.physics.tip import TipJunction
from labctl.engine import ScaledClock, VirtualClock
from labctl.events import Readings, StepStarted
from labctl.engine.software_timed import SoftwareTimedExecutor
from labctl.app.run import run_protocol
from labctl.store import RunFile
from labctl.app.simulated import junction as simulated_junction
from labctl.yamlfile import FileError
from protocols import load_protocol
from tests.conftest import EXAMPLES


@pytest.fixture(scope="module")
def cafm_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("cafm") / "run.h5"
    result = run_protocol(EXAMPLES / "cafm_gb_vs_gi.yaml", simulate=True, speed=math.inf, output=path)
    return result


def test_triggering_bias_found_within_one_step_at_boundaries_and_in_grains(cafm_run):
    protocol = load_protocol(EXAMPLES / "cafm_gb_vs_gi.yaml")
    truth = simulated_junction(protocol)
    sites = cafm_run.results["sites"]
    step = protocol.sweep.step_V
    assert len(sites["triggering_bias_V"]) == 17
    for x, y, found in zip(sites["x_nm"], sites["y_nm"], sites["triggering_bias_V"]):
        expected = truth.triggering_bias_V(x, y)
        assert expected - step - 1e-9 < found <= expected + 1e-9, (x, y, found, expected)
    stats = cafm_run.results["statistics"]
    assert stats["GB"]["median"] == pytest.approx(-0.12, abs=0.011)  # [004 L54]
    assert stats["GI"]["median"] < -9.0  # [004 L56]
    assert all(sites["back_scan_ohmic"])
    assert cafm_run.results["contact_area_nm2"] == pytest.approx(67.7, abs=0.1)
    assert cafm_run.outcome.status == "completed"


def test_compliance_never_exceeded_and_maps_stored_as_images(cafm_run):
    with RunFile(cafm_run.path) as run:
        columns = run.columns("smu")
    assert np.max(np.abs(columns["current_A"])) <= 1e-3 * (1 + 1e-9)
    assert np.max(np.abs(columns["voltage_V"])) <= 10.0 + 1e-9
    with h5py.File(cafm_run.path, "r") as f:
        before = f["results/current_map_before/current_A"]
        after = f["results/current_map_after/current_A"][()]
        assert before.shape == (64, 64) and before.attrs["CLASS"] == "IMAGE"
        assert np.nanmax(np.abs(after)) > 1e3 * np.nanmax(np.abs(before[()]))  # conductive bumps [004 L56]


def test_bad_protocol_is_one_line_naming_the_field(tmp_path):
    text = (EXAMPLES / "cafm_gb_vs_gi.yaml").read_text().replace("step_V: 0.01 ", "step_V: 0.001 ")
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(FileError) as info:
        load_protocol(bad)
    assert len(info.value.lines) == 1 and "bad.yaml" in info.value.lines[0] and "2500" in info.value.lines[0]


class _Boom:
    """Subscriber raising ``exc`` at the ``after``-th readings batch."""

    def __init__(self, exc: BaseException, after: int) -> None:
        self.exc, self.after, self.seen = exc, after, 0

    def __call__(self, event) -> None:
        if isinstance(event, Readings):
            self.seen += 1
            if self.seen == self.after:
                raise self.exc


@pytest.mark.parametrize("ending", ["normal", "exception", "ctrl_c"])
def test_output_off_and_tip_withdrawn_after_every_ending(ending):
    protocol = load_protocol(EXAMPLES / "cafm_gb_vs_gi.yaml")
    program = protocol.program().model_copy(update={"steps": protocol.program().steps[1:6]})
    junction = TipJunction(seed=0)
    clock = VirtualClock()
    k2400 = Keithley2400Simulator(junction, now=clock.now)
    afm_sim = NanonisAfmSimulator(junction)
    with TcpServer(k2400) as smu_server, NanonisServer(afm_sim) as afm_server:
        smu, afm = Keithley2400(smu_server.resource, timeout_ms=2000), NanonisAfm(afm_server.resource)
        subscribers = {"normal": [], "exception": [_Boom(RuntimeError("disk full"), 2)],
                       "ctrl_c": [_Boom(KeyboardInterrupt(), 1)]}[ending]
        engine = SoftwareTimedExecutor(smu, clock, afm=afm, channel="smu", subscribers=subscribers)
        if ending == "ctrl_c":
            with pytest.raises(KeyboardInterrupt):
                engine.run(program)
        else:
            engine.run(program)
        outcome = engine.last_outcome
        assert outcome.status == {"normal": "completed", "exception": "error", "ctrl_c": "interrupted"}[ending]
        assert k2400.model.output_enabled is False
        assert afm_sim.withdrawn and not junction.in_contact
        smu.close()
        afm.close()


def test_a_stop_during_a_sweep_ends_the_run_at_once_with_what_was_measured():
    """The simulated 2400 returns a sweep at once and the engine waits out its duration on the
    clock; an operator's stop must cut that wait (and the sweep) short, not wait ~10 s."""
    protocol = load_protocol(EXAMPLES / "cafm_gb_vs_gi.yaml")
    program = protocol.program()
    steps = [s for s in program.steps if s.kind in ("tip_move", "voltage_sweep")][:2]
    assert [s.kind for s in steps] == ["tip_move", "voltage_sweep"] and steps[1].duration_s > 5
    program = program.model_copy(update={"steps": steps})
    junction = TipJunction(seed=0)
    clock = ScaledClock(1.0)
    k2400 = Keithley2400Simulator(junction, now=clock.now)
    afm_sim = NanonisAfmSimulator(junction)
    batches = []
    with TcpServer(k2400) as smu_server, NanonisServer(afm_sim) as afm_server:
        smu, afm = Keithley2400(smu_server.resource, timeout_ms=2000), NanonisAfm(afm_server.resource)
        engine = SoftwareTimedExecutor(smu, clock, afm=afm, channel="smu", subscribers=[batches.append])
        runner = threading.Thread(target=engine.run, args=(program,))
        runner.start()
        deadline = time.monotonic() + 10
        while not any(isinstance(e, StepStarted) and e.kind == "voltage_sweep" for e in batches):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.5)
        asked = time.monotonic()
        engine.request_stop()
        runner.join(5)
        took_s = time.monotonic() - asked
        assert not runner.is_alive()
        assert took_s < 1.0, took_s
        outcome = engine.last_outcome
        assert outcome.status == "stopped"
        assert outcome.steps[-1].reason == "stopped"
        swept = [e for e in batches if isinstance(e, Readings)]
        n = sum(len(e.columns["test_time_s"]) for e in swept)
        assert 0 < n < len(steps[1].points_V)  # the part measured before the stop
        assert k2400.model.output_enabled is False
        assert afm_sim.withdrawn
        smu.close()
        afm.close()
