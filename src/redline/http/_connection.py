"""Keep-alive client connections driven by callbacks, and the pool that owns them.

The hot path is one ``data_received`` callback per response: no coroutine, no future,
no per-request allocation beyond what the parser returns. Whoever drives the pool (the
engine) implements :class:`PoolListener` and decides what to send next.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from redline.core import AddressPolicy, BlockedError, TransportError

from ._encoding import CompressionMeter
from ._protocol import CapturingResponseParser, ResponseParser

__all__ = [
    "PHASE_EVERY",
    "REUSED",
    "ClientConnection",
    "ConnectionPool",
    "PoolListener",
    "classify_os_error",
    "permitted",
]

REUSED = (0, 0, 0)
"""The set-up phases (DNS, connect, TLS in ns) of a request on a reused connection."""
PHASE_EVERY = 8
"""A connection times the phases of its first request and of one in this many after it
(a power of two): two clock reads per request cost the generator about 5%."""
_monotonic_ns = time.monotonic_ns


class PoolListener(Protocol):
    """What a :class:`ConnectionPool` reports to its driver."""

    def response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        """A response to ``conn``'s request completed."""

    def request_failed(self, conn: ClientConnection, error_class: str) -> None:
        """``conn``'s in-flight request failed; the connection is gone."""

    def connection_ready(self, conn: ClientConnection) -> None:
        """A new connection is open and idle."""

    def connect_failed(self, error_class: str) -> None:
        """Opening a connection failed."""


def classify_os_error(exc: BaseException | None) -> str:
    """Map an OS-level failure to a stable error class name."""
    if exc is None:
        return "closed"
    if isinstance(exc, TransportError):
        return exc.error_class
    if isinstance(exc, socket.gaierror):
        return "dns"
    if isinstance(exc, ConnectionRefusedError):
        return "connect_refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(exc, ssl.SSLError):
        return "tls"
    if isinstance(exc, TimeoutError):
        return "connect_timeout"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return "unreachable"
    return "connect_error" if isinstance(exc, OSError) else "closed"


class ClientConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with at most one request in flight.

    ``tag`` and ``intended_ns`` belong to the driver: which request this is and when it
    was meant to start (for latency corrected for coordinated omission); so does
    ``token``, anything else the driver keeps with the request in flight.

    The phases of the request in flight, as k6 has them, come from monotonic stamps:
    ``setup`` is the connection's DNS, connect and TLS time until its first response is
    recorded, ``sent_ns`` when the driver sent it, ``written_ns`` when the write
    returned, ``first_ns`` when the first byte of the response arrived (-1: this request
    is not timed; the recorder sets it after reading a timed one). A connection times its
    first request (its set-up with it) and one in :data:`PHASE_EVERY` after it
    (``requests`` counts them).
    """

    __slots__ = (
        "_complete",
        "_write",
        "body",
        "busy",
        "bytes_in",
        "first_ns",
        "head",
        "intended_ns",
        "parser",
        "pool",
        "requests",
        "reusable",
        "sent_ns",
        "setup",
        "tag",
        "token",
        "transport",
        "written_ns",
    )

    def __init__(self, pool: ConnectionPool) -> None:
        """Create a connection owned by ``pool`` (the event loop calls the rest)."""
        self.pool = pool
        self.parser: ResponseParser
        if pool.capture:
            self.parser = CapturingResponseParser(
                max_size=pool.max_response_size, on_response=self._on_captured
            )
        else:
            self.parser = ResponseParser(
                max_size=pool.max_response_size, on_response=self._on_response
            )
        self.head = b""
        self.body = b""
        self.transport: asyncio.Transport | None = None
        self._write: Callable[[bytes], object] | None = None
        self._complete = pool.listener.response_complete
        self.busy = False
        self.reusable = True
        self.tag = 0
        self.token: object = None
        self.intended_ns = 0
        self.sent_ns = 0
        self.written_ns = 0
        self.first_ns = 0
        self.bytes_in = 0
        self.setup = REUSED
        self.requests = 0

    def send(self, data: bytes, tag: int, intended_ns: int, sent_ns: int) -> None:
        """Write one request; ``tag`` and ``intended_ns`` are kept for the driver."""
        self.busy = True
        self.tag = tag
        self.intended_ns = intended_ns
        self.sent_ns = sent_ns
        self.bytes_in = 0
        count = self.requests + 1
        self.requests = count
        if count & 7 == 1:  # the 1st, 9th, 17th...: one in PHASE_EVERY (8), set-up first
            self.first_ns = 0
            self._write(data)  # type: ignore[misc]  # set in connection_made
            self.written_ns = _monotonic_ns()
        else:  # first_ns is -1 since the last timed one was recorded: nothing is stamped
            self._write(data)  # type: ignore[misc]

    def first_exchange_done(self) -> None:
        """Its first response is recorded, its set-up with it."""
        self.setup = REUSED

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._write = self.transport.write

    def data_received(self, data: bytes) -> None:
        if not self.first_ns:
            self.first_ns = _monotonic_ns()
        self.bytes_in += len(data)
        try:
            self.parser.feed(data)
        except TransportError as exc:
            self.fail(exc.error_class)

    def _on_response(self, status: int, keep_alive: bool) -> None:
        if not self.busy:
            self.fail("protocol")  # a response nobody asked for
            return
        self.busy = False
        if not keep_alive:
            self.reusable = False
            self._close()
        self._complete(self, status, self.bytes_in)

    def _on_captured(self, status: int, keep_alive: bool, head: bytes, body: bytes) -> None:
        self.head = head
        self.body = body
        meter = self.pool.meter
        if meter is not None:
            lowered = head.lower()
            at = lowered.find(b"\r\ncontent-encoding:")
            encoding = ""
            if at >= 0:
                end = lowered.find(b"\r\n", at + 2)
                encoding = head[at + 19 : end if end >= 0 else None].decode("latin-1")
            error = meter.response(encoding, body)
            if error is not None:
                self.fail(error)
                return
        self._on_response(status, keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.pool.forget(self)
        if self.busy:
            self.busy = False
            self.pool.listener.request_failed(self, classify_os_error(exc))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost reports an in-flight request

    # -- failure ---------------------------------------------------------------------------
    def fail(self, error_class: str) -> None:
        """Abort the connection, reporting ``error_class`` for an in-flight request."""
        self.reusable = False
        was_busy, self.busy = self.busy, False
        self._close(abort=True)
        self.pool.forget(self)
        if was_busy:
            self.pool.listener.request_failed(self, error_class)

    def _close(self, *, abort: bool = False) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if abort:
                self.transport.abort()
            else:
                self.transport.close()


class ConnectionPool:
    """Opens and tracks up to ``max_connections`` connections to one origin."""

    def __init__(
        self,
        listener: PoolListener,
        *,
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        max_connections: int = 1024,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_response_size: int = 64 * 1024 * 1024,
        max_connecting: int = 32,
        capture: bool = False,
        policy: AddressPolicy | None = None,
        decode: bool = False,
    ) -> None:
        """Create an empty pool; connections open on :meth:`grow`.

        At most ``max_connecting`` connection attempts run at once: opening connections
        costs the client CPU, and a burst of attempts would delay the requests it sends.
        With ``capture``, each response's raw bytes (head first) and body are kept on the
        connection (``conn.head``, ``conn.body``) for the listener to read. With
        ``policy``, each connection's resolved addresses are checked against the plan's
        ``allow:``/``block:`` lists; one refused everywhere fails with ``blocked``.
        """
        self.listener = listener
        self.host = host
        self.port = port
        self.tls = tls
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.read_timeout_ns = int(read_timeout * 1e9)
        self.max_response_size = max_response_size
        self.max_connecting = max_connecting
        self.capture = capture or decode
        self.meter = CompressionMeter() if decode else None
        """With ``decode``: response bodies are decoded and counted (the compression metrics)."""
        self.policy = policy if policy is not None and policy.active else None
        self.idle: list[ClientConnection] = []
        self.connections: set[ClientConnection] = set()
        self.connecting = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def size(self) -> int:
        """Open connections plus those being opened."""
        return len(self.connections) + self.connecting

    def grow(self) -> bool:
        """Start opening one more connection unless the pool is full or busy opening."""
        if (
            self._closed
            or self.size >= self.max_connections
            or self.connecting >= self.max_connecting
        ):
            return False
        self.connecting += 1
        task = asyncio.get_running_loop().create_task(self._open())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _open(self) -> None:
        try:
            try:
                conn = await asyncio.wait_for(self._connect(), self.connect_timeout)
            finally:
                self.connecting -= 1
        except (OSError, TimeoutError, ssl.SSLError, TransportError) as exc:
            if not self._closed:
                self.listener.connect_failed(classify_os_error(exc))
            return
        if self._closed:
            conn._close(abort=True)
            return
        self.connections.add(conn)
        self.listener.connection_ready(conn)

    async def _connect(self) -> ClientConnection:
        """Resolve, connect and handshake, timing each step (the request phases)."""
        _, conn, setup = await timed_connection(
            lambda: ClientConnection(self), self.host, self.port, self.tls, self.policy
        )
        conn.setup = setup
        return conn

    def forget(self, conn: ClientConnection) -> None:
        """Drop a connection that closed or failed."""
        self.connections.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    def sweep_timeouts(self) -> int:
        """Fail every request in flight longer than the read timeout; return how many."""
        # the engine stamps ``sent_ns`` with time.monotonic_ns: the same clock here
        deadline = time.monotonic_ns() - self.read_timeout_ns
        expired = [c for c in self.connections if c.busy and c.sent_ns < deadline]
        for conn in expired:
            conn.fail("read_timeout")
        return len(expired)

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return sum(1 for c in self.connections if c.busy)

    async def aclose(self) -> None:
        """Close every connection and cancel connection attempts."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.connections):
            conn._close(abort=True)
        self.connections.clear()
        self.idle.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


