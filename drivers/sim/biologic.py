"""A simulated BioLogic instrument: the Development Package calls in front of N channels.

:class:`SimulatedBackend` implements :class:`drivers.biologic.BiologicBackend` — ``BL_Connect``,
``BL_GetChannelInfos``, ``BL_LoadTechnique``, ``BL_StartChannel``, ``BL_StopChannel``,
``BL_GetCurrentValues``, ``BL_GetData`` with the DLL's argument order, records and error codes
(``anchors-and-wire-protocols.md`` §3.2 (a)) — plus EC-Lab's safety limits and pause. For this
instrument the "wire" is that call interface: the real path is a DLL, not a socket.

Each channel (:class:`SimChannel`) is the channel firmware: it runs the loaded technique list
on its own Li | SSE | Li cell (:class:`drivers.sim.physics.cell.SymmetricCell`) in the simulated time
of ``now`` — OCV, CP/CPLIMIT, CA/CALIMIT, Loop, PEIS/GEIS at open circuit (the cell's
``impedance_ohm`` at each frequency, with noise) and CV sweeps, read from the ECC parameters on its own
(not with the driver's model, so a test of one against the other checks both) — and stores
its points in a bounded memory whether or not a client is connected. Like
:class:`drivers.sim.neware_channel.ChannelModel`, :meth:`SimChannel.advance` brings a channel up
to an instant and the result does not depend on how often it is called.

Per technique run (choices where §3.2 says nothing; a real channel may differ):

* the channel *samples* every ``Record_every_dT`` (or every ``sample_interval_s`` when a
  ``Record_every_dE``/``dI`` is set) and at each step's end; it stores a point at the step's
  start (unless the step continues the previous one of its CP at the same current: that
  step's end point is the start), every dT (or dE/dI change), at its end and when a limit or
  safety limit trips;
* limit tests (``TestN_Config`` bits: 0 active, 1 logic OR/AND, 2–4 comparison < >, 5+
  variable E/Aux1/Aux2/I, combined left to right) and safety limits are checked at every
  sample, on the stored (float32) values; a safety limit stops the channel, current off;
* a Loop jumps back ``loop_N_times`` times, adding 1 to the loop count each time
  (``DataInfo.loop``), then rearms; the end of the list stops the channel (finished);
* ``BL_StopChannel`` stops at once (no extra point); pause holds the current at 0 and
  freezes the step's time; resume carries on;
* PEIS/GEIS: each frequency takes (``Wait_for_steady`` + ``Average_N_times``) periods plus
  :data:`IMPEDANCE_OVERHEAD_S`; the cell rests at 0 A meanwhile; one process-1 row per frequency
  (:mod:`drivers.biologic.characterisation`); CV: a staircase of ``Record_every_dE`` steps at the
  scan rate, one row per step, the safety limits checked on each;
* time: ``TimeBase`` is 2⁻¹⁶ s (exact in float32); ``StartTime`` is the technique run's
  start in s since ``BL_StartChannel``; a new start empties the memory.

Memory: ``memory_bytes`` per channel (default 4 MiB: not in the wire notes; reported as
``ChannelInfo.MemSize``), 16 bytes per OCV row and 20 per CP/CA row on this VMP3-family
device (~200 000 CP points, 70 days at 30 s). ``BL_GetData`` removes what it returns. When the
memory is full the channel keeps running and checking its limits, but new points are not
stored: they are counted and reported once in the next ``DataInfo.IRQskipped`` (our reading
of that field, "number of IRQ skipped"). Randomness is the cell's (seeded), so runs are exact.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from drivers.biologic import (
    DATA_BUFFER_WORDS,
    E_RANGE_V,
    SP300_FAMILY,
    BLError,
    ChannelInfo,
    ChannelSafetyLimits,
    ChannelState,
    CurrentValues,
    DataInfo,
    DeviceInfo,
    EccParam,
    ERange,
    SafetyCode,
    TechniqueId,
)
from drivers.sim.physics.cell import CellParameters, SymmetricCell, cells_for_channels

#: Default channel memory (bytes); a model choice.
DEFAULT_MEMORY_BYTES = 4 * 1024 * 1024
#: ``CurrentValues.TimeBase`` of the simulated channels (s).
TIME_BASE_S = 2.0**-16
#: The simulated model: an MPG-2 (DeviceCode 22, VMP3 family).
MPG2 = 22
_EPS_S = 1e-9
#: Longest interval over which a CA technique's current is held constant while the cell is
#: integrated (s); a model choice (the cell relaxes over minutes).
CA_SUBSTEP_S = 2.0
_ECC_IDS = {"ocv": TechniqueId.OCV, "cp": TechniqueId.CP, "cplimit": TechniqueId.CPLIMIT, "ca": TechniqueId.CA,
            "calimit": TechniqueId.CALIMIT, "loop": TechniqueId.LOOP, "peis": TechniqueId.PEIS,
            "geis": TechniqueId.GEIS, "cv": TechniqueId.CV}
_IMPEDANCE = (TechniqueId.PEIS, TechniqueId.GEIS)
#: Relative noise (σ, per component) of a simulated impedance point averaged once: a model choice,
#: of the order of a potentiostat's impedance accuracy; it falls as 1/√Average_N_times.
IMPEDANCE_NOISE = 1e-3
#: Time a channel spends per frequency besides the periods it measures (s): a model choice.
IMPEDANCE_OVERHEAD_S = 0.02


def _bits(value: float) -> int:
    """The 32-bit word of an IEEE single (what ``BL_ConvertNumericIntoSingle`` undoes)."""
    return struct.unpack("<I", struct.pack("<f", value))[0]


def _f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


@dataclass(frozen=True)
class _Step:
    value: float
    duration_s: float
    vs_initial: bool = False
    tests: tuple[tuple[int, float], ...] = ()
    exit_cond: int = 0


@dataclass(frozen=True)
class _Technique:
    """A loaded technique as the firmware reads it from its ECC parameters."""

    name: str
    technique_id: TechniqueId
    steps: tuple[_Step, ...] = ()
    record_dt_s: float = 0.0
    record_dx: float = 0.0
    n_cycles: int = 0
    i_range: int = -1
    e_range: int = int(ERange.E_10V)
    repeat: int = 0
    target: int = 0
    frequencies_Hz: tuple[float, ...] = ()
    """PEIS/GEIS: the frequencies in measuring order."""
    amplitude: float = 0.0
    """PEIS: V; GEIS: A."""
    average_n: int = 1
    wait_periods: float = 0.0
    sweep: tuple[tuple[float, float, bool], ...] = ()
    """CV: (Voltage_step, Scan_Rate, vs_initial) of Ei, E1, E2, Ei, Ef."""


def _read_technique(ecc_file: str, params: Sequence[EccParam], index: int) -> _Technique:
    """Interpret ``BL_LoadTechnique``'s parameters. Raises BLError -400 for an unknown file,
    -4 for missing or impossible parameters (the message names them)."""
    base = PurePath(ecc_file).name.lower()
    stem = base[:-4].rstrip("0123456789") if base.endswith(".ecc") else ""
    if stem not in _ECC_IDS:
        raise BLError("BL_LoadTechnique", -400, f"{ecc_file!r} is not simulated (ocv, cp, cplimit, ca, calimit, loop)")
    tid = _ECC_IDS[stem]
    values: dict[str, dict[int, int | float | bool]] = {}
    for p in params:
        values.setdefault(p.ParamStr, {})[int(p.ParamIndex)] = p.ParamVal

    def get(name: str, k: int = 0, default=None):
        found = values.get(name, {}).get(k, default)
        if found is None:
            raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): {name}[{k}] missing")
        return found

    if tid == TechniqueId.LOOP:
        target = int(get("protocol_number"))
        if not 0 <= target < index:
            raise BLError("BL_LoadTechnique", -4, f"technique {index} (loop): protocol_number {target} is not earlier")
        return _Technique(stem, tid, repeat=int(get("loop_N_times")), target=target)
    if tid in _IMPEDANCE:
        return _read_impedance(base, tid, index, get)
    if tid == TechniqueId.CV:
        return _read_cv(base, index, get)
    if tid == TechniqueId.OCV:
        rest = float(get("Rest_time_T"))
        return _Technique(stem, tid, (_Step(0.0, rest),), record_dt_s=float(get("Record_every_dT")),
                          record_dx=float(get("Record_every_dE", 0, 0.0)), e_range=int(get("E_Range", 0, 2)))
    current = tid in (TechniqueId.CP, TechniqueId.CPLIMIT)
    limited = tid in (TechniqueId.CPLIMIT, TechniqueId.CALIMIT)
    value_name, dx_name = ("Current_step", "Record_every_dE") if current else ("Voltage_step", "Record_every_dI")
    n = int(get("Step_number")) + 1
    if not 1 <= n <= 20:
        raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): Step_number {n - 1} not in 0..19")
    i_range = int(get("I_Range"))
    steps = []
    for k in range(n):
        tests = tuple((int(get(f"Test{m}_Config", k, 0)), float(get(f"Test{m}_Value", k, 0.0)))
                      for m in (1, 2, 3)) if limited else ()
        step = _Step(float(get(value_name, k)), float(get("Duration_step", k)), bool(get("vs_initial", k, False)),
                     tests, int(get("Exit_Cond", k, 0)) if limited else 0)
        if step.duration_s < 0:
            raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): Duration_step[{k}] < 0")
        if current and 0 <= i_range <= 10 and abs(step.value) > 1e-10 * 10**i_range * (1 + 1e-6):
            raise BLError("BL_LoadTechnique", -4,
                          f"technique {index} ({base}): Current_step[{k}] {step.value:g} A exceeds I_Range {i_range}")
        steps.append(step)
    dt = float(get("Record_every_dT"))
    if not dt > 0:
        raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): Record_every_dT must be > 0")
    return _Technique(stem, tid, tuple(steps), record_dt_s=dt, record_dx=float(get(dx_name, 0, 0.0)),
                      n_cycles=int(get("N_Cycles", 0, 0)), i_range=i_range, e_range=int(get("E_Range", 0, 2)))


def _read_impedance(base: str, tid: TechniqueId, index: int, get) -> _Technique:
    """PEIS/GEIS at open circuit: the DC step must be 0 vs the initial state for 0 s (what the
    driver loads; other DC biases are not simulated)."""
    dc = "Voltage" if tid == TechniqueId.PEIS else "Current"
    if float(get(f"Initial_{dc}_step")) != 0.0 or not bool(get("vs_initial")) or float(get("Duration_step", 0, 0.0)) > 0:
        raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): only a spectrum at open circuit "
                                              f"(Initial_{dc}_step 0 vs initial, Duration_step 0) is simulated")
    f_i, f_f, n = float(get("Initial_frequency")), float(get("Final_frequency")), int(get("Frequency_number"))
    if not (f_i > 0 and f_f > 0 and n >= 1):
        raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): frequencies must be > 0, Frequency_number ≥ 1")
    space = np.linspace if bool(get("sweep", 0, False)) else np.geomspace
    amplitude = float(get("Amplitude_Voltage" if tid == TechniqueId.PEIS else "Amplitude_Current"))
    if not amplitude > 0:
        raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): the amplitude must be > 0")
    frequencies = tuple(float(f) for f in space(f_i, f_f, n))
    duration = sum((float(get("Wait_for_steady", 0, 0.0)) + int(get("Average_N_times", 0, 1))) / f + IMPEDANCE_OVERHEAD_S
                   for f in frequencies)
    return _Technique(base[:-4].rstrip("0123456789"), tid, (_Step(0.0, duration),), i_range=int(get("I_Range", 0, 12)),
                      e_range=int(get("E_Range", 0, 2)), frequencies_Hz=frequencies, amplitude=amplitude,
                      average_n=max(1, int(get("Average_N_times", 0, 1))),
                      wait_periods=float(get("Wait_for_steady", 0, 0.0)))


def _read_cv(base: str, index: int, get) -> _Technique:
    """CV with one cycle (``N_Cycles`` 0): the profile Ei → E1 → E2 → Ei → Ef."""
    if int(get("N_Cycles", 0, 0)) != 0:
        raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): only N_Cycles 0 is simulated")
    sweep = tuple((float(get("Voltage_step", k)), float(get("Scan_Rate", k)), bool(get("vs_initial", k, False)))
                  for k in range(5))
    if any(not rate > 0 for _v, rate, _b in sweep):
        raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): Scan_Rate must be > 0")
    dE = float(get("Record_every_dE"))
    if not dE > 0:
        raise BLError("BL_LoadTechnique", -4, f"technique {index} ({base}): Record_every_dE must be > 0")
    return _Technique("cv", TechniqueId.CV, (_Step(0.0, math.inf),), record_dx=dE, i_range=int(get("I_Range")),
                      e_range=int(get("E_Range", 0, 2)), sweep=sweep)


def _tests_met(tests: Sequence[tuple[int, float]], e_V: float, i_A: float) -> bool:
    result: bool | None = None
    for config, value in tests:
        if not config & 1:
            continue
        x = {0: e_V, 3: i_A}.get(config >> 5, 0.0)
        met = x > value if (config >> 2) & 0b111 else x < value
        result = met if result is None else ((result and met) if config & 0b10 else (result or met))
    return bool(result)


@dataclass
class _Row:
    technique_index: int
    technique_id: int
    loop: int
    start_time_s: float
    words: tuple[int, ...]
    process: int = 0


@dataclass
class SimChannel:
    """One channel and its cell. Not thread-safe: :class:`SimulatedBackend` serialises calls.

    ``end_reason`` is the firmware's own account once it stops: ``finished``, ``stopped``,
    ``safety_limit`` (``safety_code`` says which) or ``limit_stop``; ``points_stored`` and
    ``points_skipped`` count the points of the current run.
    """

    index: int
    cell: Any
    """The channel's cell: any :class:`drivers.sim.smu.Load`."""
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    sample_interval_s: float = 1.0
    sp300: bool = False
    state: ChannelState = ChannelState.STOP
    techniques: list[_Technique] = field(default_factory=list)
    complete: bool = False
    safety: ChannelSafetyLimits | None = None
    end_reason: str = ""
    safety_code: SafetyCode = SafetyCode.OK
    memory_filled: int = 0
    points_stored: int = 0
    points_skipped: int = 0
    _buffer: deque = field(default_factory=deque)
    _skipped_unreported: int = 0
    _t: float = 0.0
    _t0: float = 0.0
    _now: float = 0.0
    _started: bool = False
    temperature_C: Callable[[float], float] | None = None
    """The cell's temperature (°C) at a simulated time (a chamber's air): followed before every
    sample; None keeps the cell's own."""

    def __post_init__(self) -> None:
        self._noise = np.random.default_rng(int(getattr(self.cell.params, "seed", 0)) * 1009 + self.index)

    # -- control -------------------------------------------------------------------------------
    def load(self, ecc_file: str, params: Sequence[EccParam], first: bool, last: bool) -> None:
        if self.state != ChannelState.STOP:
            raise BLError("BL_LoadTechnique", -13, f"channel {self.index} is running")
        if first:
            self.techniques, self.complete = [], False
        elif self.complete or not self.techniques:
            raise BLError("BL_LoadTechnique", -4, "load the first technique with first=True")
        self.techniques.append(_read_technique(ecc_file, params, len(self.techniques)))
        self.complete = bool(last)

    def start(self, t_s: float) -> None:
        if self.state != ChannelState.STOP:
            raise BLError("BL_StartChannel", -13, f"channel {self.index} is already running")
        if not self.techniques or not self.complete:
            raise BLError("BL_StartChannel", -4, f"channel {self.index}: no complete technique list loaded")
        self._buffer.clear()
        self.memory_filled = self.points_stored = self.points_skipped = self._skipped_unreported = 0
        self.end_reason, self.safety_code = "", SafetyCode.OK
        self._t = self._t0 = self._now = t_s
        self._started = True
        self._loop = 0
        self._remaining: dict[int, int] = {}
        self._q_C = 0.0
        self._E = self._I = self._level = 0.0
        self._exceeded_since: float | None = None
        self.state = ChannelState.RUN
        self._enter(0)
        self.advance(t_s)

    def stop(self, t_s: float) -> None:
        self.advance(t_s)
        self._integrate(t_s)
        if self.state != ChannelState.STOP:
            self._end("stopped")

    def pause(self, t_s: float) -> None:
        self.advance(t_s)
        self._integrate(t_s)
        if self.state != ChannelState.RUN:
            raise BLError("pause", -6, f"channel {self.index} is not running")
        self.state, self._paused_at = ChannelState.PAUSE, t_s

    def resume(self, t_s: float) -> None:
        self.advance(t_s)
        self._integrate(t_s)
        if self.state != ChannelState.PAUSE:
            raise BLError("resume", -6, f"channel {self.index} is not paused")
        self._step_start += t_s - self._paused_at
        self.state = ChannelState.RUN

    # -- the firmware loop -------------------------------------------------------------------------
    def advance(self, t_s: float) -> None:
        """Run the channel up to simulated time ``t_s``.

        The cell is integrated from sample to sample only (and to a stop or pause), never to
        the instant a client happens to ask: the points do not depend on how often it asks."""
        if self._started:
            self._now = max(self._now, t_s)
        while self.state == ChannelState.RUN:
            tech, step = self._tech, self._step
            if tech.technique_id in _IMPEDANCE or tech.technique_id == TechniqueId.CV:
                due = self._impedance_point if tech.technique_id in _IMPEDANCE else self._sweep_point
                if not due(t_s):
                    break
                continue
            duration = step.duration_s
            rel = min(self._sample_k * self._sample_dt, duration)
            target = self._step_start + rel
            if target > t_s + _EPS_S:
                break
            self._integrate(max(target, self._t))
            self._sample(tech, step, rel, rel >= duration - _EPS_S)

    def _follow_temperature(self) -> None:
        # A cell model without a temperature or a way to change it (e.g. a soft-short junction)
        # keeps its own.
        if (self.temperature_C is not None and hasattr(getattr(self.cell, "params", None), "temperature_C")
                and hasattr(self.cell, "reconfigure")):
            t_c = float(self.temperature_C(self._t))
            if abs(t_c - self.cell.params.temperature_C) > 0.01:
                self.cell.reconfigure(temperature_C=round(t_c, 3))

    def _integrate(self, to_s: float) -> None:
        self._follow_temperature()
        dt = to_s - self._t
        if dt > 0 and self.state == ChannelState.RUN:
            if self._tech.technique_id in (TechniqueId.CA, TechniqueId.CALIMIT):
                # Under a held potential the current follows the cell: recompute it at least
                # every CA_SUBSTEP_S (the stored points still come at the record interval).
                while dt > _EPS_S:
                    h = min(dt, CA_SUBSTEP_S)
                    self._I = self.cell.current_A(self._level)
                    self.cell.advance(h, self._I)
                    self._q_C += self._I * h
                    dt -= h
            else:
                self.cell.advance(dt, self._I)
                self._q_C += self._I * dt
        self._t = max(self._t, to_s)

    def _sample(self, tech: _Technique, step: _Step, rel: float, at_end: bool) -> None:
        if tech.technique_id in (TechniqueId.CA, TechniqueId.CALIMIT):
            self._I = self.cell.current_A(self._level)
            e = self._level
        else:
            e = self.cell.voltage_V(self._I)
        self._E, i = _f32(e), _f32(self._I)
        self._sample_k += 1
        if self.safety is not None:
            code = self.safety.check(self._E, i, self._q_C)
            if code == SafetyCode.OK:
                self._exceeded_since = None
            else:
                if self._exceeded_since is None:
                    self._exceeded_since = self._t
                if self._t - self._exceeded_since >= self.safety.delay_s - _EPS_S:
                    self._store(i)
                    self.safety_code = code
                    self._end("safety_limit")
                    return
        if step.tests and _tests_met(step.tests, self._E, i):
            self._store(i)
            if step.exit_cond == 2:
                self._end("limit_stop")
            elif step.exit_cond == 1:
                self._enter(self._index + 1)
            else:
                self._next_step()
            return
        x = e if tech.technique_id not in (TechniqueId.CA, TechniqueId.CALIMIT) else self._I
        if ((rel == 0.0 and not self._continues) or at_end or rel - self._last_record_rel >= tech.record_dt_s - _EPS_S
                or (tech.record_dx > 0 and abs(x - self._last_record_x) >= tech.record_dx)):
            self._store(i)
            self._last_record_rel, self._last_record_x = rel, x
        if at_end:
            self._next_step()

    # -- impedance and sweeps ------------------------------------------------------------------------
    def _impedance_point(self, t_s: float) -> bool:
        """Measure the next frequency of a PEIS/GEIS run if it is done by ``t_s``; False if not yet.
        The cell rests at open circuit (0 A) meanwhile; Z is the cell's small-signal impedance at
        its present state (``impedance_ohm``) with :data:`IMPEDANCE_NOISE`."""
        tech = self._tech
        k = self._sample_k
        f = tech.frequencies_Hz[k]
        done_at = self._step_start + self._impedance_times[k]
        if done_at > t_s + _EPS_S:
            return False
        self._integrate(done_at)
        z = complex(np.asarray(self.cell.impedance_ohm(np.array([f])))[0])
        sigma = IMPEDANCE_NOISE / math.sqrt(tech.average_n)
        z *= complex(1.0 + self._noise.normal(0.0, sigma), self._noise.normal(0.0, sigma))
        self._E = _f32(self.cell.voltage_V(0.0))
        modulus = abs(z)
        if tech.technique_id == TechniqueId.PEIS:
            abs_e, abs_i = tech.amplitude, tech.amplitude / modulus
        else:
            abs_e, abs_i = tech.amplitude * modulus, tech.amplitude
        t_run = (self._t - self._t0) - self._run_start_s
        words = tuple(_bits(x) for x in (f, abs_e, abs_i, math.atan2(z.imag, z.real), self._E, 0.0, 0.0, 0.0, 0.0,
                                           0.0, 0.0, 0.0, 0.0, t_run))
        self._store_words(words if self.sp300 else words + (tech.i_range & 0xFFFFFFFF,), process=1)
        self._sample_k += 1
        if self._sample_k >= len(tech.frequencies_Hz):
            self._enter(self._index + 1)
        return True

    def _sweep_point(self, t_s: float) -> bool:
        """The next event of a linear sweep if it is due by ``t_s``; False if not yet. The
        potential is a staircase of Record_every_dE steps; each step's current is measured at its
        end (``Begin_measuring_I``/``End_measuring_I`` average the current late in the step, past
        the double layer's charging spike: here its last instant), then the next step is applied."""
        k = self._sample_k
        levels, times = self._sweep_levels, self._sweep_times
        target_s = self._step_start + times[k]
        if target_s > t_s + _EPS_S:
            return False
        self._integrate(target_s)
        self._sample_k += 1
        if k > 0:  # the end of step k − 1: its reading
            e = levels[k - 1]
            self._I = self.cell.current_A(e)
            self._E, i = _f32(e), _f32(self._I)
            self._store_sweep(e, i)
            if self.safety is not None:
                code = self.safety.check(self._E, i, self._q_C)
                if code != SafetyCode.OK:
                    self.safety_code = code
                    self._end("safety_limit")
                    return True
        if k == len(levels):
            self._enter(self._index + 1)
            return True
        self._I = self.cell.current_A(levels[k])  # apply the next step (the cell holds it)
        return True

    def _store_sweep(self, e: float, i: float) -> None:
        ticks = round(((self._t - self._t0) - self._run_start_s) / TIME_BASE_S)
        self._store_words((ticks >> 32, ticks & 0xFFFFFFFF, _bits(e), _bits(i), _bits(e), 0))

    def _plan_sweep(self) -> None:
        """The levels and times of a CV run's readings: Ei (vs the open-circuit voltage when
        ``vs_initial``) → E1 → E2 → Ei → Ef, one reading per Record_every_dE."""
        tech = self._tech
        ocv = self.cell.voltage_V(0.0)
        points = [(v + ocv if vs else v, rate) for v, rate, vs in tech.sweep]
        levels, times = [points[0][0]], [0.0]
        t = 0.0
        for (start, _r), (end, rate) in zip(points, points[1:]):
            n = int(math.floor(abs(end - start) / tech.record_dx + 1e-3))  # singles: 0.2 / 0.005 ≈ 40.000003
            step = math.copysign(tech.record_dx, end - start)
            for k in range(1, n + 1):
                levels.append(start + k * step)
                times.append(t + k * tech.record_dx / rate)
            if abs(end - start) > (n + 1e-3) * tech.record_dx:
                levels.append(end)
                times.append(t + abs(end - start) / rate)
            elif n:
                levels[-1] = end  # the last whole step lands on the vertex
            t += abs(end - start) / rate
        step_s = tech.record_dx / points[1][1]
        times.append(times[-1] + step_s)  # the last step's reading, one step later
        self._sweep_levels, self._sweep_times = levels, times

    def _store_words(self, words: tuple[int, ...], process: int = 0) -> None:
        if self.memory_filled + 4 * len(words) > self.memory_bytes:
            self.points_skipped += 1
            self._skipped_unreported += 1
            return
        self._buffer.append(_Row(self._index, int(self._tech.technique_id), self._loop, self._run_start_s, words,
                                 process))
        self.memory_filled += 4 * len(words)
        self.points_stored += 1

    def _next_step(self) -> None:
        if self._step_k + 1 < len(self._tech.steps):
            self._begin_step(self._step_k + 1)
        elif self._cycle < self._tech.n_cycles:
            self._cycle += 1
            self._begin_step(0)
        else:
            self._enter(self._index + 1)

    def _enter(self, index: int) -> None:
        """Enter technique ``index``, following Loop techniques; past the end: finished."""
        while index < len(self.techniques) and self.techniques[index].technique_id == TechniqueId.LOOP:
            loop = self.techniques[index]
            left = self._remaining.get(index, loop.repeat)
            if left > 0:
                self._remaining[index] = left - 1
                self._loop += 1
                index = loop.target
            else:
                self._remaining.pop(index, None)
                index += 1
        if index >= len(self.techniques):
            self._end("finished")
            return
        self._index, self._tech = index, self.techniques[index]
        self._run_start_s = self._t - self._t0
        self._cycle = 0
        self._begin_step(0)

    def _begin_step(self, k: int) -> None:
        tech = self._tech
        level_before = self._level
        self._step_k, self._step = k, tech.steps[k]
        previous = tech.steps[k - 1].value if k > 0 else 0.0
        self._level = self._step.value + (previous if self._step.vs_initial else 0.0)
        if tech.technique_id in (TechniqueId.CP, TechniqueId.CPLIMIT):
            self._I = self._level
        elif tech.technique_id in (TechniqueId.OCV, *_IMPEDANCE):
            self._I = 0.0
        if tech.technique_id in _IMPEDANCE:
            self._impedance_times = np.cumsum([(tech.wait_periods + tech.average_n) / f + IMPEDANCE_OVERHEAD_S
                                               for f in tech.frequencies_Hz])
        elif tech.technique_id == TechniqueId.CV:
            self._plan_sweep()
        self._step_start = self._t
        # A step that continues the last at the same current (a CP split into a settling part
        # and the rest) does not store its start: the previous step's end point is that point.
        self._continues = k > 0 and tech.technique_id in (TechniqueId.CP, TechniqueId.CPLIMIT) and self._level == level_before
        self._sample_k = 0
        self._sample_dt = tech.record_dt_s if tech.record_dx == 0 else min(tech.record_dt_s, self.sample_interval_s)
        self._last_record_rel, self._last_record_x = (0.0, self._E) if self._continues else (-math.inf, math.nan)
        self._exceeded_since = None

    def _end(self, reason: str) -> None:
        self.state, self.end_reason, self._I = ChannelState.STOP, reason, 0.0

    def _store(self, i_A: float) -> None:
        ticks = round(((self._t - self._t0) - self._run_start_s) / TIME_BASE_S)
        head = (ticks >> 32, ticks & 0xFFFFFFFF, _bits(self._E))
        if self._tech.technique_id == TechniqueId.OCV:
            words = head if self.sp300 else head + (_bits(0.0),)
        else:
            words = head + (_bits(i_A), self._cycle)
        if self.memory_filled + 4 * len(words) > self.memory_bytes:
            self.points_skipped += 1
            self._skipped_unreported += 1
            return
        self._buffer.append(_Row(self._index, int(self._tech.technique_id), self._loop, self._run_start_s, words))
        self.memory_filled += 4 * len(words)
        self.points_stored += 1

    # -- what the calls return -----------------------------------------------------------------------
    def pop_block(self) -> tuple[np.ndarray, DataInfo]:
        """The rows ``BL_GetData`` returns: the oldest stored rows of one technique run that
        fit in the 1000-word buffer, removed from memory."""
        words = np.zeros(DATA_BUFFER_WORDS, np.uint32)
        skipped, self._skipped_unreported = self._skipped_unreported, 0
        if not self._buffer:
            ti = getattr(self, "_index", 0)
            tid = int(self.techniques[ti].technique_id) if self.techniques else 0
            return words, DataInfo(skipped, 0, 0, ti, tid, 0, getattr(self, "_loop", 0),
                                   getattr(self, "_run_start_s", 0.0))
        head = self._buffer[0]
        key = (head.technique_index, head.loop, head.start_time_s, head.process)
        cols = len(head.words)
        rows: list[_Row] = []
        while self._buffer and len(rows) < DATA_BUFFER_WORDS // cols:
            row = self._buffer[0]
            if (row.technique_index, row.loop, row.start_time_s, row.process) != key:
                break
            rows.append(self._buffer.popleft())
        flat = [w for row in rows for w in row.words]
        words[: len(flat)] = flat
        self.memory_filled -= 4 * len(flat)
        return words, DataInfo(skipped, len(rows), cols, head.technique_index, head.technique_id, head.process,
                               head.loop, head.start_time_s)

    def current_values(self) -> CurrentValues:
        running = self.state != ChannelState.STOP
        e_range = self._tech.e_range if running else int(ERange.E_10V)
        half = E_RANGE_V.get(ERange(e_range), 10.0) if e_range in (0, 1, 2) else 10.0
        return CurrentValues(
            State=int(self.state), MemFilled=self.memory_filled, TimeBase=TIME_BASE_S,
            Ewe=self._E if self.state == ChannelState.RUN else 0.0, EweRangeMin=-half, EweRangeMax=half, Ece=0.0,
            EceRangeMin=-half, EceRangeMax=half, Eoverflow=0, I=_f32(self._I) if self.state == ChannelState.RUN else 0.0,
            IRange=self._tech.i_range if running else -1, Ioverflow=0,
            ElapsedTime=_f32(self._now - self._t0) if self._started else 0.0, Freq=0.0, Rcomp=0.0, Saturation=0,
            OptErr=0, OptPos=0)


