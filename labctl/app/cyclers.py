"""Protocols on battery cyclers: delegated runs, simulated cyclers, and reattaching after a crash.

The session of a run whose instrument is a cycler channel (station driver ``neware`` or
``biologic``, or ``--simulate --cycler NAME``): compile the protocol's step program to the
cycler's native program, open the channel, create the run file (recording that the run is
delegated: cycler, channel address, the native program text; every reading carries the
cycler's test id and point number, the download cursor), and let
:class:`~labctl.engine.delegated.DelegatedEngine` start and follow the test. The analysis is
the protocol's own, on the step table, as for a sourcemeter run
(:func:`labctl.app.run._finish`).

A simulated cycler runs in this process on the run's clock (``--speed max`` included) and
serves every channel of a multi-channel run from one simulator, one run file per channel.
Since it dies with the process, only runs on a cycler outside the process — a real one, or
``labctl sim neware`` named in a station file — can be reattached by :func:`resume_delegated`.

This module sits beside :mod:`labctl.app.run` at the top of the dependency order.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from drivers.base import CyclerChannel, InstrumentError
from drivers.sim.physics.cell import CellParameters
from labctl.engine.clock import Clock, ScaledClock, VirtualClock, clock_for_speed
from labctl.engine.delegated import DELEGATED_COLUMNS, DelegatedEngine
from labctl.events import Subscriber
from labctl.steps import Loop, StepProgram
from labctl.app.notify import load_notify_config
from labctl.station import InstrumentConfig, Station, load_station, open_cycler
from labctl.store import RunFile, RunFileError, RunFileWriter
from labctl.store.recover import RESUMABLE, attach_point
from labctl.yamlfile import FileError
from protocols import ProtocolBase, load_protocol, load_protocol_text

#: The ``--cycler`` choices of simulated runs.
SIMULATED_CYCLERS = ("neware", "biologic")

#: Opens a station's cycler channel (:func:`labctl.station.open_cycler`, or a simulator's own).
Opener = Callable[[InstrumentConfig], CyclerChannel]


@dataclass(frozen=True)
class CyclerKind:
    """What a session needs of one cycler vendor: its compiler (step program, remark →
    native program text, raising ValueError subclasses naming the step it cannot express),
    the name of that native format, and how to serve simulated channels (cells, clock, exit
    stack → one station address per cell, and the opener of those addresses, None when the
    station's driver reaches them as it would a real cycler)."""

    compile: Callable[[StepProgram, str], str]
    native_format: str
    serve: Callable[[list[CellParameters], Clock, ExitStack], tuple[list[str], Opener | None]]


def _serve_neware(cells: list[CellParameters], clock: Clock, stack: ExitStack) -> tuple[list[str], None]:
    """A simulated NEWARE BTS with one channel per cell on a loopback port (closed by ``stack``),
    reached over TCP like a real one."""
    from drivers.sim.neware import BtsServer, NewareBtsSimulator

    sim = NewareBtsSimulator(len(cells), cell=cells, now=clock.now)
    server = BtsServer(sim)
    stack.callback(server.close)
    host, port = server.address
    return [f"{host}:{port}/{devid}-{unit}-{chl}" for (_type, devid, unit, chl) in sim.channels], None


def _serve_biologic(cells: list[CellParameters], clock: Clock, stack: ExitStack) -> tuple[list[str], Opener]:
    """A simulated BioLogic instrument with one channel per cell (at most 16), reached through
    its Development-Package calls in this process (BioLogic's wire is a DLL)."""
    from drivers.sim.biologic import SimulatedBackend
    from drivers.biologic import BiologicCycler

    if len(cells) > 16:
        raise FileError([f"--channels: a BioLogic instrument has at most 16 channels, not {len(cells)}"])
    backend = SimulatedBackend(len(cells), cell=cells, now=clock.now)
    return ([f"{backend.address}/{k + 1}" for k in range(len(cells))],
            lambda config: BiologicCycler.open(config.address, backend=backend))


def _neware_compile(program: StepProgram, remark: str) -> str:
    from drivers.neware import compile_native

    return compile_native(program, remark=remark)


def _biologic_compile(program: StepProgram, remark: str) -> str:
    from drivers.biologic import compile_native

    return compile_native(program, remark=remark)


def cycler_kind(driver: str) -> CyclerKind:
    """The :class:`CyclerKind` of a station driver.

    Raises:
        FileError: no such cycler here.
    """
    if driver == "neware":
        from drivers.neware import NATIVE_FORMAT

        return CyclerKind(_neware_compile, NATIVE_FORMAT, _serve_neware)
    if driver == "biologic":
        from drivers.biologic import NATIVE_FORMAT as BIOLOGIC_FORMAT

        return CyclerKind(_biologic_compile, BIOLOGIC_FORMAT, _serve_biologic)
    raise FileError([f"cycler {driver!r}: not available (known: {', '.join(SIMULATED_CYCLERS)})"])


def uses_cycler(station_path: str | Path, instrument: str) -> bool:
    """Whether ``instrument`` of the station file is a cycler channel (False if it has no such
    instrument: the sourcemeter session then names the problem)."""
    station = load_station(station_path)
    config = station.instruments.get(instrument)
    return config is not None and config.is_cycler


def poll_interval_s(clock: Clock, program: StepProgram, config_poll_s: float, n_channels: int = 1) -> float:
    """Clock seconds between polls: the station's in real time; a quarter of a wall second on
    a scaled clock; on a virtual clock (``--speed max``, where every engine's sleep advances
    the shared time) about 1000 points per channel and poll."""
    if isinstance(clock, VirtualClock):
        return max(1.0, 1000.0 * _shortest_record_interval_s(program) / n_channels)
    if clock.speed == 1.0:
        return config_poll_s
    return 0.25 * clock.speed


def _shortest_record_interval_s(program: StepProgram) -> float:
    return min(step.record_interval_s for entry in program.steps
               for step in (entry.steps if isinstance(entry, Loop) else [entry]))


def _compile(protocol: ProtocolBase, program: StepProgram, kind: CyclerKind, driver: str) -> str:
    try:
        return kind.compile(program, protocol.name)
    except ValueError as exc:  # StepFileError, BiologicCompileError: name the step
        raise FileError([f"{protocol.instrument}: the protocol cannot run on a {driver} cycler: {exc}"]) from None


# -- one channel ------------------------------------------------------------------------------------

def _identify(cycler: CyclerChannel) -> str:
    """The channel's identification for the run file; its address if it will not say."""
    try:
        return cycler.idn
    except InstrumentError:
        return f"cycler channel {cycler.address}"


def run_delegated(protocol: ProtocolBase, protocol_text: str, protocol_path: str | Path, *, station: Station,
                  station_source: str, clock: Clock, output: str | Path | None, simulated: bool, speed: float,
                  operator: str | None = None, subscribers: Iterable[Subscriber] = (), on_engine: Any = None,
                  notify_path: str | Path | None = None, step_file_dir: str | Path | None = None,
                  simulated_cell: CellParameters | None = None, n_channels: int = 1,
                  opener: Opener | None = None) -> Any:
    """Run ``protocol`` on the cycler channel the station names ``protocol.instrument``, into
    its own run file; returns a :class:`labctl.app.run.SessionResult`.

    Raises:
        FileError: the protocol cannot be compiled for the cycler, or the station cannot work.
        drivers.base.InstrumentLost / InstrumentError: the cycler cannot be reached or refuses.
        FileExistsError: ``output`` exists.
    """
    from labctl.app.run import _finish, _notifiers, default_output_path, run_attrs

    config = station.instrument(protocol.instrument, station_source)
    kind = cycler_kind(config.driver)
    program = protocol.program()
    native = _compile(protocol, program, kind, config.driver)
    notify = load_notify_config(notify_path) if notify_path is not None else station.notify
    path = Path(output) if output is not None else default_output_path(protocol)
    if path.exists():
        raise FileExistsError(f"{path}: a run file already exists there; choose another -o")
    with ExitStack() as stack:
        cycler = opener(config) if opener is not None else open_cycler(
            config, step_file_dir=step_file_dir, journal_path=journal_path(path))
        stack.callback(cycler.close)
        attrs = run_attrs(protocol, protocol_path, protocol_text, simulated=simulated, speed=speed, station=station,
                          instrument_idn=_identify(cycler), operator=operator,
                          delegated={"driver": config.driver, "address": config.address,
                                     "instrument": protocol.instrument, "native_format": kind.native_format},
                          native_program=native,
                          **({"simulated_cell": asdict(simulated_cell)} if simulated_cell is not None else {}))
        notifiers = _notifiers(stack, notify, path)
        writer = RunFileWriter(path, [protocol.instrument], attrs, extra_columns=DELEGATED_COLUMNS)
        stack.callback(writer.close)
        engine = _engine(cycler, clock, protocol, program, config, writer, [*subscribers, *notifiers], path,
                         n_channels)
        if on_engine is not None:
            on_engine(engine)
        try:
            outcome, interrupted = engine.run(program, native_program=native), False
        except KeyboardInterrupt:
            outcome, interrupted = engine.last_outcome, True
        return _finish(protocol, writer, outcome, interrupted)


def _engine(cycler: CyclerChannel, clock: Clock, protocol: ProtocolBase, program: StepProgram,
            config: InstrumentConfig, writer: RunFileWriter, subscribers: list[Subscriber], path: Path,
            n_channels: int) -> DelegatedEngine:
    return DelegatedEngine(cycler, clock, channel=protocol.instrument, subscribers=[writer, *subscribers],
                           poll_interval_s=poll_interval_s(clock, program, config.poll_interval_s, n_channels),
                           reconnect=config.on_lost, label=path.stem)


def run_cycler_protocol(protocol: ProtocolBase, protocol_path: str | Path, *, station_path: str | Path | None,
                        simulate: bool, cycler: str | None, speed: float, output: str | Path | None,
                        operator: str | None, cell_overrides: dict[str, Any] | None,
                        subscribers: Iterable[Subscriber], on_engine: Any, notify_path: str | Path | None) -> Any:
    """One protocol on one cycler channel: a station's (``station_path``) or a simulated
    ``cycler``'s; same arguments, result and errors as :func:`labctl.app.run.run_protocol`,
    which hands cycler runs over to this."""
    protocol_text = Path(protocol_path).read_text(encoding="utf-8")
    if not simulate:
        if station_path is None or cycler is not None:
            raise FileError(["--cycler simulates a cycler: give it with --simulate, not with a station file"])
        if speed != 1.0:
            raise FileError(["--speed applies to simulated runs only; real instruments run in real time"])
        return run_delegated(protocol, protocol_text, protocol_path, station=load_station(station_path),
                             station_source=str(station_path), clock=ScaledClock(1.0), output=output,
                             simulated=False, speed=1.0, operator=operator, subscribers=subscribers,
                             on_engine=on_engine, notify_path=notify_path)
    cells = [_simulated_cell(protocol, protocol_path, cell_overrides)]
    with ExitStack() as stack:
        clock = clock_for_speed(speed)
        station, opener = _simulated_station(cycler or "neware", [protocol.instrument], cells, clock, stack)
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="labctl-steps-"))
        return run_delegated(protocol, protocol_text, protocol_path, station=station,
                             station_source="simulated station", clock=clock, output=output, simulated=True,
                             speed=speed, operator=operator, subscribers=subscribers, on_engine=on_engine,
                             notify_path=notify_path, step_file_dir=folder, simulated_cell=cells[0], opener=opener)


