"""The characterisation examples run with `labctl run FILE --simulate --speed max` and reproduce
the seeds (issue 12): σ_ion 1.5 mS cm⁻¹ and R_b / R_gb / R_CT 16 / 14 / 46 Ω cm² within 15 %
[000 L64, L87], E_a 0.31 ± 0.03 eV [003 L374], σ_e 2.73 × 10⁻¹⁰ S cm⁻¹ within 20 % [000 L171],
t_Li+ 0.69 ± 0.05 [000 L87], an oxidation onset in volts [002 L39]; `labctl report` draws them.

They need the simulated cell of the cell-physics work (its ``impedance_ohm`` and the presets
fse, fse_ss, lpscl_ss, cse_li_ss); until that is on this branch they are skipped, saying why.
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from drivers.sim.physics.cell import CELL_PRESETS, SymmetricCell
from labctl.app.run import run_protocol
from labctl.report import build_report
from tests.conftest import EXAMPLES
from tests.test_report import assert_figure_file, assert_units_with_superscripts

pytestmark = pytest.mark.skipif(
    not hasattr(SymmetricCell, "impedance_ohm") or not {"fse", "fse_ss", "lpscl_ss", "cse_li_ss"} <= set(CELL_PRESETS),
    reason="needs the simulated cell's impedance_ohm and the fse/fse_ss/lpscl_ss/cse_li_ss presets (cell physics)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("examples")
    return out, {}


def _run(runs, name):
    out, done = runs
    if name not in done:
        done[name] = run_protocol(EXAMPLES / f"{name}.yaml", simulate=True, speed=math.inf, output=out / f"{name}.h5")
    result = done[name]
    assert result.outcome.status == "completed", result.outcome.reason
    assert not result.results.get("problems"), result.results["problems"]
    return result


def test_eis_fse_reproduces_conductivity_and_resistances(runs):
    r = _run(runs, "eis_fse").results
    assert r["ionic_conductivity_S_cm"] == pytest.approx(1.5e-3, rel=0.15)
    assert r["bulk_resistance_ohm_cm2"] == pytest.approx(16, rel=0.15)
    assert r["grain_boundary_resistance_ohm_cm2"] == pytest.approx(14, rel=0.15)
    assert r["charge_transfer_resistance_ohm_cm2"] == pytest.approx(46, rel=0.15)
    assert r["impedance_fit_relative_residual_rms"] < 0.02


def test_arrhenius_lpscl_reproduces_the_activation_energy(runs):
    r = _run(runs, "arrhenius_lpscl").results
    assert r["activation_energy_eV"] == pytest.approx(0.31, abs=0.03)
    assert list(r["temperature_C"]) == [25, 40, 55, 70, 80]
    assert r["ionic_conductivity_S_cm"] == pytest.approx(0.9e-3, rel=0.15)  # at 25 °C [003 L374]


def test_electronic_conductivity_fse(runs):
    r = _run(runs, "electronic_conductivity_fse").results
    assert r["electronic_conductivity_S_cm"] == pytest.approx(2.73e-10, rel=0.2)
    assert r["electronic_conductivity_is_upper_bound"] is False or r["electronic_conductivity_is_upper_bound"] == 0


def test_transference_number_fse(runs):
    r = _run(runs, "transference_number_fse").results
    assert r["transference_number"] == pytest.approx(0.69, abs=0.05)


def test_lsv_cse_reports_an_oxidation_onset_in_volts(runs):
    r = _run(runs, "lsv_cse").results
    assert 3.0 < r["oxidation_onset_V"] < 6.0 and not r["oxidation_onset_is_lower_bound"]


def test_plating_with_eis_keeps_the_resistances_constant(runs):
    r = _run(runs, "plating_with_eis_fse").results
    series = r["parts"]["EIS"]
    assert len(series["bulk_resistance_ohm_cm2"]) == 12
    assert series["charge_passed_mAh_cm2"][-1] == pytest.approx(12.0, rel=0.01)  # 12 mAh cm⁻² [000 L87]
    for key, seed in (("bulk_resistance_ohm_cm2", 16), ("grain_boundary_resistance_ohm_cm2", 14),
                      ("charge_transfer_resistance_ohm_cm2", 46)):
        assert all(v == pytest.approx(seed, rel=0.15) for v in series[key]), key


@pytest.mark.parametrize(("name", "figures"), [
    ("eis_fse", {"nyquist", "bode"}), ("arrhenius_lpscl", {"arrhenius", "nyquist", "bode"}),
    ("electronic_conductivity_fse", {"current"}), ("transference_number_fse", {"current", "nyquist"}),
    ("lsv_cse", {"lsv"}), ("plating_with_eis_fse", {"timeseries", "nyquist", "bode", "resistances"}),
])
def test_report_draws_the_figures(runs, tmp_path, name, figures):
    result = _run(runs, name)
    drawn = {f.name: f for f in build_report(result.path, tmp_path)}
    assert set(drawn) == figures
    for figure in drawn.values():
        assert_figure_file(figure.path, "png", figure.title)  # 300 dpi
        assert_units_with_superscripts(figure)
    for format in ("svg", "pdf"):  # every characterisation figure in the other formats too
        for figure in build_report(result.path, tmp_path, format=format):
            assert_figure_file(figure.path, format, figure.title)
    if "arrhenius" in drawn:
        assert drawn["arrhenius"].data["activation_energy_eV"] == pytest.approx(0.31, abs=0.03)
    if "lsv" in drawn:
        assert drawn["lsv"].data["oxidation_onset_V"] == pytest.approx(result.results["oxidation_onset_V"])


def test_the_cli_runs_an_example(tmp_path):
    out = tmp_path / "eis.h5"
    done = subprocess.run([sys.executable, "-m", "labctl.cli", "run", str(EXAMPLES / "eis_fse.yaml"), "--simulate",
                           "--speed", "max", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "R_b 16" in done.stdout and out.is_file()
