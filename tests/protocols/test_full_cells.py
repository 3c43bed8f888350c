"""The full-cell and lithium-inventory examples (issue 13) run on the simulated 2400 and, for the
cycling ones, on the simulated NEWARE and BioLogic cyclers, reproduce the seeds within the
stated tolerances, give the same per-cycle capacities on all three, and ``labctl report`` draws
their figures. Long examples are shortened (fewer cycles) so the suite stays fast."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from labctl.app.run import load_checked, run_protocol
from labctl.report import build_report
from labctl.store import RunFile
from labctl.yamlfile import FileError
from protocols.li_cu_efficiency import LiCuEfficiency
from tests.conftest import EXAMPLES

CYCLERS = (None, "neware", "biologic")


def shortened(tmp_path: Path, name: str, **changes) -> Path:
    """The example ``name`` with top-level ``changes`` (None deletes a key) and, under
    ``blocks``, ``cycles`` set from ``block_cycles`` (a list)."""
    data = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    block_cycles = changes.pop("block_cycles", None)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    if block_cycles is not None:
        for block, cycles in zip(data["blocks"], block_cycles):
            block["cycles"] = cycles
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(tmp_path: Path, protocol: Path, cycler: str | None = None, tag: str = "") -> tuple[dict, Path]:
    out = tmp_path / f"{protocol.stem}_{cycler or '2400'}{tag}.h5"
    result = run_protocol(protocol, simulate=True, speed=math.inf, cycler=cycler, output=out)
    return result.results, result.path


def per_cycle(path: Path) -> dict[str, np.ndarray]:
    with RunFile(path) as f:
        cycles = f.results()["cycles"]
    return {k: np.asarray(v) for k, v in cycles.items()}


def test_every_example_expands_with_the_seeds_conditions():
    for path in sorted(EXAMPLES.glob("*.yaml")):
        load_checked(path)  # schema, program, simulated cell
    fse, _ = load_checked(EXAMPLES / "full_cell_lfp_fse.yaml")
    assert (fse.formation.c_rate, fse.formation.cycles) == (0.1, 2)  # [000 L183]
    assert fse.blocks[0].c_rate == pytest.approx(1 / 3, rel=1e-5) and fse.blocks[0].cycles == 3000  # [000 L145]
    nmc, program = load_checked(EXAMPLES / "full_cell_nmc811_fse_5C.yaml")
    assert nmc.current_A(5) / nmc.cell.area_cm2 == pytest.approx(3e-3)  # 5C = 3 mA cm⁻² [000 L145]
    assert nmc.cell.temperature_C == 50
    hl, program = load_checked(EXAMPLES / "full_cell_lfp_hl_llzo.yaml")
    assert (hl.lower_cutoff_V, hl.upper_cutoff_V, hl.cell.temperature_C) == (2.5, 4.2, 40)  # [004 L89, L119]
    charge = program.steps[0].steps[0]
    assert charge.current_A == pytest.approx(0.2e-3) and charge.stop_voltage_above_V == 4.2  # 0.5C of 0.4 mAh cm⁻²
    plating, program = load_checked(EXAMPLES / "continuous_plating_lpscl.yaml")
    assert program.steps[0].until.kind == "short" and plating.current_density_mA_cm2 == 0.2  # [000 L87]
    ctta, program = load_checked(EXAMPLES / "ctta_lpscl.yaml")
    assert program.steps[0].steps[1].stop_voltage_above_V == 0.05  # [003 L555]


def test_plating_to_short_on_lpscl_gives_the_seeds_1_2_mAh_cm2_on_the_2400_and_both_cyclers(tmp_path):
    values = []
    for cycler in CYCLERS:
        results, path = run(tmp_path, EXAMPLES / "continuous_plating_lpscl.yaml", cycler)
        assert results["run_status"] == "completed"
        assert results["capacity_to_short_mAh_cm2"] == pytest.approx(1.2, rel=0.2)  # [000 L87]
        assert not results["capacity_to_short_is_lower_bound"]
        assert results["capacity_to_short_li_thickness_um"] == pytest.approx(
            results["capacity_to_short_mAh_cm2"] * 4.85, rel=0.01)
        values.append(results["capacity_to_short_mAh_cm2"])
    assert max(values) - min(values) < 0.01
    names = [f.name for f in build_report(path, tmp_path / "report")]
    assert names == ["timeseries", "plating"]


def test_li_cu_ce_on_fse_is_99_1_percent_on_all_three(tmp_path):
    protocol = shortened(tmp_path, "li_cu_fse", cycles=40, ce_first_cycle=20, ce_last_cycle=40)
    ces = []
    for cycler in CYCLERS:
        results, path = run(tmp_path, protocol, cycler)
        assert results["coulombic_efficiency_method"] == "plain cycling"
        assert results["coulombic_efficiency_pct"] == pytest.approx(99.1, abs=0.3)  # [000 L136]
        ces.append(per_cycle(path)["coulombic_efficiency_pct"])
    np.testing.assert_allclose(ces[1], ces[0], atol=1e-6)
    np.testing.assert_allclose(ces[2], ces[0], atol=1e-3)
    figures = {f.name: f for f in build_report(path, tmp_path / "report")}
    assert list(figures) == ["timeseries", "capacity", "profiles"]
    assert figures["capacity"].data["mean_pct"] == pytest.approx(results["coulombic_efficiency_pct"])
    # the window's large type: the CE, not how the run ended
    assert LiCuEfficiency.headline(results) == f"CE {results['coulombic_efficiency_pct']:.2f} % (plain cycling)"


def test_li_cu_on_lpscl_fails_within_a_few_cycles_at_a_low_ce(tmp_path):
    protocol = shortened(tmp_path, "li_cu_fse", cycles=20, ce_first_cycle=None, ce_last_cycle=None,
                         simulated_cell={"model": "li_cu", "preset": "lpscl"})
    results, _ = run(tmp_path, protocol)
    assert results["run_status"] == "short" and 4 <= results["short_cycle"] <= 8  # [000 L143]: 6 cycles
    assert 20 <= results["coulombic_efficiency_pct"] <= 70  # [000 L143]


def test_lfp_hl_llzo_gives_about_120_mAh_g_and_the_same_capacities_on_all_three(tmp_path):
    protocol = shortened(tmp_path, "full_cell_lfp_hl_llzo", block_cycles=[6])
    capacities = []
    for cycler in CYCLERS:
        results, path = run(tmp_path, protocol, cycler)
        assert results["run_status"] == "completed"
        assert results["discharge_capacity_mAh_g"] == pytest.approx(120, rel=0.15)  # [004 L89]
        assert results["capacity_retention_pct"] > 95 and 96 < results["coulombic_efficiency_pct"] < 100.5
        capacities.append(per_cycle(path)["discharge_capacity_mAh_g"])
    for other in capacities[1:]:  # to the instruments' resolution (the 2400's current range)
        np.testing.assert_allclose(other, capacities[0], rtol=1e-4)
    figures = {f.name: f for f in build_report(path, tmp_path / "report")}
    assert list(figures) == ["timeseries", "capacity", "profiles", "dqdv"]
    dq = figures["dqdv"].data
    peak = dq[f"{dq['cycles'][0]}_voltage_V"][np.argmax(dq[f"{dq['cycles'][0]}_dqdv"])]
    assert 3.2 < peak < 3.45  # LFP's two-phase plateau, below 3.4 V on discharge


def test_lfp_fse_with_formation_and_nmc811_at_5C_give_the_same_capacities_on_all_three(tmp_path):
    for name, blocks, per_g, first in (("full_cell_lfp_fse", [4], None, None),
                                       ("full_cell_nmc811_fse_5C", [6], 118, 0.1)):
        protocol = shortened(tmp_path, name, block_cycles=blocks)
        capacities = []
        for cycler in CYCLERS:
            results, path = run(tmp_path, protocol, cycler)
            assert results["run_status"] == "completed"
            assert results["reference_cycle"] == 3  # the first cycle after the 0.1C × 2 formation [000 L183]
            if per_g is not None:
                assert results["discharge_capacity_mAh_g"] == pytest.approx(per_g, rel=first)  # [000 L145]
            capacities.append(per_cycle(path)["discharge_capacity_mAh"])
        for other in capacities[1:]:  # to the instruments' resolution (the 2400's current range)
            np.testing.assert_allclose(other, capacities[0], rtol=1e-4)


def test_the_nmc811_rate_capability_falls_from_0_5C_to_5C(tmp_path):
    protocol = shortened(tmp_path, "full_cell_nmc811_fse_rate", block_cycles=[2, 2, 2, 2, 2])
    results, path = run(tmp_path, protocol)
    rc = results["rate_capability"]
    by_block = dict(zip(rc["block"], rc["discharge_capacity_mAh_g"]))
    assert by_block["C/2"] == pytest.approx(195, rel=0.1)  # [000 L145]
    assert by_block["C/2"] > by_block["1C"] > by_block["2C"] > by_block["5C"]
    assert by_block["0.5C recovery"] == pytest.approx(by_block["C/2"], rel=0.03)
    with RunFile(path) as f:
        steps = f.steps()
    cv = [s for s in steps if s["kind"] == "constant_voltage"]
    assert cv and all(s["reason"] == "current" for s in cv)  # CC-CV: every hold ends on its C/20 cut-off
    assert any(s["charge_C"] > 0 and s["end_s"] - s["start_s"] > 60 for s in cv)


def test_ctta_gives_a_side_reaction_charge_linear_in_the_square_root_of_time(tmp_path):
    protocol = shortened(tmp_path, "ctta_lpscl", titrations=8)
    slopes = []
    for cycler in CYCLERS:
        results, path = run(tmp_path, protocol, cycler)
        assert results["titration_count"] == 8
        assert results["sqrt_time_r_squared"] > 0.98  # [003 L555]
        assert results["sei_charge_uAh_cm2"] == pytest.approx(8 * 0.5, rel=0.05)
        assert results["sei_thickness_nm"] == pytest.approx(9 * results["sei_charge_uAh_cm2"])
        slopes.append(results["sqrt_time_slope_uAh_cm2_h05"])
    assert max(slopes) - min(slopes) < 0.02 * slopes[0]
    assert [f.name for f in build_report(path, tmp_path / "report")] == ["timeseries", "qsigma"]


def test_soft_short_amperometry_finds_growing_spikes_then_the_hard_short(tmp_path):
    results, path = run(tmp_path, EXAMPLES / "soft_short_latp.yaml")
    assert results["run_status"] == "completed"
    assert results["noise_floor_A"] == pytest.approx(0.5e-9, rel=0.3)  # [001 L64]
    assert results["spike_count"] > 30
    assert results["spike_amplitude_growth_spearman"] > 0.5  # "the amplitude … increases with time" [001 L54]
    assert max(results["spikes"]["amplitude_A"]) > 100e-9  # "to hundreds of nA" [001 L64]
    assert results["soft_short_onset_s"] < results["hard_short_s"]
    assert results["hard_short_s"] == pytest.approx(399.5, abs=0.5)  # [001 L56, L60]
    assert results["burnout_s"] > results["hard_short_s"]
    figure = build_report(path, tmp_path / "report")[0]
    assert figure.name == "current" and len(figure.data["spike_time_s"]) == results["spike_count"]


def test_a_bad_simulated_cell_section_gives_one_line_naming_the_file_line_and_field(tmp_path):
    text = (EXAMPLES / "li_cu_fse.yaml").read_text()
    for old, new, expected in (("  model: li_cu", "  model: li_au", r"simulated_cell\.model: unknown model 'li_au'"),
                               ("  preset: fse", "  preset: granite", r"unknown preset 'granite'"),
                               ("  preset: fse", "  preset: fse\n  ccd_mA_cm2: 2", r"unknown parameter\(s\) ccd_mA_cm2")):
        path = tmp_path / "bad.yaml"
        path.write_text(text.replace(old, new))
        with pytest.raises(FileError) as info:
            load_checked(path)
        assert len(info.value.lines) == 1
        line = info.value.lines[0]
        assert line.startswith("bad.yaml:") and __import__("re").search(expected, line), line


def test_several_full_cells_share_a_simulated_cycler_each_with_its_own_seed(tmp_path):
    from labctl.app.cells import CellSpec, run_simulated_cycler_cells

    protocol = shortened(tmp_path, "full_cell_lfp_hl_llzo", block_cycles=[2])
    results = run_simulated_cycler_cells([CellSpec.parse(f"{protocol}@a"), CellSpec.parse(f"{protocol}@b")],
                                         cycler="neware", speed=math.inf, output_dir=tmp_path / "runs")
    assert [r.error for r in results] == [None, None]
    seeds = []
    for r in results:
        assert r.result.results["discharge_capacity_mAh_g"] == pytest.approx(120, rel=0.15)
        with RunFile(r.result.path) as f:
            seeds.append(__import__("json").loads(f.attrs["simulated_cell"])["params"]["seed"])
    assert seeds == [0, 1]


def test_a_stopped_continuous_plating_run_resumes_with_its_modelled_cell_and_still_leaves_on_the_short(tmp_path):
    """Stopped mid-way (the operator), resumed from its file: the recorded plating_to_short cell
    is rebuilt (fresh, as a resumed simulation's cell is), the loop goes on until the short."""
    from labctl.app.run import resume_run
    from labctl.events import StepEnded

    engines = []

    def stop_after_two_chunks(event):
        if isinstance(event, StepEnded) and event.summary.step_index == 2:
            engines[0].request_stop("test: stopped after two chunks")

    result = run_protocol(EXAMPLES / "continuous_plating_lpscl.yaml", simulate=True, speed=math.inf,
                          output=tmp_path / "run.h5", on_engine=engines.append, subscribers=[stop_after_two_chunks])
    assert result.outcome.status == "stopped"
    resumed = resume_run(result.path)
    assert resumed.outcome.status == "completed"
    with RunFile(result.path) as f:
        record = __import__("json").loads(f.attrs["simulated_cell"])
        kinds = [e["kind"] for e in f.events()]
    assert record["model"] == "plating_to_short" and "resumed" in kinds and "loop_exit" in kinds
    # the rebuilt cell counts its plated capacity afresh: the short comes 1.2 mAh cm⁻² after the resume
    assert resumed.results["capacity_to_short_mAh_cm2"] > 1.2


def test_a_full_cell_can_first_bring_the_chamber_to_its_temperature(tmp_path):
    protocol = shortened(tmp_path, "full_cell_lfp_hl_llzo", block_cycles=[2], chamber_temperature_C=40, soak_min=10)
    results, path = run(tmp_path, protocol)
    assert results["run_status"] == "completed"
    assert results["discharge_capacity_mAh_g"] == pytest.approx(120, rel=0.15)
    with RunFile(path) as f:
        steps = f.steps()
    assert steps[0]["kind"] == "set_temperature" and steps[1]["kind"] == "constant_current"
    with RunFile(path) as f:
        assert "simulated_chamber" in f.attrs  # the cell followed a simulated chamber's air
    with pytest.raises(FileError, match="cannot run set_temperature steps"):
        run(tmp_path, protocol, "neware", tag="_refused")
