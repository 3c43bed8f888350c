"""BioLogic potentiostats/cyclers (VMP3, MPG-2, SP-300 …): the technique model and a channel driver.

A BioLogic channel runs a *technique list* on its own firmware (OCV, CP, CA … linked by Loop
techniques), checks each technique's limit tests and the channel's safety limits, and stores
points in its memory until a client reads them. :class:`BiologicChannel` is what the
delegated engine drives: load the techniques, start, poll the state, download new points
incrementally (:meth:`BiologicChannel.poll` + :meth:`BiologicChannel.data_since`), tell how
the run ended (:meth:`BiologicChannel.status`), and after a PC crash reattach to a channel
that kept running (:meth:`BiologicChannel.attach`) and collect every point it missed.

Access path (``anchors-and-wire-protocols.md`` §3.2 (a)): the EC-Lab Development Package
(``EClib64.dll``, the ``BL_*`` functions). A *backend* (:class:`BiologicBackend`) mirrors the
calls the driver needs — ``BL_Connect``, ``BL_Disconnect``, ``BL_GetChannelInfos``,
``BL_LoadTechnique``, ``BL_StartChannel``, ``BL_StopChannel``, ``BL_GetCurrentValues``,
``BL_GetData`` — with the DLL's argument order and record shapes (:class:`DeviceInfo`,
:class:`ChannelInfo`, :class:`CurrentValues`, :class:`DataInfo`, :class:`EccParam`: field
names and order of pyeclab ``src/pyeclab/api/kbio_types.py`` and easy-biologic
``lib/ec_lib.py``). Backends:

* :class:`drivers.sim.biologic.SimulatedBackend`: channels running the technique list on a
  simulated Li | SSE | Li cell in simulated time; every test uses it.
* :class:`EasyBiologicBackend`: the real instrument through easy-biologic's ``lib/ec_lib.py``
  (PyPI ``easy-biologic``, the ``labctl[biologic]`` extra, Windows with the Development
  Package installed). Chosen over the vendor's ``kbio`` because it is installable from PyPI;
  both wrap the same DLL. It cannot run here and is untested.

How points get out (the part a crash-proof run depends on): ``BL_GetData`` returns up to 1000
32-bit words of one technique run's rows and *removes them from the channel's memory*
(easy-biologic ``get_data``: "Pulls data from the buffer and clears it"). So the driver
writes every block it reads to an append-only *journal* (a file when ``journal_path`` is
given) before anyone sees it, and numbers the points there: record index 1, 2, … in the
order the channel stored them. ``data_since(cursor)`` returns the journal's points after a
record index. A process that dies loses nothing: what it had read is in the journal, what it
had not is still in the channel's memory (up to its size: :attr:`ChannelInfo.MemSize`;
``DataInfo.IRQskipped`` counts points the channel could not store, reported as
:attr:`ChannelStatus.points_lost`).

Record layouts (easy-biologic ``lib/data_parser.py``, VMP3 and SP-300 families): OCV rows are
``t_high, t_low, Ewe, Ece`` (VMP3) or ``t_high, t_low, Ewe`` (SP-300); CP, CA, CPLIMIT and
CALIMIT rows are ``t_high, t_low, Ewe, I, cycle``. Floats are IEEE singles in the 32-bit
words (``BL_ConvertNumericIntoSingle``); time = ``DataInfo.StartTime`` +
``CurrentValues.TimeBase`` × (t_high·2³² + t_low) (easy-biologic ``calculate_time``).

Units: V, A, s, C. Current sign: positive = plating onto the working electrode, as in the step
program. Errors: :class:`~drivers.base.InstrumentLost` when the instrument cannot be reached
or stops answering, :class:`~drivers.base.InstrumentError` when it refuses a call; both name
``address ch N``. Bad technique parameters raise pydantic's ``ValidationError``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import Enum, IntEnum
from pathlib import Path
from typing import Annotated, ClassVar, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from drivers.base import InstrumentError, InstrumentLost

log = logging.getLogger(__name__)

__all__ = [
    "TechniqueId", "ChannelState", "IRange", "ERange", "ParamType", "ExitCondition", "LimitVariable", "SafetyCode",
    "DEVICE_CODES", "SP300_FAMILY", "EccParam", "DeviceInfo", "ChannelInfo", "CurrentValues", "DataInfo",
    "DATA_BUFFER_WORDS", "BLError", "LimitTest", "OCV", "CPStep", "CP", "CAStep", "CA", "Loop", "Technique",
    "ChannelSafetyLimits", "execution_runs", "i_range_for", "e_range_for", "BiologicBackend", "EasyBiologicBackend",
    "BiologicBackendMissing", "ChannelData", "Identity", "ChannelValues", "EndReason", "ChannelStatus",
    "BiologicChannel", "RECORD_DTYPE",
]


# -- constants of the Development Package (§3.2 (a)) ----------------------------------------

class TechniqueId(IntEnum):
    """Technique identifiers in ``DataInfo.TechniqueID`` (pyeclab ``api/tech_types.py``
    ``TECH_ID``; the first seven also in easy-biologic ``TechniqueId``, §3.2)."""

    NONE = 0
    OCV = 100
    CA = 101
    CP = 102
    CV = 103
    PEIS = 104
    GEIS = 107
    LOOP = 150
    CPLIMIT = 155
    CALIMIT = 157


class ChannelState(IntEnum):
    """``ChannelInfo.State`` / ``CurrentValues.State`` (pyeclab ``PROG_STATE``, §3.2)."""

    STOP = 0
    RUN = 1
    PAUSE = 2
    SYNC = 3


class IRange(IntEnum):
    """``I_Range`` (§3.2; pyeclab ``I_RANGE``): range k covers |I| ≤ 100 pA × 10^k."""

    KEEP = -1
    I_100pA = 0
    I_1nA = 1
    I_10nA = 2
    I_100nA = 3
    I_1uA = 4
    I_10uA = 5
    I_100uA = 6
    I_1mA = 7
    I_10mA = 8
    I_100mA = 9
    I_1A = 10
    BOOSTER = 11
    AUTO = 12


class ERange(IntEnum):
    """``E_Range`` (§3.2): ±2.5 V, ±5 V, ±10 V, auto."""

    E_2_5V = 0
    E_5V = 1
    E_10V = 2
    AUTO = 3


#: Half-width of each fixed E_Range (V).
E_RANGE_V = {ERange.E_2_5V: 2.5, ERange.E_5V: 5.0, ERange.E_10V: 10.0}


class ParamType(IntEnum):
    """``EccParam.ParamType`` (pyeclab ``PARAM_TYPE``)."""

    INT = 0
    BOOL = 1
    SINGLE = 2


class ExitCondition(IntEnum):
    """``Exit_Cond`` of a CPLIMIT/CALIMIT step when its limit tests are met (§3.2: 0 next
    step, 1 next technique, 2 stop)."""

    NEXT_STEP = 0
    NEXT_TECHNIQUE = 1
    STOP = 2


class LimitVariable(IntEnum):
    """Variable of a limit test, bits 5+ of ``TestN_Config`` (§3.2; easy-biologic
    ``LimitVariable``)."""

    Ewe = 0
    Aux1 = 1
    Aux2 = 2
    I = 3  # noqa: E741 - the DLL's name


class SafetyCode(IntEnum):
    """Which channel safety limit tripped: EC-Lab's safety-limit code (``MeasureStatus``
    field 30, §3.2 (b), aurora-biologic ``dicts.py``: 1 Emax, 2 Emin, 3 I, 4 Q−Q0)."""

    OK = 0
    EWE_MAX = 1
    EWE_MIN = 2
    ABS_I = 3
    CHARGE = 4


#: ``DeviceInfo.DeviceCode`` → model (pyeclab ``kbio_types.DEVICE``; easy-biologic ``DeviceCodes``).
DEVICE_CODES: dict[int, str] = {
    0: "VMP", 1: "VMP2", 2: "MPG", 3: "BISTAT", 4: "MCS_200", 5: "VMP3", 6: "VSP", 7: "HCP803", 8: "EPP400",
    9: "EPP4000", 10: "BISTAT2", 11: "FCT150S", 12: "VMP300", 13: "SP50", 14: "SP150", 15: "FCT50S", 16: "SP300",
    17: "CLB500", 18: "HCP1005", 19: "CLB2000", 20: "VSP300", 21: "SP200", 22: "MPG2", 23: "SP100", 24: "MOSLED",
    25: "KINEXXX", 26: "BCS815", 27: "SP240", 28: "MPG205", 29: "MPG210", 30: "MPG220", 31: "MPG240", 32: "BP300",
    33: "VMP3E", 34: "VSP3E", 35: "SP50E", 36: "SP150E", 255: "UNKNOWN",
}
#: The SP-300 ("VMP-300") family (pyeclab ``VMP300_FAMILY``): ``*4.ecc`` technique files and
#: OCV rows without Ece; every other model uses the VMP3 family's files and layouts.
SP300_FAMILY = frozenset({12, 16, 20, 21, 23, 27, 32})

#: Words in the ``BL_GetData`` buffer (pyeclab ``DataBuffer = c_uint32 * 1000``).
DATA_BUFFER_WORDS = 1000

#: DLL error codes used here (pyeclab ``kbio_types.ERROR``).
ERROR_MESSAGES = {
    -1: "No instrument connected", -3: "Selected channel(s) unplugged", -4: "Invalid function parameters",
    -6: "Function failed", -13: "Selected channel(s) already used", -200: "Communication failed with the instrument",
    -201: "Cannot establish connection with the instrument", -400: "Cannot find the selected ECC file",
    -405: "Cannot load techniques: full memory",
}
#: Codes meaning the instrument is out of reach (InstrumentLost) rather than refusing a call.
LOST_CODES = frozenset({-1, -200, -201, -202})


class BLError(Exception):
    """A ``BL_*`` call returned an error code (< 0). ``code`` is the DLL's; the message names
    the function and, where the backend knows it, the reason."""

    def __init__(self, function: str, code: int, detail: str = "") -> None:
        text = ERROR_MESSAGES.get(code, "error")
        super().__init__(f"{function}: {code} ({text})" + (f": {detail}" if detail else ""))
        self.function = function
        self.code = code


# -- the DLL's records ---------------------------------------------------------------------

@dataclass(frozen=True)
class EccParam:
    """One technique parameter as ``BL_Define{Bool,Sgl,Int}Parameter`` builds it: label,
    type, value, index (0-based; the step for per-step parameters)."""

    ParamStr: str
    ParamType: ParamType
    ParamVal: int | float | bool
    ParamIndex: int = 0


@dataclass(frozen=True)
class DeviceInfo:
    """``BL_Connect``'s device information (field order of the DLL struct)."""

    DeviceCode: int
    RAMSize: int
    CPU: int
    NumberOfChannels: int
    NumberOfSlots: int
    FirmwareVersion: int
    FirmwareDate_yyyy: int
    FirmwareDate_mm: int
    FirmwareDate_dd: int
    HTdisplayOn: int
    NbOfConnectedPC: int


