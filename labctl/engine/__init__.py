"""The engine: the run lifecycle and its two executors (software-timed, delegated), the
clocks they share with simulated instruments, and the reconnect policy.

The program model is :mod:`labctl.steps`, the event stream :mod:`labctl.events`, the online
checks :mod:`labctl.checks`.
"""

from labctl.engine.clock import Clock, PacedClock, ScaledClock, VirtualClock, clock_for_speed
from labctl.engine.delegated import DELEGATED_COLUMNS, AttachPoint, DelegatedExecutor
from labctl.engine.lifecycle import (
    ACTIVE_STATES,
    TRANSITIONS,
    EngineState,
    Interrupted,
    RunEnd,
    RunLifecycle,
    RunOutcome,
)
from labctl.engine.policy import ReconnectPolicy
from labctl.engine.software_timed import ResumePoint, SoftwareTimedExecutor

__all__ = [
    "ACTIVE_STATES",
    "DELEGATED_COLUMNS",
    "TRANSITIONS",
    "AttachPoint",
    "Clock",
    "DelegatedExecutor",
    "EngineState",
    "Interrupted",
    "PacedClock",
    "ReconnectPolicy",
    "ResumePoint",
    "RunEnd",
    "RunLifecycle",
    "RunOutcome",
    "ScaledClock",
    "SoftwareTimedExecutor",
    "VirtualClock",
    "clock_for_speed",
]
