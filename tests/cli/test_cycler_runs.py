"""Symmetric cycling on simulated NEWARE channels through the command line: 16 channels of one
BTS, a short on one of them, and a run whose PC side is killed while its channel cycles on."""

from __future__ import annotations

import json
import math
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from labctl.app.run import run_protocol
from tests.cli.test_cli import LABCTL, labctl

pytestmark = pytest.mark.timeout(60)

PROTOCOL = """
kind: symmetric_cycling
name: Li|LLZO|Li on a cycler
instrument: cyc1
current_density_mA_cm2: 0.5
half_cycle_s: 600
cycles: {cycles}
voltage_limit_V: 5.0
record_interval_s: {interval}
cell: {{area_cm2: 1.0, electrolyte: LLZO, electrolyte_thickness_um: 300, li_thickness_um: 100,
        stack_pressure_MPa: 0, temperature_C: 25}}
simulated_cell: {{preset: hl_llzo, ccd_mA_cm2: {ccd}}}
"""


#: The cell's ASR per cycle at 0.5 mA cm⁻² (the same on the 2400): bulk 30 + two interfaces of
#: 50 Ω cm² (Butler–Volmer counted once, × 0.96 at 0.5 mA cm⁻²), falling as the interfaces evolve
#: toward ~14 Ω cm² [004 L87]. (180.9 while the simulator counted charge transfer twice.)
ASR_OHM_CM2 = [124.9, 122.8, 120.8]


def protocol_file(tmp_path: Path, name: str = "cycling.yaml", *, cycles: int = 3, interval: float = 10,
                  ccd: float = 1.8) -> Path:
    path = tmp_path / name
    path.write_text(PROTOCOL.format(cycles=cycles, interval=interval, ccd=ccd))
    return path


def test_one_protocol_file_runs_on_sixteen_neware_channels(tmp_path) -> None:
    protocol = protocol_file(tmp_path)
    out = tmp_path / "runs"
    proc = labctl("run", str(protocol), "--simulate", "--cycler", "neware", "--channels", "16", "--speed", "max",
                  "-o", str(out), timeout=60)
    assert proc.returncode == 0, proc.stderr
    files = sorted(out.glob("*.h5"), key=lambda p: int(p.stem.rsplit("cyc", 1)[1]))
    assert [p.stem.rsplit("_", 1)[1] for p in files] == [f"cyc{k}" for k in range(1, 17)]
    addresses = set()
    for k, path in enumerate(files, start=1):
        with h5py.File(path) as f:
            assert f.attrs["status"] == "completed"
            assert list(f["channels"]) == [f"cyc{k}"]
            delegated = json.loads(f.attrs["delegated"])
            assert delegated["driver"] == "neware" and delegated["native_format"] == "neware-step-xml"
            addresses.add(delegated["address"].rsplit("/", 1)[0])
            assert delegated["address"].endswith(f"/1-{(k - 1) // 8 + 1}-{(k - 1) % 8 + 1}")
            assert '<config type="Step File"' in f.attrs["native_program"]
            seq = f[f"channels/cyc{k}/cycler_seq_id"][:]
            np.testing.assert_array_equal(seq, np.arange(1, 6 * 61 + 1))  # a point at each step's start, every 10 s
            assert f["results"].attrs["cycles_completed"] == 3
            assert f["results/per_cycle/cell_asr_ohm_cm2"][:] == pytest.approx(ASR_OHM_CM2, abs=0.5)
    assert len(addresses) == 1  # one simulated BTS serves every channel


def test_a_short_on_one_channel_ends_that_channel_alone(tmp_path) -> None:
    healthy = protocol_file(tmp_path, "healthy.yaml", ccd=5.0)
    fragile = protocol_file(tmp_path, "fragile.yaml", ccd=0.3)
    specs = [f"{fragile if k == 6 else healthy}@cyc{k}" for k in range(1, 17)]
    out = tmp_path / "runs"
    proc = labctl("run", *specs, "--simulate", "--cycler", "neware", "--speed", "max", "-o", str(out), timeout=60)
    assert proc.returncode == 0, proc.stderr  # a short is a planned ending, not a fault
    statuses = {}
    for path in out.glob("*.h5"):
        with h5py.File(path) as f:
            name = list(f["channels"])[0]
            statuses[name] = f.attrs["status"]
            if name == "cyc6":
                kinds = [k.decode() for k in f["events"]["kind"]]
                assert "cycler_stopped" in kinds and f["results"].attrs["cycles_completed"] == 0
            else:
                assert f["results"].attrs["cycles_completed"] == 3
    assert statuses.pop("cyc6") in ("short", "soft_short")
    assert set(statuses.values()) == {"completed"} and len(statuses) == 15
    assert "cyc6" in proc.stdout and "short" in proc.stdout


