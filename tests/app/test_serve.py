"""``labctl serve``: runs written by labctl (finished, killed, live) served by a real Tiled
server on loopback with an SQLite catalog, read back through the client and the CLI.

One server serves the module's run directory (Tiled's access settings are process-wide: one
server per process); the runs are real ``labctl run`` subprocesses on the simulator. Waits
are on conditions, each with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tiled.server", reason="the serve extra (tiled[server]) is not installed")

from labctl.app.serve import LabServer, RunsDirectory, ServeConfig  # noqa: E402
from labctl.store import RunFile, RunFileError  # noqa: E402
from labctl.store.remote import RemoteFollower, RemoteRun, fetch_run, find_runs, open_run  # noqa: E402
from tests.cli.test_cli import LABCTL, labctl  # noqa: E402
from tests.conftest import EXAMPLES, wait_for  # noqa: E402

DEADLINE_S = 120.0




def start_run(protocol: str, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([*LABCTL, "run", str(EXAMPLES / protocol), "--simulate", "--quiet", "-o", str(out), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def local_rows(path: Path) -> int:
    try:
        with RunFile(path, swmr=True) as rf:
            return len(rf.columns(rf.channels[0])["test_time_s"])
    except (RunFileError, OSError, KeyError):
        return 0


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Three finished runs: CCD on LLZO (by 'Ada Lovelace'), CCD on FSE, memristor on LLZO."""
    directory = tmp_path_factory.mktemp("runs")
    procs = [start_run("ccd_llzo.yaml", directory / "ccd_llzo.h5", "--speed", "max", "--operator", "Ada Lovelace"),
             start_run("ccd_fse.yaml", directory / "ccd_fse.h5", "--speed", "max"),
             start_run("memristor_pad.yaml", directory / "sub" / "memristor.h5", "--speed", "max")]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    (directory / "notes.h5").write_bytes(b"not an HDF5 file")  # served directories hold other files too
    return directory


@pytest.fixture(scope="module")
def server(runs_dir) -> LabServer:
    config = ServeConfig((RunsDirectory(runs_dir),), port=0, scan_interval_s=0.3, running_refresh_s=0.5)
    with LabServer(config) as srv:
        assert srv.wait_synced(DEADLINE_S)
        yield srv


def test_finished_runs_are_registered_with_searchable_metadata(server, runs_dir):
    runs = {r.key: r for r in find_runs(server.uri)}
    assert {"ccd_llzo", "ccd_fse", "sub.memristor"} <= set(runs)
    assert "notes" not in runs  # not a run file: skipped, the others served
    ccd = runs["ccd_llzo"]
    assert (ccd.kind, ccd.status, ccd.operator) == ("ccd_staircase", "short", "Ada Lovelace")
    assert ccd.headline == {"ccd_mA_cm2": pytest.approx(1.8)}
    assert ccd.uri == f"{server.uri}/runs/ccd_llzo"
    record = ccd.record
    assert record["attrs"]["cell_electrolyte_thickness_um"] == 300.0
    assert record["attrs"]["cell_area_cm2"] == 1.0 and record["attrs"]["cell_temperature_C"] == 25.0
    assert record["attrs"]["instrument_idn"].startswith("KEITHLEY INSTRUMENTS INC.,MODEL 2400")
    assert record["attrs"]["speed"] is None  # speed max is inf: JSON has no such number
    assert record["station"]["instruments"]["smu"]["driver"] == "keithley2400"
    assert record["catalog"]["path"] == str(runs_dir / "ccd_llzo.h5")
    assert record["channels"]["smu"]["status"] == "short"

    def keys(**filters) -> set[str]:  # among the finished runs (other tests add runs to the directory)
        return {r.key for r in find_runs(server.uri, **filters)} & {"ccd_llzo", "ccd_fse", "sub.memristor"}

    assert keys(kind="ccd_staircase") == {"ccd_llzo", "ccd_fse"}
    assert keys(electrolyte="llzo") == {"ccd_llzo", "sub.memristor"}  # any case, part of the text
    assert keys(kind="ccd_staircase", electrolyte="LLZO") == {"ccd_llzo"}
    assert keys(operator="lovelace") == {"ccd_llzo"}
    assert keys(status="short", kind="memristor_cycling") == set()
    started = runs["ccd_fse"].record["attrs"]["start_unix_time_s"]
    assert keys(since=started - 3600) == {"ccd_llzo", "ccd_fse", "sub.memristor"}
    assert keys(since="2000-01-01", until="2000-01-02") == set()
    assert keys(since=time.time() + 86400) == set()
    newest_first = [r.record["attrs"]["start_unix_time_s"] for r in find_runs(server.uri)]
    assert newest_first == sorted(newest_first, reverse=True)


