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


def _assert_png(path: Path, dpi: int = 300) -> None:
    """A PNG at ``dpi`` (its pHYs chunk), of the size the figure's inches give at that dpi."""
    assert path.is_file() and path.suffix == ".png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.info["dpi"] == pytest.approx((dpi, dpi), abs=0.05)  # stored as dots per metre
        width, height = image.size
        # The figures are 5–11.5 in wide and 3.8–8.4 in high.
        assert 5 * dpi <= width <= 11.5 * dpi and 3.8 * dpi <= height <= 8.4 * dpi, image.size
        assert len(np.unique(np.asarray(image.convert("L")))) > 20  # something is drawn
    assert 10_000 < path.stat().st_size < 2_000_000 * (dpi / 300) ** 2


def assert_figure_file(path: Path, format: str, title: str) -> None:
    """A figure file in ``format`` (png at 300 dpi, svg, pdf) whose metadata carry ``title``."""
    assert path.suffix == f".{format}" and path.is_file()
    data = path.read_bytes()
    if format == "png":
        _assert_png(path)
        with Image.open(path) as image:
            assert image.info["Title"] == " ".join(title.split())
    elif format == "svg":
        assert data.startswith(b"<?xml") and b"<svg " in data[:1000] and data.rstrip().endswith(b"</svg>")
        assert f"<dc:title>{' '.join(title.split())}</dc:title>".encode() in data.replace(b"&amp;", b"&")
    else:
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        assert b"/Title" in data and b"/CreationDate" not in data
        assert b"/FontFile2" in data and b"/Type3" not in data  # TrueType text, as journals ask


UNIT_FORMS = ("cm-2", "cm-1", "cm2", "cm$^", "g-1", "K-1", "$^{")


def assert_units_with_superscripts(figure) -> None:
    """No unit of the figure is written as mA cm-2, cm$^{-2}$ or Ω cm2: the superscript form only."""
    for text in figure.texts:
        assert not any(form in text for form in UNIT_FORMS), (figure.name, text)


# -- c-AFM ---------------------------------------------------------------------------------------
def test_cafm_writes_four_figures_named_after_the_run(cafm):
    result, figures = cafm
    stem = result.path.stem
    assert list(figures) == ["iv", "trigger_hist", "trigger_distance", "current_map"]
    for name, figure in figures.items():
        assert figure.path == result.path.parent / f"{stem}_{name}.png"
        _assert_png(figure.path)
        assert_units_with_superscripts(figure)


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


def test_cafm_maps_before_and_after_share_one_log_colour_scale(cafm, tmp_path):
    result, _ = cafm
    bright = tmp_path / "bright.h5"
    shutil.copy(result.path, bright)
    with h5py.File(bright, "r+") as f:  # conductive bumps after the sweeps: 10⁴ × the background at one point
        after = f["results/current_map_after/current_A"]
        image = after[()]
        image[3, 4] *= 1e4
        after[...] = image
    figure = next(f for f in build_report(bright, tmp_path) if f.name == "current_map")
    maps = figure.data
    before, after = maps["current_map_before_range_A"], maps["current_map_after_range_A"]
    assert after[1] > 1000 * before[1]  # the two maps' own ranges are decades apart …
    # … yet both are drawn with the same colour limits, those of all maps together.
    assert maps["current_map_before_clim_A"] == maps["current_map_after_clim_A"] == maps["colour_limits_A"]
    assert maps["colour_limits_A"] == pytest.approx((min(before[0], after[0]), max(before[1], after[1])))
    # One colour bar for both.
    assert sum(text.startswith("|current| at") for text in figure.texts) == 1


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
    for figure in figures.values():
        assert_units_with_superscripts(figure)
        assert figure.title.startswith("CCD staircase, Li | H.L.-LLZO | Li, 300 µm, 25 °C (simulated)")


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


# -- format, resolution, titles ------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["cafm", "memristor_pad", "ccd", "cycling"])
@pytest.mark.parametrize("format", ["svg", "pdf"])
def test_every_figure_kind_writes_svg_and_pdf(request, tmp_path, fixture, format):
    result, pngs = request.getfixturevalue(fixture)
    figures = build_report(result.path, tmp_path, format=format)
    assert [f.name for f in figures] == list(pngs)
    for figure in figures:
        assert figure.path == tmp_path / f"{result.path.stem}_{figure.name}.{format}"
        assert_figure_file(figure.path, format, figure.title)
        assert figure.title == pngs[figure.name].title
    # Drawn twice from one run file, a figure is the same file (no creation date in it).
    first = figures[0].path.read_bytes()
    build_report(result.path, tmp_path, format=format)
    assert figures[0].path.read_bytes() == first


