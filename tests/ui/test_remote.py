"""The window follows a live run through a labctl server (Tiled) and shows a channel grid of a
server (issue 15): a real ``labctl serve`` on loopback with an SQLite catalog, a real run
written beside it (offscreen)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from labctl.app.control import ControlClient, default_socket_path
from labctl.store import RunFile
from tests.conftest import EXAMPLES, REPO
from tests.conftest import wait_for
from tests.ui.conftest import finished_run

pytest.importorskip("tiled.server", reason="the serve extra (tiled[server]) is not installed")


@pytest.fixture
def served(tmp_path, tmp_path_factory, processes):
    """A run directory with a finished CCD run and a cycling run being written (×600, control
    socket), served by ``labctl serve`` on a free loopback port; yields (server URL, live run file)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copy(finished_run(tmp_path_factory, "ccd_llzo.yaml"), runs / "done_ccd.h5")
    live = runs / "live_cycling.h5"
    processes.append(subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / "cycling_llzo_0p8.yaml"),
                                       "--simulate", "--speed", "600", "-o", str(live), "--control", "--quiet"],
                                      cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_for(default_socket_path(live).exists, "the live run's socket")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}  # the address line at once, whole
    server = subprocess.Popen([sys.executable, "-m", "labctl.cli", "serve", str(runs), "--port", "0",
                               "--scan-interval-s", "0.3"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, env=env)
    processes.append(server)
    url = None
    for line in server.stdout:
        found = re.search(r" at (http://127\.0\.0\.1:\d+)/runs", line)
        if found:
            url = found.group(1)
            break
    assert url, "labctl serve did not say where it serves"
    yield url, live
    try:
        ControlClient(default_socket_path(live)).stop()
    except Exception:  # noqa: BLE001 - the test stopped it already
        pass
    server.send_signal(signal.SIGINT)
    server.wait(30)


def test_the_window_follows_a_live_run_through_the_server_and_shows_the_servers_grid(window_factory, qtbot, served):
    url, live = served
    from labctl.store.remote import find_runs

    entry = _wait_for_running(url)
    window = window_factory(simulate=False)
    assert window.attach(entry.uri)
    view = window.view
    qtbot.waitUntil(lambda: len(view.buffer) > 50 and bool(view.attrs), timeout=60_000)
    assert view.path == entry.uri and view.socket_path is None
    assert window.protocol_panel.read_only and "live_cycling" in window.protocol_panel.file_label.text()
    n = len(view.buffer)
    first = len(view.buffer)
    qtbot.waitUntil(lambda: len(view.buffer) > first + 20, timeout=60_000)  # it grows, read through the server
    with RunFile(live, swmr=True) as local:
        t_local = local.columns("smu")["test_time_s"]
    assert np.array_equal(view.buffer.view("test_time_s")[:n], t_local[:n])
    window._frame()
    assert window.readout.instrument.text.startswith("smu: MODEL 2400")

    grid = window.open_grid([url])
    qtbot.waitUntil(lambda: len(grid.tiles) == 1, timeout=60_000)  # the server's running run
    tile = next(iter(grid.tiles.values()))
    assert tile.path == entry.uri and tile.remote
    qtbot.waitUntil(lambda: len(tile.buffer) > 10 and grid.row_texts(tile)[2] == "running", timeout=60_000)
    assert grid.row_texts(tile)[1].startswith("Li|H.L.-LLZO|Li, 0.8 mA cm⁻²")
    assert [e.key for e in find_runs(url, status="short")] == ["done_ccd"]


def _wait_for_running(url):
    from labctl.store.remote import find_runs

    found = []
    wait_for(lambda: found.extend(find_runs(url, status="running")) or found, "the live run in the catalog")
    return found[0]


def test_gui_options_keep_a_url_whole(monkeypatch):
    """``--attach``/``--grid`` were paths: ``http://host/runs/x`` became ``http:/host/runs/x``."""
    import ui.app

    seen = {}
    monkeypatch.setattr(ui.app, "main", lambda **kw: seen.update(kw) or 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    from labctl.cli import app

    result = CliRunner().invoke(app, ["gui", "--attach", "http://127.0.0.1:8000/runs/ccd_llzo",
                                      "--grid", "http://127.0.0.1:8000", "--grid", str(REPO / "protocols")])
    assert result.exit_code == 0, result.output
    assert seen["attach"] == "http://127.0.0.1:8000/runs/ccd_llzo"
    assert seen["grid"] == ["http://127.0.0.1:8000", str(REPO / "protocols")]
