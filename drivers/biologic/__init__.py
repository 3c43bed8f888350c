"""BioLogic potentiostats/cyclers (VMP3, MPG-2, SP-300 …), in one place.

* :mod:`.records`: the EC-Lab Development Package's constants, record types and error
  (``BL_*`` shapes), and the driver's records of a channel;
* :mod:`.techniques`: OCV, CP, CA and Loop techniques with their limit tests and ECC
  parameters, and the channel's safety limits;
* :mod:`.backends`: :class:`BiologicBackend` (the DLL calls) and :class:`EasyBiologicBackend`
  (the real instrument; the simulator is ``drivers.sim.biologic.SimulatedBackend``);
* :mod:`.journal`: decoding ``BL_GetData`` buffers, and the journal every point goes to first;
* :mod:`.compiler`: a step program → :class:`BiologicProgram` (techniques, safety, step map);
* :mod:`.channel`: :class:`BiologicChannel` (the driver) and :class:`BiologicCycler` (the
  channel as a :class:`drivers.base.CyclerChannel`), :func:`compile_native`, :func:`parse_address`;
* :mod:`.characterisation`: PEIS, GEIS and a linear sweep (CV), and their rows;
* :mod:`.potentiostat`: :class:`BiologicPotentiostat`, the channel run one technique at a time
  for software-timed programs (a SourceMeter, ImpedanceAnalyser and LinearSweeper).
"""

from drivers.biologic.backends import BiologicBackend, BiologicBackendMissing, EasyBiologicBackend
from drivers.biologic.channel import NATIVE_FORMAT, BiologicChannel, BiologicCycler, compile_native, parse_address
from drivers.biologic.characterisation import GEIS, PEIS, LinearSweepCV, decode_impedance_rows
from drivers.biologic.potentiostat import BiologicPotentiostat
from drivers.biologic.compiler import JSON_FORMAT, BiologicCompileError, BiologicProgram, compile_program
from drivers.biologic.journal import RECORD_DTYPE, Journal, decode_rows, row_layout
from drivers.biologic.records import (
    DATA_BUFFER_WORDS,
    DEVICE_CODES,
    E_RANGE_V,
    ERROR_MESSAGES,
    LOST_CODES,
    SP300_FAMILY,
    BLError,
    ChannelData,
    ChannelInfo,
    ChannelState,
    ChannelStatus,
    ChannelValues,
    CurrentValues,
    DataInfo,
    DeviceInfo,
    EccParam,
    EndReason,
    ERange,
    ExitCondition,
    Identity,
    IRange,
    LimitVariable,
    ParamType,
    SafetyCode,
    TechniqueId,
)
from drivers.biologic.techniques import (
    CA,
    CP,
    OCV,
    CAStep,
    ChannelSafetyLimits,
    CPStep,
    LimitTest,
    Loop,
    Technique,
    check_sequence,
    e_range_for,
    ecc_file,
    execution_runs,
    i_range_for,
)

__all__ = [
    # backends
    "BiologicBackend", "BiologicBackendMissing", "EasyBiologicBackend",
    # characterisation: one technique at a time
    "BiologicPotentiostat", "GEIS", "PEIS", "LinearSweepCV", "decode_impedance_rows",
    # channel
    "NATIVE_FORMAT", "BiologicChannel", "BiologicCycler", "compile_native", "parse_address",
    # compiler
    "JSON_FORMAT", "BiologicCompileError", "BiologicProgram", "compile_program",
    # journal
    "RECORD_DTYPE", "Journal", "decode_rows", "row_layout",
    # records
    "DATA_BUFFER_WORDS", "DEVICE_CODES", "E_RANGE_V", "ERROR_MESSAGES", "LOST_CODES", "SP300_FAMILY", "BLError",
    "ChannelData", "ChannelInfo", "ChannelState", "ChannelStatus", "ChannelValues", "CurrentValues", "DataInfo",
    "DeviceInfo", "EccParam", "EndReason", "ERange", "ExitCondition", "Identity", "IRange", "LimitVariable",
    "ParamType", "SafetyCode", "TechniqueId",
    # techniques
    "CA", "CP", "OCV", "CAStep", "ChannelSafetyLimits", "CPStep", "LimitTest", "Loop", "Technique",
    "check_sequence", "e_range_for", "ecc_file", "execution_runs", "i_range_for",
]
