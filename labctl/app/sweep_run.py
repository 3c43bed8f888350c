"""One run of a sweep protocol (c-AFM triggering bias, memristor cycling), start to finish.

The counterpart of :mod:`labctl.app.run` for protocols whose ``engine`` is ``"sweeps"``: it
reaches the 2400 and (for a tip electrode) the AFM controller — a station file's, or
simulators started here on free loopback ports around one simulated tip junction, reached
over VISA and the Nanonis TCP interface exactly like real ones — runs
:class:`~labctl.engine.sweeps.SweepEngine` with the run file writer and any extra
subscribers, then analyses the readings and stores the results (2-D current maps become
image datasets under ``results/``).
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import h5py

from drivers.afm import NanonisAfm
from drivers.base import TipPositioner
from drivers.sim.afm import NanonisAfmSimulator, NanonisServer
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from drivers.sim.physics.tip import Electrode, JunctionParameters, SampleParameters, TipJunction
from labctl.engine import RunOutcome, clock_for_speed
from labctl.engine.clock import Clock
from labctl.events import Subscriber
from labctl.engine.sweeps import SweepEngine
from labctl.app.notify import load_notify_config
from labctl.station import InstrumentConfig, Station, load_station, open_instrument
from labctl.store import RunFile, RunFileWriter, write_results
from labctl.yamlfile import FileError


def simulated_junction(protocol: Any) -> TipJunction:
    """The tip junction a sweep protocol's ``simulated_sample`` describes.

    Raises:
        FileError: an unknown or invalid junction parameter in ``simulated_sample``.
    """
    s = protocol.simulated_sample
    known = {f.name for f in fields(JunctionParameters)}
    overrides = s.junction_overrides()
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise FileError([f"simulated_sample: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"])
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
        raise FileError([f"simulated_sample: {exc}"]) from None


def _open_afm(station: Station, name: str, source: str) -> TipPositioner:
    config = station.instrument(name, source)
    if config.driver != "nanonis":
        raise FileError([f"{source}: instruments: {name}: driver {config.driver!r} is not an AFM controller (nanonis)"])
    try:
        return NanonisAfm(config.address, timeout_s=config.timeout_ms / 1000)
    except ValueError as exc:
        raise FileError([f"{source}: instruments: {name}: address: {exc}"]) from None


def run_sweep_protocol(protocol: Any, protocol_path: str | Path, *, station_path: str | Path | None, simulate: bool,
                       speed: float, output: str | Path | None, operator: str | None,
                       subscribers: Iterable[Subscriber] = (), on_engine: Any = None,
                       notify_path: str | Path | None = None) -> Any:
    """Run a loaded sweep protocol; same arguments, errors and result as
    :func:`labctl.app.run.run_protocol` (which hands sweep kinds over to this)."""
    from labctl.app.run import SessionResult, _notifiers, default_output_path, run_attrs

    if simulate == (station_path is not None):
        raise FileError(["give either a station file (--station) or --simulate"])
    if not simulate and speed != 1.0:
        raise FileError(["--speed applies to simulated runs only; real instruments run in real time"])
    protocol_text = Path(protocol_path).read_text(encoding="utf-8")
    notify = load_notify_config(notify_path) if notify_path is not None else None
    program = protocol.program()
    clock: Clock = clock_for_speed(speed)
    with ExitStack() as stack:
        afm: TipPositioner | None = None
        attrs: dict[str, Any] = {}
        if simulate:
            junction = simulated_junction(protocol)
            smu_server = TcpServer(Keithley2400Simulator(junction, now=clock.now))
            stack.callback(smu_server.close)
            instruments = {protocol.instrument: InstrumentConfig(driver="keithley2400", address=smu_server.resource)}
            if program.electrode == "tip":
                afm_server = NanonisServer(NanonisAfmSimulator(junction))
                stack.callback(afm_server.close)
                instruments[protocol.afm] = InstrumentConfig(driver="nanonis", address=afm_server.resource)
            station = Station(instruments=instruments)
            attrs["simulated_sample"] = {**protocol.simulated_sample.model_dump(), "junction": asdict(junction.params),
                                         "electrode": asdict(junction.electrode)}
            source = "simulated station"
        else:
            station = load_station(station_path)
            source = str(station_path)
        smu = open_instrument(station.instrument(protocol.instrument, source))
        stack.callback(smu.close)
        if program.electrode == "tip":
            afm = _open_afm(station, protocol.afm, source)
            stack.callback(afm.close)
        path = Path(output) if output is not None else default_output_path(protocol)
        attrs = run_attrs(protocol, protocol_path, protocol_text, simulated=simulate, speed=speed, station=station,
                          instrument_idn=getattr(smu, "idn", ""), operator=operator,
                          afm_idn=getattr(afm, "idn", ""), **attrs)
        notifiers = _notifiers(stack, notify if notify is not None else station.notify, path)
        writer = RunFileWriter(path, [protocol.instrument], attrs)
        stack.callback(writer.close)
        engine = SweepEngine(smu, clock, afm=afm, channel=protocol.instrument,
                             subscribers=[writer, *subscribers, *notifiers])
        if on_engine is not None:
            on_engine(engine)
        interrupted = False
        try:
            outcome: RunOutcome = engine.run(program)
        except KeyboardInterrupt:
            outcome, interrupted = engine.last_outcome, True
        writer.close()
        with RunFile(writer.path) as run:
            columns = run.columns(protocol.instrument)
            rows = [row for row in run.steps() if row["channel"] == protocol.instrument]
        results = {**protocol.analyse_run(columns, rows), "run_status": outcome.status, "run_end_reason": outcome.reason}
        write_results(writer.path, results)
        _mark_images(writer.path)
        return SessionResult(writer.path, outcome, results, protocol.summary(results), interrupted)


def _mark_images(path: Path) -> None:
    """Give 2-D result datasets (current maps) the HDF5 Image attributes (CLASS = IMAGE,
    IMAGE_SUBCLASS = IMAGE_GRAYSCALE) so HDF viewers show them as images."""
    with h5py.File(path, "r+", locking=False) as f:
        def visit(_name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.ndim == 2:
                obj.attrs["CLASS"] = "IMAGE"
                obj.attrs["IMAGE_VERSION"] = "1.2"
                obj.attrs["IMAGE_SUBCLASS"] = "IMAGE_GRAYSCALE"
                obj.attrs["units"] = "A"

        f["results"].visititems(visit)
