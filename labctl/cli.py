"""labctl: run protocols on a Keithley 2400, battery cyclers and an AFM, or their simulators.

Exit codes: 0 the run ended as planned (for a CCD staircase a detected short is the planned
end), 1 bad input (file, option, unreachable instrument), 3 the run ended on a fault
(instrument lost, error, safety trip), 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from drivers.base import InstrumentError
from labctl.events import Detected, Readings, RunEnded, RunStarted, StepStarted
from labctl.steps import StepProgram
from labctl.app import simulated
from labctl.app.signals import SignalRecord, signals_end_the_run
from labctl.store import RunFileError
from labctl.yamlfile import FileError

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.split("\n")[0])
sim_app = typer.Typer(no_args_is_help=True, help="Start a simulated instrument on loopback and print its address.")
app.add_typer(sim_app, name="sim")
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

FAULT_STATUSES = {"instrument_lost", "error", "safety"}


def _speed(value: str) -> float:
    if value.strip().lower() in ("max", "inf"):
        return math.inf
    try:
        speed = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number or 'max'") from None
    if not speed > 0:
        raise typer.BadParameter("must be > 0")
    return speed


def _fail(lines: list[str] | str, code: int = 1) -> typer.Exit:
    for line in [lines] if isinstance(lines, str) else lines:
        # the line as written: "[gui]" or "[1, 2]" in it is text, not a rich markup tag
        err.print(f"[red]error:[/red] {escape(line)}", markup=True, soft_wrap=True)
    return typer.Exit(code)


_CELL_PARAM_HELP = ("NAME=VALUE: set a parameter of the simulated cell (repeatable), e.g. noise_V=0.001, "
                    "temperature_C=70; the names are the simulated cell's parameters (docs/cell-presets.md).")


def _cell_params(texts: Optional[list[str]], **named: Any) -> dict[str, Any]:
    """The simulated cell's parameters set on the command line: ``--cell-param NAME=VALUE``
    and the options naming one parameter (``named``, None when not given); a one-line exit for
    a bad one, or for a parameter set twice."""
    try:
        params = simulated.parse_cell_params(texts or [])
    except ValueError as exc:
        raise _fail(str(exc)) from None
    for name, value in named.items():
        if value is not None:
            if name in params:
                raise _fail(f"{simulated.CELL_OPTIONS[name]} and --cell-param {name}=… set the same parameter; "
                            "give one")
            params[name] = value
    return params


class ProgressView:
    """Subscriber drawing a rich progress bar over the run's planned (simulated) time."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=None)
        self.label = ""
        self.readings = 0

    def __call__(self, event: Any) -> None:
        if isinstance(event, RunStarted):
            program = StepProgram.model_validate_json(event.program_json)
            self.progress.update(self.task, total=program.planned_duration_s or None)
            self.progress.start()
        elif isinstance(event, StepStarted):
            self.label = f"step {event.step_index}: {event.label or event.kind}"
        elif isinstance(event, Readings):
            self.readings += len(event)
            t = float(event.columns["test_time_s"][-1])
            v = float(event.columns["voltage_V"][-1])
            self.progress.update(self.task, completed=t,
                                 description=f"{self.label}  V = {v * 1e3:8.2f} mV  t = {t / 3600:6.2f} h")
        elif isinstance(event, Detected):
            self.progress.console.print(f"[yellow]{event.kind}[/yellow] at t = {event.t_s / 3600:.3f} h: {event.message}")
        elif isinstance(event, RunEnded):
            self.progress.update(self.task, description=f"{event.status}  ({self.readings} readings)")
            self.progress.stop()


