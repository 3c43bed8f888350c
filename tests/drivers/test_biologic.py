"""The BioLogic technique model and channel driver, against the simulated instrument."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from drivers.base import InstrumentError, InstrumentLost
from drivers.biologic import (
    CA,
    CP,
    OCV,
    BiologicBackendMissing,
    BiologicChannel,
    CAStep,
    ChannelSafetyLimits,
    ChannelState,
    CPStep,
    EasyBiologicBackend,
    EndReason,
    ERange,
    ExitCondition,
    IRange,
    LimitTest,
    Loop,
    ParamType,
    SafetyCode,
    TechniqueId,
    check_sequence,
    compile_program,
    e_range_for,
    ecc_file,
    execution_runs,
    i_range_for,
)
from drivers.sim.biologic import SimulatedBackend
from drivers.sim.physics.cell import CellParameters
from labctl import steps as lab
from labctl.app.simulated import cell_parameters
from protocols import SymmetricCycling, load_protocol

pytestmark = pytest.mark.timeout(20)

EXAMPLE = Path(__file__).resolve().parents[2] / "protocols" / "examples" / "cycling_llzo_0p8.yaml"


class ManualClock:
    """Simulated seconds that move only when a test sets them."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


def rig(cell: CellParameters | None = None, *, journal: Path | None = None, **sim_kw):
    clock = ManualClock()
    sim = SimulatedBackend(1, cell=cell, now=clock.now, **sim_kw)
    channel = BiologicChannel(sim, "USB0", 1, journal_path=journal)
    channel.connect()
    return clock, sim, channel


def cycling(cycles: int = 3):
    """The LLZO example shortened to ``cycles`` cycles: (protocol, compiled program)."""
    protocol = load_protocol(EXAMPLE)
    protocol = SymmetricCycling.model_validate({**protocol.model_dump(), "total_time_h": None, "cycles": cycles})
    return protocol, compile_program(protocol.program())


def cp(current_A: float, duration_s: float, dT_s: float = 1.0, tests=(), exit_condition=ExitCondition.NEXT_TECHNIQUE,
       **kw) -> CP:
    return CP(steps=[CPStep(current_A=current_A, duration_s=duration_s, limits=tests, exit_condition=exit_condition)],
              record_every_dT_s=dT_s, i_range=i_range_for(current_A), **kw)


# -- the technique model ------------------------------------------------------------------------

def test_limit_test_config_bits() -> None:
    assert LimitTest(comparison="<", value=3.0).config == 1  # "E < value" (PyExpLabSys-derived CPLimit)
    assert LimitTest(comparison=">", value=1.0).config == 5  # "E > value"
    i_and = LimitTest(variable="I", comparison=">", value=1e-3, logic="and")
    assert i_and.config == 1 | 2 | 4 | 3 << 5
    assert LimitTest.from_config(i_and.config, 1e-3) == i_and
    assert LimitTest(comparison="<", value=0, active=False).config == 0
    with pytest.raises(ValueError, match="comparison 7"):
        LimitTest.from_config(0b11101, 0.0)
    above, below = LimitTest(comparison=">", value=1.0), LimitTest(comparison="<", value=-1.0)
    assert LimitTest.any_met([above, below], 1.5, 0) and LimitTest.any_met([above, below], -1.5, 0)
    assert not LimitTest.any_met([above, below], 0.0, 0) and not LimitTest.any_met([], 5.0, 0)
    both = [above, LimitTest(variable="I", comparison="<", value=0.0, logic="and")]
    assert LimitTest.any_met(both, 2.0, -1e-3) and not LimitTest.any_met(both, 2.0, 1e-3)


