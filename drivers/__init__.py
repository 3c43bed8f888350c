"""Instrument drivers, one module or package per instrument family, behind the small
capability interfaces of :mod:`drivers.base` (re-exported here). Nothing here imports labctl.

* :mod:`drivers.keithley2400`: the Keithley 2400 on pymeasure over pyvisa
  (:class:`~drivers.base.SourceMeter`, :class:`~drivers.base.SweepingSourceMeter`);
* :mod:`drivers.neware`, :mod:`drivers.biologic`: battery cyclers (:class:`~drivers.base.CyclerChannel`),
  each with its program compiler;
* :mod:`drivers.afm`: a Nanonis AFM controller (:class:`~drivers.base.TipPositioner`);
* :mod:`drivers.sim`: simulators speaking each instrument's wire protocol.

The driver modules are imported by name where needed (``from drivers.neware import ...``):
they pull in their own libraries (pymeasure, pydantic), which this package does not.
"""

from drivers.base import (
    COMPLIANCE_BIT,
    CYCLER_ACTIVE_STATES,
    CYCLER_RECORD_COLUMNS,
    CYCLER_STATES,
    ConstantCurrentLike,
    CyclerChannel,
    CyclerStatus,
    InstrumentError,
    InstrumentLost,
    LoopLike,
    ProgramLike,
    Reading,
    SafetyLimitsLike,
    ShortDetectionLike,
    SourceMeter,
    StepBlock,
    StepLike,
    SweepingSourceMeter,
    TipPositioner,
    step_blocks,
    step_name,
)

__all__ = [
    "COMPLIANCE_BIT", "Reading", "InstrumentError", "InstrumentLost",
    "SourceMeter", "SweepingSourceMeter", "TipPositioner",
    "CYCLER_STATES", "CYCLER_ACTIVE_STATES", "CYCLER_RECORD_COLUMNS", "CyclerStatus", "CyclerChannel",
    "StepLike", "ConstantCurrentLike", "LoopLike", "SafetyLimitsLike", "ShortDetectionLike", "ProgramLike",
    "StepBlock", "step_blocks", "step_name",
]
