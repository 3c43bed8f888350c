"""An AFM controller simulator speaking the Nanonis TCP programming interface, on loopback.

:class:`NanonisAfmSimulator` answers a subset of the Nanonis "TCP Programming Interface"
commands for a tip over a :class:`~drivers.sim.physics.tip.TipJunction` (the same object the
simulated 2400 measures, so the 2400 sees the junction under the tip); :class:`NanonisServer`
serves it on ``127.0.0.1:<port>`` (the Nanonis default is 6501, set in File › Settings ›
TCP Programming Interface).

Framing (anchors-and-wire-protocols.md §5; the vendor's ``nanonis_spm`` client,
``NanonisClass.send``/``parseError``): every message is a 40-byte header — command name
(32 bytes ASCII, zero-padded), body size (int32), send-response flag (uint16), 2 unused
bytes — then the body, big-endian. A response has the same header (send-response 0) and a
body of the return arguments followed by the error status (uint32, 0 = no error), the error
description size (int32) and the description. With send-response 0 nothing is sent back.

Commands (arguments → return arguments; lengths and units as in the Nanonis manual):

=========================  =======================  ======================================
``FolMe.XYPosSet``          X (m, f64), Y (m, f64),  moves the tip (instantly here); outside
                            wait (u32)               the scan field → error
``FolMe.XYPosGet``          wait (u32)               X, Y (m, f64)
``ZCtrl.OnOffSet``          on (u32)                 on: the Z controller lands the tip at
                                                     the setpoint force; off: holds Z
``ZCtrl.OnOffGet``          —                        status (u32)
``ZCtrl.Withdraw``          wait (u32), timeout      controller off, tip fully retracted
                            (ms, i32)
``ZCtrl.SetpntSet/Get``     setpoint (N, f32)        the contact force (deflection setpoint)
``ZCtrl.ZPosGet``           —                        Z (m, f32): topography in contact,
                                                     +1 µm withdrawn
``AutoApproach.OnOffSet``   on (u16)                 approach: the tip lands, controller on
``AutoApproach.OnOffGet``   —                        running (u16): always 0 (instant)
``Signals.NamesGet``        —                        names size (i32), count (i32), names
                                                     (each i32 length + bytes)
``Signals.ValGet``          index (i32), wait (u32)  value (f32) of :data:`SIGNALS`
=========================  =======================  ======================================

Any other command is answered with error status 1 and "unknown command".
"""

from __future__ import annotations

import logging
import math
import socket
import struct
import threading
from collections.abc import Callable

from drivers.sim.physics.tip import TipJunction
from drivers.sim.server import LoopbackServer

log = logging.getLogger(__name__)

HEADER = struct.Struct(">32siH2x")
#: Signals of :meth:`NanonisAfmSimulator` by index (Signals.NamesGet order).
SIGNALS = ("X (m)", "Y (m)", "Z (m)", "Deflection (N)", "Setpoint (N)")
WITHDRAWN_Z_M = 1e-6
#: Default contact force (N): seed 004's 400 nN [004 L129].
DEFAULT_SETPOINT_N = 400e-9


class CommandError(Exception):
    """A command the controller refuses: sent back as error status 1 with this text."""


