"""Capability interfaces the engine programs against, the errors drivers raise, and the shape
of a step program as the cycler compilers read it.

A driver module implements one or more of these small interfaces; the engine never sees a
wire protocol:

* :class:`SourceMeter`: source current, measure voltage, one reading at a time (Keithley 2400,
  ``drivers.keithley2400.Keithley2400``; in tests ``drivers.sim.inprocess``);
* :class:`SweepingSourceMeter`: source voltage and run list sweeps on the instrument (the 2400);
* :class:`TipPositioner`: an AFM controller moving a conductive tip (``drivers.afm.NanonisAfm``);
* :class:`CyclerChannel`: one channel of a battery cycler running a native program in its own
  firmware (``drivers.neware.NewareCycler``, ``drivers.biologic.BiologicCycler``);
* :class:`ImpedanceAnalyser`: measure one impedance spectrum (PEIS/GEIS) at open circuit, and
  :class:`LinearSweeper`: run a linear sweep voltammogram on the instrument — both a BioLogic
  channel opened as a potentiostat (``drivers.biologic.BiologicPotentiostat``), which is also a
  :class:`SourceMeter` for the rest, constant-current and constant-voltage steps between them;
* :class:`TemperatureChamber`: a climate chamber's set point and soak (``drivers.chamber``).

Errors, the same for every interface: :class:`InstrumentLost` when the instrument cannot be
reached or stops answering (timeout, dropped connection, a reply that does not parse: the
caller may reconnect and try again); :class:`InstrumentError` when it answers but refuses a
command or reports an error (reconnecting does not help). Both name the instrument's address.
A bad argument caught before anything is sent raises ``ValueError`` naming the address.

"Safe", per interface (what the engine's run template leaves behind on every exit path):

* source meter: output off *and confirmed* (``:OUTP?`` reads 0), with the output-off state
  HIMP (high impedance, so a cell is never sunk through the instrument);
* AFM: tip withdrawn (Z controller off, no contact);
* cycler channel: the test stopped and the stop confirmed by reading the status back (state
  no longer ``running``/``paused``), *or*, when the link is lost, deliberately left running:
  the cycler enforces the limits pushed into it and a resumed run reattaches.

Units are SI with the unit in the name (``current_A``, ``duration_s``, ``x_nm``, ``force_nN``).
Current sign: positive = plating onto the working electrode (the Battery Data Format's
"positive = charging", ``cyclers-data-formats.md`` §2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable

    import numpy as np

__all__ = [
    "COMPLIANCE_BIT", "Reading", "InstrumentError", "InstrumentLost",
    "SourceMeter", "SweepingSourceMeter", "TipPositioner",
    "CYCLER_STATES", "CYCLER_ACTIVE_STATES", "CYCLER_RECORD_COLUMNS", "CyclerStatus", "CyclerChannel",
    "StepLike", "ConstantCurrentLike", "LoopLike", "SafetyLimitsLike", "ShortDetectionLike", "ProgramLike",
    "RestLike", "ConstantVoltageLike", "LoopUntilLike",
    "StepBlock", "step_blocks", "step_name", "TemperatureChamber",
    "ImpedanceSpectrum", "ImpedanceAnalyser", "LinearSweeper",
]

#: Bit 3 of the Keithley 2400 status word: "in real compliance" (2400 manual §18, Table 18-4).
COMPLIANCE_BIT = 1 << 3


class Reading(NamedTuple):
    """One source-measure reading.

    ``voltage_V`` and ``current_A`` are the measured values (NaN where the instrument returned
    its "not measured" 9.91e37); ``time_s`` is the instrument's own timestamp (s, from its
    timer or, for a sweep, from the sweep's first reading); ``status`` its status word (2400
    manual §18, Table 18-4).
    """

    voltage_V: float
    current_A: float
    time_s: float
    status: int

    @property
    def compliance(self) -> bool:
        """True when the instrument was clamped at its compliance limit (:data:`COMPLIANCE_BIT`)."""
        return bool(self.status & COMPLIANCE_BIT)


class InstrumentError(Exception):
    """An instrument refused a command or replied with an error; the message starts with its
    address (``address: what``)."""

    def __init__(self, address: str, message: str) -> None:
        super().__init__(f"{address}: {message}")
        self.address = address


class InstrumentLost(InstrumentError):
    """The instrument stopped answering: timeout, dropped connection, garbage reply. A
    :meth:`reconnect` may bring it back; what it did meanwhile must be read back, not assumed."""


# -- source-measure units: software-timed execution ---------------------------------------------

class SourceMeter(Protocol):
    """A source-measure unit sourcing current and measuring voltage.

    Units: A, V, s. The engine configures it (:meth:`configure_current_source`), turns the
    output on, sets a current per step and takes one :meth:`read` per record interval.

    Safety contract:

    * :meth:`output_on` is refused (``RuntimeError``, nothing sent) until a compliance limit
      has been configured on the current session: compliance before output-on;
    * *safe* is :meth:`output_off` returned: the output is off and the instrument has
      confirmed it; its output-off state is high impedance (HIMP), so an open relay, not a
      0 V source, faces the cell.

    Errors: :class:`InstrumentLost` (no or garbage answer: call :meth:`reconnect`, then
    configure again), :class:`InstrumentError` (the instrument reported an error).
    """

    address: str
    """The instrument's address (a VISA resource string for the 2400)."""

    def configure_current_source(
        self,
        compliance_V: float,
        *,
        current_range_A: float | None = None,
        voltage_range_V: float | None = None,
        nplc: float = 1.0,
    ) -> None:
        """Source current (0 A), measure voltage, clamp at ``compliance_V`` (V); the output is
        switched off first and stays off. Ranges ``None`` mean auto-range; ``nplc`` is the
        integration time in power-line cycles (0.01–10 on the 2400, manual §7).

        Raises ValueError (bad compliance or NPLC, nothing sent), InstrumentError (the
        instrument reported an error while configuring), InstrumentLost.
        """
        ...

    def set_current(self, current_A: float) -> None:
        """Set the source level (A, signed); takes effect at once if the output is on."""
        ...

    def output_on(self) -> None:
        """Turn the output on. RuntimeError before a compliance is configured (nothing sent)."""
        ...

    def output_off(self) -> None:
        """Turn the output off and confirm it by reading the output state back (the safe
        state). InstrumentError if the instrument still reports it on; InstrumentLost."""
        ...

    def read(self) -> Reading:
        """One measurement (V, A, instrument time in s, status word). InstrumentLost if the
        reply is missing or does not parse."""
        ...

    def reconnect(self) -> None:
        """Open a new session to the instrument. It may have been reset meanwhile, so the
        compliance counts as unset: configure again before :meth:`output_on`. InstrumentLost
        if it does not answer."""
        ...

    def state(self) -> dict[str, object]:
        """The instrument's own view, read from it: ``output_on`` (bool), ``source``
        (``"current"``/``"voltage"``), ``source_current_A``, ``source_voltage_V``,
        ``compliance_V``, ``compliance_A``. InstrumentLost."""
        ...

    def close(self) -> None:
        """Output off (best effort: a failure is logged, not raised) and release the session."""
        ...


