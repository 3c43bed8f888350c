"""The one door from the application to the simulators (``drivers/sim``).

A simulated run needs the instruments of a station, started on free loopback ports and
reached through the real drivers, exactly like hardware: a Keithley 2400 in front of a
simulated Li | SSE | Li cell, a 2400 and an AFM controller around one simulated tip
junction, or the channels of a simulated NEWARE BTS or BioLogic instrument running simulated
cells. :func:`start_station` builds that station for a protocol; everything else in labctl
reaches the simulators only through this module (and ``labctl sim …`` through the
``serve_*`` functions).

It also owns the protocol file's simulation sections: ``simulated_cell:`` (a preset of
:data:`drivers.sim.physics.cell.CELL_PRESETS` and any :class:`CellParameters` field; the
protocol's ``cell:`` gives area, thickness and temperature — or, with ``model:``, another cell
of :data:`drivers.sim.physics.models.CELL_MODELS`, a full cell, Li | Cu …, see
:func:`simulated_cell`) and ``simulated_sample:`` (the c-AFM sample and junction). The protocol schema keeps them as plain data; they are parsed
and checked here (:func:`cell_parameters`, :func:`junction`), with one line per problem.
The command line's cell options (``--cell``, ``--cell-ccd-mA-cm2``, ``--seed``, ``--cell-param
NAME=VALUE``) are parsed here too (:func:`parse_cell_params`, :func:`cell_parameters`,
:func:`preset_cell`): every value of a cell parameter, from a file or an option, is converted
by one function to its :class:`CellParameters` field's type.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from types import SimpleNamespace
from typing import Any

from drivers.sim.afm import NanonisAfmSimulator, NanonisServer
from drivers.sim.keithley2400 import Keithley2400Simulator, PtyServer, TcpServer
from drivers.sim.physics.cell import CELL_PRESET_LABELS, CELL_PRESETS, CellParameters
from drivers.sim.physics.models import CELL_MODELS, ModelledCell, modelled_cell
from drivers.sim.physics.tip import Electrode, JunctionParameters, SampleParameters, TipJunction
from labctl.engine.clock import Clock
from labctl.station import InstrumentConfig, Station
from labctl.steps import SOFTWARE_ONLY, program_kinds
from labctl.yamlfile import FileError

#: The cyclers ``--simulate --cycler NAME`` can put behind a protocol.
SIMULATED_CYCLERS = ("neware", "biologic")
#: Most channels of one simulated BioLogic instrument (``MAX_SLOT_NB``, pyeclab kbio_types).
BIOLOGIC_MAX_CHANNELS = 16


def cell_presets() -> list[str]:
    """Names of the simulated cell presets (``--cell``, ``simulated_cell.preset``)."""
    return list(CELL_PRESETS)


def _where(source: str, line_of: Callable[[list[str]], int] | None, loc: list[str]) -> str:
    """``file:line`` of a field of the protocol file when lines are known, else ``source``."""
    return f"{source}:{line_of(loc)}" if line_of is not None else source


#: The options that set one cell parameter each (any other comes from ``--cell-param``).
CELL_OPTIONS = {"ccd_mA_cm2": "--cell-ccd-mA-cm2", "seed": "--seed", "area_cm2": "--cell-area-cm2"}
#: Spellings of a yes/no value of a ``bool`` cell parameter (any case).
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@cache
def _field_types() -> dict[str, Any]:
    """Each :class:`CellParameters` field's type (``float``, ``int``, ``bool``, ``str``, or one
    of them or None)."""
    return typing.get_type_hints(CellParameters)


def cell_parameter_names() -> list[str]:
    """The simulated cell's parameters (the fields of :class:`CellParameters`), sorted."""
    return sorted(f.name for f in fields(CellParameters))


