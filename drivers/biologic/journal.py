"""Decoding ``BL_GetData`` buffers, and the journal every point is written to before anyone
sees it.

How points get out (the part a crash-proof run depends on): ``BL_GetData`` returns up to 1000
32-bit words of one technique run's rows and *removes them from the channel's memory*
(easy-biologic ``get_data``: "Pulls data from the buffer and clears it"). So the driver
writes every block it reads to an append-only *journal* (a file when ``journal_path`` is
given) before anyone sees it, and numbers the points there: record index 1, 2, … in the
order the channel stored them. A process that dies loses nothing: what it had read is in the
journal, what it had not is still in the channel's memory (up to its size:
:attr:`~drivers.biologic.ChannelInfo.MemSize`; ``DataInfo.IRQskipped`` counts points the
channel could not store).

Record layouts (easy-biologic ``lib/data_parser.py``, VMP3 and SP-300 families): OCV rows are
``t_high, t_low, Ewe, Ece`` (VMP3) or ``t_high, t_low, Ewe`` (SP-300); CP, CA, CPLIMIT and
CALIMIT rows are ``t_high, t_low, Ewe, I, cycle``; CV rows ``t_high, t_low, Ec, I, Ewe, cycle``. Floats are IEEE singles in the 32-bit
words (``BL_ConvertNumericIntoSingle``); time = ``DataInfo.StartTime`` +
``CurrentValues.TimeBase`` × (t_high·2³² + t_low) (easy-biologic ``calculate_time``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from drivers.biologic.records import SP300_FAMILY, DataInfo, TechniqueId

__all__ = ["RECORD_DTYPE", "row_layout", "decode_rows", "Journal"]


#: One journaled point. ``run_start_s`` is ``DataInfo.StartTime`` of its technique run;
#: ``charge_C`` is Q − Q0 since the start and ``run_charge_C`` the charge since the technique
#: run began, both signed and summed by the driver (I × Δt between points of one run: exact
#: for CP and OCV, whose current is constant within a run).
RECORD_DTYPE = np.dtype([
    ("time_s", "<f8"), ("run_start_s", "<f8"), ("Ewe_V", "<f8"), ("I_A", "<f8"), ("charge_C", "<f8"),
    ("run_charge_C", "<f8"), ("cycle", "<i4"), ("technique_index", "<i4"), ("technique_id", "<i4"), ("loop", "<i4"),
])
_JOURNAL_MAGIC = b"LABCTL-BL-JRNL02"
_ROW_LAYOUTS = {
    # (SP-300 family?, technique id) -> columns (easy-biologic lib/data_parser.py)
    (False, TechniqueId.OCV): ("t_high", "t_low", "Ewe", "Ece"),
    (True, TechniqueId.OCV): ("t_high", "t_low", "Ewe"),
}
_CURRENT_ROWS = ("t_high", "t_low", "Ewe", "I", "cycle")
#: CV rows (PyExpLabSys ``bio_logic.py`` CV data fields: time, Ec, I, Ewe, cycle).
_CV_ROWS = ("t_high", "t_low", "Ec", "I", "Ewe", "cycle")


def row_layout(technique_id: int, device_code: int) -> tuple[str, ...]:
    """Column names of a technique's rows in the ``BL_GetData`` buffer (see module doc).
    Raises ValueError for techniques whose layout is not known here."""
    sp300 = device_code in SP300_FAMILY
    if technique_id == TechniqueId.OCV:
        return _ROW_LAYOUTS[(sp300, TechniqueId.OCV)]
    if technique_id in (TechniqueId.CP, TechniqueId.CA, TechniqueId.CPLIMIT, TechniqueId.CALIMIT):
        return _CURRENT_ROWS
    if technique_id == TechniqueId.CV:
        return _CV_ROWS
    raise ValueError(f"no row layout for technique id {technique_id}")


def decode_rows(words: np.ndarray, info: DataInfo, time_base_s: float, device_code: int) -> np.ndarray:
    """The rows of one ``BL_GetData`` buffer as a :data:`RECORD_DTYPE` array (charge left 0).
    Raises ValueError if ``NbCols`` does not match the technique's layout."""
    layout = row_layout(info.TechniqueID, device_code)
    if info.NbCols != len(layout):
        raise ValueError(f"technique id {info.TechniqueID}: {info.NbCols} columns, expected {len(layout)} ({', '.join(layout)})")
    table = np.asarray(words, dtype=np.uint32)[: info.NbRows * info.NbCols].reshape(info.NbRows, info.NbCols)
    col = {name: table[:, k] for k, name in enumerate(layout)}
    out = np.zeros(info.NbRows, RECORD_DTYPE)
    ticks = (col["t_high"].astype(np.uint64) << np.uint64(32)) + col["t_low"].astype(np.uint64)
    out["time_s"] = info.StartTime + float(time_base_s) * ticks.astype(np.float64)
    out["run_start_s"] = info.StartTime
    out["Ewe_V"] = col["Ewe"].view(np.float32)
    if "I" in col:
        out["I_A"] = col["I"].view(np.float32)
        out["cycle"] = col["cycle"].astype(np.int32)
    out["technique_index"] = info.TechniqueIndex
    out["technique_id"] = info.TechniqueID
    out["loop"] = info.loop
    return out


