"""One BioLogic channel as a software-timed potentiostat: :class:`BiologicPotentiostat`.

A cycler program (:class:`drivers.biologic.BiologicCycler`) hands the whole technique list to
the channel's firmware. A characterisation program — plate, measure a spectrum, plate again;
set a temperature, soak, measure — needs the engine between the techniques, so here the channel
runs ONE technique at a time, chosen by what the engine asks:

* :meth:`set_current` in current mode: CP at that current (OCV at 0 A); :meth:`set_voltage` in
  voltage mode: CA at that voltage — each a single step long enough to outlast any program step
  (:data:`HOLD_S`; restarted if it ever ends), recording every ``sample_interval_s``. A change
  of level stops the technique and starts the new one. :meth:`read` gives the channel's present
  values (``BL_GetCurrentValues``) and drains its memory. So the channel is a
  :class:`drivers.base.SourceMeter` for rest, constant-current and constant-voltage steps;
* :meth:`measure_impedance`: PEIS or GEIS at open circuit (:mod:`drivers.biologic.characterisation`),
  its process-1 rows decoded into a spectrum (:class:`drivers.base.ImpedanceAnalyser`);
* :meth:`linear_sweep`: the CV technique with one sweep (:class:`drivers.base.LinearSweeper`).

After a spectrum or a sweep the channel is put back as it was (the held technique restarted,
or left stopped). Compliance first: :meth:`output_on` is refused until :meth:`configure_current_source`
or :meth:`configure_voltage_source` has set the channel's safety limits (Ewe within
±compliance_V, or |I| ≤ compliance_A), which the channel enforces itself (a safety stop, the
current off); a read after such a stop has :data:`drivers.base.COMPLIANCE_BIT` set. Safe: the
channel stopped and the stop confirmed (``BL_GetCurrentValues`` state STOP): :meth:`output_off`.

Units: V, A, s, Hz, Ω. Errors: :class:`~drivers.base.InstrumentLost` / :class:`~drivers.base.InstrumentError`
naming ``address/channel``; ValueError for bad arguments (nothing sent).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

from drivers.base import COMPLIANCE_BIT, ImpedanceSpectrum, InstrumentError, InstrumentLost, Reading
from drivers.biologic.backends import BiologicBackend
from drivers.biologic.channel import BiologicChannel, parse_address
from drivers.biologic.characterisation import GEIS, PEIS, LinearSweepCV, decode_impedance_rows
from drivers.biologic.journal import decode_rows
from drivers.biologic.records import DEVICE_CODES, ChannelState, ERange, TechniqueId
from drivers.biologic.techniques import CA, CP, OCV, CAStep, ChannelSafetyLimits, CPStep, e_range_for, i_range_for

__all__ = ["BiologicPotentiostat", "HOLD_S"]

#: Length of a held technique (s, about three years): longer than any step a program holds a level.
HOLD_S = 1e8
_TIME_ROWS = (TechniqueId.OCV, TechniqueId.CP, TechniqueId.CA, TechniqueId.CPLIMIT, TechniqueId.CALIMIT,
              TechniqueId.CV)


class BiologicPotentiostat:
    """A BioLogic channel driven technique by technique (see the module docstring).

    Args:
        channel: a connected :class:`BiologicChannel` (closed by :meth:`close`).
        sample_interval_s: ``Record_every_dT`` of the held techniques (s): how fresh a
            :meth:`read` is at most.
    """

    def __init__(self, channel: BiologicChannel, *, sample_interval_s: float = 1.0) -> None:
        if not (math.isfinite(sample_interval_s) and sample_interval_s > 0):
            raise ValueError(f"{channel.name}: sample_interval_s must be > 0, got {sample_interval_s!r}")
        self.channel = channel
        self.address = f"{channel.address}/{channel.channel}"
        self.sample_interval_s = float(sample_interval_s)
        self._mode: str | None = None
        self._compliance: float | None = None
        self._safety: ChannelSafetyLimits | None = None
        self._level = 0.0
        self._on = False
        self._stopped_by_us = True
        self._lock = threading.RLock()

    @classmethod
    def open(cls, address: str, *, backend: BiologicBackend, timeout_s: float = 5.0,
             sample_interval_s: float = 1.0) -> BiologicPotentiostat:
        """Connect to the channel at ``address`` (``INSTRUMENT/CHANNEL``).

        Raises ValueError for a malformed address, InstrumentLost if the instrument cannot be
        reached, InstrumentError if it has no such channel.
        """
        instrument, number = parse_address(address)
        channel = BiologicChannel(backend, instrument, number, timeout_s=timeout_s)
        channel.connect()
        return cls(channel, sample_interval_s=sample_interval_s)

    @property
    def idn(self) -> str:
        """``BioLogic <model> s/n <serial> …, channel k of n (potentiostat)``."""
        who = self.channel.identify()
        return (f"BioLogic {who.model} s/n {who.serial}, firmware {who.firmware} / channel {who.channel_firmware}, "
                f"channel {self.channel.channel} of {who.channels} (potentiostat)")

    # -- configuration (compliance first) ----------------------------------------------------
    def configure_current_source(self, compliance_V: float, *, current_range_A: float | None = None,
                                 voltage_range_V: float | None = None, nplc: float = 1.0) -> None:
        """Current mode at 0 A (OCV), output off; the channel stops itself when |Ewe| passes
        ``compliance_V`` (V, its safety limit). Ranges and NPLC are the 2400's: ignored here.

        Raises ValueError (compliance not finite and > 0, or beyond the ±10 V E_Range).
        """
        compliance = self._positive("compliance_V", compliance_V)
        try:
            e_range_for(compliance)
        except ValueError as exc:
            raise ValueError(f"{self.address}: {exc}") from None
        with self._lock:
            self.output_off()
            self._mode, self._compliance, self._level = "current", compliance, 0.0
            self._safety = ChannelSafetyLimits(ewe_max_V=compliance, ewe_min_V=-compliance)

    def configure_voltage_source(self, compliance_A: float, *, voltage_range_V: float | None = None,
                                 current_range_A: float | None = None, nplc: float = 1.0) -> None:
        """Voltage mode at 0 V, output off; the channel stops itself when |I| passes
        ``compliance_A`` (A). Raises ValueError (not finite and > 0, or above 1 A)."""
        compliance = self._positive("compliance_A", compliance_A)
        try:
            i_range_for(compliance)
        except ValueError as exc:
            raise ValueError(f"{self.address}: {exc}") from None
        with self._lock:
            self.output_off()
            self._mode, self._compliance, self._level = "voltage", compliance, 0.0
            self._safety = ChannelSafetyLimits(abs_current_max_A=compliance)

    def _positive(self, name: str, value: float) -> float:
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{self.address}: {name} must be a finite number > 0, got {value!r}")
        return float(value)

    # -- levels -------------------------------------------------------------------------------
    def set_current(self, current_A: float) -> None:
        """Hold ``current_A`` (A) in current mode (CP; OCV at 0 A); restarts the technique if on."""
        self._set("current", current_A, "current_A")

    def set_voltage(self, voltage_V: float) -> None:
        """Hold ``voltage_V`` (V) in voltage mode (CA); restarts the technique if on."""
        self._set("voltage", voltage_V, "voltage_V")

    def _set(self, mode: str, level: float, name: str) -> None:
        if not (isinstance(level, (int, float)) and math.isfinite(level)):
            raise ValueError(f"{self.address}: {name} must be finite, got {level!r}")
        with self._lock:
            if self._mode != mode:
                raise RuntimeError(f"{self.address}: configure the {mode} source first")
            if mode == "current" and abs(level) > 1.0 or mode == "voltage" and abs(level) > 10.0:
                raise ValueError(f"{self.address}: {name} {level:g} is outside the channel's range")
            self._level = float(level)
            if self._on:
                self._start_held()

    def _held_technique(self) -> OCV | CP | CA:
        assert self._compliance is not None
        dt = self.sample_interval_s
        if self._mode == "voltage":
            return CA(steps=(CAStep(voltage_V=self._level, duration_s=HOLD_S),), record_every_dT_s=dt,
                      i_range=i_range_for(self._compliance), e_range=ERange.E_10V)
        e_range = e_range_for(self._compliance)
        if self._level == 0.0:
            return OCV(rest_time_s=HOLD_S, record_every_dT_s=dt, e_range=e_range)
        return CP(steps=(CPStep(current_A=self._level, duration_s=HOLD_S),), record_every_dT_s=dt,
                  i_range=i_range_for(self._level), e_range=e_range)

    def _stop(self) -> None:
        """Stop the channel if it runs, and drain its memory."""
        if self.channel.current_values().state != ChannelState.STOP:
            self._stopped_by_us = True
            self.channel.stop()
        self.channel.read_blocks()

    def _start_held(self) -> None:
        self._stop()
        self.channel.load_techniques([self._held_technique()], self._safety)
        self.channel.start()
        self._stopped_by_us = False

    # -- output ---------------------------------------------------------------------------------
    def output_on(self) -> None:
        """Start holding the level. RuntimeError before a compliance is configured."""
        with self._lock:
            if self._safety is None:
                raise RuntimeError(f"{self.address}: configure a compliance before the output goes on")
            self._start_held()
            self._on = True

    def output_off(self) -> None:
        """Stop the channel and confirm it (state STOP). InstrumentError if it still runs."""
        with self._lock:
            self._on = False
            self._stopped_by_us = True
            state = self.channel.current_values().state
            if state != ChannelState.STOP:
                self.channel.stop()
                state = self.channel.current_values().state
            if state != ChannelState.STOP:
                raise InstrumentError(self.address, f"the channel still reports {state.name} after BL_StopChannel")
            self.channel.read_blocks()

    def read(self) -> Reading:
        """The channel's present Ewe and I (``BL_GetCurrentValues``; at most ``sample_interval_s``
        old) and its elapsed time. A channel that stopped itself on its safety limit reads as in
        compliance (the last stored point); one whose held technique ran out is restarted."""
        with self._lock:
            values = self.channel.current_values()
            last = self._drain_last()
            if values.state == ChannelState.STOP and self._on and not self._stopped_by_us:
                e, i = last if last is not None else (values.Ewe_V, values.I_A)
                if self._safety is not None and self._safety.check(e, i, 0.0, rel_tol=1e-6).name != "OK":
                    self._on = False
                    return Reading(e, i, values.elapsed_s, COMPLIANCE_BIT)
                self._start_held()
                values = self.channel.current_values()
            return Reading(values.Ewe_V, values.I_A, values.elapsed_s, 0)

    def _drain_last(self) -> tuple[float, float] | None:
        """Empty the channel's memory; the (Ewe, I) of the last time-record row, if any."""
        last = None
        for words, info in self.channel.read_blocks():
            if info.TechniqueID in _TIME_ROWS:
                rows = decode_rows(words, info, 2.0**-16, self.channel.device_code)
                if len(rows):
                    last = (float(rows["Ewe_V"][-1]), float(rows["I_A"][-1]))
        return last

    # -- one technique at a time: impedance, linear sweep ---------------------------------------------
    def _run_once(self, technique, safety: ChannelSafetyLimits | None, expected_s: float, now: Callable[[], float],
                  sleep: Callable[[float, threading.Event | None], None], abort: threading.Event | None,
                  take: Callable[[np.ndarray, object], None]) -> bool:
        """Run ``technique`` alone to its end, handing every block to ``take``; then put the held
        technique back. True if it ended by itself, False if ``abort`` stopped it.

        Raises:
            InstrumentError: the channel stopped it on a safety limit (``take`` saw the rows).
            InstrumentLost: it did not end within three times ``expected_s`` plus a minute.
        """
        with self._lock:
            held = self._on
            self._stop()
            self.channel.load_techniques([technique], safety)
            self.channel.start()
            self._stopped_by_us = False
            deadline = now() + 3.0 * expected_s + 60.0
            poll_s = min(max(expected_s / 100.0, 0.05), 10.0)
            finished = True
            try:
                while True:
                    state = self.channel.current_values().state
                    for words, info in self.channel.read_blocks():
                        take(words, info)
                    if state == ChannelState.STOP:
                        break
                    if abort is not None and abort.is_set():
                        self._stop()
                        finished = False
                        break
                    if now() > deadline:
                        self._stop()
                        raise InstrumentLost(self.address, f"the {technique.kind.upper()} technique did not end "
                                                           f"within {deadline - now() + 3 * expected_s:.0f} s")
                    sleep(poll_s, abort)
            finally:
                if held:
                    self._start_held()
            return finished

    def measure_impedance(self, *, mode: str, initial_frequency_Hz: float, final_frequency_Hz: float,
                          points_per_decade: int, amplitude_V: float | None = None,
                          amplitude_A: float | None = None, average_n: int = 1, wait_periods: float = 0.1,
                          now: Callable[[], float], sleep: Callable[[float, threading.Event | None], None],
                          abort: threading.Event | None = None) -> ImpedanceSpectrum:
        """One PEIS (``potentiostatic``, ``amplitude_V``) or GEIS (``galvanostatic``,
        ``amplitude_A``) spectrum at open circuit, log-spaced (see
        :class:`drivers.base.ImpedanceAnalyser`).

        Raises ValueError (bad arguments), InstrumentError, InstrumentLost.
        """
        if not (initial_frequency_Hz > 0 and final_frequency_Hz > 0) or points_per_decade < 1:
            raise ValueError(f"{self.address}: frequencies must be > 0 Hz and points_per_decade ≥ 1")
        decades = abs(math.log10(initial_frequency_Hz / final_frequency_Hz))
        n = max(2, int(round(decades * points_per_decade)) + 1)
        common = dict(initial_frequency_Hz=initial_frequency_Hz, final_frequency_Hz=final_frequency_Hz,
                      frequency_number=n, average_n=average_n, wait_for_steady=wait_periods)
        if mode == "potentiostatic" and amplitude_V is not None:
            technique: PEIS | GEIS = PEIS(amplitude_V=amplitude_V, **common)
        elif mode == "galvanostatic" and amplitude_A is not None:
            technique = GEIS(amplitude_A=amplitude_A, i_range=i_range_for(amplitude_A), **common)
        else:
            raise ValueError(f"{self.address}: mode {mode!r} needs amplitude_V (potentiostatic) or amplitude_A "
                             "(galvanostatic)")
        expected = float(np.sum((wait_periods + average_n) / technique.frequencies_Hz())) + 0.05 * n
        parts: list[dict[str, np.ndarray]] = []
        device = self.channel.device_code

        def take(words: np.ndarray, info) -> None:
            if info.TechniqueID == technique.technique_id and info.ProcessIndex == 1:
                try:
                    parts.append(decode_impedance_rows(words, info, device))
                except ValueError as exc:
                    raise InstrumentLost(self.address, f"BL_GetData: {exc}") from None

        self._run_once(technique, None, expected, now, sleep, abort, take)
        keys = ("frequency_Hz", "z_real_ohm", "z_imag_neg_ohm", "time_s")
        columns = {k: np.concatenate([p[k] for p in parts]) if parts else np.empty(0) for k in keys}
        good = np.isfinite(columns["z_real_ohm"]) & np.isfinite(columns["z_imag_neg_ohm"])
        if not np.all(good):
            raise InstrumentError(self.address, f"{int(np.sum(~good))} impedance point(s) without a current (|I| = 0)")
        return ImpedanceSpectrum(**columns)

    def linear_sweep(self, *, start_V: float, end_V: float, scan_rate_V_s: float, record_every_dE_V: float,
                     compliance_A: float, start_at_ocv: bool = False, now: Callable[[], float],
                     sleep: Callable[[float, threading.Event | None], None],
                     abort: threading.Event | None = None) -> list[Reading]:
        """A linear sweep (the CV technique, Ei → E1; see :class:`drivers.base.LinearSweeper`).
        The channel's safety limit |I| ≤ ``compliance_A`` stops it: the last reading is then in
        compliance. Raises ValueError, InstrumentError, InstrumentLost."""
        compliance = self._positive("compliance_A", compliance_A)
        try:
            technique = LinearSweepCV(start_V=start_V, end_V=end_V, start_at_ocv=start_at_ocv,
                                      scan_rate_V_s=scan_rate_V_s, record_every_dE_V=record_every_dE_V,
                                      i_range=i_range_for(compliance))
        except ValueError as exc:
            raise ValueError(f"{self.address}: {str(exc).splitlines()[0]}") from None
        safety = ChannelSafetyLimits(abs_current_max_A=compliance)
        rows: list[np.ndarray] = []
        device = self.channel.device_code

        def take(words: np.ndarray, info) -> None:
            if info.TechniqueID == TechniqueId.CV:
                rows.append(decode_rows(words, info, 2.0**-16, device))

        expected = abs(end_V - (0.0 if start_at_ocv else start_V)) / scan_rate_V_s + 5.0 * abs(end_V) / scan_rate_V_s
        self._run_once(technique, safety, expected, now, sleep, abort, take)
        if not rows:
            return []
        data = np.concatenate(rows)
        t0 = float(data["time_s"][0])
        out = [Reading(float(e), float(i), float(t) - t0, 0) for e, i, t in zip(data["Ewe_V"], data["I_A"], data["time_s"])]
        if safety.check(out[-1].voltage_V, out[-1].current_A, 0.0, rel_tol=1e-6).name != "OK":
            out[-1] = out[-1]._replace(status=COMPLIANCE_BIT)
        return out

    # -- the rest of the SourceMeter interface ---------------------------------------------------------
    def reconnect(self) -> None:
        """A new connection; the compliance counts as unset (configure again)."""
        with self._lock:
            self.channel.close()
            self.channel.connect()
            self._safety, self._mode, self._on = None, None, False

    def state(self) -> dict[str, object]:
        """The channel's own view and this driver's settings."""
        with self._lock:
            values = self.channel.current_values()
            return {"output_on": values.state != ChannelState.STOP, "source": self._mode or "current",
                    "source_current_A": self._level if self._mode == "current" else 0.0,
                    "source_voltage_V": self._level if self._mode == "voltage" else 0.0,
                    "compliance_V": self._compliance if self._mode == "current" else None,
                    "compliance_A": self._compliance if self._mode == "voltage" else None,
                    "model": DEVICE_CODES.get(self.channel.device_code, "?")}

    def close(self) -> None:
        """Output off (best effort) and disconnect."""
        try:
            self.output_off()
        except (InstrumentError, OSError):
            pass
        self.channel.close()
