"""A simulated NEWARE BTS: the BTS client API (XML over TCP) in front of N simulated channels.

:class:`NewareBtsSimulator` answers the API's requests the way a BTS 8 does — same reply
names (including the BTS's misspelt ``donwload_resp`` and ``donwloadlog_resp``), same
element and attribute layout, number formats, ``\\r\\n`` line ends and two-space indents,
and the ``\\n\\n#\\r\\n`` terminator — taken from the replies aurora-neware captured from a
real BTS 8.0 (``tests/mocks.py``) and summarised in ``anchors-and-wire-protocols.md`` §3.1
and ``cyclers-data-formats.md`` §1.2. Each channel runs an uploaded step file on its own
Li | SSE | Li cell (:mod:`drivers.sim.neware_channel`) in the simulated time of ``now``.
:class:`BtsServer` serves it on a loopback TCP port.

Commands: ``connect``, ``getdevinfo``, ``getchlstatus``, ``inquire``, ``inquiredf``,
``start`` (the element's text is a step-file path on this machine, read at start),
``stop``, ``download``, ``downloadlog``, ``downloadStepLayer``, ``light``, ``clearflag``.

Choices where the capture says nothing (a real BTS may differ): credentials are not
checked; a request for an unknown channel gets that element back with the text ``false``;
an unknown command gets ``<cmd>NAME_resp</cmd><result>false</result>``; a never-used channel
reports ``stop``; ``getdevinfo``'s and ``inquiredf``'s ``true``/``false`` is true when the
channel is not working (which fits every channel of the capture); ``clearflag`` answers
``ok`` after a protection trip (and clears the flag), else ``false``; ``downloadlog`` holds
only the two log codes seen in the capture (100000 test start, 100001 test finished).
Channel layout: ``devtype`` 27 (BTS 8), one ``devid``, units (``subdevid``) of 8 channels.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET
from numpy import format_float_positional

from drivers.sim.neware_channel import ChannelModel
from drivers.sim.neware_stepfile import SimStepFileError, read_step_file
from drivers.sim.physics.cell import CellParameters, SymmetricCell, cells_for_channels
from drivers.sim.server import LoopbackServer

log = logging.getLogger(__name__)

TERMINATOR = b"\n\n#\r\n"
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\r\n<bts version="1.0">\r\n'
_REPLY_NAME = {"download": "donwload_resp", "downloadlog": "donwloadlog_resp"}
#: Upper limit on points per ``download`` (v1.19 protocol document, via §3.1).
MAX_DOWNLOAD_COUNT = 1000

ChannelKey = tuple[int, int, int, int]


def _escape(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _attrs(pairs: Sequence[tuple[str, object]]) -> str:
    return " ".join(f'{name}="{_escape(value)}"' for name, value in pairs)


def _short(value: float, decimals: int) -> str:
    """``inquire`` numbers: rounded, trailing zeros dropped (``3.456``, ``-0.0003``, ``0``)."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _full(value: float) -> str:
    """``download`` numbers: 15 significant digits, positional (``-0.000295051460852847``)."""
    text = format_float_positional(value, precision=15, unique=False, fractional=False, trim="-")
    return "0" if text == "-0" else text


