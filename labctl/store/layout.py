"""The one description of a labctl run file: what it holds, where, and how to reach it safely.

A run file is one HDF5 file per run, readable with plain h5py (README "The run file"):

* root attributes (:data:`ROOT_ATTRS`): ``format`` (:data:`FORMAT`), ``protocol_text``,
  ``protocol_path``, ``station_text``, ``software_versions`` (JSON), ``operator``, ``cell_*``
  metadata (``cell_area_cm2``, ``cell_electrolyte`` …), ``start_time_utc`` /
  ``end_time_utc`` (ISO 8601), ``start_unix_time_s``, ``status`` and ``end_reason``;
* ``channels/<name>`` (:func:`channel_path`): one resizable, chunked, uncompressed 1-D dataset
  per column of :data:`~labctl.events.READING_COLUMNS` (the subscribers' contract), plus a
  delegated run's extra columns, each with ``units`` and (where BDF has one) ``bdf_label``
  attributes; the group's ``program_json`` (and, once finished, ``status`` / ``end_reason``)
  attributes;
* ``events`` (:data:`EVENT_DTYPE`): what happened and when (shorts, compliance, run end …);
* ``steps`` (:data:`STEP_DTYPE`): one row per executed step;
* ``results``: analysis output (:func:`write_group` / :func:`read_group`): scalars and strings
  as attributes, sequences as datasets (numbers float64, strings UTF-8), nested mappings as
  sub-groups, 2-D arrays as HDF5 images (``CLASS = IMAGE``).

Opening (:func:`open_run`) is where damaged files are told apart from live ones. A file that a
writer holds or left in SWMR mode carries the "open for write" mark in its superblock; only then
is it opened in SWMR-read mode, because an SWMR reader skips HDF5's end-of-file check and, on a
truncated file, retries every metadata read with a doubling sleep for hours (HDF5's
``H5F_SWMR_METADATA_READ_ATTEMPTS`` = 100 attempts, backing off up to an hour;
``H5Pset_metadata_read_attempts`` in the HDF5 reference manual). So before an SWMR open the file's
size is compared with the end-of-file address its superblock stores (HDF5 File Format
Specification, "Superblock", version 2/3), unless a live writer (its lock, :mod:`.lock`) may be
between two flushes; and SWMR opens bound the metadata read attempts to
:data:`SWMR_READ_ATTEMPTS`. Every missing or unreadable part is a :class:`RunFileError` whose one
line names the file and the part.

No other module spells a path inside the file: they all come here.
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.events import READING_COLUMNS, Column

FORMAT = "labctl-run/1"

# -- root attributes -------------------------------------------------------------------------
A_FORMAT = "format"
A_STATUS = "status"
A_END_REASON = "end_reason"
A_START_TIME_UTC = "start_time_utc"
A_END_TIME_UTC = "end_time_utc"
A_START_UNIX_TIME_S = "start_unix_time_s"
A_SOFTWARE_VERSIONS = "software_versions"
A_PROTOCOL_TEXT = "protocol_text"
A_PROTOCOL_KIND = "protocol_kind"
A_SIMULATED = "simulated"
A_DELEGATED = "delegated"
#: Root attributes every run file has from its creation (the others come from the session).
ROOT_ATTRS: tuple[str, ...] = (A_FORMAT, A_SOFTWARE_VERSIONS, A_START_TIME_UTC, A_START_UNIX_TIME_S,
                               A_END_TIME_UTC, A_STATUS, A_END_REASON)
#: ``status`` of a run whose writer has not finished the file (still running, or died).
RUNNING = "running"

# -- groups and datasets ---------------------------------------------------------------------
CHANNELS = "channels"
EVENTS = "events"
STEPS = "steps"
RESULTS = "results"
#: Channel group attributes.
A_PROGRAM_JSON = "program_json"
#: Dataset attributes.
A_UNITS = "units"
A_BDF_LABEL = "bdf_label"

#: Rows per chunk of the reading columns. The columns are NOT compressed: in SWMR mode HDF5
#: never reuses the space of a compressed chunk that an append rewrote, so a real-time run
#: appending a reading or two every 0.25 s grew its file by a whole compressed chunk per
#: append (3 000 one-row appends: 34.6 MB for 24 kB of data). Uncompressed chunks are
#: rewritten in place; readings cost ~50 B each (a 12 000 h run at one reading a minute: 36 MB).
CHUNK_ROWS = 8192
#: Rows per chunk of the ``events`` and ``steps`` tables.
TABLE_CHUNK_ROWS = 256
#: Names of the columns every channel group has (:data:`~labctl.events.READING_COLUMNS`).
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in READING_COLUMNS)

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

#: Metadata read attempts of an SWMR reader (HDF5's default: 100, with a sleep doubling from
#: 1 ns to an hour between them). 30 attempts wait at most ~1 s in all for a writer to finish
#: a metadata write, then the read fails instead of hanging on a damaged file.
SWMR_READ_ATTEMPTS = 30

#: Chunk cache of each dataset a reader opens (bytes): 16 chunks of a reading column. HDF5 2.0
#: raised its default to 8 MiB per dataset, which a reader scanning a long column in blocks
#: fills for nothing (``labctl inspect`` on a 12 000 h file: +7 MB of peak memory).
READ_CHUNK_CACHE_BYTES = 1 << 20

#: Units of a result image, from the end of its name (house rule: names carry units).
_IMAGE_UNITS = ("A", "V", "ohm", "S", "nm", "um", "m", "s", "C")


class RunFileError(Exception):
    """A file is missing, not HDF5, damaged, or not a labctl run file; the message (one line)
    names the file and the part."""


def channel_path(channel: str) -> str:
    """Path of a channel group: ``channels/<channel>``."""
    return f"{CHANNELS}/{channel}"


def column_path(channel: str, column: str) -> str:
    """Path of a reading column: ``channels/<channel>/<column>``."""
    return f"{CHANNELS}/{channel}/{column}"


def lock_path(path: str | Path) -> Path:
    """The lock file beside a run file: ``RUN.h5.lock`` (see :mod:`labctl.store.lock`)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def staging_path(path: str | Path) -> Path:
    """Where a run file is built (created, appended to, closed) before it replaces ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}.staging")


# -- values ------------------------------------------------------------------------------------
def decode(value: Any) -> Any:
    """An HDF5 value as plain Python: bytes → str (UTF-8), numpy scalars → Python numbers."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_attr(value: Any) -> Any:
    """HDF5 attributes take numbers and strings; None becomes "" and mappings/lists become JSON."""
    if value is None:
        return ""
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value)
    return value


