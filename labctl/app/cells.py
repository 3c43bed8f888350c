"""Several cells side by side: each on its own instrument (or cycler channel), in its own
thread and run file, through the one run path of :mod:`labctl.app.run`.

A cell that shorts, loses its instrument or cannot start ends alone; the others go on.
Ctrl-C stops every cell safely. With ``control`` each cell serves its own control socket
beside its run file while it runs, so the GUI's channel grid can stop or pause one cell.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.base import InstrumentError
from labctl.app import simulated
from labctl.app.notify import load_notify_config
from labctl.app.run import Bench, SessionResult, execute, check_protocol, run_protocol, run_stamp
from labctl.engine import Interrupted, clock_for_speed
from labctl.store import RunFileError
from labctl.yamlfile import FileError
from protocols import load_protocol


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


def check_distinct(instruments: list[str]) -> None:
    """Raises FileError if two cells name the same instrument."""
    doubles = sorted({name for name in instruments if instruments.count(name) > 1})
    if doubles:
        raise FileError([f"instrument {name!r} is named by more than one cell; give each cell its own "
                         f"(protocol.yaml@instrument)" for name in doubles])


def run_cells(specs: list[CellSpec], *, station_path: str | Path | None = None, simulate: bool = False,
              speed: float = 1.0, output_dir: str | Path = "runs", subscribers_for: Any = None,
              notify_path: str | Path | None = None, control: bool = False) -> list[CellResult]:
    """Run several cells side by side, each on its own instrument of the station (or its own
    simulated instrument), in its own thread and file ``<output_dir>/<UTC time>_<kind>_<instrument>.h5``.

    Raises:
        FileError: a protocol file is invalid, or two cells name the same instrument (nothing
            has started then).
    """
    protocols = [load_protocol(spec.protocol_path) for spec in specs]
    instruments = [spec.instrument or p.instrument for spec, p in zip(specs, protocols)]
    check_distinct(instruments)
    stamp = run_stamp()

    def job(spec: CellSpec, name: str, path: Path) -> Callable[[Any], SessionResult]:
        return lambda on_engine: run_protocol(
            spec.protocol_path, station_path=station_path, simulate=simulate, speed=speed, output=path,
            instrument=name, subscribers=subscribers_for(name) if subscribers_for else (), on_engine=on_engine,
            notify_path=notify_path)

    paths = [Path(output_dir) / f"{stamp}_{protocol.kind}_{name}.h5" for protocol, name in zip(protocols, instruments)]
    return cells_in_threads([(spec, name, path, job(spec, name, path))
                             for spec, name, path in zip(specs, instruments, paths)], control=control)


def run_simulated_cycler_cells(specs: list[CellSpec], *, cycler: str, speed: float, output_dir: str | Path = "runs",
                               subscribers_for: Any = None, notify_path: str | Path | None = None,
                               cells: list[Any] | None = None, control: bool = False) -> list[CellResult]:
    """Several cells on the channels of one simulated ``cycler``, each in its own thread and
    run file; a spec without an instrument gets ``cyc<k>`` (k from 1). Each channel's cell is
    its protocol's ``simulated_cell`` with the seed + k (k from 0), or ``cells[k]``.

    Raises:
        FileError: a protocol file is invalid or cannot be compiled for the cycler, or two
            specs name the same instrument (nothing has started then).
    """
    protocols = [load_protocol(spec.protocol_path) for spec in specs]
    names = [spec.instrument or f"cyc{k + 1}" for k, spec in enumerate(specs)]
    check_distinct(names)
    protocols = [p.model_copy(update={"instrument": name}) for p, name in zip(protocols, names)]
    texts = [Path(spec.protocol_path).read_text(encoding="utf-8") for spec in specs]
    sources = [Path(spec.protocol_path).name for spec in specs]
    for protocol, source in zip(protocols, sources):
        check_protocol(protocol, source, simulate=True, cycler=cycler)
    if cells is None:
        cells = [simulated.simulated_cell(p, source) for p, source in zip(protocols, sources)]
        cells = [simulated.with_seed_offset(cell, k) for k, cell in enumerate(cells)]
    notify = load_notify_config(notify_path) if notify_path is not None else None
    stamp = run_stamp()
    with ExitStack() as stack:
        clock = clock_for_speed(speed)
        sim = simulated.start_cyclers(cycler, names, cells, clock, stack)
        for protocol in protocols:  # refuse a protocol the cycler cannot run before anything starts
            config = sim.station.instruments[protocol.instrument]
            try:
                config.entry.compile(protocol.program(), protocol.name)
            except ValueError as exc:
                raise FileError([f"{protocol.instrument}: the protocol cannot run on a {cycler} cycler: {exc}"]) from None
        paths = [Path(output_dir) / f"{stamp}_{p.kind}_{name}.h5" for p, name in zip(protocols, names)]

        def job(k: int) -> Callable[[Any], SessionResult]:
            def run(on_engine: Any) -> SessionResult:
                bench = Bench(protocols[k], Path(specs[k].protocol_path), texts[k], sim.station, "simulated station",
                              clock, True, speed, sim.open_options, {"simulated_cell": simulated.record_cell(cells[k])},
                              n_channels=len(specs))
                return execute(bench, paths[k], output_exists_ok=False, operator=None,
                                subscribers=subscribers_for(names[k]) if subscribers_for else (),
                                on_engine=on_engine, notify=notify)
            return run

        return cells_in_threads([(spec, name, paths[k], job(k)) for k, (spec, name) in enumerate(zip(specs, names))],
                                control=control)


def cells_in_threads(jobs: list[tuple[CellSpec, str, Path, Any]], *, control: bool = False) -> list[CellResult]:
    """Run ``(spec, instrument, run file, job)`` side by side, each ``job(on_engine)``
    (returning a :class:`SessionResult`) in its own thread. Ctrl-C asks every executor to
    stop; a job's one-line failure (bad file, unreachable instrument …) becomes its
    :attr:`CellResult.error`. With ``control`` each executor serves a control socket beside
    its run file (``<file>.ctl``) until its run ends."""
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
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (labctl.app.signals)
                reason = f"interrupted ({exc.signal_name})" if isinstance(exc, Interrupted) else "interrupted (Ctrl-C)"
                for engine in list(engines):
                    engine.request_stop(reason)
    cells = []
    for (spec, name, _path, _job), future in zip(jobs, futures):
        try:
            cells.append(CellResult(spec, name, future.result(), None))
        except (FileError, InstrumentError, RunFileError, FileExistsError, OSError) as exc:
            cells.append(CellResult(spec, name, None, str(exc).replace("\n", "; ")))
    return cells


__all__ = ["CellResult", "CellSpec", "cells_in_threads", "check_distinct", "run_cells", "run_simulated_cycler_cells"]