class SweepingSourceMeter(Protocol):
    """A source-measure unit sourcing voltage that runs list sweeps itself (Keithley 2400).

    Units: V, A, s. :meth:`sweep_voltage` runs ``points_V`` on the instrument's own source
    memory and buffer (at most 2500 points, 2400 manual §10) and returns every reading in one
    transfer. Safe, as for :class:`SourceMeter`: output off and confirmed, HIMP; an aborted
    sweep ends there. Errors: :class:`InstrumentError`, :class:`InstrumentLost`.
    """

    address: str
    """The instrument's address (VISA resource string)."""

    def configure_voltage_source(self, compliance_A: float, *, voltage_range_V: float | None = None,
                                 current_range_A: float | None = None, nplc: float = 1.0) -> None:
        """Source voltage (0 V), measure current, clamp at ``compliance_A`` (A); the output is
        switched off first and stays off. Ranges ``None`` mean auto-range. Raises as
        :meth:`SourceMeter.configure_current_source`."""
        ...

    def set_voltage(self, voltage_V: float) -> None:
        """Set the source level (V, signed)."""
        ...

    def output_on(self) -> None:
        """Turn the output on. RuntimeError before a compliance is configured (nothing sent)."""
        ...

    def output_off(self) -> None:
        """Turn the output off and confirm it (the safe state). InstrumentError if the
        instrument still reports it on; InstrumentLost."""
        ...

    def read(self) -> Reading:
        """One measurement (V, A, instrument time in s, status word)."""
        ...

    def sweep_voltage(self, points_V: Sequence[float], compliance_A: float, *, abort_on_compliance: bool = True,
                      nplc: float = 1.0, source_delay_s: float | None = None,
                      abort: threading.Event | None = None) -> list[Reading]:
        """Run ``points_V`` (1–2500 values, V, |V| ≤ 210) as a list sweep on the instrument.

        Returns one :class:`Reading` per executed point, in order (a list of length ≤
        ``len(points_V)``), times relative to the sweep's first reading. With
        ``abort_on_compliance`` the sweep stops at the first point clamped at
        ``compliance_A`` (A): that reading is the last and has :attr:`Reading.compliance`
        set. Setting ``abort`` (from any thread) stops the sweep on the instrument at its
        current point, turns the output off (confirmed) and returns the readings taken so far.
        The output is left as it was found unless the sweep was aborted.

        Raises RuntimeError (not configured as a voltage source), ValueError (bad points,
        compliance, NPLC or delay: nothing sent), InstrumentError (the instrument refused the
        setup), InstrumentLost (no complete answer, or the sweep overran its expected time).
        """
        ...


