"""Loops with an exit condition, CC-CV and rest until a voltage, on the 2400 (software-timed) and
on both cyclers (compiled to NEWARE step files and BioLogic technique lists, run by their
simulators): the same steps end for the same reasons, and a loop left by its ``until`` goes on
after the loop (on a cycler, where the loop is the program's last entry, the run completes)."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.biologic import BiologicCompileError
from drivers.biologic import compile_native as biologic_native
from drivers.neware import StepFileError, compile_program
from drivers.sim.inprocess import InProcessSourceMeter
from drivers.sim.physics.cathode import CATHODE_PRESETS, CathodeHalfCell
from drivers.sim.physics.cell import CellParameters, SymmetricCell
from drivers.sim.physics.plating import PlatingParameters, PlatingToShortCell
from drivers.sim.smu import SourceMeterModel
from labctl.engine import ResumePoint, SoftwareTimedExecutor, VirtualClock
from labctl.events import Detected, StepEnded, StepStarted
from labctl.steps import (
    ConstantCurrent,
    ConstantVoltage,
    Loop,
    LoopUntil,
    Rest,
    SafetyLimits,
    ShortDetection,
    StepProgram,
)
from tests.engine.test_delegated import read, rig  # noqa: F401 - the fixture

#: A small LFP half-cell (0.0135 mAh: 1C = 13.5 µA), noise-free, from discharged.
LFP = CATHODE_PRESETS["lfp_fse"].__class__(**{**CATHODE_PRESETS["lfp_fse"].as_dict(), "active_mass_mg": 0.1,
                                              "area_cm2": 1.0, "noise_V": 0.0})
ONE_C_A = LFP.capacity_mAh * 1e-3


def lfp() -> CathodeHalfCell:
    return CathodeHalfCell(LFP)


def plating_cell(seed: int = 0) -> PlatingToShortCell:
    """A Li | SSE | Li cell shorting after 0.009 mAh cm⁻² plated in one direction (162 s at 0.2 mA cm⁻²)."""
    base = SymmetricCell(CellParameters(noise_V=0.0, ccd_mA_cm2=10.0, seed=seed))
    return PlatingToShortCell(base, PlatingParameters(area_cm2=1.0, capacity_to_short_mAh_cm2=0.009,
                                                      capacity_to_short_spread=0.0, soft_short_window_mAh_cm2=0.0))


def pulses(until: LoopUntil | None, *, after: bool) -> StepProgram:
    """1C charge pulses of 120 s with 60 s rests, 100 times (far past full), until ``until``."""
    body = [ConstantCurrent(current_A=ONE_C_A, duration_s=120, record_interval_s=10, label="pulse"),
            Rest(duration_s=60, record_interval_s=10, label="rest")]
    entries = [Loop(steps=body, count=100, until=until)]
    if after:
        entries.append(Rest(duration_s=30, record_interval_s=10, label="after"))
    return StepProgram(steps=entries, area_cm2=1.0, short_detection=ShortDetection(enabled=False),
                       safety=SafetyLimits(max_abs_voltage_V=10.0, max_abs_current_A=1e-3))


def run_2400(load, program: StepProgram, resume: ResumePoint | None = None):
    clock = VirtualClock()
    events: list = []
    smu = InProcessSourceMeter(SourceMeterModel(load, clock.now))
    outcome = SoftwareTimedExecutor(smu, clock, subscribers=[events.append]).run(program, resume=resume)
    return outcome, events


def summaries(events: list) -> list:
    return [e.summary for e in events if isinstance(e, StepEnded)]


def test_a_voltage_exit_ends_the_step_and_the_loop_and_the_run_goes_on_after_it() -> None:
    program = pulses(LoopUntil(kind="voltage_above", voltage_V=3.6), after=True)
    outcome, events = run_2400(lfp(), program)
    steps = summaries(events)
    assert outcome.status == "completed"
    last_pulse, after = steps[-2], steps[-1]
    assert last_pulse.label == "pulse" and last_pulse.reason == "until" and last_pulse.voltage_end_V >= 3.6
    assert after.label == "after" and after.step_index == program.n_steps - 1  # indices skip the unrun passes
    assert 10 < last_pulse.cycle < 100  # left early: the cell filled up
    exits = [e for e in events if isinstance(e, Detected) and e.kind == "loop_exit"]
    assert len(exits) == 1 and "V ≥ 3.6 V" in exits[0].message
    assert all(s.reason in ("time", "until") for s in steps[:-1])


def test_until_short_records_the_short_leaves_the_loop_and_does_not_end_the_run() -> None:
    body = [ConstantCurrent(current_A=0.2e-3, duration_s=36, record_interval_s=1, label="plate"),
            Rest(duration_s=5, record_interval_s=1, label="rest")]
    program = StepProgram(steps=[Loop(steps=body, count=50, until=LoopUntil(kind="short")),
                                 Rest(duration_s=10, record_interval_s=1, label="after")],
                          area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=1e-3))
    outcome, events = run_2400(plating_cell(), program)
    steps = summaries(events)
    assert outcome.status == "completed"
    shorted = [s for s in steps if s.reason in ("short", "soft_short")]
    assert len(shorted) == 1 and shorted[0].label == "plate"
    assert steps[-1].label == "after" and steps[-1].step_index == 100
    # 0.009 mAh cm⁻² at 0.2 mA cm⁻² = 162 s of plating: in the fifth 36 s chunk
    assert shorted[0].cycle == 5
    assert [e.kind for e in events if isinstance(e, Detected)].count("short") == 1


def test_until_short_needs_a_current_step_and_detection() -> None:
    rest = Rest(duration_s=5, record_interval_s=1)
    with pytest.raises(ValueError, match="until: short needs a constant-current step"):
        Loop(steps=[rest], count=2, until=LoopUntil(kind="short"))
    with pytest.raises(ValueError, match="need voltage_V"):
        LoopUntil(kind="voltage_below")
    cc = ConstantCurrent(current_A=1e-4, duration_s=5, record_interval_s=1)
    with pytest.raises(ValueError, match="short_detection enabled"):
        StepProgram(steps=[Loop(steps=[cc], count=2, until=LoopUntil(kind="short"))], area_cm2=1.0,
                    short_detection=ShortDetection(enabled=False),
                    safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=1e-3))


def test_a_resume_right_after_a_loop_exit_goes_on_after_the_loop() -> None:
    program = pulses(LoopUntil(kind="voltage_above", voltage_V=3.6), after=True)
    outcome, events = run_2400(lfp(), program, ResumePoint(step_index=25, t_offset_s=5000.0, previous_reason="until"))
    started = [e for e in events if isinstance(e, StepStarted)]
    assert [s.label for s in started] == ["after"] and started[0].step_index == program.n_steps - 1
    # … but after an ordinary step end it continues inside the loop.
    outcome, events = run_2400(lfp(), pulses(None, after=True), ResumePoint(step_index=25, t_offset_s=5000.0,
                                                                           previous_reason="time"))
    assert [e for e in events if isinstance(e, StepStarted)][0].step_index == 25


#: A small NMC811 half-cell (0.0215 mAh), noise-free, with a resistive interface (500 Ω cm²):
#: the CC's last reading passes the cut-off by less than the ohmic drop, so the CV charges.
NMC = CATHODE_PRESETS["nmc811_fse"].__class__(**{**CATHODE_PRESETS["nmc811_fse"].as_dict(), "active_mass_mg": 0.1,
                                                 "area_cm2": 1.0, "noise_V": 0.0, "series_asr_ohm_cm2": 500.0})
NMC_1C_A = NMC.capacity_mAh * 1e-3


def nmc() -> CathodeHalfCell:
    return CathodeHalfCell(NMC)


def cccv() -> StepProgram:
    """CC charge to 4.2 V, CV at 4.2 V until C/20, rest until the voltage relaxes to 4.195 V, a
    1C discharge to 3.0 V — twice."""
    body = [ConstantCurrent(current_A=NMC_1C_A, duration_s=7200, stop_voltage_above_V=4.2, record_interval_s=10,
                            label="charge"),
            ConstantVoltage(voltage_V=4.2, duration_s=7200, stop_current_below_A=NMC_1C_A / 20, direction="charge",
                            record_interval_s=10, label="CV"),
            Rest(duration_s=3600, stop_voltage_below_V=4.195, record_interval_s=10, label="relax"),
            ConstantCurrent(current_A=-NMC_1C_A, duration_s=7200, stop_voltage_below_V=3.0, record_interval_s=10,
                            label="discharge")]
    return StepProgram(steps=[Loop(steps=body, count=2)], area_cm2=1.0, short_detection=ShortDetection(enabled=False),
                       safety=SafetyLimits(max_abs_voltage_V=10.0, max_abs_current_A=1e-3))


def test_cc_cv_and_rest_until_a_voltage_end_for_the_same_reasons_on_the_2400_and_both_cyclers(rig) -> None:
    program = cccv()
    outcome, events = run_2400(nmc(), program)
    reference = summaries(events)
    assert outcome.status == "completed"
    assert [s.reason for s in reference] == ["voltage", "current", "voltage", "voltage"] * 2
    r = rig(nmc())
    outcome, path = r.run(program)
    assert outcome.status == "completed", outcome.reason
    _, steps, _ = read(path)
    assert [s["reason"] for s in steps] == [s.reason for s in reference]
    for mine, theirs in zip(steps, reference):
        # within one reading: the 2400's readings carry its range's resolution (0.1 mV at 4.2 V),
        # a cycler's its own, so a threshold may be seen one reading apart
        assert mine["end_s"] - mine["start_s"] == pytest.approx(theirs.end_s - theirs.start_s, abs=10.0)
        assert mine["charge_C"] == pytest.approx(theirs.charge_C, rel=0.02, abs=1e-7)
    # the CV step's current at its end is the cut-off's, and it charged
    cv = steps[1]
    assert cv["kind"] == "constant_voltage" and 0 < cv["current_A"] <= NMC_1C_A / 20 and cv["charge_C"] > 0
    assert cv["end_s"] - cv["start_s"] > 60


def test_a_voltage_exit_of_the_last_loop_runs_in_the_cycler_and_the_run_completes(rig) -> None:
    program = pulses(LoopUntil(kind="voltage_above", voltage_V=3.6), after=False)
    _, events = run_2400(lfp(), program)
    reference = summaries(events)
    r = rig(lfp())
    outcome, path = r.run(program)
    assert outcome.status == "completed" and "left at step" in outcome.reason
    _, steps, events_ = read(path)
    assert [s["step_index"] for s in steps] == [s.step_index for s in reference]
    assert steps[-1]["reason"] == "until" and "loop_exit" in [e["kind"] for e in events_]
    assert r.state() in ("finish", "stop", "protect")  # ended: NEWARE by its jump, BioLogic by its stop test


@pytest.mark.parametrize(("window", "decided_by"), [(0.0, "cycler"), (0.002, "labctl")])
def test_until_short_on_a_cycler_leaves_the_last_loop_and_the_run_completes(rig, window, decided_by) -> None:
    """A hard short (no soft phase) trips the cycler's own floor; a soft short before it is
    labctl's detection, which stops the channel. Either way the loop is left and the run done."""
    body = [ConstantCurrent(current_A=0.2e-3, duration_s=36, record_interval_s=1, label="plate")]
    program = StepProgram(steps=[Loop(steps=body, count=50, until=LoopUntil(kind="short"))], area_cm2=1.0,
                          safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=1e-3))
    base = SymmetricCell(CellParameters(noise_V=0.0, ccd_mA_cm2=10.0))
    cell = PlatingToShortCell(base, PlatingParameters(area_cm2=1.0, capacity_to_short_mAh_cm2=0.009,
                                                      capacity_to_short_spread=0.0, soft_short_window_mAh_cm2=window))
    r = rig(cell)
    outcome, path = r.run(program, poll_s=30.0)
    assert outcome.status == "completed" and "short" in outcome.reason
    cols, steps, events = read(path)
    kinds = [e["kind"] for e in events]
    shorted = [s for s in steps if s["reason"] in ("short", "soft_short")]
    assert "loop_exit" in kinds and len(shorted) == 1
    assert all(s["reason"] == "stopped" for s in steps[steps.index(shorted[0]) + 1:])  # cut by labctl's stop
    assert ("cycler_stopped" in kinds) == (decided_by == "labctl")
    assert r.state() in ("stop", "protect")
    short_t = next(e["t_s"] for e in events if e["kind"] in ("short", "soft_short"))
    # 0.009 mAh cm⁻² at 0.2 mA cm⁻² = 162 s; a soft short starts 0.002 mAh cm⁻² (36 s) earlier
    assert short_t == pytest.approx(162.0 - (36.0 if window else 0.0), abs=8.0)


