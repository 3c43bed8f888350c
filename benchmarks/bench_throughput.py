"""Throughput of labctl's own software, and the round trip of one reading over VISA.

1. engine + HDF5 writer: readings per second with an in-process simulated 2400
   (:class:`drivers.sim.inprocess.InProcessSourceMeter`) in front of a plain resistor, on a
   virtual clock, so that only labctl's code is measured (goal ≥ 50 000 /s; a real 2400 reads
   at most ~2 000 /s).
2. the same without the writer, to show what the file costs.
3. the same with the simulated Li | SSE | Li cell behind the 2400 (double layers, diffusion,
   Butler–Volmer, noise): what a dry run costs, the simulator's physics included.
4. one ``:READ?`` round trip through our driver, pymeasure, pyvisa-py and the loopback TCP
   socket to the SCPI simulator (median and 95th percentile).

Run: ``python benchmarks/bench_throughput.py`` (about half a minute on 2 cores).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from drivers.keithley2400 import Keithley2400
from drivers.sim.physics.cell import CellParameters, SymmetricCell
from drivers.sim.inprocess import InProcessSourceMeter
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from drivers.sim.smu import Resistor, SourceMeterModel
from labctl.steps import ConstantCurrent, SafetyLimits, StepProgram
from labctl.engine import SoftwareTimedExecutor, VirtualClock
from labctl.store import RunFileWriter

N_READINGS = 1_000_000


def _program(n_readings: int) -> StepProgram:
    per_step = 10_000
    steps = [ConstantCurrent(current_A=(-1) ** k * 1e-3, duration_s=per_step - 1, record_interval_s=1.0,
                             cycle=k // 2 + 1) for k in range(n_readings // per_step)]
    return StepProgram(steps=steps, area_cm2=1.0, safety=SafetyLimits(max_abs_voltage_V=5, max_abs_current_A=0.01))


def engine_throughput(with_writer: bool, n_readings: int = N_READINGS, *, cell: bool = False) -> tuple[float, int]:
    clock = VirtualClock()
    load = SymmetricCell(CellParameters(ccd_mA_cm2=50)) if cell else Resistor(100.0)
    smu = InProcessSourceMeter(SourceMeterModel(load, clock.now))
    with tempfile.TemporaryDirectory() as tmp:
        subscribers = [RunFileWriter(Path(tmp) / "bench.h5", ["smu"], {})] if with_writer else []
        engine = SoftwareTimedExecutor(smu, clock, channel="smu", subscribers=subscribers)
        t0 = time.perf_counter()
        outcome = engine.run(_program(n_readings))
        elapsed = time.perf_counter() - t0
        assert outcome.status == "completed" and outcome.n_readings == n_readings, outcome
        size = (Path(tmp) / "bench.h5").stat().st_size if with_writer else 0
    return n_readings / elapsed, size


def visa_round_trip(n: int = 2000) -> tuple[float, float]:
    sim = Keithley2400Simulator(CellParameters())
    server = TcpServer(sim)
    smu = Keithley2400(server.resource)
    try:
        smu.configure_current_source(5.0)
        smu.set_current(1e-3)
        smu.output_on()
        for _ in range(100):
            smu.read()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            smu.read()
            times.append(time.perf_counter() - t0)
    finally:
        smu.close()
        server.close()
    times.sort()
    return statistics.median(times), times[int(0.95 * n)]


def main() -> None:
    rate, size = engine_throughput(True)
    print(f"engine + HDF5 writer : {rate:10,.0f} readings/s  ({N_READINGS:,} readings, file {size / 1e6:.1f} MB)")
    rate, _ = engine_throughput(False)
    print(f"engine alone         : {rate:10,.0f} readings/s")
    rate, _ = engine_throughput(True, cell=True)
    print(f"… with the cell model: {rate:10,.0f} readings/s  (engine + writer + simulated Li|SSE|Li cell)")
    median, p95 = visa_round_trip()
    print(f":READ? over VISA/TCP : median {median * 1e6:.0f} µs, 95th percentile {p95 * 1e6:.0f} µs "
          f"({1 / median:,.0f} readings/s)")


if __name__ == "__main__":
    main()