def records(data: np.ndarray) -> list[dict[str, Any]]:
    """Rows of a structured array (the ``events`` / ``steps`` tables) as dicts of Python values."""
    return [{name: decode(row[name]) for name in data.dtype.names} for row in data]


def table_row(dtype: np.dtype, values: tuple) -> np.ndarray:
    """One row of ``events`` / ``steps`` as a structured array of length 1. Strings go in as
    UTF-8 bytes: numpy would encode them as ASCII and refuse "|ΔV|"."""
    values = tuple(v.encode("utf-8") if isinstance(v, str) else v for v in values)
    return np.array([values], dtype=dtype)


# -- the superblock ----------------------------------------------------------------------------
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_FLAG_WRITE = 0x01
_FLAG_SWMR_WRITE = 0x04


@dataclass(frozen=True)
class Superblock:
    """What the first bytes of an HDF5 file say (HDF5 File Format Specification, "Superblock").

    ``version``: superblock version (0–3); ``open_for_write``: the file consistency flags say a
    writer has it open (version 3 only: set by ``libver="latest"`` writers, left set when the
    writer dies); ``stored_eof``: the end-of-file address the superblock records (bytes; None
    for versions 0–1, which HDF5 checks itself); ``size``: the file's size on disk (bytes).
    """

    version: int
    open_for_write: bool
    stored_eof: int | None
    size: int

    @property
    def truncated(self) -> bool:
        return self.stored_eof is not None and self.size < self.stored_eof


