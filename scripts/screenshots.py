"""Make the README's screenshots from the real program: the bench window driving simulated runs.

    xvfb-run -a python scripts/screenshots.py                     # or QT_QPA_PLATFORM=offscreen
    python scripts/screenshots.py --only kinds,grid              # some of them
    python scripts/screenshots.py --only kinds --kinds eis,lsv   # some kinds

Writes to ``docs/``:

- ``gui_kind_<kind>.png``: every protocol kind with an example file, run from the window on the
  simulated station to its end (the readout with the result in large type, the kind's plots,
  the result marked on them, the run's protocol in the panel) — a new kind with an example gets
  its screenshot without a change here;
- ``gui_readout.png``: a CCD staircase in progress at ×600: the live readout (V, I, j, step
  n / N and its label, cycle, time left in the step, elapsed, remaining), output on;
- ``gui_alarm.png``: the same run ended by its short: the alarm banner that stays until
  acknowledged, the short marked on the plots and its step ringed, CCD = 1.8 mA cm⁻²;
- ``gui_pause.png``: a cycling run in real time, paused for a while: the pause shaded on the
  plots and left out of the step means and the elapsed time;
- ``gui_grid.png``: the channel grid of a 12-cell run (``labctl run a.yaml@smu1 … --control``)
  with its status table: CCD staircases and cycling cells, the shorted ones framed red;
- ``gui_queue.png``: a run queue (EIS → CCD → EIS) going in its own process;
- ``gui_small.png``: the window at 1280 × 720 (nothing cut off).

Every run is started from the window (the grid's from the command line, as a lab would) on
the simulated station; the run files go to a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from protocols import KINDS, load_protocol  # noqa: E402
from ui.app import build_window  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.protocol_panel import EXAMPLES  # noqa: E402

OUT = REPO / "docs"
SHOTS = ("kinds", "readout", "pause", "grid", "queue", "small")
SIZE = (1600, 950)
#: The example shown for a kind with several (else the first, by name).
PREFERRED = {"ccd_staircase": "ccd_llzo.yaml", "symmetric_cycling": "cycling_llzo_0p8.yaml",
             "memristor_cycling": "memristor_tip.yaml",
             "full_cell_cycling": "full_cell_nmc811_fse_rate.yaml"}  # formation and a rate test: 6 s at max


def wait(app: QApplication, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: {what} did not happen within {timeout_s:g} s")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 0.8) -> None:
    """Let a few frames draw."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.03)


def shoot(window: MainWindow, name: str) -> Path:
    path = OUT / name
    window.grab().save(str(path))
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)", flush=True)
    return path


def new_window(runs: Path, app: QApplication, protocol: Path | None = None, size: tuple[int, int] = SIZE) -> MainWindow:
    window = build_window(simulate=True, runs_dir=runs, protocol=protocol, discover=False)
    window.resize(*size)
    window.show()
    for name in window.station_panel.simulated:  # the IDN column filled, as an operator would
        window.station_panel.identify(name, None)
    wait(app, lambda: all(window.station_panel.idn(n) and window.station_panel.idn(n) != "connecting…"
                          for n in window.station_panel.simulated), 20, "identification")
    return window


def start(window: MainWindow, app: QApplication, speed: str) -> None:
    window.run_panel.speed_box.setCurrentText(speed)
    window.run_panel.start_button.click()
    wait(app, lambda: window.view is not None and window.view.status is not None, 60, "the run's start")


def close(window: MainWindow) -> None:
    window.ask_on_close = lambda runs: "stop"
    window.close()


def examples_by_kind() -> dict[str, Path]:
    """One example file per protocol kind that has one."""
    found: dict[str, Path] = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        kind = load_protocol(path).kind
        if kind not in found or PREFERRED.get(kind) == path.name:
            found[kind] = path
    return found


def kinds(app: QApplication, runs: Path, which: list[str] | None = None) -> None:
    examples = examples_by_kind()
    for kind in which or KINDS:
        if kind not in examples:
            print(f"no example of {kind}: no screenshot", flush=True)
            continue
        window = new_window(runs, app, examples[kind])
        start(window, app, "max")
        wait(app, lambda: window.view.finished, 600, f"the {kind} run's end")
        window.alarm_banner.acknowledge()  # a short is this kind's result: its banner has its own shot
        settle(app, 1.2)
        shoot(window, f"gui_kind_{kind}.png")
        close(window)


def readout(app: QApplication, runs: Path) -> None:
    window = new_window(runs, app)
    start(window, app, "600")
    wait(app, lambda: len(window.view.buffer) and window.view.buffer.view("test_time_s")[-1] > 6.3 * 3600, 60,
         "6.3 h of the CCD run")
    settle(app)
    shoot(window, "gui_readout.png")
    wait(app, lambda: window.view.finished, 120, "the CCD run's end")
    settle(app)
    shoot(window, "gui_alarm.png")
    close(window)


