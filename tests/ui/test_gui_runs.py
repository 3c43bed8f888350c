"""The bench window driving real run processes on the simulated station (offscreen)."""

from __future__ import annotations

import h5py
import pytest

from labctl.app.control import ControlClient, default_socket_path
from tests.conftest import EXAMPLES
from tests.ui.conftest import start_cli_run


def live_process(window):
    return window.view.launched.process


def test_ccd_run_through_the_window_plots_live_and_emergency_stop_turns_the_output_off(window_factory, qtbot,
                                                                                      processes):
    window = window_factory()
    assert window.protocol_panel.path == (EXAMPLES / "ccd_llzo.yaml").resolve()
    assert window.run_panel.start_button.isEnabled()
    window.run_panel.speed_box.setCurrentText("600")
    window.run_panel.start_button.click()
    qtbot.waitUntil(lambda: window.view is not None and window.view.launched is not None, timeout=30_000)
    processes.append(live_process(window))
    view = window.view
    qtbot.waitUntil(lambda: view.status is not None and view.status["output"] == "on", timeout=10_000)
    assert window.run_panel.output_label.text() == "OUTPUT ON"
    assert window.run_panel.estop_button.isEnabled()
    # the plot grows from the file, frame after frame
    qtbot.waitUntil(lambda: window.plots.n_points > 500, timeout=15_000)
    first = window.plots.n_points
    qtbot.waitUntil(lambda: window.plots.n_points > first + 300, timeout=15_000)
    assert len(window.plots.voltage_curve.getData()[0]) > 0
    assert window.elapsed_label.text().startswith("elapsed") and "remaining" in window.remaining_label.text()

    window.run_panel.pause_button.click()
    qtbot.waitUntil(lambda: view.status["state"] == "paused", timeout=5_000)
    qtbot.waitUntil(lambda: "paused" in window.event_log.kinds(), timeout=5_000)
    window.run_panel.resume_button.click()
    qtbot.waitUntil(lambda: view.status["state"] == "running", timeout=5_000)

    statuses = []
    view.watcher.command_done.connect(lambda command, reply: statuses.append((command, reply)))
    window.run_panel.estop_button.click()
    qtbot.waitUntil(lambda: view.finished, timeout=20_000)
    assert statuses[0][0] == "emergency_stop" and statuses[0][1]["stop_reason"] == "emergency stop"
    assert live_process(window).wait(10) == 0
    assert window.run_panel.output_label.text() == "OUTPUT OFF"
    assert not window.run_panel.estop_button.isEnabled()
    with h5py.File(view.path, "r") as f:
        assert f.attrs["status"] == "stopped" and f.attrs["end_reason"] == "emergency stop"
        messages = [m.decode() for m in f["events"]["message"]]
        assert messages[-1] == "stopped: emergency stop"
        n_file = f["channels/smu/test_time_s"].shape[0]
    assert len(view.buffer) == n_file  # every reading, read once, incrementally
    assert "stopped" in window.event_log.kinds() and "run_ended" in window.event_log.kinds()
    assert not default_socket_path(view.path).exists()


def test_whole_ccd_staircase_from_the_window_reports_the_ccd(window_factory, qtbot, processes):
    window = window_factory()
    window.run_panel.speed_box.setCurrentText("max")
    window.run_panel.start_button.click()
    qtbot.waitUntil(lambda: window.view is not None and window.view.finished, timeout=90_000)
    processes.append(live_process(window))
    view = window.view
    assert view.attrs["status"] == "short"
    assert view.results["ccd_mA_cm2"] == pytest.approx(1.8)
    log = window.event_log.messages()
    assert "CCD = 1.8 mA cm⁻²" in log
    qtbot.waitUntil(lambda: window.plots.n_points == len(view.buffer) > 30_000, timeout=2_000)
    assert len(view.step_starts) == 37  # steps 0 … 36, the short in 36
    assert len(window.plots.overpotential_end.getData()[0]) == 37
    assert window.run_panel.output_label.text() == "OUTPUT OFF"


def test_attach_to_a_cli_run_leave_it_going_on_close_then_stop_it_from_a_new_window(window_factory, qtbot,
                                                                                     processes, tmp_path):
    out = tmp_path / "cli.h5"
    proc = start_cli_run(out, "600", processes)
    ctl = default_socket_path(out)
    qtbot.waitUntil(ctl.exists, timeout=30_000)

    first = window_factory()
    assert first.attach(ctl)
    qtbot.waitUntil(lambda: len(first.view.buffer) > 200, timeout=15_000)
    qtbot.waitUntil(lambda: first.view.status is not None, timeout=5_000)
    assert first.view.status["pid"] == proc.pid
    asked = []
    first.ask_on_close = lambda runs: asked.append([name for name, _socket in runs]) or "leave"
    first.close()
    assert asked == [[out.name]]
    assert proc.poll() is None and ControlClient(ctl).status()["state"] == "running"  # the run goes on

    second = window_factory()
    assert second.attach(out)  # by its run file this time
    qtbot.waitUntil(lambda: len(second.view.buffer) > 200, timeout=15_000)
    qtbot.waitUntil(lambda: second.view.status is not None, timeout=5_000)
    second.ask_on_close = lambda runs: "stop"
    second.close()
    assert proc.wait(30) == 0
    assert not ctl.exists()
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "stopped" and f.attrs["end_reason"] == "stopped by the operator"


def test_reopen_a_finished_run_file_with_the_same_plots(window_factory, qtbot, processes, tmp_path):
    out = tmp_path / "done.h5"
    assert start_cli_run(out, "max", processes).wait(60) == 0
    window = window_factory(simulate=False)
    assert window.open_run_file(out)
    qtbot.waitUntil(lambda: window.view.finished, timeout=20_000)
    view = window.view
    with h5py.File(out, "r") as f:
        n = f["channels/smu/test_time_s"].shape[0]
    assert len(view.buffer) == n
    qtbot.waitUntil(lambda: window.plots.n_points == n, timeout=2_000)  # the next frame draws it
    assert window.plots.drawn_points < 60_000  # decimated for drawing, extremes kept
    assert len(view.step_starts) == 37
    assert view.state.startswith("ended (short)")
    assert window.run_panel.output_label.text() == "OUTPUT OFF"
    assert not window.run_panel.estop_button.isEnabled()
    log = window.event_log.messages()
    assert "CCD = 1.8 mA cm⁻²" in log


def test_a_missing_or_foreign_file_is_one_line(window_factory, qtbot, tmp_path):
    window = window_factory()
    assert not window.open_run_file(tmp_path / "nothing.h5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2]
    assert window.open_run_file(foreign)
    qtbot.waitUntil(lambda: "not a labctl run file" in window.statusBar().currentMessage(), timeout=5_000)
