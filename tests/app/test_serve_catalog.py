"""``labctl serve``: the catalog is a pure function of the run directories (rebuilt = kept up to
date), keys and collisions, access rules (API key, no open server on a network address), and a
PostgreSQL catalog where PostgreSQL can be started here.

Each test runs its own server (one per process at a time: Tiled's access settings are
process-wide). Run files are small synthetic ones written by labctl's own writer.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

pytest.importorskip("tiled.server", reason="the serve extra (tiled[server]) is not installed")

from benchmarks.bench_tiled import write_synthetic_run  # noqa: E402
from labctl.app.serve import LabServer, RunsDirectory, ServeConfig, ServeError, catalog_uri, is_loopback  # noqa: E402
from labctl.store import RunFileError, write_results  # noqa: E402
from labctl.store.remote import find_runs  # noqa: E402
from tests.cli.test_cli import labctl  # noqa: E402

DEADLINE_S = 120.0
KEY = "0123456789abcdef0123456789abcdef"


def catalog_of(server: LabServer) -> dict[str, dict]:
    """Every run's key → its metadata, as a client sees the catalog."""
    from tiled.client import from_uri

    runs = from_uri(server.uri, api_key=server.config.api_key)["runs"]
    return {key: json.loads(json.dumps(dict(node.metadata))) for key, node in runs.items()}


def serve(directories, **options) -> LabServer:
    server = LabServer(ServeConfig(tuple(directories), port=0, scan_interval_s=3600, **options))
    server.start()
    assert server.wait_synced(DEADLINE_S)
    return server


@pytest.fixture
def bench_dirs(tmp_path) -> tuple[Path, Path]:
    """Two benches' run directories: 6 runs, one in a sub-directory, one name in both."""
    one, two = tmp_path / "bench1", tmp_path / "bench2"
    for i in range(4):
        write_synthetic_run(one / f"run{i}.h5", i)
    write_synthetic_run(one / "2026" / "run4.h5", 4)
    write_synthetic_run(two / "run0.h5", 5)  # the same name as bench1's run0
    (one / ".run9.h5.staging").write_bytes(b"a run file being built")  # hidden: never served
    return one, two


def test_a_rebuilt_catalog_is_the_catalog_kept_up_to_date(bench_dirs, tmp_path):
    one, two = bench_dirs
    dirs = (RunsDirectory(one, "b1"), RunsDirectory(two, "b2"))
    kept = tmp_path / "kept.db"
    server = serve(dirs, catalog=catalog_uri(str(kept)))
    try:
        first = catalog_of(server)
        assert sorted(first) == ["b1.2026.run4", "b1.run0", "b1.run1", "b1.run2", "b1.run3", "b2.run0"]
        assert first["b2.run0"]["catalog"]["bench"] == "b2"
        # The directories change: a run is deleted, one appears, one gets (new) results.
        (one / "run1.h5").unlink()
        write_synthetic_run(two / "late.h5", 7)
        write_results(one / "run2.h5", {"ccd_mA_cm2": 2.5})
        report = server.sync()
        assert (report.added, report.updated, report.removed) == (["b2.late"], ["b1.run2"], ["b1.run1"])
        assert server.sync().changed is False  # nothing changed since
        kept_up_to_date = catalog_of(server)
        assert kept_up_to_date["b1.run2"]["results"]["ccd_mA_cm2"] == 2.5
    finally:
        server.stop()

    fresh = serve(dirs)  # a new (temporary) catalog built from the directories alone
    try:
        assert catalog_of(fresh) == kept_up_to_date
    finally:
        fresh.stop()

    reports = []
    restarted = LabServer(ServeConfig(dirs, catalog=catalog_uri(str(kept)), port=0, scan_interval_s=3600),
                          on_sync=reports.append)
    restarted.start()
    try:
        assert restarted.wait_synced(DEADLINE_S)
        assert not reports[0].changed  # the kept catalog was already right: nothing re-registered
        assert catalog_of(restarted) == kept_up_to_date
    finally:
        restarted.stop()