class Journal:
    """Every point read from the channel, in order; in memory, and appended to ``path`` (and
    fsynced) when given. A file left by a crashed process is read back whole; a torn last
    record is dropped."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._data = np.zeros(1024, RECORD_DTYPE)
        self.count = 0
        self.offset = 0
        """Records numbered before the first one held (see :meth:`BiologicChannel.attach`)."""
        if path is not None and path.exists():
            raw = path.read_bytes()
            if raw[: len(_JOURNAL_MAGIC)] != _JOURNAL_MAGIC:
                raise ValueError(f"{path}: not a Biologic journal")
            body = raw[len(_JOURNAL_MAGIC):]
            whole = len(body) // RECORD_DTYPE.itemsize * RECORD_DTYPE.itemsize
            if whole != len(body):
                with open(path, "r+b") as fh:
                    fh.truncate(len(_JOURNAL_MAGIC) + whole)
            self._extend(np.frombuffer(body[:whole], RECORD_DTYPE))

    def reset(self) -> None:
        self.count = self.offset = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as fh:
                fh.write(_JOURNAL_MAGIC)
                fh.flush()
                os.fsync(fh.fileno())

    def _extend(self, rows: np.ndarray) -> None:
        need = self.count + len(rows)
        if need > len(self._data):
            grown = np.zeros(max(need, 2 * len(self._data)), RECORD_DTYPE)
            grown[: self.count] = self._data[: self.count]
            self._data = grown
        self._data[self.count:need] = rows
        self.count = need

    def append(self, rows: np.ndarray) -> None:
        """Add decoded rows, summing the charge on from the last point; written out first."""
        rows = rows.copy()
        if self.count:
            before = self._data[self.count - 1: self.count]
        else:
            before = np.zeros(1, RECORD_DTYPE)
            before["run_start_s"] = np.nan  # matches no run
        prev = np.concatenate([before, rows[:-1]])
        same_run = ((prev["run_start_s"] == rows["run_start_s"]) & (prev["technique_index"] == rows["technique_index"])
                    & (prev["loop"] == rows["loop"]))
        dq = np.where(same_run, rows["I_A"] * (rows["time_s"] - prev["time_s"]), 0.0)
        q = np.cumsum(dq)
        rows["charge_C"] = (float(before["charge_C"][0]) if self.count else 0.0) + q
        # the run's charge restarts at each run's first point (where dq is 0)
        last_start = np.maximum.accumulate(np.where(same_run, -1, np.arange(len(rows))))
        carried = float(before["run_charge_C"][0]) if self.count else 0.0
        rows["run_charge_C"] = np.where(last_start < 0, carried + q, q - q[np.maximum(last_start, 0)])
        if self.path is not None:
            if not self.path.exists():
                self.reset()
            with open(self.path, "ab") as fh:
                fh.write(rows.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        self._extend(rows)

    @property
    def last_index(self) -> int:
        return self.offset + self.count

    def since(self, cursor: int, max_points: int | None) -> np.ndarray:
        start = max(0, int(cursor) - self.offset)
        stop = self.count if max_points is None else min(self.count, start + max_points)
        return self._data[start:stop].copy() if stop > start else np.zeros(0, RECORD_DTYPE)

    def last(self) -> np.void | None:
        return self._data[self.count - 1] if self.count else None
