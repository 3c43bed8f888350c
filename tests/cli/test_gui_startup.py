"""``labctl gui`` that cannot start says why in one line and exits 1 (no Qt abort, exit 134)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def run_gui(env: dict[str, str], *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "labctl.cli", "gui", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_no_display_is_one_line_on_how_to_run_headless_or_under_xvfb():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = run_gui(env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no display")
    assert "xvfb-run -a labctl gui" in lines[0] and "QT_QPA_PLATFORM=offscreen" in lines[0]


def test_a_display_qt_cannot_use_is_one_line_too():
    env = {k: v for k, v in os.environ.items() if k not in ("WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["DISPLAY"] = ":97"  # nobody there
    done = run_gui(env)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the display cannot be used (Qt: ")
    assert "xvfb-run" in lines[0]


def test_missing_gui_packages_name_the_exact_install_command():
    code = "import sys; sys.modules['PySide6'] = None\nfrom labctl.cli import app\napp(['gui'])"
    done = run_gui(dict(os.environ, COLUMNS="200"), code=code)
    assert done.returncode == 1
    assert done.stderr.strip() == 'error: the GUI needs PySide6; install them with: pip install -e ".[gui]" (in the ' \
                                  "labctl checkout)"
