"""Vendor cycler files in: NEWARE ``.nda``/``.ndax`` and EC-Lab ``.mpr`` → a labctl run file.

``labctl import FILE -o RUN.h5`` reads a file written by a real cycler with a well-kept
library — NEWARE through fastnda (``fastnda.read``, ``cycle_mode="raw"``: the cycle numbers of
the file, as NEWARE's own BTSDA export shows them), EC-Lab through galvani
(``galvani.BioLogic.MPRfile``) — and writes it through :class:`~labctl.store.RunFileWriter`,
fed with the engine's own events (``RunStarted``, ``Readings``, ``StepEnded``, ``Detected``,
``RunEnded``), so the run file has exactly the layout of a labctl run and the analyses of
:mod:`labctl.analysis` run on old data as on new.

Column mapping (cyclers-data-formats.md §1.5, §2):

========================  =====================================  =====================================
run-file column           NEWARE (fastnda)                       EC-Lab (galvani)
========================  =====================================  =====================================
``test_time_s``           ``total_time_s``                       ``time/s`` (since acquisition start)
``voltage_V``             ``voltage_V``                          ``Ewe/V``, else ``<Ewe>/V`` (CP, PEIS, GEIS)
``current_A``             ``current_mA`` / 1000                  ``I/mA`` (or ``<I>/mA``) / 1000; without
                                                                 them (a BT-Lab GCPL record): the applied
                                                                 ``control/V/mA`` in galvanostatic mode,
                                                                 0 at rest, ``dq/mA.h`` / interval in
                                                                 potentiostatic mode; an OCV record (every
                                                                 point at open circuit): 0 by definition
``charge_C``              cumulative of ``capacity_mAh`` × 3.6   ``(Q-Qo)/mA.h`` × 3.6, or ``(Q-Qo)/C``
``cycle_index``           ``cycle_count`` (the file's)           ``cycle number``, else ``half cycle`` // 2
``step_index``            executed step, 0-based (from           executed step, 0-based (a new step at
                          ``step_count``, which never resets)    every change of ``Ns`` / ``half cycle``)
``current_density_…``     ``current_A`` × 1000 / area            same; NaN when no area is known
``status``                0                                      0
========================  =====================================  =====================================

EC-Lab impedance records (PEIS, GEIS: a ``freq/Hz`` column) keep their time series (the mean
``<Ewe>``, ``<I>`` of each point; one step of kind ``impedance``) and add their points with
``freq/Hz`` > 0 to the spectrum dataset ``spectra/<channel>`` (:mod:`labctl.store.spectra`:
``freq/Hz``, ``Re(Z)/Ohm``, ``-Im(Z)/Ohm``, ``|Z|/Ohm``, ``Phase(Z)/deg``, ``time/s``,
``cycle number``), a new spectrum at every change of ``cycle number`` or ``Ns`` or where the
frequency sweep turns back.

Current sign: the cycler's, kept as recorded — positive = charging (BDF). For a symmetric
Li | SSE | Li cell which electrode plates under positive current depends on the cabling; the
CCD and overpotential analyses use magnitudes. Float32 values of the vendor files are widened
through their shortest decimal form (3.587025 stays 3.587025 in the run file).

The ``steps`` table has one row per executed vendor step. ``current_A`` is the step's median
current; ``reason`` is why it ended: for NEWARE the step file inside the ``.ndax`` is checked
(its ``Time`` → ``time``, ``Cap`` → ``charge``, ``Stop_Volt`` → ``voltage``, ``Stop_Curr`` →
``current``); otherwise ``next_step`` (the cycler moved on; the file does not say why) or
``end_of_file`` (the last step). labctl's short detection (:class:`~labctl.engine.ShortDetector`,
default :class:`~labctl.engine.ShortDetection`, with ``full_cell`` when
:func:`~labctl.checks.looks_like_full_cell` says the file is of a cell with an open-circuit
voltage) is replayed over every constant-current step, and
a step where it fires ends with the detector's kind (``short``, ``soft_short``) and an event of
that kind — so
:func:`~labctl.analysis.critical_current_density` finds a short in old data as it would live.

Root attributes: ``simulated = False``, ``status = "imported"``, ``start_time_utc`` (ms precision)
and ``start_unix_time_s`` from the file, ``vendor_file``, ``vendor_file_sha256``, ``vendor_format``, ``vendor_reader``,
``vendor_reader_version``, ``vendor_metadata`` (JSON), ``cell_area_cm2`` and
``cell_area_source``, ``imported_utc``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from labctl.checks import ShortDetector, looks_like_full_cell
from labctl.events import Detected, Readings, RunEnded, RunStarted, StepEnded, StepSummary
from labctl.checks import ShortDetection
from labctl.store.spectra import SpectrumError, spectrum_columns, write_spectra
import labctl.store.layout as layout
from labctl.store.writer import RunFileWriter

#: File name endings this module reads, and the reader used for each.
SUPPORTED_SUFFIXES: dict[str, str] = {".ndax": "fastnda", ".nda": "fastnda", ".nda.zip": "fastnda", ".mpr": "galvani"}

#: Rows per ``Readings`` batch handed to the writer.
BATCH_ROWS = 65536

_NEWARE_KIND = {
    "Rest": "rest", "OCV": "rest", "Pause": "rest",
    "CC_Chg": "constant_current", "CC_DChg": "constant_current",
    "CV_Chg": "constant_voltage", "CV_DChg": "constant_voltage",
    "CCCV_Chg": "cccv", "CCCV_DChg": "cccv",
}
#: EC-Lab potential columns, in order of preference: the reading, or its mean over the interval
#: (CP, PEIS and GEIS records carry ``<Ewe>/V``).
_ECLAB_VOLTAGE = ("Ewe/V", "<Ewe>/V")
#: EC-Lab ``mode`` (the two low bits of ``flags``): 1 galvanostatic, 2 potentiostatic, 3 rest.
_ECLAB_MODE_KIND = {1: "constant_current", 2: "constant_voltage", 3: "rest"}


class VendorFileError(Exception):
    """A vendor file that cannot be imported; the message is one line naming the file (and field)."""


@dataclass
class VendorRecording:
    """One cell's recording read from a vendor file, in labctl units.

    Arrays have one entry per reading: ``test_time_s`` (s since the test started),
    ``voltage_V``, ``current_A`` (positive = charging), ``charge_C`` (cumulative, signed),
    ``cycle_index``, ``step_number`` (the vendor's executed-step counter: a new value at every
    new step), ``step_time_s`` (s since the step started, NaN if the file has none), ``step_id``
    (the vendor's program step: NEWARE Step_ID, EC-Lab Ns). ``step_kind(rows)`` gives the labctl
    step kind of one executed step's rows, ``step_type_name(row)`` its label from the step's first
    row; ``step_limits`` holds NEWARE step-file end conditions by Step_ID (empty for EC-Lab).
    ``spectra``: for an impedance record (EC-Lab PEIS/GEIS), its points as the columns of
    :mod:`labctl.store.spectra`; ``None`` otherwise.
    """

    path: Path
    vendor: str
    reader: str
    reader_version: str
    channel: str
    start_unix_s: float
    test_time_s: np.ndarray
    voltage_V: np.ndarray
    current_A: np.ndarray
    charge_C: np.ndarray
    cycle_index: np.ndarray
    step_number: np.ndarray
    step_time_s: np.ndarray
    step_id: np.ndarray
    step_kind: Callable[[np.ndarray], str]
    step_type_name: Callable[[int], str]
    step_limits: Mapping[int, Mapping[str, float]] = field(default_factory=dict)
    area_cm2: float | None = None
    area_source: str = ""
    instrument: str = ""
    program_name: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    spectra: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_vendor_file` wrote: the run file, counts, the area used and notes."""

    path: Path
    n_readings: int
    n_steps: int
    n_shorts: int
    area_cm2: float | None
    area_source: str
    reader: str
    notes: tuple[str, ...]
    n_spectra: int = 0


# -- helpers -------------------------------------------------------------------------------------

def _suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nda.zip"):
        return ".nda.zip"
    return path.suffix.lower()


def _widen(values: Any) -> np.ndarray:
    """float32 → float64 through the shortest decimal form; other dtypes → float64 as they are."""
    array = np.asarray(values)
    if array.dtype == np.float32:
        return array.astype(str).astype(np.float64)
    return array.astype(np.float64)


def _package_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _new_steps(step_number: np.ndarray) -> np.ndarray:
    """0-based executed-step index per reading: +1 wherever the vendor's counter changes."""
    change = np.zeros(len(step_number), dtype=np.int64)
    change[1:] = step_number[1:] != step_number[:-1]
    return np.cumsum(change)


# -- NEWARE (fastnda) ----------------------------------------------------------------------------

def _neware_limits(metadata: Mapping[str, Any]) -> dict[int, dict[str, float]]:
    """Step-file end conditions by Step_ID, in labctl units (NEWARE units: ms, 0.1 mV, mA·s, mA).

    Source: the step-file XML inside the ``.ndax`` (``read_metadata()["Step"]``;
    cyclers-data-formats.md §1.2 "Neware step-file XML").
    """
    step_file = metadata.get("Step") or metadata.get("EditStep") or {}
    info = step_file.get("Step_Info") if isinstance(step_file, Mapping) else None
    if not isinstance(info, Mapping):
        return {}
    scale = {"Time": ("time_s", 1e-3), "Cap": ("capacity_mAh", 1 / 3600), "Stop_Volt": ("stop_voltage_V", 1e-4),
             "Stop_Curr": ("stop_current_A", 1e-3)}
    limits: dict[int, dict[str, float]] = {}
    for key, step in info.items():
        if not (key.startswith("Step") and isinstance(step, Mapping)):
            continue
        main = (step.get("Limit") or {}).get("Main") or {}
        try:
            step_id = int(step["Step_ID"])
            limits[step_id] = {name: float(main[tag]["Value"]) * factor for tag, (name, factor) in scale.items()
                               if isinstance(main.get(tag), Mapping) and "Value" in main[tag]}
        except (KeyError, TypeError, ValueError):
            continue
    return limits


def _read_neware(path: Path, source: Path) -> VendorRecording:
    import fastnda

    try:
        df = fastnda.read(path, cycle_mode="raw")
    except Exception as exc:  # fastnda raises bare ValueError/struct/zip errors on damaged files
        raise VendorFileError(f"{source}: not a readable NEWARE file (fastnda: {exc.__class__.__name__}: {exc})") from None
    try:
        metadata = dict(fastnda.read_metadata(path))
    except Exception as exc:
        metadata = {"metadata_error": f"{exc.__class__.__name__}: {exc}"}
    for column in ("total_time_s", "voltage_V", "current_mA", "step_count", "step_index", "step_type"):
        if column not in df.columns:
            raise VendorFileError(f"{source}: NEWARE file without a '{column}' column (fastnda read {', '.join(df.columns)})")
    if df.height == 0:
        raise VendorFileError(f"{source}: NEWARE file with no readings")
    test_time = _widen(df["total_time_s"].to_numpy())
    step_number = df["step_count"].to_numpy().astype(np.int64)
    executed = _new_steps(step_number)
    step_capacity_mAh = _widen(df["capacity_mAh"].to_numpy()) if "capacity_mAh" in df.columns else np.zeros(df.height)
    # fastnda's capacity restarts at every step: cumulative = sum of earlier steps' last value + this step's.
    last = np.flatnonzero(np.r_[executed[1:] != executed[:-1], True])
    carried = np.concatenate([[0.0], np.cumsum(step_capacity_mAh[last])[:-1]])
    charge_C = (carried[executed] + step_capacity_mAh) * 3.6
    step_type = df["step_type"].cast(str).fill_null("Undefined").to_numpy()
    step_id = df["step_index"].to_numpy().astype(np.int64)
    if "unix_time_s" in df.columns:
        start_unix_s = float(df["unix_time_s"][0]) - float(test_time[0])
    else:
        raise VendorFileError(f"{source}: NEWARE file without time stamps (no 'unix_time_s' from fastnda)")
    info = ((metadata.get("TestInfo") or {}).get("TestInfo") or {}) if isinstance(metadata.get("TestInfo"), Mapping) else {}
    instrument = (f"NEWARE devtype {info.get('DevType', '?')} dev {info.get('DevID', '?')} unit {info.get('UnitID', '?')} "
                  f"channel {info.get('ChlID', '?')}") if info else "NEWARE"
    def step_kind(rows: np.ndarray) -> str:
        name = str(step_type[rows[0]])
        return _NEWARE_KIND.get(name, name.lower())

    def type_name(first_row: int) -> str:
        return f"NEWARE step {step_id[first_row]} {step_type[first_row]}"

    return VendorRecording(
        path=source, vendor="NEWARE", reader="fastnda", reader_version=_package_version("fastnda"),
        channel="neware", start_unix_s=start_unix_s, test_time_s=test_time,
        voltage_V=_widen(df["voltage_V"].to_numpy()), current_A=_widen(df["current_mA"].to_numpy()) / 1000.0,
        charge_C=charge_C, cycle_index=df["cycle_count"].to_numpy().astype(np.int64) if "cycle_count" in df.columns
        else np.zeros(df.height, dtype=np.int64),
        step_number=step_number,
        step_time_s=_widen(df["step_time_s"].to_numpy()) if "step_time_s" in df.columns else np.full(df.height, np.nan),
        step_id=step_id, step_kind=step_kind, step_type_name=type_name, step_limits=_neware_limits(metadata),
        instrument=instrument, program_name=str(info.get("StepName", "")), metadata=metadata,
    )


# -- EC-Lab (galvani) ----------------------------------------------------------------------------

_MPL_AREA = re.compile(r"^Electrode surface area\s*:\s*([0-9.eE+-]+)\s*cm", re.MULTILINE)
_MPL_START = re.compile(r"^Acquisition started on\s*:\s*(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d(?:\.\d+)?)", re.MULTILINE)
_MPL_DEVICE = re.compile(r"^Device\s*:\s*(.+)$", re.MULTILINE)


def _mpl_text(mpr: Path) -> tuple[Path, str] | None:
    """The EC-Lab log (``.mpl``) written beside an ``.mpr``, if there is one (EC-Lab writes it latin-1)."""
    mpl = mpr.with_suffix(".mpl")
    if not mpl.is_file():
        return None
    return mpl, mpl.read_text(encoding="latin-1", errors="replace")


def _read_eclab(path: Path, source: Path) -> VendorRecording:
    from galvani import BioLogic

    try:
        mpr = BioLogic.MPRfile(str(path))
    except Exception as exc:  # galvani raises ValueError/IOError/NotImplementedError on bad files
        raise VendorFileError(f"{source}: not a readable EC-Lab .mpr file (galvani: {exc.__class__.__name__}: {exc})") from None
    data = mpr.data
    names = set(data.dtype.names or ())
    if "time/s" not in names:
        raise VendorFileError(f"{source}: no 'time/s' column — not a recording; columns: {', '.join(data.dtype.names or ())}")
    voltage_column = next((c for c in _ECLAB_VOLTAGE if c in names), None)
    if voltage_column is None:
        raise VendorFileError(f"{source}: no potential column ({' or '.join(_ECLAB_VOLTAGE)}); "
                              f"columns: {', '.join(data.dtype.names or ())}")
    if len(data) == 0:
        raise VendorFileError(f"{source}: EC-Lab file with no readings")
    notes: list[str] = []
    t = np.asarray(data["time/s"], dtype=np.float64)
    n = len(t)
    mode = (np.asarray(data["flags"], dtype=np.int64) & 3) if "flags" in names else np.zeros(n, dtype=np.int64)
    if "I/mA" in names:
        current_mA = _widen(data["I/mA"])
    elif "<I>/mA" in names:
        current_mA = _widen(data["<I>/mA"])
    elif "control/V/mA" in names and "dq/mA.h" in names and "flags" in names:
        # BT-Lab GCPL records no current: the galvanostat's applied current in CC mode, 0 at open
        # circuit, and the mean current over the interval (dq / dt) in potentiostatic mode.
        dq = np.asarray(data["dq/mA.h"], dtype=np.float64)
        interval_mA = np.zeros(n)
        dt = np.diff(t)
        np.divide(dq[1:] * 3600.0, dt, out=interval_mA[1:], where=dt > 0)
        current_mA = np.where(mode == 1, _widen(data["control/V/mA"]), np.where(mode == 3, 0.0, interval_mA))
        notes.append("no I/mA column: current = applied control/V/mA (galvanostatic), 0 (rest), dq/dt (potentiostatic)")
    elif "flags" in names and np.all(mode == 3):
        # OCV: EC-Lab records no current at open circuit; it is zero by definition.
        current_mA = np.zeros(n)
        notes.append("open circuit (OCV) record: no current column, current = 0 by definition")
    else:
        raise VendorFileError(f"{source}: no current column (I/mA, <I>/mA, or control/V/mA with dq/mA.h)")
    if "(Q-Qo)/mA.h" in names:
        charge_C = np.asarray(data["(Q-Qo)/mA.h"], dtype=np.float64) * 3.6
    elif "(Q-Qo)/C" in names:
        charge_C = _widen(data["(Q-Qo)/C"])
    else:
        dt = np.diff(t, prepend=t[0])
        charge_C = np.cumsum(np.r_[0.0, current_mA[:-1]] * dt) * 1e-3
    ns = np.asarray(data["Ns"], dtype=np.int64) if "Ns" in names else np.zeros(n, dtype=np.int64)
    half = np.asarray(data["half cycle"], dtype=np.int64) if "half cycle" in names else np.zeros(n, dtype=np.int64)
    boundary = np.zeros(n, dtype=np.int64)
    boundary[1:] = (ns[1:] != ns[:-1]) | (half[1:] != half[:-1])
    step_number = np.cumsum(boundary)
    if "cycle number" in names:
        cycle = np.asarray(data["cycle number"], dtype=np.float64).astype(np.int64)
    else:
        cycle = half // 2
    log = _mpl_text(source)
    timestamp = getattr(mpr, "timestamp", None)
    start_local: _dt.datetime | None = timestamp
    if start_local is None and log is not None and (m := _MPL_START.search(log[1])):
        start_local = _dt.datetime.strptime(m.group(1), "%m/%d/%Y %H:%M:%S.%f" if "." in m.group(1) else "%m/%d/%Y %H:%M:%S")
        notes.append(f"start time from {log[0].name}")
    if start_local is None:
        raise VendorFileError(f"{source}: no acquisition start time in the file's LOG module nor in a .mpl beside it")
    area_cm2, area_source, instrument = None, "", "EC-Lab"
    if log is not None:
        if (m := _MPL_AREA.search(log[1])) and float(m.group(1)) > 0:
            area_cm2, area_source = float(m.group(1)), f"{log[0].name}: Electrode surface area"
        if m := _MPL_DEVICE.search(log[1]):
            instrument = f"BioLogic {m.group(1).strip()}"

    spectra = _eclab_spectra(data, names, t, cycle, ns, source) if "freq/Hz" in names else None

    def step_kind(rows: np.ndarray) -> str:
        if spectra is not None:
            return "impedance"
        modes = set(np.unique(mode[rows]).tolist())
        if len(modes) > 1:  # EC-Lab records the open-circuit point that closes a step with mode 3
            modes.discard(3)
        if len(modes) == 1:
            return _ECLAB_MODE_KIND.get(modes.pop(), "mixed")
        return "cccv" if modes == {1, 2} else "mixed"

    def type_name(first_row: int) -> str:
        return f"EC-Lab Ns {ns[first_row]} half cycle {half[first_row]}"

    metadata = {"mpr_version": int(getattr(mpr, "version", 0)), "columns": list(data.dtype.names or ()),
                "startdate": str(getattr(mpr, "startdate", "")), "enddate": str(getattr(mpr, "enddate", "")),
                "timestamp_local": str(start_local)}
    if log is not None:
        metadata["mpl"] = log[1]
    return VendorRecording(
        path=source, vendor="EC-Lab", reader="galvani", reader_version=_package_version("galvani"),
        channel="eclab", start_unix_s=start_local.replace(tzinfo=_dt.timezone.utc).timestamp(), test_time_s=t,
        voltage_V=_widen(data[voltage_column]), current_A=current_mA / 1000.0, charge_C=charge_C, cycle_index=cycle,
        step_number=step_number, step_time_s=np.full(n, np.nan), step_id=ns, step_kind=step_kind,
        step_type_name=type_name, area_cm2=area_cm2, area_source=area_source, instrument=instrument,
        metadata=metadata, notes=notes, spectra=spectra,
    )


def _eclab_spectra(data: np.ndarray, names: set[str], t: np.ndarray, cycle: np.ndarray,
                   ns: np.ndarray, source: Path) -> dict[str, np.ndarray]:
    """The impedance points of a PEIS/GEIS record (rows with ``freq/Hz`` > 0; GEIS records its
    DC settling before the first spectrum with frequency 0) as spectrum columns. A new spectrum
    starts where ``cycle number`` or ``Ns`` changes, or where the sweep turns back (the
    frequency moves against the sweep's direction)."""
    f = _widen(data["freq/Hz"])
    rows = np.flatnonzero(f > 0)
    if len(rows) == 0:
        raise VendorFileError(f"{source}: no impedance point (every freq/Hz is 0)")
    f_rows = f[rows]
    step = np.diff(f_rows)
    same = (np.diff(cycle[rows]) == 0) & (np.diff(ns[rows]) == 0)
    moving = same & (step != 0)
    direction = np.sign(np.median(step[moving])) if np.any(moving) else -1.0
    new = ~same | (np.sign(step) == -direction)
    index = np.concatenate([[0], np.cumsum(new)])
    for column in ("Re(Z)/Ohm", "-Im(Z)/Ohm"):
        if column not in names:
            raise VendorFileError(f"{source}: impedance record without a '{column}' column")
    try:
        return spectrum_columns(
            f_rows, _widen(data["Re(Z)/Ohm"])[rows], _widen(data["-Im(Z)/Ohm"])[rows],
            z_abs_ohm=_widen(data["|Z|/Ohm"])[rows] if "|Z|/Ohm" in names else None,
            phase_deg=_widen(data["Phase(Z)/deg"])[rows] if "Phase(Z)/deg" in names else None,
            spectrum_index=index, test_time_s=t[rows], cycle_index=cycle[rows],
        )
    except SpectrumError as exc:
        raise VendorFileError(f"{source}: {exc}") from None


# -- reading -------------------------------------------------------------------------------------

def read_vendor_file(path: str | Path, *, utc_offset_h: float | None = None) -> VendorRecording:
    """Read a NEWARE ``.nda``/``.ndax`` (also a zipped ``.nda.zip``) or EC-Lab ``.mpr`` file.

    Args:
        path: the vendor file, read in place (a ``.nda.zip`` is unpacked to a temporary folder).
        utc_offset_h: for EC-Lab, which stores the acquisition PC's local time without a zone:
            hours that clock was ahead of UTC (default 0: taken as UTC, and noted). NEWARE files
            carry UTC time stamps (fastnda ``unix_time_s``); giving it for them is refused.

    Returns:
        :class:`VendorRecording` in labctl units (s, V, A, C).

    Raises:
        VendorFileError: missing, unsupported, damaged or incomplete file (one line naming it).
    """
    source = Path(path)
    if not source.is_file():
        raise VendorFileError(f"{source}: no such file")
    suffix = _suffix(source)
    if suffix not in SUPPORTED_SUFFIXES:
        raise VendorFileError(
            f"{source}: unsupported file type '{suffix or source.name}'; "
            f"labctl imports {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if suffix == ".mpr":
        recording = _read_eclab(source, source)
        if utc_offset_h is None:
            recording.notes.append("EC-Lab time stamps are local time without a zone: taken as UTC (--utc-offset-h)")
        else:
            recording.start_unix_s -= utc_offset_h * 3600.0
            recording.metadata["utc_offset_h"] = utc_offset_h
        return recording
    if utc_offset_h is not None:
        raise VendorFileError(f"{source}: --utc-offset-h applies to EC-Lab files; NEWARE time stamps are already UTC")
    if suffix != ".nda.zip":
        return _read_neware(source, source)
    with ExitStack() as stack:
        try:
            archive = stack.enter_context(zipfile.ZipFile(source))
            members = [m for m in archive.namelist() if m.lower().endswith((".nda", ".ndax"))]
            if len(members) != 1:
                raise VendorFileError(f"{source}: expected one .nda/.ndax inside the zip, found {len(members)}")
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="labctl-import-")))
            inner = folder / Path(members[0]).name
            inner.write_bytes(archive.read(members[0]))
        except (zipfile.BadZipFile, OSError) as exc:
            raise VendorFileError(f"{source}: not a readable zip file ({exc})") from None
        recording = _read_neware(inner, source)
        recording.metadata["zip_member"] = members[0]
        return recording


