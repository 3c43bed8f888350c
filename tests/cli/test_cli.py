"""The ``labctl`` console script, run as a user runs it (a subprocess)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import pytest

from tests.conftest import EXAMPLES

LABCTL = [shutil.which("labctl") or sys.executable, *([] if shutil.which("labctl") else ["-m", "labctl.cli"])]


def labctl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*LABCTL, *args], capture_output=True, text=True, timeout=timeout)


def test_run_prints_the_ccd_and_leaves_a_valid_run_file(tmp_path):
    out = tmp_path / "run.h5"
    proc = labctl("run", str(EXAMPLES / "ccd_llzo.yaml"), "--simulate", "--speed", "max", "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "CCD = 1.8 mA cm⁻²" in proc.stdout
    assert "short circuit at 1.9 mA cm⁻²" in proc.stdout
    assert f"run file: {out}" in proc.stdout.replace("\n", "")
    with h5py.File(out) as f:
        assert f.attrs["status"] == "short"
        assert f["results"].attrs["ccd_mA_cm2"] == pytest.approx(1.8)
        assert f["channels/smu/voltage_V"].shape[0] > 30_000
    inspect = labctl("inspect", str(out))
    assert inspect.returncode == 0, inspect.stderr
    assert "status: short" in inspect.stdout and "ccd_mA_cm2 = 1.8" in inspect.stdout


def test_cell_options_change_the_simulated_cell(tmp_path):
    proc = labctl("run", str(EXAMPLES / "ccd_llzo.yaml"), "--simulate", "--speed", "max", "--quiet",
                  "--cell", "au_llzo", "-o", str(tmp_path / "au.h5"))
    assert proc.returncode == 0, proc.stderr
    assert "CCD = 0.2 mA cm⁻²" in proc.stdout  # Li|Au-LLZO|Li, [004 L87]


def test_bad_protocol_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "ccd_llzo.yaml").read_text().replace("step_mA_cm2: 0.1 ", "step_mA_cm2: -2 "))
    for args in (("validate", str(bad)), ("run", str(bad), "--simulate")):
        proc = labctl(*args)
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == ["error: bad.yaml:12: step_mA_cm2: must be > 0"]
        assert "Traceback" not in proc.stderr + proc.stdout


def test_unreachable_instrument_is_one_line_naming_the_address(tmp_path):
    station = tmp_path / "station.yaml"
    # A loopback port nobody listens on: refused at once.
    station.write_text("instruments:\n  smu:\n    driver: keithley2400\n    address: TCPIP::127.0.0.1::9::SOCKET\n"
                       "    timeout_ms: 1000\n")
    proc = labctl("run", str(EXAMPLES / "ccd_llzo.yaml"), "--station", str(station), "-o", str(tmp_path / "x.h5"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "TCPIP::127.0.0.1::9::SOCKET" in lines[0], proc.stderr
    assert not (tmp_path / "x.h5").exists()


def test_bad_station_file_names_line_and_field(tmp_path):
    station = tmp_path / "station.yaml"
    station.write_text("instruments:\n  smu:\n    driver: keithley2401\n    address: GPIB0::24::INSTR\n")
    proc = labctl("run", str(EXAMPLES / "ccd_llzo.yaml"), "--station", str(station))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: station.yaml:3: instruments.smu.driver: must be 'keithley2400', 'nanonis', 'neware', 'biologic' or 'binder'"]


def test_existing_output_is_refused(tmp_path):
    out = tmp_path / "keep.h5"
    out.write_bytes(b"earlier run")
    proc = labctl("run", str(EXAMPLES / "ccd_llzo.yaml"), "--simulate", "--speed", "max", "-o", str(out))
    assert proc.returncode == 1 and "already exists" in proc.stderr
    assert out.read_bytes() == b"earlier run"


def test_sim_prints_a_visa_resource_that_pymeasure_can_use():
    proc = subprocess.Popen([*LABCTL, "sim", "keithley2400", "--cell-ccd-mA-cm2", "0.5"],
                            stdout=subprocess.PIPE, text=True)
    try:
        resource = proc.stdout.readline().strip()
        assert resource.startswith("TCPIP::127.0.0.1::") and resource.endswith("::SOCKET")
        from pymeasure.instruments.keithley import Keithley2400

        smu = Keithley2400(resource, visa_library="@py", read_termination="\n", write_termination="\n")
        assert "MODEL 2400" in smu.id
        smu.adapter.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_gui_grid_of_a_missing_directory_is_one_line(tmp_path):
    proc = labctl("gui", "--grid", str(tmp_path / "nowhere"))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: --grid: no such file or directory: {tmp_path / 'nowhere'}"]
