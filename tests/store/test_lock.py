"""One writer per run file: the lock beside it (``RUN.h5.lock``), live and stale owners."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import h5py
import pytest

from labctl.store import RunFile, RunFileError, RunFileWriter, finalise, live_owner, write_results
from labctl.store.lock import LockInfo, RunLock, read_lock
from tests.cli.test_cli import labctl
from tests.conftest import REPO

#: A second process writing a run file: it holds the lock until told to finish (a line on stdin).
HOLDER = """
import sys, time
import numpy as np
from labctl.events import READING_COLUMNS, Readings, RunEnded, RunStarted
from labctl.store import RunFileWriter
writer = RunFileWriter(sys.argv[1], ["smu"], {"protocol_kind": "test", "protocol_text": ""})
writer(RunStarted(0.0, "smu", "{}", 0, time.time()))
columns = {c.name: np.zeros(10, c.dtype) for c in READING_COLUMNS}
columns["test_time_s"] = np.arange(10.0)
writer(Readings("smu", columns))
print("holding", flush=True)
sys.stdin.readline()
writer(RunEnded(10.0, "smu", "completed", "done", time.time()))
print("finished", flush=True)
"""


@pytest.fixture
def holder(tmp_path):
    """A run file being written by another process: (path, process)."""
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "holding"
        yield path, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def test_the_lock_names_its_writer_and_goes_with_the_close(tmp_path):
    path = tmp_path / "run.h5"
    writer = RunFileWriter(path, ["smu"], {})
    data = json.loads((tmp_path / "run.h5.lock").read_text())
    assert data["pid"] == os.getpid() and data["host"] == socket.gethostname()
    assert data["started_utc"].endswith("+00:00") and data["argv"] == sys.argv
    assert live_owner(path).pid == os.getpid()
    with pytest.raises(RunFileError, match=f"run.h5 is being written by PID {os.getpid()}"):
        RunFileWriter.append(path)  # a second writer, even in the same process
    writer.close()
    assert not (tmp_path / "run.h5.lock").exists() and live_owner(path) is None


def test_a_live_writer_in_another_process_is_refused_and_finishes_normally(holder):
    path, proc = holder
    owner = live_owner(path)
    assert owner is not None and owner.pid == proc.pid and owner.on_this_host
    refusal = f"live.h5 is being written by PID {proc.pid} on host {socket.gethostname()} since "
    with pytest.raises(RunFileError, match=refusal):
        RunFileWriter.append(path)
    with pytest.raises(RunFileError, match=refusal):
        finalise(path)
    with pytest.raises(RunFileError, match=refusal):
        write_results(path, {"x": 1.0})
    with RunFile(path) as run:  # reading is always allowed
        assert run.owner.pid == proc.pid and run.n_rows("smu") == 10
    result = labctl("close", str(path), timeout=60)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and refusal in lines[0] and "stop it first" in lines[0], result.stderr
    inspect = labctl("inspect", str(path))
    assert inspect.returncode == 0 and f"being written by PID {proc.pid}" in inspect.stdout
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "finished"
    assert proc.wait(timeout=30) == 0
    with h5py.File(path, "r") as f:  # the live run finished its own file, untouched
        assert f.attrs["status"] == "completed" and f["channels/smu/test_time_s"].shape == (10,)
        assert [k.decode() for k in f["events"]["kind"]] == ["run_started", "run_ended"]
    assert live_owner(path) is None and not path.with_name("live.h5.lock").exists()


def test_resume_of_a_live_run_is_refused_and_the_run_finishes_normally(tmp_path):
    from tests.cli.test_resume import _start

    path = tmp_path / "live.h5"
    proc = _start(tmp_path / "cycling.yaml", path, speed="300")  # 2 h of test time: ~24 s, ample for the resume
    try:
        resumed = labctl("resume", str(path), "--quiet", timeout=60)
        assert proc.poll() is None, "the run ended before the resume was tried: make it longer"
        assert resumed.returncode == 1, resumed.stdout
        lines = resumed.stderr.strip().splitlines()
        assert len(lines) == 1 and f"being written by PID {proc.pid}" in lines[0], resumed.stderr
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stderr.close()
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "completed"
        assert "resumed" not in {k.decode() for k in f["events"]["kind"]}
        assert f["results"].attrs["cycles_completed"] == 6


def test_the_lock_of_a_killed_writer_is_stale_and_taken_over(holder):
    path, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    stale = read_lock(path)
    assert stale is not None and stale.pid == proc.pid and not stale.alive()
    assert live_owner(path) is None
    writer = RunFileWriter.append(path)
    assert writer.recovered  # the killed writer left HDF5's mark
    assert writer.lock.taken_over == stale
    assert read_lock(path).pid == os.getpid()
    writer.close()
    assert read_lock(path) is None


def test_close_takes_over_a_killed_writers_lock(holder):
    path, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = labctl("close", str(path))
    assert result.returncode == 0, result.stderr
    assert f"took over the stale lock of PID {proc.pid}" in result.stdout.replace("\n", " ")
    assert read_lock(path) is None
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "interrupted"


def test_a_reused_pid_or_another_host(tmp_path):
    path = tmp_path / "run.h5"
    lock = tmp_path / "run.h5.lock"
    parent = os.getppid()  # alive, but not the process that took the lock
    lock.write_text(json.dumps({"pid": parent, "host": socket.gethostname(), "started_utc": "2020-01-01T00:00:00+00:00",
                                "argv": ["labctl"], "pid_start_ticks": 1}))
    assert live_owner(path) is None  # the PID's process started at another time: stale
    lock.write_text(json.dumps({"pid": 1234567, "host": "another-bench", "started_utc": "", "argv": []}))
    owner = live_owner(path)  # cannot be checked from here: counts as live
    assert owner is not None and owner.host == "another-bench"
    with pytest.raises(RunFileError, match="another host"):
        RunLock.acquire(path)
    lock.write_text("garbage")
    with pytest.raises(RunFileError, match=r"run\.h5\.lock: not a labctl lock file"):
        RunLock.acquire(path)
    assert lock.read_text() == "garbage"  # never removed on a guess


def test_two_processes_racing_for_one_new_run_file_one_wins(tmp_path):
    path = tmp_path / "race.h5"
    script = ("import sys\nfrom labctl.store import RunFileWriter, RunFileError\n"
              "sys.stdin.readline()\n"
              "try:\n    w = RunFileWriter(sys.argv[1], ['smu'], {})\n    print('won', flush=True)\n"
              "    sys.stdin.readline()\n    w.close()\n"
              "except (RunFileError, FileExistsError) as exc:\n    print('lost', flush=True)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, cwd=REPO) for _ in range(4)]
    try:
        for proc in procs:  # all started: go
            proc.stdin.write("\n")
            proc.stdin.flush()
        outcomes = [proc.stdout.readline().strip() for proc in procs]
        assert sorted(outcomes) == ["lost", "lost", "lost", "won"]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.stdin.write("\n")
                proc.stdin.flush()
            proc.wait(timeout=30)
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == "labctl-run/1"


def test_lock_info_round_trip():
    info = LockInfo.of_this_process(["labctl", "run", "x.yaml"])
    assert LockInfo.from_json(info.to_json()) == info
    assert info.alive() is False  # not held by any lock of this process
    with pytest.raises(ValueError):
        LockInfo.from_json('{"pid": "1"}')
