"""The examples on a simulated cell with a real bench's noise (issue 16): 0.5–2 mV rms used to
end 0/20 CCD staircases at their first step and a healthy FSE cell within 3 h."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from labctl.app.run import run_protocol
from tests.cli.test_cli import labctl
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.timeout(120)


def with_cell(tmp_path: Path, example: str, **changes) -> Path:
    """The example with its ``simulated_cell`` section extended (and top-level changes)."""
    protocol = yaml.safe_load((EXAMPLES / example).read_text())
    cell = changes.pop("simulated_cell", {})
    protocol = {**protocol, **changes, "simulated_cell": {**protocol["simulated_cell"], **cell}}
    path = tmp_path / example
    path.write_text(yaml.safe_dump(protocol))
    return path


@pytest.mark.parametrize(("noise_V", "seed"), [(1e-3, 0), (1e-3, 1), (1e-3, 2), (1e-3, 3), (2e-3, 4)])
def test_the_ccd_staircase_finds_the_ccd_through_a_benchs_noise(tmp_path, noise_V, seed) -> None:
    path = with_cell(tmp_path, "ccd_llzo.yaml", simulated_cell={"noise_V": noise_V, "seed": seed})
    result = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "run.h5")
    assert result.outcome.status == "short", result.outcome.reason
    assert result.results["ccd_mA_cm2"] == pytest.approx(1.8)
    assert result.results["short_current_density_mA_cm2"] == pytest.approx(1.9)


def test_cell_ccd_on_the_command_line_is_what_the_staircase_finds(tmp_path) -> None:
    proc = labctl("run", str(EXAMPLES / "ccd_llzo.yaml"), "--simulate", "--speed", "max", "--cell-ccd-mA-cm2", "1.2",
                  "-o", str(tmp_path / "run.h5"), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "CCD = 1.2 mA cm⁻²" in proc.stdout and "short circuit at 1.3 mA cm⁻²" in proc.stdout


@pytest.mark.parametrize("seed", [0, 1])
def test_a_healthy_fse_cell_cycles_1000_h_through_half_a_millivolt_of_noise(tmp_path, seed) -> None:
    """cycling_fse_12000h.yaml cut to 1000 h: ±16–22 mV at 0.2 mA cm⁻² under 0.5 mV rms."""
    path = with_cell(tmp_path, "cycling_fse_12000h.yaml", total_time_h=1000,
                     simulated_cell={"noise_V": 0.5e-3, "seed": seed})
    result = run_protocol(path, simulate=True, speed=math.inf, output=tmp_path / "run.h5")
    assert (result.outcome.status, result.outcome.reason) == ("completed", "all steps completed")
    assert result.results["cycles_completed"] == 500
