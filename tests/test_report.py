"""``labctl report``: figures of real runs (the protocols on the simulator, shortened), the
numbers they draw, decimation of long series, and one-line errors for bad files."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

from labctl.report import REPORTS, build_report, minmax_decimate, write_report
from labctl.app.run import run_protocol
from labctl.store import RunFile, RunFileError
from tests.conftest import EXAMPLES


def _variant(tmp: Path, example: str, **changes) -> Path:
    """A shortened copy of an example protocol (top-level keys replaced)."""
    data = yaml.safe_load((EXAMPLES / example).read_text())
    data.update(changes)
    path = tmp / example
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(tmp_path_factory, example: str, **changes):
    tmp = tmp_path_factory.mktemp(Path(example).stem)
    result = run_protocol(_variant(tmp, example, **changes), simulate=True, speed=math.inf,
                          output=tmp / f"{Path(example).stem}.h5")
    figures = {f.name: f for f in build_report(result.path)}
    return result, figures


@pytest.fixture(scope="module")
def cafm(tmp_path_factory):
    sites = yaml.safe_load((EXAMPLES / "cafm_gb_vs_gi.yaml").read_text())["sites"]
    return _run(tmp_path_factory, "cafm_gb_vs_gi.yaml", sites=sites[:2] + sites[5:7],
                sweep={"start_V": 0.0, "vertex_V": -10.0, "step_V": 0.02},
                transects=[{"x_nm": 514.04, "y_nm": 422.646, "direction_deg": 28.16, "distances_nm": [0, 12, 50]}],
                map={"x0_nm": 380, "y0_nm": 400, "nx": 8, "ny": 8, "pitch_nm": 20, "bias_V": 0.1})


@pytest.fixture(scope="module")
def memristor_tip(tmp_path_factory):
    return _run(tmp_path_factory, "memristor_tip.yaml", cycles=6)


@pytest.fixture(scope="module")
def memristor_pad(tmp_path_factory):
    return _run(tmp_path_factory, "memristor_pad.yaml", cycles=6, max_reset_failures=3)


@pytest.fixture(scope="module")
def ccd(tmp_path_factory):
    return _run(tmp_path_factory, "ccd_llzo.yaml", start_mA_cm2=1.5, stop_mA_cm2=2.2, half_cycle_s=300,
                record_interval_s=5.0)


@pytest.fixture(scope="module")
def cycling(tmp_path_factory):
    # 20 cycles of 1 h at a reading every 10 s: 7200 readings, more than the overview draws.
    return _run(tmp_path_factory, "cycling_llzo_0p8.yaml", total_time_h=20, record_interval_s=10.0)


def _assert_png(path: Path, min_width: int = 600) -> None:
    assert path.is_file() and path.suffix == ".png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
        assert min_width <= width <= 2000 and 300 <= height <= 1200, image.size
        assert len(np.unique(np.asarray(image.convert("L")))) > 20  # something is drawn
    assert 10_000 < path.stat().st_size < 600_000


# -- c-AFM ---------------------------------------------------------------------------------------
def test_cafm_writes_four_figures_named_after_the_run(cafm):
    result, figures = cafm
    stem = result.path.stem
    assert list(figures) == ["iv", "trigger_hist", "trigger_distance", "current_map"]
    for name, figure in figures.items():
        assert figure.path == result.path.parent / f"{stem}_{name}.png"
        _assert_png(figure.path)


def test_cafm_histogram_holds_the_boundary_and_interior_triggering_biases(cafm):
    result, figures = cafm
    data = figures["trigger_hist"].data
    sites = result.results["sites"]
    classes = np.array(sites["site_class"])
    bias = np.array(sites["triggering_bias_V"])
    edges = data["bin_edges_V"]
    assert np.allclose(np.diff(np.log10(edges)), 0.2)  # log-spaced, 5 bins a decade
    for c in ("GB", "GI"):
        assert sorted(data[f"triggering_bias_V_{c}"]) == sorted(bias[classes == c])
        assert data[f"counts_{c}"].sum() == np.sum(classes == c)
        assert data[f"median_V_{c}"] == pytest.approx(result.results["statistics"][c]["median"])
    # Boundaries trigger near −0.12 V, interiors beyond −2 V: the histograms do not overlap.
    gb_bins = np.flatnonzero(data["counts_GB"])
    gi_bins = np.flatnonzero(data["counts_GI"])
    assert edges[gb_bins.max() + 1] <= 0.2 and edges[gi_bins.min()] >= 2.0
    assert data["median_V_GB"] == pytest.approx(-0.12, abs=0.021)
    assert data["median_V_GI"] < -9.0


def test_cafm_iv_curves_are_the_sweeps_with_their_triggering_bias(cafm):
    result, figures = cafm
    curves = figures["iv"].data["curves"]
    sites = result.results["sites"]
    assert len(curves) == len(sites["triggering_bias_V"]) == 7
    for curve, bias, klass in zip(curves, sites["triggering_bias_V"], sites["site_class"]):
        assert curve["site_class"] == klass and curve["triggering_bias_V"] == bias
        assert len(curve["bias_V"]) == 1001 and curve["bias_V"].min() == pytest.approx(-10.0)
        assert bias in curve["bias_V"]  # the marker sits on a measured point
    assert figures["iv"].data["zoom_V"] == pytest.approx(2.5 * 0.12, abs=0.06)  # inset on the GB surge


def test_cafm_distance_plot_and_current_map_show_the_stored_numbers(cafm):
    result, figures = cafm
    distance = figures["trigger_distance"].data
    assert sorted(distance["distance_to_boundary_nm"]) == [0, 0, 0, 12, 50, 70.5, 89.5]
    maps = figures["current_map"].data
    with h5py.File(result.path) as f:
        for name in ("current_map_before", "current_map_after"):
            stored = f[f"results/{name}/current_A"][()]
            assert stored.shape == (8, 8)
            np.testing.assert_array_equal(maps[f"{name}_current_A"], stored)
            lo, hi = maps[f"{name}_range_A"]
            assert 0 < lo <= hi == pytest.approx(np.nanmax(np.abs(stored)))
    assert maps["bias_V"] == 0.1


# -- memristor -----------------------------------------------------------------------------------
def test_memristor_on_off_series_has_one_point_per_cycle(memristor_tip):
    result, figures = memristor_tip
    assert list(figures) == ["iv", "resistance"]
    for figure in figures.values():
        _assert_png(figure.path)
    data = figures["resistance"].data
    assert list(data["cycle"]) == [1, 2, 3, 4, 5, 6]
    np.testing.assert_array_equal(data["on_off_ratio"], result.results["cycles"]["on_off_ratio"])
    assert np.all(data["on_off_ratio"] > 5e4) and not data["reset_failed"].any()
    assert data["on_off_median"] == pytest.approx(result.results["on_off_median"])


def test_memristor_iv_marks_set_and_reset_on_measured_points(memristor_tip):
    result, figures = memristor_tip
    curves = figures["iv"].data["curves"]
    cycles = result.results["cycles"]
    assert [c["cycle"] for c in curves] == [1, 2, 4, 6]  # first, second, middle, last
    for c in curves:
        k = c["cycle"] - 1
        assert c["set_V"] == cycles["set_voltage_V"][k] and c["reset_V"] == cycles["reset_voltage_V"][k]
        assert -0.2 <= c["set_V"] < 0 < c["reset_V"] <= 1.0
        i_set = c["current_A"][np.flatnonzero(c["bias_V"] == c["set_V"])]
        assert c["set_current_A"] in i_set and abs(c["set_current_A"]) > 1e-7  # on the surge, in the LRS


def test_memristor_pad_marks_the_failed_resets(memristor_pad):
    result, figures = memristor_pad
    data = figures["resistance"].data
    assert len(data["cycle"]) == result.results["n_cycles"] == 3
    assert data["reset_failed"].all()
    assert all(math.isnan(c["reset_V"]) for c in figures["iv"].data["curves"])
    assert np.all(data["on_off_ratio"] <= 10)


# -- CCD and cycling -----------------------------------------------------------------------------
def test_ccd_time_series_marks_the_short_and_the_ccd(ccd):
    result, figures = ccd
    assert list(figures) == ["timeseries", "overpotential"]
    for figure in figures.values():
        _assert_png(figure.path)
    series = figures["timeseries"].data
    r = result.results
    assert r["short_detected"] and series["ccd_mA_cm2"] == r["ccd_mA_cm2"] == pytest.approx(1.8)
    [(kind, t_s)] = series["events"]
    assert kind == "short" and t_s == r["short_time_s"]
    with RunFile(result.path) as run:
        columns = run.columns("smu")
    # Short enough to be drawn point by point, and the detail holds the readings up to the short.
    np.testing.assert_array_equal(series["voltage_V"], columns["voltage_V"])
    [detail] = series["details"]
    assert "short in step" in detail["title"] and "1.9" in detail["title"]
    assert detail["voltage_V"][-1] == columns["voltage_V"][-1]
    over = figures["overpotential"].data
    np.testing.assert_array_equal(over["overpotential_end_mV"], r["overpotentials"]["overpotential_end_mV"])
    assert over["short_step_index"] == r["short_step_index"]


def test_cycling_overview_is_decimated_without_losing_extremes(cycling):
    result, figures = cycling
    series = figures["timeseries"].data
    with RunFile(result.path) as run:
        columns = run.columns("smu")
    n = len(columns["voltage_V"])
    assert series["n_readings"] == n > 4000
    assert len(series["voltage_V"]) <= 4000 < n
    assert series["voltage_V"].max() == columns["voltage_V"].max()
    assert series["voltage_V"].min() == columns["voltage_V"].min()
    assert series["current_density_mA_cm2"].max() == pytest.approx(0.8)
    assert [d["title"].split(" (")[0] for d in series["details"]] == ["first two cycles", "last two cycles"]
    over = figures["overpotential"].data
    pc = result.results["per_cycle"]
    assert list(over["cycle"]) == list(pc["cycle"]) and len(over["cycle"]) == 20
    np.testing.assert_array_equal(over["cell_asr_ohm_cm2"], pc["cell_asr_ohm_cm2"])
    np.testing.assert_array_equal(over["plating_overpotential_end_mV"], pc["plating_overpotential_end_mV"])


def test_cycling_that_shorts_in_its_first_half_cycle_still_gets_its_figures(tmp_path_factory):
    result, figures = _run(tmp_path_factory, "cycling_llzo_0p8.yaml", total_time_h=10,
                           simulated_cell={"preset": "hl_llzo", "ccd_mA_cm2": 0.5})
    assert result.outcome.status == "short" and result.results["cycles_completed"] == 0
    assert [kind for kind, _ in figures["timeseries"].data["events"]] == ["short"]
    assert len(figures["overpotential"].data["cycle"]) == 0  # stored as an empty JSON list
    for figure in figures.values():
        _assert_png(figure.path)

def test_imported_run_gets_the_time_series(ccd, tmp_path):
    result, _ = ccd
    copy = tmp_path / "imported.h5"
    shutil.copy(result.path, copy)
    with h5py.File(copy, "r+") as f:
        f.attrs["protocol_kind"] = "imported"
        del f["results"]
        f.create_group("results")
    assert [p.name for p in write_report(copy, tmp_path / "figs")] == ["imported_timeseries.png"]


# -- decimation ----------------------------------------------------------------------------------
def test_minmax_decimation_keeps_a_one_point_spike_and_reads_in_blocks(tmp_path):
    t = np.arange(1_000_000, dtype=float)
    y = np.sin(t / 5000.0)
    y[654_321] = -7.0  # one reading: a short's spike
    y[10] = np.nan
    with h5py.File(tmp_path / "series.h5", "w") as f:
        f["t"], f["y"] = t, y
        t_out, y_out = minmax_decimate(f["t"], f["y"], columns=500, block_rows=65_536)
        whole = minmax_decimate(t, y, columns=500)
    assert len(t_out) == len(y_out) == 1000
    assert y_out.min() == -7.0 and y_out.max() == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(t_out) >= 0) and t_out[0] >= 0 and t_out[-1] <= t[-1]
    np.testing.assert_array_equal(y_out, whole[1])
    short_t, short_y = minmax_decimate(t[:100], y[:100], columns=500)
    np.testing.assert_array_equal(short_t, t[:100])  # short series: every point


# -- errors --------------------------------------------------------------------------------------
def _one_line(exc: RunFileError, path: Path) -> str:
    message = str(exc)
    assert "\n" not in message and str(path) in message
    return message


def test_missing_garbage_and_foreign_files_are_one_line_errors(tmp_path):
    missing = tmp_path / "missing.h5"
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(300))  # a truncated HDF5 signature
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    for path in (missing, garbage, foreign):
        with pytest.raises(RunFileError) as info:
            write_report(path)
        _one_line(info.value, path)
    assert not list(tmp_path.glob("*.png"))


def test_a_damaged_chunk_index_is_a_one_line_error(ccd, tmp_path):
    result, _ = ccd
    corrupt = tmp_path / "corrupt.h5"
    shutil.copy(result.path, corrupt)
    with h5py.File(corrupt, "r") as f:
        dataset = f["channels/smu/voltage_V"]
        last = dataset.id.get_chunk_info(dataset.id.get_num_chunks() - 1)
    data = bytearray(corrupt.read_bytes())
    del data[last.byte_offset:]  # the file cut short in the readings (a full disk, a copy cut off)
    corrupt.write_bytes(bytes(data))
    with pytest.raises(RunFileError) as info:
        write_report(corrupt, tmp_path / "figs")
    _one_line(info.value, corrupt)


def test_unknown_kind_and_missing_results_are_one_line_errors(memristor_pad, tmp_path):
    result, _ = memristor_pad
    unknown = tmp_path / "unknown.h5"
    shutil.copy(result.path, unknown)
    with h5py.File(unknown, "r+") as f:
        f.attrs["protocol_kind"] = "impedance"
    with pytest.raises(RunFileError) as info:
        write_report(unknown)
    message = _one_line(info.value, unknown)
    assert "'impedance'" in message and all(kind in message for kind in REPORTS)

    unanalysed = tmp_path / "unanalysed.h5"
    shutil.copy(result.path, unanalysed)
    with h5py.File(unanalysed, "r+") as f:
        del f["results/cycles"]
    with pytest.raises(RunFileError) as info:
        write_report(unanalysed)
    assert "results/cycles" in _one_line(info.value, unanalysed)


# -- the command ---------------------------------------------------------------------------------
LABCTL = [shutil.which("labctl") or sys.executable, *([] if shutil.which("labctl") else ["-m", "labctl.cli"])]


def test_labctl_report_prints_the_paths_and_bad_files_exit_1(memristor_pad, tmp_path):
    result, _ = memristor_pad
    out = tmp_path / "figures"
    proc = subprocess.run([*LABCTL, "report", str(result.path), "-o", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    written = [line.removeprefix("wrote ") for line in proc.stdout.splitlines()]
    assert written == [str(out / f"{result.path.stem}_{name}.png") for name in ("iv", "resistance")]
    for path in written:
        _assert_png(Path(path))
    bad = tmp_path / "bad.h5"
    bad.write_text("not a run file")
    proc = subprocess.run([*LABCTL, "report", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "bad.h5" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout

