"""One run of a protocol file, start to finish, or resumed: the one run path the CLI, the GUI
and the multi-cell runner share.

:func:`run_protocol` loads the protocol, reaches its instruments — a station file's, or the
simulated station of :mod:`labctl.app.simulated` reached through the real drivers — creates
the run file, runs the step program with the executor the instrument calls for (a cycler
channel: :class:`~labctl.engine.DelegatedExecutor`; a sourcemeter, with an AFM controller for
a tip electrode: :class:`~labctl.engine.SoftwareTimedExecutor`), with the run file writer,
notifiers and any extra subscribers, then stores the protocol's results.
:func:`resume_run` continues a killed, interrupted or instrument-lost run in its own file.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import tempfile
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from drivers.base import InstrumentError
from labctl.app import simulated
from labctl.app.guardian import Guardian
from labctl.app.notify import NotifyConfig, load_notify_config, notifiers_for
from labctl.engine import (
    DELEGATED_COLUMNS,
    AttachPoint,
    Clock,
    DelegatedExecutor,
    ResumePoint,
    RunLifecycle,
    RunOutcome,
    ScaledClock,
    SoftwareTimedExecutor,
    VirtualClock,
    clock_for_speed,
)
from labctl.events import Detected, Subscriber
from labctl.station import InstrumentConfig, Station, load_station, open_instrument, open_potentiostat
from labctl.steps import SOFTWARE_ONLY, StepProgram, program_kinds
from labctl.store import RunFile, RunFileError, RunFileWriter, live_owner, write_results
from labctl.store.lock import owner_error
from labctl.store.recover import RESUMABLE, attach_point, resume_point
from labctl.yamlfile import FileError, line_of, read_yaml
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
    return Path(directory) / f"{run_stamp()}_{protocol.kind}.h5"


def run_stamp() -> str:
    """The UTC time that names run files (``20261121T201124Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def check_protocol(protocol: ProtocolBase, source: str, *, simulate: bool, cycler: str | None = None,
                   line_of: Any = None) -> StepProgram:
    """The protocol's step program, and (for a simulated run) its simulation section checked.

    ``line_of(field path)`` gives a field's line in the protocol file, for the messages.

    Raises:
        FileError: one line per problem, naming ``source`` and the field.
    """
    try:
        program = protocol.program()
    except ValidationError as exc:  # fields that pass alone but make a step no instrument can run
        raise FileError([f"{source}: the step program it expands to: {'.'.join(map(str, e['loc']))}: "
                         f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()[:5]]) from None
    except ValueError as exc:
        raise FileError([f"{source}: the step program it expands to: {exc}"]) from None
    if simulate and program.electrode == "cell":
        simulated.simulated_cell(protocol, source, line_of=line_of)
    elif simulate:
        simulated.junction(protocol, source, line_of=line_of)
    if cycler is not None and program.electrode != "cell":
        raise FileError([f"{source}: a {protocol.kind} run needs a sourcemeter, not a cycler (--cycler)"])
    return program


def load_checked(path: str | Path, *, simulate: bool = True, cycler: str | None = None) -> tuple[ProtocolBase, StepProgram]:
    """Load a protocol file and check everything a run of it needs before any instrument is
    touched: the schema, the expanded program and its limits, and (``simulate``) the
    simulation section. Returns the protocol and its program.

    Raises:
        FileError: one line per problem, ``<file>:<line>: <field>: <problem>``.
    """
    protocol = load_protocol(path)
    _data, node, _text = read_yaml(path)
    program = check_protocol(protocol, Path(path).name, simulate=simulate, cycler=cycler,
                             line_of=lambda loc: line_of(node, loc))
    return protocol, program


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


@dataclass
class Bench:
    """Where one run happens: its protocol, station and clock, how it was reached, and what
    the session adds to it (``open_options`` for the instrument's driver, ``attrs`` for the
    run file)."""

    protocol: ProtocolBase
    protocol_path: Path
    protocol_text: str
    station: Station
    source: str
    clock: Clock
    simulated: bool
    speed: float
    open_options: dict[str, Any]
    attrs: dict[str, Any]
    n_channels: int = 1


def poll_interval_s(clock: Clock, program: StepProgram, config_poll_s: float, n_channels: int = 1) -> float:
    """Clock seconds between a cycler's polls: the station's in real time; a quarter of a wall
    second on a scaled clock; on a virtual clock (``--speed max``, where every executor's
    sleep advances the shared time) about 1000 points per channel and poll."""
    if isinstance(clock, VirtualClock):
        return max(1.0, 1000.0 * (program.shortest_record_interval_s or 1.0) / n_channels)
    if clock.speed == 1.0:
        return config_poll_s
    return 0.25 * clock.speed


def journal_path(run_path: Path) -> Path:
    """Where a BioLogic channel's point journal lives beside its run file."""
    return run_path.with_name(run_path.name + ".bljournal")


def _identify(instrument: Any) -> str:
    """An instrument's identification for the run file; its address if it will not say."""
    try:
        return str(getattr(instrument, "idn", ""))
    except InstrumentError:
        return f"{getattr(instrument, 'address', 'instrument')}"


def _notifiers(stack: ExitStack, config: NotifyConfig | None, path: Path) -> list[Subscriber]:
    """The notifiers ``config`` asks for; closed (queued e-mail sent, bounded) when the run is over."""
    notifiers = notifiers_for(config, path)
    for notifier in notifiers:
        stack.callback(notifier.close)
    return notifiers


@dataclass
class _Opened:
    """A run's instruments, open (closed by the caller's exit stack), and how to run on them:
    ``make(subscribers)`` builds the executor, ``start(executor)`` runs the program; ``idn``,
    ``attrs`` and ``columns`` go into the run file; ``guarded`` are (name, config, role) of the
    instruments a guardian watches (real instruments outside this process only)."""

    idn: str
    attrs: dict[str, Any]
    columns: tuple
    make: Any
    start: Any
    guarded: list[tuple[str, InstrumentConfig, str]]


def _open_cycler(bench: Bench, config: InstrumentConfig, program: StepProgram, path: Path, stack: ExitStack,
                 resume: Any, native_program: str | None) -> _Opened:
    """A cycler channel running the compiled program (delegated execution)."""
    protocol = bench.protocol
    native = native_program or _compile(protocol, program, config)
    if bench.simulated:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="labctl-steps-"))
    else:  # a reattach writes no step file: any folder will do if the station has none
        folder = config.step_file_dir or (tempfile.gettempdir() if resume is not None else None)
    cycler = open_instrument(config, step_file_dir=folder, journal_path=journal_path(path), **bench.open_options)
    stack.callback(cycler.close)
    attrs = {"delegated": {"driver": config.driver, "address": config.address, "instrument": protocol.instrument,
                           "native_format": config.entry.native_format},
             "native_program": native}

    def make(subscribers: list[Subscriber]) -> RunLifecycle:
        return DelegatedExecutor(cycler, bench.clock, channel=protocol.instrument, subscribers=subscribers,
                                 poll_interval_s=poll_interval_s(bench.clock, program, config.poll_interval_s,
                                                                 bench.n_channels),
                                 reconnect=config.on_lost, label=path.stem)

    return _Opened(_identify(cycler), attrs, DELEGATED_COLUMNS, make,
                   lambda executor: executor.run(program, native_program=native, attach=resume), [])


