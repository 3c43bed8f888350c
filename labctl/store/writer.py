"""The HDF5 run file, written by a subscriber to the engine's event stream.

What the file holds and where: :mod:`labctl.store.layout` (and impedance spectra,
``spectra/<channel>``: :mod:`labctl.store.spectra`). The file is built at a staging path,
switched to SWMR mode and only then moved to its name (rename is atomic), so other processes
(the GUI, ``labctl inspect``, h5py scripts with ``swmr=True``) can read it while it is written,
and whoever finds it at its path finds it readable whenever the writer dies. Each readings
batch is appended and flushed at once; the engine publishes a batch at least every 0.25 s of
wall time, so at most that much data is ever at risk. One writer per run: the writer holds the
run's lock (:mod:`labctl.store.lock`) from creation (or :meth:`RunFileWriter.append`) to
:meth:`RunFileWriter.close`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py

from labctl.events import Column, Detected, Readings, RunEnded, RunStarted, Spectrum, StepEnded
import labctl.store.layout as layout
from labctl.store.layout import CHUNK_ROWS, EVENT_DTYPE, FORMAT, STEP_DTYPE, RunFileError, encode_attr, staging_path
from labctl.store.lock import RunLock
from labctl.store.recover import copy_run
from labctl.store.spectra import GROUP as SPECTRA_GROUP
from labctl.store.spectra import append_spectrum, create_spectra, spectrum_columns


def utc_now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def software_versions() -> dict[str, str]:
    """Versions of labctl and the libraries that shape its data (for provenance)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version(), "hdf5": h5py.version.hdf5_version}
    for dist in ("labctl", "numpy", "h5py", "pymeasure", "pyvisa", "pyvisa-py", "pydantic"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


class RunFileWriter:
    """Subscriber that writes one run to ``path`` (created; an existing file is refused).

    Args:
        path: the ``.h5`` file to create.
        channels: names of the channel groups the run will write to.
        attrs: root attributes (protocol text, station, operator, ``cell_*`` metadata …);
            ``None`` values are stored as empty strings, mappings as JSON.
        extra_columns: columns every channel group holds besides
            :data:`~labctl.events.READING_COLUMNS` (a delegated run's cycler test id and
            point number, :data:`labctl.engine.delegated.DELEGATED_COLUMNS`); every
            ``Readings`` batch must then carry them.
        spectra: create ``spectra/<channel>`` for every channel (with test time, cycle and
            step index), so the run's ``Spectrum`` events can be stored (SWMR mode cannot
            create datasets later).

    Attributes:
        lock: the run's lock, held until :meth:`close`; its ``taken_over`` names a dead
            writer's stale lock that was replaced.

    Raises:
        FileExistsError: ``path`` exists (a run file is never overwritten).
        RunFileError: a live process holds the run's lock (``RUN.h5.lock``).
        OSError: the file cannot be created.
    """

    def __init__(self, path: str | Path, channels: Iterable[str], attrs: Mapping[str, Any],
                 extra_columns: Iterable[Column] = (), *, spectra: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path}: a run file already exists there; choose another -o")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock.acquire(self.path)
        try:
            if self.path.exists():  # created while we took the lock
                raise FileExistsError(f"{self.path}: a run file already exists there; choose another -o")
            f = h5py.File(staging_path(self.path), "w", libver="latest")
            try:
                f.attrs[layout.A_FORMAT] = FORMAT
                f.attrs[layout.A_SOFTWARE_VERSIONS] = json.dumps(software_versions())
                f.attrs[layout.A_START_TIME_UTC] = utc_now_iso()
                f.attrs[layout.A_START_UNIX_TIME_S] = time.time()
                f.attrs[layout.A_END_TIME_UTC] = ""
                f.attrs[layout.A_STATUS] = layout.RUNNING
                f.attrs[layout.A_END_REASON] = ""
                for key, value in attrs.items():
                    f.attrs[key] = encode_attr(value)
                channels = list(channels)
                layout.create_layout(f, channels, extra_columns)
                if spectra:  # SWMR mode cannot create datasets later
                    for channel in channels:
                        create_spectra(f, channel, with_time=True, with_cycle=True, with_step=True)
                self._attach(f)
            except BaseException:
                f.close()
                staging_path(self.path).unlink(missing_ok=True)
                raise
        except BaseException:
            self.lock.release()
            raise
        self.recovered = False

    @classmethod
    def append(cls, path: str | Path) -> RunFileWriter:
        """Continue a run file (status back to ``running``), also one whose writer died.

        Takes the run's lock (a dead writer's stale lock is taken over), then copies the
        file's content into a new file, which replaces it atomically once it is in SWMR mode
        (see :func:`labctl.store.recover.copy_run`): a crash at any moment leaves either the
        old file or the new one, never a half-open one. :attr:`recovered` tells whether the
        old file was left open by a dead writer.

        Raises:
            RunFileError: a live process writes the run; the file is not a readable run file
                or is damaged (one line naming the file and the part).
        """
        self = cls.__new__(cls)
        self.path = Path(path)
        if not self.path.is_file():
            raise RunFileError(f"{self.path}: no such file")
        self.lock = RunLock.acquire(self.path)
        try:
            staging = staging_path(self.path)
            f = h5py.File(staging, "w", libver="latest")
            try:
                self.recovered = copy_run(self.path, f)
                f.attrs[layout.A_STATUS] = layout.RUNNING
                f.attrs[layout.A_END_REASON] = ""
                f.attrs[layout.A_END_TIME_UTC] = ""
                self._attach(f)
            except BaseException:
                f.close()
                staging.unlink(missing_ok=True)
                raise
        except BaseException:
            self.lock.release()
            raise
        return self

    def _attach(self, f: h5py.File) -> None:
        """Hold the datasets of a file built at the staging path, switch it to SWMR writing,
        and only then move it to :attr:`path` (rename is atomic): whoever finds the file at
        its path finds it readable, whenever the process dies."""
        self._file = f
        self._columns = {name: layout.columns(f, name) for name in layout.channel_names(f)}
        self._events = layout.events_table(f)
        self._spectra = dict(f[SPECTRA_GROUP].items()) if SPECTRA_GROUP in f else {}
        self._steps = layout.steps_table(f)
        self._running = set(self._columns)
        self._programs: dict[str, str] = {}
        self._statuses: dict[str, tuple[str, str]] = {}
        f.swmr_mode = True
        f.flush()
        os.replace(staging_path(self.path), self.path)
        self._closed = False

    # -- subscriber ------------------------------------------------------------------------
    def __call__(self, event: Any) -> None:
        if isinstance(event, Readings):
            self._append_readings(event)
        elif isinstance(event, StepEnded):
            s = event.summary
            self._append(self._steps, (event.channel, s.step_index, s.kind, s.label, s.cycle, s.current_A,
                                       s.current_density_mA_cm2, s.start_s, s.end_s, s.reason, s.n_points,
                                       s.voltage_end_V, s.voltage_mean_V, s.abs_voltage_max_V, s.charge_C,
                                       s.cumulative_charge_C), flush=False)  # goes out with the next readings
        elif isinstance(event, Spectrum):
            self._append_spectrum(event)
        elif isinstance(event, Detected):
            self._append(self._events, (event.t_s, event.channel, event.kind, event.step_index, event.message))
        elif isinstance(event, RunStarted):
            self._append(self._events, (event.t_s, event.channel, "run_started", event.start_step,
                                        f"run started at step {event.start_step}"))
            self._programs[event.channel] = event.program_json
        elif isinstance(event, RunEnded):
            self._append(self._events, (event.t_s, event.channel, "run_ended", -1, f"{event.status}: {event.reason}"))
            self._statuses[event.channel] = (event.status, event.reason)
            self._running.discard(event.channel)
            if not self._running:
                self.close()

    def _append_readings(self, batch: Readings) -> None:
        datasets = self._columns[batch.channel]
        n = len(batch)
        for name, values in batch.columns.items():
            ds = datasets[name]
            start = ds.shape[0]
            ds.resize((start + n,))
            ds[start:] = values
        self._file.flush()

    def _append_spectrum(self, event: Spectrum) -> None:
        """Store one spectrum under ``spectra/<channel>``.

        Raises:
            KeyError: the file was created without ``spectra=True`` (a bug of the caller).
        """
        if event.channel not in self._spectra:
            raise KeyError(f"{self.path}: no spectra/{event.channel} group (writer created without spectra=True)")
        n = len(event.frequency_Hz)
        columns = spectrum_columns(event.frequency_Hz, event.z_real_ohm, event.z_imag_neg_ohm,
                                   spectrum_index=event.spectrum_index, test_time_s=[event.t_s] * n,
                                   cycle_index=event.cycle, step_index=event.step_index)
        append_spectrum(self._spectra[event.channel], columns)
        self._file.flush()

    def _append(self, ds: h5py.Dataset, row: tuple, *, flush: bool = True) -> None:
        start = ds.shape[0]
        ds.resize((start + 1,))
        ds[start] = layout.table_row(ds.dtype, row)[0]
        if flush:
            self._file.flush()

    def close(self) -> None:
        """Finish the file: leave SWMR mode and record status, reason and end time.

        Called by itself when every channel has published ``RunEnded``; call it yourself
        after a crash of the caller (status ``unknown`` unless a channel reported one).
        Safe to call twice. Channel attributes (program JSON, per-channel status) cannot be
        written in SWMR mode, so they are stored here.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._file.flush()
            self._file.close()
            statuses = list(self._statuses.values())
            status, end_reason = statuses[0] if len(statuses) == 1 else ("unknown", "")
            if len(statuses) > 1:
                status = "completed" if all(s == "completed" for s, _ in statuses) else "mixed"
                end_reason = "; ".join(f"{ch}: {s}" for ch, (s, _) in self._statuses.items())
            # No file locking: a reader (the GUI, `labctl inspect`) holding the file with HDF5's
            # default lock must not make the run end without its status.
            with h5py.File(self.path, "r+", locking=False) as f:
                f.attrs[layout.A_STATUS] = status
                f.attrs[layout.A_END_REASON] = end_reason
                f.attrs[layout.A_END_TIME_UTC] = utc_now_iso()
                for channel, program_json in self._programs.items():
                    layout.channel_group(f, channel).attrs[layout.A_PROGRAM_JSON] = program_json
                for channel, (ch_status, ch_reason) in self._statuses.items():
                    group = layout.channel_group(f, channel)
                    group.attrs[layout.A_STATUS] = ch_status
                    group.attrs[layout.A_END_REASON] = ch_reason
        finally:
            self.lock.release()


def write_results(path: str | Path, results: Mapping[str, Any]) -> None:
    """Store analysis results in the ``results`` group of a finished run file, by the
    conventions of :func:`labctl.store.layout.write_group` (scalars as attributes, sequences as
    datasets, nested mappings as groups, 2-D arrays as HDF5 images). Existing entries of the
    same name are replaced. The run's lock is held meanwhile (readers then know a live
    process changes the file).

    Raises:
        RunFileError: a live process writes the run.
    """
    with RunLock.acquire(path), h5py.File(path, "r+", locking=False) as f:
        layout.write_group(f.require_group(layout.RESULTS), results)


__all__ = ["CHUNK_ROWS", "EVENT_DTYPE", "FORMAT", "RunFileWriter", "STEP_DTYPE", "software_versions",
           "utc_now_iso", "write_results"]