# -- AFM: the tip ---------------------------------------------------------------------------------

class TipPositioner(Protocol):
    """An AFM controller as the engine sees it: move a conductive tip over the sample, bring
    it into contact at a set force, withdraw it. Units: nm (position), nN (force), s.

    The engine's handshake with the 2400 (c-AFM, seed 004): move, :meth:`engage`, check
    :attr:`in_contact`, sweep, then move on. *Safe* is :meth:`withdraw` returned: the Z
    controller off and the tip out of contact, so no bias reaches the sample through it.

    Errors: :class:`InstrumentLost` (the controller stopped answering), :class:`InstrumentError`
    (it refused a command, e.g. a position outside the scan field, or no contact came).
    """

    address: str
    """The controller's address (``host:port`` for Nanonis)."""

    def move_to_nm(self, x_nm: float, y_nm: float) -> None:
        """Move the tip to (``x_nm``, ``y_nm``) in the scan field and return when it is there.
        InstrumentError outside the scan field."""
        ...

    def position_nm(self) -> tuple[float, float]:
        """The tip's (x, y) in nm."""
        ...

    def engage(self, force_nN: float | None = None, timeout_s: float = 10.0) -> None:
        """Bring the tip into contact, at ``force_nN`` (nN, > 0) if given, else at the current
        setpoint. InstrumentError (after withdrawing again) if there is no contact within
        ``timeout_s`` (s); ValueError for a force outside (0, 10 000) nN."""
        ...

    def withdraw(self, timeout_s: float = 10.0) -> None:
        """Retract the tip fully (the safe state), waiting at most ``timeout_s`` (s).
        InstrumentError if it is still in contact afterwards."""
        ...

    @property
    def in_contact(self) -> bool:
        """True while the tip touches the sample (deflection at least half the setpoint force)."""
        ...

    def deflection_nN(self) -> float:
        """The cantilever's deflection as a force (nN)."""
        ...

    def close(self) -> None:
        """Close the connection; the tip stays where it is (withdraw first)."""
        ...


# -- battery cyclers: delegated execution ------------------------------------------------------

#: States of a cycler channel's test as :meth:`CyclerChannel.status` reports them:
#: ``running`` and ``paused`` (the test goes on), ``finished`` (its program ran to the end),
#: ``protection`` (a limit the program pushed into the cycler ended it), ``stopped`` (a stop
#: command, from us or at the cycler, or the channel moved on to another test).
CYCLER_STATES = ("running", "paused", "finished", "protection", "stopped")
#: The states in which the channel is still executing its test.
CYCLER_ACTIVE_STATES = frozenset({"running", "paused"})

#: Columns of a :meth:`CyclerChannel.records` batch: name and numpy dtype. ``seq_id`` is the
#: cycler's 1-based number of the point in its test; ``test_time_s`` the time since the test
#: began (s); ``step_count`` the 1-based number of the executed step the point belongs to
#: (continuous through loops: the n-th executed step of the test); ``step_charge_C`` the
#: signed charge passed since that step began (C, + = charge, as ``current_A``).
CYCLER_RECORD_COLUMNS: tuple[tuple[str, str], ...] = (
    ("seq_id", "u8"), ("test_time_s", "f8"), ("voltage_V", "f8"), ("current_A", "f8"),
    ("step_count", "i4"), ("step_charge_C", "f8"),
)


