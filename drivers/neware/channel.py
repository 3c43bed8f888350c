"""A NEWARE BTS channel as a :class:`drivers.base.CyclerChannel`, and the program compiler
the delegated engine uses for it (:func:`compile_native`).

:class:`NewareCycler` follows one channel of a BTS through :class:`drivers.neware.NewareClient`:
``start`` writes the compiled step file where the BTS PC can read it and starts it;
``records`` downloads the stored points by sequence number (:class:`drivers.neware.DownloadCursor`)
and returns them as numpy columns. :func:`compile_native` is
:func:`drivers.neware.compiler.compile_program` to XML text.

Address: ``host:port/devid-subdevid-chlid`` (the BTS client API's endpoint and aurora-neware's
pipeline id), e.g. ``127.0.0.1:502/1-1-3``; the port defaults to 502.

The NEWARE API has no immediate pause (``setpause`` schedules one at a later cycle or step,
``anchors-and-wire-protocols.md`` §3.1), so :attr:`NewareCycler.can_pause` is False.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath, PureWindowsPath

import numpy as np

from drivers.base import CYCLER_RECORD_COLUMNS, CyclerStatus, InstrumentError, ProgramLike
from drivers.neware.client import BTS_PORT, CursorState, DownloadCursor, NewareClient, TimedPoint
from drivers.neware.compiler import compile_program

__all__ = ["NATIVE_FORMAT", "compile_native", "parse_address", "NewareCycler"]

#: Name of the native program format, as stored in run files.
NATIVE_FORMAT = "neware-step-xml"
#: ``getchlstatus`` work status → :data:`drivers.base.CYCLER_STATES`. Others (the v1.19
#: document's synCtrl, waitTimeOut, waitStart …) count as running: the test is not over.
_STATES = {"working": "running", "pause": "paused", "finish": "finished", "protect": "protection", "stop": "stopped"}


def compile_native(program: ProgramLike, *, remark: str = "") -> str:
    """The NEWARE step file (XML text) that runs ``program`` (any :class:`drivers.base.ProgramLike`,
    e.g. ``labctl.steps.StepProgram``); StepFileError names a step NEWARE cannot express."""
    return compile_program(program, remark=remark).to_xml()


def parse_address(address: str) -> tuple[str, int, str]:
    """``host[:port]/devid-subdevid-chlid`` → (host, port, pipeline id).

    Raises ValueError with the expected form.
    """
    match = re.fullmatch(r"\s*([^:/\s]+)(?::(\d+))?/(\d+-\d+-\d+)\s*", address)
    if not match:
        raise ValueError(f"{address!r} is not host:port/devid-subdevid-chlid (e.g. 127.0.0.1:502/1-1-3)")
    host, port, pipeline = match.groups()
    return host, int(port) if port else BTS_PORT, pipeline


class NewareCycler:
    """One channel of a NEWARE BTS, followed by sequence number.

    Args:
        client: a connected client of the BTS (this object closes it in :meth:`close`).
        pipeline_id: the channel, ``devid-subdevid-chlid``.
        step_file_dir: where :meth:`start` writes step files; the BTS PC must read them.
        step_file_dir_on_bts: the same folder as the BTS PC names it (e.g. ``C:\\labctl``
            for a share mounted here); default: ``step_file_dir`` itself (BTS on this PC).

    Raises:
        InstrumentError: the BTS has no such channel.
    """

    can_pause = False

    def __init__(self, client: NewareClient, pipeline_id: str, *, step_file_dir: str | Path,
                 step_file_dir_on_bts: str | None = None) -> None:
        self.client = client
        self.channel = client.channel(pipeline_id)
        self.address = f"{client.address}/{pipeline_id}"
        self.step_file_dir = Path(step_file_dir)
        self.step_file_dir_on_bts = step_file_dir_on_bts
        self.test_id: int | None = None
        self._cursor: DownloadCursor | None = None

    @classmethod
    def open(cls, address: str, *, username: str, password: str, timeout_s: float = 30.0,
             step_file_dir: str | Path, step_file_dir_on_bts: str | None = None) -> NewareCycler:
        """Connect to the channel at ``address`` (``host:port/devid-subdevid-chlid``).

        Raises ValueError for a malformed address, InstrumentLost if the BTS cannot be
        reached, InstrumentError if it refuses the login or has no such channel.
        """
        host, port, pipeline = parse_address(address)
        client = NewareClient(host, port, username=username, password=password, timeout_s=timeout_s)
        client.connect()
        try:
            return cls(client, pipeline, step_file_dir=step_file_dir, step_file_dir_on_bts=step_file_dir_on_bts)
        except BaseException:
            client.close()
            raise

    @property
    def idn(self) -> str:
        """``NEWARE BTS at host:port, channel devid-subdevid-chlid (device type N): <status>``."""
        state = self.client.status(self.channel).get(self.channel.pipeline_id, "?")
        return (f"NEWARE BTS at {self.client.address}, channel {self.channel.pipeline_id} "
                f"(device type {self.channel.devtype}): {state}")

    # -- the CyclerChannel interface --------------------------------------------------------
    def start(self, native_program: str, label: str) -> int:
        """Write ``native_program`` to ``<step_file_dir>/<label>.xml`` and start it, with
        ``label`` as the barcode; returns the new test id."""
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", label) or "labctl"
        self.step_file_dir.mkdir(parents=True, exist_ok=True)
        local = self.step_file_dir / f"{name}.xml"
        local.write_text(native_program, encoding="utf-8")
        remote = str(local) if self.step_file_dir_on_bts is None else str(_join(self.step_file_dir_on_bts, local.name))
        before = self.client.test_info(self.channel).test_id
        self.client.start(self.channel, remote, label)
        test_id = self.client.test_info(self.channel).test_id
        if test_id == before:
            raise InstrumentError(self.address, f"the BTS accepted the start but reports no new test (still {before})")
        self.test_id = test_id
        self._cursor = DownloadCursor(self.client, self.channel, CursorState(test_id=test_id))
        return test_id

    def attach(self, test_id: int, last_seq_id: int, last_test_time_s: float, last_step_count: int,
               native_program: str = "") -> None:
        if test_id == 0:  # the run died before its first point was stored: the channel's latest test
            test_id = self.client.test_info(self.channel).test_id
        self._cursor = DownloadCursor.after(self.client, self.channel, test_id, last_seq_id, last_test_time_s,
                                            last_step_count)
        self.test_id = test_id

    def status(self) -> CyclerStatus:
        work = self.client.status(self.channel)[self.channel.pipeline_id]
        latest = self.client.test_info(self.channel).test_id
        if self.test_id is not None and latest != self.test_id:
            return CyclerStatus("stopped", f"the channel has moved on to test {latest} (status {work})")
        return CyclerStatus(_STATES.get(work, "running"), work)

    def records(self, max_points: int) -> dict[str, np.ndarray]:
        if self._cursor is None:
            raise InstrumentError(self.address, "no test to follow (start or attach first)")
        return _columns(self._cursor.fetch(max_points))

    def stop(self) -> None:
        self.client.stop(self.channel)

    def pause(self) -> None:
        raise InstrumentError(self.address, "the NEWARE BTS API cannot pause a running test at once")

    def resume(self) -> None:
        raise InstrumentError(self.address, "the NEWARE BTS API cannot pause a running test at once")

    def reconnect(self) -> None:
        self.client.close()
        self.client.connect()

    def close(self) -> None:
        self.client.close()


def _join(directory: str, name: str) -> PurePath:
    """``directory/name`` in the BTS PC's own path syntax (Windows if it looks like it)."""
    windows = "\\" in directory or re.match(r"^[A-Za-z]:", directory) is not None
    return (PureWindowsPath if windows else PurePath)(directory) / name


def _columns(points: list[TimedPoint]) -> dict[str, np.ndarray]:
    """Downloaded points as :data:`drivers.base.CYCLER_RECORD_COLUMNS`. NEWARE's capacity is the
    step's |charge| in A·h; it takes the sign of the step's current."""
    n = len(points)
    out = {name: np.empty(n, dtype) for name, dtype in CYCLER_RECORD_COLUMNS}
    if n:
        seq, t, v, i, count, q = (out[k] for k in ("seq_id", "test_time_s", "voltage_V", "current_A", "step_count",
                                                    "step_charge_C"))
        for k, tp in enumerate(points):
            p = tp.point
            seq[k] = p.seq_id
            t[k] = tp.test_time_s
            v[k] = p.voltage_V
            i[k] = p.current_A
            count[k] = tp.step_count
            q[k] = p.capacity_Ah * 3600.0
        q *= np.sign(i)
    return out