def test_techniques_emit_their_ecc_parameters() -> None:
    ocv = OCV(Rest_time_T=600, Record_every_dT=10, E_Range=ERange.E_5V)  # ECC names are aliases
    assert ocv.rest_time_s == 600 and ocv.technique_id == TechniqueId.OCV
    assert [(p.ParamStr, p.ParamType, p.ParamVal) for p in ocv.ecc_params()] == [
        ("Rest_time_T", ParamType.SINGLE, 600.0), ("Record_every_dE", ParamType.SINGLE, 0.0),
        ("Record_every_dT", ParamType.SINGLE, 10.0), ("E_Range", ParamType.INT, 1)]
    two = CP(steps=[CPStep(current_A=1e-3, duration_s=60), CPStep(current_A=-1e-3, duration_s=30, vs_initial=True)],
             record_every_dT_s=1, n_cycles=2, i_range=IRange.I_10mA)
    params = {(p.ParamStr, p.ParamIndex): p.ParamVal for p in two.ecc_params()}
    assert (two.technique_id, two.ecc_name, two.step_number) == (TechniqueId.CP, "cp", 1)
    assert params[("Current_step", 1)] == pytest.approx(-1e-3) and params[("vs_initial", 1)] is True
    assert params[("Step_number", 0)] == 1 and params[("N_Cycles", 0)] == 2 and params[("I_Range", 0)] == 8
    assert not any(name.startswith("Test") for name, _ in params)
    limited = cp(1e-3, 60, tests=[LimitTest(comparison=">", value=0.5)], exit_condition=ExitCondition.STOP)
    lp = {(p.ParamStr, p.ParamIndex): p.ParamVal for p in limited.ecc_params()}
    assert (limited.technique_id, limited.ecc_name) == (TechniqueId.CPLIMIT, "cplimit")
    assert (lp[("Test1_Config", 0)], lp[("Test1_Value", 0)], lp[("Test2_Config", 0)], lp[("Exit_Cond", 0)]) == (5, 0.5, 0, 2)
    ca = CA(steps=[CAStep(voltage_V=0.1, duration_s=5, limits=[LimitTest(variable="I", comparison="<", value=1e-6)])],
            record_every_dT_s=1, record_every_dI_A=1e-6, i_range=IRange.I_1mA)
    names = [p.ParamStr for p in ca.ecc_params()]
    assert ca.technique_id == TechniqueId.CALIMIT and "Voltage_step" in names and "Record_every_dI" in names
    loop = Loop(loop_N_times=4, protocol_number=1)
    assert [(p.ParamStr, p.ParamVal) for p in loop.ecc_params()] == [("loop_N_times", 4), ("protocol_number", 1)]
    assert ecc_file(limited, 22) == "cplimit.ecc" and ecc_file(limited, 16) == "cplimit4.ecc"  # MPG-2, SP-300


def test_technique_validation() -> None:
    with pytest.raises(ValidationError):
        OCV(rest_time_s=-1, record_every_dT_s=1)
    with pytest.raises(ValidationError):
        cp(1e-3, 60, dT_s=0)
    with pytest.raises(ValidationError):
        CP(steps=[CPStep(current_A=1e-3, duration_s=1)] * 21, record_every_dT_s=1, i_range=IRange.I_1mA)
    with pytest.raises(ValidationError):
        cp(1e-3, 60, tests=[LimitTest(comparison=">", value=1)] * 4)
    with pytest.raises(ValidationError, match="AUTO"):
        CP(steps=[CPStep(current_A=1e-3, duration_s=1, limits=[LimitTest(comparison=">", value=1)])],
           record_every_dT_s=1, i_range=IRange.AUTO)
    with pytest.raises(ValidationError, match="ewe_min_V must be below"):
        ChannelSafetyLimits(ewe_max_V=1, ewe_min_V=2)
    with pytest.raises(ValidationError):
        ChannelSafetyLimits(delay_s=2)  # EC-Lab caps the safety delay at 1000 ms
    with pytest.raises(ValueError, match="technique 1 \\(Loop\\): protocol_number 1 must be an earlier"):
        check_sequence([OCV(rest_time_s=1, record_every_dT_s=1), Loop(repeat_count=1, target_index=1)])
    assert i_range_for(0.8e-3) == IRange.I_1mA and i_range_for(1e-3) == IRange.I_1mA and i_range_for(0) == IRange.I_100pA
    with pytest.raises(ValueError, match="exceeds the 1 A range"):
        i_range_for(1.5)
    assert e_range_for(5.0) == ERange.E_5V and e_range_for(2.0) == ERange.E_2_5V
    with pytest.raises(ValueError, match="±10 V"):
        e_range_for(12)


