"""NEWARE BTS step files: the step model and its XML writer.

A step file is what a NEWARE channel runs in its own firmware; the BTS client API's
``start`` command names one by its path on the BTS PC. This module holds the NEWARE side of
the compiler: small frozen dataclasses for the steps we use and :meth:`StepFile.to_xml`.
Mapping a step program onto them is :mod:`drivers.neware.compiler`.

The file layout, element names, step-type codes and units follow the domain notes
(``anchors-and-wire-protocols.md`` §3.1 "Step-file payload", ``cyclers-data-formats.md``
§1.2 "Neware step-file XML"), which read them from aurora-unicycler
``aurora_unicycler/_formats/neware.py``, a writer whose files run on real BTS 8 cyclers:

* root ``<root><config type="Step File" version="17" client_version="BTS Client …">`` with
  ``Head_Info``, ``Whole_Prt`` (``Protect`` and ``Record``), ``Step_Info Num=N`` holding
  ``<StepK Step_ID="K" Step_Type="T">`` elements, the last one End (type 6), and ``SMBUS``;
* units: voltage in 0.1 mV (V × 10000), current in mA, time in ms, capacity in mA·s;
* step types: 1 CC charge, 2 CC discharge, 3 CV charge, 19 CV discharge (``Volt``, the
  current limit ``Curr`` — the preceding CC's current in unicycler's CC-CV —, ``Stop_Curr``,
  ``Time``), 4 rest, 5 cycle (``Limit/Other/Start_Step`` and ``Cycle_Count``, the total number
  of passes), 6 end.

Three elements go beyond what unicycler writes; each is seen in real BTS step files read by
other public code, but none was checked on a cycler here:

* ``Limit/Main/Cap`` (mA·s): a capacity end condition on a CC step (a step-file writer
  emitting ``Cap`` beside ``Stop_Volt``, and a parser of real BTS step files reading
  ``Limit/Main/Cap``, both in the code index);
* ``StepK/Record/Main/Time`` (ms): a per-step record interval (aurora-cycler-manager reads a
  per-step ``Record`` from the ``Step.xml`` of real ``.ndax`` files);
* ``StepK/Protect/Main/Volt/Upper|Lower``: per-step voltage protection (the same BTS
  step-file parser reads it; it reports ±40000 as the BTS default);
* ``StepK/Limit/Other`` with ``CndCount`` and ``Cnd1…`` jump conditions (:class:`Condition`):
  "go to step J when the voltage (``type`` 1) or current (2) is above (``CmpType`` 3) or below
  (5) ``Value``", ``Jump_Line`` J a Step_ID or 65526 for the next step — as a BTS step-file
  writer in the code index emits them (its ``add_condition``: voltage × 10000, current ×
  1000, ``Function``/``TimeGoto``/``Aux`` 0, ``GlobleUserID``/``GlobalVar`` 2147483647,
  ``GLobleType`` 1). Used for a rest until a voltage and for leaving a loop.

Current sign: positive = charge (plating onto the working electrode, the Battery Data Format
convention); a CC step's type (1 or 2) follows the sign and the file holds |I|.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["StepFileError", "Rest", "ConstantCurrent", "ConstantVoltage", "Condition", "Cycle", "Protection", "StepFile",
           "fold_repeats", "JUMP_NEXT", "JUMP_END"]

#: Step_Type codes (aurora-unicycler ``_formats/neware.py``; fastnda ``dicts.py``).
STEP_TYPE_CC_CHARGE = 1
STEP_TYPE_CC_DISCHARGE = 2
STEP_TYPE_CV_CHARGE = 3
STEP_TYPE_CV_DISCHARGE = 19
STEP_TYPE_REST = 4
STEP_TYPE_CYCLE = 5
STEP_TYPE_END = 6

#: File units per SI unit: 0.1 mV per V, ms per s, mA per A, mA·s per C.
VOLT_UNITS_PER_V = 10_000
MS_PER_S = 1_000
MA_PER_A = 1_000
MAS_PER_C = 1_000

#: The ``config`` header aurora-unicycler writes and aurora-cycler-manager checks for
#: (``config type="Step File"`` and ``client_version="BTS Client``).
CONFIG_VERSION = "17"
CLIENT_VERSION = "BTS Client 8.0.0.478(2024.06.24)(R3)"


class StepFileError(ValueError):
    """A step or step file that NEWARE cannot express; the message names the step."""


def _num(value: float) -> str:
    """A number as written in ``Value`` attributes: no exponent, no trailing zeros."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _value(parent: ET.Element, tag: str, value: float) -> ET.Element:
    return ET.SubElement(parent, tag, Value=_num(value))


