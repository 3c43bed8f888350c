"""The HDF5 run file, written by a subscriber to the engine's event stream.

Layout (one file per run, readable with plain h5py):

* root attributes: ``format`` (``labctl-run/1``), ``protocol_text``, ``protocol_path``,
  ``station_text``, ``software_versions`` (JSON), ``operator``, ``cell_*`` metadata
  (``cell_area_cm2``, ``cell_electrolyte``, ``cell_electrolyte_thickness_um``,
  ``cell_li_thickness_um``, ``cell_stack_pressure_MPa``, ``cell_temperature_C``, …),
  ``start_time_utc`` / ``end_time_utc`` (ISO 8601), ``start_unix_time_s``, ``status`` and
  ``end_reason``;
* ``channels/<name>``: one resizable, chunked (uncompressed, see :data:`CHUNK_ROWS`) 1-D dataset per column of
  :data:`~labctl.events.READING_COLUMNS`, each with ``units`` and (where BDF has
  one) ``bdf_label`` attributes; the channel's step program as ``program_json``;
* ``events``: time, channel, kind, step, message (shorts, compliance, run end …);
* ``steps``: one row per executed step (:class:`~labctl.events.StepSummary`);
* ``results``: analysis output, written after the run by :func:`write_results`;
* ``spectra/<channel>`` (runs with impedance steps, ``spectra=True``): one row per frequency
  point of each :class:`~labctl.events.Spectrum` (:mod:`labctl.store.spectra`).

The file is opened in SWMR mode once its layout exists, so other processes (the GUI,
``labctl inspect``, h5py scripts with ``swmr=True``) can read it while it is written. Each
readings batch is appended and flushed at once; the engine publishes a batch at least every
0.25 s of wall time, so at most that much data is ever at risk.
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
import numpy as np

from labctl.events import READING_COLUMNS, Column, Detected, Readings, RunEnded, RunStarted, Spectrum, StepEnded
from labctl.store.spectra import GROUP as SPECTRA_GROUP
from labctl.store.spectra import append_spectrum, create_spectra, spectrum_columns

FORMAT = "labctl-run/1"
#: Rows per chunk of the reading columns. The columns are NOT compressed: in SWMR mode HDF5
#: never reuses the space of a compressed chunk that an append rewrote, so a real-time run
#: appending a reading or two every 0.25 s grew its file by a whole compressed chunk per
#: append (3 000 one-row appends: 34.6 MB for 24 kB of data). Uncompressed chunks are
#: rewritten in place; readings cost ~50 B each (a 12 000 h run at one reading a minute: 36 MB).
CHUNK_ROWS = 8192

_S = h5py.string_dtype("utf-8", 32)
EVENT_DTYPE = np.dtype(
    [("t_s", "f8"), ("channel", _S), ("kind", _S), ("step_index", "i4"),
     ("message", h5py.string_dtype("utf-8", 480))]
)
STEP_DTYPE = np.dtype(
    [("channel", _S), ("step_index", "i4"), ("kind", _S), ("label", h5py.string_dtype("utf-8", 64)),
     ("cycle", "i4"), ("current_A", "f8"), ("current_density_mA_cm2", "f8"), ("start_s", "f8"),
     ("end_s", "f8"), ("reason", _S), ("n_points", "i8"), ("voltage_end_V", "f8"),
     ("voltage_mean_V", "f8"), ("abs_voltage_max_V", "f8"), ("charge_C", "f8"),
     ("cumulative_charge_C", "f8")]
)


def _staging(path: Path) -> Path:
    """Where a run file is built before it appears at ``path``."""
    return path.with_name(f".{path.name}.staging")


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


def _encode(value: Any) -> Any:
    """HDF5 attributes take numbers and strings; None becomes "" and dicts become JSON."""
    if value is None:
        return ""
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value)
    return value


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

    Raises:
        FileExistsError: ``path`` exists (a run file is never overwritten).
        OSError: the file cannot be created.
    """

    def __init__(self, path: str | Path, channels: Iterable[str], attrs: Mapping[str, Any],
                 extra_columns: Iterable[Column] = (), *, spectra: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path}: a run file already exists there; choose another -o")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = h5py.File(_staging(self.path), "w", libver="latest")
        f.attrs["format"] = FORMAT
        f.attrs["software_versions"] = json.dumps(software_versions())
        f.attrs["start_time_utc"] = utc_now_iso()
        f.attrs["start_unix_time_s"] = time.time()
        f.attrs["end_time_utc"] = ""
        f.attrs["status"] = "running"
        f.attrs["end_reason"] = ""
        for key, value in attrs.items():
            f.attrs[key] = _encode(value)
        group = f.create_group("channels")
        channels = list(channels)
        if spectra:
            for channel in channels:
                create_spectra(f, channel, with_time=True, with_cycle=True, with_step=True)
        for channel in channels:
            g = group.create_group(channel)
            g.attrs["program_json"] = ""
            for column in (*READING_COLUMNS, *extra_columns):
                ds = g.create_dataset(
                    column.name, shape=(0,), maxshape=(None,), dtype=column.dtype,
                    chunks=(CHUNK_ROWS,),  # uncompressed: see CHUNK_ROWS
                )
                ds.attrs["units"] = column.units
                if column.bdf_label:
                    ds.attrs["bdf_label"] = column.bdf_label
        f.create_dataset("events", shape=(0,), maxshape=(None,), dtype=EVENT_DTYPE, chunks=(256,))
        f.create_dataset("steps", shape=(0,), maxshape=(None,), dtype=STEP_DTYPE, chunks=(256,))
        f.create_group("results")
        self._attach(f)
        self.recovered = False

    @classmethod
    def append(cls, path: str | Path) -> RunFileWriter:
        """Continue a run file (status back to ``running``), also one whose writer died.

        The file's content is copied into a new file, which replaces it atomically once it
        is in SWMR mode (see :func:`labctl.store.recover.copy_run`): a crash at any moment
        leaves either the old file or the new one, never a half-open one.
        :attr:`recovered` tells whether the old file was left open by a dead writer.

        Raises:
            RunFileError: the file is not a readable run file.
        """
        from labctl.store.recover import copy_run

        self = cls.__new__(cls)
        self.path = Path(path)
        f = h5py.File(_staging(self.path), "w", libver="latest")
        try:
            self.recovered = copy_run(self.path, f)
        except Exception:
            f.close()
            _staging(self.path).unlink(missing_ok=True)
            raise
        f.attrs["status"] = "running"
        f.attrs["end_reason"] = ""
        f.attrs["end_time_utc"] = ""
        self._attach(f)
        return self

    def _attach(self, f: h5py.File) -> None:
        """Hold the datasets of a file built at the staging path, switch it to SWMR writing,
        and only then move it to :attr:`path` (rename is atomic): whoever finds the file at
        its path finds it readable, whenever the process dies."""
        self._file = f
        self._columns = {name: dict(g.items()) for name, g in f["channels"].items()}
        self._spectra = dict(f[SPECTRA_GROUP].items()) if SPECTRA_GROUP in f else {}
        self._events = f["events"]
        self._steps = f["steps"]
        self._running = set(self._columns)
        self._programs: dict[str, str] = {}
        self._statuses: dict[str, tuple[str, str]] = {}
        f.swmr_mode = True
        f.flush()
        os.replace(_staging(self.path), self.path)
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
        elif isinstance(event, Detected):
            self._append(self._events, (event.t_s, event.channel, event.kind, event.step_index, event.message))
        elif isinstance(event, Spectrum):
            self._append_spectrum(event)
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
        # Strings go in as UTF-8 bytes: numpy would encode them as ASCII and refuse "|ΔV|".
        row = tuple(value.encode("utf-8") if isinstance(value, str) else value for value in row)
        start = ds.shape[0]
        ds.resize((start + 1,))
        ds[start] = np.array([row], dtype=ds.dtype)[0]
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
            f.attrs["status"] = status
            f.attrs["end_reason"] = end_reason
            f.attrs["end_time_utc"] = utc_now_iso()
            for channel, program_json in self._programs.items():
                f["channels"][channel].attrs["program_json"] = program_json
            for channel, (ch_status, ch_reason) in self._statuses.items():
                f["channels"][channel].attrs["status"] = ch_status
                f["channels"][channel].attrs["end_reason"] = ch_reason