def test_execution_runs_follow_loops() -> None:
    rest = OCV(rest_time_s=1, record_every_dT_s=1)
    # 0, (1, 2) × 3 with an inner (2) × 2: loop count rises at every jump
    techniques = [rest, rest, rest, Loop(repeat_count=1, target_index=2), Loop(repeat_count=2, target_index=1)]
    assert list(execution_runs(techniques)) == [
        (0, 0), (1, 0), (2, 0), (2, 1), (1, 2), (2, 2), (2, 3), (1, 4), (2, 4), (2, 5)]


# -- the driver on the simulated instrument ---------------------------------------------------------

def test_identify_and_connection_errors() -> None:
    clock, sim, channel = rig()
    ident = channel.identify()
    assert (ident.model, ident.device_code, ident.channels, ident.firmware) == ("MPG2", 22, 1, "6.01")
    assert channel.status().end_reason == EndReason.NONE and channel.current_values().state == ChannelState.STOP
    with pytest.raises(InstrumentLost, match=r"^192\.168\.0\.9 ch 1: BL_Connect: -201"):
        BiologicChannel(sim, "192.168.0.9").connect()
    with pytest.raises(InstrumentError, match=r"USB0 ch 3: the instrument has 1 channel"):
        BiologicChannel(sim, "USB0", 3).connect()
    sim.reachable = False
    with pytest.raises(InstrumentLost, match=r"USB0 ch 1: BL_GetCurrentValues: -200"):
        channel.current_values()


def test_compiled_symmetric_cycling_runs_to_its_end() -> None:
    protocol, compiled = cycling(3)
    clock, sim, channel = rig(cell_parameters(protocol, "protocol"))
    channel.load_techniques(compiled.techniques, compiled.safety)
    channel.start()
    clock.t = 1000.0
    live = channel.current_values()
    assert live.state == ChannelState.RUN and live.I_A == pytest.approx(0.8e-3, rel=1e-6)
    # 0.8 mA × 30 Ω bulk + 2 Butler–Volmer η, I₀ = RT/(F·50 Ω cm²): charge transfer counted once
    assert live.Ewe_V == pytest.approx(0.096, abs=0.005)
    assert (live.technique_index, live.loop) == (None, None)  # nothing read yet
    channel.poll()
    assert (channel.current_values().technique_index, channel.current_values().loop) == (0, 0)
    clock.t = 1e5
    status = channel.status()
    assert (status.end_reason, compiled.end_reason(status), sim.channel(0).end_reason) == (EndReason.FINISHED, "finished", "finished")
    data = channel.data_since(0)
    steps = compiled.step_indices(data.technique_index, data.loop)
    executed = list(protocol.program().iter_steps())
    assert len(executed) == 6
    # each half-cycle: a point at its start, every Record_every_dT = 30 s, and its end at 1800 s
    assert np.array_equal(np.unique(steps, return_counts=True)[1], [61] * 6)
    for index, step, _cycle in executed:
        mine = steps == index
        assert np.allclose(data.I_A[mine], step.current_A, rtol=1e-6)
        assert np.allclose(np.diff(data.time_s[mine]), 30.0, atol=1e-4)
        assert data.time_s[mine][0] == pytest.approx(index * 1800.0, abs=1e-4)
    assert data.time_s[-1] == pytest.approx(6 * 1800.0, abs=1e-4)
    assert np.array_equal(data.record_index, np.arange(1, 367))
    assert abs(data.charge_C[-1]) < 1e-9 and data.charge_C[60] == pytest.approx(0.8e-3 * 1800, rel=1e-6)
    starts = np.flatnonzero(np.diff(steps, prepend=-1))
    assert np.all(data.run_charge_C[starts] == 0.0)
    assert np.allclose(data.run_charge_C[starts[1:] - 1], [0.8e-3 * 1800 * (-1) ** k for k in range(5)], rtol=1e-6)
    assert channel.current_values().I_A == 0.0