def test_a_killed_run_reattaches_to_its_channel_and_collects_every_point(tmp_path) -> None:
    """The BTS runs in its own process at ×1000; `labctl run` on a station file is SIGKILLed
    1 s in, the channel cycles on, `labctl resume` reattaches: the file equals a run that was
    never interrupted, point for point, and so does the analysis."""
    protocol = protocol_file(tmp_path, cycles=4, interval=1, ccd=1.8)
    bts = subprocess.Popen([*LABCTL, "sim", "neware", "--channels", "2", "--speed", "1000"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = bts.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), bts.stderr.read()
        station = tmp_path / "station.yaml"
        station.write_text("instruments:\n"
                           f"  cyc1: {{driver: neware, address: '{address}/1-1-1', step_file_dir: '{tmp_path / 'steps'}',\n"
                           "         poll_interval_s: 0.2, on_lost: {retry_for_s: 5, first_wait_s: 0.1, max_wait_s: 0.5}}\n")
        path = tmp_path / "run.h5"
        run = subprocess.Popen([*LABCTL, "run", str(protocol), "--station", str(station), "-o", str(path), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not path.exists():
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(1.0)
        run.kill()
        run.wait(timeout=10)
        with h5py.File(path, "r", swmr=True) as f:
            killed_at = int(f["channels/cyc1/cycler_seq_id"][-1]) if f["channels/cyc1/cycler_seq_id"].shape[0] else 0
            assert f.attrs["status"] == "running"
        time.sleep(1.0)  # the channel cycles on without the PC
        resumed = labctl("resume", str(path), "--quiet", timeout=60)
        assert resumed.returncode == 0, resumed.stderr
    finally:
        bts.terminate()
        bts.wait(timeout=10)
    reference = run_protocol(protocol, simulate=True, cycler="neware", speed=math.inf, output=tmp_path / "ref.h5")
    with h5py.File(path) as f, h5py.File(reference.path) as ref:
        assert f.attrs["status"] == "completed"
        got, want = f["channels/cyc1"], ref["channels/cyc1"]
        assert 0 < killed_at < want["cycler_seq_id"].shape[0]
        for column in ("cycler_seq_id", "test_time_s", "voltage_V", "current_A", "step_index", "cycle_index"):
            np.testing.assert_array_equal(got[column][:], want[column][:], err_msg=column)
        # The simulated channel integrates charge over however often it is asked: last-bit differences.
        np.testing.assert_allclose(got["charge_C"][:], want["charge_C"][:], rtol=0, atol=1e-12)
        kinds = [k.decode() for k in f["events"]["kind"]]
        assert kinds.count("resumed") == 1
        assert f["results"].attrs["cycles_completed"] == ref["results"].attrs["cycles_completed"] == 4
        for key in ref["results/per_cycle"]:
            np.testing.assert_allclose(f["results/per_cycle"][key][:], ref["results/per_cycle"][key][:], rtol=1e-12)
        assert sorted(f["steps"]["step_index"]) == list(range(8))


def test_an_unreachable_bts_is_one_line_naming_its_address(tmp_path) -> None:
    station = tmp_path / "station.yaml"
    station.write_text("instruments:\n  cyc1: {driver: neware, address: '127.0.0.1:9/1-1-1', step_file_dir: /tmp}\n")
    proc = labctl("run", str(protocol_file(tmp_path)), "--station", str(station), "-o", str(tmp_path / "x.h5"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:9" in lines[0], proc.stderr
    assert not (tmp_path / "x.h5").exists()


def test_a_malformed_cycler_address_names_the_line(tmp_path) -> None:
    station = tmp_path / "station.yaml"
    station.write_text("instruments:\n  cyc1:\n    driver: neware\n    address: 127.0.0.1:502\n")
    proc = labctl("run", str(protocol_file(tmp_path)), "--station", str(station))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "error: station.yaml:4: instruments.cyc1.address: '127.0.0.1:502' is not host:port/devid-subdevid-chlid "
        "(e.g. 127.0.0.1:502/1-1-3)"]


def test_the_same_protocol_file_runs_on_a_simulated_biologic_channel(tmp_path) -> None:
    """The file of the 16 NEWARE channels, compiled to a BioLogic technique list instead."""
    protocol = protocol_file(tmp_path)
    out = tmp_path / "biologic.h5"
    proc = labctl("run", str(protocol), "--simulate", "--cycler", "biologic", "--speed", "max", "-o", str(out),
                  "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "3 of 3 cycles" in proc.stdout
    with h5py.File(out) as f:
        assert f.attrs["status"] == "completed"
        delegated = json.loads(f.attrs["delegated"])
        assert (delegated["driver"], delegated["address"]) == ("biologic", "USB0/1")
        assert '"format": "labctl-biologic-techniques/1"' in f.attrs["native_program"]
        np.testing.assert_array_equal(f["channels/cyc1/cycler_seq_id"][:], np.arange(1, 6 * 61 + 1))
        assert f["results/per_cycle/cell_asr_ohm_cm2"][:] == pytest.approx(ASR_OHM_CM2, abs=0.5)
