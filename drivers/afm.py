"""AFM controller I/O for c-AFM: move the tip, engage and withdraw, contact and deflection.

:class:`NanonisAfm` implements the capability interface the engine programs against,
:class:`drivers.base.TipPositioner`, over the Nanonis TCP programming interface (SPECS
Nanonis, default port 6501; anchors-and-wire-protocols.md §5), through
:class:`NanonisClient`, our framing of that protocol.

Why not the vendor's ``nanonis_spm`` client (PyPI): its licence forbids copying and
redistribution without SPECS' permission, it prints controller errors to stdout instead of
raising them, and it reads the 40-byte header with one ``recv`` (a short read on a busy link
breaks the framing). Our client speaks the same frames; the test suite checks the simulator
against ``nanonis_spm`` itself where it is installed.

Synchronisation with the 2400 is a software handshake: the engine moves the tip, engages,
waits until :attr:`~drivers.base.TipPositioner.in_contact`, then starts the 2400's sweep, and
moves on only after the sweep has been read back (a hardware trigger link is not needed at the sweep rates
of seed 004, which are not stated anyway).

Every wire failure is raised as :class:`~drivers.base.InstrumentLost` naming the address; a
command the controller refuses as :class:`~drivers.base.InstrumentError` with its text.
"""

from __future__ import annotations

import socket
import struct
import time

from drivers.base import InstrumentError, InstrumentLost, TipPositioner

__all__ = ["HEADER", "parse_address", "NanonisClient", "NanonisAfm"]