def test_limit_tests_end_cp_steps() -> None:
    """CCD 0.5 mA cm⁻² at 1 mA: the filament bridges in 72 s and the voltage collapses from the
    soft short at 36 s; ``Ewe < 0.05`` (next technique) ends the CP there, the OCV then runs."""
    clock, sim, channel = rig(CellParameters(ccd_mA_cm2=0.5))
    # 0.02 V: under the healthy cell's first point (the ohmic 30 mV before the double layers charge)
    channel.load_techniques([cp(1e-3, 600, tests=[LimitTest(comparison="<", value=0.02)]),
                             OCV(rest_time_s=60, record_every_dT_s=10)])
    channel.start()
    clock.t = 1e4
    status = channel.status()
    assert status.end_reason == EndReason.FINISHED
    data = channel.data_since(0)
    in_cp = data.technique_index == 0
    assert 36 <= data.time_s[in_cp][-1] < 80 and data.Ewe_V[in_cp][-1] < 0.02 < data.Ewe_V[in_cp][0]
    assert np.allclose(data.time_s[~in_cp] - data.time_s[in_cp][-1], np.arange(0, 61, 10), atol=1e-4)
    # Exit_Cond "next step": a two-step CP whose first step ends at its start point
    clock, sim, channel = rig()
    two = CP(steps=[CPStep(current_A=1e-3, duration_s=100, limits=[LimitTest(comparison=">", value=0.02)],
                           exit_condition=ExitCondition.NEXT_STEP), CPStep(current_A=-1e-3, duration_s=10)],
             record_every_dT_s=5, i_range=IRange.I_1mA)
    channel.load_techniques([two])
    channel.start()
    clock.t = 1000.0
    assert channel.status().end_reason == EndReason.FINISHED
    data = channel.data_since(0)
    assert data.I_A[0] == pytest.approx(1e-3) and np.allclose(data.I_A[1:], -1e-3)
    assert data.time_s[-1] == pytest.approx(10.0, abs=1e-4)


@pytest.mark.parametrize(("limits", "current_A", "code", "t_end"), [
    (ChannelSafetyLimits(ewe_max_V=0.02), 1e-3, SafetyCode.EWE_MAX, 0.0),   # the first point: 30 mV ohmic
    (ChannelSafetyLimits(ewe_min_V=-0.02), -1e-3, SafetyCode.EWE_MIN, 0.0),
    (ChannelSafetyLimits(abs_current_max_A=0.5e-3), 1e-3, SafetyCode.ABS_I, 0.0),
    (ChannelSafetyLimits(charge_max_C=0.0505), 1e-3, SafetyCode.CHARGE, 51.0),
])
def test_safety_limits_stop_the_channel(limits, current_A, code, t_end) -> None:
    clock, sim, channel = rig()
    channel.load_techniques([cp(current_A, 600), OCV(rest_time_s=60, record_every_dT_s=10)], limits)
    channel.start()
    clock.t = 1000.0
    status = channel.status()
    assert (status.state, status.end_reason, status.safety_code) == (ChannelState.STOP, EndReason.SAFETY_LIMIT, code)
    assert (sim.channel(0).end_reason, sim.channel(0).safety_code) == ("safety_limit", code)
    data = channel.data_since(0)
    assert data.time_s[-1] == pytest.approx(t_end, abs=1e-4) and set(data.technique_index) == {0}
    assert channel.current_values().I_A == 0.0 and sim.channel(0).current_values().I == 0.0


def _floor_program(duration_s: float) -> lab.StepProgram:
    return lab.StepProgram(steps=[lab.Loop(steps=[lab.ConstantCurrent(current_A=1e-3, duration_s=duration_s, record_interval_s=1.0),
                                                  lab.ConstantCurrent(current_A=-1e-3, duration_s=duration_s, record_interval_s=1.0)],
                                           count=3)],
                           area_cm2=1.0, safety=lab.SafetyLimits(max_abs_voltage_V=5.0, max_abs_current_A=2e-3))


def test_the_short_floor_waits_out_the_reversal_transient() -> None:
    """After a reversal a cell still shows the last half-cycle's sign (the first sample here is
    the ohmic drop on top of the opposite polarisation): the floor is compiled onto the CP's
    second step, after ``settle_s``, so a healthy channel cycles through its reversals."""
    compiled = compile_program(_floor_program(600))
    assert compiled.software_floor_steps == ()
    clock, sim, channel = rig(CellParameters(ccd_mA_cm2=5.0))
    channel.load_techniques(compiled.techniques, compiled.safety)
    channel.start()
    clock.t = 4000.0
    assert channel.status().end_reason == EndReason.FINISHED
    data = channel.data_since(0)
    steps = compiled.step_indices(data.technique_index, data.loop)
    for strip in (1, 3, 5):
        v = data.Ewe_V[steps == strip]
        # each strip's first point still has the plating sign; a floor (Ewe > −1 mV) there would stop it
        assert v[0] > 1e-3 and np.all(v[1:] < -1e-3)
    assert np.array_equal(np.unique(steps, return_counts=True)[1], [601] * 6)  # no point twice


