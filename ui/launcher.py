"""Start a run as its own process, so it outlives the window.

The run is ``labctl run PROTOCOL ... --control -o RUN.h5`` in a new session
(``start_new_session=True``): closing the window, or the window crashing, does not signal
it. Its terminal output goes to ``RUN.h5.log``. The window then follows the run file and
commands the run through its control socket ``RUN.h5.ctl``.

A run directory too deep for a Unix socket path is handled by the run's control server:
``RUN.h5.ctl`` is then a link to a short path (:mod:`labctl.app.control`).

:func:`launch_queue` starts a run queue the same way: ``labctl run A B C --queue --control``
(:mod:`labctl.app.queue`), one process and one control socket ``<runs>/<time>_queue.ctl`` for
all its runs.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from labctl.app.control import default_socket_path


class LaunchError(Exception):
    """The run process did not start; the message is its first error line."""


@dataclass(frozen=True)
class LaunchedRun:
    """A run process started by :func:`launch_run`."""

    run_file: Path
    socket_path: Path
    log_path: Path
    process: subprocess.Popen


def run_command(protocol: Path, run_file: Path, *, simulate: bool, station: Path | None, speed: float,
                operator: str | None = None) -> list[str]:
    """The ``labctl run`` command line (this interpreter, ``-m labctl.cli``)."""
    cmd = [sys.executable, "-m", "labctl.cli", "run", str(protocol), "-o", str(run_file), "--control", "--quiet"]
    if simulate:
        cmd += ["--simulate", "--speed", "max" if math.isinf(speed) else repr(float(speed))]
    elif station is not None:
        cmd += ["--station", str(station)]
    if operator:
        cmd += ["--operator", operator]
    return cmd


def _wait_for_socket(process: subprocess.Popen, socket_path: Path, log_path: Path, timeout_s: float,
                     done_early: Path | None = None) -> None:
    """Wait until the process listens on ``socket_path`` (or, ``done_early`` given, has already
    written that run file and ended well).

    Raises:
        LaunchError: it ended first (its first error line) or did not listen in time.
    """
    deadline = time.monotonic() + timeout_s
    while not socket_path.exists():
        if process.poll() is not None:
            if done_early is not None and done_early.exists() and process.returncode != 1:
                return  # it ran to its end before we looked
            text = log_path.read_text(encoding="utf-8", errors="replace")
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("error:")]
            raise LaunchError((errors or lines[-1:] or [f"labctl run exited with code {process.returncode}"])[0])
        if time.monotonic() > deadline:
            process.terminate()
            raise LaunchError(f"labctl run did not open its control socket {socket_path} within {timeout_s:g} s")
        time.sleep(0.05)


def launch_run(protocol: Path, run_file: Path, *, simulate: bool, station: Path | None = None, speed: float = 1.0,
               operator: str | None = None, timeout_s: float = 60.0) -> LaunchedRun:
    """Start the run process and wait until its control socket listens (the run file exists then).

    Args:
        protocol: protocol file (YAML) to run.
        run_file: ``.h5`` file to create (must not exist).
        simulate: run on the simulated instrument; else ``station`` names the instruments.
        speed: simulated time per wall second (``inf`` = as fast as possible); simulated runs only.
        timeout_s: how long to wait for the socket (connecting a real instrument takes time).

    Raises:
        LaunchError: the process ended before listening (bad protocol, instrument unreachable …;
            the message is its error output) or did not listen within ``timeout_s``.
    """
    run_file = Path(run_file).resolve()
    run_file.parent.mkdir(parents=True, exist_ok=True)
    socket_path = default_socket_path(run_file)
    log_path = run_file.with_name(run_file.name + ".log")
    station = None if station is None else Path(station).resolve()
    cmd = run_command(Path(protocol).resolve(), run_file, simulate=simulate, station=station, speed=speed,
                      operator=operator)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=run_file.parent)
    _wait_for_socket(process, socket_path, log_path, timeout_s, done_early=run_file)
    return LaunchedRun(run_file, socket_path, log_path, process)


@dataclass(frozen=True)
class LaunchedQueue:
    """A run queue process started by :func:`launch_queue`."""

    socket_path: Path
    log_path: Path
    process: subprocess.Popen


def launch_queue(protocols: list[Path], runs_dir: Path, *, simulate: bool, station: Path | None = None,
                 speed: float = 1.0, operator: str | None = None, timeout_s: float = 60.0) -> LaunchedQueue:
    """Start ``labctl run P1 P2 … --queue`` writing into ``runs_dir``, with one control socket
    ``<runs_dir>/<UTC time>_queue.ctl``, and wait until it listens.

    Raises:
        LaunchError: as :func:`launch_run` (a bad protocol file: its line).
    """
    runs_dir = Path(runs_dir).resolve()
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    socket_path = runs_dir / f"{stamp}_queue.ctl"
    n = 1
    while socket_path.exists() or socket_path.is_symlink():
        n += 1
        socket_path = runs_dir / f"{stamp}-{n}_queue.ctl"
    log_path = socket_path.with_suffix(".log")
    cmd = [sys.executable, "-m", "labctl.cli", "run", *[str(Path(p).resolve()) for p in protocols], "--queue",
           "-o", str(runs_dir), "--control-socket", str(socket_path), "--quiet"]
    if simulate:
        cmd += ["--simulate", "--speed", "max" if math.isinf(speed) else repr(float(speed))]
    elif station is not None:
        cmd += ["--station", str(Path(station).resolve())]
    if operator:
        cmd += ["--operator", operator]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=runs_dir)
    _wait_for_socket(process, socket_path, log_path, timeout_s)
    return LaunchedQueue(socket_path, log_path, process)
