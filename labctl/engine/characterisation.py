"""The characterisation steps of the software-timed executor: ``impedance``, ``set_temperature``
and ``linear_sweep`` (:mod:`labctl.steps`), as :class:`CharacterisationSteps`, a mixin of
:class:`~labctl.engine.software_timed.SoftwareTimedExecutor`.

* ``impedance``: the instrument's :meth:`~drivers.base.ImpedanceAnalyser.measure_impedance` on
  the run's clock (a simulated instrument runs in simulated time); the spectrum is published
  as a :class:`~labctl.events.Spectrum` (stored under ``spectra/<channel>``). The cell is at
  open circuit before and after (the source in current mode at 0 A).
* ``set_temperature``: the chamber's set point, then :meth:`~drivers.base.TemperatureChamber.wait_stable`
  on the run's clock: the step — and so the next one — does not end before every reading has
  stayed within the tolerance for the soak time. The cell's open-circuit voltage is recorded at
  each chamber reading. A chamber that does not get there within the step's timeout, goes idle
  or has its set point changed at the chamber ends the run with an error naming it; a stop ends
  the wait at once. The chamber's limits are its driver's (refused before anything is sent).
* ``linear_sweep``: the instrument's own sweep where it has one
  (:meth:`~drivers.base.LinearSweeper.linear_sweep`: a BioLogic channel), else a staircase of
  ``record_every_dE_V`` voltage steps timed by the engine on a sourcemeter (2400). The current
  limit (``safety.max_abs_current_A``) ends the sweep (step reason ``current``): an oxidation
  current growing past it is where an LSV stops, not a fault.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from drivers.base import Reading
from labctl.events import Detected, Spectrum, StepStarted, StepSummary

#: Step kinds this mixin executes.
CHARACTERISATION_KINDS = frozenset({"impedance", "set_temperature", "linear_sweep"})


class CharacterisationSteps:
    """Mixin: the executor's ``impedance``, ``set_temperature`` and ``linear_sweep`` steps.

    Uses the executor's ``smu``, ``chamber``, ``clock``, ``channel``, ``_program``, buffers and
    publishing; counts the run's spectra in ``_n_spectra``.
    """

    smu: Any
    chamber: Any
    clock: Any
    channel: str
    _n_spectra: int = 0

    def _characterisation_step(self, index: int, step: Any, cycle: int) -> StepSummary:
        self._flush()  # readings of earlier timed steps go out first, in order
        t_start = self._test_time()
        q0 = self._charge_C
        self._publish(StepStarted(t_start, self.channel, index, step.kind, step.label, cycle, 0.0))
        if step.kind == "impedance":
            reason = self._impedance(index, step, cycle)
        elif step.kind == "set_temperature":
            reason = self._set_temperature(index, step, cycle)
        else:
            return self._linear_sweep(index, step, cycle, t_start, q0)
        self._flush()
        return self._sweep_summary(index, step, cycle, t_start, reason, np.empty(0), np.empty(0), q0)

    # -- impedance ------------------------------------------------------------------------------
    def _impedance(self, index: int, step: Any, cycle: int) -> str:
        spectrum = self.smu.measure_impedance(
            mode=step.mode, initial_frequency_Hz=step.initial_frequency_Hz, final_frequency_Hz=step.final_frequency_Hz,
            points_per_decade=step.points_per_decade, amplitude_V=step.amplitude_V, amplitude_A=step.amplitude_A,
            average_n=step.average_n, wait_periods=step.wait_periods, now=self.clock.now, sleep=self.clock.sleep,
            abort=self._stop_requested)
        if len(spectrum.frequency_Hz):
            self._publish(Spectrum(self._test_time(), self.channel, index, cycle, self._n_spectra,
                                   np.asarray(spectrum.frequency_Hz, float), np.asarray(spectrum.z_real_ohm, float),
                                   np.asarray(spectrum.z_imag_neg_ohm, float)))
            self._n_spectra += 1
        # A stop that came after the last frequency leaves a whole spectrum: the step is done.
        return "completed" if len(spectrum.frequency_Hz) >= step.n_frequencies else "stopped"

    # -- temperature --------------------------------------------------------------------------------
    def _set_temperature(self, index: int, step: Any, cycle: int) -> str:
        chamber = self.chamber
        chamber.set_temperature_C(step.temperature_C)
        wait = f"waiting until within ±{step.tolerance_K:g} K for {step.soak_s:g} s" if step.wait else "not waiting"
        self._publish(Detected(self._test_time(), self.channel, "set_temperature",
                               f"chamber {chamber.address}: set point {step.temperature_C:g} °C; {wait}", index))
        if not step.wait:
            return "completed"
        last: list[float] = []

        def on_reading(_now_s: float, temperature_C: float) -> None:
            last[:] = [temperature_C]
            self._record(self.smu.read(), index, cycle)

        stable = chamber.wait_stable(step.tolerance_K, step.soak_s, step.timeout_s, poll_s=step.poll_s,
                                     now=self.clock.now, sleep=self.clock.sleep, abort=self._stop_requested,
                                     on_reading=on_reading)
        if not stable:
            return "stopped"
        reading = f"{last[0]:.2f} °C" if last else "no reading"
        self._publish(Detected(self._test_time(), self.channel, "temperature_stable",
                               f"chamber {chamber.address} at {step.temperature_C:g} °C (last reading {reading}) "
                               f"for {step.soak_s:g} s", index))
        return "completed"

    def _record(self, reading: Reading, index: int, cycle: int) -> None:
        """One reading into the buffer (at the run's test time; charge integrated)."""
        buf, t = self._buffer, self._test_time()
        i = reading.current_A
        times = buf["test_time_s"]
        if times:
            self._charge_C += buf["current_A"][-1] * (t - times[-1])
        for name, value in (("test_time_s", t), ("voltage_V", reading.voltage_V), ("current_A", i),
                            ("current_density_mA_cm2", i * 1e3 / self._program.area_cm2), ("charge_C", self._charge_C),
                            ("step_index", index), ("cycle_index", cycle), ("status", reading.status)):
            buf[name].append(value)
        self._n_readings += 1

    # -- linear sweep ---------------------------------------------------------------------------------
    def _linear_sweep(self, index: int, step: Any, cycle: int, t_start: float, q0: float) -> StepSummary:
        program = self._program
        i_safe = program.safety.max_abs_current_A
        if hasattr(self.smu, "linear_sweep"):
            readings = self.smu.linear_sweep(start_V=step.start_V, end_V=step.end_V, scan_rate_V_s=step.scan_rate_V_s,
                                             record_every_dE_V=step.record_every_dE_V, compliance_A=i_safe,
                                             start_at_ocv=step.start_at_ocv, now=self.clock.now,
                                             sleep=self.clock.sleep, abort=self._stop_requested)
            times = np.array([t_start + r.time_s for r in readings])
            if len(times):
                self.clock.sleep(max(0.0, float(times[-1]) - self._test_time()))
        else:
            readings, times = self._staircase(step, i_safe)
        v = np.array([r.voltage_V for r in readings])
        i = np.array([r.current_A for r in readings])
        self._emit(index, cycle, times, v, i, [r.status for r in readings], program.area_cm2)
        reason = "stopped" if self.stopping else "completed"
        if readings and (readings[-1].compliance or abs(readings[-1].current_A) >= i_safe):
            reason = "current"
            self._publish(Detected(float(times[-1]), self.channel, "current_limit",
                                   f"sweep ended at {v[-1]:.4g} V: |I| {abs(i[-1]):.4g} A reached the current limit "
                                   f"{i_safe:.4g} A in step {index} ({step.label})", index))
        return self._sweep_summary(index, step, cycle, t_start, reason, v, i, q0)

    def _staircase(self, step: Any, i_safe: float) -> tuple[list[Reading], np.ndarray]:
        """The sweep on a plain sourcemeter: a voltage step of ``record_every_dE_V`` every
        dE / scan rate, one reading at the end of each; back to 0 A (open circuit) afterwards."""
        smu = self.smu
        start = smu.read().voltage_V + step.start_V if step.start_at_ocv else step.start_V
        n = max(1, int(math.ceil(abs(step.end_V - start) / step.record_every_dE_V - 1e-9)))
        levels = np.linspace(start, step.end_V, n + 1)
        dt = abs(step.end_V - start) / n / step.scan_rate_V_s
        smu.configure_voltage_source(i_safe)
        smu.set_voltage(float(levels[0]))
        smu.output_on()
        self._mode = "voltage"
        readings: list[Reading] = []
        times: list[float] = []
        try:
            for k, level in enumerate(levels):
                if k:
                    smu.set_voltage(float(level))
                    self.clock.sleep(dt, self._wake)
                if self.stopping:
                    break
                reading = smu.read()
                readings.append(reading)
                times.append(self._test_time())
                if reading.compliance or abs(reading.current_A) >= i_safe:
                    break
        finally:
            self._enter_mode("current")
        return readings, np.array(times)


__all__ = ["CHARACTERISATION_KINDS", "CharacterisationSteps"]
