"""A BioLogic channel as a :class:`drivers.base.CyclerChannel`, and the program compiler the
delegated engine uses for it.

:class:`BiologicCycler` drives one channel through :class:`drivers.biologic.BiologicChannel`:
``start`` loads the compiled technique list and its safety limits and starts the channel;
``records`` reads the channel's memory into the driver's journal (``BL_GetData`` empties the
channel's memory, so every point is journaled before anyone sees it) and returns the
journal's points after the cursor as numpy columns, each point's step the program's executed
step (:meth:`drivers.biologic.compiler.BiologicProgram.step_indices`). The native program
is :meth:`BiologicProgram.to_json`'s text; it is all a reattach needs besides the journal.

Address: ``INSTRUMENT/CHANNEL``: what ``BL_Connect`` takes (``USB0``, ``192.168.0.10``) and the
1-based channel, e.g. ``USB0/1``. BioLogic has no test ids: a started technique list is test 1.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from drivers.base import CYCLER_RECORD_COLUMNS, CyclerStatus, InstrumentError
from drivers.biologic.api import BiologicBackend, BiologicChannel, ChannelState, EndReason
from drivers.biologic.compiler import JSON_FORMAT, BiologicProgram, compile_program
from labctl.steps import StepProgram

#: Name of the native program format, as stored in run files.
NATIVE_FORMAT = JSON_FORMAT
_END_STATES = {EndReason.FINISHED: "finished", EndReason.SAFETY_LIMIT: "protection",
               EndReason.LIMIT_STOP: "protection", EndReason.STOPPED: "stopped", EndReason.NONE: "stopped"}


def compile_native(program: StepProgram, *, remark: str = "") -> str:
    """The technique list that runs ``program``, as text; BiologicCompileError names a step
    BioLogic cannot express. (``remark`` is not stored: techniques have no name field.)"""
    return compile_program(program).to_json()


def parse_address(address: str) -> tuple[str, int]:
    """``INSTRUMENT/CHANNEL`` → (instrument address, 1-based channel). Raises ValueError."""
    match = re.fullmatch(r"\s*([^/\s]+)/(\d+)\s*", address)
    if not match or int(match.group(2)) < 1:
        raise ValueError(f"{address!r} is not INSTRUMENT/CHANNEL (e.g. USB0/1 or 192.168.0.10/3)")
    return match.group(1), int(match.group(2))


class BiologicCycler:
    """One BioLogic channel, followed by journal record index.

    Args:
        channel: a connected :class:`drivers.biologic.BiologicChannel` (closed by :meth:`close`);
            give it a ``journal_path`` for a run that must survive the death of this process.
    """

    def __init__(self, channel: BiologicChannel) -> None:
        self.channel = channel
        self.address = f"{channel.address}/{channel.channel}"
        self.can_pause = True
        self.test_id: int | None = None
        self._program: BiologicProgram | None = None
        self._cursor = 0

    @classmethod
    def open(cls, address: str, *, backend: BiologicBackend, journal_path: str | Path | None = None,
             timeout_s: float = 5.0) -> BiologicCycler:
        """Connect to the channel at ``address`` (``INSTRUMENT/CHANNEL``) through ``backend``.

        Raises ValueError for a malformed address, InstrumentLost if the instrument cannot be
        reached, InstrumentError if it has no such channel.
        """
        instrument, number = parse_address(address)
        channel = BiologicChannel(backend, instrument, number, journal_path=journal_path, timeout_s=timeout_s)
        channel.connect()
        return cls(channel)

    @property
    def idn(self) -> str:
        """``BioLogic <model> s/n <serial>, firmware <x> / channel <y>, channel k of n``."""
        who = self.channel.identify()
        return (f"BioLogic {who.model} s/n {who.serial}, firmware {who.firmware} / channel {who.channel_firmware}, "
                f"channel {self.channel.channel} of {who.channels}")

    def _load(self, native_program: str) -> BiologicProgram:
        try:
            return BiologicProgram.from_json(native_program)
        except ValueError as exc:
            raise InstrumentError(self.address, str(exc)) from None

    # -- the CyclerChannel interface --------------------------------------------------------
    def start(self, native_program: str, label: str) -> int:
        program = self._load(native_program)
        self.channel.load_techniques(program.techniques, program.safety)
        self.channel.start()
        self._program, self._cursor, self.test_id = program, 0, 1
        return 1

    def attach(self, test_id: int, last_seq_id: int, last_test_time_s: float, last_step_count: int,
               native_program: str) -> None:
        program = self._load(native_program)
        self.channel.attach(program.techniques, program.safety, records_read=last_seq_id)
        self._program, self._cursor, self.test_id = program, last_seq_id, test_id or 1

    def status(self) -> CyclerStatus:
        status = self.channel.status()
        lost = f"; {status.points_lost} point(s) lost: the channel's memory was full" if status.points_lost else ""
        if status.state == ChannelState.PAUSE:
            return CyclerStatus("paused", f"pause{lost}")
        if status.state != ChannelState.STOP:
            return CyclerStatus("running", f"{status.state.name.lower()}{lost}")
        return CyclerStatus(_END_STATES[status.end_reason], f"{status.detail or 'stop'}{lost}")

    def records(self, max_points: int) -> dict[str, np.ndarray]:
        if self._program is None:
            raise InstrumentError(self.address, "no technique list to follow (start or attach first)")
        self.channel.poll()
        data = self.channel.data_since(self._cursor, max_points)
        try:
            steps = self._program.step_indices(data.technique_index, data.loop)
        except ValueError as exc:
            raise InstrumentError(self.address, f"{exc}: the channel is not running labctl's technique list") from None
        out = {name: np.empty(len(data), dtype) for name, dtype in CYCLER_RECORD_COLUMNS}
        out["seq_id"][:] = data.record_index
        out["test_time_s"][:] = data.time_s
        out["voltage_V"][:] = data.Ewe_V
        out["current_A"][:] = data.I_A
        out["step_count"][:] = steps + 1
        out["step_charge_C"][:] = data.run_charge_C
        if len(data):
            self._cursor = int(data.last_index)
        return out

    def stop(self) -> None:
        self.channel.stop()

    def pause(self) -> None:
        self.channel.pause()

    def resume(self) -> None:
        self.channel.resume()

    def reconnect(self) -> None:
        self.channel.close()
        self.channel.connect()

    def close(self) -> None:
        self.channel.close()
