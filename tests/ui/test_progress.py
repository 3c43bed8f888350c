"""Progress of a run (step n / N, time left, elapsed and remaining with pauses excluded), the
axes' ticks, the thinning of step markers and the window's text: plain functions, no window."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from labctl.steps import ConstantCurrent, Loop, Rest, SafetyLimits, StepProgram, VoltageSweep
from labctl.store import RunFile
from tests.ui.conftest import finished_run
from ui.axes import TimeAxis, decade_label, time_unit
from ui.plot_tools import thin_markers
from ui.progress import ProgramTimeline, RunProgress, format_clock, format_duration
from ui.text import tidy


def program() -> StepProgram:
    """A 60 s rest, then 3 cycles of ±1 mA for 100 s each, then a 10 s sweep."""
    return StepProgram(
        steps=[Rest(duration_s=60, record_interval_s=1, label="rest"),
               Loop(count=3, steps=[ConstantCurrent(current_A=1e-3, duration_s=100, record_interval_s=1, label="plate"),
                                    ConstantCurrent(current_A=-1e-3, duration_s=100, record_interval_s=1,
                                                    label="strip")]),
               VoltageSweep(points_V=[0.0] * 500, source_delay_s=0.0, nplc=1.0, label="sweep")],
        area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.1))


def test_timeline_knows_every_steps_planned_start_without_unrolling():
    tl = ProgramTimeline(program())
    assert tl.n_steps == 8 and tl.planned_s == pytest.approx(60 + 600 + 10)
    assert [tl.planned_start_s(k) for k in range(8)] == pytest.approx([0, 60, 160, 260, 360, 460, 560, 660])
    assert tl.planned_duration_s(7) == pytest.approx(10.0) and tl.kind(7) == "voltage_sweep"
    assert tl.remaining_by_kind(2) == {"constant_current": (pytest.approx(400.0), 4), "voltage_sweep": (pytest.approx(10.0), 1)}
    big = StepProgram(steps=[Loop(count=1_000_000, steps=[Rest(duration_s=1, record_interval_s=1)])], area_cm2=1,
                      safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.1))
    assert ProgramTimeline(big).planned_start_s(999_999) == 999_999.0  # O(entries), not O(steps)


def test_pauses_are_excluded_from_elapsed_step_progress_and_remaining():
    """A 5.8 h pause left "remaining ≤ 7.71 h" before: the pause counted as progress."""
    p = RunProgress(program())
    p.add_step_starts([(0.0, 0), (60.0, 1)])
    p.add_steps([{"step_index": 0, "kind": "rest", "start_s": 0.0, "end_s": 60.0}])
    p.add_events([{"kind": "paused", "t_s": 80.0}, {"kind": "resumed", "t_s": 80.0 + 5.8 * 3600}])
    at = p.at(90.0 + 5.8 * 3600)  # 30 s of step 1 run, around a 5.8 h pause
    assert at.step_index == 1 and at.label == "plate" and at.cycle == 1 and at.n_steps == 8
    assert at.step_elapsed_s == pytest.approx(30.0) and at.step_left_s == pytest.approx(70.0)
    assert at.paused_s == pytest.approx(5.8 * 3600) and at.elapsed_s == pytest.approx(90.0)
    assert at.remaining_s == pytest.approx(670.0 - 90.0)
    p.add_events([{"kind": "paused", "t_s": 100.0 + 5.8 * 3600}])  # paused again, still paused
    now = p.at(200.0 + 5.8 * 3600)
    assert now.paused and now.step_left_s == pytest.approx(60.0) and now.remaining_s == pytest.approx(570.0)
    # a simulated clock stands still while paused: spans of no length, nothing excluded
    q = RunProgress(program())
    q.add_step_starts([(0.0, 0)])
    q.add_events([{"kind": "paused", "t_s": 20.0}, {"kind": "resumed", "t_s": 20.0}])
    assert q.at(30.0).elapsed_s == 30.0 and q.pauses.closed(30.0) == [(20.0, 20.0)]


def test_remaining_follows_the_pace_of_instrument_steps(tmp_path_factory):
    """c-AFM "2.9 min" planned took 5.4–14.6 min, "remaining ≤ 0 s" at sweep 3 of 17: the
    current maps and tip moves have no estimate and the sweeps took longer than their points
    say. At sweep 3 the remaining time follows the pace so far and is close to what is left."""
    path = finished_run(tmp_path_factory, "cafm_gb_vs_gi.yaml")
    with RunFile(path) as run:
        attrs = run.attrs
    from ui.plot_set import PlotSet

    prog = PlotSet.program_of(attrs)
    tl = ProgramTimeline(prog)
    # a slow bench: maps 100 s (planned 0), moves 3 s (planned 0), sweeps 1.5 × their estimate
    actual = {"current_map": lambda k: 100.0, "tip_move": lambda k: 3.0,
              "voltage_sweep": lambda k: 1.5 * tl.planned_duration_s(k)}
    rows, t = [], 0.0
    for index, step, _cycle in prog.iter_steps():
        d = actual[step.kind](index)
        rows.append({"step_index": index, "kind": step.kind, "start_s": t, "end_s": t + d})
        t += d
    end_s = t
    third = [r for r in rows if r["kind"] == "voltage_sweep"][2]
    p = RunProgress(prog)
    done = [r for r in rows if r["step_index"] < third["step_index"]]
    p.add_step_starts([(r["start_s"], r["step_index"]) for r in done + [third]])
    p.add_steps(done)
    now = third["start_s"] + 0.5 * (third["end_s"] - third["start_s"])
    at = p.at(now)
    left = end_s - now
    assert abs(at.remaining_s - left) < 0.1 * left, (at.remaining_s, left)
    assert prog.planned_duration_s - now < 0.3 * left  # what "remaining = planned − elapsed" said


def test_durations_read_in_the_unit_that_fits():
    assert format_duration(42) == "42 s" and format_duration(750) == "12.5 min"
    assert format_duration(7.71 * 3600) == "7.71 h" and format_duration(12_000 * 3600) == "500.0 d"
    assert format_clock(5400) == "1:30:00" and format_clock(3 * 86400 + 4 * 3600 + 5 * 60) == "3 d 04:05"
    assert time_unit(30) == (1.0, "s") and time_unit(5400) == (60.0, "min")
    assert time_unit(9 * 3600) == (3600.0, "h") and time_unit(12_000 * 3600) == (86400.0, "d")


def test_axes_read_naturally(qtbot):
    axis = TimeAxis("bottom")
    levels = axis.tickSpacing(0.0, 1.0, 600)  # an empty plot: 0 … 1 s, not "5e-05 … 0.00025 h"
    assert axis.unit == "s" and axis.labelText == "test time (s)"
    assert axis.tickStrings([0.0, 0.2, 0.4], 1.0, levels[0][0]) == ["0.0", "0.2", "0.4"]
    levels = axis.tickSpacing(0.0, 43_200_000.0, 600)  # 12 000 h
    assert axis.unit == "d" and axis.tickStrings([0.0, 8_640_000.0], 1.0, levels[0][0]) == ["0", "100"]
    assert decade_label(-6) == "10⁻⁶" and decade_label(0) == "10⁰"


def test_step_markers_are_thinned_to_what_the_pixels_show():
    starts = np.arange(0.0, 12_000 * 3600.0, 1800.0)  # 24 000 steps of a 12 000 h run
    shown = thin_markers(starts, 0.0, starts[-1], 800.0)
    assert 40 <= len(shown) <= 81  # one per 10 px at most
    assert np.all(np.diff(shown[:-1]) >= starts[-1] / 800.0 * 10.0 * 0.99)
    zoom = thin_markers(starts, 0.0, 10 * 1800.0, 800.0)
    assert len(zoom) == 11  # zoomed in: every one


def test_text_in_the_windows_units():
    text = "short circuit at 1.9 mA cm-2, t = 32436.0 s (step 36): |V| fell"
    assert tidy(text) == "short circuit at 1.9 mA cm⁻², t = 9.01 h (step 36): |V| fell"
    assert tidy("plate 0.8 mA cm-2") == "plate 0.8 mA cm⁻²" and tidy("300 um, 2 uA") == "300 µm, 2 µA"
    assert tidy("200.6 mAh g-1, 2.7e-10 S cm-1") == "200.6 mAh g⁻¹, 2.7e-10 S cm⁻¹" and tidy("cycling-1") == "cycling-1"


def test_the_engine_leaves_a_pause_out_of_the_step_mean(tmp_path_factory):
    """The pause's 0 A readings were averaged into the step's mean overpotential (~0 mV
    plotted): the mean is over the readings under the step's current only."""
    path = finished_run(tmp_path_factory, "pause_mean")
    with h5py.File(path, "r") as f:
        ch = f["channels"][list(f["channels"])[0]]
        t, v, k = ch["test_time_s"][()], ch["voltage_V"][()], ch["step_index"][()]
        events = f["events"][()]
        steps = f["steps"][()]
    paused = [float(e["t_s"]) for e in events if e["kind"] == b"paused"]
    resumed = [float(e["t_s"]) for e in events if e["kind"] == b"resumed"]
    assert len(paused) == len(resumed) == 1
    row = steps[steps["step_index"] == 0][0]
    in_step = k == 0
    in_pause = (t >= paused[0]) & (t < resumed[0])
    assert in_pause.sum() >= 10  # real time: the pause recorded the open-circuit voltage
    assert row["voltage_mean_V"] == pytest.approx(v[in_step & ~in_pause].mean(), rel=1e-9)
    assert abs(row["voltage_mean_V"] - v[in_step].mean()) > 0.1 * abs(row["voltage_mean_V"])


def test_a_stall_per_step_shares_one_event_row(qtbot):
    """A paced run the computer cannot keep up with logs a stall each step: the event log shows
    them as one row that counts them (the newest message), not a column that hides the rest."""
    from ui.event_log import EventLog

    log = EventLog()
    qtbot.addWidget(log)

    def stall(step: int) -> dict:
        return {"t_s": 900.0 * step, "kind": "stall", "step_index": step,
                "message": f"the computer fell behind ×600 in step {step}: 20 s of test time held back"}

    log.add_events([{"t_s": 0.0, "kind": "run_started", "step_index": 0, "message": "run started at step 0"},
                    stall(3), stall(4)])
    log.add_events([stall(5)])  # in a later batch too
    assert log.kinds() == ["run_started", "stall"]
    assert log.messages()[1] == ("3 steps in a row since step 3; the newest: the computer fell behind ×600 in step 5: "
                                 "20 s of test time held back")
    log.add_events([{"t_s": 4600.0, "kind": "short", "step_index": 5, "message": "short circuit"}, stall(6)])
    assert log.kinds() == ["run_started", "stall", "short", "stall"]  # another event in between: a new row
    assert log.messages()[-1].endswith("held back")
