"""A run queue from the window: EIS → CCD → EIS queued on one simulated cell, the window
closed and opened again, the queue going on in its own process all along (offscreen)."""

from __future__ import annotations

import h5py

from tests.conftest import EXAMPLES


def test_queue_eis_ccd_eis_close_the_window_reopen_it_and_see_the_queue_going(window_factory, qtbot, processes):
    window = window_factory()
    panel = window.queue_panel
    for example in ("eis_fse.yaml", "ccd_llzo.yaml", "eis_fse.yaml"):
        assert window.protocol_panel.load(EXAMPLES / example)
        panel.add_current_button.click()
    assert panel.states() == ["to start"] * 3 and window.tabs.currentWidget() is panel
    window.run_panel.speed_box.setCurrentText("600")  # EIS in a second or two, the CCD for about a minute
    panel.start_button.click()
    qtbot.waitUntil(lambda: window.queue_launched is not None, timeout=60_000)
    processes.append(window.queue_launched.process)
    queue_socket = window.queue_socket
    qtbot.waitUntil(lambda: panel.running and panel.states()[0].startswith(("running", "done")), timeout=30_000)
    qtbot.waitUntil(lambda: window.view is not None, timeout=30_000)  # the window follows the queue's run
    first = window.view.path
    # the window closes: the queue goes on in its own process
    asked = []
    window.ask_on_close = lambda going: asked.append(going) or "leave"
    window.close()
    assert any(name.startswith("queue") for name, _socket in asked[0])
    assert window.queue_launched.process.poll() is None

    reopened = window_factory()  # finds the queue in its runs directory
    rpanel = reopened.queue_panel
    qtbot.waitUntil(lambda: rpanel.running and len(rpanel.states()) == 3, timeout=30_000)
    assert reopened.queue_socket is not None and reopened.queue_socket.samefile(queue_socket)
    # the EIS done, the CCD running in its own run file, shown in the reopened window
    qtbot.waitUntil(lambda: rpanel.states()[:2] == ["done (completed)", "running"], timeout=60_000)
    qtbot.waitUntil(lambda: reopened.view is not None and reopened.view.attrs.get("protocol_kind") == "ccd_staircase",
                    timeout=30_000)
    assert reopened.view.path != first and reopened.plot_set is reopened.plots
    qtbot.waitUntil(lambda: reopened.view.status is not None and reopened.view.status["output"] == "on",
                    timeout=15_000)
    assert reopened.run_panel.stop_button.isEnabled()
    # the last EIS is taken off the queue from the reopened window, then the CCD is stopped
    rpanel.table.selectRow(2)
    rpanel.remove_button.click()
    qtbot.waitUntil(lambda: len(rpanel.states()) == 2, timeout=10_000)
    reopened.run_panel.stop_button.click()
    assert reopened.run_panel.state_label.text() == "run: stopping…"
    process = window.queue_launched.process
    assert process.wait(60) == 0
    qtbot.waitUntil(lambda: not rpanel.running and reopened.view.finished, timeout=30_000)
    assert rpanel.summary.text().startswith("queue ended")
    with h5py.File(reopened.view.path, "r") as f:
        assert f.attrs["protocol_kind"] == "ccd_staircase" and f.attrs["status"] == "stopped"
    runs = sorted(reopened.runs_dir.glob("*.h5"))
    assert len(runs) == 2  # the EIS and the CCD, each in its own file; the second EIS never ran
    assert not list(reopened.runs_dir.glob("*.ctl"))  # the queue's socket and links are gone with its process
