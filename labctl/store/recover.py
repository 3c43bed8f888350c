"""Bring a run file back after its writer died, and find where the run must pick up.

A writer killed in SWMR mode (SIGKILL, power loss) leaves the file consistent up to its last
flush, but marked "open for write" in the superblock: HDF5 then opens it only for SWMR
reading (``h5clear -s`` is the HDF Group's tool for the mark; it is not on every machine).
:func:`copy_run` copies that consistent SWMR view into a new file with the plain h5py API;
:meth:`labctl.store.RunFileWriter.append` then moves the copy over the original atomically,
so the run continues in the same path. Columns that a crash left at different lengths (a
batch is appended column by column) are cut to the shortest, which loses at most the
readings of the last, unflushed batch.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from labctl.engine.delegated import AttachPoint
from labctl.engine.software_timed import ResumePoint
from labctl.store.reader import RunFile, RunFileError

#: Step end reasons after which the next step starts afresh.
_FINISHED = {"time", "voltage", "current", "charge", "until", "short", "soft_short"}
#: Run statuses a resume may continue; the others ended for a reason of the cell's.
RESUMABLE = {"running", "interrupted", "instrument_lost", "error", "stopped", "unknown"}


def needs_recovery(path: str | Path) -> bool:
    """True if the file is still marked open by a writer that died."""
    try:
        with h5py.File(path, "r"):
            return False
    except OSError as exc:
        if "already open for write" in str(exc):
            return True
        raise RunFileError(f"{path}: not a readable HDF5 file ({exc})") from None


def copy_run(path: str | Path, dst: h5py.File) -> bool:
    """Copy the run file at ``path`` into ``dst`` (a new file open for writing).

    A file left open by a dead SWMR writer is read through its consistent SWMR view, and its
    columns are cut to the shortest (a batch is appended column by column). Returns True in
    that case.

    Raises:
        RunFileError: the file is not readable, even in SWMR mode.
    """
    crashed = needs_recovery(path)
    try:
        with h5py.File(path, "r", swmr=crashed, libver="latest", locking=False) as src:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for name in src:
                src.copy(src[name], dst, name=name)
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read the run file to continue it ({exc})") from None
    for group in dst["channels"].values():
        n = min(ds.shape[0] for ds in group.values())
        for ds in group.values():
            if ds.shape[0] != n:
                ds.resize((n,))
    return crashed


def resume_point(run: RunFile, channel: str) -> ResumePoint:
    """Where the run of ``channel`` picks up.

    The checkpoint is the ``steps`` table (a row after every step) plus the readings after it:
    a step with readings but no row was cut by the crash, and only its remainder will run.
    """
    cols = run.columns(channel)
    steps = [s for s in run.steps() if s["channel"] == channel]
    t = cols["test_time_s"]
    if len(t) == 0:
        return ResumePoint(step_index=0, t_offset_s=0.0)
    last_t = float(t[-1])
    charge = float(cols["charge_C"][-1])
    last_row = steps[-1] if steps else None
    index = int(cols["step_index"][-1])
    if last_row is not None and last_row["step_index"] == index:
        if last_row["reason"] in _FINISHED:
            return ResumePoint(step_index=index + 1, t_offset_s=last_t, charge_C=charge,
                               previous_reason=str(last_row["reason"]))
        # A step ended early by a stop, an error or a lost instrument: its remainder runs.
        return ResumePoint(step_index=index, t_offset_s=last_t, charge_C=charge,
                           step_elapsed_s=last_row["end_s"] - last_row["start_s"],
                           step_charge_C=last_row["charge_C"], step_start_s=last_row["start_s"])
    in_step = np.flatnonzero(cols["step_index"] == index)
    first = int(in_step[0])
    return ResumePoint(step_index=index, t_offset_s=last_t, charge_C=charge,
                       step_elapsed_s=last_t - float(t[first]),
                       step_charge_C=charge - float(cols["charge_C"][first]),
                       step_start_s=float(t[first]))


def attach_point(run: RunFile, channel: str) -> AttachPoint:
    """Where the delegated run of ``channel`` continues: its cycler test and last point (the
    ``cycler_test_id`` / ``cycler_seq_id`` columns of the last reading), and the readings after
    its last step row, which the engine replays instead of downloading again.

    Raises:
        RunFileError: the channel has no cycler columns (not a delegated run).
    """
    cols = run.columns(channel)
    if "cycler_seq_id" not in cols:
        raise RunFileError(f"{run.path}: channel {channel!r} was not run by a cycler (no cycler_seq_id column)")
    steps = [s for s in run.steps() if s["channel"] == channel]
    first = int(steps[-1]["step_index"]) + 1 if steps else 0
    charge = float(steps[-1]["cumulative_charge_C"]) if steps else 0.0
    t, index = cols["test_time_s"], cols["step_index"]
    if len(t) == 0:
        return AttachPoint(test_id=0, last_seq_id=0, last_test_time_s=0.0, step_index=0, charge_base_C=0.0)
    since = np.flatnonzero(index >= first)
    start = int(since[0]) if len(since) else len(t)
    keep = ("test_time_s", "voltage_V", "current_A", "step_index", "charge_C")
    return AttachPoint(test_id=int(cols["cycler_test_id"][-1]), last_seq_id=int(cols["cycler_seq_id"][-1]),
                       last_test_time_s=float(t[-1]), step_index=first, charge_base_C=charge,
                       since_checkpoint={k: cols[k][start:] for k in keep})