#: ``Jump_Line`` of a condition that goes on with the next step (the writer in the code index).
JUMP_NEXT = 65526
#: A condition's jump to the file's End step; :meth:`StepFile.to_xml` writes its Step_ID.
JUMP_END = -1
#: ``type`` of a condition's quantity and ``CmpType`` of its comparison.
_CND_TYPE = {"voltage": 1, "current": 2}
_CND_SCALE = {"voltage": VOLT_UNITS_PER_V, "current": MA_PER_A}
_CMP_TYPE = {">": 3, "<": 5}


@dataclass(frozen=True)
class Condition:
    """A step's jump condition (``Limit/Other/CndK``): when ``quantity`` (``"voltage"`` in V,
    ``"current"`` in A, signed) is ``comparison`` (``">"`` / ``"<"``) ``value``, the step ends
    and the channel goes to ``jump``: :data:`JUMP_NEXT`, :data:`JUMP_END` or a Step_ID."""

    quantity: str
    comparison: str
    value: float
    jump: int = JUMP_NEXT

    def __post_init__(self) -> None:
        if self.quantity not in _CND_TYPE or self.comparison not in _CMP_TYPE:
            raise StepFileError(f"condition: {self.quantity!r} {self.comparison!r} is not voltage/current and > or <")


def _check_conditions(conditions: Sequence[Condition], what: str) -> None:
    if not all(isinstance(c, Condition) for c in conditions):
        raise StepFileError(f"{what}: conditions must be Condition objects")


@dataclass(frozen=True)
class Rest:
    """Rest (Step_Type 4): no current for ``time_s`` seconds, or until a jump ``condition``
    (e.g. the voltage rising above 0.05 V: a rest until a voltage) ends it."""

    time_s: float
    record_interval_s: float | None = None
    """Per-step record interval (s); None = the file's."""
    conditions: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        if not self.time_s > 0:
            raise StepFileError(f"rest: time_s must be > 0, got {self.time_s!r}")
        _check_interval(self.record_interval_s, "rest")
        _check_conditions(self.conditions, "rest")


@dataclass(frozen=True)
class ConstantCurrent:
    """Constant current (Step_Type 1 charge for ``current_mA`` > 0, 2 discharge for < 0).

    Ends at the first of: ``time_s``; ``stop_capacity_mAs`` of |charge| passed in the step;
    ``stop_voltage_V`` (reached from below on a charge, from above on a discharge:
    ``Stop_Volt``). ``protect_voltage_upper_V`` / ``protect_voltage_lower_V`` end the whole
    test with status ``protect`` when crossed during this step (per-step ``Protect``).
    """

    current_mA: float
    time_s: float | None = None
    stop_voltage_V: float | None = None
    stop_capacity_mAs: float | None = None
    record_interval_s: float | None = None
    protect_voltage_upper_V: float | None = None
    protect_voltage_lower_V: float | None = None
    conditions: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        _check_conditions(self.conditions, "constant current")
        if self.current_mA == 0:
            raise StepFileError("constant current: current_mA must not be 0 (use a rest)")
        if self.time_s is None and self.stop_voltage_V is None and self.stop_capacity_mAs is None:
            raise StepFileError("constant current: needs time_s, stop_voltage_V or stop_capacity_mAs")
        if self.time_s is not None and not self.time_s > 0:
            raise StepFileError(f"constant current: time_s must be > 0, got {self.time_s!r}")
        if self.stop_capacity_mAs is not None and not self.stop_capacity_mAs > 0:
            raise StepFileError(f"constant current: stop_capacity_mAs must be > 0, got {self.stop_capacity_mAs!r}")
        _check_interval(self.record_interval_s, "constant current")

    @property
    def step_type(self) -> int:
        return STEP_TYPE_CC_CHARGE if self.current_mA > 0 else STEP_TYPE_CC_DISCHARGE