@pytest.mark.parametrize(("compile_", "error"), [(compile_program, StepFileError),
                                                 (biologic_native, BiologicCompileError)])
def test_a_cycler_refuses_a_loop_with_until_that_is_not_the_last_entry(compile_, error) -> None:
    with pytest.raises(error, match=r"^step 0 \(loop until voltage_above\): .* must be the program's last entry"):
        compile_(pulses(LoopUntil(kind="voltage_above", voltage_V=3.6), after=True))


def test_neware_writes_the_exit_and_the_rest_stop_as_jump_conditions_and_cv_as_its_cv_step() -> None:
    xml = compile_program(pulses(LoopUntil(kind="voltage_above", voltage_V=3.6), after=False)).to_xml()
    # pulse and rest each jump to the End step (Step4, after the cycle step 3) at V > 3.6 V
    assert xml.count('CmpType="3" Jump_Line="4" Value="36000"') == 2
    cc = compile_program(cccv()).to_xml()
    assert 'Step_Type="3"' in cc and '<Volt Value="42000"' in cc and '<Stop_Curr Value="' in cc
    assert 'type="1" Function="0" CmpType="5" Jump_Line="65526" Value="41950"' in cc  # relax until V < 4.195 V
    native = biologic_native(cccv())
    assert '"kind": "ca"' in native and '"Voltage_step": 4.2' in native
    assert '"comparison": "<"' in native and '"variable": "I"' in native


def test_the_same_per_cycle_charge_on_all_three_with_noise_free_cells(rig) -> None:
    program = cccv()
    _, events = run_2400(nmc(), program)
    ref = np.array([s.charge_C for s in summaries(events)])
    outcome, path = rig(nmc()).run(program)
    _, steps, _ = read(path)
    got = np.array([s["charge_C"] for s in steps])
    # the CC steps to the instruments' resolution (the 2400's current range, BioLogic's float32);
    # the CV holds to their integration (the 2400 engine counts each reading's current until the next)
    np.testing.assert_allclose(got[[0, 3, 4, 7]], ref[[0, 3, 4, 7]], rtol=1e-4)
    np.testing.assert_allclose(got[[1, 5]], ref[[1, 5]], rtol=0.05)
