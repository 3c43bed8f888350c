"""Every number on screen equals what the run file says: one test per wrong number an
operator found (issue 14), each at its cause (offscreen)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from labctl.store.follow import Update
from tests.conftest import EXAMPLES, REPO
from tests.ui.conftest import finished_run
from ui.progress import format_duration

_SUP = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def shown_values(axis) -> list[float]:
    """The numbers an axis's labels read (log mode: what the labels say, in the data's unit)."""
    lo, hi = axis.range
    levels = axis.tickValues(lo, hi, max(axis.height(), 200))
    out = []
    for spacing, values in levels[:2]:
        for text in axis.tickStrings(values, axis.autoSIPrefixScale * axis.scale, spacing):
            text = text.strip().replace("·", "*")
            if not text:
                continue
            if text.startswith("10") and any(c in text for c in "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"):
                out.append(10.0 ** int(text[2:].translate(_SUP)))
            else:
                out.append(float(text.replace("−", "-")))
    return out


def test_cafm_log_axis_after_a_memristor_run_reads_the_compliance(window_factory, qtbot, tmp_path_factory):
    """After a memristor run in the same window, the c-AFM run's log |I| axis read ~3 × 10² A
    at the 500 µA compliance (pyqtgraph kept the memristor's µ prefix when the prefix was
    turned off for the log axis)."""
    memristor = finished_run(tmp_path_factory, "memristor_pad.yaml")
    cafm = finished_run(tmp_path_factory, "cafm_gb_vs_gi.yaml")
    window = window_factory(simulate=False)
    assert window.open_run_file(memristor)
    qtbot.waitUntil(lambda: window.view.finished and window.sweep_plots.n_points == len(window.view.buffer) > 0,
                    timeout=20_000)
    assert window.open_run_file(cafm)
    plots = window.sweep_plots
    qtbot.waitUntil(lambda: window.view.finished and plots.n_points == len(window.view.buffer) > 0, timeout=20_000)
    axis = plots.iv_plot.getAxis("left")
    peak = float(np.max(np.abs(window.view.buffer.view("current_A"))))
    qtbot.waitUntil(lambda: axis.range[0] < np.log10(peak) < axis.range[1] < np.log10(peak) + 1, timeout=5_000)
    assert axis.logMode and axis.autoSIPrefixScale == 1.0 and axis.labelUnitPrefix == ""
    shown = shown_values(axis)
    assert 1e-4 < peak <= 1.001e-3  # the junction at its compliance
    assert max(shown) <= 10 * peak and max(shown) >= peak / 10, shown  # the labels read amperes
    plots.log_box.setChecked(False)  # linear: an SI prefix for the range in view (µA, mA)
    qtbot.waitUntil(lambda: axis.labelUnitPrefix in ("m", "µ"), timeout=5_000)
    plots.log_box.setChecked(True)
    assert axis.autoSIPrefixScale == 1.0
    qtbot.waitUntil(lambda: axis.range[0] < np.log10(peak) < axis.range[1] < np.log10(peak) + 1, timeout=5_000)
    assert max(shown_values(axis)) <= 10 * peak


def test_the_state_is_the_runs_end_as_soon_as_its_end_event_arrives(window_factory, qtbot, tmp_path_factory):
    """"run: ended (running)" for seconds after a c-AFM run: the end was read from the root
    attributes, which say "running" until the run's results are stored."""
    window = window_factory(simulate=False)
    path = finished_run(tmp_path_factory, "memristor_pad.yaml")
    assert window.open_run_file(path)
    view = window.view
    view.watcher.stop()  # from here the test hands the window what a follower would
    attrs = dict(view.attrs or {"protocol_kind": "cafm_trigger_sweep"}, status="running")
    window._on_update(view, Update(attrs=attrs))
    window._on_update(view, Update(events=[{"kind": "run_ended", "t_s": 200.0, "step_index": 35,
                                            "message": "completed: all steps completed", "channel": "smu"}]))
    assert view.ended and not view.finished
    assert window.run_panel.state_label.text() == "run: ended (completed)"
    assert window.run_panel.output_label.text() == "OUTPUT OFF"


GROWING = """
import json, sys, time
import numpy as np
from labctl.events import READING_COLUMNS, Readings, RunEnded, RunStarted
from labctl.store import RunFileWriter
w = RunFileWriter(sys.argv[1], ["cyc3"], {"protocol_kind": "symmetric_cycling", "protocol_text": ""})
w(RunStarted(0.0, "cyc3", json.dumps({}), 0, time.time()))

def batch(k):
    t = np.arange(1000 * k, 1000 * (k + 1), dtype=float) * 0.5
    cols = {c.name: np.zeros(1000, c.dtype) for c in READING_COLUMNS}
    cols.update(test_time_s=t, voltage_V=0.05 * np.sign(np.sin(t / 900)), current_density_mA_cm2=np.sign(np.sin(t / 900)),
                step_index=(t // 900).astype("i4"))
    w(Readings("cyc3", cols))

batch(0)
print("ready", flush=True)
sys.stdin.readline()
for k in range(1, 20):
    batch(k)
    time.sleep(0.05)
w(RunEnded(10000.0, "cyc3", "completed", "all steps completed", time.time()))
w.close()
print("done", flush=True)
"""