def test_a_remote_run_reads_exactly_what_the_file_holds(server, runs_dir):
    # SWMR like the server: HDF5 refuses to open one file in one process with both modes.
    with RunFile(runs_dir / "ccd_llzo.h5", swmr=True) as local, RemoteRun(f"{server.uri}/runs/ccd_llzo") as remote:
        assert remote.channels == local.channels == ["smu"]
        assert remote.attrs["status"] == local.attrs["status"]
        assert remote.units("smu") == local.units("smu")
        a, b = local.columns("smu"), remote.columns("smu")
        assert set(a) == set(b)
        for name in a:
            np.testing.assert_array_equal(b[name], a[name])
            assert b[name].dtype == a[name].dtype
        assert remote.events() == local.events()
        assert remote.steps() == local.steps()
        assert json.dumps(remote.results(), default=np.ndarray.tolist, sort_keys=True) == \
            json.dumps(local.results(), default=np.ndarray.tolist, sort_keys=True)
        n = len(a["test_time_s"])
        tail = remote.columns("smu", start=n - 5, names=["voltage_V"])
        assert list(tail) == ["voltage_V"]
        np.testing.assert_array_equal(tail["voltage_V"], a["voltage_V"][-5:])
        assert remote.columns("smu", start=n)["voltage_V"].shape == (0,)
    assert isinstance(open_run(str(runs_dir / "ccd_llzo.h5")), RunFile)
    with pytest.raises(RunFileError, match="no such run"):
        RemoteRun(f"{server.uri}/runs/nothing_here")


def test_a_python_user_gets_numpy_arrays_and_units_from_tiled(server):
    from tiled.client import from_uri

    run = from_uri(server.uri)["runs"]["ccd_llzo"]
    voltage = run["channels"]["smu"]["voltage_V"]
    assert voltage.metadata["units"] == "V"
    values = voltage.read()
    assert isinstance(values, np.ndarray) and values.dtype == np.float64 and len(values) > 30_000
    assert run.metadata["results"]["ccd_mA_cm2"] == pytest.approx(1.8)
    assert run["results"].metadata["ccd_mA_cm2"] == pytest.approx(1.8)


def test_fetch_run_downloads_the_bench_file_byte_for_byte(server, runs_dir, tmp_path):
    path = fetch_run(f"{server.uri}/runs/sub.memristor", tmp_path)
    assert path == tmp_path / "sub.memristor.h5"
    assert path.read_bytes() == (runs_dir / "sub" / "memristor.h5").read_bytes()


def test_cli_inspect_export_report_and_runs_take_the_servers_urls(server, runs_dir, tmp_path):
    url = f"{server.uri}/runs/ccd_llzo"
    remote, local = labctl("inspect", url), labctl("inspect", str(runs_dir / "ccd_llzo.h5"))
    assert remote.returncode == 0, remote.stderr
    body = remote.stdout[remote.stdout.index("status:"):]
    assert body == local.stdout[local.stdout.index("status:"):]  # all but the title (path or URL)
    assert "ccd_mA_cm2 = 1.8" in remote.stdout

    out = tmp_path / "out"
    out.mkdir()
    export = subprocess.run([*LABCTL, "export", url], capture_output=True, text=True, cwd=out, timeout=120)
    assert export.returncode == 0, export.stderr
    assert labctl("export", str(runs_dir / "ccd_llzo.h5"), "-o", str(tmp_path / "local.csv")).returncode == 0
    assert (out / "ccd_llzo.bdf.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()

    report = subprocess.run([*LABCTL, "report", url], capture_output=True, text=True, cwd=out, timeout=300)
    assert report.returncode == 0, report.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["ccd_llzo_overpotential.png", "ccd_llzo_timeseries.png"]

    table = subprocess.run([*LABCTL, "runs", "--server", server.uri, "--kind", "ccd_staircase", "--electrolyte", "LLZO",
                            "--since", "2000-01-01"], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "250"})
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if "ccd_llzo" in line)
    assert "short" in row and "ccd_mA_cm2 = 1.8" in row
    assert "ccd_fse" not in table.stdout and "1 run(s)" in table.stdout

    missing = labctl("inspect", f"{server.uri}/runs/nothing_here")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: {server.uri}/runs/nothing_here: the server has no such run or container"


