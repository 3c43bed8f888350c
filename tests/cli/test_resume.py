"""Crash and resume: runs killed with SIGKILL at random moments finish with all their cycles."""

from __future__ import annotations

import random
import subprocess
import time

import h5py
import numpy as np
import pytest

from tests.cli.test_cli import LABCTL, labctl

CYCLES = 6
PROTOCOL = f"""
kind: symmetric_cycling
name: kill-and-resume
current_density_mA_cm2: 0.5
half_cycle_s: 600
cycles: {CYCLES}
voltage_limit_V: 5.0
record_interval_s: 5
cell: {{area_cm2: 1.0, electrolyte: LLZO, electrolyte_thickness_um: 300, li_thickness_um: 100,
        stack_pressure_MPa: 0, temperature_C: 25}}
"""
RUN_WALL_S = CYCLES * 1200 / 4000  # at --speed 4000


def _start(protocol, path, speed="4000", interval=None):
    text = PROTOCOL if interval is None else PROTOCOL.replace("record_interval_s: 5", f"record_interval_s: {interval}")
    protocol.write_text(text)
    proc = subprocess.Popen([*LABCTL, "run", str(protocol), "--simulate", "--speed", speed, "-o", str(path), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not path.exists():  # the run has started once its file exists
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def test_runs_killed_at_20_random_moments_resume_with_every_cycle(tmp_path):
    rng = random.Random(20261121)
    protocol = tmp_path / "cycling.yaml"
    for k in range(20):
        path = tmp_path / f"run{k}.h5"
        proc = _start(protocol, path)
        time.sleep(rng.uniform(0.0, RUN_WALL_S))
        proc.kill()
        proc.wait(timeout=30)
        with h5py.File(path, "r", swmr=True) as f:  # a killed file still opens, with its data
            assert f.attrs["format"] == "labctl-run/1"
        resumed = labctl("resume", str(path), "--speed", "max", "--quiet", timeout=120)
        if proc.returncode == 0:  # the run had finished before the kill: nothing to resume
            assert resumed.returncode == 1 and "only interrupted or crashed runs resume" in resumed.stderr
        else:
            assert resumed.returncode == 0, (k, resumed.stderr)
        with h5py.File(path, "r") as f:  # and closes cleanly after the resume
            assert f.attrs["status"] == "completed", k
            assert f["results"].attrs["cycles_completed"] == CYCLES
            np.testing.assert_array_equal(f["results/per_cycle/cycle"][:], np.arange(1, CYCLES + 1))
            t = f["channels/smu/test_time_s"][:]
            # Test time never goes back (a step change reads the same instant twice on a
            # virtual clock: the last reading of one step and the first of the next).
            assert np.all(np.diff(t) >= 0), "test time runs on without going back"
            steps = f["steps"][:]
            assert sorted(set(steps["step_index"])) == list(range(2 * CYCLES))
            assert set(f["channels/smu/cycle_index"][:]) == set(range(1, CYCLES + 1))
            kinds = [e.decode() for e in f["events"]["kind"]]
            assert kinds.count("resumed") == (0 if proc.returncode == 0 else 1)


def test_at_most_one_second_of_readings_is_lost_to_a_kill(tmp_path):
    path = tmp_path / "realtime.h5"
    proc = _start(tmp_path / "cycling.yaml", path, speed="1", interval="0.05")
    time.sleep(3.0)
    killed_at = time.time()
    proc.kill()
    proc.wait(timeout=30)
    with h5py.File(path, "r", swmr=True) as f:
        started = f.attrs["start_unix_time_s"]
        last_t = f["channels/smu/test_time_s"][-1]
    # Test time 0 comes after the file was created, so this overstates what was lost.
    assert (killed_at - started) - last_t <= 1.0


@pytest.mark.parametrize("status", ["completed", "short"])
def test_a_run_that_ended_for_a_reason_does_not_resume(tmp_path, status):
    path = tmp_path / "done.h5"
    (tmp_path / "c.yaml").write_text(PROTOCOL.replace(f"cycles: {CYCLES}", "cycles: 1"))
    args = ["--cell-ccd-mA-cm2", "0.2"] if status == "short" else []
    assert labctl("run", str(tmp_path / "c.yaml"), "--simulate", "--speed", "max", "-o", str(path), "--quiet",
                  *args).returncode == 0
    proc = labctl("resume", str(path))
    assert proc.returncode == 1
    assert f"the run ended with status '{status}'" in proc.stderr


def test_a_stopped_sweep_run_says_in_one_line_that_it_does_not_resume(tmp_path):
    from labctl.app.run import run_protocol
    from tests.conftest import EXAMPLES

    path = tmp_path / "memristor.h5"
    result = run_protocol(EXAMPLES / "memristor_pad.yaml", simulate=True, speed=float("inf"), output=path,
                          on_engine=lambda engine: engine.request_stop())
    assert result.outcome.status in ("stopped", "completed", "reset_failures")
    with h5py.File(path, "r+") as f:  # as a killed run leaves it
        f.attrs["status"] = "running"
    proc = labctl("resume", str(path))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "memristor_cycling run does not resume" in lines[0] and str(path) in lines[0], lines
