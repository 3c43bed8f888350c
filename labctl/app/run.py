"""One run of a protocol file, start to finish (or resumed): the glue the CLI and the GUI share.

Loads the protocol, reaches the instrument (a station file's, or a simulator started here on
a free loopback port and reached over VISA exactly like a real one), creates the run file (or
reopens it to resume), runs the engine with the run file writer and any extra subscribers,
then analyses the whole step table and stores the results. This module sits beside
:mod:`labctl.cli` at the top of the dependency order (ui/cli → protocols → labctl.engine →
drivers).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from drivers.base import InstrumentError, SourceMeter
from drivers.sim.physics.cell import CellParameters
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from labctl.app.cyclers import is_delegated, resume_delegated, run_cycler_protocol, uses_cycler
from labctl.engine import Detected, Engine, ResumePoint, RunOutcome, clock_for_speed
from labctl.engine.clock import Clock
from labctl.events import Subscriber
from labctl.app.notify import NotifyConfig, load_notify_config, notifiers_for
from labctl.station import InstrumentConfig, Station, load_station, open_instrument
from labctl.store import RunFile, RunFileError, RunFileWriter, write_results
from labctl.store.recover import RESUMABLE, resume_point
from labctl.yamlfile import FileError
from protocols import ProtocolBase, load_protocol, load_protocol_text


@dataclass(frozen=True)
class SessionResult:
    """What a finished (or interrupted) run produced."""

    path: Path
    outcome: RunOutcome
    results: dict[str, Any]
    summary: list[str]
    interrupted: bool


def default_output_path(protocol: ProtocolBase, directory: str | Path = "runs") -> Path:
    """``runs/<UTC timestamp>_<kind>.h5``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path(directory) / f"{stamp}_{protocol.kind}.h5"


def run_attrs(protocol: ProtocolBase, protocol_path: str | Path, protocol_text: str, *, simulated: bool,
              speed: float, station: Station, instrument_idn: str, operator: str | None,
              **extra: Any) -> dict[str, Any]:
    """The root attributes of a new run file (see README "The run file"): the protocol's
    metadata (``cell_*``, kind, name), its text and path as run, the station, whether the
    run was simulated and at what speed, the instrument's identification, the operator (when
    given here, it replaces the protocol's), and ``extra`` entries of the session."""
    attrs = {
        **protocol.metadata(),
        "simulated": simulated,
        "speed": speed,
        "protocol_text": protocol_text,
        "protocol_path": str(Path(protocol_path).resolve()),
        "station_text": station.to_yaml(),
        "instrument_idn": instrument_idn,
        **extra,
    }
    if operator is not None:
        attrs["operator"] = operator
    return attrs


def reopen_for_resume(stack: ExitStack, path: Path, t_s: float, channel: str, step_index: int,
                      message: str) -> RunFileWriter:
    """Reopen a run file to append a resumed run (closed by ``stack``) and record the
    ``resumed`` event with ``message`` (and whether the file had to be recovered first).

    Raises:
        RunFileError: the file cannot be reopened or recovered.
    """
    writer = RunFileWriter.append(path)
    stack.callback(writer.close)
    writer(Detected(t_s, channel, "resumed",
                    message + ("; the file was recovered after its writer died" if writer.recovered else ""),
                    step_index))
    return writer


def _connect(protocol: ProtocolBase, stack: ExitStack, clock: Clock, *, station: Station | None,
             station_source: str, cell: CellParameters | None) -> tuple[SourceMeter, Station]:
    """The protocol's instrument: on ``station``, or on a simulator of ``cell`` started here."""
    if cell is not None:
        server = TcpServer(Keithley2400Simulator(cell, now=clock.now))
        stack.callback(server.close)
        station = Station(instruments={protocol.instrument: InstrumentConfig(driver="keithley2400", address=server.resource)})
    config = station.instrument(protocol.instrument, station_source)
    smu = open_instrument(config)
    stack.callback(smu.close)
    return smu, station


def _notifiers(stack: ExitStack, config: NotifyConfig | None, path: Path) -> list[Subscriber]:
    """The notifiers ``config`` asks for; closed (queued e-mail sent, bounded) when the run is over."""
    notifiers = notifiers_for(config, path)
    for notifier in notifiers:
        stack.callback(notifier.close)
    return notifiers