PAUSE_PROTOCOL = """kind: symmetric_cycling
name: Li|H.L.-LLZO|Li, 0.5 mA cm-2, 60 s half-cycles (paused in real time)
current_density_mA_cm2: 0.5
half_cycle_s: 60
cycles: 3
voltage_limit_V: 5
record_interval_s: 0.5
cell:
  area_cm2: 1
  electrolyte: LLZO with PPC-LiTFSI homogenising layer
  electrolyte_thickness_um: 300
  li_thickness_um: 100
  stack_pressure_MPa: 0
  temperature_C: 25
simulated_cell:
  preset: hl_llzo
"""


def pause(app: QApplication, runs: Path) -> None:
    protocol = runs / "pause.yaml"
    protocol.write_text(PAUSE_PROTOCOL, encoding="utf-8")
    window = new_window(runs, app, protocol)
    start(window, app, "1")
    view = window.view
    wait(app, lambda: len(view.buffer) and view.buffer.view("test_time_s")[-1] > 20, 120, "20 s of the run")
    window.run_panel.pause_button.click()
    wait(app, lambda: view.progress.pauses.paused, 30, "the pause")
    settle(app, 15.0)  # the operator holds the cell at 0 A for a while
    window.run_panel.resume_button.click()
    wait(app, lambda: len(view.steps) >= 2, 240, "two half-cycles")
    settle(app, 1.5)
    shoot(window, "gui_pause.png")
    close(window)


def grid(app: QApplication, runs: Path) -> None:
    """Twelve cells at once from the command line: six CCD staircases (cells with a CCD from
    0.6 to 1.85 mA cm⁻²) and six cycling at 0.8 mA cm⁻² (two of them on cells whose CCD is
    below that); the window's grid follows the directory."""
    protocols = runs / "cells"
    protocols.mkdir()
    specs = []
    for k in range(12):
        source = EXAMPLES / ("ccd_llzo.yaml" if k < 6 else "cycling_llzo_0p8.yaml")
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        ccd_mA_cm2 = 0.6 + 0.25 * k if k < 6 else (0.7 if k in (7, 10) else 1.8)
        data["simulated_cell"] = {**data.get("simulated_cell", {}), "ccd_mA_cm2": ccd_mA_cm2, "seed": k}
        data["name"] = f"cell {k + 1}: " + ("CCD staircase" if k < 6 else "cycling 0.8 mA cm-2")
        path = protocols / f"cell{k + 1:02d}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        specs.append(f"{path}@smu{k + 1}")
    out = runs / "twelve_cells"
    process = subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", *specs, "--simulate", "--speed", "3600",
                                "-o", str(out), "--control"], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        window = build_window(simulate=True, runs_dir=runs, discover=False)
        window.resize(*SIZE)
        window.show()
        wait(app, out.is_dir, 30, "the run directory")
        window.open_grid([out])
        wait(app, lambda: len(window.grid.tiles) == 12, 60, "twelve channels")
        wait(app, lambda: sum(t.fault for t in window.grid.tiles.values()) >= 5, 120, "five shorts")
        tiles = sorted(window.grid.tiles.values(), key=lambda t: t.row)
        window.grid.acknowledge(next(t for t in tiles if t.alarms))  # one acknowledged, the others waiting
        settle(app, 1.5)
        shoot(window, "gui_grid.png")
        window.ask_on_close = lambda going: "leave"
        window.close()
    finally:
        process.send_signal(signal.SIGINT)  # the cells stop safely, output off
        process.wait(60)


def queue(app: QApplication, runs: Path) -> None:
    window = new_window(runs, app)
    for example in ("eis_fse.yaml", "ccd_llzo.yaml", "eis_fse.yaml"):
        window.protocol_panel.load(EXAMPLES / example)
        window.queue_current_protocol()
    window.run_panel.speed_box.setCurrentText("600")
    window.queue_panel.start_button.click()
    wait(app, lambda: window.queue_panel.running and window.queue_panel.states()[:2] == ["done (completed)", "running"],
         120, "the queue's second run")
    wait(app, lambda: window.view is not None and window.view.attrs.get("protocol_kind") == "ccd_staircase"
         and len(window.view.buffer) > 2000, 60, "the CCD in view")
    window.tabs.setCurrentWidget(window.queue_panel)
    settle(app, 1.0)
    shoot(window, "gui_queue.png")
    close(window)


def small(app: QApplication, runs: Path) -> None:
    window = new_window(runs, app, EXAMPLES / "memristor_tip.yaml", size=(1280, 720))
    start(window, app, "5")
    wait(app, lambda: len(window.sweep_plots.run.cycles["cycle"]) >= 12, 240, "12 memristor cycles")
    settle(app)
    shoot(window, "gui_small.png")
    close(window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SHOTS), help=f"comma-separated, of: {', '.join(SHOTS)}")
    parser.add_argument("--kinds", default="", help="comma-separated protocol kinds for the kinds shots (default: all)")
    args = parser.parse_args()
    which = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if set(which) - set(KINDS):
        raise SystemExit(f"--kinds: unknown {', '.join(sorted(set(which) - set(KINDS)))}; one of {', '.join(KINDS)}")
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SHOTS))
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(unknown)}; one of {', '.join(SHOTS)}")
    OUT.mkdir(exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix="labctl-shots-") as runs:
            if name == "kinds":
                kinds(app, Path(runs), which)
            else:
                globals()[name](app, Path(runs))


if __name__ == "__main__":
    main()