class NanonisAfmSimulator:
    """The controller's state (tip position, Z controller, setpoint) over a tip junction.

    Positions are in metres on the wire, nm in the junction. Thread-safe: :meth:`handle` may
    be called from any number of connections.
    """

    def __init__(self, junction: TipJunction) -> None:
        self.junction = junction
        self.x_m = junction.x_nm * 1e-9
        self.y_m = junction.y_nm * 1e-9
        self.z_controller_on = False
        self.withdrawn = True
        self.setpoint_N = DEFAULT_SETPOINT_N
        self.commands_seen: list[str] = []
        self._lock = threading.Lock()
        self._handlers: dict[str, tuple[str, Callable[..., tuple]]] = {
            "FolMe.XYPosSet": (">ddI", self._xy_set),
            "FolMe.XYPosGet": (">I", lambda _wait: (">dd", self.x_m, self.y_m)),
            "ZCtrl.OnOffSet": (">I", self._z_on_off),
            "ZCtrl.OnOffGet": ("", lambda: (">I", int(self.z_controller_on))),
            "ZCtrl.Withdraw": (">Ii", self._withdraw),
            "ZCtrl.SetpntSet": (">f", self._setpoint),
            "ZCtrl.SetpntGet": ("", lambda: (">f", self.setpoint_N)),
            "ZCtrl.ZPosGet": ("", lambda: (">f", self._z_m())),
            "AutoApproach.OnOffSet": (">H", self._approach),
            "AutoApproach.OnOffGet": ("", lambda: (">H", 0)),
            "Signals.ValGet": (">iI", self._signal),
        }

    @property
    def in_contact(self) -> bool:
        return not self.withdrawn

    # -- commands ---------------------------------------------------------------------------
    def _xy_set(self, x_m: float, y_m: float, _wait: int) -> tuple:
        field_m = self.junction.sample.params.field_nm * 1e-9
        if not (0 <= x_m <= field_m and 0 <= y_m <= field_m) or math.isnan(x_m + y_m):
            raise CommandError(f"position ({x_m:.4g}, {y_m:.4g}) m outside the scan field 0..{field_m:.4g} m")
        self.x_m, self.y_m = x_m, y_m
        self.junction.move_to(x_m * 1e9, y_m * 1e9)
        return ()

    def _land(self) -> None:
        self.withdrawn = False
        self.z_controller_on = True
        self.junction.set_contact(True, self.setpoint_N * 1e9)

    def _z_on_off(self, on: int) -> tuple:
        if on:
            self._land()
        else:
            self.z_controller_on = False  # hold: the tip stays where it is
        return ()

    def _withdraw(self, _wait: int, _timeout_ms: int) -> tuple:
        self.z_controller_on = False
        self.withdrawn = True
        self.junction.set_contact(False)
        return ()

    def _setpoint(self, setpoint_N: float) -> tuple:
        if not 0 < setpoint_N < 1e-5:
            raise CommandError(f"setpoint {setpoint_N:.4g} N outside (0, 10 µN)")
        self.setpoint_N = setpoint_N
        if self.in_contact and self.z_controller_on:
            self.junction.set_contact(True, setpoint_N * 1e9)
        return ()

    def _approach(self, on: int) -> tuple:
        if on:
            self._land()
        return ()

    def _z_m(self) -> float:
        if self.withdrawn:
            return WITHDRAWN_Z_M
        # Topography: a groove a couple of nm deep along the grain boundaries (NS).
        d = self.junction.sample.distance_to_boundary_nm(self.x_m * 1e9, self.y_m * 1e9)
        return -2e-9 * math.exp(-d / 5.0)

    def _signal(self, index: int, _wait: int) -> tuple:
        if not 0 <= index < len(SIGNALS):
            raise CommandError(f"signal index {index} outside 0..{len(SIGNALS) - 1}")
        deflection = 0.0 if self.withdrawn else self.setpoint_N
        value = (self.x_m, self.y_m, self._z_m(), deflection, self.setpoint_N)[index]
        return (">f", value)

    def _names(self) -> bytes:
        encoded = b"".join(struct.pack(">i", len(n)) + n.encode() for n in SIGNALS)
        return struct.pack(">ii", len(encoded), len(SIGNALS)) + encoded

    # -- dispatch ---------------------------------------------------------------------------
    def handle(self, command: str, body: bytes) -> bytes:
        """Execute one request; return the response body (return arguments + error part)."""
        with self._lock:
            self.commands_seen.append(command)
            try:
                if command == "Signals.NamesGet":
                    return self._names() + _error_part(0, "")
                if command not in self._handlers:
                    raise CommandError(f"unknown command {command!r}")
                fmt, handler = self._handlers[command]
                try:
                    args = struct.unpack(fmt, body) if fmt else ()
                except struct.error:
                    raise CommandError(f"{command}: body of {len(body)} bytes does not match {fmt!r}") from None
                result = handler(*args)
                data = struct.pack(result[0], *result[1:]) if result else b""
                return data + _error_part(0, "")
            except CommandError as exc:
                return _error_part(1, str(exc))


def _error_part(status: int, message: str) -> bytes:
    text = message.encode()
    return struct.pack(">Ii", status, len(text)) + text


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        data = sock.recv(n - len(chunks))
        if not data:
            return None
        chunks += data
    return bytes(chunks)


class NanonisServer(LoopbackServer):
    """Serves a :class:`NanonisAfmSimulator` on a loopback TCP port in daemon threads
    (:class:`drivers.sim.server.LoopbackServer`), framed as the module doc says.

    Args:
        sim: the simulated controller.
        host: an IPv4 loopback address; anything else raises ValueError.
        port: 0 picks a free port (see :attr:`address`); a real Nanonis uses 6501.

    Raises:
        ValueError: ``host`` is not loopback.
        OSError: the port cannot be bound.
    """

    def __init__(self, sim: NanonisAfmSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim = sim
        super().__init__(host, port, name="nanonis-sim")

    def serve_connection(self, sock: socket.socket) -> None:
        """40-byte header and body in; with send-response set, the reply frame out."""
        while (header := _recv_exactly(sock, HEADER.size)) is not None:
            name, size, respond = HEADER.unpack(header)
            body = _recv_exactly(sock, size) if size > 0 else b""
            if body is None:
                return
            command = name.rstrip(b"\0").decode("ascii", "replace")
            try:
                reply = self.sim.handle(command, body)
            except Exception:  # a simulator bug must not kill the server
                log.exception("AFM simulator failed on %r", command)
                reply = _error_part(1, "internal simulator error")
            if respond:
                sock.sendall(HEADER.pack(name, len(reply), 0) + reply)

    @property
    def resource(self) -> str:
        """``host:port``, the address :class:`drivers.afm.NanonisAfm` takes."""
        return "{}:{}".format(*self.address)