def test_a_killed_run_is_served_as_far_as_it_was_written(server, runs_dir):
    path = runs_dir / "killed.h5"
    proc = start_run("cycling_llzo_0p8.yaml", path, "--speed", "1800")  # 1000 h: 33 min of wall time
    try:
        wait_for(lambda: local_rows(path) > 100, "the run to write 100 readings")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    run = wait_for(lambda: next((r for r in find_runs(server.uri) if r.key == "killed"), None), "the killed run's record")
    assert run.status == "running"  # what the file says: its writer died without ending it
    with RunFile(path, swmr=True) as local, RemoteRun(run.uri) as remote:
        a, b = local.columns("smu"), remote.columns("smu")
        assert len(a["test_time_s"]) > 100
        for name in a:
            np.testing.assert_array_equal(b[name], a[name])
        assert remote.events() == local.events()


def test_a_live_run_is_followed_through_the_server_to_its_end(server, runs_dir):
    path = runs_dir / "live.h5"
    proc = start_run("cycling_llzo_0p8.yaml", path, "--speed", "1800")  # 1000 h: it runs until stopped here
    try:
        run = wait_for(lambda: next((r for r in find_runs(server.uri, status="running") if r.key == "live"), None),
                       "the live run in the catalog")
        follower = RemoteFollower(run.uri, columns=["voltage_V"])
        first = follower.poll()
        assert first.attrs["status"] == "running" and not first.finished
        got = first.n_rows

        def more() -> bool:
            nonlocal got
            update = follower.poll()
            assert not update.finished
            got += update.n_rows
            return update.n_rows > 0 and got > first.n_rows

        wait_for(more, "new rows of the live run through the server")
        proc.send_signal(signal.SIGINT)  # the operator stops it: it ends cleanly, "interrupted"
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 130, stderr

        def finished() -> object:
            nonlocal got
            update = follower.poll()
            got += update.n_rows
            return update if update.finished else None

        last = wait_for(finished, "the follower to see the run's end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert last.attrs["status"] == "interrupted"
    assert last.results["run_status"] == "interrupted"
    assert got == local_rows(path)  # every reading, none twice
    assert follower.poll().n_rows == 0
    wait_for(lambda: any(r.key == "live" and r.status == "interrupted" for r in find_runs(server.uri)),
             "the catalog to show the run's end")


def test_serve_cli_lists_the_runs_and_stops_on_sigterm(runs_dir, tmp_path):
    """`labctl serve DIR` then `labctl runs --server URL --kind ccd_staircase` (the issue's 'done when')."""
    proc = subprocess.Popen([*LABCTL, "serve", str(runs_dir), "--port", "0", "--catalog", str(tmp_path / "cat.db")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "250"})
    lines: list[str] = []
    try:
        def catalog_line() -> bool:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            lines.append(line)
            return line.startswith("catalog:")

        wait_for(catalog_line, "labctl serve to register the runs")
        url = re.search(r"http://127\.0\.0\.1:\d+", "".join(lines)).group(0)
        table = subprocess.run([*LABCTL, "runs", "--server", url, "--kind", "ccd_staircase"], capture_output=True,
                               text=True, timeout=120, env={**os.environ, "COLUMNS": "250"})
        assert table.returncode == 0, table.stderr
        assert "ccd_llzo" in table.stdout and "ccd_fse" in table.stdout and "ccd_mA_cm2" in table.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert (tmp_path / "cat.db").is_file()  # a given catalog is kept
