"""The loopback-server scaffold every wire simulator shares (drivers.sim.server): loopback only,
one connection served beside another, and a close that cuts open connections and frees the port."""

from __future__ import annotations

import socket
import struct

import pytest

from drivers.sim.afm import NanonisAfmSimulator, NanonisServer
from drivers.sim.keithley2400 import Keithley2400Simulator, TcpServer
from drivers.sim.neware import TERMINATOR, BtsServer, NewareBtsSimulator
from drivers.sim.physics.tip import TipJunction
from drivers.sim.server import loopback_ipv4
from drivers.sim.smu import Resistor

pytestmark = pytest.mark.timeout(20)

_BTS_REQUEST = b'<?xml version="1.0" encoding="UTF-8" ?><bts version="1.0"><cmd>getdevinfo</cmd></bts>'
_NANONIS_HEADER = struct.Struct(">32siH2x")

#: name -> (make a server, one request, how its reply ends)
SERVERS = {
    "keithley2400": (lambda **kw: TcpServer(Keithley2400Simulator(Resistor(10.0)), **kw), b"*IDN?\n", b"\n"),
    "neware": (lambda **kw: BtsServer(NewareBtsSimulator(1), **kw), _BTS_REQUEST + TERMINATOR, TERMINATOR),
    "nanonis": (lambda **kw: NanonisServer(NanonisAfmSimulator(TipJunction()), **kw),
                _NANONIS_HEADER.pack(b"ZCtrl.OnOffGet", 0, 1), None),
}


def _exchange(sock: socket.socket, request: bytes, end: bytes | None) -> bytes:
    sock.sendall(request)
    reply = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection instead of replying"
        reply += chunk
        if end is not None and reply.endswith(end):
            return reply
        if end is None and len(reply) >= _NANONIS_HEADER.size:
            size = _NANONIS_HEADER.unpack_from(reply)[1]
            if len(reply) == _NANONIS_HEADER.size + size:
                return reply


@pytest.mark.parametrize("kind", SERVERS)
def test_two_clients_are_served_and_close_cuts_both(kind: str) -> None:
    make, request, end = SERVERS[kind]
    server = make()
    a = socket.create_connection(server.address, timeout=5)
    b = socket.create_connection(server.address, timeout=5)
    try:
        assert _exchange(a, request, end) and _exchange(b, request, end)
        server.close()
        assert a.recv(1) == b"" and b.recv(1) == b""  # cut, not left hanging (a timeout fails)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(server.address, timeout=5).close()
    finally:
        a.close()
        b.close()
        server.close()  # a second close is harmless


@pytest.mark.parametrize("kind", SERVERS)
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::1"])
def test_servers_listen_on_ipv4_loopback_only(kind: str, host: str) -> None:
    with pytest.raises(ValueError, match="127.0.0.1"):
        SERVERS[kind][0](host=host)


def test_localhost_means_127_0_0_1() -> None:
    assert loopback_ipv4("localhost") == "127.0.0.1" and loopback_ipv4("127.0.0.5") == "127.0.0.5"
