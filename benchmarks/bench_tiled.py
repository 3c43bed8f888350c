"""A lab's worth of runs behind ``labctl serve``: catalog build, search latency, server memory.

1. writes ``N`` small synthetic run files in the labctl layout (:func:`write_synthetic_run`:
   :class:`labctl.store.RunFileWriter` fed with the engine's events, then
   :func:`labctl.store.write_results`), four run kinds, five electrolytes, five operators,
   start times spread over a year;
2. starts ``labctl serve DIR --catalog sqlite:///…`` as a subprocess and times the catalog
   build (start to the first completed sync), then a restart on the same catalog (nothing
   to register: the incremental start);
3. times typical searches through :func:`labctl.store.remote.find_runs` (one HTTP client as a
   user has it; median and 95th percentile of ``REPEATS``);
4. reads the server's resident memory (``VmRSS`` of the process) and the catalog's size;
5. times one scan of the directory (what the server does every ``--scan-interval-s``) and one
   read of a run's catalog record (what it does per changed file).

Run: ``python benchmarks/bench_tiled.py [N]`` (N = 10 000 by default; about 15 min on 2 cores).
Needs the ``serve`` extra.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from labctl.events import Detected, Readings, RunEnded, RunStarted, StepEnded, StepSummary
from labctl.store import RunFileWriter, write_results
from labctl.store.catalog import catalog_record

KINDS = ("ccd_staircase", "symmetric_cycling", "cafm_trigger_sweep", "memristor_cycling")
ELECTROLYTES = ("Li6.5La3Zr1.5Ta0.5O12 (LLZO) with PPC-LiTFSI homogenising layer", "Li6PS5Cl (LPSCl)",
                "FSE (PolyEA-IL 33 wt% + Li6PS5Cl 67 wt%)", "PEO-LiTFSI", "Li3InCl6 (LIC)")
OPERATORS = ("Ada Lovelace", "Marie Curie", "John Goodenough", "Akira Yoshino", "")
READINGS = 200
YEAR_START = _dt.datetime(2026, 1, 1, tzinfo=_dt.timezone.utc)
REPEATS = 20


def write_synthetic_run(path: Path, index: int, *, readings: int = READINGS) -> None:
    """One small finished run file (labctl layout, written by RunFileWriter from events).

    Its kind, electrolyte, operator and start time come from ``index`` (deterministic); a
    CCD run gets ``ccd_mA_cm2`` in its results, the others a kind-specific scalar.
    """
    rng = np.random.default_rng(index)
    kind = KINDS[index % len(KINDS)]
    start = YEAR_START + _dt.timedelta(seconds=int(index * 3151))  # 10 000 runs over a year
    attrs = {"protocol_kind": kind, "protocol_name": f"synthetic {kind} #{index}", "operator": OPERATORS[index % 5],
             "cell_electrolyte": ELECTROLYTES[(index // 4) % len(ELECTROLYTES)], "cell_area_cm2": 1.0,
             "cell_electrolyte_thickness_um": float(100 + 50 * (index % 5)), "cell_temperature_C": 25.0,
             "instrument_idn": "KEITHLEY INSTRUMENTS INC.,MODEL 2400,4123456,C30", "simulated": True,
             "station_text": "instruments:\n  smu:\n    driver: keithley2400\n    address: GPIB0::24::INSTR\n",
             "start_time_utc": start.isoformat(timespec="seconds"), "start_unix_time_s": start.timestamp()}
    writer = RunFileWriter(path, ["smu"], attrs)
    t = np.arange(readings, dtype=float)
    step = (t // (readings // 4)).astype("i4")
    current = np.where(step % 2 == 0, 1e-3, -1e-3)
    writer(RunStarted(0.0, "smu", "{}", 0, start.timestamp()))
    writer(Readings("smu", {"test_time_s": t, "voltage_V": current * 50 + rng.normal(0, 1e-4, readings),
                            "current_A": current, "current_density_mA_cm2": current * 1e3,
                            "charge_C": np.cumsum(current), "step_index": step, "cycle_index": step // 2 + 1,
                            "status": np.zeros(readings, dtype="u4")}))
    for k in range(4):
        rows = step == k
        writer(StepEnded(float(t[rows][-1]), "smu", StepSummary(
            k, "constant_current", f"step {k}", k // 2 + 1, float(current[rows][0]), float(current[rows][0]) * 1e3,
            float(t[rows][0]), float(t[rows][-1]), "time", int(rows.sum()), 0.05, 0.05, 0.05, 0.0, 0.0)))
    writer(Detected(float(t[-1]), "smu", "note", "synthetic run", 3))
    writer(RunEnded(float(t[-1]), "smu", "completed", "synthetic", start.timestamp() + readings))
    results = {"run_status": "completed"}
    if kind == "ccd_staircase":
        results["ccd_mA_cm2"] = round(0.1 * (1 + index % 30), 1)
    elif kind == "symmetric_cycling":
        results.update(cycles_completed=index % 1000, ended_by="completed")
    elif kind == "cafm_trigger_sweep":
        results["gi_to_gb_ratio"] = float(50 + index % 50)
    else:
        results["on_off_median"] = float(10 ** (3 + index % 3))
    write_results(path, results)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _serve(runs: Path, catalog: Path) -> tuple[subprocess.Popen, str, float]:
    """``labctl serve`` on a free port; returns it, its URL and the seconds to its first sync."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "labctl.cli", "serve", str(runs), "--port", "0",
                             "--catalog", str(catalog)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "250"})
    out = []
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("labctl serve stopped:\n" + "".join(out))
        out.append(line)
        if line.startswith("catalog:"):
            break
    url = re.search(r"http://127\.0\.0\.1:\d+", "".join(out)).group(0)
    return proc, url, time.perf_counter() - t0


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.communicate(timeout=120)


