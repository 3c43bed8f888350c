"""Sweep runs (memristor cycling, c-AFM triggering bias) through the bench window on the
simulated station: the form, start, live I–V and per-cycle/per-site plots, pause, stop,
emergency stop, review of the finished file (offscreen)."""

from __future__ import annotations

import h5py
import numpy as np
from PySide6.QtCore import Qt

from labctl.app.control import default_socket_path, resolve_socket
from tests.conftest import EXAMPLES


def last_event(path):
    with h5py.File(path, "r") as f:
        return f["events"]["kind"][-1].decode(), f["events"]["message"][-1].decode()


def log_lines(window):
    return window.event_log.messages()


def started(window, qtbot, processes):
    """Wait until the run the window started is up, output on (or fail with the window's note)."""
    qtbot.waitUntil(lambda: (window.view is not None and window.view.launched is not None)
                    or any("did not start" in line for line in log_lines(window)), timeout=30_000)
    assert window.view is not None, log_lines(window)
    processes.append(window.view.launched.process)
    view = window.view
    qtbot.waitUntil(lambda: view.status is not None and view.status["output"] == "on", timeout=15_000)
    return view


def test_memristor_run_from_the_window(window_factory, qtbot, processes):
    window = window_factory()
    panel = window.protocol_panel
    assert panel.load(EXAMPLES / "memristor_tip.yaml")
    assert window.station_panel.simulated == {"smu": "keithley2400", "afm": "nanonis"}  # the tip needs the AFM
    model = panel.step_model
    assert model.rowCount() == 201 and model.data(model.index(1, 4)) == "-0.2 … +1 V, 244 points"
    panel.form.fields["cycles"].editor.setText("150")
    assert panel.validate() is not None and panel.duration_label.text().startswith("151 steps")
    window.run_panel.speed_box.setCurrentText("5")
    window.run_panel.start_button.click()
    view = started(window, qtbot, processes)
    plots = window.sweep_plots
    qtbot.waitUntil(lambda: window.plot_set is plots, timeout=5_000)  # chosen by the kind, from the file
    assert window.plot_stack.currentWidget() is plots and plots.run.kind == "memristor_cycling"
    # cycles end one by one: the on/off ratio and HRS/LRS get a point each
    qtbot.waitUntil(lambda: len(plots.run.cycles["on_off_ratio"]) >= 3, timeout=30_000)
    assert len(plots.ratio_points.getData()[0]) >= 3 and len(plots.hrs_points.getData()[0]) >= 3
    assert np.all(np.asarray(plots.run.cycles["on_off_ratio"]) > 1e4)  # the tip's ~1e5
    assert plots.n_sweeps >= 3 and len(plots.newest_curve.getData()[0]) > 100
    assert plots.log_box.isChecked() and plots.iv_plot.getAxis("left").logMode

    window.run_panel.pause_button.click()  # held at 0 V between sweeps, output on
    # the event comes from the run file, the state from the control socket's next status poll
    qtbot.waitUntil(lambda: "paused" in window.event_log.kinds() and view.status["state"] == "paused", timeout=10_000)
    assert window.run_panel.output_label.text() == "OUTPUT ON"
    n = len(plots.run.cycles["cycle"])
    window.run_panel.resume_button.click()
    qtbot.waitUntil(lambda: len(plots.run.cycles["cycle"]) > n, timeout=10_000)

    # the window closes and the run goes on; a new window attaches by the run file and gets
    # every cycle so far from it
    process = view.launched.process
    window.close()  # the fixture's answer: leave it running
    assert process.poll() is None
    second = window_factory()
    assert second.attach(view.path)
    view = second.view
    plots = second.sweep_plots
    qtbot.waitUntil(lambda: view.status is not None and len(plots.run.cycles["cycle"]) > n + 1, timeout=15_000)
    assert plots.run.cycles["cycle"][:3] == [1.0, 2.0, 3.0]  # from the start of the file
    assert second.run_panel.output_label.text() == "OUTPUT ON" and second.run_panel.stop_button.isEnabled()

    second.run_panel.stop_button.click()
    qtbot.waitUntil(lambda: view.finished, timeout=20_000)
    assert process.wait(10) == 0
    assert second.run_panel.output_label.text() == "OUTPUT OFF"
    assert last_event(view.path) == ("run_ended", "stopped: stopped by the operator")
    with h5py.File(view.path, "r") as f:
        stored = f["results/cycles/on_off_ratio"][()]
    # the results replace the live numbers: the same analysis, so the same values
    assert plots.run.final and np.allclose(plots.run.cycles["on_off_ratio"], stored)


def small_cafm(panel):
    """The c-AFM example cut down in the form: 4 sites (2 GB, 2 GI), no transect, 50 mV
    steps, 12 × 12 maps."""
    assert panel.load(EXAMPLES / "cafm_gb_vs_gi.yaml")
    form = panel.form
    assert form.optional_groups["map"].isChecked() and form.fields["sites"].table.rowCount() == 11
    form.fields["sweep.step_V"].editor.setText("0.05")
    for name in ("map.nx", "map.ny"):
        form.fields[name].editor.setText("12")
    sites = form.fields["sites"]
    sites.table.selectRow(10)
    sites.remove_button.click()  # the selected row
    sites.set_value([sites.value()[k] for k in (0, 1, 5, 6)])
    form.fields["transects"].remove_button.click()  # none selected: the last (only) one
    protocol = panel.validate()
    assert protocol is not None, panel.form.errors()
    assert [s.site_class for s in protocol.all_sites()] == ["GB", "GB", "GI", "GI"] and protocol.map.nx == 12
    assert panel.step_model.rowCount() == 10  # map, 4 × (move, sweep), map
    return protocol


