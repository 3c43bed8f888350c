"""The loopback server every wire-protocol simulator shares: where it listens, how it accepts,
how it closes. Each simulator keeps its own framing.

:class:`LoopbackServer` listens on an IPv4 loopback address only (simulators are reachable
from this machine alone), accepts in a daemon thread and serves each connection in a daemon
thread of its own (:class:`socketserver.ThreadingTCPServer`), with ``TCP_NODELAY`` set so a
short reply is not held back by Nagle's algorithm. A subclass implements
:meth:`LoopbackServer.serve_connection`: read requests from the socket and answer them until
the peer closes. :meth:`LoopbackServer.close` stops accepting, cuts every open connection
and joins the accept thread, so a closed server leaves no client hanging.

Used by ``drivers.sim.keithley2400.TcpServer`` (SCPI lines), ``drivers.sim.neware.BtsServer``
(BTS XML frames) and ``drivers.sim.afm.NanonisServer`` (Nanonis binary frames).
"""

from __future__ import annotations

import abc
import ipaddress
import socket
import socketserver
import threading
from typing import Self

__all__ = ["loopback_ipv4", "LoopbackServer"]


def loopback_ipv4(host: str) -> str:
    """``host`` if it is an IPv4 loopback address (``localhost`` means 127.0.0.1).

    Raises ValueError otherwise, naming the host: simulators listen on this machine only.
    """
    address = "127.0.0.1" if host == "localhost" else host
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"simulator host {host!r} is not an IP address; use 127.0.0.1") from None
    if ip.version != 4 or not ip.is_loopback:
        raise ValueError(f"simulator host {host!r} is not an IPv4 loopback address; use 127.0.0.1")
    return address


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: LoopbackServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        self.server.owner._serve(self.request)


class LoopbackServer(abc.ABC):
    """A TCP server on an IPv4 loopback address, one daemon thread per connection.

    Args:
        host: an IPv4 loopback address (``localhost`` = 127.0.0.1); anything else raises
            ValueError.
        port: 0 picks a free port (see :attr:`address`).
        name: prefix of the threads' names (``name-port``), for debugging.

    Raises:
        ValueError: ``host`` is not IPv4 loopback.
        OSError: the port cannot be bound.

    A subclass sets its own attributes *before* calling ``super().__init__``: connections
    are served from then on.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, name: str = "sim") -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closed = False
        self._server = _Server((loopback_ipv4(host), port), self)
        self._accept_thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                               name=f"{name}-{self.address[1]}", daemon=True)
        self._accept_thread.start()

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @abc.abstractmethod
    def serve_connection(self, sock: socket.socket) -> None:
        """Serve one connection until the peer closes it (the simulator's framing). Runs in
        the connection's own thread; an ``OSError`` (the connection dropped) ends it quietly."""

    def _serve(self, sock: socket.socket) -> None:
        with self._connections_lock:
            if self._closed:  # accepted while closing: cut at once
                sock.close()
                return
            self._connections.add(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.serve_connection(sock)
        except OSError:
            pass
        finally:
            with self._connections_lock:
                self._connections.discard(sock)

    def drop_connections(self) -> None:
        """Cut every open connection (both directions), as a pulled cable does; the server
        goes on accepting new ones."""
        with self._connections_lock:
            for sock in list(self._connections):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop accepting, cut open connections, release the port."""
        self._server.shutdown()
        with self._connections_lock:
            self._closed = True
        self.drop_connections()
        self._server.server_close()
        self._accept_thread.join(timeout=1.0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