def _open_source(bench: Bench, config: InstrumentConfig, program: StepProgram, kinds: set[str],
                 stack: ExitStack, resume: Any) -> _Opened:
    """A sourcemeter (or a cycler channel as a potentiostat), with the AFM a tip needs and the
    chamber temperature steps need (software-timed execution)."""
    protocol, station, source = bench.protocol, bench.station, bench.source
    smu = open_potentiostat(config, **bench.open_options) if config.is_cycler else \
        open_instrument(config, **bench.open_options)
    stack.callback(smu.close)
    if "impedance" in kinds and not hasattr(smu, "measure_impedance"):
        raise FileError([f"{source}: instruments: {protocol.instrument}: a {config.driver} cannot measure "
                         "impedance; the protocol's impedance steps need a BioLogic channel"])
    attrs: dict[str, Any] = {}
    guarded = [(protocol.instrument, config, "potentiostat" if config.is_cycler else "sourcemeter")]
    afm = chamber = None
    if program.electrode == "tip":
        afm_config = station.instrument(protocol.afm, source, role="afm")
        afm = open_instrument(afm_config)
        stack.callback(afm.close)
        attrs["afm_idn"] = _identify(afm)
        guarded.append((protocol.afm, afm_config, "afm"))
    if "set_temperature" in kinds:
        chamber = open_instrument(station.instrument(getattr(protocol, "chamber", "chamber"), source, role="chamber"))
        stack.callback(chamber.close)
        attrs["chamber_idn"] = _identify(chamber)

    def make(subscribers: list[Subscriber]) -> RunLifecycle:
        return SoftwareTimedExecutor(smu, bench.clock, afm=afm, chamber=chamber, channel=protocol.instrument,
                                     subscribers=subscribers, reconnect=config.on_lost)

    return _Opened(_identify(smu), attrs, (), make, lambda executor: executor.run(program, resume=resume), guarded)