@app.command()
def run(
    protocols: list[str] = typer.Argument(..., help="Protocol file (YAML); several for several cells, each "
                                          "optionally as FILE@INSTRUMENT."),
    station: Optional[Path] = typer.Option(None, "--station", help="Station file naming the instrument's address."),
    simulate: bool = typer.Option(False, "--simulate", help="Run on the simulated instrument (started here)."),
    speed: str = typer.Option("1", "--speed", help="Simulated time per wall second, or 'max'."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Run file to write (default runs/<time>_<kind>.h5)."),
    operator: Optional[str] = typer.Option(None, "--operator", help="Who runs it (stored in the file)."),
    cell: Optional[str] = typer.Option(None, "--cell", help=f"Simulated cell preset: {', '.join(simulated.cell_presets())}."),
    cell_ccd: Optional[float] = typer.Option(None, "--cell-ccd-mA-cm2", help="Simulated cell's CCD."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the simulated cell's randomness."),
    cell_param: Optional[list[str]] = typer.Option(None, "--cell-param", help=_CELL_PARAM_HELP),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    control: bool = typer.Option(False, "--control", help="Listen for stop/pause/resume/status on a local "
                                 "control socket (<run file>.ctl), e.g. from `labctl gui`."),
    control_socket: Optional[Path] = typer.Option(None, "--control-socket",
                                                  help="Control socket path (implies --control)."),
    notify: Optional[Path] = typer.Option(None, "--notify", help="Notification file (event log, desktop, "
                                          "e-mail on run end and failures); replaces the station's notify: section."),
    cycler: Optional[str] = typer.Option(None, "--cycler", help="With --simulate: run on a simulated battery "
                                         "cycler (neware or biologic) instead of the 2400; the protocol runs in its firmware."),
    channels: int = typer.Option(1, "--channels", min=1, max=256, help="With --cycler: the same protocol on this "
                                 "many channels of one simulated cycler, a run file each (-o is then a directory)."),
    queue: bool = typer.Option(False, "--queue", help="Run the protocol files one after the other on one station "
                               "(a run queue), each in its own run file (-o is then a directory); with --control "
                               "the queue can be listed and edited while it runs (labctl gui)."),
) -> None:
    """Run a protocol; write every reading to an HDF5 run file and print the result.

    Several protocol files run several cells side by side, each on its own instrument and in
    its own run file (``-o`` is then a directory); one cell's short or lost instrument ends
    only that cell. On a cycler (``--simulate --cycler neware``, or a station instrument with
    driver ``neware``) the protocol is compiled to the cycler's program and runs there.
    """
    from labctl.app.control import ControlError, ControlServer, check_socket_path, default_socket_path
    from labctl.app.cells import CellSpec
    from labctl.app.run import default_output_path, run_protocol  # imports the drivers only when running

    speed_value = _speed(speed)
    if not simulate and station is None:
        raise _fail("give a station file (--station FILE) or --simulate")
    if cell_param and not simulate:
        raise _fail("--cell-param sets a parameter of the simulated cell: give it with --simulate")
    params = _cell_params(cell_param, ccd_mA_cm2=cell_ccd, seed=seed)
    specs = [CellSpec.parse(text) for text in protocols]
    if queue:
        if channels > 1:
            raise _fail("--queue runs protocol files one after the other; --channels does not apply")
        if any(spec.instrument is not None for spec in specs):
            raise _fail("--queue: the protocols run on their own instruments one after the other; drop @instrument")
        if cell or cell_ccd is not None or seed is not None:
            raise _fail("--cell, --cell-ccd-mA-cm2 and --seed apply to one run; set the cell in each protocol file "
                        "(simulated_cell)")
        with signals_end_the_run() as signals:
            _run_queue(specs, station, simulate, speed_value, output or Path("runs"), operator, notify, cycler,
                       control or control_socket is not None, control_socket)
        if signals.exit_code is not None:
            raise typer.Exit(signals.exit_code)
        return
    if cycler is not None and not simulate:
        raise _fail("--cycler simulates a cycler: give it with --simulate (a station file names real cyclers)")
    if channels > 1 and (cycler is None or len(specs) > 1 or specs[0].instrument is not None):
        raise _fail("--channels runs one protocol file (without @instrument) on a simulated --cycler")
    if len(specs) > 1 or specs[0].instrument is not None or channels > 1:
        if control_socket is not None or cell or cell_ccd is not None or seed is not None or cell_param:
            raise _fail("--control-socket, --cell, --cell-ccd-mA-cm2, --seed and --cell-param apply to one cell; "
                        "set them per protocol file (--control gives each cell its own <run file>.ctl)")
        with signals_end_the_run() as signals:
            _run_cells(specs * channels, station, simulate, speed_value, output or Path("runs"), notify, cycler, control)
        if signals.exit_code is not None:
            raise typer.Exit(signals.exit_code)
        return
    protocol = specs[0].protocol_path
    overrides: dict[str, Any] = {**params, "preset": cell}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        TimeElapsedColumn(), console=console, disable=quiet, transient=False)
    view = ProgressView(progress)
    servers: list[ControlServer] = []
    on_engine = None
    if control or control_socket is not None:
        if output is None:
            from protocols import load_protocol

            try:
                output = default_output_path(load_protocol(protocol))
            except FileError as exc:
                raise _fail(exc.lines) from None
        socket_path = control_socket or default_socket_path(output)
        try:
            check_socket_path(socket_path)
        except ControlError as exc:
            raise _fail(str(exc)) from None

        def on_engine(engine: Any) -> None:
            servers.append(ControlServer(engine, socket_path, run_file=output))

    wall = time.perf_counter()
    try:
        with signals_end_the_run() as signals:
            try:
                result = run_protocol(protocol, station_path=station, simulate=simulate, speed=speed_value,
                                      output=output, operator=operator, cell_overrides=overrides,
                                      subscribers=[view], on_engine=on_engine, notify_path=notify, cycler=cycler)
            finally:
                progress.stop()
                for server in servers:
                    server.close()
    except KeyboardInterrupt:  # before the run began or after it ended: no output was on
        raise _fail("interrupted outside the run (nothing was sourcing)", signals.exit_code or 130) from None
    except ControlError as exc:
        raise _fail(str(exc)) from None
    except FileError as exc:
        raise _fail(exc.lines) from None
    except InstrumentError as exc:
        raise _fail(f"cannot use the instrument at {exc}") from None
    except FileExistsError as exc:
        raise _fail(str(exc)) from None
    _report(result, time.perf_counter() - wall, signals)


def _run_queue(specs: list[Any], station: Optional[Path], simulate: bool, speed: float, output_dir: Path,
               operator: Optional[str], notify: Optional[Path], cycler: Optional[str], control: bool,
               control_socket: Optional[Path]) -> None:
    """Protocol files one after the other on one station (labctl.app.queue); a line per run,
    a table at the end; exit 3 if the queue ended on a fault."""
    from labctl.app.control import ControlError, ControlServer, check_socket_path
    from labctl.app.queue import RunQueue, run_queue
    from labctl.app.run import run_protocol, run_stamp

    pending = RunQueue(simulate=simulate)
    try:
        for spec in specs:
            pending.append(spec.protocol_path)
    except ValueError as exc:
        raise _fail(str(exc).split("; ")) from None
    output_dir.mkdir(parents=True, exist_ok=True)
    server: Optional[ControlServer] = None
    if control:
        socket_path = control_socket or output_dir / f"{run_stamp()}_queue.ctl"
        try:
            check_socket_path(socket_path)
            server = ControlServer(None, socket_path, queue=pending)
        except ControlError as exc:
            raise _fail(str(exc)) from None
        console.print(f"queue control socket: {socket_path}")

    def run_one(entry: Any, path: Path) -> Any:
        console.print(f"[cyan]queue {entry.id}[/cyan]: {entry.protocol_path.name} → {path}", soft_wrap=True)
        on_engine = None if server is None else (lambda engine: server.set_run(engine, path))
        try:
            return run_protocol(entry.protocol_path, station_path=station, simulate=simulate, speed=speed, output=path,
                                operator=operator, on_engine=on_engine, notify_path=notify, cycler=cycler)
        finally:
            if server is not None:
                server.set_run(None, None)  # the run's results are stored: its link goes

    def on_result(entry: Any, result: Any, error: Optional[str]) -> None:
        if result is None:
            err.print(f"[red]queue {entry.id} not run:[/red] {error}", markup=True, soft_wrap=True)
        else:
            console.print(f"[cyan]queue {entry.id}[/cyan]: {result.outcome.status}: {entry.summary}", soft_wrap=True)

    try:
        entries = run_queue(pending, run_one, output_dir=output_dir, on_result=on_result)
    finally:
        if server is not None:
            server.close()
    table = Table("#", "protocol", "ended", "result")
    table.add_column("run file", overflow="fold")
    for entry in entries:
        table.add_row(str(entry.id), entry.protocol_path.name, entry.status or entry.state, entry.summary,
                      Path(entry.run_file).name if entry.run_file else "")
    console.print(table)
    if pending.stop_reason:
        console.print(f"queue ended: {pending.stop_reason}")
    if any(e.status in FAULT_STATUSES or e.state == "not run" and e.status == "error" for e in entries):
        raise typer.Exit(3)


def _run_cells(specs: list[Any], station: Optional[Path], simulate: bool, speed: float, output_dir: Path,
               notify: Optional[Path], cycler: Optional[str] = None, control: bool = False) -> None:
    """Several cells at once (on the channels of one simulated ``cycler``, if given); a line per
    noteworthy event, a table at the end."""
    from labctl.app.cells import run_cells, run_simulated_cycler_cells

    def subscribers_for(name: str) -> list[Any]:
        def echo(event: Any) -> None:
            if isinstance(event, (Detected, RunEnded)):
                what = event.kind if isinstance(event, Detected) else f"run ended: {event.status}"
                console.print(f"[cyan]{name}[/cyan] t = {event.t_s / 3600:.3f} h  {what}: {event.reason if isinstance(event, RunEnded) else event.message}")
        return [echo]

    try:
        if cycler is not None:
            cells = run_simulated_cycler_cells(specs, cycler=cycler, speed=speed, output_dir=output_dir,
                                               subscribers_for=subscribers_for, notify_path=notify, control=control)
        else:
            cells = run_cells(specs, station_path=station, simulate=simulate, speed=speed, output_dir=output_dir,
                              subscribers_for=subscribers_for, notify_path=notify, control=control)
    except FileError as exc:
        raise _fail(exc.lines) from None
    # One protocol on many channels: name it once above the table, not on every row.
    protocols = {str(c.spec.protocol_path) for c in cells}
    if len(protocols) == 1:
        console.print(f"protocol: {protocols.pop()}")
    table = Table(*(["cell"] if len(protocols) > 1 else []), "instrument", "ended", "result")
    table.add_column("run file", overflow="fold")  # a path must stay whole to be copied
    directories = {c.result.path.parent for c in cells if c.result is not None}
    for c in cells:
        first = [str(c.spec.protocol_path)] if len(protocols) > 1 else []
        if c.result is None:
            table.add_row(*first, c.instrument, "[red]not run[/red]", c.error or "", "")
        else:
            path = c.result.path.name if len(directories) == 1 else str(c.result.path)
            table.add_row(*first, c.instrument, c.result.outcome.status, c.result.summary[0], path)
    console.print(table)
    if len(directories) == 1:
        console.print(f"run files in: {directories.pop()}")
    if any(c.result is None or c.result.outcome.status in FAULT_STATUSES for c in cells):
        raise typer.Exit(3)


def _report(result: Any, wall_s: float, signals: SignalRecord) -> None:
    """The closing summary of a run; exits 128 + the signal after Ctrl-C (130), SIGTERM (143)
    or SIGHUP (129), and 3 after a fault."""
    outcome = result.outcome
    console.print()
    for line in result.summary:
        console.print(f"[bold]{line}[/bold]")
    console.print(f"run ended: {outcome.status} ({outcome.reason})")
    console.print(f"{outcome.n_readings} readings, {outcome.end_s / 3600:.2f} h of test time in {wall_s:.1f} s")
    console.print(f"run file: {result.path}")
    if result.interrupted:
        raise typer.Exit(signals.exit_code or 130)
    if outcome.status in FAULT_STATUSES:
        raise typer.Exit(3)


@app.command()
def resume(
    run_file: Path = typer.Argument(..., help="Run file of a killed, interrupted or instrument-lost run."),
    station: Optional[Path] = typer.Option(None, "--station", help="Station file replacing the one stored in the run."),
    speed: Optional[str] = typer.Option(None, "--speed", help="Simulated runs: clock speed (default: the run's own)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    notify: Optional[Path] = typer.Option(None, "--notify", help="Notification file; replaces the station's "
                                          "notify: section."),
) -> None:
    """Continue a run in its own file: same protocol, steps, cycles and test time; the gap is logged."""
    from labctl.app.run import resume_run

    progress = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                        TimeElapsedColumn(), console=console, disable=quiet, transient=False)
    wall = time.perf_counter()
    try:
        with signals_end_the_run() as signals:
            try:
                result = resume_run(run_file, station_path=station, speed=None if speed is None else _speed(speed),
                                    subscribers=[ProgressView(progress)], notify_path=notify)
            finally:
                progress.stop()
    except KeyboardInterrupt:  # before the run began or after it ended: no output was on
        raise _fail("interrupted outside the run (nothing was sourcing)", signals.exit_code or 130) from None
    except FileError as exc:
        raise _fail(exc.lines) from None
    except RunFileError as exc:
        raise _fail(str(exc)) from None
    except InstrumentError as exc:
        raise _fail(f"cannot use the instrument at {exc}") from None
    _report(result, time.perf_counter() - wall, signals)


