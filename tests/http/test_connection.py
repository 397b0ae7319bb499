"""The connection layer on its own: a pool, its connections and error classes, against
the real test server on loopback (no engine)."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from redline.core import ProtocolError, ReadTimeoutError, ResponseTooLargeError
from redline.http import ClientConnection, ConnectionPool, classify_os_error, encode_request
from redline.testing import Behaviour, TestServer

Server = Callable[..., TestServer]
GET = encode_request("GET", "/", host="127.0.0.1")


@dataclass
class Listener:
    """A driver that writes down what the pool tells it, and wakes a waiting test."""

    ready: list[ClientConnection] = field(default_factory=list)
    responses: list[tuple[int, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    connect_failures: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        self.responses.append((status, nbytes))
        self.changed.set()

    def request_failed(self, conn: ClientConnection, error_class: str) -> None:
        self.failures.append(error_class)
        self.changed.set()

    def connection_ready(self, conn: ClientConnection) -> None:
        self.ready.append(conn)
        self.changed.set()

    def connect_failed(self, error_class: str) -> None:
        self.connect_failures.append(error_class)
        self.changed.set()

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(10.0):
            while not done():
                self.changed.clear()
                await self.changed.wait()


def run(main: Callable[[Listener], Awaitable[None]]) -> Listener:
    async def go() -> Listener:
        listener = Listener()
        await main(listener)
        return listener

    return asyncio.run(go())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_connection_is_reused_for_requests_one_after_another(redline_server: Server) -> None:
    server = redline_server(Behaviour(body_size=100))

    async def main(listener: Listener) -> None:
        pool = ConnectionPool(listener, host="127.0.0.1", port=server.port)
        assert pool.grow()
        await listener.until(lambda: bool(listener.ready))
        conn = listener.ready[0]
        for n in range(1, 4):
            conn.send(GET, 7, 0, 0)
            assert conn.busy
            assert pool.in_flight == 1
            await listener.until(lambda n=n: len(listener.responses) == n)  # type: ignore[misc]
            assert not conn.busy
            assert conn.reusable
        assert pool.size == 1  # one connection served all three
        await pool.aclose()
        assert pool.size == 0

    listener = run(main)
    assert [status for status, _ in listener.responses] == [200, 200, 200]
    assert all(nbytes > 100 for _, nbytes in listener.responses)  # head and body counted
    assert server.requests_total == 3
    assert listener.failures == []


@pytest.mark.parametrize(
    ("behaviour", "options", "error_class"),
    [
        (Behaviour(reset=True), {}, "reset"),
        (Behaviour(close_mid_response=True, body_size=10_000), {}, "closed"),
        (Behaviour(body_size=10_000), {"max_response_size": 1000}, "too_large"),
    ],
)
def test_a_failed_request_is_reported_with_its_class(
    redline_server: Server, behaviour: Behaviour, options: dict[str, int], error_class: str
) -> None:
    server = redline_server(behaviour)

    async def main(listener: Listener) -> None:
        pool = ConnectionPool(listener, host="127.0.0.1", port=server.port, **options)
        pool.grow()
        await listener.until(lambda: bool(listener.ready))
        conn = listener.ready[0]
        conn.send(GET, 0, 0, 0)
        await listener.until(lambda: bool(listener.failures))
        assert not conn.reusable
        assert conn not in pool.connections  # a failed connection is forgotten
        await pool.aclose()

    listener = run(main)
    assert listener.failures == [error_class]
    assert listener.responses == []


def test_a_request_past_its_read_timeout_is_swept(redline_server: Server) -> None:
    server = redline_server(Behaviour(hang=True))

    async def main(listener: Listener) -> None:
        pool = ConnectionPool(listener, host="127.0.0.1", port=server.port, read_timeout=0.05)
        pool.grow()
        await listener.until(lambda: bool(listener.ready))
        listener.ready[0].send(GET, 0, time.monotonic_ns(), time.monotonic_ns())
        assert pool.sweep_timeouts() == 0  # not yet
        await asyncio.sleep(0.1)
        assert pool.sweep_timeouts() == 1
        await pool.aclose()

    listener = run(main)
    assert listener.failures == ["read_timeout"]


def test_refused_connections_are_reported_and_the_pool_keeps_its_caps() -> None:
    port = free_port()  # nothing listens there now

    async def main(listener: Listener) -> None:
        pool = ConnectionPool(
            listener, host="127.0.0.1", port=port, max_connections=3, max_connecting=2
        )
        assert pool.grow()
        assert pool.grow()
        assert not pool.grow()  # two attempts at once at most
        assert pool.size == 2
        await listener.until(lambda: len(listener.connect_failures) == 2)
        assert pool.size == 0
        await pool.aclose()
        assert not pool.grow()  # a closed pool opens nothing

    listener = run(main)
    assert listener.connect_failures == ["connect_refused", "connect_refused"]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (None, "closed"),
        (ConnectionRefusedError(), "connect_refused"),
        (ConnectionResetError(), "reset"),
        (BrokenPipeError(), "reset"),
        (ssl.SSLError(), "tls"),
        (TimeoutError(), "connect_timeout"),
        (OSError(errno.ENETUNREACH, "unreachable"), "unreachable"),
        (OSError(errno.EHOSTUNREACH, "unreachable"), "unreachable"),
        (OSError(errno.EACCES, "denied"), "connect_error"),
        (ReadTimeoutError("slow"), "read_timeout"),
        (ProtocolError("bad"), "protocol"),
        (ResponseTooLargeError("big"), "too_large"),
        (ValueError("anything else"), "closed"),
    ],
)
def test_os_errors_map_to_stable_classes(exc: BaseException | None, expected: str) -> None:
    assert classify_os_error(exc) == expected