def test_a_cell_opened_from_the_grid_draws_only_the_files_readings(window_factory, qtbot, tmp_path, processes):
    """A cell opened from the channel grid drew diagonals and a flat −0.5 mA cm⁻² line that
    are not in the file, and said "elapsed 4.4 min" for a 2.35 h run: the grid and the window
    read the same growing file in one process, and HDF5 handed the second reader the first
    chunk's rows again past row 8192."""
    runs = tmp_path / "cells"
    runs.mkdir()
    path = runs / "cell.h5"
    writer = subprocess.Popen([sys.executable, "-c", GROWING, str(path)], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    processes.append(writer)
    assert writer.stdout.readline().strip() == "ready"
    window = window_factory(simulate=False)
    grid = window.open_grid([runs])
    qtbot.waitUntil(lambda: len(grid.tiles) == 1 and len(next(iter(grid.tiles.values())).buffer) == 1000,
                    timeout=15_000)
    tile = next(iter(grid.tiles.values()))
    grid.open_requested.emit(tile.path, tile.channel)  # the click
    qtbot.waitUntil(lambda: window.view is not None and len(window.view.buffer) == 1000, timeout=10_000)
    writer.stdin.write("\n")
    writer.stdin.flush()
    qtbot.waitUntil(lambda: window.view.finished and tile.finished, timeout=60_000)
    assert writer.wait(30) == 0
    with h5py.File(path, "r") as f:
        t_file = f["channels/cyc3/test_time_s"][()]
        j_file = f["channels/cyc3/current_density_mA_cm2"][()]
    buffer = window.view.buffer
    assert len(t_file) == 20_000
    assert np.array_equal(buffer.view("test_time_s"), t_file)  # no row twice, none from the wrong chunk
    assert np.array_equal(buffer.view("current_density_mA_cm2"), j_file)
    assert np.array_equal(tile.buffer.view("test_time_s"), t_file)
    window._frame()
    assert window.elapsed_label.text() == f"elapsed {format_duration(t_file[-1])}" == "elapsed 2.78 h"


PAUSE_CYCLING = """kind: symmetric_cycling
name: cycling to pause
current_density_mA_cm2: 0.2
half_cycle_s: 1800
total_time_h: 12000
voltage_limit_V: 5
record_interval_s: 60
cell:
  area_cm2: 1
  electrolyte: LLZO
  electrolyte_thickness_um: 300
  li_thickness_um: 100
  stack_pressure_MPa: 1
  temperature_C: 25
simulated_cell:
  preset: hl_llzo
"""


def test_pausing_a_max_speed_run_adds_no_test_time_and_says_so_at_once(window_factory, qtbot, processes, tmp_path):
    """Pausing a --speed max run added 250–2400 h of 0 A each time (a 12 020 h protocol ended at
    18 241 h); and Pause took 0.6–13.7 s before anything on screen changed. Now "pausing…" is
    on screen at the press, the confirmed "paused" follows, and the simulated clock stands
    still: every pause is a span of no test time in the file and in the window."""
    protocol = tmp_path / "cycling.yaml"
    protocol.write_text(PAUSE_CYCLING)
    window = window_factory()
    assert window.protocol_panel.load(protocol)
    window.run_panel.speed_box.setCurrentText("max")
    window.run_panel.start_button.click()
    qtbot.waitUntil(lambda: window.view is not None and window.view.launched is not None, timeout=30_000)
    processes.append(window.view.launched.process)
    view = window.view
    qtbot.waitUntil(lambda: view.status is not None and view.status["state"] == "running" and len(view.buffer) > 100,
                    timeout=30_000)
    for _ in range(3):
        pressed = time.monotonic()
        window.run_panel.pause_button.click()
        assert window.run_panel.state_label.text() == "run: pausing…"  # in the click itself
        assert time.monotonic() - pressed < 0.1
        qtbot.waitUntil(lambda: window.run_panel.state_label.text() == "run: paused", timeout=10_000)
        qtbot.waitUntil(lambda: view.progress.pauses.paused, timeout=10_000)  # the paused event, from the file
        t_paused = float(view.buffer.view("test_time_s")[-1])
        qtbot.wait(400)  # the operator holds the pause for a while (wall time)
        assert float(view.buffer.view("test_time_s")[-1]) == t_paused  # no readings while paused
        window.run_panel.resume_button.click()
        assert window.run_panel.state_label.text() == "run: resuming…"
        qtbot.waitUntil(lambda: window.run_panel.state_label.text() == "run: running", timeout=10_000)
        qtbot.waitUntil(lambda: len(view.buffer) and view.buffer.view("test_time_s")[-1] > t_paused + 600,
                        timeout=20_000)
    window.run_panel.stop_button.click()
    assert window.run_panel.state_label.text() == "run: stopping…"
    qtbot.waitUntil(lambda: view.finished, timeout=60_000)
    with h5py.File(view.path, "r") as f:
        events = f["events"][()]
        t = f["channels/smu/test_time_s"][()]
    paused = [float(e["t_s"]) for e in events if e["kind"] == b"paused"]
    resumed = [float(e["t_s"]) for e in events if e["kind"] == b"resumed"]
    assert len(paused) == len(resumed) == 3
    assert np.allclose(paused, resumed, atol=1e-6)  # the clock stood still
    gaps = np.flatnonzero(np.diff(t) > 60.0 + 1e-6)
    assert np.all(np.diff(t) >= 0) and not len(gaps), (t[gaps], t[gaps + 1], paused)  # no jump over a pause
    window._frame()
    assert window.elapsed_label.text() == f"elapsed {format_duration(t[-1])}"
    assert window.readout.elapsed.text == format_duration(t[-1])


def test_a_real_time_pause_is_shaded_and_left_out_of_means_and_times(window_factory, qtbot, tmp_path_factory):
    """A pause's 0 A readings were averaged into the step's overpotential mean (~0 mV plotted)
    and pauses looked like data: the window shows the file's mean (without the pause), the
    pause as a shaded span, and elapsed time without it."""
    path = finished_run(tmp_path_factory, "pause_mean")
    window = window_factory(simulate=False)
    assert window.open_run_file(path)
    qtbot.waitUntil(lambda: window.view.finished and window.plots.n_points == len(window.view.buffer), timeout=20_000)
    with h5py.File(path, "r") as f:
        steps = f["steps"][()]
        events = f["events"][()]
        t_last = float(f["channels/smu/test_time_s"][-1])
    start = float(next(e["t_s"] for e in events if e["kind"] == b"paused"))
    end = float(next(e["t_s"] for e in events if e["kind"] == b"resumed"))
    index, _end_mV = window.plots.overpotential_end.getData()
    _index, mean_mV = window.plots.overpotential_mean.getData()
    row = steps[steps["step_index"] == 0][0]
    assert mean_mV[list(index).index(0)] == pytest.approx(abs(row["voltage_mean_V"]) * 1e3)
    shading = window.plots.pause_shading[0]
    assert shading.n_spans == 1 and shading.items[0].getRegion() == pytest.approx((start, end))
    window._frame()
    assert window.readout.elapsed.text.startswith(format_duration(t_last - (end - start)))
    assert "paused" in window.readout.elapsed.text and "paused" in window.elapsed_label.text()


def test_closing_a_grid_window_counts_every_run_going(window_factory, qtbot, tmp_path, processes):
    """Closing a grid window said 2 runs were going while 4 were: it counted only the runs
    opened in the window. Runs with a control socket can be stopped from here; the others are
    named as going too (their writer's lock says so)."""
    runs = tmp_path / "cells"
    specs = [f"{EXAMPLES / 'cycling_llzo_0p8.yaml'}@smu{k}" for k in (1, 2)]
    processes.append(subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", *specs, "--simulate", "--speed", "60",
                                       "-o", str(runs), "--control"], cwd=REPO, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True))
    qtbot.waitUntil(lambda: runs.is_dir() and len(list(runs.glob("*.h5.ctl"))) == 2, timeout=60_000)
    from tests.ui.test_channel_grid import LiveWriter

    LiveWriter(runs / "other_a.h5", processes)  # two written without a control socket
    LiveWriter(runs / "other_b.h5", processes)
    window = window_factory(simulate=False)
    grid = window.open_grid([runs])
    qtbot.waitUntil(lambda: len(grid.tiles) == 4 and all(t.status == "running" for t in grid.tiles.values()),
                    timeout=30_000)
    first = sorted(grid.tiles.values(), key=lambda t: t.path)[0]
    assert window.attach(first.path)
    qtbot.waitUntil(lambda: window.view.status is not None, timeout=10_000)
    asked = []
    window.ask_on_close = lambda going: asked.append(going) or "leave"
    window.close()
    assert len(asked[0]) == 4
    assert sum(socket is not None for _name, socket in asked[0]) == 2
    assert re.search(r"smu\d", " ".join(name for name, _ in asked[0]))
    # one click in the grid's table stops a channel (the window is closed: the grid goes on
    # in a new one)
    again = window_factory(simulate=False)
    grid = again.open_grid([runs])
    qtbot.waitUntil(lambda: len(grid.tiles) == 4 and sum(grid.table.cellWidget(t.row, 9).isEnabled()
                                                        for t in grid.tiles.values()) == 2, timeout=30_000)
    for tile in grid.tiles.values():
        if grid.table.cellWidget(tile.row, 9).isEnabled():
            grid.table.cellWidget(tile.row, 9).click()
    qtbot.waitUntil(lambda: sorted(t.status for t in grid.tiles.values()) == ["running", "running", "stopped",
                                                                            "stopped"], timeout=60_000)