def write_results(path: str | Path, results: Mapping[str, Any]) -> None:
    """Store analysis results in the ``results`` group of a finished run file.

    Scalars and strings become attributes (``None`` → ``""``); sequences become datasets —
    numbers as float64, strings as UTF-8 strings, an empty sequence as an empty float64
    dataset — so plain h5py reads them as arrays; nested mappings become sub-groups.
    2-D arrays (current maps) are stored as HDF5 images (``CLASS = IMAGE``, grayscale) so
    HDF viewers show them, with ``units`` from their name's last part (``current_A`` → A).
    Existing entries of the same name are replaced.
    """
    with h5py.File(path, "r+", locking=False) as f:
        _write_mapping(f.require_group("results"), results)


def _write_mapping(group: h5py.Group, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key in group:
            del group[key]
        if key in group.attrs:
            del group.attrs[key]
        if isinstance(value, Mapping):
            _write_mapping(group.create_group(key), value)
        elif isinstance(value, list | tuple | np.ndarray):
            if len(value) and isinstance(value[0], str):
                group.create_dataset(key, data=[str(v) for v in value], dtype=h5py.string_dtype("utf-8"))
            else:
                ds = group.create_dataset(key, data=np.asarray(value, dtype="f8"))
                if ds.ndim == 2:
                    ds.attrs["CLASS"] = "IMAGE"
                    ds.attrs["IMAGE_VERSION"] = "1.2"
                    ds.attrs["IMAGE_SUBCLASS"] = "IMAGE_GRAYSCALE"
                    ds.attrs["units"] = key.rpartition("_")[2]
        else:
            group.attrs[key] = _encode(value)
