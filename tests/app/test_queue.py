"""The run queue: protocol files one after the other on one station, each in its own run file,
listed and edited through the queue's control socket while it runs; a stop ends the queue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from labctl.app.control import ControlClient, ControlError, ControlServer, default_socket_path
from labctl.app.queue import RunQueue
from tests.conftest import EXAMPLES, REPO, wait_for


def test_queue_entries_are_appended_removed_and_refused_in_one_line(tmp_path):
    queue = RunQueue(simulate=True)
    eis = queue.append(EXAMPLES / "eis_fse.yaml")
    ccd = queue.append(EXAMPLES / "ccd_llzo.yaml")
    assert (eis.kind, ccd.kind) == ("eis", "ccd_staircase") and [e.state for e in queue.entries] == ["pending"] * 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: ccd_staircase\nname: x\n")
    with pytest.raises(ValueError, match=r"^bad.yaml:1: "):
        queue.append(bad)
    assert queue.next() is eis and eis.state == "running"
    with pytest.raises(ValueError, match="only pending entries are removed"):
        queue.remove(eis.id)
    queue.remove(ccd.id)
    with pytest.raises(ValueError, match="no queue entry 99"):
        queue.remove(99)
    queue.stop("stopped by the operator")
    assert queue.next() is None and queue.describe()["stopped"] == "stopped by the operator"
    with pytest.raises(ValueError, match="the queue has ended"):
        queue.append(EXAMPLES / "eis_fse.yaml")


def test_the_queue_socket_lists_and_edits_the_queue(tmp_path):
    queue = RunQueue(simulate=True)
    queue.append(EXAMPLES / "eis_fse.yaml")
    path = tmp_path / "q.ctl"
    with ControlServer(None, path, queue=queue) as server:
        client = ControlClient(path)
        status = client.request("queue")
        assert status["state"] == "idle" and status["output"] == "off" and status["run_file"] is None
        assert [e["kind"] for e in status["queue"]["entries"]] == ["eis"]
        status = client.queue_append(EXAMPLES / "ccd_llzo.yaml")
        assert [e["kind"] for e in status["queue"]["entries"]] == ["eis", "ccd_staircase"]
        with pytest.raises(ControlError, match="bad.yaml: no such file|bad.yaml"):
            client.queue_append(tmp_path / "bad.yaml")
        status = client.queue_remove(status["queue"]["entries"][0]["id"])
        assert [e["kind"] for e in status["queue"]["entries"]] == ["ccd_staircase"]
        run = tmp_path / "run.h5"
        server.set_run(None, run)  # the queue's next run: its own link to the socket
        assert default_socket_path(run).is_symlink() and ControlClient(default_socket_path(run)).status()["run_file"]
        server.set_run(None, None)
        assert not default_socket_path(run).is_symlink()
        assert client.stop()["queue"]["stopped"] == "stopped by the operator"
    no_queue = tmp_path / "plain.ctl"
    with ControlServer(None, no_queue):
        with pytest.raises(ControlError, match="this run has no queue"):
            ControlClient(no_queue).request("queue")


def test_labctl_run_queue_runs_eis_ccd_eis_each_in_its_own_file(tmp_path):
    out = tmp_path / "runs"
    done = subprocess.run([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / "eis_fse.yaml"),
                           str(EXAMPLES / "ccd_llzo.yaml"), str(EXAMPLES / "eis_fse.yaml"), "--queue", "--simulate",
                           "--speed", "max", "-o", str(out), "--control"], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    runs = []
    for f in out.glob("*.h5"):
        with h5py.File(f, "r") as h:
            runs.append((float(h.attrs["start_unix_time_s"]), h.attrs["protocol_kind"], h.attrs["status"]))
    assert [(kind, status) for _t, kind, status in sorted(runs)] == [
        ("eis", "completed"), ("ccd_staircase", "short"), ("eis", "completed")]  # in order, a file each
    assert "queue 2: short: CCD = 1.8 mA cm⁻²" in done.stdout
    assert not list(out.glob("*.ctl"))  # every socket and link gone


def test_a_stop_ends_the_run_and_the_queue(tmp_path):
    out = tmp_path / "runs"
    socket_path = tmp_path / "q.ctl"
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / "ccd_llzo.yaml"),
                             str(EXAMPLES / "eis_fse.yaml"), "--queue", "--simulate", "--speed", "60", "-o", str(out),
                             "--control-socket", str(socket_path)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        client = ControlClient(socket_path)
        wait_for(lambda: socket_path.exists(), "the queue's socket")
        status = wait_for(lambda: (lambda s: s if s["state"] == "running" else None)(client.status()), "the first run")
        run_file = Path(status["run_file"])
        assert default_socket_path(run_file).is_symlink()
        assert [e["state"] for e in status["queue"]["entries"]] == ["running", "pending"]
        client.stop()
        stdout, _stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "queue ended: stopped by the operator" in stdout
    assert len(list(out.glob("*.h5"))) == 1  # the EIS was not started
    with h5py.File(run_file, "r") as f:
        assert f.attrs["status"] == "stopped"
