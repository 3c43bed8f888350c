"""``labctl inspect`` in bounded memory: a 12 000 h run file needs no more than a 9 h one.

Issue 10: "``labctl inspect`` on the 12 000 h dry-run file uses at most 15 MB more peak memory
than on the CCD example's file". The summary (:func:`labctl.store.summarise`) reads columns in
blocks (counts, min/max, last values), the ``events`` table from its tail and the ``steps``
table not at all, so its memory does not grow with the run.

The two files are built once if missing (``--dir``, default ``runs/bench_inspect``):

* ``ccd.h5``: ``labctl run protocols/examples/ccd_llzo.yaml --simulate --speed max`` (9 h,
  ~32 000 readings, ~8 s);
* ``cycling_12000h.h5``: ``labctl run protocols/examples/cycling_fse_12000h.yaml --simulate
  --speed max`` (12 020 h, ~733 000 readings, ~90 s).

Each ``labctl inspect`` runs in a child process ``--repeat`` times; its peak RSS is the
child's ``ru_maxrss`` from ``os.wait4`` (kB on Linux), its wall time measured around it. The
figure reported is the median over the repeats.

Run: ``python benchmarks/bench_inspect.py`` (exit 1 if the difference exceeds the goal).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "protocols" / "examples"
LABCTL = [shutil.which("labctl") or sys.executable, *([] if shutil.which("labctl") else ["-m", "labctl.cli"])]
#: Issue 10's goal: peak RSS of inspect on the 12 000 h file minus that on the CCD file (MB).
GOAL_MB = 15.0
FILES = {"ccd.h5": "ccd_llzo.yaml", "cycling_12000h.h5": "cycling_fse_12000h.yaml"}


def build(directory: Path) -> dict[str, Path]:
    """The benchmark's run files, made with ``labctl run`` where missing."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, protocol in FILES.items():
        path = directory / name
        if not path.exists():
            print(f"building {path} from {protocol} …", flush=True)
            started = time.perf_counter()
            subprocess.run([*LABCTL, "run", str(EXAMPLES / protocol), "--simulate", "--speed", "max", "--quiet",
                            "-o", str(path)], check=True, stdout=subprocess.DEVNULL)
            print(f"  {time.perf_counter() - started:.0f} s, {path.stat().st_size / 1e6:.1f} MB", flush=True)
        paths[name] = path
    return paths


def measure(path: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall time (s) of one ``labctl inspect PATH`` in a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen([*LABCTL, "inspect", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"labctl inspect {path} failed: {proc.stderr.read().decode()}")
    proc.stderr.close()
    return usage.ru_maxrss / 1024.0, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=REPO / "runs" / "bench_inspect", help="where the run files are")
    parser.add_argument("--repeat", type=int, default=5, help="inspect runs per file")
    args = parser.parse_args()
    paths = build(args.dir)
    peaks = {}
    print(f"{'file':<22}{'size MB':>9}{'readings':>10}{'peak RSS MB':>13}{'wall s':>8}")
    for name, path in paths.items():
        runs = [measure(path) for _ in range(args.repeat)]
        peak = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        peaks[name] = peak
        from labctl.store import RunFile

        with RunFile(path) as run:
            n = run.n_rows(run.channels[0])
        print(f"{name:<22}{path.stat().st_size / 1e6:>9.1f}{n:>10}{peak:>13.1f}{wall:>8.2f}")
    difference = peaks["cycling_12000h.h5"] - peaks["ccd.h5"]
    verdict = "within" if difference <= GOAL_MB else "OVER"
    print(f"12 000 h − CCD: {difference:+.1f} MB ({verdict} the {GOAL_MB:g} MB goal)")
    return 0 if difference <= GOAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
