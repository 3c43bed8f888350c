"""Reading a NEWARE step file as the simulated BTS does: XML → the steps a channel runs.

The simulator reads step files on its own, independently of the writer in
``drivers/neware/stepfile.py``, so a test of one against the other checks both. Layout,
units and step-type codes: ``anchors-and-wire-protocols.md`` §3.1 "Step-file payload" and
``cyclers-data-formats.md`` §1.2 (from aurora-unicycler ``_formats/neware.py``): values are
``Value`` attributes in 0.1 mV, mA, ms and mA·s.

Understood: Step_Type 1 (CC charge), 2 (CC discharge), 3 (CV charge) and 19 (CV discharge)
(``Volt``, ``Curr`` the current limit, ``Stop_Curr``, ``Time``, ``Cap``), 4 (rest), 5 (cycle:
``Start_Step`` — or ``Start_Step_ID``, the name aurora-cycler-manager reads from real
``.ndax`` files — and ``Cycle_Count``, the total number of passes), 6 (end); per step
``Limit/Main`` ``Curr``, ``Time``, ``Stop_Volt``, ``Cap``, ``Record/Main/Time``,
``Protect/Main/Volt/Upper|Lower`` and the jump conditions ``Limit/Other/CndK`` (``type`` 1
voltage in 0.1 mV or 2 current in mA, ``CmpType`` 3 > / 4 ≥ / 5 < / 6 ≤, ``Jump_Line`` a
Step_ID or 65526 for the next step); the test-wide ``Whole_Prt/Protect/Main`` (``Volt``,
``Curr`` ``Upper``/``Lower``, ``Cap/Upper``, ``Delay_Time``) and ``Whole_Prt/Record/Main/Time``.
Any other step type (CCCV in one step, pulse …) is refused with :class:`SimStepFileError`, as
are C-rate-only currents.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from defusedxml import ElementTree as SafeET

CC_CHARGE, CC_DISCHARGE, CV_CHARGE, REST, CYCLE, END, CV_DISCHARGE = 1, 2, 3, 4, 5, 6, 19
_KIND = {CC_CHARGE: "cc", CC_DISCHARGE: "dc", CV_CHARGE: "cv", CV_DISCHARGE: "dcv", REST: "rest", CYCLE: "cycle",
         END: "end"}
#: ``Jump_Line`` of a condition that goes on with the next step.
JUMP_NEXT = 65526


class SimStepFileError(ValueError):
    """A step file the simulated BTS cannot run; the message names the file and step."""


@dataclass(frozen=True)
class SimStep:
    """One step in SI units. ``kind``: cc, dc, cv, dcv, rest, cycle, end. ``current_A`` is
    signed (+ charge); a CV step holds ``voltage_V`` with |I| ≤ ``current_limit_A`` and ends on
    |I| ≤ ``stop_current_A``. ``start_index`` (0-based, into the program's steps) and
    ``cycle_count`` are for cycle steps; ``conditions`` the jump conditions as (quantity
    "voltage"/"current", comparison ">"/">="/"<"/"<=", value in V or A, the index of the step
    to go to, None for the next)."""

    step_id: int
    kind: str
    current_A: float = 0.0
    time_s: float | None = None
    stop_voltage_V: float | None = None
    stop_charge_C: float | None = None
    record_interval_s: float | None = None
    protect_upper_V: float | None = None
    protect_lower_V: float | None = None
    start_index: int | None = None
    cycle_count: int | None = None
    voltage_V: float | None = None
    current_limit_A: float | None = None
    stop_current_A: float | None = None
    conditions: tuple[tuple[str, str, float, int | None], ...] = ()


@dataclass(frozen=True)
class SimProtection:
    """``Whole_Prt/Protect`` in SI units (signed voltages and currents; |charge| of a step)."""

    upper_V: float | None = None
    lower_V: float | None = None
    upper_A: float | None = None
    lower_A: float | None = None
    charge_upper_C: float | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class SimStepFile:
    """A parsed step file: steps in file order, the index to start at, protection and the
    default record interval (s)."""

    steps: tuple[SimStep, ...]
    start_index: int
    protection: SimProtection
    record_interval_s: float


def read_step_file(path: str | Path) -> SimStepFile:
    """Read and check the step file at ``path``.

    Raises SimStepFileError (naming the file) if it is missing, not XML, or holds something
    the simulator cannot run.
    """
    path = Path(path)
    try:
        root = SafeET.fromstring(path.read_bytes())
    except OSError as exc:
        raise SimStepFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except SafeET.ParseError as exc:
        raise SimStepFileError(f"{path}: not XML ({exc})") from None
    config = root.find("config")
    if root.tag != "root" or config is None or config.get("type") != "Step File":
        raise SimStepFileError(f'{path}: not a step file (needs <root><config type="Step File">)')
    return _parse(config, str(path))


def _value(el, path: str, scale: float, where: str) -> float | None:
    """``path``'s ``Value`` divided by ``scale``, or None if absent."""
    found = el.find(path)
    if found is None or found.get("Value") in (None, ""):
        return None
    try:
        return float(found.get("Value")) / scale
    except ValueError:
        raise SimStepFileError(f"{where}: {path} Value={found.get('Value')!r} is not a number") from None


def _parse(config, name: str) -> SimStepFile:
    record_s = _value(config, "Whole_Prt/Record/Main/Time", 1000.0, name)
    if record_s is None or record_s <= 0:
        raise SimStepFileError(f"{name}: Whole_Prt/Record/Main/Time (the record interval) is missing or not > 0")
    p = "Whole_Prt/Protect/Main/"
    protection = SimProtection(
        upper_V=_value(config, p + "Volt/Upper", 10_000.0, name), lower_V=_value(config, p + "Volt/Lower", 10_000.0, name),
        upper_A=_value(config, p + "Curr/Upper", 1000.0, name), lower_A=_value(config, p + "Curr/Lower", 1000.0, name),
        charge_upper_C=_value(config, p + "Cap/Upper", 1000.0, name),
        delay_s=_value(config, p + "Delay_Time", 1000.0, name) or 0.0)
    info = config.find("Step_Info")
    if info is None or not len(info):
        raise SimStepFileError(f"{name}: no steps (Step_Info)")
    raw = []
    for el in info:
        where = f"{name}: <{el.tag}>"
        try:
            step_id, step_type = int(el.get("Step_ID", "")), int(el.get("Step_Type", ""))
        except ValueError:
            raise SimStepFileError(f"{where}: Step_ID and Step_Type must be integers") from None
        raw.append((el, step_id, step_type, where))
    ids = [step_id for _, step_id, _, _ in raw]
    if len(set(ids)) != len(ids):
        raise SimStepFileError(f"{name}: duplicate Step_ID")
    index_of = {step_id: i for i, step_id in enumerate(ids)}
    steps = tuple(_step(el, step_id, step_type, where, index_of) for el, step_id, step_type, where in raw)
    start_id = _value(config, "Head_Info/Start_Step", 1.0, name)
    start_id = int(start_id) if start_id is not None else ids[0]
    if start_id not in index_of:
        raise SimStepFileError(f"{name}: Head_Info/Start_Step {start_id} is not a step")
    return SimStepFile(steps, index_of[start_id], protection, record_s)


def _step(el, step_id: int, step_type: int, where: str, index_of: dict[int, int]) -> SimStep:
    if step_type not in _KIND:
        raise SimStepFileError(f"{where}: Step_Type {step_type} is not simulated (only 1, 2, 3, 4, 5, 6, 19)")
    kind = _KIND[step_type]
    record_s = _value(el, "Record/Main/Time", 1000.0, where)
    if record_s is not None and record_s <= 0:
        raise SimStepFileError(f"{where}: Record/Main/Time must be > 0")
    if kind == "end":
        return SimStep(step_id, kind)
    if kind == "cycle":
        start = _value(el, "Limit/Other/Start_Step", 1.0, where)
        if start is None:
            start = _value(el, "Limit/Other/Start_Step_ID", 1.0, where)
        count = _value(el, "Limit/Other/Cycle_Count", 1.0, where)
        if start is None or count is None or count < 1 or int(start) not in index_of:
            raise SimStepFileError(f"{where}: a cycle step needs Start_Step (an existing step) and Cycle_Count >= 1")
        if index_of[int(start)] >= index_of[step_id]:
            raise SimStepFileError(f"{where}: Start_Step {int(start)} must come before the cycle step")
        return SimStep(step_id, kind, start_index=index_of[int(start)], cycle_count=int(count))
    time_s = _value(el, "Limit/Main/Time", 1000.0, where)
    if time_s is not None and time_s <= 0:
        raise SimStepFileError(f"{where}: Limit/Main/Time must be > 0")
    conditions = _conditions(el, where, index_of)
    if kind == "rest":
        if time_s is None:
            raise SimStepFileError(f"{where}: a rest step needs Limit/Main/Time")
        return SimStep(step_id, kind, time_s=time_s, record_interval_s=record_s, conditions=conditions)
    if kind in ("cv", "dcv"):
        volt = _value(el, "Limit/Main/Volt", 10_000.0, where)
        limit_mA = _value(el, "Limit/Main/Curr", 1.0, where)
        stop_mA = _value(el, "Limit/Main/Stop_Curr", 1.0, where)
        stop_C = _value(el, "Limit/Main/Cap", 1000.0, where)
        if volt is None or limit_mA is None or limit_mA <= 0:
            raise SimStepFileError(f"{where}: a CV step needs Limit/Main/Volt and Curr > 0 (mA)")
        if time_s is None and stop_mA is None and stop_C is None:
            raise SimStepFileError(f"{where}: a CV step needs Time, Stop_Curr or Cap")
        return SimStep(step_id, kind, time_s=time_s, stop_charge_C=stop_C, record_interval_s=record_s,
                       voltage_V=volt, current_limit_A=limit_mA / 1000.0,
                       stop_current_A=None if stop_mA is None else stop_mA / 1000.0, conditions=conditions)
    current_mA = _value(el, "Limit/Main/Curr", 1.0, where)
    if current_mA is None or current_mA <= 0:
        raise SimStepFileError(f"{where}: a CC step needs Limit/Main/Curr > 0 (mA; C-rates are not simulated)")
    stop_V = _value(el, "Limit/Main/Stop_Volt", 10_000.0, where)
    stop_C = _value(el, "Limit/Main/Cap", 1000.0, where)
    if time_s is None and stop_V is None and stop_C is None:
        raise SimStepFileError(f"{where}: a CC step needs Time, Stop_Volt or Cap")
    sign = 1.0 if kind == "cc" else -1.0
    return SimStep(step_id, kind, current_A=sign * current_mA / 1000.0, time_s=time_s, stop_voltage_V=stop_V,
                   stop_charge_C=stop_C, record_interval_s=record_s,
                   protect_upper_V=_value(el, "Protect/Main/Volt/Upper", 10_000.0, where),
                   protect_lower_V=_value(el, "Protect/Main/Volt/Lower", 10_000.0, where), conditions=conditions)


_CMP = {3: ">", 4: ">=", 5: "<", 6: "<="}
_QUANTITY = {1: ("voltage", 10_000.0), 2: ("current", 1000.0)}


def _conditions(el, where: str, index_of: dict[int, int]) -> tuple[tuple[str, str, float, int | None], ...]:
    """The step's ``Limit/Other/CndK`` jump conditions (see the module doc)."""
    other = el.find("Limit/Other")
    if other is None or other.get("CndCount") is None:
        return ()
    out = []
    for cnd in other:
        if not cnd.tag.startswith("Cnd"):
            continue
        try:
            kind, cmp_type, jump, value = (int(cnd.get(k, "")) for k in ("type", "CmpType", "Jump_Line", "Value"))
        except ValueError:
            raise SimStepFileError(f"{where}: {cnd.tag}: type, CmpType, Jump_Line and Value must be integers") from None
        if kind not in _QUANTITY or cmp_type not in _CMP:
            raise SimStepFileError(f"{where}: {cnd.tag}: type {kind} / CmpType {cmp_type} is not simulated "
                                   "(voltage 1, current 2; > 3, >= 4, < 5, <= 6)")
        if jump != JUMP_NEXT and jump not in index_of:
            raise SimStepFileError(f"{where}: {cnd.tag}: Jump_Line {jump} is not a step")
        quantity, scale = _QUANTITY[kind]
        out.append((quantity, _CMP[cmp_type], value / scale, None if jump == JUMP_NEXT else index_of[jump]))
    if len(out) != int(other.get("CndCount")):
        raise SimStepFileError(f"{where}: CndCount {other.get('CndCount')} but {len(out)} Cnd element(s)")
    return tuple(out)
