"""NEWARE BTS cyclers, in one place: the BTS client API, step files, the compiler from a step
program, and the channel as a :class:`drivers.base.CyclerChannel`.

* :mod:`.client`: :class:`NewareClient` (XML over TCP, port 502) and :class:`DownloadCursor`;
* :mod:`.stepfile`: the step model (:class:`Rest`, :class:`ConstantCurrent`,
  :class:`ConstantVoltage`, :class:`Cycle`, :class:`Condition`, :class:`Protection`) and
  :class:`StepFile`'s XML;
* :mod:`.compiler`: :func:`compile_program`, a step program → :class:`StepFile`;
* :mod:`.channel`: :class:`NewareCycler`, :func:`compile_native`, :func:`parse_address`.
"""

from drivers.neware.channel import NATIVE_FORMAT, NewareCycler, compile_native, parse_address
from drivers.neware.client import (
    BTS_PORT,
    TERMINATOR,
    WORK_STATUSES,
    CursorState,
    DataPoint,
    DownloadCursor,
    LiveValues,
    NewareChannel,
    NewareClient,
    StepRecord,
    TestInfo,
    TimedPoint,
)
from drivers.neware.compiler import compile_program
from drivers.neware.stepfile import (
    JUMP_END,
    JUMP_NEXT,
    Condition,
    ConstantCurrent,
    ConstantVoltage,
    Cycle,
    Protection,
    Rest,
    StepFile,
    StepFileError,
    fold_repeats,
)

__all__ = [
    # channel
    "NATIVE_FORMAT", "NewareCycler", "compile_native", "parse_address",
    # client
    "BTS_PORT", "TERMINATOR", "WORK_STATUSES", "CursorState", "DataPoint", "DownloadCursor", "LiveValues",
    "NewareChannel", "NewareClient", "StepRecord", "TestInfo", "TimedPoint",
    # compiler
    "compile_program",
    # step files
    "ConstantCurrent", "ConstantVoltage", "Condition", "Cycle", "JUMP_END", "JUMP_NEXT", "Protection", "Rest", "StepFile",
    "StepFileError", "fold_repeats",
]