def _latency_ms(fn) -> tuple[float, float, int]:
    times, n = [], 0
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        n = len(fn())
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], n


def main(n_runs: int = 10_000) -> None:
    from labctl.app.serve import RunsDirectory
    from labctl.store.remote import find_runs

    work = Path(tempfile.mkdtemp(prefix="bench-tiled-"))
    runs = work / "runs"
    try:
        t0 = time.perf_counter()
        for i in range(n_runs):
            write_synthetic_run(runs / f"bench{i // 1000:02d}" / f"run{i:05d}.h5", i)
        write_s = time.perf_counter() - t0
        disk_mb = sum(p.stat().st_size for p in runs.rglob("*.h5")) / 1e6
        print(f"wrote {n_runs} run files ({READINGS} readings each) in {write_s:.0f} s, {disk_mb:.0f} MB "
              f"({disk_mb * 1e3 / n_runs:.0f} kB per file)")

        t0 = time.perf_counter()
        files = list(RunsDirectory(runs).files())
        stats = [p.stat() for p in files]
        scan_ms = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        for p in files[:200]:
            catalog_record(p)
        record_ms = (time.perf_counter() - t0) * 1e3 / 200
        print(f"one scan of the directory (list + stat {len(stats)} files): {scan_ms:.0f} ms; "
              f"one catalog record read: {record_ms:.2f} ms")

        catalog = work / "catalog.db"
        proc, url, build_s = _serve(runs, catalog)
        try:
            print(f"catalog build (server start + registering {n_runs} runs): {build_s:.0f} s "
                  f"({n_runs / build_s:.0f} runs/s)")
            print(f"server memory after the build: {_rss_mb(proc.pid):.0f} MB resident; catalog "
                  f"{catalog.stat().st_size / 1e6:.1f} MB ({catalog.stat().st_size / n_runs / 1e3:.1f} kB per run)")
            since = (YEAR_START + _dt.timedelta(days=300)).date().isoformat()
            queries = {
                "kind=ccd_staircase, electrolyte~LLZO, since day 300": lambda: find_runs(
                    url, kind="ccd_staircase", electrolyte="llzo", since=since),
                "operator~curie, limit 50": lambda: find_runs(url, operator="curie", limit=50),
                "status=running (none)": lambda: find_runs(url, status="running"),
                "one month (since/until)": lambda: find_runs(url, since="2026-11-01", until="2026-12-01"),
            }
            for name, query in queries.items():
                median, p95, n = _latency_ms(query)
                print(f"search {name}: {n} runs, median {median:.0f} ms, p95 {p95:.0f} ms")
            print(f"server memory after the searches: {_rss_mb(proc.pid):.0f} MB resident")
        finally:
            _stop(proc)
        proc, url, restart_s = _serve(runs, catalog)
        _stop(proc)
        print(f"restart on the same catalog (nothing to register): {restart_s:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