def _simulated_cell(protocol: ProtocolBase, protocol_path: str | Path, overrides: dict[str, Any] | None,
                    seed_offset: int = 0) -> CellParameters:
    try:
        cell = protocol.simulated_cell_parameters(**(overrides or {}))
    except (TypeError, ValueError) as exc:
        raise FileError([f"{Path(protocol_path).name}: simulated_cell: {exc}"]) from None
    return replace(cell, seed=cell.seed + seed_offset)


def _simulated_station(cycler: str, names: list[str], cells: list[CellParameters], clock: Clock,
                       stack: ExitStack) -> tuple[Station, Opener | None]:
    """A simulated ``cycler`` with one channel per cell, the station naming them ``names``, and
    the opener of its channels (None: the station's driver reaches them)."""
    if cycler not in SIMULATED_CYCLERS:
        raise FileError([f"--cycler: unknown cycler {cycler!r}; known: {', '.join(SIMULATED_CYCLERS)}"])
    addresses, opener = cycler_kind(cycler).serve(cells, clock, stack)
    station = Station(instruments={name: InstrumentConfig(driver=cycler, address=address)
                                   for name, address in zip(names, addresses)})
    return station, opener


def journal_path(run_path: Path) -> Path:
    """Where a BioLogic channel's point journal lives beside its run file."""
    return run_path.with_name(run_path.name + ".bljournal")