def execute(bench: Bench, path: Path, *, output_exists_ok: bool, operator: str | None, subscribers: Iterable[Subscriber],
            on_engine: Any, notify: NotifyConfig | None, resume: ResumePoint | AttachPoint | None = None,
            resume_message: str = "", native_program: str | None = None) -> SessionResult:
    """The one run path: open the protocol's instruments on ``bench``, create the run file at
    ``path`` (or, with ``resume``, reopen it and record the ``resumed`` event), run the program
    with the executor the instrument calls for — a cycler channel runs it delegated unless it
    has steps only software timing can do — under a guardian for real instruments, and store
    the results.

    Raises:
        FileExistsError: ``path`` exists and ``output_exists_ok`` is False.
        FileError: the cycler cannot run the program, or the station cannot work.
        drivers.base.InstrumentLost / InstrumentError: an instrument cannot be reached or refuses.
    """
    protocol, station, source = bench.protocol, bench.station, bench.source
    program = protocol.program()
    config = station.instrument(protocol.instrument, source)
    kinds = program_kinds(program)
    software_only = sorted(kinds & SOFTWARE_ONLY)
    if software_only and config.is_cycler and config.entry.potentiostat is None:
        raise FileError([f"{source}: instruments: {protocol.instrument}: a {config.driver} cycler cannot run "
                         f"{', '.join(software_only)} steps (a BioLogic channel or a sourcemeter can)"])
    if not output_exists_ok and path.exists():
        raise FileExistsError(f"{path}: a run file already exists there; choose another -o")
    with ExitStack() as stack:
        if config.is_cycler and not software_only:
            opened = _open_cycler(bench, config, program, path, stack, resume, native_program)
        else:
            opened = _open_source(bench, config, program, kinds, stack, resume)
        guardian: Guardian | None = None
        if opened.guarded and not bench.simulated:  # a simulator dies with this process; real instruments do not
            guardian = stack.enter_context(Guardian(path))
            for name, instrument_config, role in opened.guarded:
                guardian.watch(name, instrument_config, role=role, notify=notify or station.notify)
        notifiers = _notifiers(stack, notify if notify is not None else station.notify, path)
        if resume is None:
            writer = RunFileWriter(path, [protocol.instrument], run_attrs(
                protocol, bench.protocol_path, bench.protocol_text, simulated=bench.simulated, speed=bench.speed,
                station=station, instrument_idn=opened.idn, operator=operator, **bench.attrs, **opened.attrs),
                extra_columns=opened.columns, spectra="impedance" in kinds)
        else:
            writer = RunFileWriter.append(path)
            t_s = resume.t_offset_s if isinstance(resume, ResumePoint) else resume.last_test_time_s
            writer(Detected(t_s, protocol.instrument, "resumed", resume_message + (
                "; the file was recovered after its writer died" if writer.recovered else ""), resume.step_index))
        stack.callback(writer.close)
        executor = opened.make([writer, *subscribers, *notifiers])
        if on_engine is not None:
            on_engine(executor)
        try:
            outcome, interrupted = opened.start(executor), False
        except KeyboardInterrupt:
            outcome, interrupted = executor.last_outcome, True
        if guardian is not None and executor.made_safe:
            guardian.safe(*(name for name, _config, _role in opened.guarded))
        writer.close()
        with RunFile(writer.path) as run_file:
            results = protocol.results(run_file, protocol.instrument)
        results = {**results, "run_status": outcome.status, "run_end_reason": outcome.reason}
        write_results(writer.path, results)
        return SessionResult(writer.path, outcome, results, protocol.summary(results), interrupted)