def _execute(protocol: ProtocolBase, smu: SourceMeter, station: Station, clock: Clock, writer: RunFileWriter,
             subscribers: Iterable[Subscriber], on_engine: Any, resume: ResumePoint | None) -> tuple[RunOutcome, bool]:
    engine = Engine(smu, clock, channel=protocol.instrument, subscribers=[writer, *subscribers],
                    reconnect=station.instruments[protocol.instrument].on_lost)
    if on_engine is not None:
        on_engine(engine)
    try:
        return engine.run(protocol.program(), resume=resume), False
    except KeyboardInterrupt:
        return engine.last_outcome, True


def _finish(protocol: ProtocolBase, writer: RunFileWriter, outcome: RunOutcome, interrupted: bool) -> SessionResult:
    """Close the file, analyse every step it holds (a resumed run's too), store the results."""
    writer.close()
    with RunFile(writer.path) as run:
        rows = [row for row in run.steps() if row["channel"] == protocol.instrument]
    results = {**protocol.analyse(rows), "run_status": outcome.status, "run_end_reason": outcome.reason}
    write_results(writer.path, results)
    return SessionResult(writer.path, outcome, results, protocol.summary(results), interrupted)


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
    notify_path: str | Path | None = None,
    instrument: str | None = None,
    cycler: str | None = None,
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
        subscribers: extra event consumers (progress bar, live plot, notifier …).
        on_engine: called with the :class:`Engine` before it runs (e.g. to wire a Stop button).
        notify_path: notification file (:class:`labctl.app.notify.NotifyConfig` YAML) replacing the
            station's ``notify:`` section.
        instrument: run on this station instrument instead of the protocol's ``instrument``
            (one protocol file for several cells); it also names the channel.
        cycler: with ``simulate``, run on a channel of this simulated battery cycler
            (``neware``) instead of the simulated 2400. A station instrument whose driver is a
            cycler runs delegated as well (:mod:`labctl.app.cyclers`).

    Raises:
        FileError: bad protocol, station or notification file, or bad options (one line per problem).
        drivers.base.InstrumentLost: the instrument cannot be reached (names the address).
        FileExistsError: ``output`` exists.

    A Ctrl-C during the run ends it like any other ending (output off, file closed and
    analysed); the result then has ``interrupted=True``.
    """
    protocol = load_protocol(protocol_path)
    if instrument is not None:
        protocol = protocol.model_copy(update={"instrument": instrument})
    if getattr(protocol, "engine", "steps") == "sweeps":  # c-AFM / memristor kinds: the sweep engine
        from labctl.app.sweep_run import run_sweep_protocol

        return run_sweep_protocol(protocol, protocol_path, station_path=station_path, simulate=simulate, speed=speed,
                                  output=output, operator=operator, subscribers=subscribers, on_engine=on_engine,
                                  notify_path=notify_path)
    if simulate == (station_path is not None):
        raise FileError(["give either a station file (--station) or --simulate"])
    if cycler is not None or (station_path is not None and uses_cycler(station_path, protocol.instrument)):
        # delegated: the protocol runs in a cycler's firmware
        return run_cycler_protocol(protocol, protocol_path, station_path=station_path, simulate=simulate,
                                   cycler=cycler, speed=speed, output=output, operator=operator,
                                   cell_overrides=cell_overrides, subscribers=subscribers, on_engine=on_engine,
                                   notify_path=notify_path)
    protocol_text = Path(protocol_path).read_text(encoding="utf-8")
    notify = load_notify_config(notify_path) if notify_path is not None else None
    if not simulate and speed != 1.0:
        raise FileError(["--speed applies to simulated runs only; real instruments run in real time"])
    clock = clock_for_speed(speed)
    with ExitStack() as stack:
        cell = None
        if simulate:
            try:
                cell = protocol.simulated_cell_parameters(**(cell_overrides or {}))
            except (TypeError, ValueError) as exc:
                raise FileError([f"{Path(protocol_path).name}: simulated_cell: {exc}"]) from None
        station = None if simulate else load_station(station_path)
        smu, station = _connect(protocol, stack, clock, station=station,
                                station_source=str(station_path or "simulated station"), cell=cell)
        path = Path(output) if output is not None else default_output_path(protocol)
        attrs = run_attrs(protocol, protocol_path, protocol_text, simulated=simulate, speed=speed, station=station,
                          instrument_idn=getattr(smu, "idn", ""), operator=operator,
                          **({"simulated_cell": asdict(cell)} if cell is not None else {}))
        notifiers = _notifiers(stack, notify if notify is not None else station.notify, path)
        writer = RunFileWriter(path, [protocol.instrument], attrs)
        stack.callback(writer.close)
        outcome, interrupted = _execute(protocol, smu, station, clock, writer, [*subscribers, *notifiers], on_engine, None)
        return _finish(protocol, writer, outcome, interrupted)


def resume_run(
    path: str | Path,
    *,
    station_path: str | Path | None = None,
    speed: float | None = None,
    subscribers: Iterable[Subscriber] = (),
    on_engine: Any = None,
    notify_path: str | Path | None = None,
) -> SessionResult:
    """Continue a run that was killed, interrupted or lost its instrument, in the same file.

    The protocol, station and simulated cell are the ones stored in the file (a station file
    given here replaces the stored one, e.g. after an instrument moved). Readings, step and
    cycle numbers and test time continue where the file ends; the gap is recorded as a
    ``resumed`` event. On real instruments test time includes the wall-clock gap; on a
    simulated run it includes the gap times the clock speed. Notifications: ``notify_path``
    (a :class:`labctl.app.notify.NotifyConfig` file), else the station's ``notify:`` section.

    Raises:
        RunFileError: not a run file, or its run ended for a reason that forbids resuming
            (completed, short, safety trip …).
        FileError, drivers.base.InstrumentLost: as :func:`run_protocol`.
    """
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such file")
    if is_delegated(path):  # a cycler's test: reattach to it
        return resume_delegated(path, station_path=station_path, speed=speed, subscribers=subscribers,
                                on_engine=on_engine, notify_path=notify_path)
    gap_s = max(0.0, time.time() - path.stat().st_mtime)  # the last flush was the last sign of life
    with RunFile(path, swmr=True) as run:
        attrs = run.attrs
        if attrs.get("status") not in RESUMABLE:
            raise RunFileError(f"{path}: the run ended with status {attrs.get('status')!r} "
                               f"({attrs.get('end_reason')}); only interrupted or crashed runs resume")
        channel = run.channels[0]
        point = resume_point(run, channel)
    protocol = load_protocol_text(attrs["protocol_text"], Path(attrs.get("protocol_path") or "protocol.yaml").name)
    if getattr(protocol, "engine", "steps") == "sweeps":
        raise RunFileError(f"{path}: a {protocol.kind} run does not resume (a cut sweep cannot be continued and "
                           "the tip's contact is lost); the file keeps what was measured: start the protocol again")
    protocol = protocol.model_copy(update={"instrument": channel})  # the cell's instrument, if overridden
    notify = load_notify_config(notify_path) if notify_path is not None else None
    simulated = bool(attrs.get("simulated"))
    if simulated and station_path is not None:
        raise FileError(["this run was simulated; resume it without --station"])
    if not simulated and speed not in (None, 1.0):
        raise FileError(["--speed applies to simulated runs only; real instruments run in real time"])
    speed = float(attrs.get("speed", 1.0)) if speed is None else speed
    clock = clock_for_speed(speed)
    if point.step_index >= protocol.program().n_steps:
        raise RunFileError(f"{path}: every step of the program has already run")
    point = replace(point, t_offset_s=point.t_offset_s + (0.0 if math.isinf(speed) else gap_s * speed))
    with ExitStack() as stack:
        cell = CellParameters(**json.loads(attrs["simulated_cell"])) if simulated else None
        if simulated:
            station = None
        elif station_path is not None:
            station = load_station(station_path)
        else:
            station = Station.model_validate(yaml.safe_load(attrs["station_text"]))
        notify = notify if notify is not None or station is None else station.notify
        smu, station = _connect(protocol, stack, clock, station=station,
                                station_source=str(station_path or f"{path.name}: station_text"), cell=cell)
        notifiers = _notifiers(stack, notify, path)
        writer = reopen_for_resume(stack, path, point.t_offset_s, channel, point.step_index,
                                   f"resumed at step {point.step_index} after {gap_s:.1f} s without recording")
        outcome, interrupted = _execute(protocol, smu, station, clock, writer, [*subscribers, *notifiers], on_engine, point)
        return _finish(protocol, writer, outcome, interrupted)


@dataclass(frozen=True)
class CellSpec:
    """One cell of a multi-cell run: a protocol file and, optionally, the instrument to use."""

    protocol_path: Path
    instrument: str | None = None

    @classmethod
    def parse(cls, text: str) -> CellSpec:
        """``protocol.yaml`` or ``protocol.yaml@instrument``."""
        path, _, instrument = text.rpartition("@") if "@" in text else (text, "", "")
        return cls(Path(path), instrument or None)


@dataclass(frozen=True)
class CellResult:
    """One cell's ending: its result, or the one-line reason it could not run."""

    spec: CellSpec
    instrument: str
    result: SessionResult | None
    error: str | None