# -- steps ---------------------------------------------------------------------------------------

def _end_reason(rec: VendorRecording, rows: np.ndarray, is_last: bool) -> str:
    limits = rec.step_limits.get(int(rec.step_id[rows[0]]), {})
    if limits:
        step_time = rec.step_time_s[rows[-1]]
        if np.isnan(step_time):
            step_time = rec.test_time_s[rows[-1]] - rec.test_time_s[rows[0]]
        interval = float(np.median(np.diff(rec.test_time_s[rows]))) if len(rows) > 1 else 0.0
        i_end = float(rec.current_A[rows[-1]])
        v_end = float(rec.voltage_V[rows[-1]])
        step_charge_mAh = abs(float(rec.charge_C[rows[-1]] - rec.charge_C[rows[0]])) / 3.6
        if "time_s" in limits and step_time >= limits["time_s"] - max(interval, 1e-3):
            return "time"
        if "capacity_mAh" in limits and step_charge_mAh >= limits["capacity_mAh"] * (1 - 1e-3):
            return "charge"
        if "stop_voltage_V" in limits and abs(v_end - limits["stop_voltage_V"]) <= 2e-3 + 1e-3 * abs(limits["stop_voltage_V"]):
            return "voltage"
        if "stop_current_A" in limits and abs(i_end) <= limits["stop_current_A"] * 1.02:
            return "current"
    return "end_of_file" if is_last else "next_step"


