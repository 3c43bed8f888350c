"""Memristor set/reset cycling on the simulated 2400 + AFM: seed 004's on/off ratios."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labctl.app.run import run_protocol
from labctl.store import RunFile
from labctl.yamlfile import FileError
from protocols import load_protocol
from tests.conftest import EXAMPLES


def test_tip_on_off_about_1e5_stable_for_200_cycles(tmp_path):
    result = run_protocol(EXAMPLES / "memristor_tip.yaml", simulate=True, speed=math.inf, output=tmp_path / "tip.h5")
    r = result.results
    ratios = np.array(r["cycles"]["on_off_ratio"])
    assert result.outcome.status == "completed" and len(ratios) == 200
    assert np.all((ratios > 5e4) & (ratios < 2e5))  # ~1e5 for > 200 cycles [004 L22, L107]
    assert r["n_reset_failures"] == 0  # "always successful" with the tip [004 L107]
    assert -0.2 <= r["set_voltage_median_V"] < -0.1 and 0 < r["reset_voltage_median_V"] <= 1.0
    with RunFile(result.path) as run:
        current = run.columns("smu")["current_A"]
    assert np.max(np.abs(current)) <= 1e-3 * (1 + 1e-9)


def test_pad_on_off_at_most_10_and_the_run_ends_on_reset_failures(tmp_path):
    result = run_protocol(EXAMPLES / "memristor_pad.yaml", simulate=True, speed=math.inf, output=tmp_path / "pad.h5")
    r = result.results
    ratios = np.array(r["cycles"]["on_off_ratio"])
    assert np.all(ratios <= 10)  # [004 L105-L107]
    assert result.outcome.status == "reset_failures" and r["n_reset_failures"] >= 10
    assert len(ratios) < 200


def test_read_bias_outside_the_window_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "memristor_tip.yaml").read_text().replace("read_bias_V: 0.05", "read_bias_V: 1.5"))
    with pytest.raises(FileError) as info:
        load_protocol(bad)
    assert len(info.value.lines) == 1 and "read_bias_V" in info.value.lines[0]