class CyclerStatus(NamedTuple):
    """A cycler channel's test: ``state`` (one of :data:`CYCLER_STATES`) and ``detail``, the
    cycler's own word for it (NEWARE ``protect``, a Biologic channel state …)."""

    state: str
    detail: str


class CyclerChannel(Protocol):
    """One channel of a battery cycler that runs a native program in its own firmware.

    The engine (``labctl.engine.delegated``) compiles a step program to the vendor's native
    program text (``compile_native`` of ``drivers.neware`` / ``drivers.biologic``), hands it
    to :meth:`start`, then polls :meth:`status` and collects the points the channel stored
    with :meth:`records`, by cursor, each point once. The channel runs on whatever the PC
    does; after a PC crash :meth:`attach` puts the cursor back where the run file ends.
    Units: V, A, s, C.

    *Safe* for a cycler channel: the test stopped by :meth:`stop` and the stop confirmed by
    reading :meth:`status` back until its state is no longer in :data:`CYCLER_ACTIVE_STATES`
    (the engine does both); or, when the link is lost, the test deliberately left running:
    the limits compiled into the native program (voltage window, current limit, a short's
    voltage floor) hold in the cycler's firmware, and ``labctl resume`` reattaches.

    Errors: :class:`InstrumentLost` when the cycler cannot be reached (the test runs on; the
    cursor has not moved, so the next :meth:`records` returns the same points again),
    :class:`InstrumentError` when it refuses a command. Both name :attr:`address`.
    """

    address: str
    """Where the channel is, e.g. ``127.0.0.1:502/1-1-3`` (NEWARE host:port/pipeline id) or
    ``USB0/1`` (BioLogic instrument/channel)."""
    can_pause: bool
    """Whether :meth:`pause` can hold a running test at once."""
    idn: str
    """What the cycler says it is and the channel's state, one line (the GUI's *Identify*)."""
    test_id: int | None
    """The cycler's id of the test this object follows (after :meth:`start` or :meth:`attach`)."""

    def start(self, native_program: str, label: str) -> int:
        """Load ``native_program`` (the vendor's program text) and start it; returns the test
        id. ``label`` names the test at the cycler (NEWARE barcode). The cursor is at the
        test's first point. InstrumentError if the cycler refuses the program or the start."""
        ...

    def attach(self, test_id: int, last_seq_id: int, last_test_time_s: float, last_step_count: int,
               native_program: str) -> None:
        """Follow test ``test_id``, started with ``native_program``, from after its point
        ``last_seq_id`` (0: from the start), whose test time (s) and step count were
        ``last_test_time_s`` and ``last_step_count``. Nothing is sent to the channel."""
        ...

    def status(self) -> CyclerStatus:
        """The state of the followed test (``stopped`` if the channel has moved on to another)."""
        ...

    def records(self, max_points: int) -> dict[str, np.ndarray]:
        """The points stored since the cursor, at most ``max_points``, in order, as 1-D arrays
        of :data:`CYCLER_RECORD_COLUMNS` (all the same length n, 0 ≤ n ≤ ``max_points``);
        advances the cursor only when the whole batch has arrived. InstrumentError before
        :meth:`start` or :meth:`attach`."""
        ...

    def stop(self) -> None:
        """Stop the test (current off). InstrumentError if the cycler refuses (e.g. the test
        had already ended): read :meth:`status` to confirm either way."""
        ...

    def pause(self) -> None:
        """Hold the test at once (InstrumentError where the cycler cannot: :attr:`can_pause`)."""
        ...

    def resume(self) -> None:
        """Continue a paused test."""
        ...

    def reconnect(self) -> None:
        """Open a new connection to the cycler (the test and the cursor are unaffected)."""
        ...

    def close(self) -> None:
        """Close the connection; the test runs on in the cycler."""
        ...


# -- the step program, as the cycler compilers read it ------------------------------------------
#
# The compilers (drivers/neware/compiler.py, drivers/biologic/compiler.py) read a program by
# structure, not by class: drivers import nothing of labctl. labctl.steps' program model has
# these attribute names; any object with them compiles. Entries are told apart by ``kind``:
# "rest", "constant_current", "constant_voltage", "loop"; a compiler refuses any other kind
# naming the step.

