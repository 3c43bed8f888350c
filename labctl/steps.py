"""The step program: the ONE program model, plain validated data that the engine executes.

A :class:`StepProgram` is a list of steps, each with its end conditions, plus the safety
limits and the online checks that hold for the whole run. The step kinds:

* :class:`Rest` — open circuit (0 A), the voltage recorded;
* :class:`ConstantCurrent` — galvanostatic, ends on time, a voltage or a charge;
* :class:`ConstantVoltage` — potentiostatic, ends on time, a current or a charge;
* :class:`VoltageSweep` — a list sweep run by the instrument itself (the 2400's source
  memory and buffer, at most :data:`MAX_SWEEP_POINTS` points), read back in one transfer;
* :class:`TipMove` — bias to 0 V, withdraw, move, engage: the AFM tip on the next site;
* :class:`CurrentMap` — the current at one bias on a grid of tip positions;
* :class:`Impedance` — one PEIS/GEIS spectrum at open circuit (an impedance-capable channel);
* :class:`SetTemperature` — a chamber set point, then the soak: no step starts before it is done;
* :class:`LinearSweep` — linear sweep voltammetry at a scan rate (a BioLogic LSV, or a staircase);
* :class:`Loop` — a body of steps repeated ``count`` times, each pass one cycle; with
  ``until`` (:class:`LoopUntil`) it is left early, at the first reading of a pass that meets
  the exit condition ("until the short", "until the potential reaches 0.05 V").

A CC-CV charge is a :class:`ConstantCurrent` to a voltage cut-off followed by a
:class:`ConstantVoltage` hold at that voltage with a current cut-off; a "rest until a
voltage" is a :class:`Rest` with a voltage stop.

Every kind has a ``kind`` string (the discriminator), a ``label`` and a ``cycle``; the
engine dispatches on ``kind``, and so do the cycler compilers in ``drivers/`` (which read
this model by its attribute names, without importing it). The program prints, validates,
is stored in a run file (``model_dump_json``), compiles to a cycler's native program and
resumes at any step index (:meth:`StepProgram.iter_steps`).

Every number is finite (``allow_inf_nan=False``) and bounded: durations, counts, record
intervals and the expanded program's size have limits below, so a program that validates
can be executed and printed in bounded time and memory.

Units: A, V, s, C, cm², nm, nN. Current sign: positive = plating onto the working electrode
(the Battery Data Format convention "positive = charging", cyclers-data-formats.md §2).
Bias sign (sweeps): V of the working electrode (tip or pad) vs the Li counter/reference
electrode; negative plates Li at the working electrode [004 L54].
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Annotated, Literal, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from labctl.checks import ShortDetection

#: The 2400's sweep and buffer capacity (2400 manual §10, "Sweep operation": 2500 points).
MAX_SWEEP_POINTS = 2500
#: Auto source delay assumed for sweep duration estimates (s; 2400 manual §3, source delay).
AUTO_SOURCE_DELAY_S = 1e-3
#: Shortest record interval of a software-timed step (s): one ``:READ?`` round trip of a
#: 2400 at its fastest integration (NPLC 0.01) plus bus time takes a few ms (2400 manual
#: Appendix A, "Speed"), so faster intervals would only record the same reading again.
MIN_RECORD_INTERVAL_S = 0.01
#: Longest duration of one step (s): ten years.
MAX_STEP_DURATION_S = 10 * 365.25 * 86400
#: Most executed steps of one program (loops unrolled): a 12 000 h cycling run has ~12 000.
MAX_PROGRAM_STEPS = 10_000_000
#: Most passes of one loop.
MAX_LOOP_COUNT = 1_000_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Duration = Annotated[float, Field(gt=0, le=MAX_STEP_DURATION_S)]
RecordInterval = Annotated[float, Field(ge=MIN_RECORD_INTERVAL_S, le=86400)]


class Rest(_Model):
    """Open-circuit rest: the source holds 0 A and the voltage is recorded.

    Ends after ``duration_s``, or earlier when the voltage reaches ``stop_voltage_above_V`` /
    ``stop_voltage_below_V`` (a "rest until a voltage").
    """

    kind: Literal["rest"] = "rest"
    duration_s: Duration
    stop_voltage_above_V: float | None = None
    stop_voltage_below_V: float | None = None
    record_interval_s: RecordInterval
    label: str = ""
    cycle: int = Field(default=0, ge=0)


class ConstantCurrent(_Model):
    """Galvanostatic step. Ends at the first end condition met (time, voltage or charge).

    ``stop_voltage_above_V`` / ``stop_voltage_below_V`` are signed thresholds on the
    measured voltage; ``stop_charge_C`` is on |charge passed in this step|.
    """

    kind: Literal["constant_current"] = "constant_current"
    current_A: float = Field(ge=-10, le=10)
    duration_s: Duration | None = None
    stop_voltage_above_V: float | None = None
    stop_voltage_below_V: float | None = None
    stop_charge_C: float | None = Field(default=None, gt=0, le=1e7)
    record_interval_s: RecordInterval
    label: str = ""
    cycle: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _has_an_end(self) -> ConstantCurrent:
        if self.duration_s is None and self.stop_charge_C is None and (
            self.stop_voltage_above_V is None and self.stop_voltage_below_V is None
        ):
            raise ValueError("a constant-current step needs duration_s, stop_charge_C or a voltage stop")
        return self


class ConstantVoltage(_Model):
    """Potentiostatic step: the source holds ``voltage_V`` and the current is recorded.

    Ends at the first end condition met: ``duration_s``, |I| falling to
    ``stop_current_below_A`` (the CV hold of a CC-CV charge), |I| rising to
    ``stop_current_above_A``, or |charge passed in this step| reaching ``stop_charge_C``.
    The current is limited by ``safety.max_abs_current_A`` (the source's compliance).
    """

    kind: Literal["constant_voltage"] = "constant_voltage"
    voltage_V: float = Field(ge=-210, le=210)
    duration_s: Duration | None = None
    stop_current_below_A: float | None = Field(default=None, gt=0, le=10)
    stop_current_above_A: float | None = Field(default=None, gt=0, le=10)
    stop_charge_C: float | None = Field(default=None, gt=0, le=1e7)
    record_interval_s: RecordInterval
    label: str = ""
    cycle: int = Field(default=0, ge=0)
    direction: Literal["charge", "discharge"] | None = None
    """The hold's current direction: the CV half of a CC-CV charge is ``charge``. With it the
    current stops are signed in that direction — the step ends when the charging current has
    fallen to ``stop_current_below_A``, a current that has turned back included — and cyclers
    write it as their CV charge (NEWARE Step_Type 3) or discharge (19). None: on |I|."""

    @model_validator(mode="after")
    def _has_an_end(self) -> ConstantVoltage:
        if (self.duration_s is None and self.stop_charge_C is None and self.stop_current_below_A is None
                and self.stop_current_above_A is None):
            raise ValueError("a constant-voltage step needs duration_s, stop_charge_C or a current stop")
        return self


class VoltageSweep(_Model):
    """One list sweep run by the instrument: ``points_V`` in order, one reading per point.

    ``source_delay_s``: settling time per point (None: the instrument's auto delay);
    ``abort_on_compliance``: stop at the first reading in compliance (2400 ``:SWE:CAB``).
    ``reset_segment``: (first, last) point indices of a memristor reset excursion; the
    engine then checks online that a reset happened there (for
    :attr:`StepProgram.stop_after_reset_failures`).
    """

    kind: Literal["voltage_sweep"] = "voltage_sweep"
    points_V: list[Annotated[float, Field(ge=-210, le=210)]] = Field(min_length=1, max_length=MAX_SWEEP_POINTS)
    source_delay_s: float | None = Field(default=None, ge=0, le=999.9999)
    nplc: float = Field(default=1.0, ge=0.01, le=10)
    abort_on_compliance: bool = True
    reset_segment: tuple[int, int] | None = None
    label: str = ""
    cycle: int = Field(default=0, ge=0)

    @property
    def duration_s(self) -> float:
        """Expected duration at 50 Hz mains (s): per point source delay + NPLC/50."""
        delay = AUTO_SOURCE_DELAY_S if self.source_delay_s is None else self.source_delay_s
        return len(self.points_V) * (delay + self.nplc / 50.0)


class TipMove(_Model):
    """Bias to 0 V, withdraw, move to (x, y), engage: the tip is on the next site.

    ``site_class`` ("GB", "GI", "HL" or "") and ``distance_to_boundary_nm`` describe the
    site for the analysis; the engine does not use them. ``duration_s`` is what the move is
    expected to take, for the planned duration only.
    """

    kind: Literal["tip_move"] = "tip_move"
    x_nm: float = Field(ge=-1e9, le=1e9)
    y_nm: float = Field(ge=-1e9, le=1e9)
    site_class: str = ""
    distance_to_boundary_nm: float | None = None
    label: str = ""
    cycle: int = Field(default=0, ge=0)
    duration_s: float = Field(default=0.0, ge=0, le=86400)


class CurrentMap(_Model):
    """The current at ``bias_V`` on an ``nx`` × ``ny`` grid from (x0, y0) at ``pitch_nm``,
    row by row (y outer, x inner), the tip in contact: the c-AFM current map of [004 L50]."""

    kind: Literal["current_map"] = "current_map"
    x0_nm: float = Field(ge=-1e9, le=1e9)
    y0_nm: float = Field(ge=-1e9, le=1e9)
    nx: int = Field(ge=1, le=512)
    ny: int = Field(ge=1, le=512)
    pitch_nm: float = Field(gt=0, le=1e6)
    bias_V: float = Field(ge=-210, le=210)
    label: str = ""
    cycle: int = Field(default=0, ge=0)
    duration_s: float = Field(default=0.0, ge=0, le=86400)

    def positions_nm(self) -> Iterator[tuple[float, float]]:
        """(x, y) of each grid point in measuring order (nm)."""
        for j in range(self.ny):
            for i in range(self.nx):
                yield self.x0_nm + i * self.pitch_nm, self.y0_nm + j * self.pitch_nm


# -- characterisation steps: impedance, temperature, linear sweeps (issue 12) ----------------------

#: Highest and lowest impedance frequencies a step may ask for (Hz): a BioLogic SP-300 family
#: channel spans 10 µHz – 7 MHz (EC-Lab, "Impedance" specifications); the seeds use 3 MHz – 1 Hz
#: [000 L185] and 0.1 Hz – 100 kHz [002 L31].
MIN_FREQUENCY_HZ = 1e-5
MAX_FREQUENCY_HZ = 7e6
#: Chamber set points a step may ask for (°C); the chamber's own range (station file) is narrower.
MIN_CHAMBER_C, MAX_CHAMBER_C = -80.0, 300.0


class Impedance(_Model):
    """One impedance spectrum at open circuit (no DC bias): PEIS (``mode: potentiostatic``, a
    sine of ``amplitude_V`` around the open-circuit voltage) or GEIS (``galvanostatic``,
    ``amplitude_A`` around 0 A), from ``initial_frequency_Hz`` to ``final_frequency_Hz``,
    ``points_per_decade`` points on a log scale, each the average of ``average_n`` measurements
    after ``wait_periods`` periods of settling. Seed 000: 3 MHz – 1 Hz, 5 mV [000 L185].

    Runs on an impedance-capable instrument (a BioLogic channel); the spectrum is published as
    a :class:`labctl.events.Spectrum` and stored under ``spectra/<channel>``.
    """

    kind: Literal["impedance"] = "impedance"
    mode: Literal["potentiostatic", "galvanostatic"] = "potentiostatic"
    initial_frequency_Hz: float = Field(ge=MIN_FREQUENCY_HZ, le=MAX_FREQUENCY_HZ)
    final_frequency_Hz: float = Field(ge=MIN_FREQUENCY_HZ, le=MAX_FREQUENCY_HZ)
    points_per_decade: int = Field(default=10, ge=1, le=100)
    amplitude_V: float | None = Field(default=None, gt=0, le=1.0)
    amplitude_A: float | None = Field(default=None, gt=0, le=1.0)
    average_n: int = Field(default=1, ge=1, le=100)
    wait_periods: float = Field(default=0.1, ge=0, le=100)
    label: str = ""
    cycle: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Impedance:
        if self.initial_frequency_Hz == self.final_frequency_Hz:
            raise ValueError("initial_frequency_Hz and final_frequency_Hz must differ")
        if self.mode == "potentiostatic" and (self.amplitude_V is None or self.amplitude_A is not None):
            raise ValueError("a potentiostatic (PEIS) step needs amplitude_V and no amplitude_A")
        if self.mode == "galvanostatic" and (self.amplitude_A is None or self.amplitude_V is not None):
            raise ValueError("a galvanostatic (GEIS) step needs amplitude_A and no amplitude_V")
        if self.n_frequencies > 10_000:
            raise ValueError(f"{self.n_frequencies} frequencies; at most 10000")
        return self

    @property
    def n_frequencies(self) -> int:
        """Points of the spectrum: ``points_per_decade`` per decade, both ends included."""
        decades = abs(math.log10(self.initial_frequency_Hz / self.final_frequency_Hz))
        return max(2, int(round(decades * self.points_per_decade)) + 1)

    @property
    def duration_s(self) -> float:
        """Expected duration (s): per frequency (``wait_periods`` + ``average_n``) periods."""
        f = np.geomspace(self.initial_frequency_Hz, self.final_frequency_Hz, self.n_frequencies)
        return float(np.sum((self.wait_periods + self.average_n) / f))


class SetTemperature(_Model):
    """Bring the chamber to ``temperature_C`` and wait until every reading has stayed within
    ±``tolerance_K`` of it for ``soak_s`` (the cell follows the air); the next step never
    starts before the soak is done. ``timeout_s`` (≥ ``soak_s``) ends the run with an error
    when the chamber does not get there; ``poll_s`` is the time between readings. The chamber's
    own set point range (station file) is checked by its driver before anything is sent.
    """

    kind: Literal["set_temperature"] = "set_temperature"
    temperature_C: float = Field(ge=MIN_CHAMBER_C, le=MAX_CHAMBER_C)
    tolerance_K: float = Field(default=0.5, gt=0, le=20)
    soak_s: float = Field(default=1800.0, ge=0, le=7 * 86400)
    timeout_s: float = Field(default=4 * 3600.0, gt=0, le=7 * 86400)
    poll_s: float = Field(default=10.0, ge=0.1, le=3600)
    wait: bool = True
    """False: set the point and go on at once (a standby temperature at the end of a run)."""
    label: str = ""
    cycle: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> SetTemperature:
        if self.timeout_s < self.soak_s:
            raise ValueError(f"timeout_s {self.timeout_s:g} s is shorter than soak_s {self.soak_s:g} s")
        return self

    @property
    def duration_s(self) -> float:
        """At least the soak (s); the approach adds the chamber's own time."""
        return self.soak_s


class LinearSweep(_Model):
    """Linear sweep voltammetry: the working electrode's potential from ``start_V`` (or, with
    ``start_at_ocv``, from the open-circuit voltage) to ``end_V`` at ``scan_rate_V_s``, one
    reading every ``record_every_dE_V``. Seed 002: OCV → 6.0 V at 0.5 mV s⁻¹ [002 L39]. The
    current is limited by ``safety.max_abs_current_A``. Runs as the instrument's own sweep where
    it has one (a BioLogic channel), else as a staircase of ``record_every_dE_V`` steps timed
    by the engine.
    """

    kind: Literal["linear_sweep"] = "linear_sweep"
    start_V: float = Field(default=0.0, ge=-210, le=210)
    start_at_ocv: bool = False
    end_V: float = Field(ge=-210, le=210)
    scan_rate_V_s: float = Field(gt=0, le=10)
    record_every_dE_V: float = Field(default=1e-3, ge=1e-5, le=1)
    label: str = ""
    cycle: int = Field(default=0, ge=0)

    @property
    def duration_s(self) -> float:
        """Expected duration (s) from ``start_V`` (an OCV start is estimated as 0 V: an upper
        bound for a sweep away from 0 V)."""
        return abs(self.end_V - (0.0 if self.start_at_ocv else self.start_V)) / self.scan_rate_V_s

    @property
    def n_points_max(self) -> int:
        """Readings of the sweep at most (from 0 V when starting at the OCV)."""
        return int(self.duration_s * self.scan_rate_V_s / self.record_every_dE_V) + 2


#: Step kinds that no cycler firmware program runs here: a program with one of these runs step by
#: step, software-timed, on a potentiostat (a BioLogic channel opened as one) or a sourcemeter.
SOFTWARE_ONLY = frozenset({"impedance", "set_temperature", "linear_sweep"})
#: Most readings of one linear sweep.
MAX_LINEAR_SWEEP_POINTS = 1_000_000


#: A step of any kind but a loop.
Step = Annotated[Rest | ConstantCurrent | ConstantVoltage | VoltageSweep | TipMove | CurrentMap | Impedance
                 | SetTemperature | LinearSweep,
                 Field(discriminator="kind")]
#: Step kinds sourcing a current (the source in current mode); the others source a voltage. The
#: characterisation steps begin and end at open circuit (0 A): a linear sweep switches to voltage itself.
CURRENT_SOURCED = frozenset({"rest", "constant_current", "impedance", "set_temperature", "linear_sweep"})
#: Step kinds the engine times itself, reading at ``record_interval_s``.
SOFTWARE_TIMED = frozenset({"rest", "constant_current", "constant_voltage"})


class LoopUntil(_Model):
    """The exit condition of a :class:`Loop`: when a reading of a pass meets it, the step in
    progress ends at that reading and the loop is left (the executors go on with the first
    step after it; the rest of the pass and the remaining passes never run).

    ``kind``:

    * ``short`` — a short or soft short detected on a constant-current step of the loop
      (:class:`~labctl.checks.ShortDetector`, configured by the program's
      ``short_detection``): "plate until the cell shorts" [000 L87]. The short is recorded
      (event and the step's reason) but does not end the run: the run goes on after the loop;
    * ``voltage_above`` / ``voltage_below`` — a reading at or beyond ``voltage_V`` (V, signed)
      on any step of the loop ("until the potential reaches 0.05 V", [003 L555]).

    The step that met the condition ends with the reason ``until`` (``short`` or
    ``soft_short`` for a short). Where each executor evaluates it: the software-timed executor
    at every reading; on a cycler, NEWARE's step jump conditions for the voltage kinds
    (:mod:`drivers.neware.compiler`) and the engine's decision on the downloaded points for the
    others (it stops the channel), which is why a cycler needs such a loop to be the program's
    last entry (:mod:`labctl.engine.delegated`).
    """

    kind: Literal["short", "voltage_above", "voltage_below"]
    voltage_V: float | None = Field(default=None, ge=-210, le=210)

    @model_validator(mode="after")
    def _threshold(self) -> LoopUntil:
        if (self.kind == "short") != (self.voltage_V is None):
            raise ValueError("until: voltage_above and voltage_below need voltage_V; short takes none")
        return self

    def met(self, voltage_V: float) -> bool:
        """Whether a reading of ``voltage_V`` (V) meets a voltage condition (never for ``short``)."""
        if self.kind == "voltage_above":
            return voltage_V >= self.voltage_V  # type: ignore[operator]
        if self.kind == "voltage_below":
            return voltage_V <= self.voltage_V  # type: ignore[operator]
        return False

    def describe(self) -> str:
        """``the short`` or ``V ≥ 0.05 V``: the condition in words, for reasons and messages."""
        if self.kind == "short":
            return "a short"
        return f"V {'≥' if self.kind == 'voltage_above' else '≤'} {self.voltage_V:g} V"


#: Step reasons that meet a loop's ``until`` of each kind.
UNTIL_REASONS = {"short": frozenset({"short", "soft_short"}), "voltage_above": frozenset({"until"}),
                 "voltage_below": frozenset({"until"})}


class Loop(_Model):
    """``steps`` repeated ``count`` times; each pass is one cycle.

    Inside a loop, a step's cycle number is ``first_cycle`` + the pass (0-based), so a
    12 000 h cycling run is a few steps of data, not tens of thousands. ``until``: leave the
    loop early (:class:`LoopUntil`); its steps must then be rests, constant-current and
    constant-voltage steps, and a ``short`` condition needs a constant-current step.
    """

    kind: Literal["loop"] = "loop"
    steps: list[Step] = Field(min_length=1, max_length=10_000)
    count: int = Field(ge=1, le=MAX_LOOP_COUNT)
    first_cycle: int = Field(default=1, ge=0)
    until: LoopUntil | None = None

    @model_validator(mode="after")
    def _until_fits(self) -> Loop:
        if self.until is not None:
            odd = [s.kind for s in self.steps if s.kind not in SOFTWARE_TIMED]
            if odd:
                raise ValueError(f"a loop with until holds rests, constant-current and constant-voltage steps, "
                                 f"not {odd[0]}")
            if self.until.kind == "short" and not any(s.kind == "constant_current" and s.current_A
                                                      for s in self.steps):
                raise ValueError("until: short needs a constant-current step in the loop (shorts are detected there)")
        return self


class LoopSpan(NamedTuple):
    """Where a loop sits in the executed sequence: steps ``first``…``end − 1`` (loops
    unrolled), the loop itself, and whether it is the program's last entry."""

    first: int
    end: int
    loop: Loop
    last: bool


Entry = Annotated[Rest | ConstantCurrent | ConstantVoltage | VoltageSweep | TipMove | CurrentMap | Impedance
                  | SetTemperature | LinearSweep | Loop,
                  Field(discriminator="kind")]


class SafetyLimits(_Model):
    """Limits for the whole run; crossing one ends the run with the output off.

    Pushed into the instrument as its compliance: ``max_abs_voltage_V`` while it sources a
    current, ``max_abs_current_A`` while it sources a voltage (2400 manual §6, compliance).
    """

    max_abs_voltage_V: float = Field(gt=0, le=210)
    max_abs_current_A: float = Field(gt=0, le=10)


class StepProgram(_Model):
    """What the engine runs on one channel.

    ``electrode``: ``cell`` (a two- or three-electrode cell), ``tip`` (a c-AFM tip: needs an
    AFM controller; ``contact_force_nN`` is its engage set point) or ``pad`` (a fixed
    electrode pad: no tip moves or maps). ``short_detection`` and ``polarisation_limit_V``
    apply to constant-current steps; ``stop_after_reset_failures`` ends the run (status
    ``reset_failures``) after that many sweeps whose ``reset_segment`` showed no reset.
    """

    steps: list[Entry] = Field(min_length=1, max_length=1_000_000)
    area_cm2: float = Field(gt=0, le=1e4)
    safety: SafetyLimits
    short_detection: ShortDetection = ShortDetection()
    end_run_on_short: bool = True
    polarisation_limit_V: float | None = Field(default=None, gt=0)
    """End the run (status ``polarisation``) when |V| on a constant-current step exceeds
    this: the "increasing overpotential" failure mode of [003 L522], [002 L165]."""
    electrode: Literal["cell", "tip", "pad"] = "cell"
    contact_force_nN: float | None = Field(default=None, gt=0, le=1e5)
    stop_after_reset_failures: int | None = Field(default=None, ge=1)
    reset_drop_factor: float = Field(default=10.0, gt=1, le=1e12)
    """A reset is a fall of |I| by at least this factor between two points of the segment."""

    @model_validator(mode="after")
    def _consistent(self) -> StepProgram:
        if self.n_steps > MAX_PROGRAM_STEPS:
            raise ValueError(f"the program expands to {self.n_steps} steps; at most {MAX_PROGRAM_STEPS}")
        v_max, i_max = self.safety.max_abs_voltage_V, self.safety.max_abs_current_A
        for position, entry in enumerate(self.steps):
            for step in entry.steps if isinstance(entry, Loop) else [entry]:
                where = f"step {position} ({step.label or step.kind})"
                if isinstance(step, ConstantCurrent) and abs(step.current_A) > i_max:
                    raise ValueError(f"{where}: |current_A| {abs(step.current_A):g} exceeds "
                                     f"safety.max_abs_current_A {i_max:g}")
                if isinstance(step, ConstantVoltage) and abs(step.voltage_V) > v_max:
                    raise ValueError(f"{where}: |voltage_V| {abs(step.voltage_V):g} exceeds "
                                     f"safety.max_abs_voltage_V {v_max:g}")
                if isinstance(step, VoltageSweep):
                    worst = max(abs(v) for v in step.points_V)
                    if worst > v_max:
                        raise ValueError(f"{where}: a point of {worst:g} V exceeds safety.max_abs_voltage_V {v_max:g}")
                    if step.reset_segment is not None:
                        a, b = step.reset_segment
                        if not 0 <= a < b < len(step.points_V):
                            raise ValueError(f"{where}: reset_segment {step.reset_segment} outside the sweep")
                if isinstance(step, CurrentMap) and abs(step.bias_V) > v_max:
                    raise ValueError(f"{where}: map bias {step.bias_V:g} V exceeds safety.max_abs_voltage_V {v_max:g}")
                if isinstance(step, LinearSweep):
                    for name in ("start_V", "end_V"):
                        if abs(getattr(step, name)) > v_max:
                            raise ValueError(f"{where}: {name} {getattr(step, name):g} V exceeds safety.max_abs_voltage_V "
                                             f"{v_max:g}")
                    if step.n_points_max > MAX_LINEAR_SWEEP_POINTS:
                        raise ValueError(f"{where}: {step.n_points_max} readings; at most {MAX_LINEAR_SWEEP_POINTS} "
                                         "(raise record_every_dE_V)")
                if isinstance(step, Impedance):
                    if step.amplitude_V is not None and step.amplitude_V > v_max:
                        raise ValueError(f"{where}: amplitude_V {step.amplitude_V:g} exceeds safety.max_abs_voltage_V")
                    if step.amplitude_A is not None and step.amplitude_A > i_max:
                        raise ValueError(f"{where}: amplitude_A {step.amplitude_A:g} exceeds safety.max_abs_current_A")
                if isinstance(step, Impedance | SetTemperature | LinearSweep) and self.electrode != "cell":
                    raise ValueError(f"{where}: a {step.kind} step needs a cell electrode, not a {self.electrode}")
                if isinstance(step, TipMove | CurrentMap) and self.electrode != "tip":
                    raise ValueError(f"{where}: a {self.electrode} electrode has no tip to move or map")
            if isinstance(entry, Loop) and entry.until is not None and entry.until.kind == "short" and (
                    not self.short_detection.enabled):
                raise ValueError(f"step {position} (loop): until: short needs short_detection enabled")
        return self

    def loop_span(self, index: int) -> LoopSpan | None:
        """The loop that executed step ``index`` belongs to (None: not in a loop, or outside
        the program). O(number of entries)."""
        position = 0
        for k, entry in enumerate(self.steps):
            size = len(entry.steps) * entry.count if isinstance(entry, Loop) else 1
            if position <= index < position + size:
                return LoopSpan(position, position + size, entry, k == len(self.steps) - 1) \
                    if isinstance(entry, Loop) else None
            position += size
        return None

    def loop_exit(self, index: int, reason: str) -> LoopSpan | None:
        """The loop that step ``index``, ended with ``reason``, leaves by its ``until``
        (:data:`UNTIL_REASONS`), or None when the step does not end its loop."""
        span = self.loop_span(index)
        if span is None or span.loop.until is None or reason not in UNTIL_REASONS[span.loop.until.kind]:
            return None
        return span

    def iter_steps(self, start: int = 0) -> Iterator[tuple[int, Step, int]]:
        """(step index, step, cycle) of the executed sequence, loops unrolled, from ``start``.

        The step index counts every executed step and never resets (the Battery Data Format
        "Step Count"); it is what checkpoints and ``start_step`` refer to. Skipping to
        ``start`` costs O(number of entries), not O(start).
        """
        index = 0
        for entry in self.steps:
            if isinstance(entry, Loop):
                body = len(entry.steps)
                if index + body * entry.count <= start:
                    index += body * entry.count
                    continue
                first_pass = max(0, (start - index) // body)
                index += first_pass * body
                for n in range(first_pass, entry.count):
                    for step in entry.steps:
                        if index >= start:
                            yield index, step, entry.first_cycle + n
                        index += 1
            else:
                if index >= start:
                    yield index, entry, entry.cycle
                index += 1

    def step_at(self, index: int) -> tuple[Step, int]:
        """(step, cycle) of executed step ``index``.

        Raises:
            IndexError: ``index`` outside the program.
        """
        for _index, step, cycle in self.iter_steps(index):
            return step, cycle
        raise IndexError(f"step {index} outside the program's {self.n_steps} steps")

    @property
    def n_steps(self) -> int:
        """Number of executed steps, loops unrolled."""
        return sum(len(e.steps) * e.count if isinstance(e, Loop) else 1 for e in self.steps)

    @property
    def n_cycles(self) -> int:
        """Highest cycle number the program reaches."""
        return max(e.first_cycle + e.count - 1 if isinstance(e, Loop) else e.cycle for e in self.steps)

    @property
    def planned_duration_s(self) -> float:
        """Sum of the steps' durations, loops unrolled (steps ending on other conditions
        count as their ``duration_s`` or zero; sweeps as their expected duration)."""
        return sum(
            sum(s.duration_s or 0.0 for s in e.steps) * e.count if isinstance(e, Loop) else (e.duration_s or 0.0)
            for e in self.steps
        )

    @property
    def shortest_record_interval_s(self) -> float | None:
        """The shortest ``record_interval_s`` of the software-timed steps (s), None if none."""
        intervals = [s.record_interval_s for e in self.steps for s in (e.steps if isinstance(e, Loop) else [e])
                     if s.kind in SOFTWARE_TIMED]
        return min(intervals) if intervals else None


def program_kinds(program: StepProgram) -> set[str]:
    """The step kinds a program uses (loops looked into, not unrolled)."""
    return {step.kind for entry in program.steps for step in (entry.steps if isinstance(entry, Loop) else [entry])}


__all__ = ["program_kinds", "Impedance", "MAX_CHAMBER_C", "MIN_CHAMBER_C", "LinearSweep", "MAX_FREQUENCY_HZ", "MIN_FREQUENCY_HZ", "SOFTWARE_ONLY", "SetTemperature",
           "AUTO_SOURCE_DELAY_S", "CURRENT_SOURCED", "ConstantCurrent", "ConstantVoltage", "CurrentMap", "Entry", "Loop",
           "LoopSpan", "LoopUntil", "UNTIL_REASONS",
           "MAX_LOOP_COUNT", "MAX_PROGRAM_STEPS", "MAX_STEP_DURATION_S", "MAX_SWEEP_POINTS", "MIN_RECORD_INTERVAL_S",
           "Rest", "SOFTWARE_TIMED", "SafetyLimits", "ShortDetection", "Step", "StepProgram", "TipMove",
           "VoltageSweep"]