def superblock(path: str | Path) -> Superblock | None:
    """The superblock of the HDF5 file at ``path``, or None if it does not start with the HDF5
    signature (not HDF5, or one with a user block: left to HDF5 to judge).

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as fh:
        head = fh.read(48)
        size = os.fstat(fh.fileno()).st_size
    if len(head) < 12 or head[:8] != _SIGNATURE:
        return None
    version = head[8]
    if version < 2:
        return Superblock(version, False, None, size)
    offset_size = head[9]
    if offset_size not in (2, 4, 8) or len(head) < 12 + 4 * offset_size:
        return Superblock(version, False, None, size)
    flags = head[11] if version >= 3 else 0
    eof_at = 12 + 2 * offset_size
    stored_eof = int.from_bytes(head[eof_at:eof_at + offset_size], "little")  # absolute (base 0 here)
    return Superblock(version, bool(flags & (_FLAG_WRITE | _FLAG_SWMR_WRITE)), stored_eof, size)


# -- opening -----------------------------------------------------------------------------------
def _read_attempts_setter() -> Any:
    """``H5Pset_metadata_read_attempts`` of the HDF5 library h5py uses (h5py does not wrap it),
    found through h5py's own extension module (dlsym searches its dependencies); None where
    that does not work (then SWMR reads keep HDF5's default)."""
    try:
        setter = ctypes.CDLL(h5py.h5p.__file__).H5Pset_metadata_read_attempts
    except (OSError, AttributeError):
        return None
    setter.argtypes = [ctypes.c_int64, ctypes.c_uint]
    setter.restype = ctypes.c_int
    return setter


_SET_READ_ATTEMPTS = _read_attempts_setter()


def _open_swmr(path: Path) -> h5py.File:
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, True)
    mdc, slots, _, w0 = fapl.get_cache()
    fapl.set_cache(mdc, slots, READ_CHUNK_CACHE_BYTES, w0)
    if _SET_READ_ATTEMPTS is not None:
        _SET_READ_ATTEMPTS(fapl.id, SWMR_READ_ATTEMPTS)
    fid = h5py.h5f.open(os.fsencode(path), h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ, fapl=fapl)
    return h5py.File(fid)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def open_file(path: str | Path, *, swmr: bool | None = None, writer_alive: bool = False) -> h5py.File:
    """Open an HDF5 file read-only without HDF5 file locking (a reader must never stop the
    writer from finishing the file), in the mode the file needs.

    Args:
        path: the file.
        swmr: None: SWMR-read only when the superblock carries the "open for write" mark (a
            writer has it, or died with it); False: never (a marked file is refused); True:
            always (a file that is still being written, to follow it).
        writer_alive: a live writer owns the file (its lock): its stored end of file may be
            ahead of the disk between two flushes, so the truncation check is skipped.

    Raises:
        RunFileError: missing, not HDF5, truncated, or (``swmr=False``) still marked open for
            write; one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such file")
    try:
        sb = superblock(path)
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read the file ({_one_line(exc)})") from None
    if sb is not None and sb.truncated and not writer_alive:
        raise RunFileError(f"{path}: truncated or damaged: {sb.size} bytes on disk of the {sb.stored_eof} "
                           "its HDF5 superblock records")
    marked = sb is not None and sb.open_for_write
    if swmr is False and marked:
        raise RunFileError(f"{path}: still marked open for write by a writer (running, or killed: "
                           "`labctl inspect` says which)")
    try:
        if swmr or marked:
            return _open_swmr(path)
        return h5py.File(path, "r", locking=False, rdcc_nbytes=READ_CHUNK_CACHE_BYTES)
    except (OSError, RuntimeError, ValueError) as exc:
        raise RunFileError(f"{path}: not a readable HDF5 file ({exc.__class__.__name__}: {_one_line(exc)})") from None


def damaged(f: h5py.File | h5py.Group, part: str, exc: BaseException) -> RunFileError:
    """The one-line error for a part of a run file whose content cannot be read."""
    return RunFileError(f"{f.file.filename}: damaged run file, cannot read {part} "
                        f"({exc.__class__.__name__}: {_one_line(exc)})")


def _get(f: h5py.File | h5py.Group, name: str, what: str) -> Any:
    try:
        return f[name]
    except KeyError:
        raise RunFileError(f"{f.file.filename}: {what}: missing from the run file") from None
    except (OSError, RuntimeError, ValueError) as exc:
        raise damaged(f, what, exc) from None


def check_format(f: h5py.File) -> None:
    """Refuse an HDF5 file that is not a labctl run file.

    Raises:
        RunFileError: no ``format`` attribute ``labctl-run/1``.
    """
    try:
        fmt = decode(f.attrs.get(A_FORMAT, ""))
    except (OSError, RuntimeError, KeyError) as exc:
        raise damaged(f, "its root attributes", exc) from None
    if fmt != FORMAT:
        raise RunFileError(f"{f.filename}: an HDF5 file, but not a labctl run file (no format '{FORMAT}')")


def check(f: h5py.File) -> None:
    """Check the whole layout: format, the ``channels`` group with every required column (1-D),
    the ``events`` and ``steps`` tables with their fields, the ``results`` group.

    Raises:
        RunFileError: the first part missing or of the wrong shape, naming the file and part.
    """
    check_format(f)
    for channel in channel_names(f):
        group = channel_group(f, channel)
        for name in REQUIRED_COLUMNS:
            ds = _get(group, name, column_path(channel, name))
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                raise RunFileError(f"{f.filename}: {column_path(channel, name)}: not a 1-D dataset")
    events_table(f)
    steps_table(f)
    results_group(f)


def open_run(path: str | Path, *, swmr: bool | None = None, writer_alive: bool = False) -> h5py.File:
    """:func:`open_file` plus :func:`check`: a run file whose every part is where it belongs.

    Raises:
        RunFileError: as :func:`open_file` and :func:`check`.
    """
    f = open_file(path, swmr=swmr, writer_alive=writer_alive)
    try:
        check(f)
    except BaseException:
        f.close()
        raise
    return f


# -- reaching the parts ------------------------------------------------------------------------
def channels_group(f: h5py.File) -> h5py.Group:
    """The ``channels`` group. Raises RunFileError if missing."""
    group = _get(f, CHANNELS, CHANNELS)
    if not isinstance(group, h5py.Group):
        raise RunFileError(f"{f.filename}: {CHANNELS}: not a group")
    return group


def channel_names(f: h5py.File) -> list[str]:
    """Names of the channel groups, in file order."""
    try:
        return list(channels_group(f))
    except (OSError, RuntimeError) as exc:
        raise damaged(f, CHANNELS, exc) from None


def channel_group(f: h5py.File, channel: str) -> h5py.Group:
    """``channels/<channel>``. Raises RunFileError if missing."""
    group = _get(channels_group(f), channel, channel_path(channel))
    if not isinstance(group, h5py.Group):
        raise RunFileError(f"{f.filename}: {channel_path(channel)}: not a group")
    return group


def column(f: h5py.File, channel: str, name: str) -> h5py.Dataset:
    """The reading column ``channels/<channel>/<name>``. Raises RunFileError if missing."""
    return _get(channel_group(f, channel), name, column_path(channel, name))


def columns(f: h5py.File, channel: str, names: Iterable[str] | None = None) -> dict[str, h5py.Dataset]:
    """The channel's column datasets (all, or ``names``), name → dataset."""
    group = channel_group(f, channel)
    if names is None:
        try:
            names = list(group)
        except (OSError, RuntimeError) as exc:
            raise damaged(f, channel_path(channel), exc) from None
    return {name: _get(group, name, column_path(channel, name)) for name in names}