def cell_value(name: str, value: Any) -> Any:
    """``value`` (text from the command line, or a protocol file's YAML value) as the type of
    the cell parameter ``name``: ``float`` (finite; an int is accepted), ``int`` (a whole
    number), ``bool`` (true/false, yes/no, on/off, 1/0), ``str``; ``none`` (or None) for a
    parameter that may be None (``lifetime_h``). Ranges are :class:`CellParameters`'s to check.

    Raises:
        KeyError: ``name`` is not a cell parameter.
        ValueError: the value does not convert (one line naming the parameter, no prefix).
    """
    kind = _field_types()[name]
    args = typing.get_args(kind)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
            return None
        kind = next(a for a in args if a is not type(None))
    text = value.strip() if isinstance(value, str) else None
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError(f"{name} takes a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{name} takes a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        return number
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(text or "")
        except ValueError:
            raise ValueError(f"{name} takes a whole number, got {value!r}") from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"{name} takes true or false, got {value!r}")
    if not isinstance(value, str):
        raise ValueError(f"{name} takes text, got {value!r}")
    return value


def _known_line() -> str:
    return f"known: {', '.join(cell_parameter_names())}"


def parse_cell_params(texts: Sequence[str], option: str = "--cell-param") -> dict[str, Any]:
    """``NAME=VALUE`` texts (the repeatable ``--cell-param``) as cell-parameter overrides,
    each value of its field's type (:func:`cell_value`) and in its range; a later NAME wins.

    Raises:
        ValueError: one line naming ``option``, the text and the parameter: no ``=``, an
            unknown name (with the known ones), a value that does not convert or is out of
            range.
    """
    params: dict[str, Any] = {}
    for text in texts:
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"{option} {text!r}: give NAME=VALUE, e.g. {option} noise_V=0.001")
        if name not in _field_types():
            hint = " (the preset is --cell)" if name == "preset" else ""
            raise ValueError(f"{option} {text}: unknown cell parameter {name!r}{hint}; {_known_line()}")
        try:
            value = cell_value(name, raw)
            replace(CellParameters(), **{name: value})  # the parameter's own range
        except ValueError as exc:
            raise ValueError(f"{option} {text}: {exc}") from None
        params[name] = value
    return params


def _option(name: str, value: Any) -> str:
    """The command-line option that sets cell parameter ``name``."""
    return CELL_OPTIONS.get(name) or f"--cell-param {name}={value}"


def _apply_options(cell: CellParameters, changes: dict[str, Any]) -> CellParameters:
    """``cell`` with the command line's ``changes``.

    Raises:
        ValueError: one line naming the option and the parameter.
    """
    typed: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in _field_types():
            raise ValueError(f"{_option(name, value)}: unknown cell parameter {name!r}; {_known_line()}")
        try:
            typed[name] = cell_value(name, value)
            replace(cell, **{name: typed[name]})
        except ValueError as exc:
            raise ValueError(f"{_option(name, value)}: {exc}") from None
    try:
        return replace(cell, **typed)
    except ValueError as exc:  # a combination of options (each alone was fine)
        raise ValueError(f"{', '.join(_option(k, v) for k, v in changes.items())}: {exc}") from None


def cell_preset(protocol: Any, overrides: dict[str, Any] | None = None) -> str:
    """The preset a protocol's simulated cell starts from: ``--cell`` (``overrides["preset"]``),
    else its ``simulated_cell.preset``, else ``hl_llzo``. Not checked (:func:`cell_parameters` does)."""
    if (overrides or {}).get("preset") is not None:
        return str(overrides["preset"])
    section = getattr(protocol, "simulated_cell", None)
    return str(section.preset) if section is not None else "hl_llzo"


def cell_attrs(cell: CellParameters | ModelledCell, preset: str | None = None) -> dict[str, Any]:
    """What a run file records of its simulated cell: ``simulated_cell`` (every parameter,
    JSON: :func:`record_cell`) and, when known, ``simulated_cell_preset`` and
    ``simulated_cell_label`` (what cell the preset is, e.g. ``Li | LLZO | Li, no interlayer``;
    the report's titles use it)."""
    attrs: dict[str, Any] = {"simulated_cell": record_cell(cell)}
    if preset in CELL_PRESET_LABELS:
        attrs.update(simulated_cell_preset=preset, simulated_cell_label=CELL_PRESET_LABELS[preset])
    return attrs