HEADER = struct.Struct(">32siH2x")


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` (optionally ``nanonis://host:port``) → (host, port).

    Raises:
        ValueError: not of that form, naming the address.
    """
    text = address.removeprefix("nanonis://")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"AFM address {address!r}: expected host:port, e.g. 127.0.0.1:6501")
    return host, int(port)


class NanonisClient:
    """One TCP connection to a Nanonis controller; :meth:`call` sends a command and returns
    its decoded return arguments.

    Args:
        address: ``host:port``.
        timeout_s: per reply.

    Raises:
        ValueError: malformed address.
        InstrumentLost: cannot connect.
    """

    def __init__(self, address: str, timeout_s: float = 10.0) -> None:
        self.address = address
        host, port = parse_address(address)
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise InstrumentLost(address, f"cannot connect: {exc.strerror or exc}") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _recv(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("connection closed by the controller")
            data += chunk
        return bytes(data)

    def request(self, command: str, body: bytes = b"") -> bytes:
        """Send ``command`` with ``body``; return the response body (with its error part).

        Raises:
            InstrumentLost: timeout, closed connection, or a response to another command.
        """
        name = command.encode("ascii")
        if len(name) > 32:
            raise ValueError(f"command name {command!r} longer than 32 bytes")
        try:
            self._sock.sendall(HEADER.pack(name, len(body), 1) + body)
            reply_name, size, _ = HEADER.unpack(self._recv(HEADER.size))
            reply = self._recv(size)
        except (OSError, ConnectionError) as exc:
            raise InstrumentLost(self.address, f"{command} failed: {type(exc).__name__}: {exc}") from None
        got = reply_name.rstrip(b"\0")
        if got != name:
            raise InstrumentLost(self.address, f"{command}: the response is for {got.decode('ascii', 'replace')!r}")
        return reply

    def call(self, command: str, arg_format: str = "", *args: float | int, returns: str = "") -> tuple:
        """Send a command with fixed-size arguments and decode fixed-size return arguments.

        ``arg_format`` / ``returns`` are :mod:`struct` formats without byte order (big-endian
        is implied), e.g. ``call("FolMe.XYPosSet", "ddI", x, y, 1)``.

        Raises:
            InstrumentError: the controller's error status is non-zero (its description).
            InstrumentLost: wire failure or a reply too short for ``returns``.
        """
        reply = self.request(command, struct.pack(">" + arg_format, *args) if arg_format else b"")
        n = struct.calcsize(">" + returns) if returns else 0
        if len(reply) < n + 8:
            raise InstrumentLost(self.address, f"{command}: reply of {len(reply)} bytes, expected ≥ {n + 8}")
        self.check(command, reply, n)
        return struct.unpack_from(">" + returns, reply, 0) if returns else ()

    def check(self, command: str, reply: bytes, offset: int) -> None:
        """Raise :class:`InstrumentError` if the error part at ``offset`` reports an error."""
        status, length = struct.unpack_from(">Ii", reply, offset)
        if status:
            text = reply[offset + 8:offset + 8 + length].decode("utf-8", "replace")
            raise InstrumentError(self.address, f"{command}: {text or f'error status {status}'}")

    def signal_names(self) -> list[str]:
        """``Signals.NamesGet``: the names of the signals, by index."""
        reply = self.request("Signals.NamesGet")
        try:
            size, count = struct.unpack_from(">ii", reply, 0)
            names, offset = [], 8
            for _ in range(count):
                (length,) = struct.unpack_from(">i", reply, offset)
                names.append(reply[offset + 4:offset + 4 + length].decode("utf-8", "replace"))
                offset += 4 + length
        except struct.error:
            raise InstrumentLost(self.address, "Signals.NamesGet: malformed reply") from None
        self.check("Signals.NamesGet", reply, offset)
        return names

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass


class NanonisAfm:
    """A Nanonis-controlled AFM as a :class:`drivers.base.TipPositioner`.

    Contact is read from the deflection signal (``Deflection (N)``, found by name with
    ``Signals.NamesGet``): in contact it sits at the Z controller's setpoint force. The
    setpoint is the tip force of the Hertzian contact (seed 004: 400 nN [004 L129]).

    Args:
        address: ``host:port`` of the controller's TCP programming interface.
        timeout_s: per reply.
        deflection_signal: name of the deflection signal in ``Signals.NamesGet``.

    Raises:
        ValueError: malformed address.
        InstrumentLost: cannot connect.
        InstrumentError: the controller has no signal called ``deflection_signal``.
    """

    def __init__(self, address: str, *, timeout_s: float = 10.0, deflection_signal: str = "Deflection (N)") -> None:
        self.address = address
        self._client = NanonisClient(address, timeout_s)
        names = self._client.signal_names()
        if deflection_signal not in names:
            self._client.close()
            raise InstrumentError(address, f"no signal {deflection_signal!r}; the controller has {names}")
        self._deflection_index = names.index(deflection_signal)
        self.idn = f"Nanonis TCP interface at {address}"

    def move_to_nm(self, x_nm: float, y_nm: float) -> None:
        """``FolMe.XYPosSet`` (waits for the end of the move)."""
        self._client.call("FolMe.XYPosSet", "ddI", x_nm * 1e-9, y_nm * 1e-9, 1)

    def position_nm(self) -> tuple[float, float]:
        x_m, y_m = self._client.call("FolMe.XYPosGet", "I", 1, returns="dd")
        return x_m * 1e9, y_m * 1e9

    def setpoint_nN(self) -> float:
        return self._client.call("ZCtrl.SetpntGet", returns="f")[0] * 1e9

    def deflection_nN(self) -> float:
        """``Signals.ValGet`` of the deflection signal, in nN (waits for fresh data)."""
        return self._client.call("Signals.ValGet", "iI", self._deflection_index, 1, returns="f")[0] * 1e9

    @property
    def in_contact(self) -> bool:
        """The deflection is at least half the setpoint force."""
        return self.deflection_nN() >= 0.5 * self.setpoint_nN()

    def engage(self, force_nN: float | None = None, timeout_s: float = 10.0) -> None:
        """Set the force setpoint (if given), switch the Z controller on, wait for contact.

        Raises:
            InstrumentError: no contact within ``timeout_s`` (the tip is withdrawn again).
        """
        if force_nN is not None:
            if not 0 < force_nN < 1e4:
                raise ValueError(f"{self.address}: force {force_nN:g} nN outside (0, 10 000) nN")
            self._client.call("ZCtrl.SetpntSet", "f", force_nN * 1e-9)
        self._client.call("ZCtrl.OnOffSet", "I", 1)
        deadline = time.monotonic() + timeout_s
        while not self.in_contact:
            if time.monotonic() > deadline:
                self.withdraw()
                raise InstrumentError(self.address, f"no contact within {timeout_s:g} s of engaging")
            time.sleep(0.01)

    def withdraw(self, timeout_s: float = 10.0) -> None:
        """``ZCtrl.Withdraw`` (wait until withdrawn), then check the controller is off.

        Raises:
            InstrumentError: the Z controller is still on or the tip still in contact.
        """
        self._client.call("ZCtrl.Withdraw", "Ii", 1, int(timeout_s * 1000))
        if self._client.call("ZCtrl.OnOffGet", returns="I")[0] or self.in_contact:
            raise InstrumentError(self.address, "tip still in contact after ZCtrl.Withdraw")

    def close(self) -> None:
        self._client.close()
