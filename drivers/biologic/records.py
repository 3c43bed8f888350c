"""BioLogic's EC-Lab Development Package as the driver sees it: its constants, enums, record
types and error, and the driver's own records of a channel.

The DLL's side (``anchors-and-wire-protocols.md`` §3.2 (a)): the records ``BL_Connect``,
``BL_GetChannelInfos``, ``BL_GetCurrentValues`` and ``BL_GetData`` fill (:class:`DeviceInfo`,
:class:`ChannelInfo`, :class:`CurrentValues`, :class:`DataInfo`) and the technique parameter
``BL_Define*Parameter`` builds (:class:`EccParam`), with the field names and order of pyeclab
``src/pyeclab/api/kbio_types.py`` and easy-biologic ``lib/ec_lib.py``; the codes in them
(:class:`TechniqueId`, :class:`ChannelState`, ranges, limit-test fields) and the DLL's error
(:class:`BLError`).

The driver's side: what :class:`drivers.biologic.BiologicChannel` returns (:class:`ChannelData`,
:class:`Identity`, :class:`ChannelValues`, :class:`ChannelStatus` with its :class:`EndReason`).

Units: V, A, s, C; sizes in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

import numpy as np

__all__ = [
    "TechniqueId", "ChannelState", "IRange", "ERange", "E_RANGE_V", "ParamType", "ExitCondition", "LimitVariable",
    "SafetyCode", "DEVICE_CODES", "SP300_FAMILY", "DATA_BUFFER_WORDS", "ERROR_MESSAGES", "LOST_CODES", "BLError",
    "EccParam", "DeviceInfo", "ChannelInfo", "CurrentValues", "DataInfo",
    "ChannelData", "Identity", "ChannelValues", "EndReason", "ChannelStatus",
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


# -- what the driver reports ------------------------------------------------------------------

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
