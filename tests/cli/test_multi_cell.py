"""Several cells at once: each ends on its own; one cell's short or dead instrument touches no other."""

from __future__ import annotations

import h5py
import pytest

from drivers.sim.physics.cell import CellParameters
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from labctl.app.cells import CellSpec, run_cells
from labctl.yamlfile import FileError

PROTOCOL = """
kind: symmetric_cycling
name: multi-cell
current_density_mA_cm2: 0.5
half_cycle_s: {half_cycle_s}
cycles: 3
voltage_limit_V: 5.0
record_interval_s: {interval}
cell: {{area_cm2: 1.0, electrolyte: LLZO, electrolyte_thickness_um: 300, li_thickness_um: 100,
        stack_pressure_MPa: 0, temperature_C: 25}}
simulated_cell: {{preset: hl_llzo, ccd_mA_cm2: {ccd}}}
"""


def test_simulated_cells_run_side_by_side_and_a_short_ends_only_its_cell(tmp_path):
    healthy = tmp_path / "healthy.yaml"
    healthy.write_text(PROTOCOL.format(half_cycle_s=600, interval=10, ccd=5.0))
    fragile = tmp_path / "fragile.yaml"
    fragile.write_text(PROTOCOL.format(half_cycle_s=600, interval=10, ccd=0.3))
    specs = [CellSpec.parse(f"{healthy}@cell1"), CellSpec.parse(f"{fragile}@cell2"), CellSpec.parse(f"{healthy}@cell3")]
    cells = run_cells(specs, simulate=True, speed=float("inf"), output_dir=tmp_path / "runs")
    assert [c.instrument for c in cells] == ["cell1", "cell2", "cell3"]
    assert [c.result.outcome.status for c in cells] == ["completed", "short", "completed"]
    paths = {c.result.path for c in cells}
    assert len(paths) == 3
    for c in cells:
        with h5py.File(c.result.path) as f:
            assert list(f["channels"]) == [c.instrument]  # each cell its own file and group
            assert f.attrs["cell_area_cm2"] == 1.0
            assert f.attrs["status"] == c.result.outcome.status
    assert cells[0].result.results["cycles_completed"] == 3


def test_a_dead_instrument_fails_its_cell_alone_on_a_real_station(tmp_path):
    # Real time here: b's filament needs only 1e-5 mAh cm⁻² above its CCD to bridge (0.07 s).
    sims = [Keithley2400Simulator(CellParameters(ccd_mA_cm2=ccd, filament_charge_to_short_mAh_cm2=1e-5))
            for ccd in (5.0, 0.3)]
    servers = [TcpServer(sim) for sim in sims]
    try:
        station = tmp_path / "station.yaml"
        station.write_text(
            "instruments:\n"
            f"  a: {{driver: keithley2400, address: '{servers[0].resource}'}}\n"
            f"  b: {{driver: keithley2400, address: '{servers[1].resource}'}}\n"
            "  c: {driver: keithley2400, address: 'TCPIP::127.0.0.1::9::SOCKET', timeout_ms: 500}\n")
        protocol = tmp_path / "fast.yaml"
        protocol.write_text(PROTOCOL.format(half_cycle_s=0.5, interval=0.1, ccd=5.0))
        specs = [CellSpec.parse(f"{protocol}@{name}") for name in "abc"]
        cells = run_cells(specs, station_path=station, output_dir=tmp_path / "runs")
    finally:
        for server in servers:
            server.close()
    a, b, c = cells
    assert a.result.outcome.status == "completed" and a.result.results["cycles_completed"] == 3
    assert b.result.outcome.status == "short"  # its cell's CCD 0.3 < 0.5 mA cm⁻²
    assert c.result is None and "TCPIP::127.0.0.1::9::SOCKET" in c.error
    assert all(sim.model.output_enabled is False for sim in sims)


def test_two_cells_on_one_instrument_are_refused_before_anything_starts(tmp_path):
    protocol = tmp_path / "p.yaml"
    protocol.write_text(PROTOCOL.format(half_cycle_s=600, interval=10, ccd=5.0))
    with pytest.raises(FileError, match="instrument 'smu' is named by more than one cell"):
        run_cells([CellSpec(protocol), CellSpec(protocol)], simulate=True, speed=float("inf"), output_dir=tmp_path)
    assert not any(tmp_path.glob("*.h5"))


def test_with_control_each_cell_is_stopped_alone_through_its_own_socket(tmp_path):
    import subprocess
    import sys
    import time

    from labctl.app.control import ControlClient, default_socket_path
    from tests.conftest import REPO

    protocol = tmp_path / "slow.yaml"
    protocol.write_text(PROTOCOL.format(half_cycle_s=3600, interval=60, ccd=5.0))  # 6 h at ×3600: 6 s
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", f"{protocol}@cell1", f"{protocol}@cell2",
                             "--simulate", "--speed", "3600", "-o", str(runs), "--control"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(list(runs.glob("*.h5.ctl"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else "no sockets"
            time.sleep(0.05)
        [first] = [p for p in runs.glob("*.h5.ctl") if "cell1" in p.name]
        ControlClient(first).stop()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    statuses = {}
    for path in runs.glob("*.h5"):
        with h5py.File(path, "r") as f:
            statuses[list(f["channels"])[0]] = f.attrs["status"]
        assert not default_socket_path(path).exists()  # each socket goes with its run
    assert statuses == {"cell1": "stopped", "cell2": "completed"}