def _replay_short_detection(rec: VendorRecording, rows: np.ndarray,
                            detector: ShortDetector) -> tuple[int, str, str] | None:
    """First reading (row) where labctl's short detector fires in this step: (row, kind, message),
    ``kind`` being the detector's ("short", or "soft_short" where it tells soft shorts apart). One
    detector serves the file, reset at each step, as in a live run."""
    detector.reset()
    for row, v, i, t in zip(rows.tolist(), rec.voltage_V[rows].tolist(), rec.current_A[rows].tolist(),
                            rec.test_time_s[rows].tolist()):
        found = detector.update(v, i, t)
        if found is not None:
            kind, message = found if isinstance(found, tuple) else ("short", found)
            return row, kind, message
    return None


# -- import --------------------------------------------------------------------------------------

def import_vendor_file(
    path: str | Path,
    output: str | Path,
    *,
    area_cm2: float | None = None,
    utc_offset_h: float | None = None,
    short_detection: ShortDetection | None = None,
) -> ImportResult:
    """Import a vendor file into a new labctl run file (see the module docstring for the mapping).

    Args:
        path: NEWARE ``.nda``/``.ndax``/``.nda.zip`` or EC-Lab ``.mpr`` file.
        output: the run file to create (never overwritten).
        area_cm2: electrode area for current densities; default the file's (EC-Lab ``.mpl``
            "Electrode surface area"); without either, densities are NaN and the run file says so.
        utc_offset_h: see :func:`read_vendor_file`.
        short_detection: parameters of the replayed short detection (default: labctl's defaults).

    Returns:
        :class:`ImportResult`.

    Raises:
        VendorFileError: the vendor file cannot be read (one line naming it), or ``area_cm2`` ≤ 0.
        FileExistsError: ``output`` exists.
    """
    if area_cm2 is not None and not area_cm2 > 0:
        raise VendorFileError(f"{path}: --area-cm2 must be > 0, got {area_cm2:g}")
    rec = read_vendor_file(path, utc_offset_h=utc_offset_h)
    return write_run_file(rec, output, area_cm2=area_cm2, short_detection=short_detection)