def cell_parameters(protocol: Any, source: str, overrides: dict[str, Any] | None = None, *,
                    line_of: Callable[[list[str]], int] | None = None) -> CellParameters:
    """The simulated cell of a protocol: its ``simulated_cell.preset``, then the protocol's
    ``cell`` (area, electrolyte thickness, Li thickness, stack pressure, temperature), then
    ``simulated_cell``'s other keys, then ``overrides`` (the command line's; None values
    ignored). A ``preset`` among the overrides (the CLI's ``--cell``) puts that whole preset
    cell in place of the protocol's. Every value is converted to its field's type
    (:func:`cell_value`): ``noise_V: "1e-3"`` or ``{"noise_V": "0.001"}`` is a float.

    ``line_of(["simulated_cell", name])`` gives the line of a field in the protocol file, for
    the messages.

    Raises:
        FileError: an unknown preset or cell parameter, or an invalid value; one line naming
            ``source`` (and the line) and the field (``simulated_cell.<name>``) for the file's,
            the option (``--cell``, ``--cell-param NAME=VALUE``, ``--cell-ccd-mA-cm2``, ``--seed``)
            and the parameter for the overrides'.
    """
    section = protocol.simulated_cell.as_dict() if getattr(protocol, "simulated_cell", None) is not None else {}
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    preset = section.pop("preset", "hl_llzo")
    replacement = changes.pop("preset", None)
    if preset not in CELL_PRESETS:
        raise FileError([f"{_where(source, line_of, ['simulated_cell', 'preset'])}: simulated_cell.preset: unknown "
                         f"preset {preset!r}; known: {', '.join(CELL_PRESETS)}"])
    if replacement is not None and replacement not in CELL_PRESETS:
        raise FileError([f"--cell: unknown preset {replacement!r}; known: {', '.join(CELL_PRESETS)}"])
    values: dict[str, Any] = {}
    cell = getattr(protocol, "cell", None)
    if cell is not None:
        values.update(area_cm2=cell.area_cm2, electrolyte_thickness_um=cell.electrolyte_thickness_um,
                      li_thickness_um=cell.li_thickness_um, stack_pressure_MPa=cell.stack_pressure_MPa,
                      temperature_C=cell.temperature_C)
    unknown = sorted(set(section) - set(_field_types()))
    if unknown:
        raise FileError([f"{_where(source, line_of, ['simulated_cell', name])}: simulated_cell.{name}: unknown cell "
                         f"parameter; {_known_line()}" for name in unknown])
    problems = []
    for name, value in section.items():
        try:
            values[name] = cell_value(name, value)
        except ValueError as exc:
            problems.append(f"{_where(source, line_of, ['simulated_cell', name])}: simulated_cell.{name}: {exc}")
    if problems:
        raise FileError(problems)
    try:
        base = replace(CELL_PRESETS[preset], **values)
    except (TypeError, ValueError) as exc:
        raise FileError([f"{_where(source, line_of, ['simulated_cell'])}: simulated_cell: {exc}"]) from None
    if replacement is not None:
        base = CELL_PRESETS[replacement]
    try:
        return _apply_options(base, changes)
    except ValueError as exc:
        raise FileError([str(exc)]) from None


def cell_from_record(text: str) -> CellParameters:
    """The cell a run file recorded (its ``simulated_cell`` attribute, JSON).

    Raises:
        ValueError: not a recorded cell.
    """
    try:
        return CellParameters.from_dict(json.loads(text))
    except (TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"simulated_cell: not a recorded cell ({exc})") from None