class StepLike(Protocol):
    """One step of a program, any kind. Units: s."""

    @property
    def kind(self) -> str:
        """``"rest"``, ``"constant_current"`` (what the cyclers run) or another kind."""
        ...

    @property
    def label(self) -> str:
        """The protocol's name for the step ("" if none); errors name it."""
        ...

    @property
    def duration_s(self) -> float | None:
        """Time after which the step ends (s, > 0); None: it ends on another condition."""
        ...

    @property
    def record_interval_s(self) -> float:
        """Time between stored points (s, > 0)."""
        ...


class ConstantCurrentLike(StepLike, Protocol):
    """A ``"constant_current"`` step: hold ``current_A`` until the first end condition is met
    (``duration_s``, a voltage stop or ``stop_charge_C``). Units: A, V, C."""

    @property
    def current_A(self) -> float:
        """The current (A, signed: + = plating onto the working electrode)."""
        ...

    @property
    def stop_voltage_above_V(self) -> float | None:
        """End the step when the measured voltage rises above this (V, signed)."""
        ...

    @property
    def stop_voltage_below_V(self) -> float | None:
        """End the step when the measured voltage falls below this (V, signed)."""
        ...

    @property
    def stop_charge_C(self) -> float | None:
        """End the step when |charge passed in this step| reaches this (C, > 0)."""
        ...


class RestLike(StepLike, Protocol):
    """A ``"rest"`` step: no current for ``duration_s``, or until the voltage reaches a stop
    (a "rest until a voltage"; either stop may be None). Units: V."""

    @property
    def stop_voltage_above_V(self) -> float | None:
        """End the rest when the measured voltage rises to this (V, signed)."""
        ...

    @property
    def stop_voltage_below_V(self) -> float | None:
        """End the rest when the measured voltage falls to this (V, signed)."""
        ...


class ConstantVoltageLike(StepLike, Protocol):
    """A ``"constant_voltage"`` step: hold ``voltage_V`` until the first end condition is met
    (``duration_s``, |I| falling to ``stop_current_below_A`` — the CV hold of a CC-CV —,
    |I| rising to ``stop_current_above_A``, or ``stop_charge_C``). Units: V, A, C."""

    @property
    def voltage_V(self) -> float:
        """The held voltage (V, signed)."""
        ...

    @property
    def stop_current_below_A(self) -> float | None:
        """End the step when |I| falls to this (A, > 0)."""
        ...

    @property
    def stop_current_above_A(self) -> float | None:
        """End the step when |I| rises to this (A, > 0)."""
        ...

    @property
    def direction(self) -> str | None:
        """``"charge"``/``"discharge"``: the hold's current direction (the current stops are
        then signed in it), or None (read with ``getattr(step, "direction", None)``)."""
        ...

    @property
    def stop_charge_C(self) -> float | None:
        """End the step when |charge passed in this step| reaches this (C, > 0)."""
        ...


class LoopUntilLike(Protocol):
    """A loop's exit condition: ``kind`` ``"short"``, ``"voltage_above"`` or
    ``"voltage_below"`` with ``voltage_V`` (V; None for a short). Met at any reading of a pass,
    it ends the step in progress and leaves the loop."""

    @property
    def kind(self) -> str:
        ...

    @property
    def voltage_V(self) -> float | None:
        ...


class LoopLike(Protocol):
    """A ``"loop"`` entry: ``steps`` run ``count`` times in a row (each pass one cycle); with
    ``until`` (an attribute a loop may lack or leave None) the loop is left early."""

    @property
    def kind(self) -> str:
        """``"loop"``."""
        ...

    @property
    def steps(self) -> Sequence[StepLike]:
        """The body (≥ 1 step)."""
        ...

    @property
    def count(self) -> int:
        """Passes (≥ 1)."""
        ...

    @property
    def until(self) -> LoopUntilLike | None:
        """The exit condition, or None (read with ``getattr(loop, "until", None)``)."""
        ...


class SafetyLimitsLike(Protocol):
    """Limits for the whole run. Units: V, A."""

    @property
    def max_abs_voltage_V(self) -> float:
        """|V| above this ends the run (V, > 0)."""
        ...

    @property
    def max_abs_current_A(self) -> float:
        """|I| above this ends the run (A, > 0)."""
        ...


