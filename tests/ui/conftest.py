"""GUI tests run offscreen (no display needed) with pytest-qt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.conftest import EXAMPLES, REPO, wait_for  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _garbage_collected_on_the_gui_thread(qapp):
    """As in the window (:func:`ui.app.collect_garbage_on_the_gui_thread`), from the first
    widget of the session on: no Qt object destroyed by a collection on a worker thread."""
    from ui.app import collect_garbage_on_the_gui_thread

    collect_garbage_on_the_gui_thread()


@pytest.fixture
def processes():
    """Run processes a test starts; any still alive at the end is killed."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def start_cli_run(out: Path, speed: str, processes: list) -> subprocess.Popen:
    """``labctl run ccd_llzo.yaml --simulate --speed SPEED -o OUT --control`` in the background."""
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / "ccd_llzo.yaml"), "--simulate",
                             "--speed", speed, "-o", str(out), "--control", "--quiet"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    processes.append(proc)
    return proc


@pytest.fixture
def window_factory(qtbot, tmp_path):
    """Make bench windows (simulated station, CCD example loaded, runs under tmp_path); each
    is closed at the end, leaving any run going (the ``processes`` fixture ends those)."""
    from ui.app import build_window

    windows = []

    def make(**kw):
        kw.setdefault("simulate", True)
        window = build_window(runs_dir=tmp_path / "runs", **kw)
        window.ask_on_close = lambda runs: "leave"
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.ask_on_close = lambda runs: "leave"
        window.close()


#: Run files made once per test session by :func:`finished_run`, by name.
_FINISHED: dict[str, Path] = {}

#: A real-time cycling protocol short enough to pause in a test: 6 s half-cycles at 50 ms.
PAUSE_PROTOCOL = """kind: symmetric_cycling
name: pause test
current_density_mA_cm2: 0.5
half_cycle_s: 6
cycles: 1
voltage_limit_V: 5
record_interval_s: 0.05
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


def _rows(path: Path) -> int:
    from labctl.store.follow import RunFollower

    follower = RunFollower(path, columns=["voltage_V"], spectra=False)
    try:
        return follower.poll().n_rows
    except Exception:  # noqa: BLE001 - a file still being created: no rows yet
        return 0
    finally:
        follower.close()


def _paused_for_s(path: Path) -> float:
    """Test time (s) recorded in the file since its first ``paused`` event (0 before it is there)."""
    from labctl.store.follow import RunFollower

    follower = RunFollower(path, columns=["test_time_s"], spectra=False)
    try:
        update = follower.poll()
    except Exception:  # noqa: BLE001 - a file still being written: nothing yet
        return 0.0
    finally:
        follower.close()
    paused = [float(e["t_s"]) for e in update.events if e["kind"] == "paused"]
    if not paused or not update.n_rows:
        return 0.0
    return float(update.rows["test_time_s"][-1]) - paused[0]




def finished_run(tmp_path_factory, name: str) -> Path:
    """A finished run file, made once per session: an example run at ``--speed max`` (``name``
    is the example's file name), or ``pause_mean``: :data:`PAUSE_PROTOCOL` in real time, paused
    through its control socket for 2 s (40 readings) in its first step."""
    if name in _FINISHED:
        return _FINISHED[name]
    from labctl.app.control import ControlClient, default_socket_path

    directory = tmp_path_factory.getbasetemp() / "finished"
    directory.mkdir(exist_ok=True)
    out = directory / f"{Path(name).stem}.h5"
    if name == "pause_mean":
        protocol = directory / "pause.yaml"
        protocol.write_text(PAUSE_PROTOCOL)
        proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", str(protocol), "--simulate", "--speed", "1",
                                 "-o", str(out), "--control", "--quiet"], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            ctl = default_socket_path(out)
            wait_for(ctl.exists, "the pause run's control socket")
            wait_for(lambda: _rows(out) >= 20, "20 readings before the pause")
            ControlClient(ctl).pause()
            wait_for(lambda: ControlClient(ctl).status()["state"] == "paused", "the pause")
            # 2 s of the pause in the file, counted from its paused event (not from rows seen at
            # the confirmation, which may still be on their way to the file under load)
            wait_for(lambda: _paused_for_s(out) >= 2.0, "2 s of the pause in the file")
            ControlClient(ctl).resume()
            assert proc.wait(120) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    else:
        done = subprocess.run([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / name), "--simulate", "--speed",
                               "max", "-o", str(out), "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=600)
        assert done.returncode in (0, 3), done.stderr
    _FINISHED[name] = out
    return out