@dataclass(frozen=True)
class ChannelInfo:
    """``BL_GetChannelInfos`` (field order of the DLL struct; ``MemSize``/``MemFilled`` in
    bytes, ``State`` a :class:`ChannelState`)."""

    Channel: int
    BoardVersion: int
    BoardSerialNumber: int
    FirmwareCode: int
    FirmwareVersion: int
    XilinxVersion: int
    AmpCode: int
    NbAmps: int
    Lcboard: int
    Zboard: int
    MUXboard: int
    GPRAboard: int
    MemSize: int
    MemFilled: int
    State: int
    MaxIRange: int
    MinIRange: int
    MaxBandwidth: int
    NbOfTechniques: int


@dataclass(frozen=True)
class CurrentValues:
    """``BL_GetCurrentValues`` (field order of the DLL struct): ``Ewe``/``Ece`` in V, ``I``
    in A, ``TimeBase`` and ``ElapsedTime`` in s, ``MemFilled`` in bytes."""

    State: int
    MemFilled: int
    TimeBase: float
    Ewe: float
    EweRangeMin: float
    EweRangeMax: float
    Ece: float
    EceRangeMin: float
    EceRangeMax: float
    Eoverflow: int
    I: float  # noqa: E741 - the DLL's name
    IRange: int
    Ioverflow: int
    ElapsedTime: float
    Freq: float
    Rcomp: float
    Saturation: int
    OptErr: int
    OptPos: int


@dataclass(frozen=True)
class DataInfo:
    """``BL_GetData``'s description of the rows in the buffer: ``NbRows`` × ``NbCols`` words
    of technique ``TechniqueIndex`` (0-based position in the loaded list, ``TechniqueID``
    its :class:`TechniqueId`), ``loop`` the loop count, ``StartTime`` (s) the start of the
    technique run; ``IRQskipped`` points lost since the last call."""

    IRQskipped: int
    NbRows: int
    NbCols: int
    TechniqueIndex: int
    TechniqueID: int
    ProcessIndex: int
    loop: int
    StartTime: float
    MuxPad: int = 0


def _single(value: float) -> float:
    """``value`` as the DLL stores a ``single`` (IEEE float32), back as a Python float."""
    return float(np.float32(value))


