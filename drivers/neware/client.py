"""NEWARE BTS cyclers through the BTS client API (XML over TCP), and their step files.

:class:`NewareClient` speaks the BTS 8 client API ("BTSAPI") that the BTS Client serves on
TCP port 502 once the API is activated: log in, discover the channels (``getdevinfo``),
read their status (``getchlstatus``) and live values (``inquire``), start a step file and
stop, and download the stored points incrementally (``inquiredf``, ``download`` by sequence
number, ``downloadStepLayer``). The step files themselves are written by
:mod:`drivers.neware.stepfile`.

Wire format (``anchors-and-wire-protocols.md`` §3.1, ``cyclers-data-formats.md`` §1.2, from
aurora-neware ``aurora_neware/neware.py`` and the replies captured from a real BTS 8.0 in
its ``tests/mocks.py``):

* request: ``<?xml version="1.0" encoding="UTF-8" ?><bts version="1.0">`` + body +
  ``</bts>`` + the terminator ``\\n\\n#\\r\\n``; one request in flight at a time;
* reply: an XML document ``<bts version="1.0"><cmd>NAME_resp</cmd>…</bts>`` followed by the
  same terminator; the BTS spells two replies ``donwload_resp`` and ``donwloadlog_resp``;
* channels are addressed by ``ip devtype devid subdevid chlid`` (``Channelid`` with a capital
  C in ``getdevinfo``); a channel's "pipeline id" is ``devid-subdevid-chlid`` (aurora's);
* units on the wire: ``inquire`` and ``download`` give volts, amperes, A·h and W·h;
  ``inquire`` times are in seconds, ``download``/``downloadStepLayer`` times in ms.

Why our own client and not aurora-neware's ``NewareAPI`` (which the tests use, as an
independent client, against our simulator): ``NewareAPI`` downloads the *last n* points, not
from a sequence number, so it cannot collect a running test incrementally or resume after a
crash; its socket has no timeout and its read loop never ends if the BTS drops the
connection; and ``start`` requires the step file to exist on the calling machine, while the
BTS reads it on the BTS PC. The requests we send have the same shape as aurora's, whose
replies are the captured ones.

Errors: :class:`~drivers.base.InstrumentLost` when the BTS cannot be reached, stops
answering (``timeout_s``, 30 s by default: the API's own limit per command) or sends
something that is not a reply; :class:`~drivers.base.InstrumentError` when it refuses a
command or a channel is unknown. Both name the address ``host:port``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from drivers.base import InstrumentError, InstrumentLost

__all__ = [
    "BTS_PORT", "TERMINATOR", "WORK_STATUSES", "NewareChannel", "LiveValues", "DataPoint", "StepRecord",
    "TestInfo", "NewareClient", "DownloadCursor", "CursorState", "TimedPoint",
]

#: TCP port of the BTS client API (§3.1 "Transport").
BTS_PORT = 502
#: End of every request and reply (aurora-neware ``NewareAPI.termination``).
TERMINATOR = b"\n\n#\r\n"
REQUEST_START = '<?xml version="1.0" encoding="UTF-8" ?><bts version="1.0">'
REQUEST_END = "</bts>"
#: ``getchlstatus`` / ``inquire`` work statuses (§3.1; the v1.19 protocol document also
#: lists synCtrl, ligth, waitTimeOut, waitStart).
WORK_STATUSES = ("working", "stop", "finish", "protect", "pause")
#: Most points one ``download`` returns (aurora-neware's chunk; the v1.19 document's maximum).
MAX_DOWNLOAD_COUNT = 1000
#: Reply names, including the BTS's own spellings (aurora-neware ``tests/mocks.py``).
_REPLY_NAMES = {"download": ("donwload_resp", "download_resp"), "downloadlog": ("donwloadlog_resp", "downloadlog_resp")}


@dataclass(frozen=True)
class NewareChannel:
    """One channel of a BTS: its address in the API."""

    ip: str
    devtype: int
    devid: int
    subdevid: int
    chlid: int

    @property
    def pipeline_id(self) -> str:
        """``devid-subdevid-chlid``, e.g. ``21-1-3`` (aurora-neware's pipeline id)."""
        return f"{self.devid}-{self.subdevid}-{self.chlid}"

    def _attrs(self, *, ip: bool = True) -> str:
        head = f'ip="{_escape(self.ip)}" ' if ip else ""
        return f'{head}devtype="{self.devtype}" devid="{self.devid}" subdevid="{self.subdevid}" chlid="{self.chlid}"'


@dataclass(frozen=True)
class LiveValues:
    """A channel's latest values (``inquire``). The BTS refreshes them every few seconds
    (§3.1: "not fresher than ~5 s"). ``step_id``/``step_type`` are None when the channel is
    not running (``step_type="--"`` on the wire). Step types: ``cc`` (CC charge), ``dc`` (CC
    discharge), ``rest``, ``cv`` …"""

    channel: NewareChannel
    workstatus: str
    cycle_id: int
    step_id: int | None
    step_type: str | None
    barcode: str
    current_A: float
    voltage_V: float
    capacity_Ah: float
    energy_Wh: float
    total_time_s: float
    step_time_s: float
    log_code: int


@dataclass(frozen=True)
class DataPoint:
    """One stored point (``download``). ``seq_id`` is 1-based and counts the test's points;
    ``step_time_s`` is the time since the step began (the wire's ``testtime``, in ms: in the
    captured reply it is 10 h at step 24, cycle 29 of a 25-day test); ``capacity_Ah`` and
    ``energy_Wh`` are the step's, unsigned; ``current_A`` is signed (+ charge)."""

    seq_id: int
    step_id: int
    cycle_id: int
    step_type: str
    step_time_s: float
    datetime: str
    """``YYYY-MM-DD hh:mm:ss`` local time of the BTS PC (the wire's ``atime``)."""
    voltage_V: float
    current_A: float
    capacity_Ah: float
    energy_Wh: float


@dataclass(frozen=True)
class StepRecord:
    """One executed step (``downloadStepLayer``): points ``start_seq_id``…``end_seq_id``;
    ``step_index`` counts executed steps from 1, ``step_id`` is the step file's Step_ID."""

    start_seq_id: int
    end_seq_id: int
    step_index: int
    step_id: int
    cycle_id: int
    step_type: str
    step_time_s: float
    end_datetime: str
    start_voltage_V: float
    end_voltage_V: float
    start_current_A: float
    end_current_A: float
    capacity_Ah: float
    energy_Wh: float


@dataclass(frozen=True)
class TestInfo:
    """``inquiredf``: the channel's latest test and how many points it has stored."""

    test_id: int
    count: int


def _escape(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


class NewareClient:
    """A client of one BTS client API endpoint.

    Args:
        host, port: where the BTS Client listens (port 502 on the BTS PC).
        username, password: the BTS login (``connect``); take them from the station file.
        timeout_s: longest wait for one reply (s).

    Use as a context manager or call :meth:`connect` / :meth:`close`. Thread-safe: requests
    are serialised, as the API requires.
    """

    def __init__(self, host: str, port: int = BTS_PORT, *, username: str, password: str,
                 timeout_s: float = 30.0) -> None:
        self.host = host
        self.port = port
        self.address = f"{host}:{port}"
        self._username = username
        self._password = password
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._rest = b""
        self._lock = threading.Lock()
        self.channels: dict[str, NewareChannel] = {}
        """Channels found by :meth:`discover`, by pipeline id."""

    # -- connection ------------------------------------------------------------------------
    def connect(self) -> None:
        """Open the TCP connection, log in and discover the channels.

        Raises InstrumentLost if the BTS cannot be reached, InstrumentError if it refuses
        the login or reports no channels.
        """
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise InstrumentLost(self.address, f"cannot connect: {exc.strerror or exc}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._rest = b""
        reply = self.request(
            f"<cmd>connect</cmd><username>{_escape(self._username)}</username>"
            f"<password>{_escape(self._password)}</password><type>bfgs</type>", "connect")
        if (reply.findtext("result") or "").strip() != "ok":
            self.close()
            raise InstrumentError(self.address, "the BTS refused the login (connect_resp is not ok)")
        self.discover()

    def close(self) -> None:
        """Close the connection (a running test carries on in the cycler)."""
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> NewareClient:
        self.connect()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(self, body: str, command: str) -> Element:
        """Send one request body (the XML between ``<bts>`` and ``</bts>``) and return the
        parsed ``<bts>`` reply, checked to be ``command``'s reply.

        Raises InstrumentLost on timeout, a dropped connection or a reply that is not XML or
        not the expected reply.
        """
        with self._lock:
            if self._sock is None:
                raise InstrumentLost(self.address, "not connected")
            frame = (REQUEST_START + body + REQUEST_END).encode("utf-8") + TERMINATOR
            try:
                self._sock.sendall(frame)
                raw = self._read_frame(command)
            except TimeoutError:
                self.close()
                raise InstrumentLost(self.address, f"no reply to {command} within {self.timeout_s:g} s") from None
            except OSError as exc:
                self.close()
                raise InstrumentLost(self.address, f"connection lost during {command}: {exc.strerror or exc}") from None
        try:
            root = SafeET.fromstring(raw)
        except SafeET.ParseError as exc:
            raise InstrumentLost(self.address, f"reply to {command} is not XML ({exc})") from None
        name = (root.findtext("cmd") or "").strip()
        if name not in _REPLY_NAMES.get(command, (f"{command}_resp",)):
            raise InstrumentLost(self.address, f"expected the reply to {command}, got {name or 'no <cmd>'!r}")
        return root

    def _read_frame(self, command: str) -> bytes:
        """One reply: up to ``</bts>``, once the ``#\\r\\n`` ending the terminator follows."""
        assert self._sock is not None
        buf = self._rest
        while True:
            end = buf.find(b"</bts>")
            if end >= 0:
                tail = buf.find(b"#\r\n", end)
                if tail >= 0:
                    self._rest = buf[tail + 3:]
                    return buf[:end + len(b"</bts>")]
            chunk = self._sock.recv(65536)
            if not chunk:
                raise OSError(f"the BTS closed the connection during {command}")
            buf += chunk

    # -- channels --------------------------------------------------------------------------
    def discover(self) -> dict[str, NewareChannel]:
        """``getdevinfo``: every channel of the BTS, by pipeline id (also kept in
        :attr:`channels`). Raises InstrumentError if the BTS lists none."""
        reply = self.request("<cmd>getdevinfo</cmd>", "getdevinfo")
        found = {}
        for el in reply.iterfind("middle/channel"):
            channel = NewareChannel(ip=el.get("ip", ""), devtype=_int(el, "devtype", self.address),
                                    devid=_int(el, "devid", self.address),
                                    subdevid=_int(el, "subdevid", self.address),
                                    chlid=_int(el, "Channelid", self.address))
            found[channel.pipeline_id] = channel
        if not found:
            raise InstrumentError(self.address, "the BTS lists no channels (are the devices online in BTS Client?)")
        self.channels = found
        return found

    def channel(self, pipeline_id: str) -> NewareChannel:
        """The channel ``devid-subdevid-chlid``; InstrumentError if the BTS has none such."""
        try:
            return self.channels[pipeline_id]
        except KeyError:
            known = ", ".join(list(self.channels)[:8]) + (" …" if len(self.channels) > 8 else "")
            raise InstrumentError(self.address, f"no channel {pipeline_id!r} (channels: {known or 'none'})") from None

    def _resolve(self, channels: Iterable[NewareChannel | str] | NewareChannel | str | None) -> list[NewareChannel]:
        if channels is None:
            return list(self.channels.values())
        if isinstance(channels, (NewareChannel, str)):
            channels = [channels]
        return [c if isinstance(c, NewareChannel) else self.channel(c) for c in channels]

    def _per_channel(self, command: str, items: Sequence[str], expected: int) -> list[Element]:
        reply = self.request(f'<cmd>{command}</cmd><list count="{len(items)}">{"".join(items)}</list>', command)
        elements = list(reply.find("list") if reply.find("list") is not None else [])
        if len(elements) != expected:
            raise InstrumentLost(self.address, f"{command}: {len(elements)} replies for {expected} channels")
        return elements

    # -- status and live values --------------------------------------------------------------
    def status(self, channels: Iterable[NewareChannel | str] | NewareChannel | str | None = None) -> dict[str, str]:
        """``getchlstatus``: work status (one of :data:`WORK_STATUSES`) by pipeline id (all
        channels by default). Replies are matched to the request by order: the BTS sometimes
        echoes a wrong ``subdevid`` (aurora-neware's workaround)."""
        chans = self._resolve(channels)
        elements = self._per_channel("getchlstatus", [f"<status {c._attrs()}>true</status>" for c in chans], len(chans))
        return {c.pipeline_id: (el.text or "").strip() for c, el in zip(chans, elements)}

    def inquire(self, channels: Iterable[NewareChannel | str] | NewareChannel | str | None = None) -> dict[str, LiveValues]:
        """``inquire``: live values by pipeline id (all channels by default)."""
        chans = self._resolve(channels)
        items = [f'<inquire {c._attrs()} aux="0" barcode="1">true</inquire>' for c in chans]
        elements = self._per_channel("inquire", items, len(chans))
        out = {}
        for c, el in zip(chans, elements):
            step_type = el.get("step_type", "--")
            out[c.pipeline_id] = LiveValues(
                channel=c, workstatus=el.get("workstatus", ""), cycle_id=_int(el, "cycle_id", self.address),
                step_id=_int(el, "step_id", self.address) if el.get("step_id") is not None else None,
                step_type=None if step_type == "--" else step_type, barcode=el.get("barcode", ""),
                current_A=_float(el, "current", self.address), voltage_V=_float(el, "voltage", self.address),
                capacity_Ah=_float(el, "capacity", self.address), energy_Wh=_float(el, "energy", self.address),
                total_time_s=_float(el, "totaltime", self.address), step_time_s=_float(el, "relativetime", self.address),
                log_code=_int(el, "log_code", self.address))
        return out

    # -- start and stop ---------------------------------------------------------------------
    def start(self, channel: NewareChannel | str, step_file_path: str, barcode: str, *,
              remark: str | None = None, backup_dir: str | None = None) -> None:
        """``start``: run the step file at ``step_file_path`` *on the BTS PC* on ``channel``,
        labelled ``barcode``. With ``backup_dir`` (a folder on the BTS PC) the BTS also backs
        the data up there (``filetype="0"``: .nda/.ndax; every 720 min while running).

        Raises InstrumentError if the BTS refuses (``false``: e.g. the channel is running,
        the file is missing or invalid).
        """
        chan = self._resolve(channel)[0]
        extra = f' remark="{_escape(remark)}"' if remark else ""
        item = f'<start {chan._attrs()} barcode="{_escape(barcode)}"{extra}>{_escape(step_file_path)}</start>'
        if backup_dir is not None:
            item += (f'<backup backupdir="{_escape(backup_dir)}" remotedir="" filenametype="0" customfilename="" '
                     'addtimewhenrepeat="0" createdirbydate="0" filetype="0" backupontime="1" '
                     'backupontimeinterval="720" backupfree="1" />')
        reply = self.request(f'<cmd>start</cmd><list count="1">{item}</list>', "start")
        results = [el for el in reply.iterfind("list/start")]
        if len(results) != 1 or (results[0].text or "").strip() != "ok":
            raise InstrumentError(self.address, f"channel {chan.pipeline_id}: the BTS refused to start {step_file_path!r}")

    def stop(self, channels: Iterable[NewareChannel | str] | NewareChannel | str) -> None:
        """``stop`` the channels' tests. Raises InstrumentError naming the channels the BTS
        refused (a channel that is not running answers ``false``)."""
        chans = self._resolve(channels)
        elements = self._per_channel("stop", [f"<stop {c._attrs()}>true</stop>" for c in chans], len(chans))
        refused = [c.pipeline_id for c, el in zip(chans, elements) if (el.text or "").strip() != "ok"]
        if refused:
            raise InstrumentError(self.address, f"the BTS refused to stop channel(s) {', '.join(refused)}")

    def clear_flag(self, channel: NewareChannel | str) -> bool:
        """``clearflag``: clear the channel's alarm flag (after a protection trip); True if
        the BTS cleared one."""
        chan = self._resolve(channel)[0]
        elements = self._per_channel("clearflag", [f"<clearflag {chan._attrs()}>true</clearflag>"], 1)
        return (elements[0].text or "").strip() == "ok"

    # -- stored data ------------------------------------------------------------------------
    def test_info(self, channel: NewareChannel | str, test_id: int = 0) -> TestInfo:
        """``inquiredf``: the test id (``test_id=0``: the latest test) and its point count."""
        chan = self._resolve(channel)[0]
        el = self._per_channel("inquiredf", [f'<chl {chan._attrs(ip=False)} testid="{int(test_id)}" />'], 1)[0]
        return TestInfo(test_id=_int(el, "testid", self.address), count=_int(el, "count", self.address))

    def download(self, channel: NewareChannel | str, start_seq_id: int, count: int = MAX_DOWNLOAD_COUNT,
                 test_id: int = 0) -> list[DataPoint]:
        """``download``: up to ``count`` (≤ 1000) stored points from sequence number
        ``start_seq_id`` (1-based) of test ``test_id`` (0 = the latest)."""
        if not 1 <= count <= MAX_DOWNLOAD_COUNT or start_seq_id < 1:
            raise ValueError(f"download: start_seq_id must be >= 1 and count in 1..{MAX_DOWNLOAD_COUNT}")
        chan = self._resolve(channel)[0]
        reply = self.request(
            f'<cmd>download</cmd><download {chan._attrs(ip=False)} auxid="0" testid="{int(test_id)}" '
            f'startpos="{int(start_seq_id)}" count="{int(count)}"/>', "download")
        a = self.address
        return [DataPoint(seq_id=_int(el, "seqid", a), step_id=_int(el, "stepid", a), cycle_id=_int(el, "cycleid", a),
                          step_type=el.get("steptype", ""), step_time_s=_float(el, "testtime", a) / 1000.0,
                          datetime=el.get("atime", ""), voltage_V=_float(el, "volt", a), current_A=_float(el, "curr", a),
                          capacity_Ah=_float(el, "cap", a), energy_Wh=_float(el, "eng", a))
                for el in reply.iterfind("list/data")]

    def steps(self, channel: NewareChannel | str, test_id: int = 0) -> list[StepRecord]:
        """``downloadStepLayer``: one record per executed step of test ``test_id``."""
        chan = self._resolve(channel)[0]
        reply = self.request(f'<cmd>downloadStepLayer</cmd><downloadStepLayer {chan._attrs(ip=False)} '
                             f'testid="{int(test_id)}" />', "downloadStepLayer")
        a = self.address
        return [StepRecord(start_seq_id=_int(el, "startseqid", a), end_seq_id=_int(el, "endseqid", a),
                           step_index=_int(el, "stepindex", a), step_id=_int(el, "stepid", a),
                           cycle_id=_int(el, "cycleid", a), step_type=el.get("steptype", ""),
                           step_time_s=_float(el, "steptime", a) / 1000.0, end_datetime=el.get("endatime", ""),
                           start_voltage_V=_float(el, "startvolt", a), end_voltage_V=_float(el, "endvolt", a),
                           start_current_A=_float(el, "startcurr", a), end_current_A=_float(el, "endcurr", a),
                           capacity_Ah=_float(el, "cap", a), energy_Wh=_float(el, "eng", a))
                for el in reply.iterfind("list/data")]


def _attribute(el: Element, name: str, address: str) -> str:
    value = el.get(name)
    if value is None:
        raise InstrumentLost(address, f"<{el.tag}> in the reply has no {name!r}")
    return value


def _parsed(el: Element, name: str, address: str, parse: type[int] | type[float], what: str) -> int | float:
    value = _attribute(el, name, address)
    try:
        return parse(value)
    except ValueError:
        raise InstrumentLost(address, f"<{el.tag} {name}={value!r}> is not {what}") from None


def _int(el: Element, name: str, address: str) -> int:
    """Attribute ``name`` of ``el`` as an integer; InstrumentLost if missing or not one."""
    return int(_parsed(el, name, address, int, "an integer"))


def _float(el: Element, name: str, address: str) -> float:
    """Attribute ``name`` of ``el`` as a number; InstrumentLost if missing or not one."""
    return float(_parsed(el, name, address, float, "a number"))


@dataclass(frozen=True)
class TimedPoint:
    """A :class:`DataPoint` with ``test_time_s``, the time since the test began (s)."""

    point: DataPoint
    test_time_s: float
    step_count: int = 0
    """The 1-based number of the executed step the point belongs to (``downloadStepLayer``'s
    ``stepindex``): it counts every step the channel entered, through loops."""


@dataclass(frozen=True)
class CursorState:
    """Where a :class:`DownloadCursor` stands; store it to resume after a restart."""

    test_id: int
    next_seq_id: int = 1
    completed_steps_s: float = 0.0
    """Summed duration of the steps finished before the last point's step (s)."""
    last_step_key: tuple[int, int] | None = None
    """(step_id, cycle_id) of the last point."""
    last_step_time_s: float = 0.0
    step_count: int = 0
    """Executed steps seen so far (the last point's :attr:`TimedPoint.step_count`)."""


class DownloadCursor:
    """Incremental download of one test's points, in order, each fetched once.

    The API gives each point its time within its step only; the cursor adds the durations of
    the finished steps to give ``test_time_s``. A step's duration is its last point's step
    time: the BTS stores a point when a step ends (the captured step layer's sequence
    numbers include each step's start and end points).
    """

    def __init__(self, client: NewareClient, channel: NewareChannel | str, state: CursorState) -> None:
        self.client = client
        self.channel = client._resolve(channel)[0]
        self.state = state

    @classmethod
    def latest(cls, client: NewareClient, channel: NewareChannel | str) -> DownloadCursor:
        """A cursor at the first point of the channel's latest test."""
        return cls(client, channel, CursorState(test_id=client.test_info(channel).test_id))

    @classmethod
    def after(cls, client: NewareClient, channel: NewareChannel | str, test_id: int, last_seq_id: int,
              last_test_time_s: float, last_step_count: int) -> DownloadCursor:
        """A cursor continuing after point ``last_seq_id`` of test ``test_id``, whose test time
        (s, since the test began) and step count a previous cursor gave as ``last_test_time_s``
        and ``last_step_count`` (e.g. read back from a run file after a crash). Downloads that
        point again for its step and step time. ``last_seq_id=0``: from the test's start.

        Raises InstrumentError if the BTS no longer has that point.
        """
        if last_seq_id <= 0:
            return cls(client, channel, CursorState(test_id=test_id))
        points = client.download(channel, last_seq_id, 1, test_id=test_id)
        if len(points) != 1 or points[0].seq_id != last_seq_id:
            raise InstrumentError(client.address, f"test {test_id} has no point {last_seq_id} to continue after")
        p = points[0]
        return cls(client, channel, CursorState(
            test_id, last_seq_id + 1, completed_steps_s=last_test_time_s - p.step_time_s,
            last_step_key=(p.step_id, p.cycle_id), last_step_time_s=p.step_time_s, step_count=last_step_count))

    def fetch(self, max_points: int | None = None) -> list[TimedPoint]:
        """The points stored since the last fetch (at most ``max_points``), in 1000-point
        requests; advances :attr:`state`."""
        s = self.state
        out: list[TimedPoint] = []
        completed, key, last_t, seq = s.completed_steps_s, s.last_step_key, s.last_step_time_s, s.next_seq_id
        count = s.step_count
        while max_points is None or len(out) < max_points:
            want = MAX_DOWNLOAD_COUNT if max_points is None else min(MAX_DOWNLOAD_COUNT, max_points - len(out))
            batch = self.client.download(self.channel, seq, want, test_id=s.test_id)
            for point in batch:
                if point.seq_id != seq:
                    raise InstrumentLost(self.client.address, f"download from {seq} returned point {point.seq_id}")
                new_key = (point.step_id, point.cycle_id)
                if key is None or new_key != key or point.step_time_s < last_t:
                    count += 1
                    if key is not None:
                        completed += last_t
                key, last_t, seq = new_key, point.step_time_s, seq + 1
                out.append(TimedPoint(point, completed + point.step_time_s, count))
            if len(batch) < want:
                break
        self.state = CursorState(s.test_id, seq, completed, key, last_t, count)
        return out
