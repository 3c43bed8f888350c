"""The catalog record of a run file: what a lab-wide catalog stores and searches about one run.

``labctl serve`` (:mod:`labctl.app.serve`) registers every run file in a Tiled catalog with
:func:`catalog_record` as the node's metadata; ``labctl runs`` and :mod:`labctl.store.remote`
search it with the keys of :data:`SEARCH_KEYS`. The record is a pure function of the file (its
content, path, size and modification time), so a catalog rebuilt from the run directories is
the same catalog. It is plain JSON (strings, finite numbers, booleans, ``None``, lists, dicts)::

    {
      "attrs":    the file's root attributes, as RunFile.attrs gives them (protocol_kind,
                  protocol_name, status, end_reason, operator, start_time_utc, end_time_utc,
                  start_unix_time_s, cell_electrolyte, cell_area_cm2, cell_temperature_C,
                  instrument_idn, station_text, protocol_text …),
      "results":  the scalar results of the run's analysis (attributes of the file's results
                  group, nested groups as dicts; arrays are left in the file), e.g. ccd_mA_cm2,
      "channels": {channel: {"status": …, "end_reason": …}} (set when the run ends),
      "station":  {"instruments": {name: {"driver": …, "address": …}}} from station_text,
      "catalog":  {"schema": 1, "path": absolute path on the server, "bench": the run
                   directory's label, "size_bytes", "mtime_ns", "end_unix_time_s",
                   "electrolyte_lower", "operator_lower"}
    }

Numbers that are not finite (a simulated run's speed ``inf``, a NaN result) are stored as
``None``: JSON has no such numbers. The ``*_lower`` copies make the text searches
case-insensitive on PostgreSQL too (SQL ``LIKE`` is case-sensitive there, not on SQLite).
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from labctl.store.reader import RunFile, RunFileError

#: Version of the record layout (``catalog.schema``); a catalog holding records of another
#: version is rebuilt from the files.
RECORD_SCHEMA = 1
#: The Tiled spec every registered run carries (``tiled.queries.SpecsQuery`` finds runs by it).
RUN_SPEC = "labctl-run"

#: Searchable fields → their key in the record (dotted, as Tiled's ``Key`` queries take it).
SEARCH_KEYS: dict[str, str] = {
    "kind": "attrs.protocol_kind",
    "name": "attrs.protocol_name",
    "status": "attrs.status",
    "operator": "catalog.operator_lower",
    "electrolyte": "catalog.electrolyte_lower",
    "electrolyte_thickness_um": "attrs.cell_electrolyte_thickness_um",
    "area_cm2": "attrs.cell_area_cm2",
    "temperature_C": "attrs.cell_temperature_C",
    "start_unix_time_s": "attrs.start_unix_time_s",
    "end_unix_time_s": "catalog.end_unix_time_s",
    "instrument": "attrs.instrument_idn",
    "bench": "catalog.bench",
    "simulated": "attrs.simulated",
}

#: The results a run table shows for each run kind (names in the record's ``results``).
HEADLINE_RESULTS: dict[str, tuple[str, ...]] = {
    "ccd_staircase": ("ccd_mA_cm2",),
    "symmetric_cycling": ("cycles_completed", "ended_by"),
    "cafm_trigger_sweep": ("gb_median_triggering_bias_V", "gi_to_gb_ratio"),
    "memristor_cycling": ("on_off_median", "n_reset_failures"),
}


def json_value(value: Any) -> Any:
    """``value`` as plain JSON: numpy scalars → Python, non-finite floats → ``None``,
    bytes → str, sequences and arrays → lists, mappings → dicts with str keys."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [json_value(v) for v in value]
    return value


def _scalars(results: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of a results dict (``RunFile.results()``), sub-groups kept as dicts
    of their scalars; arrays and lists are left out (they stay in the file)."""
    out: dict[str, Any] = {}
    for key, value in results.items():
        if isinstance(value, dict):
            if scalars := _scalars(value):
                out[key] = scalars
        elif not isinstance(value, list | tuple | np.ndarray):
            out[key] = json_value(value)
    return out


def _station(station_text: Any) -> dict[str, Any]:
    """The instruments (driver, address) of a stored station file; ``{}`` if it has none."""
    try:
        station = yaml.safe_load(station_text) if isinstance(station_text, str) and station_text else {}
    except yaml.YAMLError:
        return {}
    instruments = station.get("instruments") if isinstance(station, dict) else None
    if not isinstance(instruments, dict):
        return {}
    return {"instruments": {str(name): {"driver": str(cfg.get("driver", "")), "address": str(cfg.get("address", ""))}
                            for name, cfg in instruments.items() if isinstance(cfg, dict)}}


def _unix_time_s(text: Any) -> float | None:
    """An ISO 8601 time as Unix seconds (UTC if it names no zone); ``None`` if empty or not ISO."""
    if not isinstance(text, str) or not text:
        return None
    try:
        when = _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.timezone.utc)
    return when.timestamp()


def catalog_record(path: str | Path, *, bench: str = "") -> dict[str, Any]:
    """The catalog record of one run file (see the module docstring), also of a file that is
    still being written (it is read in SWMR mode, never locked).

    Args:
        path: the run file.
        bench: label of the run directory the file was found in (``labctl serve NAME=DIR``).

    Returns:
        The record, a JSON-able dict.

    Raises:
        RunFileError: missing, unreadable or not a labctl run file (the message names it).
    """
    path = Path(path).resolve()
    stat = path.stat() if path.is_file() else None
    with RunFile(path, swmr=True) as run:
        try:
            attrs = run.attrs
            channels = {ch: {k: json_value(v) for k, v in run.channel_attrs(ch).items() if k != "program_json"}
                        for ch in run.channels}
            results = _scalars(run.results())
        except (OSError, KeyError, ValueError) as exc:
            raise RunFileError(f"{path}: cannot read the run's attributes or results ({exc})") from None
    assert stat is not None  # RunFile raised if the file was missing
    return {
        "attrs": json_value(attrs),
        "results": results,
        "channels": channels,
        "station": _station(attrs.get("station_text")),
        "catalog": {
            "schema": RECORD_SCHEMA,
            "path": str(path),
            "bench": bench,
            "size_bytes": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "end_unix_time_s": _unix_time_s(attrs.get("end_time_utc")),
            "electrolyte_lower": str(attrs.get("cell_electrolyte", "")).lower(),
            "operator_lower": str(attrs.get("operator", "")).lower(),
        },
    }


__all__ = ["HEADLINE_RESULTS", "RECORD_SCHEMA", "RUN_SPEC", "SEARCH_KEYS", "catalog_record", "json_value"]
