"""The channel grid: a directory of run files as small plots, one flagged as shorted, one
still being written; a click opens a channel big (offscreen)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from labctl.events import READING_COLUMNS, Detected, Readings, RunEnded, RunStarted
from labctl.store import RunFileWriter
from tests.conftest import REPO
from ui.channel_grid import FAULTS, ChannelGrid, grid_columns


def readings(channel: str, t0: float, n: int, volts: float) -> Readings:
    t = t0 + np.arange(n, dtype=float)
    columns = {c.name: np.zeros(n, c.dtype) for c in READING_COLUMNS}
    columns.update(test_time_s=t, voltage_V=volts + 0.01 * np.sin(t / 50))
    return Readings(channel, columns)


def run_file(path, channel: str, *, n: int, status: str | None, volts: float = 0.1) -> RunFileWriter:
    """A small run file of one channel: ``n`` readings, then ended with ``status`` (a short is
    announced by its event first); ``status=None`` leaves it open, still being written."""
    writer = RunFileWriter(path, [channel], {"protocol_kind": "symmetric_cycling", "protocol_text": ""})
    writer(RunStarted(0.0, channel, json.dumps({}), 0, time.time()))
    writer(readings(channel, 0.0, n, volts))
    if status == "short":
        writer(Detected(n - 1.0, channel, "short", "short: voltage fell 80 % in 5 readings", 3))
    if status is not None:
        writer(RunEnded(float(n), channel, status, f"{status} (test)", time.time()))
    return writer


WRITER = """
import sys, time
from tests.ui.test_channel_grid import RunEnded, readings, run_file
live = run_file(sys.argv[1], "smu3", n=1000, status=None, volts=0.3)
print("ready", flush=True)
sys.stdin.readline()
live(readings("smu3", 1000.0, 500_000, 0.3))
print("grown", flush=True)
sys.stdin.readline()
live(RunEnded(501_000.0, "smu3", "instrument_lost", "SMU 3 gone", time.time()))
"""


class LiveWriter:
    """A run file written by another process (HDF5 will not open a file twice in one process
    while it is being written), one step per :meth:`next`."""

    def __init__(self, path, processes):
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=REPO)
        processes.append(self.proc)
        assert self.proc.stdout.readline().strip() == "ready"

    def next(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()


def drawn(tile):
    x = tile.curve.getData()[0]
    return 0 if x is None else len(x)


def test_grid_of_a_directory_flags_the_short_follows_a_growing_file_and_opens_one(window_factory, qtbot, tmp_path,
                                                                                  processes):
    runs = tmp_path / "cells"
    runs.mkdir()
    run_file(runs / "cell_a.h5", "smu1", n=5000, status="completed")
    run_file(runs / "cell_b.h5", "smu2", n=3000, status="short", volts=0.2)
    live = LiveWriter(runs / "cell_c.h5", processes)
    (runs / "notes.h5").write_text("not a run file")  # skipped, not fatal
    window = window_factory(simulate=False)
    grid = window.open_grid([runs])
    assert window.tabs.currentWidget() is grid
    qtbot.waitUntil(lambda: len(grid.tiles) == 3, timeout=10_000)
    tiles = {t.channel: t for t in grid.tiles.values()}
    qtbot.waitUntil(lambda: tiles["smu1"].status == "completed" and tiles["smu2"].status == "short", timeout=10_000)
    assert tiles["smu2"].fault and not tiles["smu1"].fault and not tiles["smu3"].fault
    assert tiles["smu2"].plot.getViewBox().border.color().name() == "#c62828"  # the red frame
    assert "short" in tiles["smu2"].plot.titleLabel.text and "smu2" in tiles["smu2"].plot.titleLabel.text
    assert tiles["smu3"].status == "running"
    qtbot.waitUntil(lambda: drawn(tiles["smu1"]) > 0, timeout=5_000)
    assert len(tiles["smu1"].curve.xData) <= 2000 + 16  # block extremes of the 5000 readings, the extremes kept
    assert tiles["smu1"].curve.yData.max() == tiles["smu1"].buffer.view("voltage_V").max()
    assert "3 channels" in grid.summary.text() and "1 with a fault" in grid.summary.text()
    # the status table beside the tiles: one row a channel, the short's red until acknowledged
    assert [grid.table.horizontalHeaderItem(c).text() for c in range(9)] == [
        "channel", "protocol", "state", "V", "I", "step", "cycle", "elapsed", "last event"]
    row = grid.row_texts(tiles["smu2"])
    assert row[0] == "smu2" and row[2] == "short" and row[3].endswith("V") and row[7] == "50.0 min"
    assert row[8].startswith("run_ended: short")
    assert grid.table.item(tiles["smu2"].row, 0).background().color().name() == "#ffcdd2"
    assert [a.kind for a in tiles["smu2"].alarms] == ["short"] and not tiles["smu1"].alarms
    assert not window.alarm_banner.isHidden() and "smu2" in window.alarm_banner.label.text()
    ack = grid.table.cellWidget(tiles["smu2"].row, 10)
    assert ack.isEnabled() and not grid.table.cellWidget(tiles["smu1"].row, 10).isEnabled()
    ack.click()  # one click
    assert not tiles["smu2"].alarms and window.alarm_banner.isHidden()
    logged = (runs / "cell_b.h5.alarms.jsonl").read_text()
    assert '"kind": "short"' in logged and grid.who in logged
    assert grid.table.item(tiles["smu2"].row, 0).background().color().name() == "#fff3e0"  # failed, seen
    assert tiles["smu2"].plot.getViewBox().border.color().name() == "#c62828"  # the frame stays
    stop = grid.table.cellWidget(tiles["smu3"].row, 9)
    assert not stop.isEnabled()  # no control socket: nothing to stop from here

    # the live file grows: only the new rows are read, and the tile follows
    live.next()
    qtbot.waitUntil(lambda: len(tiles["smu3"].buffer) == 501_000, timeout=10_000)
    # the data handed to the tile ends at the newest reading (pyqtgraph may thin it further for the pixels)
    qtbot.waitUntil(lambda: drawn(tiles["smu3"]) and tiles["smu3"].curve.xData[-1] == 500_999.0, timeout=5_000)
    assert len(tiles["smu3"].curve.xData) < 2 * 2000 + 4096  # decimated for a small plot
    live.next()
    qtbot.waitUntil(lambda: tiles["smu3"].status == "instrument_lost" and tiles["smu3"].fault, timeout=10_000)

    # a new file in the directory gets a tile of its own
    run_file(runs / "cell_d.h5", "smu4", n=100, status="completed")
    qtbot.waitUntil(lambda: len(grid.tiles) == 4, timeout=10_000)

    # a click on a tile opens that run big
    grid.open_requested.emit(str(tiles["smu2"].path), "smu2")  # what a click on it sends
    qtbot.waitUntil(lambda: window.view is not None and window.view.finished, timeout=10_000)
    assert window.tabs.currentIndex() == 0 and str(window.view.path) == tiles["smu2"].path
    assert len(window.view.buffer) == 3000 and "short" in window.event_log.kinds()
    assert grid.tile_at(tiles["smu1"].plot.sceneBoundingRect().center()) is tiles["smu1"]


@pytest.mark.parametrize("n, columns", [(1, 1), (3, 3), (4, 4), (9, 4), (16, 4), (17, 6), (64, 8)])
def test_grid_shape(n, columns):
    assert grid_columns(n) == columns


def test_faults_are_the_failing_endings():
    assert {"short", "error", "instrument_lost"} <= FAULTS and "completed" not in FAULTS and "stopped" not in FAULTS
    assert ChannelGrid  # importable without a display thanks to the offscreen platform
