"""Standard files out: a run file → Battery Data Format (BDF) CSV, one file per channel.

``labctl export RUN.h5 --format bdf [-o OUT.csv]``. BDF rules followed (battery-data-alliance
battery-data-format README; cyclers-data-formats.md §2):

* one cell per file — a run file with several channels gives one CSV per channel;
* the header uses BDF's preferred labels ``Quantity / unit`` with BDF's fixed units;
* the file name ends ``.bdf.csv`` (the default output is ``RUN.bdf.csv`` beside the run file,
  ``RUN.<channel>.bdf.csv`` for each channel of a multi-channel run);
* current sign: positive = charging. labctl records current in that sign already (for a
  symmetric Li | SSE | Li cell: positive = plating onto the working electrode), and imported
  cycler files keep their cycler's sign, which is the same convention; nothing is flipped.

Columns, in this order:

=========================  ===================================================================
``Test Time / s``          ``test_time_s`` (its ``bdf_label`` attribute)
``Voltage / V``            ``voltage_V``
``Current / A``            ``current_A``
``Unix Time / s``          the run's start (``start_unix_time_s``, else ``start_time_utc``) + test time
``Cycle Count / 1``        ``cycle_index``
``Step Count / 1``         ``step_index`` (the executed-step counter: it never resets)
``Net Capacity / Ah``      ``charge_C`` / 3600 (signed charge since the start; BioLogic Q-Qo)
=========================  ===================================================================

Any other channel dataset that carries a ``bdf_label`` attribute is appended after these.
``Step Index / 1`` is deprecated in the BDF ontology (1.3.0) and is not written. A run file
with only ``start_time_utc`` (to the second) gives ``Unix Time / s`` to ±1 s; imported runs store
the vendor file's start to the millisecond.
"""

from __future__ import annotations

import csv
import datetime as _dt
from pathlib import Path

import numpy as np

import labctl.store.layout as layout
from labctl.store.layout import RunFileError
from labctl.store.reader import RunFile

#: BDF preferred labels written, in order (cyclers-data-formats.md §2, ontology 1.3.0).
TEST_TIME = "Test Time / s"
VOLTAGE = "Voltage / V"
CURRENT = "Current / A"
UNIX_TIME = "Unix Time / s"
CYCLE_COUNT = "Cycle Count / 1"
STEP_COUNT = "Step Count / 1"
NET_CAPACITY = "Net Capacity / Ah"
BDF_COLUMN_ORDER: tuple[str, ...] = (TEST_TIME, VOLTAGE, CURRENT, UNIX_TIME, CYCLE_COUNT, STEP_COUNT, NET_CAPACITY)


def _start_unix_s(run: RunFile) -> float:
    """The run's start: ``start_unix_time_s`` where the file has it, else ``start_time_utc``."""
    attrs = run.attrs
    start_unix = attrs.get(layout.A_START_UNIX_TIME_S)
    if isinstance(start_unix, int | float) and not isinstance(start_unix, bool) and np.isfinite(start_unix):
        return float(start_unix)
    text = str(attrs.get(layout.A_START_TIME_UTC, ""))
    try:
        start = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise RunFileError(f"{run.path}: start_time_utc: {text!r} is not an ISO 8601 time") from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=_dt.timezone.utc)
    return start.timestamp()


def bdf_columns(run: RunFile, channel: str) -> dict[str, np.ndarray]:
    """One channel's readings as BDF columns (label → 1-D array), in :data:`BDF_COLUMN_ORDER`.

    Raises:
        RunFileError: the run's ``start_time_utc`` is not ISO 8601, or the channel lacks
            ``test_time_s``, ``voltage_V`` or ``current_A`` (BDF's required columns).
    """
    columns = run.columns(channel)
    for name in ("test_time_s", "voltage_V", "current_A"):
        if name not in columns:
            raise RunFileError(f"{run.path}: {layout.column_path(channel, name)}: missing (BDF requires it)")
    labels = run.bdf_labels(channel)
    table: dict[str, np.ndarray] = {label: columns[name] for name, label in labels.items()}
    table[UNIX_TIME] = _start_unix_s(run) + columns["test_time_s"]
    if "charge_C" in columns:
        table[NET_CAPACITY] = columns["charge_C"] / 3600.0
    ordered = {label: table.pop(label) for label in BDF_COLUMN_ORDER if label in table}
    ordered.update(table)
    return ordered


def output_paths(run_path: Path, channels: list[str], output: Path | None) -> dict[str, Path]:
    """Where each channel's CSV goes: ``output`` (one channel) or ``output`` with ``.<channel>``
    before its ``.bdf.csv`` / ``.csv`` ending (several); default ``RUN[.<channel>].bdf.csv``."""
    base = output if output is not None else run_path.with_name(run_path.name.removesuffix(run_path.suffix) + ".bdf.csv")
    if len(channels) == 1:
        return {channels[0]: base}
    name = base.name
    ending = next((e for e in (".bdf.csv", ".csv") if name.lower().endswith(e)), base.suffix)
    stem = name[: len(name) - len(ending)] if ending else name
    return {channel: base.with_name(f"{stem}.{channel}{ending}") for channel in channels}


def _format(values: np.ndarray) -> list:
    """Shortest round-trip text for floats, plain integers for integer columns."""
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64).tolist()
    return values.astype(np.float64).tolist()


def export_bdf(run_path: str | Path, output: str | Path | None = None) -> list[Path]:
    """Write a run file's readings as BDF CSV, one file per channel (see the module docstring).

    Args:
        run_path: a labctl run file (also one imported with ``labctl import``).
        output: the CSV to write; with several channels, one file per channel named from it.

    Returns:
        The CSV files written, one per channel.

    Raises:
        RunFileError: not a labctl run file, or a field BDF needs is missing/unreadable
            (the message names the file and field).
        FileExistsError: an output file exists (never overwritten).
    """
    run_path = Path(run_path)
    with RunFile(run_path) as run:
        channels = run.channels
        if not channels:
            raise RunFileError(f"{run_path}: {layout.CHANNELS}: the run file has no channel to export")
        targets = output_paths(run_path, channels, Path(output) if output is not None else None)
        for target in targets.values():
            if target.exists():
                raise FileExistsError(f"{target}: exists; remove it or choose another -o")
        written = []
        for channel, target in targets.items():
            table = bdf_columns(run, channel)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(table)
                writer.writerows(zip(*(_format(values) for values in table.values())))
            written.append(target)
    return written


__all__ = ["BDF_COLUMN_ORDER", "bdf_columns", "export_bdf", "output_paths"]