@app.command()
def validate(protocol: Path = typer.Argument(..., help="Protocol file (YAML).")) -> None:
    """Check a protocol file (and its simulated cell) and show the step program it expands to."""
    from labctl.app.run import load_checked

    try:
        proto, program = load_checked(protocol)
    except FileError as exc:
        raise _fail(exc.lines) from None
    console.print(f"{protocol}: OK — {proto.kind} '{proto.name}'")
    n = program.n_steps
    console.print(f"{n} steps, {program.n_cycles} cycles, {program.planned_duration_s / 3600:.2f} h planned, "
                  f"voltage limit {program.safety.max_abs_voltage_V:g} V, area {program.area_cm2:g} cm²")
    table = Table("#", "step", "level", "duration (s)", "cycle")
    # The first six and the last two steps: never the whole expansion (a program may have millions).
    shown = list(itertools.islice(program.iter_steps(), 6 if n > 8 else n))
    tail = list(program.iter_steps(n - 2)) if n > 8 else []
    for rows, gap in ((shown, n > 8), (tail, False)):
        for index, step, cycle in rows:
            level = (f"{step.voltage_V:+.4g} V" if step.kind == "constant_voltage"
                     else f"{getattr(step, 'current_A', 0.0) * 1e3:+.4g} mA")
            table.add_row(str(index), step.label or step.kind, level, f"{step.duration_s or 0:g}", str(cycle))
        if gap:
            table.add_row("…", f"{n - 8} more", "", "", "")
    console.print(table)
    position = 0
    for entry in program.steps:  # loops that may end early
        size = len(entry.steps) * entry.count if entry.kind == "loop" else 1
        if entry.kind == "loop" and entry.until is not None:
            console.print(f"steps {position}–{position + size - 1}: the loop ends early at {entry.until.describe()}")
        position += size
    section = getattr(proto, "simulated_cell", None)
    if section is not None and section.model != "symmetric":
        console.print(f"simulated cell (--simulate): model {section.model}, preset "
                      f"{section.preset if 'preset' in section.model_fields_set else 'default'}")