def test_keys_collisions_and_files_that_are_no_runs(bench_dirs):
    one, two = bench_dirs
    (two / "notes.h5").write_text("not HDF5")
    reports = []
    server = LabServer(ServeConfig((RunsDirectory(one), RunsDirectory(two)), port=0, scan_interval_s=3600),
                       on_sync=reports.append)
    server.start()
    try:
        assert server.wait_synced(DEADLINE_S)
        keys = {r.key: r for r in find_runs(server.uri)}
        assert sorted(keys) == ["2026.run4", "run0", "run1", "run2", "run3"]
        assert keys["run0"].record["catalog"]["path"] == str(one / "run0.h5")  # the first directory wins
        skipped = dict(reports[0].skipped)
        assert "is already" in skipped[str(two / "run0.h5")]
        assert "not a readable HDF5 file" in skipped[str(two / "notes.h5")]
        assert server.sync().skipped == [(str(two / "run0.h5"), skipped[str(two / "run0.h5")])]  # not re-read
    finally:
        server.stop()
    assert RunsDirectory.parse(f"bench03={one}") == RunsDirectory(one, "bench03")
    assert RunsDirectory.parse(str(one)) == RunsDirectory(one, "")
    assert RunsDirectory(one, "b").key(one / "a b" / "x#1.h5") == "b.a_b.x_1"
    with pytest.raises(ValueError, match="no such directory"):
        RunsDirectory.parse(str(one / "missing"))


def test_no_open_server_on_a_network_address():
    directory = (RunsDirectory(Path.cwd()),)
    for host in ("0.0.0.0", "::", "10.1.2.3", "192.0.2.7"):
        assert not is_loopback(host)
        with pytest.raises(ServeError, match="reachable from the network: give --api-key"):
            ServeConfig(directory, host=host).check()
        with pytest.raises(ServeError, match="at least 16 characters"):
            ServeConfig(directory, host=host, api_key="short1").check()
        ServeConfig(directory, host=host, api_key=KEY).check()
        assert not ServeConfig(directory, host=host, api_key=KEY).public
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.53"):
        assert is_loopback(host)
        ServeConfig(directory, host=host).check()
    assert ServeConfig(directory).public and not ServeConfig(directory, api_key=KEY).public
    with pytest.raises(ServeError, match="letters and digits"):
        ServeConfig(directory, api_key="with space 123456789").check()
    proc = labctl("serve", str(Path.cwd()), "--host", "0.0.0.0")
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: --host 0.0.0.0 is reachable from the network: give --api-key KEY")


def test_an_api_key_on_loopback_is_required_from_everyone(bench_dirs):
    one, _ = bench_dirs
    server = serve([RunsDirectory(one)], api_key=KEY)
    try:
        with pytest.raises(ServeError, match="already runs in this process"):
            LabServer(ServeConfig((RunsDirectory(one),), port=0)).start()
        assert httpx.get(f"{server.uri}/api/v1/metadata/runs", trust_env=False).status_code == 401
        with pytest.raises(RunFileError, match="refused access.* API key"):
            find_runs(server.uri, api_key=None)
        assert len(find_runs(server.uri, api_key=KEY)) == 5
        response = httpx.get(f"{server.uri}/api/v1/metadata/runs", headers={"Authorization": f"Apikey {KEY}"},
                             trust_env=False)
        assert response.status_code == 200
    finally:
        server.stop()


NETNS_CHECK = r"""
import json, subprocess, sys, httpx
from pathlib import Path
from labctl.app.serve import LabServer, RunsDirectory, ServeConfig
directory, key, host = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
result = {}
cli = subprocess.run([sys.executable, "-m", "labctl.cli", "serve", str(directory), "--host", host],
                     capture_output=True, text=True, timeout=120)
result["cli_without_key"] = [cli.returncode, cli.stderr.strip()]
with LabServer(ServeConfig((RunsDirectory(directory),), host=host, port=0, api_key=key)) as server:
    assert server.wait_synced(120)
    result["uri"] = server.uri
    result["anonymous"] = httpx.get(f"{server.uri}/api/v1/metadata/runs", trust_env=False).status_code
    result["with_key"] = httpx.get(f"{server.uri}/api/v1/search/runs", trust_env=False,
                                   headers={"Authorization": f"Apikey {key}"}).json()["meta"]["count"]
print(json.dumps(result))
"""