# -- several channels of one simulated cycler ---------------------------------------------------------

def run_simulated_cycler_cells(specs: list[Any], *, cycler: str, speed: float, output_dir: str | Path = "runs",
                               subscribers_for: Any = None, notify_path: str | Path | None = None,
                               cells: list[CellParameters] | None = None, control: bool = False) -> list[Any]:
    """Several cells on the channels of one simulated ``cycler``, each in its own thread and
    run file (``<output_dir>/<UTC time>_<kind>_<instrument>.h5``); a short or a failure ends
    its cell alone, Ctrl-C stops every channel; ``control``: a control socket per run file. ``specs`` are
    :class:`labctl.app.run.CellSpec`; a spec without an instrument gets ``cyc<k>`` (k from 1).
    Each channel's cell is its protocol's ``simulated_cell`` with the seed + k (k from 0), or
    ``cells[k]``.

    Returns :class:`labctl.app.run.CellResult` per spec, in order.

    Raises:
        FileError: a protocol file is invalid or cannot be compiled for the cycler, or two
            specs name the same instrument (nothing has started then).
    """
    from labctl.app.run import cells_in_threads, check_distinct, run_stamp

    protocols = [load_protocol(spec.protocol_path) for spec in specs]
    names = [spec.instrument or f"cyc{k + 1}" for k, spec in enumerate(specs)]
    check_distinct(names)
    protocols = [p.model_copy(update={"instrument": name}) for p, name in zip(protocols, names)]
    texts = [Path(spec.protocol_path).read_text(encoding="utf-8") for spec in specs]
    if cells is None:
        cells = [_simulated_cell(p, spec.protocol_path, None, k) for k, (p, spec) in enumerate(zip(protocols, specs))]
    kind = cycler_kind(cycler) if cycler in SIMULATED_CYCLERS else None
    for protocol in protocols:  # refuse a protocol the cycler cannot run before anything starts
        if kind is not None:
            _compile(protocol, protocol.program(), kind, cycler)
    stamp = run_stamp()
    with ExitStack() as stack:
        clock = clock_for_speed(speed)
        station, opener = _simulated_station(cycler, names, cells, clock, stack)
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="labctl-steps-"))

        paths = [Path(output_dir) / f"{stamp}_{p.kind}_{name}.h5" for p, name in zip(protocols, names)]

        def job(k: int) -> Callable[[Any], Any]:
            def run(on_engine: Any) -> Any:
                return run_delegated(
                    protocols[k], texts[k], specs[k].protocol_path, station=station,
                    station_source="simulated station", clock=clock, output=paths[k], simulated=True,
                    speed=speed, subscribers=subscribers_for(names[k]) if subscribers_for else (),
                    on_engine=on_engine, notify_path=notify_path, step_file_dir=folder, simulated_cell=cells[k],
                    n_channels=len(specs), opener=opener)
            return run

        return cells_in_threads([(spec, name, paths[k], job(k)) for k, (spec, name) in enumerate(zip(specs, names))],
                                control=control)