@app.command()
def inspect(run_file: str = typer.Argument(..., help="HDF5 run file, or a run's URL on a labctl server.")) -> None:
    """Summarise a run file (also one that is still being written, or whose writer died)."""
    from labctl.app.run import killed_run_advice
    from labctl.store import summarise

    try:
        with _local_run(run_file) as (path, _output):
            summary = summarise(path)
    except RunFileError as exc:
        raise _fail(str(exc)) from None
    attrs = summary.attrs
    console.print(f"[bold]{run_file}[/bold]  {attrs.get('protocol_kind', '?')}: {attrs.get('protocol_name', '')}")
    console.print(f"status: {attrs.get('status')}  ({attrs.get('end_reason') or '—'})")
    if summary.owner is not None:
        console.print(f"being written by {summary.owner.describe()}")
    elif summary.lock_error:
        console.print(f"[yellow]{summary.lock_error}[/yellow]", soft_wrap=True)
    elif summary.killed:
        console.print(f"[yellow]{killed_run_advice(run_file, summary.attrs, summary.ended_in_file)}[/yellow]",
                      soft_wrap=True)  # the command whole
    console.print(f"started {attrs.get('start_time_utc')}  ended {attrs.get('end_time_utc') or '—'}  "
                  f"operator: {attrs.get('operator') or '—'}  simulated: {bool(attrs.get('simulated'))}")
    cell = {k[5:]: v for k, v in attrs.items() if k.startswith("cell_")}
    if cell:
        console.print("cell: " + ", ".join(f"{k} = {v}" for k, v in cell.items()))
    for channel in summary.channels:
        if channel.n_readings:
            t, v, step = (channel.columns[name] for name in ("test_time_s", "voltage_V", "step_index"))
            bad = f", {v.n_nonfinite} non-finite voltages" if v.n_nonfinite else ""
            console.print(f"channel {channel.name}: {channel.n_readings} readings over {t.last / 3600:.3f} h, "
                          f"V {v.min:.4g} … {v.max:.4g} V{bad}, {int(step.last) + 1} steps reached")
        else:
            console.print(f"channel {channel.name}: no readings")
    console.print(f"steps recorded: {summary.n_steps}")
    for e in summary.last_events:
        console.print(f"  event {e['kind']} at t = {e['t_s'] / 3600:.3f} h: {e['message']}")
    if summary.results:
        console.print("results: " + ", ".join(f"{k} = {v}" for k, v in summary.results.items()))


