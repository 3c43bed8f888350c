"""Sweep runs (memristor cycling, c-AFM triggering bias) through the bench window on the
simulated station: the form, start, live I–V and per-cycle/per-site plots, pause, stop,
emergency stop, review of the finished file (offscreen)."""

from __future__ import annotations

import h5py
import numpy as np
from PySide6.QtCore import Qt

from tests.conftest import EXAMPLES


def last_event(path):
    with h5py.File(path, "r") as f:
        return f["events"]["kind"][-1].decode(), f["events"]["message"][-1].decode()


def log_lines(window):
    return [window.event_log.item(row, 3).text() for row in range(window.event_log.rowCount())]


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
    qtbot.waitUntil(lambda: "paused" in window.event_log.kinds(), timeout=10_000)
    assert view.status["state"] == "paused" and window.run_panel.output_label.text() == "OUTPUT ON"
    n = len(plots.run.cycles["cycle"])
    window.run_panel.resume_button.click()
    qtbot.waitUntil(lambda: len(plots.run.cycles["cycle"]) > n, timeout=10_000)

    window.run_panel.stop_button.click()
    qtbot.waitUntil(lambda: view.finished, timeout=20_000)
    assert view.launched.process.wait(10) == 0
    assert window.run_panel.output_label.text() == "OUTPUT OFF"
    assert last_event(view.path) == ("run_ended", "stopped: stopped by the operator")
    with h5py.File(view.path, "r") as f:
        stored = f["results/cycles/on_off_ratio"][()]
    # the results replace the live numbers: the same analysis, so the same values
    assert plots.run.final and np.allclose(plots.run.cycles["on_off_ratio"], stored)