# -- resume -----------------------------------------------------------------------------------------

def is_delegated(path: str | Path) -> bool:
    """Whether the run file at ``path`` is a delegated (cycler) run."""
    with RunFile(path, swmr=True) as run:
        return bool(run.attrs.get("delegated"))


def resume_delegated(path: str | Path, *, station_path: str | Path | None = None, speed: float | None = None,
                     subscribers: Iterable[Subscriber] = (), on_engine: Any = None,
                     notify_path: str | Path | None = None) -> Any:
    """Reattach to the cycler test of a delegated run whose PC side died or lost the cycler,
    collect every point the channel stored meanwhile (from the file's last cycler point on)
    and follow the test to its end, in the same file. Returns a
    :class:`labctl.app.run.SessionResult`.

    The cycler and channel are the ones the file names (a station file given here replaces
    the stored station, e.g. after the BTS PC moved; the instrument keeps its name).

    Raises:
        RunFileError: not a delegated run file, its run ended for a reason of the cell's, or it
            ran on a simulated cycler that lived (and died) in the process that ran it.
        FileError, drivers.base.InstrumentLost, InstrumentError: as :func:`run_delegated`.
    """
    from labctl.app.run import _finish, _notifiers, reopen_for_resume

    path = Path(path)
    with RunFile(path, swmr=True) as run:
        attrs = run.attrs
        if attrs.get("status") not in RESUMABLE:
            raise RunFileError(f"{path}: the run ended with status {attrs.get('status')!r} "
                               f"({attrs.get('end_reason')}); only interrupted or crashed runs resume")
        delegated = json.loads(attrs["delegated"])
        channel = delegated["instrument"]
        point = attach_point(run, channel)
    if attrs.get("simulated"):
        raise RunFileError(f"{path}: its simulated cycler ran inside the process that ran it and is gone; to "
                           "try a crash and reattach, serve one with `labctl sim neware` and name it in a station file")
    if speed not in (None, 1.0):
        raise FileError(["--speed applies to simulated runs only; real instruments run in real time"])
    protocol = load_protocol_text(attrs["protocol_text"], Path(attrs.get("protocol_path") or "protocol.yaml").name)
    protocol = protocol.model_copy(update={"instrument": channel})
    if station_path is not None:
        station, source = load_station(station_path), str(station_path)
    else:
        station, source = Station.model_validate(yaml.safe_load(attrs["station_text"])), f"{path.name}: station_text"
    config = station.instrument(channel, source)
    notify = load_notify_config(notify_path) if notify_path is not None else station.notify
    program = protocol.program()
    clock = ScaledClock(1.0)
    with ExitStack() as stack:
        cycler = open_cycler(config, step_file_dir=config.step_file_dir or tempfile.gettempdir(),
                             journal_path=journal_path(path))
        stack.callback(cycler.close)
        notifiers = _notifiers(stack, notify, path)
        writer = reopen_for_resume(stack, path, point.last_test_time_s, channel, point.step_index,
                                   f"reattached to test {point.test_id} on {cycler.address} "
                                   f"after its point {point.last_seq_id}")
        engine = _engine(cycler, clock, protocol, program, config, writer, [*subscribers, *notifiers], path, 1)
        if on_engine is not None:
            on_engine(engine)
        try:
            outcome, interrupted = engine.run(program, native_program=attrs["native_program"], attach=point), False
        except KeyboardInterrupt:
            outcome, interrupted = engine.last_outcome, True
        return _finish(protocol, writer, outcome, interrupted)


__all__ = ["CyclerKind", "SIMULATED_CYCLERS", "cycler_kind", "is_delegated", "poll_interval_s", "resume_delegated",
           "run_cycler_protocol", "run_delegated", "run_simulated_cycler_cells", "uses_cycler"]
