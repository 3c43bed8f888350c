"""Shared fixtures: simulated cells and source-meters on a virtual clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.sim.physics.cell import CellParameters, SymmetricCell
from drivers.sim.inprocess import InProcessSourceMeter
from drivers.sim.smu import SourceMeterModel
from labctl.engine import VirtualClock

REPO = Path(__file__).resolve().parents[1]
#: Real instrument files shipped with the tests (each folder keeps its LICENSE; README there).
DATA = Path(__file__).resolve().parent / "data"
REAL_DATA = DATA / "real"
VENDOR_DATA = DATA / "vendor"
EXAMPLES = REPO / "protocols" / "examples"


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 120.0) -> object:
    """Poll ``condition`` until it returns something true and return it; fail naming ``what``
    at the deadline (a generous one: the deadline is for a hang, not a pace)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


def make_smu(clock: VirtualClock, **cell: float) -> InProcessSourceMeter:
    """An in-process simulated 2400 with a symmetric cell of the given parameters."""
    return InProcessSourceMeter(SourceMeterModel(SymmetricCell(CellParameters(**cell)), clock.now))