class NewareBtsSimulator:
    """A BTS with ``channels`` channels, each with its own simulated cell.

    Args:
        channels: number of channels (1–256).
        cell: parameters of every channel's cell (channel k gets ``seed + k``), a sequence
            with one per channel, or None for the default Li | H.L.-LLZO | Li cell. A sequence
            may also hold cell objects (any :class:`drivers.sim.smu.Load`, e.g. a full cell of
            :mod:`drivers.sim.physics`), one per channel, each run by its channel as it is.
        now: simulated clock in seconds (share an accelerated clock with the client side to
            run faster than real time).
        devid: the device id of all channels.
        epoch: the wall date-time of simulated time ``now()`` at construction, for the
            ``atime`` fields (default: the present, to the second).

    :meth:`handle` answers one request frame and is thread-safe.
    """

    devtype = 27
    channels_per_unit = 8

    def __init__(self, channels: int = 8, *, cell: CellParameters | Sequence[Any] | None = None,
                 now: Callable[[], float] = time.monotonic, devid: int = 1,
                 epoch: datetime | None = None) -> None:
        if not 1 <= channels <= 256:
            raise ValueError(f"channels must be 1..256, got {channels}")
        params = cells_for_channels(cell, channels)
        self.now = now
        self.devid = devid
        self._t0 = now()
        self._epoch = (epoch or datetime.now()).replace(microsecond=0)
        self._lock = threading.RLock()
        self._next_test_id = 1
        self.channels: dict[ChannelKey, ChannelModel] = {}
        for k, p in enumerate(params):
            key = (self.devtype, devid, k // self.channels_per_unit + 1, k % self.channels_per_unit + 1)
            self.channels[key] = ChannelModel(SymmetricCell(p) if isinstance(p, CellParameters) else p)

    # -- public ----------------------------------------------------------------------------
    def channel(self, pipeline_id: str) -> ChannelModel:
        """The channel ``devid-subdevid-chlid`` (KeyError if none)."""
        devid, subdevid, chlid = (int(x) for x in pipeline_id.split("-"))
        return self.channels[(self.devtype, devid, subdevid, chlid)]

    def advance(self) -> None:
        """Run every channel up to ``now()`` (the firmware between requests)."""
        with self._lock:
            t = self.now()
            for ch in self.channels.values():
                ch.advance(t)

    def handle(self, frame: bytes) -> bytes:
        """Answer one request (``<?xml …?><bts>…</bts>``, without the terminator); the reply
        with its terminator."""
        try:
            root = SafeET.fromstring(frame)
            command = (root.findtext("cmd") or "").strip()
        except SafeET.ParseError:
            return self._reply("", '  <result>false</result>\r\n')
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            return self._reply(command, '  <result>false</result>\r\n')
        with self._lock:
            self.advance()
            return self._reply(command, handler(root))

    def _reply(self, command: str, body: str) -> bytes:
        name = _REPLY_NAME.get(command, f"{command}_resp")
        return (f"{_HEAD}  <cmd>{name}</cmd>\r\n{body}</bts>").encode("utf-8") + TERMINATOR

    # -- helpers ---------------------------------------------------------------------------
    def _key(self, el: Element) -> ChannelKey | None:
        try:
            return (int(el.get("devtype", "")), int(el.get("devid", "")), int(el.get("subdevid", "")),
                    int(el.get("chlid", "")))
        except ValueError:
            return None

    def _addr(self, key: ChannelKey, *, ip: bool = True) -> list[tuple[str, object]]:
        head = [("ip", "127.0.0.1")] if ip else []
        return head + [("devtype", key[0]), ("devid", key[1]), ("subdevid", key[2]), ("chlid", key[3])]

    @staticmethod
    def _list(items: list[str]) -> str:
        if not items:
            return '  <list count="0" />\r\n'
        return f'  <list count="{len(items)}">\r\n' + "".join(f"    {i}\r\n" for i in items) + "  </list>\r\n"

    def _per_channel(self, root: Element, tag: str, answer: Callable[[ChannelKey, ChannelModel, Element], str]) -> str:
        """One ``<tag …>text</tag>`` per requested channel; unknown channels answer false."""
        items = []
        for el in root.iterfind(f"list/{tag}"):
            key = self._key(el)
            ch = self.channels.get(key) if key else None
            if ch is None:
                echo = _attrs([(k, v) for k, v in el.attrib.items()])
                items.append(f"<{tag} {echo}>false</{tag}>")
            else:
                items.append(f"<{tag} {_attrs(self._addr(key))}>{answer(key, ch, el)}</{tag}>")
        return self._list(items)

    def _atime(self, test_start_s: float, test_time_s: float) -> str:
        moment = self._epoch + timedelta(seconds=test_start_s + test_time_s - self._t0)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def _test(self, ch: ChannelModel, el: Element):
        """The test a download names (``testid="0"``: the latest), or None."""
        try:
            test_id = int(el.get("testid", "0"))
        except ValueError:
            return None
        return ch.test if test_id == 0 else ch.tests.get(test_id)

    # -- commands --------------------------------------------------------------------------
    def _cmd_connect(self, root: Element) -> str:
        return "  <result>ok</result>\r\n"

    def _cmd_getdevinfo(self, root: Element) -> str:
        lines = ['  <serverip count="1">\r\n', '    <server ip="127.0.0.1" port="3306" />\r\n', "  </serverip>\r\n",
                 f'  <middle count="{len(self.channels)}">\r\n']
        for key, ch in self.channels.items():
            lines.append(f'    <channel {_attrs(self._addr(key)[:-1])} Channelid="{key[3]}">'
                         f'{"false" if ch.status == "working" else "true"}</channel>\r\n')
        lines.append("</middle>\r\n")
        return "".join(lines)

    def _cmd_getchlstatus(self, root: Element) -> str:
        items = []
        for el in root.iterfind("list/status"):
            key = self._key(el)
            ch = self.channels.get(key) if key else None
            if ch is None:
                items.append(f"<status {_attrs(list(el.attrib.items()))}>false</status>")
            else:
                items.append(f'<status {_attrs(self._addr(key))} reservepause="1">{ch.status}</status>')
        return self._list(items)

    def _cmd_inquire(self, root: Element) -> str:
        items = []
        for el in root.iterfind("list/inquire"):
            key = self._key(el)
            ch = self.channels.get(key) if key else None
            dev = "-".join(str(k) for k in key) + "-0" if key else "0-0-0-0-0"
            if ch is None:
                items.append(f'<inquire dev="{dev}">false</inquire>')
                continue
            v = ch.live()
            pairs: list[tuple[str, object]] = [("dev", dev), ("cycle_id", v["cycle_id"])]
            if v["step_id"] is not None:
                pairs.append(("step_id", v["step_id"]))
            pairs += [("step_type", v["step_type"] or "--"), ("workstatus", ch.status),
                      ("barcode", ch.test.barcode if ch.test else ""),
                      ("current", _short(v["current_A"], 4)), ("voltage", _short(v["voltage_V"], 4)),
                      ("capacity", _short(v["capacity_Ah"], 4)), ("energy", _short(v["energy_Wh"], 4)),
                      ("totaltime", _short(v["total_time_s"], 1)), ("relativetime", _short(v["step_time_s"], 1)),
                      ("open_or_close", 0), ("log_code", v["log_code"])]
            items.append(f"<inquire {_attrs(pairs)} />")
        return self._list(items)

    def _cmd_inquiredf(self, root: Element) -> str:
        items = []
        for el in root.iterfind("list/chl"):
            key = self._key(el)
            ch = self.channels.get(key) if key else None
            if ch is None:
                items.append(f"<chl {_attrs(list(el.attrib.items()))}>false</chl>")
                continue
            test = self._test(ch, el)
            pairs = self._addr(key, ip=False) + [("testid", test.test_id if test else 0),
                                                  ("count", len(test.points) if test else 0)]
            items.append(f'<chl {_attrs(pairs)}>{"false" if ch.status == "working" else "true"}</chl>')
        return self._list(items)

    def _cmd_start(self, root: Element) -> str:
        def answer(key: ChannelKey, ch: ChannelModel, el: Element) -> str:
            if ch.status == "working":
                return "false"
            path = (el.text or "").strip()
            try:
                program = read_step_file(path)
            except SimStepFileError as exc:
                log.info("start on %s refused: %s", key, exc)
                return "false"
            ch.start(program, self._next_test_id, el.get("barcode", ""), self.now())
            self._next_test_id += 1
            return "ok"

        return self._per_channel(root, "start", answer)

    def _cmd_stop(self, root: Element) -> str:
        def answer(key: ChannelKey, ch: ChannelModel, el: Element) -> str:
            if ch.status != "working":
                return "false"
            ch.stop(self.now())
            return "ok"

        return self._per_channel(root, "stop", answer)

    def _cmd_light(self, root: Element) -> str:
        return self._per_channel(root, "light", lambda key, ch, el: "ok")

    def _cmd_clearflag(self, root: Element) -> str:
        def answer(key: ChannelKey, ch: ChannelModel, el: Element) -> str:
            if not ch.flag:
                return "false"
            ch.flag = False
            return "ok"

        return self._per_channel(root, "clearflag", answer)

    def _download_target(self, root: Element, tag: str):
        el = root.find(tag)
        key = self._key(el) if el is not None else None
        ch = self.channels.get(key) if key else None
        return el, key, ch

    def _cmd_download(self, root: Element) -> str:
        el, key, ch = self._download_target(root, "download")
        if ch is None:
            return "  <result>false</result>\r\n"
        test = self._test(ch, el)
        try:
            start, count = int(el.get("startpos", "1")), int(el.get("count", "0"))
        except ValueError:
            start, count = 0, 0
        points = test.points[max(start, 1) - 1:max(start, 1) - 1 + min(max(count, 0), MAX_DOWNLOAD_COUNT)] \
            if test and start >= 1 else []
        echo = self._addr(key, ip=False) + [("testid", test.test_id if test else 0), ("startpos", el.get("startpos", "")),
                                             ("count", el.get("count", "")), ("auxid", el.get("auxid", "0"))]
        items = [f'<data {_attrs([("seqid", p.seq_id), ("stepid", p.step_id), ("cycleid", p.cycle_id), ("steptype", p.step_type), ("testtime", round(p.step_time_s * 1000)), ("atime", self._atime(test.start_s, p.test_time_s)), ("volt", _full(p.voltage_V)), ("curr", _full(p.current_A)), ("cap", _full(p.capacity_Ah)), ("eng", _full(p.energy_Wh))])} />'
                 for p in points]
        return f"  <download {_attrs(echo)} />\r\n" + self._list(items)

    def _cmd_downloadlog(self, root: Element) -> str:
        el, key, ch = self._download_target(root, "download")
        if ch is None:
            return "  <result>false</result>\r\n"
        test = self._test(ch, el)
        echo = self._addr(key, ip=False) + [("testid", test.test_id if test else 0), ("log_lever", el.get("log_lever", "0"))]
        items = [f'<data {_attrs([("seqid", seq), ("log_code", code), ("atime", self._atime(test.start_s, t))])} />'
                 for seq, code, t in (test.log if test else [])]
        return f"  <download {_attrs(echo)} />\r\n" + self._list(items)

    def _cmd_downloadStepLayer(self, root: Element) -> str:  # noqa: N802 (the API's spelling)
        el, key, ch = self._download_target(root, "downloadStepLayer")
        if ch is None:
            return "  <result>false</result>\r\n"
        test = self._test(ch, el)
        echo = self._addr(key, ip=False) + [("testid", test.test_id if test else 0)]
        items = [f'<data {_attrs([("startseqid", s.start_seq_id), ("endseqid", s.end_seq_id), ("stepindex", s.step_index), ("stepid", s.step_id), ("cycleid", s.cycle_id), ("steptype", s.step_type), ("steptime", round(s.step_time_s * 1000)), ("endatime", self._atime(test.start_s, s.end_test_time_s)), ("startvolt", _full(s.start_voltage_V)), ("endvolt", _full(s.end_voltage_V)), ("startcurr", _full(s.start_current_A)), ("endcurr", _full(s.end_current_A)), ("cap", _full(s.capacity_Ah)), ("eng", _full(s.energy_Wh)), ("dcir", 0)])} />'
                 for s in (test.steps if test else [])]
        return f"  <downloadStepLayer {_attrs(echo)} />\r\n" + self._list(items)


# -- transport -------------------------------------------------------------------------------

def split_frames(buffer: bytearray) -> list[bytes]:
    """Take the complete requests out of ``buffer``: each ends at ``</bts>``; the terminator
    that follows (aurora-neware sends ``\\n\\n#\\r\\n``, another public client ``#\\r\\n``)
    and any whitespace are dropped. Incomplete data stays in ``buffer``."""
    frames = []
    while True:
        start = 0
        while start < len(buffer) and buffer[start] in b" \t\r\n#":
            start += 1
        del buffer[:start]
        end = buffer.find(b"</bts>")
        if end < 0:
            return frames
        frames.append(bytes(buffer[:end + len(b"</bts>")]))
        del buffer[:end + len(b"</bts>")]


class BtsServer(LoopbackServer):
    """Serves a :class:`NewareBtsSimulator` on a loopback TCP port, in daemon threads
    (:class:`drivers.sim.server.LoopbackServer`); requests and replies are XML frames ending
    with :data:`TERMINATOR`.

    A background thread advances the channels every ``tick_s`` wall seconds, as the BTS's
    middle machines do whether or not a client asks, so catching up never delays a reply
    by much. Several clients may connect; each gets its own connection.

    Args:
        sim: the simulated BTS.
        host: an IPv4 loopback address (anything else raises ValueError).
        port: 0 picks a free port (see :attr:`address`); the real BTS uses 502.
    """

    def __init__(self, sim: NewareBtsSimulator, host: str = "127.0.0.1", port: int = 0, *,
                 tick_s: float = 0.05) -> None:
        self.sim = sim
        self._stop = threading.Event()
        super().__init__(host, port, name="neware-bts")
        self._tick_thread = threading.Thread(target=self._tick, args=(tick_s,),
                                             name=f"neware-firmware-{self.address[1]}", daemon=True)
        self._tick_thread.start()

    def _tick(self, tick_s: float) -> None:
        while not self._stop.wait(tick_s):
            try:
                self.sim.advance()
            except Exception:
                log.exception("NEWARE simulator failed advancing its channels")

    def serve_connection(self, sock: socket.socket) -> None:
        """Frames in (:func:`split_frames`), one reply frame out for each."""
        buffer = bytearray()
        while data := sock.recv(65536):
            buffer += data
            for frame in split_frames(buffer):
                try:
                    reply = self.sim.handle(frame)
                except Exception:
                    log.exception("NEWARE simulator failed on %r", frame[:200])
                    return
                sock.sendall(reply)

    def close(self) -> None:
        """Stop the channels' clock, stop listening and drop open connections."""
        self._stop.set()
        super().close()
        self._tick_thread.join(timeout=1.0)