class SimulatedBackend:
    """A BioLogic instrument with ``channels`` simulated channels (implements
    :class:`drivers.biologic.BiologicBackend`; channels 0-based as in the DLL).

    Args:
        channels: 1–16 (``MAX_SLOT_NB``, pyeclab ``kbio_types``).
        cell: parameters of every channel's cell (channel k gets ``seed + k``), one per
            channel, or None for the default Li | H.L.-LLZO | Li cell; a sequence may also hold
            cell objects (any :class:`drivers.sim.smu.Load`), one per channel.
        now: simulated clock in seconds (share :mod:`labctl.engine.clock` with the engine).
        address: what ``BL_Connect`` must be given (``"USB0"`` or an IP address).
        device_code: ``DeviceInfo.DeviceCode`` (22, MPG-2, by default; an SP-300-family code
            switches to its OCV row layout).
        memory_bytes: each channel's memory (see the module doc).
        sample_interval_s: sampling interval of techniques recording on dE/dI.
        temperature_C: the cells' temperature (°C) at a simulated time, e.g. a simulated
            chamber's air (:meth:`drivers.sim.chamber.BinderMB1Simulator.temperature_C`); None
            keeps each cell's own.

    Every call first runs the channels up to ``now()``. ``reachable = False`` makes every call
    fail with -200 (communication failed) while the channels carry on. Thread-safe.
    """

    def __init__(self, channels: int = 1, *, cell: CellParameters | Sequence[Any] | None = None,
                 now: Callable[[], float] = time.monotonic, address: str = "USB0", device_code: int = MPG2,
                 serial_number: int = 1207, memory_bytes: int = DEFAULT_MEMORY_BYTES,
                 sample_interval_s: float = 1.0, temperature_C: Callable[[float], float] | None = None) -> None:
        if not 1 <= channels <= 16:
            raise ValueError(f"channels must be 1..16, got {channels}")
        params = cells_for_channels(cell, channels)
        self.now = now
        self.address = address
        self.device_code = device_code
        self.serial_number = serial_number
        self.reachable = True
        self.channels = [SimChannel(k, SymmetricCell(p) if isinstance(p, CellParameters) else p, memory_bytes,
                                    sample_interval_s, device_code in SP300_FAMILY, temperature_C=temperature_C)
                         for k, p in enumerate(params)]
        self._connections: set[int] = set()
        self._next_id = 1
        self._lock = threading.RLock()

    def channel(self, index: int) -> SimChannel:
        """Channel ``index`` (0-based)."""
        return self.channels[index]

    def advance(self) -> None:
        """Run every channel up to ``now()`` (the firmware between calls)."""
        with self._lock:
            t = self.now()
            for ch in self.channels:
                ch.advance(t)

    def _enter(self, function: str, connection_id: int | None, channel: int | None = None) -> SimChannel | None:
        if not self.reachable:
            raise BLError(function, -200)
        if connection_id is not None and connection_id not in self._connections:
            raise BLError(function, -1)
        self.advance()
        if channel is None:
            return None
        if not 0 <= channel < len(self.channels):
            raise BLError(function, -3, f"channel {channel}")
        return self.channels[channel]

    # -- BL_* -----------------------------------------------------------------------------------------
    def connect(self, address: str, timeout_s: float) -> tuple[int, DeviceInfo]:
        with self._lock:
            self._enter("BL_Connect", None)
            if address != self.address:
                raise BLError("BL_Connect", -201, f"no instrument at {address!r}")
            cid = self._next_id
            self._next_id += 1
            self._connections.add(cid)
            return cid, DeviceInfo(DeviceCode=self.device_code, RAMSize=128, CPU=0, NumberOfChannels=len(self.channels),
                                   NumberOfSlots=len(self.channels), FirmwareVersion=601, FirmwareDate_yyyy=2024,
                                   FirmwareDate_mm=1, FirmwareDate_dd=1, HTdisplayOn=0,
                                   NbOfConnectedPC=len(self._connections))

    def disconnect(self, connection_id: int) -> None:
        with self._lock:
            self._enter("BL_Disconnect", connection_id)
            self._connections.discard(connection_id)

    def get_channel_infos(self, connection_id: int, channel: int) -> ChannelInfo:
        with self._lock:
            ch = self._enter("BL_GetChannelInfos", connection_id, channel)
            return ChannelInfo(Channel=channel, BoardVersion=15, BoardSerialNumber=self.serial_number * 100 + channel,
                               FirmwareCode=5, FirmwareVersion=601, XilinxVersion=0, AmpCode=0, NbAmps=0, Lcboard=0,
                               Zboard=0, MUXboard=0, GPRAboard=0, MemSize=ch.memory_bytes, MemFilled=ch.memory_filled,
                               State=int(ch.state), MaxIRange=10, MinIRange=5, MaxBandwidth=7,
                               NbOfTechniques=len(ch.techniques))

    def load_technique(self, connection_id: int, channel: int, ecc_file: str, params: Sequence[EccParam],
                       first: bool, last: bool) -> None:
        with self._lock:
            self._enter("BL_LoadTechnique", connection_id, channel).load(ecc_file, params, first, last)

    def start_channel(self, connection_id: int, channel: int) -> None:
        with self._lock:
            self._enter("BL_StartChannel", connection_id, channel).start(self.now())

    def stop_channel(self, connection_id: int, channel: int) -> None:
        with self._lock:
            self._enter("BL_StopChannel", connection_id, channel).stop(self.now())

    def get_current_values(self, connection_id: int, channel: int) -> CurrentValues:
        with self._lock:
            return self._enter("BL_GetCurrentValues", connection_id, channel).current_values()

    def get_data(self, connection_id: int, channel: int) -> tuple[np.ndarray, DataInfo, CurrentValues]:
        with self._lock:
            ch = self._enter("BL_GetData", connection_id, channel)
            words, info = ch.pop_block()
            return words, info, ch.current_values()

    # -- EC-Lab's, not the Development Package's --------------------------------------------------------
    def set_safety_limits(self, connection_id: int, channel: int, limits: ChannelSafetyLimits | None) -> None:
        with self._lock:
            ch = self._enter("safety limits", connection_id, channel)
            if ch.state != ChannelState.STOP:
                raise BLError("safety limits", -13, f"channel {channel} is running")
            ch.safety = limits

    def pause_channel(self, connection_id: int, channel: int) -> None:
        with self._lock:
            self._enter("pause", connection_id, channel).pause(self.now())

    def resume_channel(self, connection_id: int, channel: int) -> None:
        with self._lock:
            self._enter("resume", connection_id, channel).resume(self.now())