def write_run_file(
    rec: VendorRecording,
    output: str | Path,
    *,
    area_cm2: float | None = None,
    short_detection: ShortDetection | None = None,
) -> ImportResult:
    """Write a :class:`VendorRecording` as a new run file through :class:`RunFileWriter`.

    Args: as :func:`import_vendor_file` (``area_cm2`` overrides ``rec.area_cm2``).

    Raises:
        FileExistsError: ``output`` exists.
    """
    if area_cm2 is not None:
        area, area_source = float(area_cm2), "--area-cm2"
    elif rec.area_cm2 is not None:
        area, area_source = rec.area_cm2, rec.area_source
    else:
        area, area_source = None, "none: the file gives no electrode area; current densities are NaN (give --area-cm2)"
    n = len(rec.test_time_s)
    executed = _new_steps(rec.step_number)
    density = rec.current_A * 1e3 / area if area is not None else np.full(n, np.nan)
    start = _dt.datetime.fromtimestamp(rec.start_unix_s, _dt.timezone.utc)
    end = _dt.datetime.fromtimestamp(rec.start_unix_s + float(rec.test_time_s[-1]), _dt.timezone.utc)
    source = rec.path.resolve()
    attrs = {
        "protocol_kind": "imported",
        "protocol_name": rec.program_name or source.name,
        "protocol_text": "",
        "protocol_path": "",
        "station_text": "",
        "operator": "",
        "simulated": False,
        "instrument_idn": rec.instrument,
        "start_time_utc": start.isoformat(timespec="milliseconds"),
        "start_unix_time_s": rec.start_unix_s,
        "imported_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "vendor": rec.vendor,
        "vendor_file": str(source),
        "vendor_file_sha256": _sha256(rec.path),
        "vendor_format": _suffix(rec.path),
        "vendor_reader": rec.reader,
        "vendor_reader_version": rec.reader_version,
        "vendor_metadata": json.dumps(rec.metadata, default=str),
        "import_notes": "; ".join(rec.notes),
        "cell_area_cm2": area if area is not None else "",
        "cell_area_source": area_source,
    }
    writer = RunFileWriter(output, [rec.channel], attrs)
    if short_detection is None:  # a Li-ion file is judged on |V|, a symmetric cell on V·sign(I)
        short_detection = ShortDetection(full_cell=looks_like_full_cell(rec.voltage_V, rec.current_A))
    detector = ShortDetector(short_detection)
    n_shorts = 0
    try:
        channel = rec.channel
        writer(RunStarted(float(rec.test_time_s[0]), channel, "", 0, rec.start_unix_s))
        columns = {
            "test_time_s": rec.test_time_s, "voltage_V": rec.voltage_V, "current_A": rec.current_A,
            "current_density_mA_cm2": density, "charge_C": rec.charge_C,
            "step_index": executed.astype(np.int32), "cycle_index": rec.cycle_index.astype(np.int32),
            "status": np.zeros(n, dtype=np.uint32),
        }
        for first in range(0, n, BATCH_ROWS):
            writer(Readings(channel, {k: v[first:first + BATCH_ROWS] for k, v in columns.items()}))
        bounds = np.flatnonzero(np.r_[True, executed[1:] != executed[:-1], True])
        for k in range(len(bounds) - 1):
            rows = np.arange(bounds[k], bounds[k + 1])
            kind = rec.step_kind(rows)
            reason = _end_reason(rec, rows, is_last=k == len(bounds) - 2)
            current = float(np.median(rec.current_A[rows]))
            if kind == "constant_current" and current != 0.0:
                found = _replay_short_detection(rec, rows, detector)
                if found is not None:
                    row, reason, message = found
                    n_shorts += 1
                    j_text = f"{current * 1e3 / area:.4g} mA cm-2" if area is not None else f"{current * 1e3:.4g} mA"
                    what = "short circuit" if reason == "short" else reason.replace("_", " ")
                    writer(Detected(float(rec.test_time_s[row]), channel, reason,
                                    f"{what} at {j_text}, t = {rec.test_time_s[row]:.1f} s (step {k}): {message}", k))
            t_first = float(rec.test_time_s[rows[0]])
            step_time_first = float(rec.step_time_s[rows[0]])
            v = rec.voltage_V[rows]
            writer(StepEnded(float(rec.test_time_s[rows[-1]]), channel, StepSummary(
                step_index=k, kind=kind, label=rec.step_type_name(int(rows[0])), cycle=int(rec.cycle_index[rows[0]]),
                current_A=current, current_density_mA_cm2=current * 1e3 / area if area is not None else float("nan"),
                start_s=t_first - step_time_first if np.isfinite(step_time_first) else t_first,
                end_s=float(rec.test_time_s[rows[-1]]), reason=reason, n_points=len(rows),
                voltage_end_V=float(v[-1]), voltage_mean_V=float(v.mean()), abs_voltage_max_V=float(np.abs(v).max()),
                charge_C=float(rec.charge_C[rows[-1]] - (rec.charge_C[rows[0] - 1] if rows[0] > 0 else 0.0)),
                cumulative_charge_C=float(rec.charge_C[rows[-1]]),
            )))
        writer(RunEnded(float(rec.test_time_s[-1]), channel, "imported",
                        f"imported from {source.name} ({rec.reader} {rec.reader_version})", end.timestamp()))
    finally:
        writer.close()
    with h5py.File(output, "r+") as f:  # the writer stamps the import's wall time; the run ended in the file
        f.attrs[layout.A_END_TIME_UTC] = end.isoformat(timespec="milliseconds")
    n_spectra = 0
    if rec.spectra is not None:
        columns = dict(rec.spectra)
        write_spectra(output, rec.channel, columns.pop("frequency_Hz"), columns.pop("z_real_ohm"),
                      columns.pop("z_imag_neg_ohm"), **columns)
        n_spectra = len(np.unique(rec.spectra["spectrum_index"]))
    return ImportResult(Path(output), n, len(bounds) - 1, n_shorts, area, area_source, rec.reader, tuple(rec.notes),
                        n_spectra)