class ShortDetectionLike(Protocol):
    """The part of short-circuit detection a cycler can hold in its firmware."""

    @property
    def enabled(self) -> bool:
        """Whether short detection runs at all."""
        ...

    @property
    def floor_V(self) -> float:
        """|V| below this on a constant-current step is a hard short (V, ≥ 0; 0 = no floor)."""
        ...

    @property
    def settle_s(self) -> float:
        """Time after a step's start before the floor may judge (s, ≥ 0): after a current
        reversal a real cell still shows the last half-cycle's polarity for a few ms."""
        ...


class ProgramLike(Protocol):
    """A step program as the cycler compilers read it (``labctl.steps``' model has these names)."""

    @property
    def steps(self) -> Sequence[StepLike | LoopLike]:
        """The entries, in order (≥ 1)."""
        ...

    @property
    def safety(self) -> SafetyLimitsLike:
        """The run's safety limits."""
        ...

    @property
    def short_detection(self) -> ShortDetectionLike:
        """Short-circuit detection settings."""
        ...

    @property
    def end_run_on_short(self) -> bool:
        """Whether a detected short ends the run (only then is the floor pushed into a cycler)."""
        ...


class StepBlock(NamedTuple):
    """One entry of a program as a compiler walks it: ``body`` (its steps) run ``passes``
    times from executed-step index ``first_index``; ``loop`` tells a ``"loop"`` entry (even
    of one pass) from a single step."""

    first_index: int
    body: Sequence[StepLike]
    passes: int
    loop: bool


def step_blocks(program: ProgramLike) -> list[StepBlock]:
    """The program's entries in order as :class:`StepBlock`: a ``"loop"`` entry is its
    ``steps`` × ``count``, any other entry a body of itself run once. Executed-step indices
    count every step run, loops unrolled (the Battery Data Format's "Step Count" − 1, what
    checkpoints refer to)."""
    blocks: list[StepBlock] = []
    index = 0
    for entry in program.steps:
        if entry.kind == "loop":
            block = StepBlock(index, entry.steps, entry.count, True)  # type: ignore[union-attr]
        else:
            block = StepBlock(index, (entry,), 1, False)  # type: ignore[arg-type]
        blocks.append(block)
        index += len(block.body) * block.passes
    return blocks


def step_name(index: int, step: StepLike) -> str:
    """``step 3`` or ``step 3 (label)``: how a compiler's error names a program step."""
    label = getattr(step, "label", "")
    return f"step {index}" + (f" ({label})" if label else "")


# -- temperature chambers ----------------------------------------------------------------------

class TemperatureChamber(Protocol):
    """A climate chamber holding cells at a temperature (BINDER MB1: :mod:`drivers.chamber`).

    Units: °C for temperatures and set points, K for differences (tolerances), s for times.

    :meth:`set_temperature_C` only sets the set point and returns; :meth:`wait_stable` is the
    soak: it returns True only once every reading has stayed within ±``tolerance_K`` of the set
    point for ``soak_s`` on the given clock, so a step that follows it starts at temperature.

    Limits: a set point outside [:attr:`min_setpoint_C`, :attr:`max_setpoint_C`] (the
    chamber's own range, from the station file) is refused before anything is sent.

    Errors: :class:`InstrumentError` when a set point is refused (out of range, not finite, or
    refused by the chamber), when the chamber is not stable within the timeout, is idle, or its
    set point is changed at the chamber during a wait; :class:`InstrumentLost` when the chamber
    does not answer (timeout, refused or dropped connection). Both name :attr:`address`.

    Safe: a chamber with cells inside is never switched off by labctl. Closing the driver, a
    lost connection, an error or the end of a run all leave the chamber controlling to its
    current set point; moving it to a standby temperature (e.g. 25 °C) at the end of a run is
    a step the protocol asks for, and switching it to idle is for the operator at the chamber.
    """

    address: str
    """Where the chamber is, e.g. ``192.168.1.20:10001``."""
    min_setpoint_C: float
    """Lowest set point the chamber accepts (°C)."""
    max_setpoint_C: float
    """Highest set point the chamber accepts (°C)."""

    @property
    def idn(self) -> str:
        """One line: what the chamber is, its temperature, set point and mode (the GUI's *Identify*)."""
        ...

    def set_temperature_C(self, setpoint_C: float) -> None:
        """Control the chamber to ``setpoint_C`` (°C); returns at once, without waiting."""
        ...

    def setpoint_C(self) -> float:
        """The set point the chamber is controlling to now (°C)."""
        ...

    def temperature_C(self) -> float:
        """The chamber's measured air temperature (°C)."""
        ...

    def wait_stable(self, tolerance_K: float, soak_s: float, timeout_s: float, *, poll_s: float = 10.0,
                    now: Callable[[], float] = ..., sleep: Callable[[float, threading.Event | None], None] = ...,
                    abort: threading.Event | None = None,
                    on_reading: Callable[[float, float], None] | None = None) -> bool:
        """Block until every reading has been within ±``tolerance_K`` of the set point for
        ``soak_s`` (True), or ``abort`` is set (False); InstrumentError after ``timeout_s``.
        Readings every ``poll_s`` on the clock ``now``/``sleep`` (engine clock: simulated time);
        ``on_reading(now_s, temperature_C)`` after each."""
        ...

    def reconnect(self) -> None:
        """Open a new connection to the chamber (its set point is unaffected)."""
        ...

    def state(self) -> dict[str, object]:
        """The chamber's own view: ``temperature_C``, ``setpoint_C``, ``mode`` and its range."""
        ...

    def close(self) -> None:
        """Close the connection; the chamber keeps controlling to its set point."""
        ...


