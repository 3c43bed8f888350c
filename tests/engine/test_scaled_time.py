"""Sped-up time stays true: a busy machine never adds test time the cell did not spend."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import h5py
import numpy as np
import pytest

from labctl.engine import PacedClock, ScaledClock
from tests.conftest import EXAMPLES, REPO


def test_paced_time_moves_only_while_the_engine_waits_and_reports_a_stall():
    clock = PacedClock(3600.0)
    assert clock.sleep_until(1.0) == 0.0 and clock.now() == 1.0  # exactly the planned time
    time.sleep(0.05)  # a stall: 180 s at ×3600 that a scaled clock would have added
    assert clock.now() == 1.0  # the cell's time did not move
    late = clock.sleep_until(2.0, report_over_s=1.0)
    assert clock.now() == 2.0
    assert late > 100 and clock.held_s == pytest.approx(late)  # reported, never added


def test_a_wake_during_a_paced_wait_advances_by_the_part_waited():
    clock = PacedClock(1.0e6)
    wake = threading.Event()
    wake.set()
    clock.sleep_until(3600.0, wake)
    assert 0.0 <= clock.now() < 3600.0


def test_real_time_is_the_cells_own():
    clock = ScaledClock(1.0)
    t0 = clock.now()
    time.sleep(0.02)
    assert clock.sleep_until(t0 + 0.001) == 0.0
    assert clock.now() - t0 >= 0.02


def _durations(path) -> tuple[np.ndarray, float]:
    with h5py.File(path, "r") as f:
        steps = f["steps"][()]
        return steps["end_s"] - steps["start_s"], float(f["results"].attrs["ccd_mA_cm2"])


def test_speed_3600_under_two_cpu_hogs_gives_the_steps_and_ccd_of_speed_max(tmp_path):
    protocol = tmp_path / "ccd.yaml"  # the example's staircase, stopped at 0.8 mA cm⁻² with a cell of CCD 0.5
    protocol.write_text((EXAMPLES / "ccd_llzo.yaml").read_text().replace("stop_mA_cm2: 3.0", "stop_mA_cm2: 0.8"))
    runs = {}
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        for speed in ("max", "3600"):
            out = tmp_path / f"{speed}.h5"
            proc = subprocess.run([sys.executable, "-m", "labctl.cli", "run", str(protocol), "--simulate", "--speed",
                                   speed, "--cell-ccd-mA-cm2", "0.5", "--quiet", "-o", str(out)], cwd=REPO,
                                  capture_output=True, text=True, timeout=240)
            assert proc.returncode == 0, proc.stderr
            runs[speed] = _durations(out)
    finally:
        for hog in hogs:
            hog.kill()
    (fast, ccd_fast), (scaled, ccd_scaled) = runs["max"], runs["3600"]
    assert ccd_scaled == ccd_fast == 0.5
    assert len(scaled) == len(fast)
    # every completed half-cycle lasts its 900 s within one record interval (1 s); the last one ended on the short
    assert np.all(np.abs(scaled[:-1] - fast[:-1]) <= 1.0 + 1e-6), np.max(np.abs(scaled[:-1] - fast[:-1]))