def test_png_resolution_is_300_dpi_unless_asked(memristor_pad, tmp_path):
    result, figures = memristor_pad
    for figure in figures.values():
        assert_figure_file(figure.path, "png", figure.title)  # 300 dpi by default
    with Image.open(figures["resistance"].path) as image:
        size_300 = image.size
    [_, resistance] = build_report(result.path, tmp_path, dpi=150)
    _assert_png(resistance.path, dpi=150)
    with Image.open(resistance.path) as image:
        assert image.size == (size_300[0] // 2, size_300[1] // 2)  # the same figure, half the pixels
    for format, dpi in (("tiff", 300), ("png", 20), ("png", 5000)):
        with pytest.raises(ValueError):
            build_report(result.path, tmp_path / "refused", format=format, dpi=dpi)
    assert not (tmp_path / "refused").exists()


def test_titles_come_from_the_runs_own_cell(tmp_path_factory):
    """A CCD protocol of Li | H.L.-LLZO | Li run with ``--cell bare_llzo`` at 70 °C is titled with
    the bare LLZO cell at 70 °C, not with its protocol's name or cell."""
    tmp = tmp_path_factory.mktemp("bare")
    result = run_protocol(EXAMPLES / "ccd_llzo.yaml", simulate=True, speed=math.inf, output=tmp / "bare.h5",
                          cell_overrides={"preset": "bare_llzo", "temperature_C": 70.0, "ccd_mA_cm2": 0.15})
    figures = build_report(result.path)
    assert [f.name for f in figures] == ["timeseries", "overpotential"]
    for figure in figures:
        assert figure.title.startswith("CCD staircase, Li | LLZO | Li, no interlayer, 300 µm, 70 °C (simulated)")
        assert not any("H.L.-LLZO" in text or "PPC" in text for text in figure.texts)
        assert_units_with_superscripts(figure)
    # Without a simulated preset the protocol's cell names the run; without either, the file.
    with h5py.File(result.path, "r+") as f:
        for key in ("simulated_cell_label", "simulated_cell_preset"):
            del f.attrs[key]
        f.attrs["simulated"] = False
    [series, _] = build_report(result.path)
    assert series.title.startswith("CCD staircase, Li6.5La3Zr1.5Ta0.5O12 (LLZO) with PPC-LiTFSI homogenising layer, "
                                   "300 µm, 25 °C\n")
    with h5py.File(result.path, "r+") as f:
        f.attrs["cell_electrolyte"] = ""
        f.attrs["protocol_name"] = "a $5 cell, 0.1 mA cm-2 steps"
    [series, _] = build_report(result.path)
    assert series.title.startswith("CCD staircase, a \\$5 cell, 0.1 mA cm⁻² steps\n")  # shown as written


def test_units_are_written_with_superscripts():
    from labctl.report import unit_text

    assert unit_text("current density (mA cm$^{-2}$)") == "current density (mA cm⁻²)"
    assert unit_text("0.1 mA cm-2 steps, 50 ohm cm2, 140 mAh g^-1") == "0.1 mA cm⁻² steps, 50 ohm cm², 140 mAh g⁻¹"
    assert unit_text("ln(σ / S cm$^{-1}$) vs 1000 / T (K$^{-1}$)") == "ln(σ / S cm⁻¹) vs 1000 / T (K⁻¹)"
    assert unit_text("a 500 um Au pad on 12.6um") == "a 500 µm Au pad on 12.6µm"
    for kept in ("R$_{CT}$ (Ω cm²)", "V vs Li/Li$^+$", "Li6.5La3Zr1.5Ta0.5O12", "sample K1", "drum"):
        assert unit_text(kept) == kept


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
    result, figures = memristor_pad
    out = tmp_path / "figures"
    for format in ("png", "pdf", "svg"):
        proc = subprocess.run([*LABCTL, "report", str(result.path), "-o", str(out), "--format", format],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        written = [line.removeprefix("wrote ") for line in proc.stdout.splitlines()]
        assert written == [str(out / f"{result.path.stem}_{name}.{format}") for name in ("iv", "resistance")]
        for path, figure in zip(written, figures.values()):
            assert_figure_file(Path(path), format, figure.title)
    for option, value, expected in (("--format", "tiff", "error: --format: unknown figure format 'tiff'; known: "
                                                          "png, svg, pdf"),
                                    ("--dpi", "20", "error: --dpi: the resolution must be 50 … 1200 dpi, got 20")):
        proc = subprocess.run([*LABCTL, "report", str(result.path), option, value], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [expected]
    bad = tmp_path / "bad.h5"
    bad.write_text("not a run file")
    proc = subprocess.run([*LABCTL, "report", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "bad.h5" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout

