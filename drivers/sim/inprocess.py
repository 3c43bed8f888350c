"""A :class:`~drivers.base.SourceMeter` that calls a simulated 2400 directly, with no wire.

For engine unit tests and the throughput benchmark, where the point is to measure our own
software and not the loopback socket. Everything that goes over VISA is tested with the
real driver against :mod:`drivers.sim.keithley2400`.
"""

from __future__ import annotations

from drivers.base import InstrumentError, Reading
from drivers.sim.smu import SourceMeterModel


class InProcessSourceMeter:
    """Implements :class:`drivers.base.SourceMeter` on a :class:`SourceMeterModel`, and the
    voltage source of :class:`drivers.base.SweepingSourceMeter` without its list sweeps."""

    def __init__(self, model: SourceMeterModel, address: str = "sim://inprocess") -> None:
        self.model = model
        self.address = address
        self._compliance_set = False

    def configure_current_source(self, compliance_V, *, current_range_A=None, voltage_range_V=None, nplc=1.0):
        self.model.set_output(False)
        self.model.set_source_function("CURR")
        self.model.set_level("CURR", 0.0)
        self.model.set_compliance("VOLT", compliance_V)
        self.model.sense_functions = {"VOLT", "CURR"}
        self._compliance_set = True

    def set_current(self, current_A: float) -> None:
        self.model.set_level("CURR", current_A)

    def configure_voltage_source(self, compliance_A, *, voltage_range_V=None, current_range_A=None, nplc=1.0):
        """As :meth:`drivers.base.SweepingSourceMeter.configure_voltage_source` (no list sweeps here)."""
        self.model.set_output(False)
        self.model.set_source_function("VOLT")
        self.model.set_level("VOLT", 0.0)
        self.model.set_compliance("CURR", compliance_A)
        self.model.sense_functions = {"VOLT", "CURR"}
        self._compliance_set = True

    def set_voltage(self, voltage_V: float) -> None:
        self.model.set_level("VOLT", voltage_V)

    def output_on(self) -> None:
        if not self._compliance_set:
            raise RuntimeError(f"{self.address}: configure a compliance limit before output on")
        self.model.set_output(True)

    def output_off(self) -> None:
        self.model.set_output(False)

    def read(self) -> Reading:
        """As ``:READ?``: refused with the output off (error 803, as the wire simulator does)."""
        if not (self.model.output_enabled or self.model.auto_output_off):
            raise InstrumentError(self.address, '803,"Not permitted with OUTPUT off"')
        v, i, _r, t, status = self.model.read()
        return Reading(v, i, t, status)

    def reconnect(self) -> None:
        """Nothing to reconnect in-process; compliance must be configured again."""
        self._compliance_set = False

    def state(self) -> dict[str, object]:
        m = self.model
        return {"output_on": m.output_enabled, "source": m.source_function, "source_current_A": m.source_current_A,
                "source_voltage_V": m.source_voltage_V, "compliance_V": m.compliance_V, "compliance_A": m.compliance_A}

    def close(self) -> None:
        self.model.set_output(False)