def test_a_full_cell_plots_its_cell_voltage_per_step_not_an_overpotential(window_factory, qtbot, tmp_path_factory):
    """A full cell's 4.3 V end of charge was plotted as a 4300 mV "overpotential": the per-step
    plot of a cell that is not Li | SSE | Li says cell voltage, in V, and equals the file's."""
    path = finished_run(tmp_path_factory, "full_cell_nmc811_fse_rate.yaml")
    window = window_factory(simulate=False)
    assert window.open_run_file(path)
    qtbot.waitUntil(lambda: window.view.finished and window.plots.n_points == len(window.view.buffer), timeout=30_000)
    plot = window.plots.overpotential_plot
    assert plot.titleLabel.text.startswith("cell voltage per step")
    assert plot.getAxis("left").labelText == "|V|" and plot.getAxis("left").labelUnits == "V"
    with h5py.File(path, "r") as f:
        steps = f["steps"][()]
    index, end_V = window.plots.overpotential_end.getData()
    charges = steps[(steps["kind"] == b"constant_current") & (steps["current_density_mA_cm2"] > 0)]
    first = int(charges["step_index"][0])
    assert end_V[list(index).index(first)] == pytest.approx(abs(charges["voltage_end_V"][0]))
    assert 2.5 < end_V.max() < 4.5  # volts, a full cell's
    window._frame()
    assert window.readout.result.text().startswith("retention ") and "CE 99." in window.readout.result.text()
    # a symmetric cell's run in the same window goes back to overpotentials in mV
    assert window.open_run_file(finished_run(tmp_path_factory, "ccd_llzo.yaml"))
    qtbot.waitUntil(lambda: window.view.finished and window.plots.n_points == len(window.view.buffer), timeout=30_000)
    assert plot.titleLabel.text.startswith("overpotential per step")
    assert plot.getAxis("left").labelText == "|V| (mV)" and plot.getAxis("left").labelUnits == ""
    assert window.plots.overpotential_end.getData()[1].max() < 200  # mV