_AddrInfo = tuple[Any, ...]  # (family, type, proto, canonname, address), as getaddrinfo
_P = TypeVar("_P", bound=asyncio.BaseProtocol)


async def timed_connection(
    factory: Callable[[], _P],
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    policy: AddressPolicy | None,
) -> tuple[asyncio.Transport, _P, tuple[int, int, int]]:
    """A connection made in steps: resolve, connect, TLS; and each step's time in ns.

    The times are ``(dns, connect, tls)``: DNS is 0 for an IP literal (no lookup, as k6
    counts it), TLS 0 without TLS. With ``policy``, the resolved addresses are checked
    against the plan's ``allow:``/``block:`` lists.
    """
    loop = asyncio.get_running_loop()
    literal = _literal_address(host, port)
    t0 = time.monotonic_ns()
    infos: list[_AddrInfo] = (
        list(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        if literal is None
        else [literal]
    )
    t1 = time.monotonic_ns()
    if policy is not None:  # after resolution: the address is what counts
        infos = permitted(policy, host, infos)
    sock = await _connected_socket(loop, infos)
    t2 = time.monotonic_ns()
    try:
        transport, protocol = await loop.create_connection(
            factory, sock=sock, ssl=tls, server_hostname=host if tls else None
        )
    except BaseException:
        sock.close()
        raise
    t3 = time.monotonic_ns()
    setup = (0 if literal else t1 - t0, t2 - t1, t3 - t2 if tls else 0)
    return transport, protocol, setup


def permitted(policy: AddressPolicy, host: str, infos: list[_AddrInfo]) -> list[_AddrInfo]:
    """The addresses of ``host`` the policy permits.

    Raises:
        BlockedError: it permits none (the message says why, for the first).
    """
    allowed = [info for info in infos if policy.refusal(host, str(info[4][0])) is None]
    if not allowed and infos:
        raise BlockedError(policy.refusal(host, str(infos[0][4][0])))
    return allowed


def _literal_address(host: str, port: int) -> _AddrInfo | None:
    """The address of an IP literal (no DNS lookup, as k6 counts it), else None."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if address.version == 6:
        return (socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(address), port))
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(address), port))


async def _connected_socket(
    loop: asyncio.AbstractEventLoop, infos: list[_AddrInfo]
) -> socket.socket:
    """A non-blocking socket connected to the first address of ``infos`` that answers."""
    error: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error or OSError(errno.EADDRNOTAVAIL, "no address to connect to")