# -- the technique model ---------------------------------------------------------------------

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LimitTest(_Model):
    """One limit test of a CPLIMIT/CALIMIT step: ``variable comparison value``, e.g.
    ``Ewe > 4.2``. Several tests of a step combine left to right, each with its own ``logic``
    (OR/AND) against the result so far.

    ``TestN_Config`` bitfield (§3.2, as easy-biologic quotes the OEM documentation): bit 0
    active, bit 1 logic (0 OR, 1 AND), bits 2–4 comparison (0 <, 1 >), bits 5+ variable
    (:class:`LimitVariable`). Check: a CPLimit class derived from CINF PyExpLabSys
    ``drivers/bio_logic.py`` documents ``Test1_Config`` 1 as "E < value" and 5 as "E > value".
    """

    variable: Literal["Ewe", "Aux1", "Aux2", "I"] = "Ewe"
    comparison: Literal["<", ">"]
    value: float
    logic: Literal["or", "and"] = "or"
    active: bool = True

    @property
    def config(self) -> int:
        """The ``TestN_Config`` integer."""
        return (int(self.active) | (int(self.logic == "and") << 1) | (int(self.comparison == ">") << 2)
                | (int(LimitVariable[self.variable]) << 5))

    @classmethod
    def from_config(cls, config: int, value: float) -> LimitTest:
        """The test a ``TestN_Config``/``TestN_Value`` pair describes. Raises ValueError for
        an unknown comparison or variable."""
        comparison = (config >> 2) & 0b111
        if comparison > 1:
            raise ValueError(f"TestN_Config {config}: comparison {comparison} is not < (0) or > (1)")
        return cls(variable=LimitVariable(config >> 5).name, comparison=">" if comparison else "<", value=value,
                   logic="and" if config & 0b10 else "or", active=bool(config & 1))

    def holds(self, Ewe_V: float, I_A: float) -> bool:  # noqa: N803 - the DLL's names
        """True if the test is met at ``Ewe_V``/``I_A`` (Aux inputs read 0 V)."""
        x = {"Ewe": Ewe_V, "I": I_A}.get(self.variable, 0.0)
        return x > self.value if self.comparison == ">" else x < self.value

    @staticmethod
    def any_met(tests: Sequence[LimitTest], Ewe_V: float, I_A: float) -> bool:  # noqa: N803
        """The combined result of ``tests`` (inactive ones skipped; none active → False)."""
        result: bool | None = None
        for test in tests:
            if not test.active:
                continue
            met = test.holds(Ewe_V, I_A)
            result = met if result is None else (result and met if test.logic == "and" else result or met)
        return bool(result)


class OCV(_Model):
    """Open-circuit voltage (``ocv.ecc``, TechniqueId 100): no current for ``rest_time_s``,
    recording every ``record_every_dT_s`` and/or every ``record_every_dE_V`` change (0 = off).
    ECC names (§3.2): ``Rest_time_T``, ``Record_every_dE``, ``Record_every_dT``, ``E_Range``."""

    kind: Literal["ocv"] = "ocv"
    rest_time_s: float = Field(alias="Rest_time_T", ge=0)
    record_every_dT_s: float = Field(alias="Record_every_dT", gt=0)
    record_every_dE_V: float = Field(default=0.0, alias="Record_every_dE", ge=0)
    e_range: ERange = Field(default=ERange.E_10V, alias="E_Range")

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.OCV

    @property
    def ecc_name(self) -> str:
        return "ocv"

    def ecc_params(self) -> list[EccParam]:
        return [EccParam("Rest_time_T", ParamType.SINGLE, _single(self.rest_time_s)),
                EccParam("Record_every_dE", ParamType.SINGLE, _single(self.record_every_dE_V)),
                EccParam("Record_every_dT", ParamType.SINGLE, _single(self.record_every_dT_s)),
                EccParam("E_Range", ParamType.INT, int(self.e_range))]


class _LimitedStep(_Model):
    """What CP and CA steps share: duration, ``vs_initial`` and the limit tests with their
    exit condition (CPLIMIT/CALIMIT: at most three tests, ``Test1..3_Config/Value``)."""

    duration_s: float = Field(alias="Duration_step", ge=0)
    vs_initial: bool = False
    limits: tuple[LimitTest, ...] = Field(default=(), max_length=3)
    exit_condition: ExitCondition = Field(default=ExitCondition.NEXT_TECHNIQUE, alias="Exit_Cond")


class CPStep(_LimitedStep):
    """One step of a CP technique: ``current_A`` (``Current_step``) for ``duration_s``."""

    current_A: float = Field(alias="Current_step")


class CAStep(_LimitedStep):
    """One step of a CA technique: ``voltage_V`` (``Voltage_step``) for ``duration_s``."""

    voltage_V: float = Field(alias="Voltage_step")


class _StepTechnique(_Model):
    """CP and CA: 1–20 steps (``Step_number`` = steps − 1), repeated ``n_cycles`` more times
    (``N_Cycles``). With any limit test it loads as CPLIMIT/CALIMIT (``cplimit.ecc``)."""

    record_every_dT_s: float = Field(alias="Record_every_dT", gt=0)
    n_cycles: int = Field(default=0, alias="N_Cycles", ge=0)
    i_range: IRange = Field(alias="I_Range")
    e_range: ERange = Field(default=ERange.E_10V, alias="E_Range")
    bandwidth: int = Field(default=5, alias="Bandwidth", ge=1, le=9)

    _base: ClassVar[str]
    _value_name: ClassVar[str]
    _record_name: ClassVar[str]

    @property
    def step_number(self) -> int:
        """``Step_number``: steps − 1 (§3.2)."""
        return len(self.steps) - 1  # type: ignore[attr-defined]

    @property
    def limited(self) -> bool:
        """True when a step has limit tests: the technique is CPLIMIT/CALIMIT."""
        return any(step.limits for step in self.steps)  # type: ignore[attr-defined]

    @property
    def ecc_name(self) -> str:
        return self._base + ("limit" if self.limited else "")

    def _record_value(self) -> float:
        raise NotImplementedError

    def ecc_params(self) -> list[EccParam]:
        out: list[EccParam] = []
        for k, step in enumerate(self.steps):  # type: ignore[attr-defined]
            out += [EccParam(self._value_name, ParamType.SINGLE, _single(self._step_value(step)), k),
                    EccParam("vs_initial", ParamType.BOOL, step.vs_initial, k),
                    EccParam("Duration_step", ParamType.SINGLE, _single(step.duration_s), k)]
            if self.limited:
                for n in range(3):
                    test = step.limits[n] if n < len(step.limits) else None
                    out += [EccParam(f"Test{n + 1}_Config", ParamType.INT, test.config if test else 0, k),
                            EccParam(f"Test{n + 1}_Value", ParamType.SINGLE, _single(test.value) if test else 0.0, k)]
                out.append(EccParam("Exit_Cond", ParamType.INT, int(step.exit_condition), k))
        out += [EccParam("Step_number", ParamType.INT, self.step_number),
                EccParam("Record_every_dT", ParamType.SINGLE, _single(self.record_every_dT_s)),
                EccParam(self._record_name, ParamType.SINGLE, _single(self._record_value())),
                EccParam("N_Cycles", ParamType.INT, self.n_cycles),
                EccParam("I_Range", ParamType.INT, int(self.i_range)),
                EccParam("E_Range", ParamType.INT, int(self.e_range)),
                EccParam("Bandwidth", ParamType.INT, self.bandwidth)]
        return out

    @model_validator(mode="after")
    def _ranges(self) -> _StepTechnique:
        if self.i_range == IRange.AUTO and self.limited:
            raise ValueError("I_Range AUTO is not accepted with limit tests (pyeclab refuses it for CPLIMIT)")
        return self


class CP(_StepTechnique):
    """Chronopotentiometry (``cp.ecc``, 102; ``cplimit.ecc``, 155, with limit tests).
    ECC names (§3.2): ``Current_step[]``, ``vs_initial[]``, ``Duration_step[]``,
    ``Step_number``, ``Record_every_dT``, ``Record_every_dE``, ``N_Cycles``, ``I_Range``,
    ``E_Range``, ``Bandwidth``; with limits ``Test1..3_Config[]``, ``Test1..3_Value[]``,
    ``Exit_Cond[]``."""

    kind: Literal["cp"] = "cp"
    steps: tuple[CPStep, ...] = Field(min_length=1, max_length=20)
    record_every_dE_V: float = Field(default=0.0, alias="Record_every_dE", ge=0)

    _base: ClassVar[str] = "cp"
    _value_name: ClassVar[str] = "Current_step"
    _record_name: ClassVar[str] = "Record_every_dE"

    @staticmethod
    def _step_value(step: CPStep) -> float:
        return step.current_A

    def _record_value(self) -> float:
        return self.record_every_dE_V

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.CPLIMIT if self.limited else TechniqueId.CP