def junction(protocol: Any, source: str = "protocol", *,
             line_of: Callable[[list[str]], int] | None = None) -> TipJunction:
    """The tip junction a sweep protocol's ``simulated_sample`` describes (with its ``tip``
    and, for a memristor pad, its ``electrode``).

    Raises:
        FileError: an unknown or invalid junction parameter in ``simulated_sample``.
    """
    s = protocol.simulated_sample
    known = {f.name for f in fields(JunctionParameters)}
    overrides = s.junction_overrides()
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise FileError([f"{_where(source, line_of, ['simulated_sample', unknown[0]])}: simulated_sample: unknown "
                         f"parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"])
    electrode_spec = getattr(protocol, "electrode", None)
    tip = protocol.tip
    if electrode_spec is not None and electrode_spec.kind == "pad":
        electrode = Electrode(kind="pad", pad_side_um=electrode_spec.pad_side_um)
    else:
        electrode = Electrode(kind="tip", tip_radius_nm=tip.radius_nm, force_nN=tip.force_nN, modulus_GPa=tip.modulus_GPa)
    try:
        sample = SampleParameters(field_nm=s.field_nm, grain_size_nm=s.grain_size_nm, gb_width_nm=s.gb_width_nm,
                                  homogenising_layer=s.homogenising_layer, seed=s.sample_seed)
        return TipJunction(sample, JunctionParameters(**overrides), electrode, seed=s.seed)
    except (TypeError, ValueError) as exc:
        raise FileError([f"{_where(source, line_of, ['simulated_sample'])}: simulated_sample: {exc}"]) from None


@dataclass
class SimulatedStation:
    """Simulated instruments on loopback, as a station.

    ``station`` names them as the protocols do; ``open_options`` go to
    :func:`labctl.station.open_instrument` for the protocol's instrument (a BioLogic
    simulator is reached in-process: its wire is a DLL); ``attrs`` are what the run file
    records of the simulation (``simulated_cell`` or ``simulated_sample``); ``cells`` the
    cells behind the instruments, in order.
    """

    station: Station
    open_options: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    cells: list[CellParameters] = field(default_factory=list)


def start_station(protocol: Any, source: str, clock: Clock, stack: ExitStack, *, cycler: str | None = None,
                  overrides: dict[str, Any] | None = None, cell: CellParameters | ModelledCell | None = None) -> SimulatedStation:
    """Start the simulated instruments a protocol needs on free loopback ports (closed by
    ``stack``), sharing ``clock``; the station names them as the protocol does.

    * a program with characterisation steps (:data:`labctl.steps.SOFTWARE_ONLY`): a BioLogic
      channel in front of the cell, run as a potentiostat, and, for ``set_temperature`` steps,
      a BINDER chamber whose air is the cell's temperature (:func:`start_potentiostat`);
    * ``cycler`` (``neware``/``biologic``): a cycler with one channel running the cell;
    * a program with a tip or pad electrode: a 2400 (and for a tip an AFM controller) around
      the protocol's simulated junction;
    * otherwise a 2400 in front of the protocol's simulated cell (``cell`` replaces it, e.g.
      the cell a resumed run recorded).

    Raises:
        FileError: a bad simulation section or an unknown cycler.
    """
    program = protocol.program()
    kinds = program_kinds(program)
    preset = None if cell is not None else cell_preset(protocol, overrides)  # a recorded cell keeps its record
    if kinds & SOFTWARE_ONLY and cycler in (None, "biologic"):
        cell = cell or simulated_cell(protocol, source, overrides)
        return start_potentiostat(protocol, cell, clock, stack, chamber="set_temperature" in kinds, preset=preset)
    if cycler is not None:
        cell = cell or simulated_cell(protocol, source, overrides)
        return start_cyclers(cycler, [protocol.instrument], [cell], clock, stack, preset=preset)
    if program.electrode in ("tip", "pad"):
        given = sorted(k for k, v in (overrides or {}).items() if v is not None)
        if given:
            raise FileError([f"{source}: a {protocol.kind} run has no simulated cell but a simulated tip junction "
                             f"(simulated_sample in the protocol file); the cell options do not apply "
                             f"({', '.join(given)})"])
        tip_junction = junction(protocol, source)
        smu = TcpServer(Keithley2400Simulator(tip_junction, now=clock.now))
        stack.callback(smu.close)
        instruments = {protocol.instrument: InstrumentConfig(driver="keithley2400", address=smu.resource)}
        if program.electrode == "tip":
            afm = NanonisServer(NanonisAfmSimulator(tip_junction))
            stack.callback(afm.close)
            instruments[protocol.afm] = InstrumentConfig(driver="nanonis", address=afm.resource)
        sample = {**protocol.simulated_sample.model_dump(), "junction": asdict(tip_junction.params),
                  "electrode": asdict(tip_junction.electrode)}
        return SimulatedStation(Station(instruments=instruments), attrs={"simulated_sample": sample})
    cell = cell or simulated_cell(protocol, source, overrides)
    server = TcpServer(Keithley2400Simulator(_load(cell), now=clock.now))
    stack.callback(server.close)
    station = Station(instruments={protocol.instrument: InstrumentConfig(driver="keithley2400", address=server.resource)})
    return SimulatedStation(station, attrs=cell_attrs(cell, preset), cells=[cell])


