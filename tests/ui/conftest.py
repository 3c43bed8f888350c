"""GUI tests run offscreen (no display needed) with pytest-qt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.conftest import EXAMPLES, REPO  # noqa: E402


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