@dataclass(frozen=True)
class ConstantVoltage:
    """Constant voltage (Step_Type 3 CV charge, 19 CV discharge): hold ``voltage_V`` with the
    current limited to ``current_limit_mA`` (``Curr``, > 0) until the first of ``time_s``,
    |I| falling to ``stop_current_mA`` (``Stop_Curr``) or ``stop_capacity_mAs`` (``Cap``).
    Following a CC step to the same voltage it is the CV half of a CC-CV (aurora-unicycler
    writes ``Curr`` as that CC's current, its PR #14)."""

    voltage_V: float
    current_limit_mA: float
    charge: bool = True
    time_s: float | None = None
    stop_current_mA: float | None = None
    stop_capacity_mAs: float | None = None
    record_interval_s: float | None = None
    conditions: tuple[Condition, ...] = ()

    def __post_init__(self) -> None:
        _check_conditions(self.conditions, "constant voltage")
        if not self.current_limit_mA > 0:
            raise StepFileError(f"constant voltage: current_limit_mA must be > 0, got {self.current_limit_mA!r}")
        if self.time_s is None and self.stop_current_mA is None and self.stop_capacity_mAs is None:
            raise StepFileError("constant voltage: needs time_s, stop_current_mA or stop_capacity_mAs")
        for name in ("time_s", "stop_current_mA", "stop_capacity_mAs"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise StepFileError(f"constant voltage: {name} must be > 0, got {value!r}")
        _check_interval(self.record_interval_s, "constant voltage")

    @property
    def step_type(self) -> int:
        return STEP_TYPE_CV_CHARGE if self.charge else STEP_TYPE_CV_DISCHARGE


@dataclass(frozen=True)
class Cycle:
    """Cycle (Step_Type 5): jump back to step ``start_step`` (1-based Step_ID) until the
    block has run ``cycle_count`` times in total (aurora-unicycler's meaning of
    ``Cycle_Count``)."""

    start_step: int
    cycle_count: int

    def __post_init__(self) -> None:
        if self.start_step < 1 or self.cycle_count < 1:
            raise StepFileError(f"cycle: start_step and cycle_count must be >= 1, got {self.start_step}, {self.cycle_count}")


Step = Rest | ConstantCurrent | ConstantVoltage | Cycle


def _check_interval(interval_s: float | None, what: str) -> None:
    if interval_s is not None and not interval_s > 0:
        raise StepFileError(f"{what}: record_interval_s must be > 0, got {interval_s!r}")


@dataclass(frozen=True)
class Protection:
    """The test-wide ``Whole_Prt/Protect`` block: crossing a limit ends the test with status
    ``protect``. Voltages in V and currents in mA are signed (aurora-unicycler's
    ``SafetyParams``: the lower current limit "can be negative"); ``capacity_upper_mAs`` is
    on the step's |charge|; ``delay_s`` is how long a limit must be exceeded."""

    voltage_upper_V: float | None = None
    voltage_lower_V: float | None = None
    current_upper_mA: float | None = None
    current_lower_mA: float | None = None
    capacity_upper_mAs: float | None = None
    delay_s: float | None = None

    def __post_init__(self) -> None:
        for lower, upper, what in ((self.voltage_lower_V, self.voltage_upper_V, "voltage"),
                                   (self.current_lower_mA, self.current_upper_mA, "current")):
            if lower is not None and upper is not None and not lower < upper:
                raise StepFileError(f"protection: {what} lower limit {lower:g} must be below upper {upper:g}")


@dataclass(frozen=True)
class StepFile:
    """A NEWARE step file: steps (an End step is appended on writing), protection, the
    default record interval (s), and the ``Remark`` and ``Creator`` header fields."""

    steps: Sequence[Step]
    protection: Protection = field(default_factory=Protection)
    record_interval_s: float = 1.0
    remark: str = ""
    creator: str = "labctl"

    def __post_init__(self) -> None:
        if not self.steps:
            raise StepFileError("a step file needs at least one step")
        _check_interval(self.record_interval_s, "step file")
        for number, step in enumerate(self.steps, start=1):
            if isinstance(step, Cycle):
                if step.start_step >= number:
                    raise StepFileError(f"step {number}: cycle start_step {step.start_step} must be an earlier step")
                if isinstance(self.steps[step.start_step - 1], Cycle):
                    raise StepFileError(f"step {number}: cycle start_step {step.start_step} is itself a cycle step")

    def to_xml(self, *, date: datetime | None = None, guid: str | None = None) -> str:
        """The step file as XML text (UTF-8 declaration, two-space indent).

        ``date`` (default now) and ``guid`` (default a random UUID) fill the ``config``
        attributes of the same names; pass them for reproducible output.
        """
        root = ET.Element("root")
        config = ET.SubElement(root, "config", {
            "type": "Step File", "version": CONFIG_VERSION, "client_version": CLIENT_VERSION,
            "date": (date or datetime.now()).strftime("%Y%m%d%H%M%S"),
            "Guid": guid or str(uuid.uuid4()),
        })
        head = ET.SubElement(config, "Head_Info")
        ET.SubElement(head, "Operate", Value="66")
        ET.SubElement(head, "Scale", Value="1")
        ET.SubElement(head, "Start_Step", Value="1", Hide_Ctrl_Step="0")
        ET.SubElement(head, "Creator", Value=self.creator)
        ET.SubElement(head, "Remark", Value=self.remark)
        ET.SubElement(head, "RateType", Value="103")  # currents in mA, not C-rates
        whole = ET.SubElement(config, "Whole_Prt")
        whole.append(self._protect_element())
        record = ET.SubElement(ET.SubElement(whole, "Record"), "Main")
        _value(record, "Time", self.record_interval_s * MS_PER_S)
        info = ET.SubElement(config, "Step_Info", Num=str(len(self.steps) + 1))
        for number, step in enumerate(self.steps, start=1):
            info.append(_step_element(step, number, end_step=len(self.steps) + 1))
        end = len(self.steps) + 1
        ET.SubElement(info, f"Step{end}", Step_ID=str(end), Step_Type=str(STEP_TYPE_END))
        smbus = ET.SubElement(config, "SMBUS")
        ET.SubElement(smbus, "SMBUS_Info", Num="0", AdjacentInterval="0")
        ET.indent(root, space="  ")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    def _protect_element(self) -> ET.Element:
        p = self.protection
        protect = ET.Element("Protect")
        main = ET.SubElement(protect, "Main")
        volt = ET.SubElement(main, "Volt")
        if p.voltage_upper_V is not None:
            _value(volt, "Upper", p.voltage_upper_V * VOLT_UNITS_PER_V)
        if p.voltage_lower_V is not None:
            _value(volt, "Lower", p.voltage_lower_V * VOLT_UNITS_PER_V)
        curr = ET.SubElement(main, "Curr")
        if p.current_upper_mA is not None:
            _value(curr, "Upper", p.current_upper_mA)
        if p.current_lower_mA is not None:
            _value(curr, "Lower", p.current_lower_mA)
        if p.delay_s is not None:
            _value(main, "Delay_Time", p.delay_s * MS_PER_S)
        cap = ET.SubElement(main, "Cap")
        if p.capacity_upper_mAs is not None:
            _value(cap, "Upper", p.capacity_upper_mAs)
        return protect


def _step_element(step: Step, number: int, end_step: int) -> ET.Element:
    if isinstance(step, Cycle):
        element = ET.Element(f"Step{number}", Step_ID=str(number), Step_Type=str(STEP_TYPE_CYCLE))
        other = ET.SubElement(ET.SubElement(element, "Limit"), "Other")
        _value(other, "Start_Step", step.start_step)
        _value(other, "Cycle_Count", step.cycle_count)
        return element
    if isinstance(step, Rest):
        element = ET.Element(f"Step{number}", Step_ID=str(number), Step_Type=str(STEP_TYPE_REST))
        main = ET.SubElement(ET.SubElement(element, "Limit"), "Main")
        _value(main, "Time", step.time_s * MS_PER_S)
    elif isinstance(step, ConstantVoltage):
        element = ET.Element(f"Step{number}", Step_ID=str(number), Step_Type=str(step.step_type))
        main = ET.SubElement(ET.SubElement(element, "Limit"), "Main")
        _value(main, "Volt", step.voltage_V * VOLT_UNITS_PER_V)
        _value(main, "Curr", step.current_limit_mA)
        if step.time_s is not None:
            _value(main, "Time", step.time_s * MS_PER_S)
        if step.stop_current_mA is not None:
            _value(main, "Stop_Curr", step.stop_current_mA)
        if step.stop_capacity_mAs is not None:
            _value(main, "Cap", step.stop_capacity_mAs)
    else:
        element = ET.Element(f"Step{number}", Step_ID=str(number), Step_Type=str(step.step_type))
        main = ET.SubElement(ET.SubElement(element, "Limit"), "Main")
        _value(main, "Curr", abs(step.current_mA))
        if step.time_s is not None:
            _value(main, "Time", step.time_s * MS_PER_S)
        if step.stop_voltage_V is not None:
            _value(main, "Stop_Volt", step.stop_voltage_V * VOLT_UNITS_PER_V)
        if step.stop_capacity_mAs is not None:
            _value(main, "Cap", step.stop_capacity_mAs)
        if step.protect_voltage_upper_V is not None or step.protect_voltage_lower_V is not None:
            volt = ET.SubElement(ET.SubElement(ET.SubElement(element, "Protect"), "Main"), "Volt")
            if step.protect_voltage_upper_V is not None:
                _value(volt, "Upper", step.protect_voltage_upper_V * VOLT_UNITS_PER_V)
            if step.protect_voltage_lower_V is not None:
                _value(volt, "Lower", step.protect_voltage_lower_V * VOLT_UNITS_PER_V)
    if step.conditions:
        limit = element.find("Limit")
        other = ET.SubElement(limit, "Other", CndCount=str(len(step.conditions)))
        for k, c in enumerate(step.conditions, start=1):
            jump = end_step if c.jump == JUMP_END else c.jump
            ET.SubElement(other, f"Cnd{k}", {
                "type": str(_CND_TYPE[c.quantity]), "Function": "0", "CmpType": str(_CMP_TYPE[c.comparison]),
                "Jump_Line": str(jump), "Value": str(int(round(c.value * _CND_SCALE[c.quantity]))), "TimeGoto": "0",
                "GlobleUserID": "2147483647", "GLobleType": "1", "GlobalVar": "2147483647", "Aux": "0"})
    if step.record_interval_s is not None:
        _value(ET.SubElement(ET.SubElement(element, "Record"), "Main"), "Time", step.record_interval_s * MS_PER_S)
    return element


def fold_repeats(steps: Sequence[Rest | ConstantCurrent | ConstantVoltage], *, max_block: int = 64,
                 first_step: int = 1) -> list[Step]:
    """``steps`` with runs of a repeated block replaced by one block and a :class:`Cycle`.

    Scans left to right; at each position takes the block length (≤ ``max_block``) whose
    consecutive repeats save the most steps, if any. The order of execution is unchanged:
    the n-th step the channel runs is still ``steps[n]``. Only Rest, ConstantCurrent and
    ConstantVoltage steps are accepted (no nested cycles). ``first_step`` is the Step_ID the result will
    start at in the file (for the cycles' ``start_step``).
    """
    out: list[Step] = []
    i, n = 0, len(steps)
    while i < n:
        best_length, best_repeats, best_saving = 1, 1, 0
        for length in range(1, min(max_block, (n - i) // 2) + 1):
            block = list(steps[i:i + length])
            repeats = 1
            while list(steps[i + repeats * length:i + (repeats + 1) * length]) == block:
                repeats += 1
            saving = length * (repeats - 1) - 1  # the Cycle step costs one
            if saving > best_saving:
                best_length, best_repeats, best_saving = length, repeats, saving
        start = first_step + len(out)
        out.extend(steps[i:i + best_length])
        if best_repeats > 1:
            out.append(Cycle(start_step=start, cycle_count=best_repeats))
        i += best_length * best_repeats
    return out