def _compile(protocol: ProtocolBase, program: StepProgram, config: InstrumentConfig) -> str:
    """The cycler's native program for ``program``.

    Raises:
        FileError: the cycler cannot express a step (names it).
    """
    try:
        return config.entry.compile(program, protocol.name)
    except ValueError as exc:  # StepFileError, BiologicCompileError: name the step
        raise FileError([f"{protocol.instrument}: the protocol cannot run on a {config.driver} cycler: {exc}"]) from None


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
        station_path: station file naming the instruments' drivers and addresses (hardware).
        simulate: start simulated instruments (:mod:`labctl.app.simulated`) instead.
        speed: clock speed-up for simulated runs (``inf`` = as fast as possible).
        output: run file to create; default ``runs/<timestamp>_<kind>.h5``.
        operator: overrides the protocol's ``operator``.
        cell_overrides: simulated-cell parameters (e.g. ``{"ccd_mA_cm2": 0.5, "seed": 3}``;
            ``preset`` puts a whole preset cell in).
        subscribers: extra event consumers (progress bar, live plot, notifier …).
        on_engine: called with the executor before it runs (e.g. to wire a Stop button).
        notify_path: notification file (:class:`labctl.app.notify.NotifyConfig` YAML)
            replacing the station's ``notify:`` section.
        instrument: run on this station instrument instead of the protocol's ``instrument``
            (one protocol file for several cells); it also names the channel.
        cycler: with ``simulate``, run on a channel of this simulated battery cycler
            (``neware``, ``biologic``) instead of the simulated 2400. A station instrument
            whose driver is a cycler runs delegated as well.

    Raises:
        FileError: bad protocol, station or notification file, or bad options (one line per problem).
        drivers.base.InstrumentLost: the instrument cannot be reached (names the address).
        FileExistsError: ``output`` exists.

    A Ctrl-C during the run ends it like any other ending (output off, file closed and
    analysed); the result then has ``interrupted=True``.
    """
    if simulate == (station_path is not None):
        raise FileError(["give either a station file (--station) or --simulate"])
    if cycler is not None and not simulate:
        raise FileError(["--cycler simulates a cycler: give it with --simulate, not with a station file"])
    if not simulate and speed != 1.0:
        raise FileError(["--speed applies to simulated runs only; real instruments run in real time"])
    protocol, _program = load_checked(protocol_path, simulate=simulate, cycler=cycler)
    if instrument is not None:
        protocol = protocol.model_copy(update={"instrument": instrument})
    source = Path(protocol_path).name
    protocol_text = Path(protocol_path).read_text(encoding="utf-8")
    notify = load_notify_config(notify_path) if notify_path is not None else None
    # A simulated cell on a sourcemeter in this process: paced time, never longer than planned.
    clock = clock_for_speed(speed, paced=simulate and cycler is None and _program.electrode == "cell")
    path = Path(output) if output is not None else default_output_path(protocol)
    with ExitStack() as stack:
        if simulate:
            sim = simulated.start_station(protocol, source, clock, stack, cycler=cycler, overrides=cell_overrides)
            station, station_source, options, attrs = sim.station, "simulated station", sim.open_options, sim.attrs
        else:
            station, station_source, options, attrs = load_station(station_path), str(station_path), {}, {}
        bench = Bench(protocol, Path(protocol_path), protocol_text, station, station_source, clock, simulate, speed,
                      options, attrs)
        return execute(bench, path, output_exists_ok=False, operator=operator, subscribers=subscribers,
                        on_engine=on_engine, notify=notify)


def stored_protocol(attrs: dict[str, Any]) -> ProtocolBase:
    """The protocol a run file stores (its text, named as its file was).

    Raises:
        FileError: the stored text does not load.
    """
    name = Path(str(attrs.get("protocol_path") or "protocol.yaml")).name
    return load_protocol_text(str(attrs.get("protocol_text", "")), name)


def stored_results(run: RunFile) -> dict[str, Any]:
    """The stored protocol's results of a run file's first channel, as a finished run gets them
    (``labctl close`` stores them in a killed file).

    Raises:
        FileError: the stored protocol does not load.
    """
    return dict(stored_protocol(run.attrs).results(run, run.channels[0]))


def not_resumable(attrs: dict[str, Any]) -> str | None:
    """Why a run whose writer died cannot be resumed (then ``labctl close`` finishes it), or
    None: a c-AFM or memristor run (a cut sweep cannot continue, the tip's contact is lost), a
    run on a simulated cycler that lived in the dead process, a stored protocol that does not
    load."""
    if attrs.get("delegated") and attrs.get("simulated"):
        return "its simulated cycler ran inside the process that ran it and is gone"
    try:
        protocol = stored_protocol(attrs)
    except FileError:
        return "its stored protocol does not load"
    if protocol.program().electrode != "cell":
        return (f"a {protocol.kind} run does not resume (a cut sweep cannot be continued and the tip's contact is "
                "lost)")
    return None


def killed_run_advice(path: Path, attrs: dict[str, Any], ended_in_file: bool = False) -> str:
    """What to do with a run file whose writer died: ``labctl resume`` or ``labctl close``."""
    why = "the run had ended; only its status was not written" if ended_in_file else not_resumable(attrs)
    if why is None:
        return f"the run's writer died before finishing the file; resume with `labctl resume {path}`"
    return f"the run's writer died before finishing the file ({why}); finish with `labctl close {path}`"


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
    given here replaces the stored one, e.g. after an instrument moved). On a sourcemeter,
    readings, step and cycle numbers and test time continue where the file ends; the gap is
    recorded as a ``resumed`` event; on real instruments test time includes the wall-clock
    gap, on a simulated run the gap times the clock speed. On a cycler, the run reattaches to
    the channel's test and collects every point it stored meanwhile. Notifications:
    ``notify_path``, else the station's ``notify:`` section.

    Raises:
        RunFileError: not a run file, its run ended for a reason that forbids resuming
            (completed, short, safety trip …), a sweep run (a cut sweep cannot continue), or a
            cycler run whose simulated cycler lived (and died) in the process that ran it.
        FileError, drivers.base.InstrumentLost: as :func:`run_protocol`.
    """
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such file")
    owner = live_owner(path)
    if owner is not None:  # before anything touches an instrument or the file
        raise owner_error(path, owner)
    gap_s = max(0.0, time.time() - path.stat().st_mtime)  # the last flush was the last sign of life
    with RunFile(path) as run:
        attrs = run.attrs
        if attrs.get("status") not in RESUMABLE:
            raise RunFileError(f"{path}: the run ended with status {attrs.get('status')!r} "
                               f"({attrs.get('end_reason')}); only interrupted or crashed runs resume")
        delegated = json.loads(attrs["delegated"]) if attrs.get("delegated") else None
        channel = delegated["instrument"] if delegated else run.channels[0]
        point: ResumePoint | AttachPoint = attach_point(run, channel) if delegated else resume_point(run, channel)
    name = Path(attrs.get("protocol_path") or "protocol.yaml").name
    why = not_resumable(attrs)
    if why is not None:
        raise RunFileError(f"{path}: {why}; the file keeps what was measured: finish it with `labctl close {path}`")
    protocol = stored_protocol(attrs).model_copy(update={"instrument": channel})
    program = protocol.program()
    simulated_run = bool(attrs.get("simulated"))
    if simulated_run and station_path is not None:
        raise FileError(["this run was simulated; resume it without --station"])
    if not simulated_run and speed not in (None, 1.0):
        raise FileError(["--speed applies to simulated runs only; real instruments run in real time"])
    speed = float(attrs.get("speed", 1.0)) if speed is None else speed
    if isinstance(point, ResumePoint):
        if point.step_index >= program.n_steps:
            raise RunFileError(f"{path}: every step of the program has already run")
        point = replace(point, t_offset_s=point.t_offset_s + (0.0 if math.isinf(speed) else gap_s * speed))
        message = f"resumed at step {point.step_index} after {gap_s:.1f} s without recording"
    else:
        message = f"reattached to test {point.test_id} after its point {point.last_seq_id}"
    notify = load_notify_config(notify_path) if notify_path is not None else None
    clock = clock_for_speed(speed, paced=not delegated) if simulated_run else ScaledClock(1.0)
    with ExitStack() as stack:
        if simulated_run:
            try:
                cell = simulated.simulated_cell_from_record(attrs["simulated_cell"])
            except (KeyError, ValueError) as exc:
                raise RunFileError(f"{path}: {exc}") from None
            sim = simulated.start_station(protocol, path.name, clock, stack, cell=cell)
            station, source, options = sim.station, "simulated station", sim.open_options
        elif station_path is not None:
            station, source, options = load_station(station_path), str(station_path), {}
        else:
            station = Station.model_validate(yaml.safe_load(attrs["station_text"]))
            source, options = f"{path.name}: station_text", {}
        bench = Bench(protocol, Path(name), attrs["protocol_text"], station, source, clock, simulated_run, speed,
                      options, {})
        return execute(bench, path, output_exists_ok=True, operator=None, subscribers=subscribers,
                        on_engine=on_engine, notify=notify, resume=point, resume_message=message,
                        native_program=attrs.get("native_program") or None)


__all__ = ["Bench", "SessionResult", "check_protocol", "default_output_path", "execute", "killed_run_advice",
           "load_checked", "not_resumable", "stored_protocol", "stored_results", "journal_path", "poll_interval_s",
           "resume_run", "run_attrs", "run_protocol", "run_stamp"]
