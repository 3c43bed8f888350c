"""Behaviour of a Keithley 2400 SourceMeter's analog side, over a simulated load.

This is the instrument, not its wire: source function and level, compliance, output
state, and what a reading returns (the ``:READ?`` elements V, I, R, timestamp, status).
:mod:`drivers.sim.keithley2400` puts SCPI in front of it; tests and benchmarks can call it
directly.

Readings are rounded to the resolution of the measurement range in use (auto-range: the most
sensitive range holding the value; :data:`MEASURE_RESOLUTION`), so a reading of a cell at
16 mV carries 1 µV steps and one of a cell at 0.5 V 10 µV steps, as on the instrument; the
noise is the load's (:class:`drivers.sim.physics.cell.CellParameters` ``noise_V``).

Compliance (2400 manual 2400S-900-01 §6 "Compliance limit"): when a current source would
need more than the voltage compliance, the output clamps at the compliance voltage and the
real current falls below the set value; the status word then has bit 3 ("in real
compliance") set. The mirror holds for a voltage source and the current compliance.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: What the 2400 returns for a function that is not measured (manual §18, ``:FORM:ELEM``).
NOT_A_NUMBER = 9.91e37

#: Status-word bits of the ``STATus`` reading element (2400 manual §18, Table 18-4).
STATUS_COMPLIANCE = 1 << 3
STATUS_V_MEAS = 1 << 11
STATUS_I_MEAS = 1 << 12
STATUS_R_MEAS = 1 << 13
STATUS_V_SOURCE = 1 << 14
STATUS_I_SOURCE = 1 << 15
STATUS_RANGE_COMPLIANCE = 1 << 16

MAX_VOLTAGE_V = 210.0
#: Longest interval over which a voltage source's current is held constant while the load is
#: integrated (s): a model choice, short against a cell's relaxation (minutes).
VOLTAGE_SOURCE_SUBSTEP_S = 2.0
MAX_CURRENT_A = 1.05

#: Measurement ranges (full scale, 105 % of nominal) and their default resolution, from the
#: 2400 specifications ("Voltage measurement accuracy": 200 mV range 1 µV, 2 V 10 µV, 20 V
#: 100 µV, 200 V 1 mV; "Current measurement accuracy": 1 µA range 10 pA … 1 A 10 µA).
MEASURE_RESOLUTION: dict[str, tuple[tuple[float, float], ...]] = {
    "VOLT": ((0.21, 1e-6), (2.1, 1e-5), (21.0, 1e-4), (210.0, 1e-3)),
    "CURR": ((1.05e-6, 1e-11), (1.05e-5, 1e-10), (1.05e-4, 1e-9), (1.05e-3, 1e-8), (1.05e-2, 1e-7),
             (1.05e-1, 1e-6), (1.05, 1e-5)),
}


def measure_resolution(function: str, value: float, full_scale: float | None = None) -> float:
    """The 2400's reading resolution for ``value`` of ``function`` ("VOLT" in V, "CURR" in A):
    that of the fixed range ``full_scale``, or with auto-range (None) of the most sensitive
    range holding |value| ([`MEASURE_RESOLUTION`]). Raises KeyError for another function."""
    table = MEASURE_RESOLUTION[function]
    target = abs(value) if full_scale is None else full_scale
    for scale, resolution in table:
        if target <= scale * (1 + 1e-9):
            return resolution
    return table[-1][1]


def quantise(function: str, value: float, full_scale: float | None = None) -> float:
    """``value`` rounded to the resolution :func:`measure_resolution` gives."""
    target = abs(value) if full_scale is None else full_scale
    for scale, step in MEASURE_RESOLUTION[function]:  # inlined measure_resolution: once per reading
        if target <= scale * (1 + 1e-9):
            return round(value / step) * step
    return round(value / step) * step


class Load(Protocol):
    """What the source-measure unit is connected to (a cell, a tip junction, a resistor)."""

    def advance(self, dt_s: float, current_A: float) -> None: ...
    def voltage_V(self, current_A: float) -> float: ...
    def current_A(self, voltage_V: float) -> float: ...


@dataclass
class Resistor:
    """An ohmic load, for tests that need exact numbers."""

    resistance_ohm: float

    def advance(self, dt_s: float, current_A: float) -> None:
        """A resistor has no state to integrate."""

    def voltage_V(self, current_A: float) -> float:
        return current_A * self.resistance_ohm

    def current_A(self, voltage_V: float) -> float:
        return voltage_V / self.resistance_ohm


class SourceMeterModel:
    """A Keithley 2400's source/measure state over a :class:`Load`, in simulated time.

    ``now`` returns the time in seconds (any monotonic origin); pass a shared, accelerated
    clock to make the instrument and the engine agree on simulated time. All methods are
    thread-safe. Values are SI units: V, A, s.
    """

    def __init__(self, load: Load, now: Callable[[], float] = time.monotonic) -> None:
        self.load = load
        self._now = now
        self._lock = threading.RLock()
        self.reset()

    # -- state -------------------------------------------------------------------------
    def reset(self) -> None:
        """``*RST`` defaults (2400 manual §C "Default parameters")."""
        with self._lock:
            self._t_last = self._now()
            self._t_zero = self._t_last
            self.source_function = "VOLT"
            self.source_voltage_V = 0.0
            self.source_current_A = 0.0
            self.compliance_V = 21.0
            self.compliance_A = 105e-6
            self.output_enabled = False
            self.auto_output_off = False
            self.sense_functions = {"CURR"}
            self.measure_range: dict[str, float | None] = {"VOLT": None, "CURR": None}
            """Fixed measurement range (full scale) per function; None: auto-range."""
            self._i_flowing = 0.0

    def _sync(self) -> None:
        """Integrate the load from the last event to now at the current that was flowing (a
        voltage source: the current the load takes, recomputed every
        :data:`VOLTAGE_SOURCE_SUBSTEP_S` — the instrument holds the voltage, the cell's
        current follows it between readings)."""
        t = self._now()
        dt = t - self._t_last
        if dt > 0 and self.output_enabled and self.source_function == "VOLT":
            while dt > 1e-12:
                h = min(dt, VOLTAGE_SOURCE_SUBSTEP_S)
                self._i_flowing = self._operating_point()[1]
                self.load.advance(h, self._i_flowing)
                dt -= h
        elif dt > 0:  # with the output off the load sits at open circuit, and relaxes
            self.load.advance(dt, self._i_flowing if self.output_enabled else 0.0)
        self._t_last = t

    def _operating_point(self) -> tuple[float, float, bool]:
        """(V, I, in_compliance) for the present source setting with the output on."""
        if self.source_function == "CURR":
            i = self.source_current_A
            v = self.load.voltage_V(i)
            if abs(v) > self.compliance_V:
                v = math.copysign(self.compliance_V, v)
                return v, self.load.current_A(v), True
            return v, i, False
        v = self.source_voltage_V
        i = self.load.current_A(v)
        if abs(i) > self.compliance_A:
            i = math.copysign(self.compliance_A, i)
            return self.load.voltage_V(i), i, True
        return v, i, False

    # -- commands ----------------------------------------------------------------------
    def set_source_function(self, function: str) -> None:
        """``:SOUR:FUNC CURR|VOLT``. Changing it turns the output off, as the 2400 does."""
        with self._lock:
            self._sync()
            if function != self.source_function:
                self.output_enabled = False
                self._i_flowing = 0.0
            self.source_function = function

    def set_level(self, function: str, value: float) -> None:
        """Set the source level of ``function`` ("CURR" in A, "VOLT" in V)."""
        with self._lock:
            self._sync()
            if function == "CURR":
                self.source_current_A = value
            else:
                self.source_voltage_V = value
            if self.output_enabled:
                self._i_flowing = self._operating_point()[1]

    def set_compliance(self, function: str, value: float) -> None:
        """``:SENS:VOLT:PROT`` ("VOLT", V) or ``:SENS:CURR:PROT`` ("CURR", A); magnitude."""
        with self._lock:
            self._sync()
            if function == "VOLT":
                self.compliance_V = abs(value)
            else:
                self.compliance_A = abs(value)
            if self.output_enabled:
                self._i_flowing = self._operating_point()[1]

    def set_output(self, enabled: bool) -> None:
        with self._lock:
            self._sync()
            self.output_enabled = enabled
            self._i_flowing = self._operating_point()[1] if enabled else 0.0

    def read(self) -> tuple[float, float, float, float, int]:
        """One reading: (voltage_V, current_A, resistance_ohm, timestamp_s, status).

        The instrument refuses ``:READ?`` with the output off and auto output-off disabled
        (error 803, manual App. B); the SCPI front end enforces that before calling here.
        Called anyway, this returns the open-circuit voltage and 0 A. Functions not being
        measured read as 9.91e37, as on the instrument.
        """
        with self._lock:
            self._sync()
            status = STATUS_I_SOURCE if self.source_function == "CURR" else STATUS_V_SOURCE
            auto_on = self.auto_output_off and not self.output_enabled
            if self.output_enabled or auto_on:
                v, i, compliant = self._operating_point()
                if compliant:
                    status |= STATUS_COMPLIANCE
                self._i_flowing = i if self.output_enabled else 0.0
            else:
                v, i = self.load.voltage_V(0.0), 0.0
            v = quantise("VOLT", v, self.measure_range["VOLT"])
            i = quantise("CURR", i, self.measure_range["CURR"])
            r = NOT_A_NUMBER
            if "VOLT" in self.sense_functions:
                status |= STATUS_V_MEAS
            if "CURR" in self.sense_functions:
                status |= STATUS_I_MEAS
            if "RES" in self.sense_functions:
                status |= STATUS_R_MEAS
                r = v / i if i else NOT_A_NUMBER
            return v, i, r, self._t_last - self._t_zero, status

    def reset_timestamp(self) -> None:
        """``:SYST:TIME:RES``: the reading timestamp restarts at zero."""
        with self._lock:
            self._t_zero = self._now()