def test_stopping_a_busy_watcher_releases_the_file(qtbot, tmp_path, processes, monkeypatch):
    """Under load a second window attached to a run never saw it end: closing the first window
    could skip its follower's close (the shutdown queued behind a slow poll, the thread told to
    quit first), so the process kept the file's shared handle live and every other follower of
    the file waited for it. Stopping a watcher closes its follower whatever the worker was doing."""
    from labctl.store import follow
    from ui.channel_grid import ChannelGrid
    from ui.watcher import RunWatcher

    path = tmp_path / "cell.h5"
    writer = subprocess.Popen([sys.executable, "-c", GROWING, str(path)], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    processes.append(writer)
    assert writer.stdout.readline().strip() == "ready"
    real_poll = follow.RunFollower.poll
    polls: list[int] = []

    def slow_poll(self):  # a poll on a loaded machine
        update = real_poll(self)
        polls.append(1)
        time.sleep(0.3)
        return update

    monkeypatch.setattr(follow.RunFollower, "poll", slow_poll)
    key = str(path.resolve())
    for _trial in range(3):
        polls.clear()
        watcher = RunWatcher(path)
        qtbot.waitUntil(lambda: len(polls) >= 2, timeout=10_000)  # following: the file held open, live
        assert key in follow._OPEN
        watcher.stop()
        assert key not in follow._OPEN
    for _trial in range(2):  # the channel grid's worker, the same way
        polls.clear()
        grid = ChannelGrid()
        qtbot.addWidget(grid)
        grid.open_sources([tmp_path])
        qtbot.waitUntil(lambda: len(polls) >= 2, timeout=10_000)
        assert key in follow._OPEN
        grid.stop()
        assert key not in follow._OPEN
    writer.stdin.write("\n")
    writer.stdin.flush()
    assert writer.wait(30) == 0