def events_table(f: h5py.File) -> h5py.Dataset:
    """The ``events`` table. Raises RunFileError if missing or not of :data:`EVENT_DTYPE`'s fields."""
    return _table(f, EVENTS, EVENT_DTYPE)


def steps_table(f: h5py.File) -> h5py.Dataset:
    """The ``steps`` table. Raises RunFileError if missing or not of :data:`STEP_DTYPE`'s fields."""
    return _table(f, STEPS, STEP_DTYPE)


def _table(f: h5py.File, name: str, dtype: np.dtype) -> h5py.Dataset:
    ds = _get(f, name, name)
    names = getattr(getattr(ds, "dtype", None), "names", None) or ()
    if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or not set(dtype.names) <= set(names):
        raise RunFileError(f"{f.filename}: {name}: not a table with the fields {', '.join(dtype.names)}")
    return ds


def results_group(f: h5py.File) -> h5py.Group:
    """The ``results`` group. Raises RunFileError if missing."""
    group = _get(f, RESULTS, RESULTS)
    if not isinstance(group, h5py.Group):
        raise RunFileError(f"{f.filename}: {RESULTS}: not a group")
    return group


# -- creating ----------------------------------------------------------------------------------
def create_layout(f: h5py.File, channels: Iterable[str], extra_columns: Iterable[Column] = ()) -> None:
    """Create the groups and empty tables of a new run file in ``f`` (open for writing): a
    channel group per name with the :data:`~labctl.events.READING_COLUMNS` and
    ``extra_columns`` (units and BDF label attributes), ``events``, ``steps``, ``results``."""
    group = f.create_group(CHANNELS)
    extra = tuple(extra_columns)
    for channel in channels:
        g = group.create_group(channel)
        g.attrs[A_PROGRAM_JSON] = ""
        for col in (*READING_COLUMNS, *extra):
            ds = g.create_dataset(col.name, shape=(0,), maxshape=(None,), dtype=col.dtype,
                                  chunks=(CHUNK_ROWS,))  # uncompressed: see CHUNK_ROWS
            ds.attrs[A_UNITS] = col.units
            if col.bdf_label:
                ds.attrs[A_BDF_LABEL] = col.bdf_label
    for name, dtype in ((EVENTS, EVENT_DTYPE), (STEPS, STEP_DTYPE)):
        f.create_dataset(name, shape=(0,), maxshape=(None,), dtype=dtype, chunks=(TABLE_CHUNK_ROWS,))
    f.create_group(RESULTS)