def test_cafm_run_from_the_window_emergency_stop_and_review(window_factory, qtbot, processes):
    window = window_factory()
    small_cafm(window.protocol_panel)
    window.run_panel.speed_box.setCurrentText("1")
    window.run_panel.start_button.click()
    view = started(window, qtbot, processes)
    plots = window.sweep_plots
    qtbot.waitUntil(lambda: plots.map_shown == "before", timeout=15_000)  # the map before, as soon as it is in
    assert plots.map_image.image.shape == (12, 12)
    qtbot.waitUntil(lambda: len(plots.run.sites["triggering_bias_V"]) >= 2, timeout=20_000)
    assert plots.run.sites["site_class"][:2] == ["GB", "GB"]
    assert -0.2 < plots.run.sites["triggering_bias_V"][0] < -0.05  # a boundary triggers at about -0.12 V
    assert len(plots.bias_points["GB"].getData()[0]) >= 2
    # sites remain: the remaining time follows the run's pace (the maps and moves have no
    # estimate), never "remaining ≤ 0 s" at sweep 3 of 4; the step and its label are shown
    window._frame()
    progress = window.progress()
    assert progress.remaining_s > 0 and window.remaining_label.text().startswith("remaining ≈")
    assert window.remaining_label.text() != "remaining ≈ 0 s"
    assert window.readout.step.text.split("  ")[0].endswith(" / 10") and "site" in window.readout.step.text
    assert window.readout.result.text().startswith("triggering bias GB -0.1")  # the result so far, in large type

    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Escape)  # the emergency stop
    qtbot.waitUntil(lambda: view.finished, timeout=20_000)
    assert view.launched.process.wait(10) == 0
    assert window.run_panel.output_label.text() == "OUTPUT OFF"
    assert last_event(view.path) == ("run_ended", "stopped: emergency stop")

    review = window_factory(simulate=False)
    assert review.open_run_file(view.path)
    qtbot.waitUntil(lambda: review.view.finished, timeout=20_000)
    plots = review.sweep_plots
    qtbot.waitUntil(lambda: plots.n_points == len(review.view.buffer) > 0, timeout=2_000)
    assert review.plot_set is plots and plots.run.final
    n_sweeps = len(plots.run.sites["triggering_bias_V"])
    # the sweep under way when the stop came ends where the stop found it (the simulated sweep's
    # wait is cut), the map after is not taken
    assert 2 <= n_sweeps <= 4 and plots.n_sweeps == n_sweeps
    assert plots.map_shown == "before" and plots.map_box.count() == 1
    assert plots.map_image.image.shape == (12, 12)
    # the I-V: |I| on a log axis, then the signed current on a linear one
    assert plots.log_box.isChecked() and plots.iv_plot.getAxis("left").logMode
    plots.log_box.setChecked(False)
    assert not plots.iv_plot.getAxis("left").logMode
    x, y = plots.newest_curve.getData()
    assert 0 < len(x) <= 401 and np.nanmin(y) < 0  # negative bias, negative current
    faded = [c for c in plots.faded_curves.values() if c.getData()[0] is not None]
    assert faded and sum(np.isfinite(c.getData()[0]).sum() for c in faded) == 401 * (n_sweeps - 1)
    plots.log_box.setChecked(True)
    assert plots.iv_plot.getAxis("left").logMode and np.all(plots.newest_curve.getData()[1] > -16)


def test_a_deep_runs_directory_gets_a_short_control_socket(window_factory, qtbot, processes, tmp_path):
    """A Unix socket path holds 107 bytes: a run started in a deep directory listens on a short
    path, linked from RUN.h5.ctl, and attaching by either name still reaches it."""
    window = window_factory()
    window.runs_dir = tmp_path / ("a_rather_long_directory_name_" * 3)
    assert window.protocol_panel.load(EXAMPLES / "memristor_pad.yaml")
    assert window.station_panel.simulated == {"smu": "keithley2400"}  # a pad needs no AFM
    window.run_panel.speed_box.setCurrentText("2")
    window.run_panel.start_button.click()
    view = started(window, qtbot, processes)
    link = default_socket_path(view.path)
    assert len(str(link)) > 107 and link.is_symlink()
    assert len(str(resolve_socket(view.socket_path))) <= 107
    second = window_factory()
    assert second.attach(link)  # by the link's name
    qtbot.waitUntil(lambda: second.view.status is not None and second.view.status["output"] == "on", timeout=10_000)
    second.send("stop")
    qtbot.waitUntil(lambda: second.view.finished and view.finished, timeout=20_000)
    assert last_event(view.path) == ("run_ended", "stopped: stopped by the operator")
    assert not link.is_symlink()  # the dangling link is cleared once the run has ended