def start_potentiostat(protocol: Any, cell: CellParameters | ModelledCell, clock: Clock, stack: ExitStack, *,
                       chamber: bool = False, preset: str | None = None) -> SimulatedStation:
    """A simulated BioLogic instrument with one channel in front of ``cell`` (reached in this
    process through its Development-Package calls) and, with ``chamber``, a simulated BINDER
    chamber on a loopback port, starting at the cell's temperature, whose air temperature the
    cell follows (no lag of its own: the soak of a ``set_temperature`` step stands for it). The
    station names the channel as the protocol's ``instrument`` and the chamber as its ``chamber``
    (default ``chamber``), with the simulated chamber's set point range. ``preset`` names the
    preset the cell came from, for the run file (:func:`cell_attrs`).

    Raises:
        FileError: the cell's temperature is outside the simulated chamber's set point range.
    """
    from drivers.sim.biologic import SimulatedBackend
    from drivers.sim.chamber import BinderMB1Simulator, ChamberServer
    from drivers.sim.physics.chamber import ChamberParameters

    follow = None
    instruments: dict[str, InstrumentConfig] = {}
    attrs: dict[str, Any] = cell_attrs(cell, preset)
    if chamber:
        try:
            params = ChamberParameters(start_C=_temperature_C(cell))
        except ValueError as exc:
            raise FileError([f"simulated chamber: {exc}"]) from None
        air = BinderMB1Simulator(params, now=clock.now)
        server = ChamberServer(air)
        stack.callback(server.close)
        follow = air.temperature_C
        instruments[getattr(protocol, "chamber", "chamber")] = InstrumentConfig(
            driver="binder", address=server.resource, min_setpoint_C=params.min_setpoint_C,
            max_setpoint_C=params.max_setpoint_C)
        attrs["simulated_chamber"] = asdict(params)
    backend = SimulatedBackend(1, cell=[_load(cell)], now=clock.now, temperature_C=follow)
    # The channel samples at half the program's shortest record interval (0.1–10 s): every
    # reading the engine takes is at most that old, and a long dry run stays fast.
    shortest = protocol.program().shortest_record_interval_s or 1.0
    instruments[protocol.instrument] = InstrumentConfig(driver="biologic", address=f"{backend.address}/1",
                                                        sample_interval_s=min(10.0, max(0.1, shortest / 2)))
    return SimulatedStation(Station(instruments=instruments), open_options={"backend": backend}, attrs=attrs,
                            cells=[cell])


