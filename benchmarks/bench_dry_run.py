"""Dry runs of seed 000's long cycling protocol on the simulated cell, at full speed.

``protocols/examples/cycling_fse_12000h.yaml`` (20 h activation at 0.1 mA cm⁻², then
0.2 mA cm⁻², 1 h half-cycles, a reading every 60 s) runs through the whole stack — session,
engine, our driver, pymeasure, pyvisa-py, loopback TCP, the SCPI simulator, the HDF5 writer
— with ``--speed max``, once cut to 1 000 h and once in full (12 000 h). Each run is its own
process, so its wall time and peak resident memory are its own. Goal: memory flat in run
length, the 12 000 h dry run in under 2 minutes here.

Run: ``python benchmarks/bench_dry_run.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "protocols" / "examples" / "cycling_fse_12000h.yaml"

CHILD = """
import json, math, resource, sys
from labctl.app.run import run_protocol
result = run_protocol(sys.argv[1], simulate=True, speed=math.inf, output=sys.argv[2])
print(json.dumps({"readings": result.outcome.n_readings, "status": result.outcome.status,
                  "cycles": result.results["cycles_completed"],
                  "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def dry_run(hours: int, directory: Path) -> dict:
    protocol = directory / f"cycling_{hours}h.yaml"
    protocol.write_text(EXAMPLE.read_text().replace("total_time_h: 12000", f"total_time_h: {hours}"))
    output = directory / f"dry_{hours}h.h5"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(protocol), str(output)],
                          capture_output=True, text=True, check=True)
    wall_s = time.perf_counter() - t0
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**figures, "hours": hours, "wall_s": wall_s, "file_MB": output.stat().st_size / 1e6}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for hours in (1000, 12000):
            r = dry_run(hours, Path(tmp))
            print(f"{r['hours']:>6} h: {r['wall_s']:6.1f} s wall, peak RSS {r['peak_rss_MB']:6.1f} MB, "
                  f"{r['readings']:,} readings, {r['cycles']} cycles, file {r['file_MB']:.1f} MB, {r['status']}")


if __name__ == "__main__":
    main()
