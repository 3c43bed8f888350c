"""Make the README's screenshots from the real program: the bench window driving simulated runs.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py     # or under Xvfb: xvfb-run python ...
    python scripts/screenshots.py --only cafm,grid               # some of them

Writes to ``docs/``:

- ``gui_ccd_running.png``, ``gui_ccd_finished.png``: a CCD staircase in progress (output on),
  then ended by the short (CCD in the log);
- ``gui_cafm_running.png``, ``gui_cafm_finished.png``: the c-AFM example (triggering bias at
  grain boundaries vs interiors) in progress — I–V curves, triggering bias per site, the
  current map before — and finished, with the map after;
- ``gui_memristor_running.png``: memristor set/reset cycling with the tip, on/off ratio and
  HRS/LRS per cycle;
- ``gui_grid.png``: the channel grid of a 12-cell run (``labctl run a.yaml@smu1 …``): CCD
  staircases and cycling cells, the shorted ones framed red.

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

from ui.app import build_window  # noqa: E402
from ui.main_window import MainWindow  # noqa: E402
from ui.protocol_panel import EXAMPLES  # noqa: E402

OUT = REPO / "docs"
SHOTS = ("ccd", "cafm", "memristor", "grid")
SIZE = (1600, 950)


def wait(app: QApplication, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: {what} did not happen within {timeout_s:g} s")
        app.processEvents()
        time.sleep(0.02)


def settle(app: QApplication, seconds: float = 0.6) -> None:
    """Let a few frames draw."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.03)


def shoot(window: MainWindow, name: str) -> Path:
    path = OUT / name
    window.grab().save(str(path))
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return path


def new_window(runs: Path, app: QApplication, protocol: Path | None = None) -> MainWindow:
    window = build_window(simulate=True, runs_dir=runs, protocol=protocol)
    window.resize(*SIZE)
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


def ccd(app: QApplication, runs: Path) -> None:
    window = new_window(runs, app)
    start(window, app, "6000")
    wait(app, lambda: len(window.view.buffer) and window.view.buffer.view("test_time_s")[-1] > 6.3 * 3600, 60,
         "6.3 h of the CCD run")
    settle(app)
    shoot(window, "gui_ccd_running.png")
    wait(app, lambda: window.view.finished, 120, "the CCD run's end")
    settle(app)
    shoot(window, "gui_ccd_finished.png")
    close(window)


def cafm(app: QApplication, runs: Path) -> None:
    window = new_window(runs, app, EXAMPLES / "cafm_gb_vs_gi.yaml")
    start(window, app, "5")
    plots = window.sweep_plots
    wait(app, lambda: len(plots.run.sites["triggering_bias_V"]) >= 9, 240, "nine c-AFM sites")
    settle(app)
    shoot(window, "gui_cafm_running.png")
    wait(app, lambda: window.view.finished, 300, "the c-AFM run's end")
    settle(app)
    shoot(window, "gui_cafm_finished.png")
    close(window)


def memristor(app: QApplication, runs: Path) -> None:
    window = new_window(runs, app, EXAMPLES / "memristor_tip.yaml")
    start(window, app, "5")
    wait(app, lambda: len(window.sweep_plots.run.cycles["cycle"]) >= 60, 240, "60 memristor cycles")
    settle(app)
    shoot(window, "gui_memristor_running.png")
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
        data["name"] = f"cell {k + 1}"
        path = protocols / f"cell{k + 1:02d}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        specs.append(f"{path}@smu{k + 1}")
    out = runs / "twelve_cells"
    process = subprocess.Popen([sys.executable, "-m", "labctl.cli", "run", *specs, "--simulate", "--speed", "3600",
                                "-o", str(out)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        window = build_window(simulate=True, runs_dir=runs)
        window.resize(*SIZE)
        window.show()
        wait(app, out.is_dir, 30, "the run directory")
        window.open_grid([out])
        wait(app, lambda: len(window.grid.tiles) == 12, 60, "twelve channels")
        wait(app, lambda: sum(t.fault for t in window.grid.tiles.values()) >= 5, 120, "five shorts")
        settle(app, 1.5)
        shoot(window, "gui_grid.png")
        close(window)
    finally:
        process.send_signal(signal.SIGINT)  # the cells stop safely, output off
        process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(SHOTS), help=f"comma-separated, of: {', '.join(SHOTS)}")
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SHOTS))
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(unknown)}; one of {', '.join(SHOTS)}")
    OUT.mkdir(exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    for name in chosen:
        with tempfile.TemporaryDirectory(prefix="labctl-shots-") as runs:
            globals()[name](app, Path(runs))


if __name__ == "__main__":
    main()
