"""Step program → BioLogic technique list (labctl/engine/biologic_compile.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.biologic import (
    CP,
    OCV,
    ChannelState,
    ChannelStatus,
    EndReason,
    ERange,
    ExitCondition,
    IRange,
    LimitTest,
    SafetyCode,
    TechniqueId,
    execution_runs,
)
from labctl import steps as lab
from drivers.biologic import BiologicCompileError, BiologicProgram, compile_program
from protocols import SymmetricCycling, load_protocol

EXAMPLES = Path(__file__).resolve().parents[2] / "protocols" / "examples"


def shortened(name: str, cycles: int, **changes) -> SymmetricCycling:
    protocol = load_protocol(EXAMPLES / name)
    return SymmetricCycling.model_validate({**protocol.model_dump(), "total_time_h": None, "cycles": cycles, **changes})


def program(*steps, **kw) -> lab.StepProgram:
    return lab.StepProgram(steps=list(steps), area_cm2=1.0,
                           safety=lab.SafetyLimits(max_abs_voltage_V=kw.pop("max_V", 5.0), max_abs_current_A=kw.pop("max_A", 2.0)),
                           **kw)


def test_symmetric_cycling_compiles_to_a_cp_pair_and_a_loop() -> None:
    compiled = compile_program(shortened("cycling_llzo_0p8.yaml", 3).program())
    plate, strip, loop = compiled.techniques
    assert [t.technique_id for t in compiled.techniques] == [TechniqueId.CPLIMIT, TechniqueId.CPLIMIT, TechniqueId.LOOP]
    assert (loop.repeat_count, loop.target_index) == (2, 0)
    for technique, sign in ((plate, 1), (strip, -1)):
        # a settling step of one record interval (≥ settle_s = 1 s), then the rest of the half-cycle
        settle, step = technique.steps
        assert settle.current_A == step.current_A == pytest.approx(sign * 0.8e-3)
        assert (settle.duration_s, step.duration_s) == (30.0, 1770.0)
        assert (technique.record_every_dT_s, technique.record_every_dE_V) == (30.0, 0.0)
        assert (technique.i_range, technique.e_range) == (IRange.I_1mA, ERange.E_5V)
        # the reversal transient (the first samples keep the last half-cycle's sign) is not judged
        assert settle.limits == () and settle.exit_condition == ExitCondition.NEXT_TECHNIQUE
        # the short floor, as a stop: below +1 mV while plating, above −1 mV while stripping
        assert step.limits == (LimitTest(comparison="<" if sign > 0 else ">", value=sign * 1e-3),)
        assert step.exit_condition == ExitCondition.STOP
    s = compiled.safety
    assert (s.ewe_max_V, s.ewe_min_V, s.abs_current_max_A) == (5.0, -5.0, pytest.approx(0.8e-3 * 1.001))
    assert compiled.n_steps == 6 and compiled.software_floor_steps == ()
    text = compiled.to_json()  # the "native program" text, with the ECC names
    assert '"Current_step": 0.0008' in text and '"loop_N_times": 2' in text and '"Exit_Cond": 2' in text
    assert BiologicProgram.from_json(text) == compiled
    with pytest.raises(ValueError, match="^not a compiled Biologic program: "):
        BiologicProgram.from_json("<root/>")


def test_step_indices_follow_iter_steps_across_two_loops() -> None:
    """Activation loop + cycling loop (the FSE example, shortened): every technique run the
    channel executes maps onto the program's executed step index, in order."""
    protocol = shortened("cycling_fse_12000h.yaml", 4, activation={"current_density_mA_cm2": 0.1,
                                                                   "half_cycle_s": 3600, "duration_h": 6})
    prog = protocol.program()
    compiled = compile_program(prog)
    assert [type(t).__name__ for t in compiled.techniques] == ["CP", "CP", "Loop", "CP", "CP", "Loop"]
    assert compiled.techniques[5].target_index == 3 and compiled.techniques[2].repeat_count == 2
    runs = np.array(list(execution_runs(compiled.techniques)))
    indices = compiled.step_indices(runs[:, 0], runs[:, 1])
    executed = list(prog.iter_steps())
    assert indices.tolist() == [i for i, _s, _c in executed] == list(range(prog.n_steps))
    currents = [compiled.techniques[t].steps[0].current_A for t in runs[:, 0]]
    assert currents == pytest.approx([s.current_A for _i, s, _c in executed])
    assert compiled.step_index(3, 2) == 6 and compiled.step_index(4, 5) == 13
    with pytest.raises(ValueError, match="no program step runs as technique 0 at loop 3"):
        compiled.step_index(0, 3)
    with pytest.raises(ValueError, match="technique 2"):
        compiled.step_index(2, 0)  # the Loop itself stores no points