# -- potentiostat techniques: impedance and linear sweeps --------------------------------------------

class ImpedanceSpectrum(NamedTuple):
    """One measured spectrum, in measuring order: ``frequency_Hz`` (Hz, > 0), ``z_real_ohm``
    (Re Z, Ω), ``z_imag_neg_ohm`` (−Im Z, Ω; positive for a capacitive arc), ``time_s`` (s, the
    instrument's time of each point from the technique's start): 1-D float arrays of equal length."""

    frequency_Hz: np.ndarray
    z_real_ohm: np.ndarray
    z_imag_neg_ohm: np.ndarray
    time_s: np.ndarray


class ImpedanceAnalyser(Protocol):
    """An instrument that measures impedance spectra (a BioLogic channel's PEIS/GEIS).

    Units: Hz, V, A, s, Ω. The spectrum is measured at open circuit (no DC bias: 0 V vs the
    open-circuit voltage for PEIS, 0 A for GEIS). The call blocks until the spectrum is done,
    waiting on the caller's clock (``now``/``sleep``, as :meth:`TemperatureChamber.wait_stable`),
    so a simulated instrument runs in simulated time. Afterwards the instrument is back in the
    state it was in (output on at its level, or off).

    Errors: ValueError for bad arguments (nothing sent); :class:`InstrumentError` when the
    instrument refuses the technique or stops it (a safety limit); :class:`InstrumentLost` when
    it stops answering or the spectrum does not end within its expected time.
    """

    address: str

    def measure_impedance(self, *, mode: str, initial_frequency_Hz: float, final_frequency_Hz: float,
                          points_per_decade: int, amplitude_V: float | None = None,
                          amplitude_A: float | None = None, average_n: int = 1, wait_periods: float = 0.1,
                          now: Callable[[], float], sleep: Callable[[float, threading.Event | None], None],
                          abort: threading.Event | None = None) -> ImpedanceSpectrum:
        """One spectrum (``mode`` ``potentiostatic`` with ``amplitude_V``, or ``galvanostatic``
        with ``amplitude_A``), log-spaced, ``points_per_decade`` per decade. Setting ``abort``
        stops it at once and returns the points measured so far."""
        ...


class LinearSweeper(Protocol):
    """An instrument that runs linear sweep voltammetry itself (a BioLogic channel's CV technique
    with one sweep). Units: V, V s⁻¹, A, s. Blocks on the caller's clock like
    :class:`ImpedanceAnalyser`; errors as there."""

    address: str

    def linear_sweep(self, *, start_V: float, end_V: float, scan_rate_V_s: float, record_every_dE_V: float,
                     compliance_A: float, start_at_ocv: bool = False, now: Callable[[], float],
                     sleep: Callable[[float, threading.Event | None], None],
                     abort: threading.Event | None = None) -> list[Reading]:
        """Sweep from ``start_V`` (relative to the open-circuit voltage when ``start_at_ocv``)
        to ``end_V``; one :class:`Reading` per ``record_every_dE_V``, times from the sweep's
        start. Past ``compliance_A`` the instrument stops: that reading is the last and has
        :attr:`Reading.compliance` set. ``abort`` stops it and returns what was measured."""
        ...