class CA(_StepTechnique):
    """Chronoamperometry (``ca.ecc``, 101; ``calimit.ecc``, 157): as :class:`CP` with
    ``Voltage_step[]`` and ``Record_every_dI`` (§3.2)."""

    kind: Literal["ca"] = "ca"
    steps: tuple[CAStep, ...] = Field(min_length=1, max_length=20)
    record_every_dI_A: float = Field(default=0.0, alias="Record_every_dI", ge=0)

    _base: ClassVar[str] = "ca"
    _value_name: ClassVar[str] = "Voltage_step"
    _record_name: ClassVar[str] = "Record_every_dI"

    @staticmethod
    def _step_value(step: CAStep) -> float:
        return step.voltage_V

    def _record_value(self) -> float:
        return self.record_every_dI_A

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.CALIMIT if self.limited else TechniqueId.CA


class Loop(_Model):
    """Loop (``loop.ecc``, 150): go back to technique ``target_index`` (0-based,
    ``protocol_number``) ``repeat_count`` times (``loop_N_times``), then carry on: the body
    runs ``repeat_count + 1`` times in all (ECC names: pyeclab ``techniques/loop.py``; the
    count is "cycles − 1" like Modulo Bat's ``ctrl_repeat``, cyclers-data-formats.md §1.3).
    Each jump back adds 1 to the channel's loop count (``DataInfo.loop``)."""

    kind: Literal["loop"] = "loop"
    repeat_count: int = Field(alias="loop_N_times", ge=0)
    target_index: int = Field(alias="protocol_number", ge=0)

    @property
    def technique_id(self) -> TechniqueId:
        return TechniqueId.LOOP

    @property
    def ecc_name(self) -> str:
        return "loop"

    def ecc_params(self) -> list[EccParam]:
        return [EccParam("loop_N_times", ParamType.INT, self.repeat_count),
                EccParam("protocol_number", ParamType.INT, self.target_index)]


Technique = Annotated[OCV | CP | CA | Loop, Field(discriminator="kind")]


def ecc_file(technique: OCV | CP | CA | Loop, device_code: int) -> str:
    """The technique's firmware file for a device: ``<name>.ecc`` on the VMP3 family,
    ``<name>4.ecc`` on the SP-300 family (§3.2 "Technique firmware files")."""
    return technique.ecc_name + ("4" if device_code in SP300_FAMILY else "") + ".ecc"


def check_sequence(techniques: Sequence[OCV | CP | CA | Loop]) -> None:
    """Raise ValueError unless the list is not empty and every Loop jumps back to an earlier
    technique that is not a Loop."""
    if not techniques:
        raise ValueError("the technique list is empty")
    for k, t in enumerate(techniques):
        if isinstance(t, Loop):
            if t.target_index >= k:
                raise ValueError(f"technique {k} (Loop): protocol_number {t.target_index} must be an earlier technique")
            if isinstance(techniques[t.target_index], Loop):
                raise ValueError(f"technique {k} (Loop): protocol_number {t.target_index} is itself a Loop")


def execution_runs(techniques: Sequence[OCV | CP | CA | Loop]) -> Iterator[tuple[int, int]]:
    """(technique index, loop count) of every technique run, in execution order, when no
    limit test stops the channel early. A Loop that is finished rearms, so an outer loop
    runs an inner one again. O(runs)."""
    remaining: dict[int, int] = {}
    loop = index = 0
    while index < len(techniques):
        t = techniques[index]
        if isinstance(t, Loop):
            left = remaining.get(index, t.repeat_count)
            if left > 0:
                remaining[index] = left - 1
                loop += 1
                index = t.target_index
            else:
                remaining.pop(index, None)
                index += 1
            continue
        yield index, loop
        index += 1


def i_range_for(current_A: float) -> IRange:
    """The smallest fixed I_Range holding ``|current_A|`` (range k: 100 pA × 10^k, §3.2).
    Raises ValueError above 1 A (the booster is not modelled)."""
    magnitude = abs(current_A)
    for k in range(IRange.I_1A + 1):
        if magnitude <= 1e-10 * 10**k * (1 + 1e-9):
            return IRange(k)
    raise ValueError(f"|current| {magnitude:g} A exceeds the 1 A range (I_Range 10)")


def e_range_for(max_abs_voltage_V: float) -> ERange:
    """The smallest fixed E_Range holding ±``max_abs_voltage_V``. Raises ValueError above 10 V."""
    for e_range, half_V in E_RANGE_V.items():
        if abs(max_abs_voltage_V) <= half_V:
            return e_range
    raise ValueError(f"{max_abs_voltage_V:g} V exceeds the ±10 V E_Range")