def start_cyclers(cycler: str, names: Sequence[str], cells: Sequence[CellParameters | ModelledCell], clock: Clock,
                  stack: ExitStack, *, preset: str | None = None) -> SimulatedStation:
    """One simulated ``cycler`` with a channel per cell, the station naming the channels
    ``names``: a NEWARE BTS on a loopback port (reached over TCP like a real one), or a
    BioLogic instrument reached through its Development-Package calls in this process.
    ``preset`` names the preset a single cell came from, for the run file (:func:`cell_attrs`).

    Raises:
        FileError: an unknown cycler, or more channels than it has.
    """
    if cycler not in SIMULATED_CYCLERS:
        raise FileError([f"--cycler: unknown cycler {cycler!r}; known: {', '.join(SIMULATED_CYCLERS)}"])
    options: dict[str, Any] = {}
    if cycler == "neware":
        from drivers.sim.neware import BtsServer, NewareBtsSimulator

        sim = NewareBtsSimulator(len(cells), cell=[_load(c) for c in cells], now=clock.now)
        server = BtsServer(sim)
        stack.callback(server.close)
        host, port = server.address
        addresses = [f"{host}:{port}/{devid}-{unit}-{chl}" for (_type, devid, unit, chl) in sim.channels]
    else:
        from drivers.sim.biologic import SimulatedBackend

        if len(cells) > BIOLOGIC_MAX_CHANNELS:
            raise FileError([f"--channels: a BioLogic instrument has at most {BIOLOGIC_MAX_CHANNELS} channels, "
                             f"not {len(cells)}"])
        backend = SimulatedBackend(len(cells), cell=[_load(c) for c in cells], now=clock.now)
        addresses = [f"{backend.address}/{k + 1}" for k in range(len(cells))]
        options["backend"] = backend
    station = Station(instruments={name: InstrumentConfig(driver=cycler, address=address)
                                   for name, address in zip(names, addresses)})
    attrs = cell_attrs(cells[0], preset) if len(cells) == 1 else {}
    return SimulatedStation(station, open_options=options, attrs=attrs, cells=list(cells))


def identify_simulated(driver: str) -> str:
    """The identification a simulated instrument of ``driver`` gives, through the real
    driver (the simulator lives for the query).

    Raises:
        ValueError: no simulator of that driver here.
    """
    from labctl.station import identify

    with ExitStack() as stack:
        if driver == "nanonis":
            server = NanonisServer(NanonisAfmSimulator(TipJunction()))
        elif driver == "keithley2400":
            server = TcpServer(Keithley2400Simulator(CELL_PRESETS["hl_llzo"]))
        else:
            raise ValueError(f"no simulated {driver!r} here")
        stack.callback(server.close)
        return identify(InstrumentConfig(driver=driver, address=server.resource))


# -- `labctl sim …`: simulators served until Ctrl-C ---------------------------------------------------

def preset_cell(preset: str, **changes: Any) -> CellParameters:
    """A preset cell with ``changes`` (the command line's; None values ignored; values converted
    by :func:`cell_value`).

    Raises:
        ValueError: unknown preset or parameter, or an invalid value (one line naming the
            option and the parameter).
    """
    if preset not in CELL_PRESETS:
        raise ValueError(f"--cell: unknown preset {preset!r}; known: {', '.join(CELL_PRESETS)}")
    return _apply_options(CELL_PRESETS[preset], {k: v for k, v in changes.items() if v is not None})


def serve_keithley2400(cell: CellParameters, clock: Clock, *, port: int = 0, pty: bool = False) -> list[Any]:
    """A simulated 2400 in front of ``cell`` on 127.0.0.1:``port`` (and on a pseudo-terminal);
    the servers (``.resource``, ``.close()``). Raises OSError if the port is taken."""
    sim = Keithley2400Simulator(cell, now=clock.now)
    servers: list[Any] = [TcpServer(sim, port=port)]
    if pty:
        servers.append(PtyServer(sim))
    return servers


def serve_afm(*, homogenising_layer: bool, seed: int, sample_seed: int, port: int = 0,
              smu_port: int = 0) -> tuple[Any, Any, TipJunction]:
    """A simulated AFM controller and a 2400 on the same tip junction: (afm server, 2400
    server, junction). Raises OSError if a port is taken (nothing is left running)."""
    tip_junction = TipJunction(SampleParameters(homogenising_layer=homogenising_layer, seed=sample_seed), seed=seed)
    afm = NanonisServer(NanonisAfmSimulator(tip_junction), port=port)
    try:
        smu = TcpServer(Keithley2400Simulator(tip_junction), port=smu_port)
    except OSError:
        afm.close()
        raise
    return afm, smu, tip_junction


