"""``--cell-param NAME=VALUE``: any parameter of the simulated cell from the command line
(``labctl run``, ``labctl sim keithley2400``, ``labctl sim neware``), parsed in one place
(:mod:`labctl.app.simulated`) by the parameter's type."""

from __future__ import annotations

import json
import subprocess

import h5py
import pytest

from labctl.app import simulated
from labctl.yamlfile import FileError
from protocols import load_protocol
from tests.cli.test_cli import LABCTL, labctl
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.timeout(120)

CCD = str(EXAMPLES / "ccd_llzo.yaml")


def _recorded(path) -> tuple[dict, list[float]]:
    """The run file's attributes and its per-step overpotentials (mV)."""
    with h5py.File(path) as f:
        return dict(f.attrs), f["results/overpotentials/overpotential_end_mV"][:].tolist()


def test_cell_params_reach_the_simulated_cell_and_change_what_it_does(tmp_path):
    runs = {}
    for name, extra in (("25C", []), ("70C", ["--cell-param", "temperature_C=70", "--cell-param", "noise_V=0.001"])):
        out = tmp_path / f"{name}.h5"
        proc = labctl("run", CCD, "--simulate", "--speed", "max", "--quiet", "--seed", "3",
                      "--cell-param", "ccd_mA_cm2=0.3", *extra, "-o", str(out))
        assert proc.returncode == 0, proc.stderr
        runs[name] = _recorded(out)
    attrs, _ = runs["70C"]
    cell = json.loads(attrs["simulated_cell"])
    assert (cell["temperature_C"], cell["noise_V"], cell["ccd_mA_cm2"], cell["seed"]) == (70.0, 0.001, 0.3, 3)
    assert attrs["simulated_cell_preset"] == "hl_llzo" and attrs["simulated_cell_label"] == "Li | H.L.-LLZO | Li"
    # Arrhenius: the warm cell's first step (0.1 mA cm⁻²) needs far less voltage than at 25 °C.
    cold, warm = (runs[k][1][0] for k in ("25C", "70C"))
    assert warm < 0.6 * cold, (cold, warm)


@pytest.mark.parametrize("args, expected", [
    (["--cell-param", "noise_V"], "error: --cell-param 'noise_V': give NAME=VALUE, e.g. --cell-param noise_V=0.001"),
    (["--cell-param", "noise_V=loud"], "error: --cell-param noise_V=loud: noise_V takes a number, got 'loud'"),
    (["--cell-param", "noise_V=inf"], "error: --cell-param noise_V=inf: noise_V must be a finite number, got 'inf'"),
    (["--cell-param", "noise_V=-1"], "error: --cell-param noise_V=-1: noise_V must be >= 0, got -1.0"),
    (["--cell-param", "seed=1.5"], "error: --cell-param seed=1.5: seed takes a whole number, got '1.5'"),
    (["--cell-param", "electrodes=gold"], "error: --cell-param electrodes=gold: electrodes must be one of li, ss, "
                                          "li_ss, got 'gold'"),
    (["--cell-param", "ccd_mA_cm2=1", "--cell-ccd-mA-cm2", "2"],
     "error: --cell-ccd-mA-cm2 and --cell-param ccd_mA_cm2=… set the same parameter; give one"),
    (["--cell-ccd-mA-cm2", "-1"], "error: --cell-ccd-mA-cm2: ccd_mA_cm2 must be > 0, got -1.0"),
])
def test_bad_cell_params_are_one_line_naming_the_option_and_the_parameter(tmp_path, args, expected):
    for command in (["run", CCD, "--simulate", "--speed", "max", "-o", str(tmp_path / "x.h5")],
                    ["sim", "keithley2400"], ["sim", "neware"]):
        proc = labctl(*command, *args, timeout=30)
        assert proc.returncode == 1, (command, proc.stdout)
        assert proc.stderr.strip().splitlines() == [expected], command
    assert not (tmp_path / "x.h5").exists()


def test_an_unknown_name_lists_the_known_ones():
    proc = labctl("run", CCD, "--simulate", "--cell-param", "noise_mV=1")
    assert proc.returncode == 1
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: --cell-param noise_mV=1: unknown cell parameter 'noise_mV'; known: area_cm2, ")
    assert all(name in line for name in ("noise_V", "temperature_C", "lifetime_h", "interfacial_asr_ohm_cm2"))


def test_cell_params_apply_to_simulated_cells_only(tmp_path):
    proc = labctl("run", CCD, "--station", str(tmp_path / "station.yaml"), "--cell-param", "noise_V=0.001")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: --cell-param sets a parameter of the simulated cell: give it with --simulate"]
    proc = labctl("run", str(EXAMPLES / "cafm_gb_vs_gi.yaml"), "--simulate", "--speed", "max",
                  "--cell-param", "noise_V=0.001", "-o", str(tmp_path / "cafm.h5"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: cafm_gb_vs_gi.yaml: a cafm_trigger_sweep run has no simulated cell but a simulated tip junction "
        "(simulated_sample in the protocol file); the cell options do not apply (noise_V)"]
    assert not (tmp_path / "cafm.h5").exists()


def test_sim_keithley2400_serves_the_cell_the_params_describe():
    proc = subprocess.Popen([*LABCTL, "sim", "keithley2400", "--cell", "fse", "--cell-param", "temperature_C=70"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("TCPIP::127.0.0.1::")
        assert "cell: fse, CCD" in (line := proc.stdout.readline()) and "70 °C" in line
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_values_convert_by_the_parameters_type_from_options_and_files(tmp_path):
    params = simulated.parse_cell_params(["noise_V=1e-3", "seed=7", "electrodes=ss", "lifetime_h=none",
                                          "lifetime_h=120", "temperature_C= 70 "])
    assert params == {"noise_V": 0.001, "seed": 7, "electrodes": "ss", "lifetime_h": 120.0, "temperature_C": 70.0}
    assert [type(params[k]) for k in ("noise_V", "seed", "electrodes")] == [float, int, str]
    assert simulated.parse_cell_params(["lifetime_h=None"]) == {"lifetime_h": None}
    # A protocol file's section goes through the same conversion: YAML reads 1e-3 as text.
    text = (EXAMPLES / "ccd_llzo.yaml").read_text().replace("  preset: hl_llzo", "  preset: hl_llzo\n  noise_V: 1e-3")
    path = tmp_path / "noisy.yaml"
    path.write_text(text)
    protocol = load_protocol(path)
    cell = simulated.cell_parameters(protocol, path.name, {**params, "electrodes": "li", "preset": None})
    assert (cell.noise_V, cell.seed, cell.temperature_C, cell.lifetime_h) == (0.001, 7, 70.0, 120.0)
    assert simulated.cell_parameters(protocol, path.name).noise_V == 0.001
    path.write_text(text.replace("noise_V: 1e-3", "noise_V: loud"))
    with pytest.raises(FileError) as caught:
        simulated.cell_parameters(load_protocol(path), path.name)
    assert caught.value.lines == ["noisy.yaml: simulated_cell.noise_V: noise_V takes a number, got 'loud'"]
    cell = simulated.preset_cell("bare_llzo", seed=None, noise_V="0")
    assert (cell.noise_V, cell.ccd_mA_cm2) == (0.0, 0.08)
