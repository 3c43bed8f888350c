"""One BioLogic channel: :class:`BiologicChannel`, the driver over a backend, and
:class:`BiologicCycler`, the same channel as a :class:`drivers.base.CyclerChannel` for the
delegated engine, with :func:`compile_native` and :func:`parse_address`.

A BioLogic channel runs a *technique list* on its own firmware (OCV, CP, CA … linked by Loop
techniques), checks each technique's limit tests and the channel's safety limits, and stores
points in its memory until a client reads them. :class:`BiologicChannel` loads the
techniques, starts, polls the state, downloads new points incrementally
(:meth:`BiologicChannel.poll` into the journal, :mod:`drivers.biologic.journal`, then
:meth:`BiologicChannel.data_since`), tells how the run ended (:meth:`BiologicChannel.status`),
and after a PC crash reattaches to a channel that kept running (:meth:`BiologicChannel.attach`)
and collects every point it missed.

:class:`BiologicCycler` wraps one :class:`BiologicChannel` in the engine's terms: ``start``
loads the compiled technique list (:class:`drivers.biologic.BiologicProgram`) and its safety
limits and starts the channel; ``records`` polls the channel's memory into the journal and
returns the journal's points after the cursor as numpy columns, each point's step the
program's executed step (:meth:`drivers.biologic.BiologicProgram.step_indices`). The native
program is :meth:`BiologicProgram.to_json`'s text; it is all a reattach needs besides the
journal. (Two classes, not one: the driver's ``start``/``attach``/``status`` take and return
technique lists and :class:`ChannelStatus`, the adapter's the engine's native text and
:class:`drivers.base.CyclerStatus`.)

Address: ``INSTRUMENT/CHANNEL``: what ``BL_Connect`` takes (``USB0``, ``192.168.0.10``) and the
1-based channel, e.g. ``USB0/1``. BioLogic has no test ids: a started technique list is test 1.

Units: V, A, s, C. Current sign: positive = plating onto the working electrode, as in the step
program. Errors: :class:`~drivers.base.InstrumentLost` when the instrument cannot be reached
or stops answering, :class:`~drivers.base.InstrumentError` when it refuses a call; both name
``address ch N`` (:class:`BiologicChannel`) or ``address/N`` (:class:`BiologicCycler`).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from drivers.base import CYCLER_RECORD_COLUMNS, CyclerStatus, InstrumentError, InstrumentLost, ProgramLike
from drivers.biologic.backends import BiologicBackend
from drivers.biologic.compiler import JSON_FORMAT, BiologicProgram, compile_program
from drivers.biologic.journal import Journal, decode_rows
from drivers.biologic.records import (
    DEVICE_CODES,
    LOST_CODES,
    BLError,
    ChannelData,
    DataInfo,
    ChannelInfo,
    ChannelState,
    ChannelStatus,
    ChannelValues,
    CurrentValues,
    DeviceInfo,
    EndReason,
    ExitCondition,
    Identity,
    SafetyCode,
)
from drivers.biologic.techniques import (
    CA,
    CP,
    OCV,
    ChannelSafetyLimits,
    LimitTest,
    Loop,
    check_sequence,
    ecc_file,
    execution_runs,
)

log = logging.getLogger(__name__)

__all__ = ["BiologicChannel", "NATIVE_FORMAT", "compile_native", "parse_address", "BiologicCycler"]


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
        self._journal = Journal(Path(journal_path) if journal_path is not None else None)
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

    def read_blocks(self, max_blocks: int = 10_000) -> list[tuple[np.ndarray, DataInfo]]:
        """The channel's stored rows as raw ``BL_GetData`` blocks (words, info), bypassing the
        journal: for techniques whose rows are not time records (PEIS/GEIS process 1), read by
        :class:`drivers.biologic.BiologicPotentiostat`, which runs one technique at a time."""
        with self._lock:
            blocks = []
            for _ in range(max_blocks):
                words, info, _values = self._call("BL_GetData", self.backend.get_data, self._cid, self._ch)
                if info.IRQskipped:
                    self.points_lost += int(info.IRQskipped)
                if info.NbRows <= 0:
                    break
                blocks.append((np.array(words[: info.NbRows * info.NbCols], dtype=np.uint32), info))
            return blocks

    @property
    def device_code(self) -> int:
        """``DeviceInfo.DeviceCode`` of the connected instrument (row layouts depend on it)."""
        if self._device is None:
            raise InstrumentLost(self.name, "not connected")
        return self._device.DeviceCode

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


# -- the channel as the delegated engine drives it ----------------------------------------------

#: Name of the native program format, as stored in run files.
NATIVE_FORMAT = JSON_FORMAT
_END_STATES = {EndReason.FINISHED: "finished", EndReason.SAFETY_LIMIT: "protection",
               EndReason.LIMIT_STOP: "protection", EndReason.STOPPED: "stopped", EndReason.NONE: "stopped"}


def compile_native(program: ProgramLike, *, remark: str = "") -> str:
    """The technique list that runs ``program`` (any :class:`drivers.base.ProgramLike`, e.g.
    ``labctl.steps.StepProgram``), as text; BiologicCompileError names a step BioLogic cannot
    express. (``remark`` is not stored: techniques have no name field.)"""
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
        channel: a connected :class:`BiologicChannel` (closed by :meth:`close`);
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