@app.command()
def close(
    run_file: Path = typer.Argument(..., help="Run file whose writer died (killed run, crash, power loss)."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why it is closed (stored in the file)."),
) -> None:
    """Finish a run file whose writer died, without running anything: status 'interrupted',
    the gap and the reason in its events; every HDF5 reader then opens it."""
    from labctl.app.run import stored_results
    from labctl.store import finalise

    def analyse(run: Any) -> dict[str, Any]:
        try:
            return stored_results(run)
        except FileError as exc:
            err.print(f"[yellow]warning:[/yellow] {run.path}: not analysed, its stored protocol does not load: "
                      f"{exc.lines[0]}", markup=True, soft_wrap=True)
            return {}

    try:
        closed = finalise(run_file, reason or "", analyse=analyse)
    except RunFileError as exc:
        raise _fail(str(exc)) from None
    if closed.taken_over is not None:
        console.print(f"took over the stale lock of {closed.taken_over.describe()} (that process is gone)")
    last = ", ".join(f"{ch} at {t / 3600:.3f} h" for ch, t in closed.last_test_time_s.items())
    console.print(f"closed {run_file}: status interrupted; last readings: {last}; last written "
                  f"{closed.last_written_utc} ({closed.gap_s:.0f} s ago)", soft_wrap=True)  # the path whole


#: Qt platforms that need no display.
HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "linuxfb", "eglfs", "vkkhrdisplay", "minimalegl")
#: How to run the window without a desktop, for the messages.
HEADLESS_HINT = ("run it on a desktop, under Xvfb (xvfb-run -a labctl gui …), or headless with "
                 "QT_QPA_PLATFORM=offscreen")


def gui_startup_problem() -> str | None:
    """Why ``labctl gui`` cannot open its window here, in one line, or None: no display (Linux
    without ``DISPLAY``/``WAYLAND_DISPLAY``), or a display Qt cannot use (a missing system
    library: Qt itself would abort the process); the GUI packages are checked by the caller."""
    import os
    import subprocess
    import sys

    platform_name = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip().lower()
    if platform_name in HEADLESS_PLATFORMS:
        return None
    if sys.platform.startswith("linux") and not platform_name \
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return f"no display (DISPLAY is not set): {HEADLESS_HINT}"
    # Qt aborts the process (exit 134) when its platform plugin cannot start: try it apart first.
    probe = "from PySide6.QtGui import QGuiApplication; QGuiApplication(['labctl'])"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the display cannot be used ({exc}): {HEADLESS_HINT}"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    why = next((line.split(": ", 1)[-1] for line in lines if "needed" in line or "could not" in line.lower()),
               lines[0] if lines else f"Qt exited with code {done.returncode}")
    return f"the display cannot be used (Qt: {why}): {HEADLESS_HINT}"


@app.command()
def gui(
    simulate: bool = typer.Option(False, "--simulate", help="Open with a ready simulated station."),
    station: Optional[Path] = typer.Option(None, "--station", help="Station file to load."),
    protocol: Optional[Path] = typer.Option(None, "--protocol", help="Protocol file to load."),
    attach: Optional[str] = typer.Option(None, "--attach", help="Run file (.h5), control socket (.ctl) or a "
                                         "run's URL on a labctl server (http://HOST:PORT/runs/KEY) to follow or review."),
    grid: Optional[list[str]] = typer.Option(None, "--grid", help="A runs directory, run files or a labctl server "
                                             "(http://HOST:PORT) to show as a grid of small plots with a status "
                                             "table, one per channel (repeatable)."),
) -> None:
    """Open the bench window: station, protocol, run control, live plots, event log, run queue."""
    from importlib.util import find_spec

    missing_packages = [name for name in ("PySide6", "pyqtgraph", "ruamel.yaml") if _find(find_spec, name) is None]
    if missing_packages:
        raise _fail(f"the GUI needs {', '.join(missing_packages)}; install them with: pip install -e \".[gui]\" "
                    "(in the labctl checkout)")
    missing = [text for text in grid or () if not text.lower().startswith(("http://", "https://"))
               and not Path(text).exists()]
    if missing:
        raise _fail(f"--grid: no such file or directory: {', '.join(missing)}")
    if attach is not None and not attach.lower().startswith(("http://", "https://")) and not Path(attach).exists():
        raise _fail(f"--attach: no such file: {attach}")
    problem = gui_startup_problem()
    if problem is not None:
        raise _fail(problem)
    try:
        from ui.app import main as gui_main
    except ImportError as exc:
        raise _fail(f"the GUI cannot start ({exc}); install its packages with: pip install -e \".[gui]\"") from None
    raise typer.Exit(gui_main(simulate=simulate, station=station, protocol=protocol, attach=attach, grid=grid))


def _find(find_spec: Any, name: str) -> Any:
    try:
        return find_spec(name)
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        return None


