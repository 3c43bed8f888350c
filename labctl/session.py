"""One run of a protocol file, start to finish: the glue the CLI and the GUI share.

Loads the protocol, reaches the instrument (a station file's, or a simulator started here on
a free loopback port and reached over VISA exactly like a real one), creates the run file,
runs the engine with the run file writer and any extra subscribers, then analyses the steps
and stores the results. This module sits beside :mod:`labctl.cli` at the top of the
dependency order (ui/cli → protocols → labctl.engine → drivers).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from labctl.engine import Engine, RunOutcome, clock_for_speed
from labctl.engine.events import Subscriber
from labctl.station import InstrumentConfig, Station, load_station, open_instrument
from labctl.store import RunFileWriter, write_results
from labctl.yamlfile import FileError
from protocols import ProtocolBase, load_protocol


@dataclass(frozen=True)
class SessionResult:
    """What a finished run produced."""

    path: Path
    outcome: RunOutcome
    results: dict[str, Any]
    summary: list[str]
    interrupted: bool


def default_output_path(protocol: ProtocolBase, directory: str | Path = "runs") -> Path:
    """``runs/<UTC timestamp>_<kind>.h5``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(directory) / f"{stamp}_{protocol.kind}.h5"


def run_protocol(
    protocol_path: str | Path,
    *,
    station_path: str | Path | None = None,
    simulate: bool = False,
    speed: float = 1.0,
    output: str | Path | None = None,
    operator: str | None = None,
    cell_overrides: dict[str, Any] | None = None,
    subscribers: Iterable[Subscriber] = (),
    on_engine: Any = None,
) -> SessionResult:
    """Run a protocol file and return its result.

    Args:
        protocol_path: YAML protocol file.
        station_path: station file naming the instrument's driver and address (real hardware).
        simulate: start the simulator for the protocol's instrument instead of a station.
        speed: clock speed-up for simulated runs (``inf`` = as fast as possible).
        output: run file to create; default ``runs/<timestamp>_<kind>.h5``.
        operator: overrides the protocol's ``operator``.
        cell_overrides: simulated-cell parameters (e.g. ``{"ccd_mA_cm2": 0.5, "seed": 3}``).
        subscribers: extra event consumers (progress bar, live plot …).
        on_engine: called with the :class:`Engine` before it runs (e.g. to wire a Stop button).

    Raises:
        FileError: bad protocol or station file, or bad options (one line per problem).
        drivers.base.InstrumentLost: the instrument cannot be reached (names the address).
        FileExistsError: ``output`` exists.

    A Ctrl-C during the run ends it like any other ending (output off, file closed and
    analysed); the result then has ``interrupted=True``.
    """
    protocol = load_protocol(protocol_path)
    protocol_text = Path(protocol_path).read_text(encoding="utf-8")
    if simulate == (station_path is not None):
        raise FileError(["give either a station file (--station) or --simulate"])
    if not simulate and speed != 1.0:
        raise FileError(["--speed applies to simulated runs only; real instruments run in real time"])
    clock = clock_for_speed(speed)
    with ExitStack() as stack:
        if simulate:
            try:
                cell = protocol.simulated_cell_parameters(**(cell_overrides or {}))
            except (TypeError, ValueError) as exc:
                raise FileError([f"{Path(protocol_path).name}: simulated_cell: {exc}"]) from None
            server = TcpServer(Keithley2400Simulator(cell, now=clock.now))
            stack.callback(server.close)
            station = Station(instruments={protocol.instrument: InstrumentConfig(driver="keithley2400", address=server.resource)})
            extra = {"simulated": True, "simulated_cell": asdict(cell), "speed": speed}
        else:
            station = load_station(station_path)
            extra = {"simulated": False}
        config = station.instrument(protocol.instrument, str(station_path or "simulated station"))
        smu = open_instrument(config)
        stack.callback(smu.close)
        program = protocol.program()
        path = Path(output) if output is not None else default_output_path(protocol)
        attrs = {
            **protocol.metadata(),
            **extra,
            "protocol_text": protocol_text,
            "protocol_path": str(Path(protocol_path).resolve()),
            "station_text": station.to_yaml(),
            "instrument_idn": getattr(smu, "idn", ""),
        }
        if operator is not None:
            attrs["operator"] = operator
        writer = RunFileWriter(path, [protocol.instrument], attrs)
        stack.callback(writer.close)
        engine = Engine(smu, clock, channel=protocol.instrument, subscribers=[writer, *subscribers])
        if on_engine is not None:
            on_engine(engine)
        interrupted = False
        try:
            outcome = engine.run(program)
        except KeyboardInterrupt:
            interrupted = True
            outcome = engine.last_outcome
        rows = [asdict(s) for s in outcome.steps]
        results = {**protocol.analyse(rows), "run_status": outcome.status, "run_end_reason": outcome.reason}
        writer.close()
        write_results(path, results)
    return SessionResult(path, outcome, results, protocol.summary(results), interrupted)