class ChannelSafetyLimits(_Model):
    """The channel's safety limits: crossing one for ``delay_s`` stops the channel with the
    current off (a "safety stop"). EC-Lab's experiment ``Safety Limits`` block: ``Ewe min``,
    ``Ewe max``, one symmetric ``|I|``, ``Q−Q0`` and ``for t > … ms`` capped at 1000 ms
    (cyclers-data-formats.md §1.3, anchors §3.2 (c)); codes as :class:`SafetyCode`.

    The Development Package has no call for them among the functions in §3.2 (a):
    :class:`drivers.sim.biologic.SimulatedBackend` enforces them, the real backend does not
    (the engine's software limits still hold there)."""

    ewe_max_V: float | None = None
    ewe_min_V: float | None = None
    abs_current_max_A: float | None = Field(default=None, gt=0)
    charge_max_C: float | None = Field(default=None, gt=0)
    """On |Q − Q0|: the charge passed since the start, signed, in C."""
    delay_s: float = Field(default=0.0, ge=0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> ChannelSafetyLimits:
        if self.ewe_max_V is not None and self.ewe_min_V is not None and not self.ewe_min_V < self.ewe_max_V:
            raise ValueError("ewe_min_V must be below ewe_max_V")
        return self

    def check(self, Ewe_V: float, I_A: float, charge_C: float, *, rel_tol: float = 0.0) -> SafetyCode:  # noqa: N803
        """The first limit exceeded at this operating point (:attr:`SafetyCode.OK` if none).
        ``rel_tol`` widens the limits' reach (a point *at* a limit within it counts)."""
        if self.ewe_max_V is not None and Ewe_V > self.ewe_max_V - rel_tol * abs(self.ewe_max_V):
            return SafetyCode.EWE_MAX
        if self.ewe_min_V is not None and Ewe_V < self.ewe_min_V + rel_tol * abs(self.ewe_min_V):
            return SafetyCode.EWE_MIN
        if self.abs_current_max_A is not None and abs(I_A) > self.abs_current_max_A * (1 - rel_tol):
            return SafetyCode.ABS_I
        if self.charge_max_C is not None and abs(charge_C) > self.charge_max_C * (1 - rel_tol):
            return SafetyCode.CHARGE
        return SafetyCode.OK


# -- backends ----------------------------------------------------------------------------------

class BiologicBackend(Protocol):
    """The Development Package calls the driver makes, in the DLL's shapes (§3.2 (a)).

    ``channel`` is 0-based, as in the DLL. Every call raises :class:`BLError` with the DLL's
    code on failure. ``set_safety_limits``, ``pause_channel`` and ``resume_channel`` are not
    among the DLL functions in §3.2 (a): EC-Lab's safety limits and pause; a backend without
    pause raises BLError(-6), one without safety limits logs that they are not held.
    """

    def connect(self, address: str, timeout_s: float) -> tuple[int, DeviceInfo]:
        """``BL_Connect(address, timeout, &id, &DeviceInfo)``: the connection id and device."""
        ...

    def disconnect(self, connection_id: int) -> None:
        """``BL_Disconnect``: running channels carry on."""
        ...

    def get_channel_infos(self, connection_id: int, channel: int) -> ChannelInfo: ...

    def load_technique(self, connection_id: int, channel: int, ecc_file: str, params: Sequence[EccParam],
                       first: bool, last: bool) -> None:
        """``BL_LoadTechnique(id, ch, file, EccParams, first, last, verbose)``: ``first``
        begins a new list, ``last`` completes it."""
        ...

    def start_channel(self, connection_id: int, channel: int) -> None: ...

    def stop_channel(self, connection_id: int, channel: int) -> None: ...

    def get_current_values(self, connection_id: int, channel: int) -> CurrentValues: ...

    def get_data(self, connection_id: int, channel: int) -> tuple[np.ndarray, DataInfo, CurrentValues]:
        """``BL_GetData(id, ch, &buffer, &DataInfo, &CurrentValues)``: ``buffer`` is a
        uint32 array of :data:`DATA_BUFFER_WORDS` words whose first NbRows × NbCols hold one
        technique run's rows; they are removed from the channel's memory."""
        ...

    def set_safety_limits(self, connection_id: int, channel: int, limits: ChannelSafetyLimits | None) -> None: ...

    def pause_channel(self, connection_id: int, channel: int) -> None: ...

    def resume_channel(self, connection_id: int, channel: int) -> None: ...


class BiologicBackendMissing(RuntimeError):
    """The vendor library for the real backend is not installed or cannot load."""


class EasyBiologicBackend:
    """The real instrument through easy-biologic (PyPI ``easy-biologic``, module
    ``easy_biologic.lib.ec_lib``), which loads ``EClib64.dll`` of the EC-Lab Development
    Package (Windows only). Install with ``pip install 'labctl[biologic]'``.

    Raises BiologicBackendMissing (one line) when easy-biologic or its DLL cannot be loaded.
    Not tested here (no instrument, no DLL): each method is the matching ``ec_lib`` call
    (``connect``, ``disconnect``, ``channel_info``, ``load_technique``, ``start_channel``,
    ``stop_channel``, ``get_values``, ``get_data``). The Development Package offers neither
    safety limits nor pause among the functions we know: safety limits are logged and left to
    the engine, pause/resume raise BLError -6.
    """

    def __init__(self, technique_dir: str | Path | None = None) -> None:
        """``technique_dir``: the folder of the ``.ecc`` files (the Development Package's
        ``EC-Lab Development Package/Examples/…`` or easy-biologic's ``include/techniques/<version>``);
        None passes bare file names to the DLL."""
        self.technique_dir = Path(technique_dir) if technique_dir is not None else None
        try:
            from easy_biologic.lib import ec_lib  # noqa: PLC0415 - optional, Windows-only
        except Exception as exc:  # ImportError, or OSError/AttributeError when the DLL cannot load
            raise BiologicBackendMissing(
                "the real Biologic backend needs easy-biologic and the EC-Lab Development Package DLL "
                f"(Windows): pip install 'labctl[biologic]' ({type(exc).__name__}: {exc})".replace("\n", " ")
            ) from None
        self._ec = ec_lib

    def _call(self, function: str, call, *args):
        try:
            return call(*args)
        except Exception as exc:  # easy-biologic's EcError: "ERR_NAME (code): message" (lib/ec_errors.py)
            found = re.search(r"\((-\d+)\)", str(exc))
            raise BLError(function, int(found.group(1)) if found else -6, str(exc)) from None

    def connect(self, address: str, timeout_s: float) -> tuple[int, DeviceInfo]:
        idn, info = self._call("BL_Connect", self._ec.connect, address, max(1, int(timeout_s)))
        return idn, DeviceInfo(*(getattr(info, name) for name in DeviceInfo.__dataclass_fields__))

    def disconnect(self, connection_id: int) -> None:
        self._call("BL_Disconnect", self._ec.disconnect, connection_id)

    def get_channel_infos(self, connection_id: int, channel: int) -> ChannelInfo:
        info = self._call("BL_GetChannelInfos", self._ec.channel_info, connection_id, channel)
        return ChannelInfo(*(getattr(info, f, 0) for f in ChannelInfo.__dataclass_fields__))

    def load_technique(self, connection_id: int, channel: int, ecc_file: str, params: Sequence[EccParam],
                       first: bool, last: bool) -> None:
        kinds = {ParamType.INT: "int", ParamType.BOOL: "bool", ParamType.SINGLE: "single"}
        built = [self._ec.create_parameter(p.ParamStr, p.ParamVal, p.ParamIndex, kinds[p.ParamType]) for p in params]
        path = str(self.technique_dir / ecc_file) if self.technique_dir is not None else ecc_file
        self._call("BL_LoadTechnique", self._ec.load_technique, connection_id, channel, path,
                   self._ec.combine_parameters(built), first, last)

    def start_channel(self, connection_id: int, channel: int) -> None:
        self._call("BL_StartChannel", self._ec.start_channel, connection_id, channel)

    def stop_channel(self, connection_id: int, channel: int) -> None:
        self._call("BL_StopChannel", self._ec.stop_channel, connection_id, channel)

    def get_current_values(self, connection_id: int, channel: int) -> CurrentValues:
        values = self._call("BL_GetCurrentValues", self._ec.get_values, connection_id, channel)
        return CurrentValues(*(getattr(values, f) for f in CurrentValues.__dataclass_fields__))

    def get_data(self, connection_id: int, channel: int) -> tuple[np.ndarray, DataInfo, CurrentValues]:
        data, info, values = self._call("BL_GetData", self._ec.get_data, connection_id, channel)
        return (np.ctypeslib.as_array(data).astype(np.uint32),
                DataInfo(*(getattr(info, f) for f in DataInfo.__dataclass_fields__)),
                CurrentValues(*(getattr(values, f) for f in CurrentValues.__dataclass_fields__)))

    def set_safety_limits(self, connection_id: int, channel: int, limits: ChannelSafetyLimits | None) -> None:
        """Not pushed: the Development Package has no safety-limit call (§3.2 (a)); the
        engine's software limits are what holds. Logged once per call."""
        if limits is not None:
            log.warning("channel %d: the Development Package cannot hold safety limits; only the engine's apply", channel + 1)

    def pause_channel(self, connection_id: int, channel: int) -> None:
        raise BLError("pause", -6, "the Development Package has no pause call")

    def resume_channel(self, connection_id: int, channel: int) -> None:
        raise BLError("resume", -6, "the Development Package has no pause call")


# -- decoding and the journal -----------------------------------------------------------------

#: One journaled point. ``run_start_s`` is ``DataInfo.StartTime`` of its technique run;
#: ``charge_C`` is Q − Q0 since the start and ``run_charge_C`` the charge since the technique
#: run began, both signed and summed by the driver (I × Δt between points of one run: exact
#: for CP and OCV, whose current is constant within a run).
RECORD_DTYPE = np.dtype([
    ("time_s", "<f8"), ("run_start_s", "<f8"), ("Ewe_V", "<f8"), ("I_A", "<f8"), ("charge_C", "<f8"),
    ("run_charge_C", "<f8"), ("cycle", "<i4"), ("technique_index", "<i4"), ("technique_id", "<i4"), ("loop", "<i4"),
])
_JOURNAL_MAGIC = b"LABCTL-BL-JRNL02"
_ROW_LAYOUTS = {
    # (SP-300 family?, technique id) -> columns (easy-biologic lib/data_parser.py)
    (False, TechniqueId.OCV): ("t_high", "t_low", "Ewe", "Ece"),
    (True, TechniqueId.OCV): ("t_high", "t_low", "Ewe"),
}
_CURRENT_ROWS = ("t_high", "t_low", "Ewe", "I", "cycle")


def row_layout(technique_id: int, device_code: int) -> tuple[str, ...]:
    """Column names of a technique's rows in the ``BL_GetData`` buffer (see module doc).
    Raises ValueError for techniques whose layout is not known here."""
    sp300 = device_code in SP300_FAMILY
    if technique_id == TechniqueId.OCV:
        return _ROW_LAYOUTS[(sp300, TechniqueId.OCV)]
    if technique_id in (TechniqueId.CP, TechniqueId.CA, TechniqueId.CPLIMIT, TechniqueId.CALIMIT):
        return _CURRENT_ROWS
    raise ValueError(f"no row layout for technique id {technique_id}")


def decode_rows(words: np.ndarray, info: DataInfo, time_base_s: float, device_code: int) -> np.ndarray:
    """The rows of one ``BL_GetData`` buffer as a :data:`RECORD_DTYPE` array (charge left 0).
    Raises ValueError if ``NbCols`` does not match the technique's layout."""
    layout = row_layout(info.TechniqueID, device_code)
    if info.NbCols != len(layout):
        raise ValueError(f"technique id {info.TechniqueID}: {info.NbCols} columns, expected {len(layout)} ({', '.join(layout)})")
    table = np.asarray(words, dtype=np.uint32)[: info.NbRows * info.NbCols].reshape(info.NbRows, info.NbCols)
    col = {name: table[:, k] for k, name in enumerate(layout)}
    out = np.zeros(info.NbRows, RECORD_DTYPE)
    ticks = (col["t_high"].astype(np.uint64) << np.uint64(32)) + col["t_low"].astype(np.uint64)
    out["time_s"] = info.StartTime + float(time_base_s) * ticks.astype(np.float64)
    out["run_start_s"] = info.StartTime
    out["Ewe_V"] = col["Ewe"].view(np.float32)
    if "I" in col:
        out["I_A"] = col["I"].view(np.float32)
        out["cycle"] = col["cycle"].astype(np.int32)
    out["technique_index"] = info.TechniqueIndex
    out["technique_id"] = info.TechniqueID
    out["loop"] = info.loop
    return out


class _Journal:
    """Every point read from the channel, in order; in memory, and appended to ``path`` (and
    fsynced) when given. A file left by a crashed process is read back whole; a torn last
    record is dropped."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._data = np.zeros(1024, RECORD_DTYPE)
        self.count = 0
        self.offset = 0
        """Records numbered before the first one held (see :meth:`BiologicChannel.attach`)."""
        if path is not None and path.exists():
            raw = path.read_bytes()
            if raw[: len(_JOURNAL_MAGIC)] != _JOURNAL_MAGIC:
                raise ValueError(f"{path}: not a Biologic journal")
            body = raw[len(_JOURNAL_MAGIC):]
            whole = len(body) // RECORD_DTYPE.itemsize * RECORD_DTYPE.itemsize
            if whole != len(body):
                with open(path, "r+b") as fh:
                    fh.truncate(len(_JOURNAL_MAGIC) + whole)
            self._extend(np.frombuffer(body[:whole], RECORD_DTYPE))

    def reset(self) -> None:
        self.count = self.offset = 0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "wb") as fh:
                fh.write(_JOURNAL_MAGIC)
                fh.flush()
                os.fsync(fh.fileno())

    def _extend(self, rows: np.ndarray) -> None:
        need = self.count + len(rows)
        if need > len(self._data):
            grown = np.zeros(max(need, 2 * len(self._data)), RECORD_DTYPE)
            grown[: self.count] = self._data[: self.count]
            self._data = grown
        self._data[self.count:need] = rows
        self.count = need

    def append(self, rows: np.ndarray) -> None:
        """Add decoded rows, summing the charge on from the last point; written out first."""
        rows = rows.copy()
        if self.count:
            before = self._data[self.count - 1: self.count]
        else:
            before = np.zeros(1, RECORD_DTYPE)
            before["run_start_s"] = np.nan  # matches no run
        prev = np.concatenate([before, rows[:-1]])
        same_run = ((prev["run_start_s"] == rows["run_start_s"]) & (prev["technique_index"] == rows["technique_index"])
                    & (prev["loop"] == rows["loop"]))
        dq = np.where(same_run, rows["I_A"] * (rows["time_s"] - prev["time_s"]), 0.0)
        q = np.cumsum(dq)
        rows["charge_C"] = (float(before["charge_C"][0]) if self.count else 0.0) + q
        # the run's charge restarts at each run's first point (where dq is 0)
        last_start = np.maximum.accumulate(np.where(same_run, -1, np.arange(len(rows))))
        carried = float(before["run_charge_C"][0]) if self.count else 0.0
        rows["run_charge_C"] = np.where(last_start < 0, carried + q, q - q[np.maximum(last_start, 0)])
        if self.path is not None:
            if not self.path.exists():
                self.reset()
            with open(self.path, "ab") as fh:
                fh.write(rows.tobytes())
                fh.flush()
                os.fsync(fh.fileno())
        self._extend(rows)

    @property
    def last_index(self) -> int:
        return self.offset + self.count

    def since(self, cursor: int, max_points: int | None) -> np.ndarray:
        start = max(0, int(cursor) - self.offset)
        stop = self.count if max_points is None else min(self.count, start + max_points)
        return self._data[start:stop].copy() if stop > start else np.zeros(0, RECORD_DTYPE)

    def last(self) -> np.void | None:
        return self._data[self.count - 1] if self.count else None


# -- the driver --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ChannelData:
    """Points ``record_index[0]``… of a channel, as columns (1-D arrays of one length n):
    ``record_index`` (1-based, int64), ``time_s`` (since the start), ``Ewe_V``, ``I_A``,
    ``charge_C`` (Q − Q0), ``run_charge_C`` (since the point's technique run began: a compiled
    program step), ``cycle`` (the technique's N_Cycles pass), ``technique_index``
    (0-based, in the loaded list), ``technique_id``, ``loop`` (the channel's loop count).
    Map (technique_index, loop) to program steps with
    :meth:`drivers.biologic.compiler.BiologicProgram.step_indices`."""

    record_index: np.ndarray
    time_s: np.ndarray
    Ewe_V: np.ndarray
    I_A: np.ndarray
    charge_C: np.ndarray
    run_charge_C: np.ndarray
    cycle: np.ndarray
    technique_index: np.ndarray
    technique_id: np.ndarray
    loop: np.ndarray

    def __len__(self) -> int:
        return len(self.record_index)

    @property
    def last_index(self) -> int | None:
        """The record index of the last point (the next cursor), None if empty."""
        return int(self.record_index[-1]) if len(self.record_index) else None

    @classmethod
    def from_records(cls, records: np.ndarray, first_index: int) -> ChannelData:
        index = np.arange(first_index, first_index + len(records), dtype=np.int64)
        return cls(index, *(records[name].copy() for name in
                            ("time_s", "Ewe_V", "I_A", "charge_C", "run_charge_C", "cycle", "technique_index",
                             "technique_id", "loop")))


@dataclass(frozen=True)
class Identity:
    """What the instrument says it is: model (from ``DeviceCode``), the channel board's serial
    number, the communication firmware version (``FirmwareVersion``/100, as kbio prints it)
    and the channel firmware's, and the number of channels."""

    model: str
    device_code: int
    serial: str
    firmware: str
    channel_firmware: str
    channels: int


@dataclass(frozen=True)
class ChannelValues:
    """A channel's live values (``BL_GetCurrentValues``) and where its technique list stands
    (from the last block read: technique index and loop count, None before any)."""

    state: ChannelState
    Ewe_V: float
    I_A: float
    elapsed_s: float
    technique_index: int | None
    loop: int | None
    memory_filled_bytes: int


class EndReason(str, Enum):
    """How a started channel ended (``NONE`` while it runs or is paused)."""

    NONE = "none"
    FINISHED = "finished"
    """The technique list ran to its end."""
    STOPPED = "stopped"
    """Stopped by a client (``BL_StopChannel``), or stopped before the end for no reason the
    data shows (from EC-Lab, or its last points were lost)."""
    SAFETY_LIMIT = "safety_limit"
    """A channel safety limit tripped (:attr:`ChannelStatus.safety_code`)."""
    LIMIT_STOP = "limit_stop"
    """A limit test whose exit condition is *stop* was met."""


@dataclass(frozen=True)
class ChannelStatus:
    """State, and for a stopped channel why (``detail``: one line). ``record_count`` points
    are in the journal; ``points_lost`` were reported lost (``IRQskipped``) by this driver."""

    state: ChannelState
    end_reason: EndReason
    detail: str
    safety_code: SafetyCode
    record_count: int
    points_lost: int


class BiologicChannel:
    """One channel of a BioLogic instrument, through a :class:`BiologicBackend`.

    Args:
        backend: :class:`drivers.sim.biologic.SimulatedBackend` or :class:`EasyBiologicBackend`.
        address: the instrument (``"USB0"``, ``"192.168.0.10"``), as ``BL_Connect`` takes it.
        channel: 1-based, as EC-Lab numbers channels (the DLL's is 0-based).
        journal_path: file for the points read (see module doc); None keeps them in memory
            only, which survives a reconnect but not the death of this process.
        timeout_s: ``BL_Connect`` timeout.

    Not thread-safe beyond one lock around each call; one engine thread drives it.
    """

    def __init__(self, backend: BiologicBackend, address: str, channel: int = 1, *,
                 journal_path: str | Path | None = None, timeout_s: float = 5.0) -> None:
        if channel < 1:
            raise ValueError(f"channel is 1-based, got {channel}")
        self.backend = backend
        self.address = address
        self.channel = channel
        self.name = f"{address} ch {channel}"
        self.timeout_s = timeout_s
        self._ch = channel - 1
        self._cid: int | None = None
        self._device: DeviceInfo | None = None
        self._journal = _Journal(Path(journal_path) if journal_path is not None else None)
        self._lock = threading.RLock()
        self.techniques: tuple[OCV | CP | CA | Loop, ...] = ()
        self.safety: ChannelSafetyLimits | None = None
        self._final_run: tuple[int, int] | None = None
        self._started = False
        self._stop_requested = False
        self._last_block: tuple[int, int] | None = None
        self.points_lost = 0

    # -- connection ----------------------------------------------------------------------------
    def _call(self, function: str, method, *args):
        if self._cid is None and function != "BL_Connect":
            raise InstrumentLost(self.name, "not connected")
        try:
            return method(*args)
        except BLError as exc:
            kind = InstrumentLost if exc.code in LOST_CODES else InstrumentError
            raise kind(self.name, str(exc)) from None

    def connect(self) -> Identity:
        """``BL_Connect`` and ``BL_GetChannelInfos``; the instrument's :class:`Identity`.
        Raises InstrumentLost if it cannot be reached, InstrumentError if it has no such channel."""
        with self._lock:
            self._cid, self._device = self._call("BL_Connect", self.backend.connect, self.address, self.timeout_s)
            if self._ch >= self._device.NumberOfChannels:
                raise InstrumentError(self.name, f"the instrument has {self._device.NumberOfChannels} channel(s)")
            return self.identify()

    def close(self) -> None:
        """``BL_Disconnect``; a running channel carries on."""
        with self._lock:
            if self._cid is not None:
                try:
                    self.backend.disconnect(self._cid)
                except BLError:
                    pass
                self._cid = None

    def __enter__(self) -> BiologicChannel:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def identify(self) -> Identity:
        """Model, serial number and firmware versions (``DeviceInfo`` + ``ChannelInfo``)."""
        with self._lock:
            info: ChannelInfo = self._call("BL_GetChannelInfos", self.backend.get_channel_infos, self._cid, self._ch)
            d = self._device
            assert d is not None
            return Identity(model=DEVICE_CODES.get(d.DeviceCode, f"device {d.DeviceCode}"), device_code=d.DeviceCode,
                            serial=str(info.BoardSerialNumber), firmware=f"{d.FirmwareVersion / 100:.2f}",
                            channel_firmware=f"{info.FirmwareVersion / 100:.2f}", channels=d.NumberOfChannels)

    # -- the technique list ---------------------------------------------------------------------
    def _remember(self, techniques: Sequence[OCV | CP | CA | Loop], safety: ChannelSafetyLimits | None) -> None:
        try:
            check_sequence(techniques)
        except ValueError as exc:
            raise InstrumentError(self.name, str(exc)) from None
        self.techniques = tuple(techniques)
        self.safety = safety
        last = None
        for last in execution_runs(self.techniques):
            pass
        self._final_run = last

    def load_techniques(self, techniques: Sequence[OCV | CP | CA | Loop],
                        safety: ChannelSafetyLimits | None = None) -> None:
        """Load the technique list (``BL_LoadTechnique`` per technique, first/last flags) and
        the channel's safety limits. Raises InstrumentError if the channel is running or
        refuses a technique (the message names its index)."""
        with self._lock:
            self._remember(techniques, safety)
            assert self._device is not None
            for k, t in enumerate(self.techniques):
                try:
                    self.backend.load_technique(self._cid, self._ch, ecc_file(t, self._device.DeviceCode),
                                                t.ecc_params(), k == 0, k == len(self.techniques) - 1)
                except BLError as exc:
                    kind = InstrumentLost if exc.code in LOST_CODES else InstrumentError
                    raise kind(self.name, f"technique {k} ({t.kind}): {exc}") from None
            self._call("set_safety_limits", self.backend.set_safety_limits, self._cid, self._ch, safety)

    def start(self) -> None:
        """``BL_StartChannel``: run the loaded list from its first technique. Empties the
        journal (a new run). Raises InstrumentError if the channel is already running."""
        with self._lock:
            self._call("BL_StartChannel", self.backend.start_channel, self._cid, self._ch)
            self._journal.reset()
            self._started, self._stop_requested, self._last_block, self.points_lost = True, False, None, 0

    def attach(self, techniques: Sequence[OCV | CP | CA | Loop], safety: ChannelSafetyLimits | None = None, *,
               records_read: int = 0) -> None:
        """Take over a channel started earlier (by this program before a crash) without
        touching it: the same ``techniques``/``safety`` as loaded, so the end can be told.
        The journal (``journal_path``) keeps the points read before; :meth:`poll` reads the
        rest from the channel's memory.

        ``records_read``: how many points the earlier process had numbered, when this
        journal holds fewer (no ``journal_path``): new points are numbered on from there.
        What it had read and not handed on is then gone, and ``charge_C`` restarts at 0.
        """
        with self._lock:
            self._remember(techniques, safety)
            self._started, self._stop_requested = True, False
            if records_read > self._journal.last_index:
                if self._journal.count:
                    raise InstrumentError(self.name, f"the journal holds {self._journal.last_index} points, "
                                                     f"not the {records_read} read before")
                self._journal.offset = records_read
            last = self._journal.last()
            self._last_block = None if last is None else (int(last["technique_index"]), int(last["loop"]))

    def stop(self) -> None:
        """``BL_StopChannel``: the current goes off; :meth:`status` then says ``stopped``."""
        with self._lock:
            self._stop_requested = True
            self._call("BL_StopChannel", self.backend.stop_channel, self._cid, self._ch)

    def pause(self) -> None:
        """Pause a running channel (current off, technique time frozen). InstrumentError where
        the backend cannot (the Development Package)."""
        with self._lock:
            self._call("pause", self.backend.pause_channel, self._cid, self._ch)

    def resume(self) -> None:
        """Resume a paused channel where it was."""
        with self._lock:
            self._call("resume", self.backend.resume_channel, self._cid, self._ch)

    # -- values and data ------------------------------------------------------------------------
    def current_values(self) -> ChannelValues:
        """``BL_GetCurrentValues`` plus the technique index and loop of the last block read."""
        with self._lock:
            v: CurrentValues = self._call("BL_GetCurrentValues", self.backend.get_current_values, self._cid, self._ch)
            ti, loop = self._last_block if self._last_block else (None, None)
            return ChannelValues(state=ChannelState(v.State), Ewe_V=float(v.Ewe), I_A=float(v.I),
                                 elapsed_s=float(v.ElapsedTime), technique_index=ti, loop=loop,
                                 memory_filled_bytes=int(v.MemFilled))

    def poll(self, max_blocks: int = 10_000) -> int:
        """Read the channel's stored points (``BL_GetData`` until it returns no rows, at most
        ``max_blocks`` calls) into the journal; the number of new points."""
        with self._lock:
            assert self._device is not None or self._cid is None
            new = 0
            for _ in range(max_blocks):
                words, info, values = self._call("BL_GetData", self.backend.get_data, self._cid, self._ch)
                if info.IRQskipped:
                    self.points_lost += int(info.IRQskipped)
                    log.warning("%s: the channel lost %d point(s) (memory full)", self.name, info.IRQskipped)
                if info.NbRows <= 0:
                    break
                try:
                    rows = decode_rows(words, info, values.TimeBase, self._device.DeviceCode)
                except ValueError as exc:
                    raise InstrumentLost(self.name, f"BL_GetData: {exc}") from None
                self._journal.append(rows)
                self._last_block = (info.TechniqueIndex, info.loop)
                new += len(rows)
            return new

    @property
    def record_count(self) -> int:
        """The record index of the last point read (0: none)."""
        return self._journal.last_index

    def data_since(self, cursor: int = 0, max_points: int | None = None) -> ChannelData:
        """The journal's points with record index > ``cursor`` (0: from the first), at most
        ``max_points``. Call :meth:`poll` first to read what the channel stored since."""
        with self._lock:
            first = max(int(cursor), self._journal.offset) + 1
            return ChannelData.from_records(self._journal.since(cursor, max_points), first)

    # -- how it ended -----------------------------------------------------------------------------
    def status(self) -> ChannelStatus:
        """State and, once a started channel has stopped, why (reads its last points first).

        Told from the data, as the Development Package reports no reason: the last point past
        a safety limit → SAFETY_LIMIT; meeting a limit test with exit *stop* → LIMIT_STOP; in
        the list's final technique run → FINISHED; otherwise STOPPED.
        """
        with self._lock:
            v: CurrentValues = self._call("BL_GetCurrentValues", self.backend.get_current_values, self._cid, self._ch)
            state = ChannelState(v.State)
            if state != ChannelState.STOP or not self._started:
                return ChannelStatus(state, EndReason.NONE, "", SafetyCode.OK, self.record_count, self.points_lost)
            self.poll()
            reason, detail, code = self._end()
            return ChannelStatus(state, reason, detail, code, self.record_count, self.points_lost)

    def _end(self) -> tuple[EndReason, str, SafetyCode]:
        if self._stop_requested:
            return EndReason.STOPPED, "stopped by this client", SafetyCode.OK
        last = self._journal.last()
        if last is None:
            return EndReason.STOPPED, "the channel stopped before storing a point", SafetyCode.OK
        ewe, i, q = float(last["Ewe_V"]), float(last["I_A"]), float(last["charge_C"])
        at = f"Ewe = {ewe:.6g} V, I = {i:.6g} A, Q - Q0 = {q:.6g} C at t = {float(last['time_s']):.6g} s"
        if self.safety is not None:
            code = self.safety.check(ewe, i, q, rel_tol=1e-6)
            if code != SafetyCode.OK:
                return EndReason.SAFETY_LIMIT, f"safety limit {code.name}: {at}", code
        index = int(last["technique_index"])
        technique = self.techniques[index] if index < len(self.techniques) else None
        if isinstance(technique, (CP, CA)):
            for step in technique.steps:
                if step.exit_condition == ExitCondition.STOP and LimitTest.any_met(step.limits, ewe, i):
                    tests = " or ".join(f"{t.variable} {t.comparison} {t.value:g}" for t in step.limits if t.active)
                    return EndReason.LIMIT_STOP, f"technique {index}: limit test {tests} met: {at}", SafetyCode.OK
        if (index, int(last["loop"])) == self._final_run:
            return EndReason.FINISHED, "technique list completed", SafetyCode.OK
        lost = f" ({self.points_lost} point(s) lost: memory full)" if self.points_lost else ""
        return (EndReason.STOPPED,
                f"stopped in technique {index}, loop {int(last['loop'])} before the end of the list{lost}", SafetyCode.OK)