def cut_columns(f: h5py.File) -> None:
    """Cut every channel's columns to the shortest (a crash between the columns of one batch
    leaves them at different lengths; at most that last batch is lost)."""
    for channel in channel_names(f):
        group = columns(f, channel)
        n = min((ds.shape[0] for ds in group.values()), default=0)
        for ds in group.values():
            if ds.shape[0] != n:
                ds.resize((n,))


# -- results -----------------------------------------------------------------------------------
def write_group(group: h5py.Group, values: Mapping[str, Any]) -> None:
    """Store ``values`` in ``group`` by the ``results`` conventions.

    Scalars and strings become attributes (``None`` → ``""``); sequences become datasets —
    numbers as float64, strings as UTF-8 strings, an empty sequence as an empty float64
    dataset — so plain h5py reads them as arrays; nested mappings become sub-groups. A 2-D
    array becomes an HDF5 image (``CLASS = IMAGE``, ``IMAGE_VERSION = 1.2``,
    ``IMAGE_SUBCLASS = IMAGE_GRAYSCALE``: HDF5 Image and Palette Specification 1.2) so HDF
    viewers show it as one, with ``units`` from its name's end (``current_A`` → ``A``).
    Existing entries of the same name are replaced.
    """
    for key, value in values.items():
        if key in group:
            del group[key]
        if key in group.attrs:
            del group.attrs[key]
        if isinstance(value, Mapping):
            write_group(group.create_group(key), value)
        elif isinstance(value, list | tuple | np.ndarray):
            if len(value) and isinstance(value[0], str):
                group.create_dataset(key, data=[str(v) for v in value], dtype=h5py.string_dtype("utf-8"))
                continue
            ds = group.create_dataset(key, data=np.asarray(value, dtype="f8"))
            if ds.ndim == 2:
                ds.attrs["CLASS"] = "IMAGE"
                ds.attrs["IMAGE_VERSION"] = "1.2"
                ds.attrs["IMAGE_SUBCLASS"] = "IMAGE_GRAYSCALE"
                unit = key.rsplit("_", 1)[-1] if "_" in key else ""
                if unit in _IMAGE_UNITS:
                    ds.attrs[A_UNITS] = unit
        else:
            group.attrs[key] = encode_attr(value)


def read_group(group: h5py.Group) -> dict[str, Any]:
    """A group's attributes and datasets as a dict, sub-groups as nested dicts; string
    datasets as lists of ``str``, the others as numpy arrays (or scalars).

    Raises:
        RunFileError: an entry cannot be read (damaged file), naming the file and entry.
    """
    try:
        out: dict[str, Any] = {key: decode(value) for key, value in group.attrs.items()}
        for key, item in group.items():
            if isinstance(item, h5py.Group):
                out[key] = read_group(item)
            elif item is None:  # a link to an object that cannot be resolved
                raise KeyError(f"{key}: unreadable entry")
            elif h5py.check_string_dtype(item.dtype) is not None and item.ndim == 1:
                out[key] = list(item.asstr()[()])
            else:
                out[key] = item[()]
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
        raise damaged(group, group.name.lstrip("/") or "/", exc) from None
    return out


__all__ = [
    "A_DELEGATED", "A_END_REASON", "A_END_TIME_UTC", "A_FORMAT", "A_PROGRAM_JSON", "A_PROTOCOL_KIND",
    "A_PROTOCOL_TEXT", "A_SIMULATED", "A_SOFTWARE_VERSIONS", "A_START_TIME_UTC", "A_START_UNIX_TIME_S",
    "A_STATUS", "A_BDF_LABEL", "A_UNITS", "CHANNELS", "CHUNK_ROWS", "EVENTS", "EVENT_DTYPE", "FORMAT",
    "READING_COLUMNS", "READ_CHUNK_CACHE_BYTES", "REQUIRED_COLUMNS", "RESULTS", "ROOT_ATTRS", "RUNNING",
    "RunFileError", "STEPS", "STEP_DTYPE", "SWMR_READ_ATTEMPTS", "Superblock", "TABLE_CHUNK_ROWS", "channel_group",
    "channel_names",
    "channel_path", "channels_group", "check", "check_format", "column", "column_path", "columns",
    "create_layout", "cut_columns", "damaged", "decode", "encode_attr", "events_table", "lock_path",
    "open_file", "open_run", "read_group", "records", "results_group", "staging_path", "steps_table",
    "superblock", "table_row", "write_group",
]