@app.command()
def export(
    run_file: str = typer.Argument(..., help="HDF5 run file, or a run's URL on a labctl server."),
    format: str = typer.Option("bdf", "--format", help="Output format: bdf (Battery Data Format CSV)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="CSV to write (default RUN.bdf.csv; "
                                          "one file per channel, named from it, for a multi-channel run)."),
) -> None:
    """Write a run file as Battery Data Format CSV, one file per channel (cell)."""
    from labctl.store.export import export_bdf

    if format.lower() != "bdf":
        raise _fail(f"--format: unknown format {format!r}; known: bdf")
    try:
        with _local_run(run_file) as (path, here):
            written = export_bdf(path, output or (here and here / f"{path.stem}.bdf.csv"))
    except (RunFileError, FileExistsError) as exc:
        raise _fail(str(exc)) from None
    for path in written:
        console.print(f"wrote {path}")


@app.command()
def report(
    run_file: str = typer.Argument(..., help="HDF5 run file, or a run's URL on a labctl server."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Directory for the figures "
                                          "(default: the run file's; created if missing)."),
    format: str = typer.Option("png", "--format", help="Figure file format: png, svg or pdf."),
    dpi: int = typer.Option(300, "--dpi", help="Resolution of a PNG (and of images in an SVG or PDF), "
                            "50 … 1200 dots per inch."),
) -> None:
    """Draw a run's figures (<run>_iv.png, <run>_trigger_hist.png …; SVG or PDF with --format)
    from the run file alone, titled with the cell it ran on."""
    from labctl.report import FORMATS, check_output, write_report  # matplotlib only when reporting

    format = format.lower()
    try:
        check_output(format, dpi)
    except ValueError as exc:
        raise _fail(f"{'--dpi' if format in FORMATS else '--format'}: {exc}") from None
    try:
        with _local_run(run_file) as (path, here):
            written = write_report(path, output or here, format=format, dpi=dpi)
    except (RunFileError, OSError) as exc:
        raise _fail(str(exc)) from None
    for path in written:
        console.print(f"wrote {path}", soft_wrap=True)  # one path a line, never broken


@app.command("import")
def import_(
    vendor_file: Path = typer.Argument(..., help="NEWARE .nda/.ndax (or zipped .nda.zip) or EC-Lab .mpr file."),
    output: Path = typer.Option(..., "-o", "--output", help="Run file to create (.h5)."),
    area_cm2: Optional[float] = typer.Option(None, "--area-cm2", help="Electrode area for current densities "
                                             "(default: the file's, e.g. the EC-Lab .mpl's)."),
    utc_offset_h: Optional[float] = typer.Option(None, "--utc-offset-h", help="EC-Lab only: hours the "
                                                 "acquisition PC's clock was ahead of UTC (default 0)."),
) -> None:
    """Import a cycler or EC-Lab data file into a labctl run file (same layout as a labctl run; impedance spectra too)."""
    from labctl.store.importers import VendorFileError, import_vendor_file

    wall = time.perf_counter()
    try:
        result = import_vendor_file(vendor_file, output, area_cm2=area_cm2, utc_offset_h=utc_offset_h)
    except (VendorFileError, FileExistsError) as exc:
        raise _fail(str(exc)) from None
    wall = time.perf_counter() - wall
    console.print(f"{vendor_file.name}: {result.n_readings} readings, {result.n_steps} steps "
                  f"({result.reader}) in {wall:.2f} s")
    if result.n_spectra:
        console.print(f"{result.n_spectra} impedance spectra (the run file's spectra group)")
    if result.area_cm2 is None:
        err.print(f"[yellow]warning:[/yellow] {result.area_source}", markup=True, soft_wrap=True)
    else:
        console.print(f"area {result.area_cm2:g} cm² ({result.area_source})")
    for note in result.notes:
        console.print(f"note: {note}", style="dim")
    console.print(f"short detection: {result.n_shorts} step(s) flagged" + (" (see `labctl inspect`)" if result.n_shorts else ""))
    console.print(f"run file: {result.path}")


# -- runs on a labctl server (Tiled) -------------------------------------------------------
# `inspect`, `export` and `report` take a run's URL as well as a path through the two helpers
# below; `serve` and `runs` are the server and its search (labctl.app.serve, labctl.store.remote).

def _open_run(target: str) -> Any:
    """A path as a RunFile (SWMR), a URL as a RemoteRun: the reader API either way."""
    from labctl.store.remote import open_run

    return open_run(target)


@contextlib.contextmanager
def _local_run(target: str) -> Iterator[tuple[Path, Optional[Path]]]:
    """``(run file, default output directory)``: a path as it is (the command's own default
    output), a URL downloaded to a temporary directory (default output: the current directory)."""
    from labctl.store.remote import fetch_run, is_remote

    if not is_remote(target):
        yield Path(target), None
        return
    with tempfile.TemporaryDirectory(prefix="labctl-fetch-") as tmp:
        yield fetch_run(target, tmp), Path.cwd()


@app.command()
def serve(
    directories: list[str] = typer.Argument(..., help="Run directories to serve (DIR, or LABEL=DIR to "
                                            "prefix its runs' keys with LABEL, e.g. bench03=/mnt/bench03/runs)."),
    catalog: Optional[str] = typer.Option(None, "--catalog", help="Catalog database: sqlite:///PATH, a file "
                                          "path, or postgresql://USER@HOST/DB (default: a temporary SQLite file, "
                                          "rebuilt from the run files at each start)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; any other than loopback "
                             "needs --api-key."),
    port: int = typer.Option(8000, "--port", help="TCP port (0 = any free port)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="TILED_SINGLE_USER_API_KEY",
                                          help="API key every request must carry (letters and digits); "
                                          "without it, a loopback server lets anyone on this machine read."),
    scan_interval_s: float = typer.Option(2.0, "--scan-interval-s", help="Seconds between two scans of "
                                          "the directories for new and changed run files."),
) -> None:
    """Serve run directories lab-wide through Tiled, with a searchable catalog, until Ctrl-C.

    The server only reads the run files; runs never talk to it. Clients: `labctl runs --server
    URL`, `labctl inspect|report|export URL/runs/KEY`, or tiled.client.from_uri(URL).
    """
    try:
        from labctl.app.serve import LabServer, RunsDirectory, ServeConfig, ServeError, catalog_uri
    except ImportError as exc:
        raise _fail(f"labctl serve needs Tiled ({exc}); pip install 'labctl[serve]'") from None
    try:
        dirs = tuple(RunsDirectory.parse(text) for text in directories)
        config = ServeConfig(dirs, catalog=None if catalog is None else catalog_uri(catalog), host=host, port=port,
                             api_key=api_key, scan_interval_s=scan_interval_s)
        config.check()
    except (ValueError, ServeError) as exc:
        raise _fail(str(exc)) from None
    first = [True]

    def on_sync(report: Any) -> None:
        if first[0] or report.changed:
            console.print(f"catalog: {len(report.added)} added, {len(report.updated)} updated, "
                          f"{len(report.removed)} removed" + (f", {len(report.skipped)} skipped" if report.skipped else ""),
                          style=None if first[0] else "dim")
            first[0] = False

    def on_started(server: Any) -> None:
        access = "anyone on this machine may read" if config.public else "requests need the API key"
        console.print(f"serving {', '.join(str(d.path) for d in dirs)} at {server.uri}/runs ({access}); Ctrl-C to stop")

    try:
        LabServer(config, on_sync=on_sync).serve_forever(on_started)
    except ServeError as exc:
        raise _fail(str(exc)) from None


@app.command()
def runs(
    server: str = typer.Option(..., "--server", help="The labctl server, http://HOST:PORT."),
    kind: Optional[str] = typer.Option(None, "--kind", help="Protocol kind, e.g. ccd_staircase."),
    electrolyte: Optional[str] = typer.Option(None, "--electrolyte", help="Text in the cell's electrolyte (any case)."),
    operator: Optional[str] = typer.Option(None, "--operator", help="Text in the operator's name (any case)."),
    status: Optional[str] = typer.Option(None, "--status", help="Run status: running, completed, short …"),
    bench: Optional[str] = typer.Option(None, "--bench", help="Label of the run directory (labctl serve LABEL=DIR)."),
    since: Optional[str] = typer.Option(None, "--since", help="Started on or after (ISO 8601, UTC: 2026-11-01)."),
    until: Optional[str] = typer.Option(None, "--until", help="Started before (ISO 8601, UTC)."),
    limit: int = typer.Option(200, "--limit", min=1, help="At most this many runs (newest first)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="TILED_API_KEY", help="The server's API key."),
) -> None:
    """List the runs on a labctl server that match the filters, with their key results."""
    from labctl.store.remote import find_runs

    try:
        found = find_runs(server, kind=kind, electrolyte=electrolyte, operator=operator, status=status, bench=bench,
                          since=since, until=until, limit=limit, api_key=api_key)
    except ValueError as exc:
        raise _fail(f"--since/--until: {exc}") from None
    except RunFileError as exc:
        raise _fail(str(exc)) from None
    wide = console.width >= 120  # electrolyte and operator only where they fit
    table = Table(expand=True)
    table.add_column("run", no_wrap=True, min_width=min(60, max((len(r.key) for r in found), default=3)))
    if not kind:
        table.add_column("kind", overflow="fold", ratio=2)
    table.add_column("status", overflow="fold", ratio=2)
    table.add_column("started (UTC)", no_wrap=True)
    if wide:
        table.add_column("electrolyte", overflow="ellipsis", no_wrap=True, ratio=3)
        table.add_column("operator", overflow="ellipsis", no_wrap=True, ratio=1)
    table.add_column("results", overflow="fold", ratio=4)
    for run in found:
        results = "\n".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {'—' if v is None else v}"
                            for k, v in run.headline.items())
        started = run.start_time_utc.replace("T", " ")[:16]
        table.add_row(run.key, *([] if kind else [run.kind]), run.status, started,
                      *([run.electrolyte, run.operator or "—"] if wide else []), results or "—")
    console.print(table)
    console.print(f"{len(found)} run(s); open one with `labctl inspect {server.rstrip('/')}/runs/RUN`", style="dim")


def _sim_cell(cell: str, speed: str, cell_param: Optional[list[str]], **changes: Optional[float]) -> tuple[Any, Any]:
    """A simulator's cell parameters (preset + ``--cell-param`` + the other options) and its
    scaled clock, or a one-line exit."""
    from labctl.engine.clock import ScaledClock

    speed_value = _speed(speed)
    if math.isinf(speed_value):
        raise _fail("--speed max needs the client in the same process; give a number")
    try:
        params = simulated.preset_cell(cell, **_cell_params(cell_param, **changes))
    except ValueError as exc:
        raise _fail(str(exc)) from None
    return params, ScaledClock(speed_value)


def _serve_until_ctrl_c(servers: list[Any]) -> None:
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers:
            server.close()


_PRESETS = ", ".join(simulated.cell_presets())


@sim_app.command("keithley2400")
def sim_keithley2400(
    port: int = typer.Option(0, "--port", help="TCP port on 127.0.0.1 (0 = any free port)."),
    pty: bool = typer.Option(False, "--pty", help="Also serve the RS-232 path on a pseudo-terminal."),
    cell: str = typer.Option("hl_llzo", "--cell", help=f"Cell preset: {_PRESETS}."),
    cell_ccd: Optional[float] = typer.Option(None, "--cell-ccd-mA-cm2", help="Override the cell's CCD."),
    cell_area: Optional[float] = typer.Option(None, "--cell-area-cm2", help="Override the electrode area."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the cell's randomness."),
    cell_param: Optional[list[str]] = typer.Option(None, "--cell-param", help=_CELL_PARAM_HELP),
    speed: str = typer.Option("1", "--speed", help="Simulated time per wall second (the client must match)."),
) -> None:
    """Serve a simulated Keithley 2400 with a Li|SSE|Li cell until Ctrl-C."""
    params, clock = _sim_cell(cell, speed, cell_param, ccd_mA_cm2=cell_ccd, area_cm2=cell_area, seed=seed)
    try:
        servers = simulated.serve_keithley2400(params, clock, port=port, pty=pty)
    except OSError as exc:
        raise _fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    for server in servers:
        console.print(server.resource)
    console.print(f"cell: {cell}, CCD {params.ccd_mA_cm2:g} mA cm⁻², area {params.area_cm2:g} cm², "
                  f"{params.temperature_C:g} °C, speed ×{clock.speed:g}. Ctrl-C to stop.", style="dim")
    _serve_until_ctrl_c(servers)


@sim_app.command("afm")
def sim_afm(
    port: int = typer.Option(0, "--port", help="TCP port of the Nanonis interface on 127.0.0.1 (0 = any free; Nanonis uses 6501)."),
    smu_port: int = typer.Option(0, "--smu-port", help="TCP port of the Keithley 2400 on the same tip junction."),
    layer: bool = typer.Option(False, "--homogenising-layer", help="The sample carries the H.L. (uniform triggering bias)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the junction's randomness."),
    sample_seed: int = typer.Option(4, "--sample-seed", help="Seed of the grain map."),
) -> None:
    """Serve a simulated AFM controller (Nanonis TCP interface) over an LLZO grain map, with a
    simulated Keithley 2400 measuring the tip junction, until Ctrl-C."""
    try:
        afm, smu, junction = simulated.serve_afm(homogenising_layer=layer, seed=seed, sample_seed=sample_seed,
                                                 port=port, smu_port=smu_port)
    except OSError as exc:
        raise _fail(f"cannot listen on 127.0.0.1 (ports {port}, {smu_port}): {exc.strerror}") from None
    console.print(afm.resource)
    console.print(smu.resource)
    field = junction.sample.params
    console.print(f"AFM (Nanonis TCP) at {afm.resource}, 2400 at {smu.resource}; LLZO grains of {field.grain_size_nm:g} nm "
                  f"over {field.field_nm:g} nm{' with H.L.' if layer else ''}. Ctrl-C to stop.", style="dim")
    _serve_until_ctrl_c([smu, afm])


@sim_app.command("neware")
def sim_neware(
    port: int = typer.Option(0, "--port", help="TCP port on 127.0.0.1 (0 = any free port; a real BTS uses 502)."),
    channels: int = typer.Option(8, "--channels", help="Number of channels (1-256), 8 per unit (subdevid)."),
    cell: str = typer.Option("hl_llzo", "--cell", help=f"Cell preset of every channel: {_PRESETS}."),
    cell_ccd: Optional[float] = typer.Option(None, "--cell-ccd-mA-cm2", help="Override the cells' CCD."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the first channel's cell (channel k: seed + k)."),
    cell_param: Optional[list[str]] = typer.Option(None, "--cell-param", help=_CELL_PARAM_HELP),
    speed: str = typer.Option("1", "--speed", help="Simulated time per wall second."),
) -> None:
    """Serve a simulated NEWARE BTS (client API, XML over TCP) with a Li|SSE|Li cell per channel until Ctrl-C."""
    params, clock = _sim_cell(cell, speed, cell_param, ccd_mA_cm2=cell_ccd, seed=seed)
    try:
        server, ids = simulated.serve_neware(params, clock, channels=channels, port=port)
    except ValueError as exc:
        raise _fail(f"--channels/--cell: {exc}") from None
    except OSError as exc:
        raise _fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    host, bound = server.address
    console.print(f"{host}:{bound}")
    console.print(f"{len(ids)} channels (devid-subdevid-chlid): {ids[0]} … {ids[-1]}; cell: {cell}, "
                  f"CCD {params.ccd_mA_cm2:g} mA cm⁻², {params.temperature_C:g} °C, speed ×{clock.speed:g}. Ctrl-C to stop.",
                  style="dim")
    _serve_until_ctrl_c([server])


@sim_app.command("chamber")
def sim_chamber(
    port: int = typer.Option(0, "--port", help="TCP port on 127.0.0.1 (0 = any free port; a BINDER chamber's interface uses 10001)."),
    speed: str = typer.Option("1", "--speed", help="Simulated time per wall second (the client must match)."),
    start_C: float = typer.Option(25.0, "--start-C", help="Air temperature and set point at power-on (°C)."),
    framing: str = typer.Option("rtu", "--framing", help="rtu: RTU frames over TCP, as the chamber's own interface; tcp: MODBus/TCP."),
) -> None:
    """Serve a simulated BINDER climate chamber (MB1 controller, MODBus) until Ctrl-C."""
    from labctl.engine.clock import ScaledClock

    speed_value = _speed(speed)
    if math.isinf(speed_value):
        raise _fail("--speed max needs the client in the same process; give a number")
    clock = ScaledClock(speed_value)
    try:
        params = simulated.chamber_parameters(start_C=start_C)
    except ValueError as exc:
        raise _fail(f"--start-C: {exc}") from None
    try:
        server = simulated.serve_chamber(params, clock, port=port, framing=framing)
    except ValueError as exc:
        raise _fail(f"--framing: {exc}") from None
    except OSError as exc:
        raise _fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    console.print(server.resource)
    console.print(f"BINDER chamber (MB1, {framing} framing), {params.start_C:g} °C, set points "
                  f"{params.min_setpoint_C:g} … {params.max_setpoint_C:g} °C, ramps ≤ {params.max_heating_K_min:g} / "
                  f"{params.max_cooling_K_min:g} K min⁻¹, τ {params.time_constant_s:g} s, speed ×{clock.speed:g}. "
                  "Ctrl-C to stop.", style="dim")
    _serve_until_ctrl_c([server])


def main() -> None:
    app()


if __name__ == "__main__":
    main()