def run_cells(
    specs: list[CellSpec],
    *,
    station_path: str | Path | None = None,
    simulate: bool = False,
    speed: float = 1.0,
    output_dir: str | Path = "runs",
    subscribers_for: Any = None,
    notify_path: str | Path | None = None,
    control: bool = False,
) -> list[CellResult]:
    """Run several cells side by side, each on its own instrument, in its own thread and file.

    A cell that shorts, loses its instrument or cannot start ends alone; the others go on.
    Ctrl-C stops every cell safely (output off, files closed). Files are
    ``<output_dir>/<UTC time>_<kind>_<instrument>.h5``; with ``control`` each cell listens
    on its own control socket ``<file>.ctl`` while it runs (:mod:`labctl.app.control`).

    Raises:
        FileError: a protocol file is invalid, or two cells name the same instrument (nothing
            has started then).
    """
    protocols = [load_protocol(spec.protocol_path) for spec in specs]
    instruments = [spec.instrument or p.instrument for spec, p in zip(specs, protocols)]
    check_distinct(instruments)
    stamp = run_stamp()

    def job(spec: CellSpec, name: str, path: Path) -> Any:
        return lambda on_engine: run_protocol(
            spec.protocol_path, station_path=station_path, simulate=simulate, speed=speed, output=path,
            instrument=name, subscribers=subscribers_for(name) if subscribers_for else (), on_engine=on_engine,
            notify_path=notify_path)

    paths = [Path(output_dir) / f"{stamp}_{protocol.kind}_{name}.h5" for protocol, name in zip(protocols, instruments)]
    return cells_in_threads([(spec, name, path, job(spec, name, path))
                             for spec, name, path in zip(specs, instruments, paths)], control=control)


