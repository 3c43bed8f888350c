"""The incremental follower: two followers of one growing file in one process (the window and
the channel grid) both read exactly the file's rows."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from labctl.store.follow import RunFollower, run_channels
from tests.conftest import REPO

#: A writer process: 60 batches of 300 readings (rows 0 … 17 999, test time = row), then the end.
WRITER = """
import json, sys, time
import numpy as np
from labctl.events import READING_COLUMNS, Readings, RunEnded, RunStarted
from labctl.store import RunFileWriter
w = RunFileWriter(sys.argv[1], ["smu"], {"protocol_kind": "symmetric_cycling", "protocol_text": ""})
w(RunStarted(0.0, "smu", json.dumps({}), 0, time.time()))
print("ready", flush=True)
sys.stdin.readline()
for k in range(60):
    t = np.arange(300 * k, 300 * (k + 1), dtype=float)
    cols = {c.name: np.zeros(300, c.dtype) for c in READING_COLUMNS}
    cols.update(test_time_s=t, voltage_V=t * 1e-3, step_index=(t // 1000).astype("i4"))
    w(Readings("smu", cols))
    time.sleep(0.005)
w(RunEnded(18000.0, "smu", "completed", "done", time.time()))
w.close()
"""


def test_two_followers_of_one_growing_file_read_the_files_rows(tmp_path):
    path = tmp_path / "run.h5"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        grid = RunFollower(path, columns=["voltage_V"])  # what a grid tile reads
        window = RunFollower(path)  # what the window reads
        assert run_channels(path) == ["smu"]  # a third look while both hold the file
        got = {"grid": [], "window": []}
        for follower, name in ((grid, "grid"), (window, "window")):
            update = follower.poll()
            got[name].append(update.rows.get("test_time_s", np.empty(0)))
        writer.stdin.write("\n")
        writer.stdin.flush()
        deadline = time.monotonic() + 120
        while not (grid.finished and window.finished):
            assert time.monotonic() < deadline, "the followers did not finish"
            for follower, name in ((grid, "grid"), (window, "window")):
                update = follower.poll()
                if update.n_rows:
                    got[name].append(update.rows["test_time_s"])
            time.sleep(0.002)
        assert writer.wait(30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
    for name, parts in got.items():
        t = np.concatenate(parts)
        # past the first chunk (8192 rows) a second reader used to get the first chunk's data again
        assert np.array_equal(t, np.arange(18000.0)), (name, np.flatnonzero(t != np.arange(len(t)))[:3])
