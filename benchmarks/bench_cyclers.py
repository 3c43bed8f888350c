"""Delegated cycling at scale: many NEWARE channels, a point every second, every point kept.

The whole path a lab would run: a simulated NEWARE BTS in its own process (``labctl sim neware``,
XML over loopback TCP, channels running step files on simulated Li | LLZO | Li cells in
accelerated time) and, in another process, ``labctl run cycling.yaml@cyc1 … --station`` — one
delegated engine, BTS client connection and HDF5 run file per channel, polling and
downloading incrementally. Each process's CPU time and peak RSS come from ``wait4``, so the
labctl side and the simulator are measured apart.

Scenarios:

* ``16 × 24 h``: 16 channels, 24 h of cycling (0.5 mA cm⁻², 30 min half-cycles) at 1 s; the
  simulator runs ×3600, the labctl side in real time polling every second;
* ``64 × 6 h``: the same protocol cut to 6 h on 64 channels;
* ``64 real time``: 64 channels at ×1 for a few minutes, polling every 5 s (the station
  default): the labctl side's share of one core, sampled from ``/proc`` while they cycle,
  and its total with startup (64 connections, files, compiles) and the final analyses.

Every file is checked: its ``cycler_seq_id`` column is 1…N with N the points the channel
stored (a point at each step's start, then one a second), and every cycle was analysed.

Run: ``python benchmarks/bench_cyclers.py`` (about 5 minutes on 2 cores);
``--quick`` runs 16 × 2 h and 64 × 1 h and a 60 s real-time run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

LABCTL = [shutil.which("labctl") or sys.executable, *([] if shutil.which("labctl") else ["-m", "labctl.cli"])]

PROTOCOL = """\
kind: symmetric_cycling
name: bench, 0.5 mA cm-2, 30 min half-cycles, 1 s points
current_density_mA_cm2: 0.5
half_cycle_s: {half_cycle_s}
total_time_h: {hours}
voltage_limit_V: 5.0
record_interval_s: 1
cell: {{area_cm2: 1.0, electrolyte: LLZO, electrolyte_thickness_um: 300, li_thickness_um: 100,
        stack_pressure_MPa: 0, temperature_C: 25}}