def run_stamp() -> str:
    """The UTC time that names the run files of a multi-cell run (``20261121T201124Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def check_distinct(instruments: list[str]) -> None:
    """Raises FileError if two cells name the same instrument."""
    doubles = sorted({name for name in instruments if instruments.count(name) > 1})
    if doubles:
        raise FileError([f"instrument {name!r} is named by more than one cell; give each cell its own "
                         f"(protocol.yaml@instrument)" for name in doubles])


def cells_in_threads(jobs: list[tuple[CellSpec, str, Path, Any]], *, control: bool = False) -> list[CellResult]:
    """Run ``(spec, instrument, run file, job)`` side by side, each ``job(on_engine)``
    (returning a :class:`SessionResult`) in its own thread. Ctrl-C asks every engine to stop;
    a job's one-line failure (bad file, unreachable instrument …) becomes its
    :attr:`CellResult.error`. With ``control`` each engine serves a control socket beside its
    run file (``<file>.ctl``) until its run ends, so the GUI can stop or pause that cell alone."""
    from labctl.app.control import ControlServer, default_socket_path

    engines: list[Any] = []

    def run_one(job: Any, path: Path) -> Any:
        with ExitStack() as servers:
            def on_engine(engine: Any) -> None:
                engines.append(engine)
                if control:
                    servers.enter_context(ControlServer(engine, default_socket_path(path), run_file=path))
            return job(on_engine)

    with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="cell") as pool:
        futures = [pool.submit(run_one, job, path) for _spec, _name, path, job in jobs]
        pending = set(futures)
        while pending:
            try:
                _, pending = wait(pending, timeout=0.5)
            except KeyboardInterrupt:
                for engine in list(engines):
                    engine.request_stop("interrupted (Ctrl-C)")
    cells = []
    for (spec, name, _path, _job), future in zip(jobs, futures):
        try:
            cells.append(CellResult(spec, name, future.result(), None))
        except (FileError, InstrumentError, RunFileError, FileExistsError, OSError) as exc:
            cells.append(CellResult(spec, name, None, str(exc).replace("\n", "; ")))
    return cells