def test_rests_charge_stops_and_voltage_stops() -> None:
    compiled = compile_program(program(
        lab.Rest(duration_s=600, record_interval_s=60),
        lab.ConstantCurrent(current_A=2e-4, stop_charge_C=0.36, duration_s=3600, record_interval_s=10),
        lab.ConstantCurrent(current_A=-2e-4, stop_voltage_below_V=-1.0, stop_voltage_above_V=0.5, duration_s=900,
                            record_interval_s=10, label="strip to -1 V"),
        lab.ConstantCurrent(current_A=0.0, duration_s=60, record_interval_s=5),
    ))
    rest, charge, strip, zero = compiled.techniques
    assert isinstance(rest, OCV) and (rest.rest_time_s, rest.record_every_dT_s) == (600, 60)
    # 0.36 C / 0.2 mA = 1800 s: a 10 s settling step (settle_s 1 s in whole record intervals), then the floor
    assert isinstance(charge, CP) and [s.duration_s for s in charge.steps] == pytest.approx([10.0, 1790.0])
    assert charge.steps[1].limits == (LimitTest(comparison="<", value=1e-3),)
    assert charge.i_range == IRange.I_1mA
    assert strip.steps[0].limits == (LimitTest(comparison=">", value=0.5), LimitTest(comparison="<", value=-1.0))
    assert strip.steps[0].exit_condition == ExitCondition.NEXT_TECHNIQUE
    assert compiled.software_floor_steps == (2,)  # one Exit_Cond per step: the floor stays with the engine
    assert isinstance(zero, OCV) and zero.rest_time_s == 60
    assert compiled.step_indices(np.arange(4), np.zeros(4, int)).tolist() == [0, 1, 2, 3]
    quiet = compile_program(program(lab.ConstantCurrent(current_A=1e-3, duration_s=10, record_interval_s=1),
                                    short_detection=lab.ShortDetection(enabled=False)))
    assert quiet.techniques[0].technique_id == TechniqueId.CP and not quiet.techniques[0].steps[0].limits


def test_what_biologic_cannot_express_names_the_step() -> None:
    with pytest.raises(BiologicCompileError, match=r"^step 1 \(big\): \|current\| 1.5 A exceeds the 1 A range"):
        compile_program(program(lab.Rest(duration_s=1, record_interval_s=1),
                                lab.ConstantCurrent(current_A=1.5, duration_s=10, record_interval_s=1, label="big")))
    with pytest.raises(BiologicCompileError, match=r"^step 0: a BioLogic CP step needs a Duration_step"):
        compile_program(program(lab.ConstantCurrent(current_A=1e-3, stop_voltage_above_V=1.0, record_interval_s=1)))
    with pytest.raises(BiologicCompileError, match=r"^step 0: a 0 A step needs duration_s"):
        compile_program(program(lab.ConstantCurrent(current_A=0.0, stop_charge_C=1.0, record_interval_s=1)))
    with pytest.raises(BiologicCompileError, match=r"^safety.max_abs_voltage_V: 20 V exceeds the ±10 V E_Range"):
        compile_program(program(lab.Rest(duration_s=1, record_interval_s=1), max_V=20.0))


def test_end_reasons_in_the_engines_words() -> None:
    compiled = compile_program(program(lab.Rest(duration_s=1, record_interval_s=1)))

    def status(reason: EndReason) -> ChannelStatus:
        return ChannelStatus(ChannelState.STOP, reason, "", SafetyCode.OK, 0, 0)

    assert [compiled.end_reason(status(r)) for r in EndReason] == [None, "finished", "stopped", "safety_limit", "short"]