def test_a_short_ends_the_channel_with_reason_short() -> None:
    """The compiled short floor (``Ewe < +1 mV`` on a charge, exit stop) ends the run in the
    instrument when the filament bridges (V = I·R_short)."""
    compiled = compile_program(_floor_program(3600))
    clock, sim, channel = rig(CellParameters(ccd_mA_cm2=0.5))
    channel.load_techniques(compiled.techniques, compiled.safety)
    channel.start()
    clock.t = 3e4
    status = channel.status()
    assert (status.end_reason, compiled.end_reason(status), sim.channel(0).end_reason) == (EndReason.LIMIT_STOP, "short", "limit_stop")
    assert "Ewe < 0.001" in status.detail
    data = channel.data_since(0)
    assert 36 < data.time_s[-1] < 80 and abs(data.Ewe_V[-1]) < 1e-3 < abs(data.Ewe_V[0])
    assert set(compiled.step_indices(data.technique_index, data.loop)) == {0}


def test_stop_run_pause_transitions() -> None:
    clock, sim, channel = rig()
    channel.load_techniques([cp(1e-3, 1000, dT_s=100), OCV(rest_time_s=1000, record_every_dT_s=100)])
    with pytest.raises(InstrumentError, match="pause: -6"):
        channel.pause()
    channel.start()
    assert channel.current_values().state == ChannelState.RUN
    with pytest.raises(InstrumentError, match="BL_StartChannel: -13"):
        channel.start()
    with pytest.raises(InstrumentError, match=r"technique 0 \(cp\): BL_LoadTechnique: -13"):
        channel.load_techniques([cp(1e-3, 10)])
    clock.t = 250.0
    channel.pause()
    values = channel.current_values()
    assert (values.state, values.I_A) == (ChannelState.PAUSE, 0.0)
    assert channel.poll() == 3  # 0, 100, 200 s
    clock.t = 750.0
    assert channel.poll() == 0 and channel.status().end_reason == EndReason.NONE
    channel.resume()  # 500 s paused: the CP's 1000 s end at 1500 s
    assert channel.current_values().state == ChannelState.RUN
    clock.t = 1700.0
    channel.stop()
    status = channel.status()
    assert (status.state, status.end_reason) == (ChannelState.STOP, EndReason.STOPPED)
    data = channel.data_since(0)
    in_cp = data.technique_index == 0
    assert np.allclose(data.time_s[in_cp], [0, 100, 200, 800, 900, 1000, 1100, 1200, 1300, 1400, 1500], atol=1e-4)
    assert np.allclose(data.time_s[~in_cp], [1500, 1600, 1700], atol=1e-4)
    channel.load_techniques([cp(1e-3, 10)])  # stopped: loadable again
    channel.start()
    assert channel.record_count == 0 and channel.current_values().state == ChannelState.RUN


def test_cursor_returns_every_point_once_also_after_a_crash(tmp_path: Path) -> None:
    protocol, compiled = cycling(3)
    journal = tmp_path / "ch1.bljournal"
    clock, sim, channel = rig(cell_parameters(protocol, "protocol"), journal=journal)
    channel.load_techniques(compiled.techniques, compiled.safety)
    channel.start()
    got, cursor = [], 0
    for t in (0.0, 15.0, 2000.0, 2001.0, 3599.0):
        clock.t = t
        channel.poll()
        batch = channel.data_since(cursor, max_points=40)  # the engine may take a few at a time
        got.append(batch)
        cursor = batch.last_index or cursor
    assert channel.record_count > cursor  # read from the channel, not yet handed out
    del channel  # the PC dies; the channel runs on unwatched, storing points in its memory
    clock.t = 9000.0
    sim.advance()
    assert sim.channel(0).memory_filled > 0 and sim.channel(0).state == ChannelState.RUN
    clock.t = 20000.0
    again = BiologicChannel(sim, "USB0", 1, journal_path=journal)
    again.connect()
    again.attach(compiled.techniques, compiled.safety)
    status = again.status()
    assert status.end_reason == EndReason.FINISHED and status.points_lost == 0
    got.append(again.data_since(cursor))
    index = np.concatenate([g.record_index for g in got])
    times = np.concatenate([g.time_s for g in got])
    assert np.array_equal(index, np.arange(1, 367))
    # the same as an identical channel read once at the end
    clock2, sim2, reference = rig(cell_parameters(protocol, "protocol"))
    reference.load_techniques(compiled.techniques, compiled.safety)
    reference.start()
    clock2.t = 20000.0
    reference.poll()
    whole = reference.data_since(0)
    # the channel integrates its cell from sample to sample, whenever it is asked: exactly equal
    assert np.array_equal(times, whole.time_s) and np.array_equal(np.concatenate([g.Ewe_V for g in got]), whole.Ewe_V)
    assert again.data_since(366).last_index is None


