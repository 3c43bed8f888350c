"""Never leave a cell under current: SIGTERM, SIGHUP and SIGKILL of `labctl run` against a 2400
simulator in a separate process (`labctl sim keithley2400`), reached through a station file.

What is checked is the instrument's own word: ``:OUTP?`` asked over a connection of the test's
own, as an operator at the bench would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest

from tests.conftest import EXAMPLES, REPO

LABCTL = [sys.executable, "-m", "labctl.cli"]


def _until(condition, timeout_s: float, what: str) -> float:
    """Wait for ``condition()``; the seconds it took. Fails naming ``what`` after the deadline."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout_s:
            pytest.fail(f"{what}: not within {timeout_s} s")
        time.sleep(0.02)
    return time.monotonic() - began


class Bench:
    """A `labctl sim keithley2400` process and a way to ask it ``:OUTP?``."""

    def __init__(self, tmp_path: Path) -> None:
        self.process = subprocess.Popen([*LABCTL, "sim", "keithley2400", "--cell-ccd-mA-cm2", "9"], cwd=REPO,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.resource = self.process.stdout.readline().strip()  # TCPIP::127.0.0.1::PORT::SOCKET
        assert self.resource.startswith("TCPIP::127.0.0.1::"), self.process.stderr.read()
        self.port = int(self.resource.split("::")[2])
        self.station = tmp_path / "station.yaml"
        self.station.write_text(f"instruments:\n  smu: {{driver: keithley2400, address: '{self.resource}'}}\n")

    def output_on(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b":OUTP?\n")
            reply = b""
            while not reply.endswith(b"\n"):
                reply += s.recv(64)
        return reply.strip() == b"1"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    b = Bench(tmp_path)
    yield b
    b.close()


def _start_run(bench: Bench, out: Path, *extra: str) -> subprocess.Popen:
    run = subprocess.Popen([*LABCTL, "run", str(EXAMPLES / "ccd_llzo.yaml"), "--station", str(bench.station),
                            "-o", str(out), "--quiet", *extra], cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _until(lambda: run.poll() is not None or bench.output_on(), 60, "the run turns the output on")
    assert run.poll() is None, run.stderr.read()
    return run


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_end_the_run_safely(bench: Bench, tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "run.h5"
    run = _start_run(bench, out, "--control")
    assert (tmp_path / "run.h5.ctl").is_symlink()
    os.kill(run.pid, sig)
    took = _until(lambda: not bench.output_on(), 3, f"output off after {sig.name}")
    assert run.wait(timeout=30) == 128 + sig
    assert took < 3
    with h5py.File(out, "r") as f:  # a finished file: plain h5py opens it
        assert f.attrs["status"] == "interrupted"
        assert f.attrs["end_reason"].startswith(f"interrupted ({sig.name})")
    assert not (tmp_path / "run.h5.ctl").exists() and not (tmp_path / "run.h5.ctl").is_symlink()


def test_sigkill_is_answered_by_the_guardian_within_3_s(bench: Bench, tmp_path: Path) -> None:
    out = tmp_path / "run.h5"
    run = _start_run(bench, out)
    run.kill()
    run.wait(timeout=10)
    took = _until(lambda: not bench.output_on(), 3, "output off by the guardian after SIGKILL")
    assert took < 3
    # the guardian records what it did once the run process is gone: the file is finished too
    _until(lambda: "guardian" in (tmp_path / "run.h5.guardian.log").read_text(), 30, "the guardian's log")

    def recorded() -> bool:
        try:
            with h5py.File(out, "r") as f:
                return any(b"guardian" in row["kind"] for row in f["events"][()])
        except OSError:  # still open for write by the dead writer, until the guardian finishes it
            return False

    _until(recorded, 30, "the guardian's event in the run file")
    with h5py.File(out, "r") as f:
        assert f.attrs["status"] == "interrupted"
        messages = [row["message"].decode() for row in f["events"][()] if row["kind"] == b"guardian"]
    assert any("output off, confirmed by :OUTP? = 0" in m for m in messages), messages


def test_a_run_that_ends_normally_leaves_the_guardian_nothing_to_do(bench: Bench, tmp_path: Path) -> None:
    fast = tmp_path / "fast.yaml"
    fast.write_text((EXAMPLES / "ccd_llzo.yaml").read_text().replace("half_cycle_s: 900", "half_cycle_s: 0.5")
                    .replace("record_interval_s: 1.0", "record_interval_s: 0.1").replace("stop_mA_cm2: 3.0", "stop_mA_cm2: 0.3"))
    proc = subprocess.run([*LABCTL, "run", str(fast), "--station", str(bench.station), "-o", str(tmp_path / "r.h5"),
                           "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not bench.output_on()
    log = tmp_path / "r.h5.guardian.log"
    _until(lambda: log.exists() and "nothing to do" in log.read_text(), 10, "the guardian's last word")
    assert "making them safe" not in log.read_text()
