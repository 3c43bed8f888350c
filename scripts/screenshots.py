"""Make the README's screenshots from the real program: the bench window driving a simulated
CCD staircase, during the run and after it.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py     # or under Xvfb: xvfb-run python ...

Writes ``docs/gui_ccd_running.png`` (the run in progress, output on) and
``docs/gui_ccd_finished.png`` (the same run ended by the short, CCD in the log). The run files
go to a temporary directory.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication  # noqa: E402

from ui.app import build_window  # noqa: E402


def wait(app: QApplication, condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("screenshots: the run did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    out = REPO / "docs"
    out.mkdir(exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="labctl-shots-") as runs:
        window = build_window(simulate=True, runs_dir=Path(runs))
        window.resize(1600, 950)
        window.show()
        window.station_panel.identify("smu", None)
        wait(app, lambda: "MODEL 2400" in window.station_panel.idn("smu"), 20)
        window.run_panel.speed_box.setCurrentText("6000")
        window.run_panel.start_button.click()
        wait(app, lambda: window.view is not None and len(window.view.buffer)
             and window.view.buffer.view("test_time_s")[-1] > 6.3 * 3600, 60)
        wait(app, lambda: window.view.status is not None, 5)
        for _ in range(5):  # let a frame or two draw
            app.processEvents()
            time.sleep(0.12)
        window.grab().save(str(out / "gui_ccd_running.png"))
        wait(app, lambda: window.view.finished, 120)
        for _ in range(5):
            app.processEvents()
            time.sleep(0.12)
        window.grab().save(str(out / "gui_ccd_finished.png"))
        window.ask_on_close = lambda runs: "stop"
        window.close()
    print(f"wrote {out / 'gui_ccd_running.png'} and {out / 'gui_ccd_finished.png'}")


if __name__ == "__main__":
    main()