def test_reattach_without_a_journal_numbers_on() -> None:
    """No journal file: a new process numbers the channel's stored points on from what the
    run file holds; what the dead process had read but not handed on is gone."""
    protocol, compiled = cycling(1)
    clock, sim, channel = rig(cell_parameters(protocol, "protocol"))
    channel.load_techniques(compiled.techniques, compiled.safety)
    channel.start()
    clock.t = 600.0
    channel.poll()
    handed = channel.data_since(0, max_points=10)  # 21 read, 10 handed on, then the PC dies
    clock.t = 5000.0
    again = BiologicChannel(sim, "USB0", 1)
    again.connect()
    again.attach(compiled.techniques, compiled.safety, records_read=channel.record_count)
    assert again.status().end_reason == EndReason.FINISHED
    rest = again.data_since(handed.last_index)
    assert rest.record_index[0] == 22 and rest.last_index == 122 and rest.time_s[0] == pytest.approx(630.0)


def test_full_memory_loses_points_but_the_channel_runs_on() -> None:
    protocol, compiled = cycling(1)
    clock, sim, channel = rig(cell_parameters(protocol, "protocol"), memory_bytes=50 * 20)  # 50 CP rows
    channel.load_techniques(compiled.techniques, compiled.safety)
    channel.start()
    clock.t = 5000.0
    status = channel.status()
    assert sim.channel(0).end_reason == "finished" and sim.channel(0).points_stored == 50
    assert (status.record_count, status.points_lost) == (50, 122 - 50)
    assert status.end_reason == EndReason.STOPPED and "72 point(s) lost" in status.detail


def test_record_every_dE_samples_faster_than_dT() -> None:
    """A CP recording every 100 s or 10 mV stores the soft short's collapsing voltage densely."""
    clock, sim, channel = rig(CellParameters(ccd_mA_cm2=0.5))
    channel.load_techniques([CP(steps=[CPStep(current_A=1e-3, duration_s=200)], record_every_dT_s=100,
                                record_every_dE_V=0.01, i_range=IRange.I_1mA)])
    channel.start()
    clock.t = 500.0
    channel.poll()
    data = channel.data_since(0)
    assert len(data) > 10 and np.diff(data.time_s).min() == pytest.approx(1.0, abs=1e-4)  # sample_interval_s
    assert data.time_s[-1] == pytest.approx(200.0, abs=1e-4)


def test_sp300_family_ocv_rows_have_no_ece() -> None:
    clock, sim, channel = rig(device_code=16)  # SP-300
    channel.load_techniques([OCV(rest_time_s=20, record_every_dT_s=5)])
    channel.start()
    clock.t = 100.0
    words, info, _values = sim.get_data(1, 0)  # the raw BL_GetData block
    assert (info.NbRows, info.NbCols, info.TechniqueID) == (5, 3, TechniqueId.OCV)
    clock2, sim2, channel2 = rig(device_code=16)
    channel2.load_techniques([OCV(rest_time_s=20, record_every_dT_s=5)])
    channel2.start()
    clock2.t = 100.0
    assert channel2.status().end_reason == EndReason.FINISHED
    assert np.allclose(channel2.data_since(0).time_s, [0, 5, 10, 15, 20], atol=1e-4)


def test_real_backend_stub_gives_one_clear_line() -> None:
    with pytest.raises(BiologicBackendMissing) as info:
        EasyBiologicBackend()
    message = str(info.value)
    assert "\n" not in message and "pip install 'labctl[biologic]'" in message and "easy-biologic" in message