def test_a_server_on_a_network_address_refuses_unauthenticated_requests(bench_dirs, tmp_path):
    """Bound to 10.251.0.1, an address that exists only in a network namespace made for the
    test (its traffic never leaves it): no answer without the API key."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) to make a network namespace; the refusal to start an open "
                    "server is tested at configuration time (test_no_open_server_on_a_network_address)")
    one, _ = bench_dirs
    script = tmp_path / "check.py"
    script.write_text(NETNS_CHECK)
    setup = "ip link set lo up && ip addr add 10.251.0.1/32 dev lo"
    probe = subprocess.run([unshare, "--net", "sh", "-c", setup], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here ({probe.stderr.strip()}); the refusal is tested at "
                    "configuration time (test_no_open_server_on_a_network_address)")
    proc = subprocess.run([unshare, "--net", "sh", "-c", f'{setup} && exec "$0" "$@"', sys.executable, str(script),
                           str(one), KEY, "10.251.0.1"], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["uri"].startswith("http://10.251.0.1:")
    assert result["anonymous"] == 401
    assert result["with_key"] == 5
    code, message = result["cli_without_key"]
    assert code == 1 and message.startswith("error: --host 10.251.0.1 is reachable from the network")


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


@pytest.fixture
def postgres():
    """A PostgreSQL server on loopback in a temporary directory, run as an unprivileged user
    (PostgreSQL refuses root); yields its URI."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql); the SQLite catalog is "
                    "tested everywhere")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="labctl-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            pytest.skip("running as root without runuser(1): PostgreSQL cannot be started as root")
        as_user = [runuser, "-u", "nobody", "--"]
        os.chmod(base, 0o777)
    data, sock = base / "data", base / "sock"
    sock.mkdir(mode=0o777)
    os.chmod(sock, 0o777)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    try:
        init = subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "labctl", "--auth=trust"],
                              capture_output=True, text=True, timeout=180)
        if init.returncode != 0:
            pytest.skip(f"initdb failed here: {init.stderr.strip().splitlines()[-1:]}")
        start = subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                                "-t", "120", "-o", f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start"],
                               capture_output=True, text=True, timeout=180)
        if start.returncode != 0:
            pytest.skip(f"PostgreSQL did not start here: {start.stderr.strip() or start.stdout.strip()}")
        yield f"postgresql://labctl@127.0.0.1:{port}/postgres"
    finally:
        if data.exists():
            subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


def test_a_postgresql_catalog_serves_and_searches_the_same(bench_dirs, postgres):
    one, two = bench_dirs
    dirs = (RunsDirectory(one, "b1"), RunsDirectory(two, "b2"))
    server = serve(dirs, catalog=postgres)
    try:
        on_postgres = catalog_of(server)
        ccd = {r.key for r in find_runs(server.uri, kind="ccd_staircase")}
        llzo = {r.key for r in find_runs(server.uri, electrolyte="llzo")}  # LIKE is case-sensitive on PostgreSQL
        late = {r.key for r in find_runs(server.uri, since="2026-01-01T02:00:00")}
    finally:
        server.stop()
    assert ccd == {"b1.run0", "b1.2026.run4"}
    assert llzo == {"b1.run0", "b1.run1", "b1.run2", "b1.run3"}
    assert late == {"b1.run3", "b1.2026.run4", "b2.run0"}  # runs start 3151 s apart from 2026-01-01
    sqlite = serve(dirs)
    try:
        assert catalog_of(sqlite) == on_postgres
    finally:
        sqlite.stop()
