"""The control channel: a run commanded from another process over a Unix domain socket."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import h5py
import pytest

from labctl.app.control import (
    EMERGENCY_STOP_REASON,
    ControlClient,
    ControlError,
    ControlServer,
    check_socket_path,
    default_socket_path,
    resolve_socket,
)
from labctl.steps import ConstantCurrent, SafetyLimits, StepProgram
from labctl.engine import ScaledClock, SoftwareTimedExecutor
from tests.conftest import EXAMPLES, REPO, make_smu


def wait_for(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def running_engine(tmp_path):
    """An engine running a long constant-current step on an in-process 2400, ×100 real time."""
    clock = ScaledClock(100.0)
    smu = make_smu(clock)
    engine = SoftwareTimedExecutor(smu, clock, channel="smu")
    program = StepProgram(steps=[ConstantCurrent(current_A=1e-4, duration_s=1e5, record_interval_s=1.0)],
                          area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5.0, max_abs_current_A=0.01))
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("value", engine.run(program)), daemon=True)
    thread.start()
    assert wait_for(lambda: engine.state.value == "running")
    yield engine, smu, outcome
    engine.request_stop("test teardown")
    thread.join(10)


def test_status_pause_resume_and_emergency_stop_turn_the_output_off(tmp_path, running_engine):
    engine, smu, outcome = running_engine
    path = tmp_path / "run.h5.ctl"
    with ControlServer(engine, path, run_file=tmp_path / "run.h5") as server:
        client = ControlClient(path)
        status = client.status()
        assert status == {"ok": True, "state": "running", "output": "on", "run_file": str(tmp_path / "run.h5"),
                          "pid": os.getpid(), "stop_reason": None}
        assert client.pause()["state"] in ("pausing", "paused")  # acknowledged at once …
        assert wait_for(lambda: client.status()["state"] == "paused")  # … confirmed when the cell is held
        assert smu.model.source_current_A == 0.0
        assert client.resume()["state"] == "running"
        reply = client.emergency_stop()
        assert reply["state"] in ("stopping", "ended") and reply["stop_reason"] == EMERGENCY_STOP_REASON
        assert wait_for(lambda: "value" in outcome)
        assert outcome["value"].status == "stopped" and outcome["value"].reason == EMERGENCY_STOP_REASON
        assert not smu.model.output_enabled
        assert client.status()["state"] == "ended" and client.status()["output"] == "off"
        assert server.socket_path.exists()
    assert not path.exists()  # removed on close
    with pytest.raises(ControlError, match="no control socket"):
        ControlClient(path).status()


def test_bad_requests_get_one_line_errors(tmp_path, running_engine):
    engine, _, _ = running_engine
    path = tmp_path / "c.ctl"
    with ControlServer(engine, path):
        with pytest.raises(ControlError, match="unknown command 'explode'"):
            ControlClient(path).request("explode")
        with socket.socket(socket.AF_UNIX) as raw:
            raw.connect(str(path))
            raw.settimeout(5)
            raw.sendall(b"not json\n{\"command\": \"launch\"}\n")
            stream = raw.makefile("rb")
            first, second = json.loads(stream.readline()), json.loads(stream.readline())
        assert first["ok"] is False and first["error"].startswith("bad request")
        assert second["ok"] is False and second["error"].startswith("unknown command 'launch'")


def test_a_second_server_is_refused_and_a_stale_socket_replaced(tmp_path, running_engine):
    engine, _, _ = running_engine
    path = tmp_path / "c.ctl"
    with ControlServer(engine, path):
        with pytest.raises(ControlError, match="another run already listens"):
            ControlServer(engine, path)
        with pytest.raises(ControlError, match="another run already listens"):
            check_socket_path(path)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # a socket file nobody listens on, as a killed run leaves it
    stale.close()
    with ControlServer(engine, path):
        assert ControlClient(path).status()["state"] == "running"


def test_socket_path_too_long_is_one_clear_line(tmp_path):
    with pytest.raises(ControlError, match="longer than 107 bytes"):
        ControlClient(tmp_path / ("x" * 120 + ".ctl"))
    assert default_socket_path("runs/a.h5").name == "a.h5.ctl"


def test_labctl_run_with_control_is_stopped_from_another_process(tmp_path):
    out = tmp_path / "run.h5"
    ctl = default_socket_path(out)
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / "ccd_llzo.yaml"), "--simulate",
                             "--speed", "600", "-o", str(out), "--control", "--quiet"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(ctl.exists, 30), proc.stderr.read() if proc.poll() is not None else "no socket"
        client = ControlClient(ctl)
        # The socket opens before the engine turns the output on; under load that gap is visible.
        assert wait_for(lambda: client.status()["output"] == "on", 30)
        status = client.status()
        assert status["state"] == "running" and status["output"] == "on"
        assert status["pid"] == proc.pid and status["run_file"] == str(out)
        client.stop()
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "run ended: stopped (stopped by the operator)" in stdout
    assert not ctl.exists()
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "stopped"
        kinds = [k.decode() for k in f["events"]["kind"]]
        assert kinds[-1] == "run_ended"


def test_control_socket_in_use_is_refused_before_the_run_starts(tmp_path, running_engine):
    engine, _, _ = running_engine
    out = tmp_path / "run.h5"
    with ControlServer(engine, default_socket_path(out)):
        proc = subprocess.run([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / "ccd_llzo.yaml"),
                               "--simulate", "--speed", "max", "-o", str(out), "--control", "--quiet"],
                              cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: {default_socket_path(out)}: another run already listens on this control socket"]
    assert not out.exists()


def test_labctl_run_in_a_deep_directory_listens_on_a_short_socket_linked_from_run_ctl(tmp_path):
    """A Unix socket path holds 107 bytes; a deep runs directory must not stop ``--control``."""
    out = tmp_path / ("a_rather_long_directory_name_" * 4) / "run.h5"
    ctl = default_socket_path(out)
    assert len(str(ctl)) > 107
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / "ccd_llzo.yaml"), "--simulate",
                             "--speed", "600", "-o", str(out), "--control", "--quiet"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(ctl.exists, 30), proc.stderr.read() if proc.poll() is not None else "no socket"
        assert ctl.is_symlink() and len(str(resolve_socket(ctl))) <= 107
        ControlClient(ctl).stop()
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "run ended: stopped (stopped by the operator)" in stdout
    assert not ctl.is_symlink() and not ctl.exists()