"""


@dataclass(frozen=True)
class Usage:
    """What one child process used: CPU seconds (user + system), peak RSS (MB), wall seconds,
    and its CPU time sampled once a second: (wall s since start, CPU s) pairs."""

    cpu_s: float
    peak_rss_MB: float
    wall_s: float
    samples: tuple[tuple[float, float], ...] = ()


def _cpu_s(pid: int) -> float:
    """A live process's CPU time (user + system) from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(proc: subprocess.Popen, started: float, *, sample: bool = False) -> Usage:
    samples = []
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if sample:
            try:
                samples.append((time.perf_counter() - started, _cpu_s(proc.pid)))
            except (OSError, IndexError):
                pass
        time.sleep(1.0 if sample else 0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Usage(usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, time.perf_counter() - started,
                 tuple(samples))


def steady_share(usage: Usage, from_s: float, to_s: float) -> float:
    """CPU seconds per wall second between ``from_s`` and ``to_s`` of a sampled run."""
    inside = [(t, c) for t, c in usage.samples if from_s <= t <= to_s]
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return (c1 - c0) / (t1 - t0)


def scenario(directory: Path, *, channels: int, hours: float, half_cycle_s: float, speed: float,
             poll_s: float) -> dict:
    """One run of ``channels`` channels; the figures and the checks."""
    directory.mkdir(parents=True)
    protocol = directory / "cycling.yaml"
    protocol.write_text(PROTOCOL.format(hours=hours, half_cycle_s=half_cycle_s))
    sim_started = time.perf_counter()
    sim_log = open(directory / "sim.err", "w")  # noqa: SIM115 - closed below
    sim = subprocess.Popen([*LABCTL, "sim", "neware", "--channels", str(channels), "--speed", f"{speed:g}"],
                           stdout=subprocess.PIPE, stderr=sim_log, text=True)
    address = sim.stdout.readline().strip()
    if not address:
        raise SystemExit(f"the simulator did not start: {(directory / 'sim.err').read_text()}")
    station = directory / "station.yaml"
    lines = ["instruments:"]
    for k in range(channels):
        lines.append(f"  cyc{k + 1}: {{driver: neware, address: '{address}/1-{k // 8 + 1}-{k % 8 + 1}', "
                     f"step_file_dir: '{directory / 'steps'}', poll_interval_s: {poll_s}}}")
    station.write_text("\n".join(lines) + "\n")
    runs = directory / "runs"
    run_started = time.perf_counter()
    with open(directory / "run.out", "w") as out, open(directory / "run.err", "w") as err:
        run = subprocess.Popen([*LABCTL, "run", *(f"{protocol}@cyc{k + 1}" for k in range(channels)),
                                "--station", str(station), "-o", str(runs)], stdout=out, stderr=err)
        labctl = _wait(run, run_started, sample=speed == 1.0)
    sim.terminate()  # SIGTERM: a background shell starts children with SIGINT ignored
    simulator = _wait(sim, sim_started)
    sim_log.close()
    if run.returncode != 0:
        raise SystemExit(f"labctl run failed ({run.returncode}): {(directory / 'run.err').read_text()}")
    steps = round(hours * 3600 / half_cycle_s)
    expected = steps * (int(half_cycle_s) + 1)  # a point at each step's start, then one a second
    files = sorted(runs.glob("*.h5"))
    assert len(files) == channels, f"{len(files)} run files for {channels} channels"
    points, size = 0, 0
    for path in files:
        with h5py.File(path) as f:
            name = list(f["channels"])[0]
            seq = f[f"channels/{name}/cycler_seq_id"][:]
            assert f.attrs["status"] == "completed", (path, f.attrs["status"], f.attrs["end_reason"])
            assert len(seq) == expected and np.array_equal(seq, np.arange(1, expected + 1)), path
            assert f["results"].attrs["cycles_completed"] == steps // 2, path
            points += len(seq)
        size += path.stat().st_size
    channel_hours = channels * hours
    return {"channels": channels, "hours": hours, "speed": speed, "points": points, "expected": expected * channels,
            "labctl": labctl, "simulator": simulator, "channel_hours": channel_hours, "file_MB": size / 1e6,
            "file_MB_per_channel_day": size / 1e6 / channel_hours * 24}


def realtime(directory: Path, *, channels: int, seconds: float, poll_s: float) -> dict:
    """``channels`` channels in real time (×1) for ``seconds``: the labctl side's CPU share."""
    half_cycle_s = seconds / 2
    return scenario(directory, channels=channels, hours=seconds / 3600, half_cycle_s=half_cycle_s, speed=1.0,
                    poll_s=poll_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (16 × 2 h, 64 × 1 h, 60 s real time)")
    args = parser.parse_args()
    accelerated = [(16, 2.0), (64, 1.0)] if args.quick else [(16, 24.0), (64, 6.0)]
    seconds = 60.0 if args.quick else 180.0
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-cyclers-") as tmp:
        for k, (channels, hours) in enumerate(accelerated):
            rows.append(scenario(Path(tmp) / f"a{k}", channels=channels, hours=hours, half_cycle_s=1800,
                                 speed=3600.0, poll_s=1.0))
        rows.append(realtime(Path(tmp) / "rt", channels=64, seconds=seconds, poll_s=5.0))
    print("| channels × simulated time | wall | points kept / expected | labctl CPU | labctl CPU per "
          "channel-hour | labctl peak RSS | simulator CPU | simulator peak RSS | run files |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        label = f"{r['channels']} × {r['hours'] * 60:g} min (×1)" if r["speed"] == 1 else \
            f"{r['channels']} × {r['hours']:g} h (×{r['speed']:g})"
        lab, sim = r["labctl"], r["simulator"]
        print(f"| {label} | {lab.wall_s:.1f} s | {r['points']:,} / {r['expected']:,} | {lab.cpu_s:.1f} s | "
              f"{lab.cpu_s / r['channel_hours']:.2f} s | {lab.peak_rss_MB:.0f} MB | {sim.cpu_s:.1f} s | "
              f"{sim.peak_rss_MB:.0f} MB | {r['file_MB']:.1f} MB |")
    per_hour = [r["labctl"].cpu_s / r["channel_hours"] for r in rows[:-1]]
    rt = rows[-1]
    duration = rt["hours"] * 3600
    share = steady_share(rt["labctl"], 20.0, duration - 5.0)
    print()
    print(f"throughput (accelerated runs): the labctl side spends {min(per_hour):.2f}-{max(per_hour):.2f} CPU s per "
          "channel-hour of 1 s points (3600 points), startup and analyses included.")
    print(f"the goal (real time): 64 channels at 1 s points, polling every 5 s, use {share:.1%} of one core while "
          f"they cycle (from 20 s to {duration - 5:.0f} s); {rt['labctl'].cpu_s:.1f} CPU s in "
          f"{rt['labctl'].wall_s:.0f} s with the startup of 64 channels and their final analyses.")
    print(f"run files: {min(r['file_MB_per_channel_day'] for r in rows[:-1]):.1f} MB per channel-day at 1 s points.")


if __name__ == "__main__":
    main()