def serve_neware(cell: CellParameters, clock: Clock, *, channels: int, port: int = 0) -> tuple[Any, list[str]]:
    """A simulated NEWARE BTS with ``channels`` channels of ``cell`` (channel k: seed + k) on
    127.0.0.1:``port``: (server, channel ids ``devid-subdevid-chlid``).

    Raises:
        ValueError: a bad channel count; OSError: the port is taken.
    """
    from drivers.sim.neware import BtsServer, NewareBtsSimulator

    sim = NewareBtsSimulator(channels, cell=cell, now=clock.now)
    server = BtsServer(sim, port=port)
    return server, [f"{d}-{s}-{c}" for (_t, d, s, c) in sim.channels]


def chamber_parameters(*, start_C: float = 25.0) -> Any:
    """The simulated chamber's thermal parameters, starting at ``start_C`` (°C).

    Raises:
        ValueError: ``start_C`` outside the chamber's set point range.
    """
    from drivers.sim.physics.chamber import ChamberParameters

    return ChamberParameters(start_C=start_C)


def serve_chamber(params: Any, clock: Clock, *, port: int = 0, framing: str = "rtu") -> Any:
    """A simulated BINDER chamber (MB1 controller, MODBus) with thermal ``params``
    (:func:`chamber_parameters`) on 127.0.0.1:``port``.

    Raises:
        ValueError: an unknown framing; OSError: the port is taken.
    """
    from drivers.sim.chamber import BinderMB1Simulator, ChamberServer

    return ChamberServer(BinderMB1Simulator(params, now=clock.now), port=port, framing=framing)


__all__ = ["BIOLOGIC_MAX_CHANNELS", "CELL_OPTIONS", "SIMULATED_CYCLERS", "SimulatedStation", "cell_attrs",
           "cell_from_record", "cell_models", "cell_parameter_names", "cell_parameters", "cell_preset", "cell_presets",
           "cell_value", "parse_cell_params", "record_cell", "simulated_cell", "simulated_cell_from_record",
           "with_seed_offset", "identify_simulated", "junction", "preset_cell", "serve_afm", "serve_keithley2400",
           "chamber_parameters", "serve_chamber", "serve_neware", "start_cyclers", "start_potentiostat", "start_station"]


# -- simulated cells other than the symmetric one (``simulated_cell.model``) -----------------------

def cell_models() -> dict[str, list[str]]:
    """The simulated cell models and their presets (``simulated_cell.model`` / ``.preset``)."""
    return {"symmetric": list(CELL_PRESETS), **{name: list(m.presets) for name, m in CELL_MODELS.items()}}


def _protocol_context(protocol: Any) -> dict[str, Any]:
    """What a protocol itself says about its cell, by the model parameters' names: the
    ``cell`` section's area and temperature, a ``cathode`` section's active mass (mg)."""
    out: dict[str, Any] = {}
    cell = getattr(protocol, "cell", None)
    if cell is not None:
        out.update(area_cm2=cell.area_cm2, temperature_C=cell.temperature_C)
    cathode = getattr(protocol, "cathode", None)
    mass = getattr(cathode, "active_mass_mg", None) if cathode is not None else None
    if mass is not None:
        out["active_mass_mg"] = mass
    return out


