"""The engine: step programs, their execution, and the event stream it publishes."""

from labctl.engine.clock import Clock, ScaledClock, VirtualClock, clock_for_speed
from labctl.checks import ShortDetector
from labctl.events import (
    READING_COLUMNS,
    Column,
    Detected,
    Readings,
    RunEnded,
    RunStarted,
    StepEnded,
    StepStarted,
    StepSummary,
)
from labctl.engine.policy import ReconnectPolicy
from labctl.engine.lifecycle import EngineState, RunLifecycle, RunOutcome
from labctl.engine.software_timed import Engine, ResumePoint
from labctl.steps import ConstantCurrent, Loop, Rest, SafetyLimits, ShortDetection, StepProgram

__all__ = [
    "READING_COLUMNS",
    "Clock",
    "Column",
    "ConstantCurrent",
    "Detected",
    "Engine",
    "Loop",
    "ReconnectPolicy",
    "ResumePoint",
    "EngineState",
    "Readings",
    "Rest",
    "RunEnded",
    "RunLifecycle",
    "RunOutcome",
    "RunStarted",
    "SafetyLimits",
    "ScaledClock",
    "ShortDetection",
    "ShortDetector",
    "StepEnded",
    "StepProgram",
    "StepStarted",
    "StepSummary",
    "VirtualClock",
    "clock_for_speed",
]
