"""The event stream the engine publishes; subscribers (HDF5 writer, plots, progress,
notifiers, online analysis) consume it and never talk to instruments.

Times ``t_s`` are test time: seconds of the run's clock since the run started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np


class Column(NamedTuple):
    """One recorded quantity: dataset name, numpy dtype, units, Battery Data Format label."""

    name: str
    dtype: str
    units: str
    bdf_label: str | None


#: Columns of a :class:`Readings` batch and of a channel group in the run file. Names map
#: one-to-one onto Battery Data Format labels where BDF has one (cyclers-data-formats.md §2).
READING_COLUMNS: tuple[Column, ...] = (
    Column("test_time_s", "f8", "s", "Test Time / s"),
    Column("voltage_V", "f8", "V", "Voltage / V"),
    Column("current_A", "f8", "A", "Current / A"),
    Column("current_density_mA_cm2", "f8", "mA cm-2", None),
    Column("charge_C", "f8", "C", None),
    Column("step_index", "i4", "1", "Step Count / 1"),
    Column("cycle_index", "i4", "1", "Cycle Count / 1"),
    Column("status", "u4", "1", None),
)


@dataclass(frozen=True)
class RunStarted:
    t_s: float
    channel: str
    program_json: str
    start_step: int
    unix_time_s: float


@dataclass(frozen=True)
class StepStarted:
    t_s: float
    channel: str
    step_index: int
    kind: str
    label: str
    cycle: int
    current_A: float


@dataclass(frozen=True)
class Readings:
    """A batch of readings: ``columns[name]`` is a 1-D array, all of the same length."""

    channel: str
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["test_time_s"])


@dataclass(frozen=True)
class Detected:
    """Something noteworthy: ``kind`` is e.g. "short", "compliance", "safety", "error"."""

    t_s: float
    channel: str
    kind: str
    message: str
    step_index: int = -1


@dataclass(frozen=True)
class StepSummary:
    """One executed step; ``reason`` is why it ended (time, voltage, charge, short, …)."""

    step_index: int
    kind: str
    label: str
    cycle: int
    current_A: float
    current_density_mA_cm2: float
    start_s: float
    end_s: float
    reason: str
    n_points: int
    voltage_end_V: float
    voltage_mean_V: float
    abs_voltage_max_V: float
    charge_C: float
    cumulative_charge_C: float


@dataclass(frozen=True)
class StepEnded:
    t_s: float
    channel: str
    summary: StepSummary


@dataclass(frozen=True)
class RunEnded:
    """``status``: completed, short, soft_short, polarisation, safety, stopped, interrupted,
    error or instrument_lost."""

    t_s: float
    channel: str
    status: str
    reason: str
    unix_time_s: float
    steps: tuple[StepSummary, ...] = field(default=())


@dataclass(frozen=True)
class Spectrum:
    """One impedance spectrum measured by an ``impedance`` step.

    ``frequency_Hz`` (Hz), ``z_real_ohm`` (Re Z, Ω), ``z_imag_neg_ohm`` (−Im Z, Ω): 1-D arrays of
    equal length, in measuring order; ``t_s`` the test time at the spectrum's end (s);
    ``spectrum_index`` counts the run's spectra from 0. The run-file writer stores it under
    ``spectra/<channel>`` (:mod:`labctl.store.spectra`), adding |Z| and the phase.
    """

    t_s: float
    channel: str
    step_index: int
    cycle: int
    spectrum_index: int
    frequency_Hz: np.ndarray
    z_real_ohm: np.ndarray
    z_imag_neg_ohm: np.ndarray


Event = RunStarted | StepStarted | Readings | Detected | StepEnded | RunEnded | Spectrum
Subscriber = Callable[[Any], None]