def simulated_cell(protocol: Any, source: str, overrides: dict[str, Any] | None = None, *,
                   line_of: Callable[[list[str]], int] | None = None) -> CellParameters | ModelledCell:
    """The cell behind a simulated run of ``protocol``: its ``simulated_cell.model``'s.

    ``symmetric`` (the default): :func:`cell_parameters`. Any other model of
    :data:`drivers.sim.physics.models.CELL_MODELS`: its ``preset`` (default the model's first),
    then what the protocol says of the cell (``cell.area_cm2``, ``cell.temperature_C``,
    ``cathode.active_mass_mg``, where the model has such a parameter), then the section's other
    keys, then ``overrides`` (the CLI's ``--seed`` …; None values ignored). ``plating_to_short``
    wraps a symmetric cell: the section's :class:`CellParameters` keys (and ``base_preset``,
    default ``hl_llzo``) go to it, with the protocol's ``cell``.

    Raises:
        FileError: an unknown model, preset or parameter, or an invalid value; one line naming
            ``source`` (and the line) and the field.
    """
    section = getattr(protocol, "simulated_cell", None)
    model = getattr(section, "model", "symmetric") if section is not None else "symmetric"
    if model == "symmetric":
        return cell_parameters(protocol, source, overrides, line_of=line_of)
    where = _where(source, line_of, ["simulated_cell", "model"])
    if model not in CELL_MODELS:
        raise FileError([f"{where}: simulated_cell.model: unknown model {model!r}; known: "
                         f"{', '.join(cell_models())}"])
    entry = CELL_MODELS[model]
    values = dict(section.model_extra or {})
    preset = section.preset if "preset" in section.model_fields_set else None
    changes = {k: v for k, v in (overrides or {}).items() if v is not None}
    if "preset" in changes:
        preset = changes.pop("preset")
    names = entry.field_names()
    base = None
    if entry.wraps_symmetric:
        symmetric = {f.name for f in fields(CellParameters)}
        base_keys = {k: values.pop(k) for k in list(values) if k in symmetric and k not in names}
        base_preset = values.pop("base_preset", "hl_llzo")
        shim = SimpleNamespace(cell=getattr(protocol, "cell", None),
                               simulated_cell=SimpleNamespace(as_dict=lambda: {"preset": base_preset, **base_keys}))
        base = cell_parameters(shim, source, {k: v for k, v in changes.items() if k in symmetric and k not in names},
                               line_of=line_of)
        changes = {k: v for k, v in changes.items() if k in names or k not in symmetric}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise FileError([f"--{unknown[0].replace('_', '-')}: does not apply to a {model} simulated cell"])
    chosen = {k: v for k, v in _protocol_context(protocol).items() if k in names}
    chosen.update(values)
    chosen.update(changes)
    try:
        return modelled_cell(model, preset, chosen, base)
    except KeyError as exc:
        raise FileError([f"{_where(source, line_of, ['simulated_cell', 'preset'])}: simulated_cell: "
                         f"{exc.args[0]}"]) from None
    except (TypeError, ValueError) as exc:
        raise FileError([f"{_where(source, line_of, ['simulated_cell'])}: simulated_cell: {exc}"]) from None


def simulated_cell_from_record(text: str) -> CellParameters | ModelledCell:
    """The cell a run file recorded (its ``simulated_cell`` attribute, JSON): a symmetric
    cell's parameters (:func:`cell_from_record`) or another model's :class:`ModelledCell`.

    Raises:
        ValueError: not a recorded cell.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"simulated_cell: not a recorded cell ({exc})") from None
    if isinstance(data, dict) and "model" in data and "params" in data:
        return ModelledCell.from_dict(data)
    return cell_from_record(text)


def with_seed_offset(cell: CellParameters | ModelledCell, offset: int) -> CellParameters | ModelledCell:
    """The same cell with its random seed moved by ``offset`` (channel k of a multichannel
    instrument: seed + k, so the cells differ as real ones do)."""
    if isinstance(cell, ModelledCell):
        return replace(cell, params=replace(cell.params, seed=cell.params.seed + offset))
    return replace(cell, seed=cell.seed + offset)


def _temperature_C(cell: CellParameters | ModelledCell) -> float:
    """The cell's temperature (°C; 25 for a model without one)."""
    params = cell.params if isinstance(cell, ModelledCell) else cell
    return float(getattr(params, "temperature_C", 25.0))


def _load(cell: CellParameters | ModelledCell) -> Any:
    """What a simulator runs: a symmetric cell's parameters as they are (it builds the cell),
    or a fresh cell of another model."""
    return cell.build() if isinstance(cell, ModelledCell) else cell


def record_cell(cell: CellParameters | ModelledCell) -> dict[str, Any]:
    """What a run file records of the simulated cell."""
    return cell.as_dict() if isinstance(cell, ModelledCell) else asdict(cell)
