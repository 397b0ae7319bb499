"""A programmable HTTP/1.1 test server on loopback, for tests and benchmarks.

It answers with programmable latency (fixed or from a distribution), periodic stalls
(the whole server freezes, like a stop-the-world pause), status codes and error rates,
and misbehaviour (never answering, closing mid-response), and counts requests exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import ssl
import struct
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, cast

from redline.core import ProtocolError
from redline.http import Request, RequestParser

__all__ = ["Behaviour", "Latency", "TestServer"]


@dataclass(frozen=True, slots=True)
class Latency:
    """A response-time distribution, in seconds.

    ``fixed`` uses ``value``; ``uniform`` draws from [``low``, ``high``]; ``exponential``
    has mean ``value``; ``lognormal`` has median ``value`` and shape ``sigma``.
    """

    kind: Literal["fixed", "uniform", "exponential", "lognormal"] = "fixed"
    value: float = 0.0
    low: float = 0.0
    high: float = 0.0
    sigma: float = 1.0

    def sample(self, rng: random.Random) -> float:
        """Draw one response time."""
        if self.kind == "fixed":
            return self.value
        if self.kind == "uniform":
            return rng.uniform(self.low, self.high)
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.value) if self.value > 0 else 0.0
        return rng.lognormvariate(math.log(self.value), self.sigma) if self.value > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How the server answers a request (for every path, or for one path prefix).

    Attributes:
        latency: seconds before answering (a number or a :class:`Latency`).
        status: the status of normal answers.
        error_rate: fraction of answers that get ``error_status`` instead (seeded).
        error_status: the status of error answers.
        body_size: bytes of body in each answer.
        chunked: send the body with chunked transfer encoding.
        close: ask the client to close the connection after each answer.
        hang: never answer.
        close_mid_response: send the head and half the body, then close.
        reset: answer nothing and reset the connection (a TCP RST).
        body: the exact body to answer with (overrides ``body_size``).
        content_type: the Content-Type of answers.
        require_headers: header values a request must carry (names in any case);
            a request without them is answered 401.
        set_cookie: a Set-Cookie value sent with every normal answer.
        location: a Location header on every normal answer (a redirect, with a 3xx
            ``status``).
        workers: serve at most this many requests at once, the rest waiting in one
            first-come queue (None: no limit). With exponential ``latency`` and Poisson
            arrivals this is an M/M/c queue of capacity ``workers / mean latency``.
    """

    latency: float | Latency = 0.0
    status: int = 200
    error_rate: float = 0.0
    error_status: int = 500
    body_size: int = 2
    chunked: bool = False
    close: bool = False
    hang: bool = False
    close_mid_response: bool = False
    reset: bool = False
    body: bytes | None = None
    content_type: str = "text/plain"
    require_headers: Mapping[str, str] | None = None
    set_cookie: str | None = None
    location: str | None = None
    workers: int | None = None

    def _latency(self) -> Latency:
        if isinstance(self.latency, Latency):
            return self.latency
        return Latency("fixed", float(self.latency))


def _response(
    status: int,
    body_size: int,
    *,
    chunked: bool,
    close: bool,
    body: bytes | None = None,
    content_type: str = "text/plain",
    set_cookie: str | None = None,
    location: str | None = None,
) -> bytes:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
    if body is None:
        body = (b"ok" * (body_size // 2 + 1))[:body_size]
    head = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        "Server: redline-testing",
    ]
    if close:
        head.append("Connection: close")
    if set_cookie:
        head.append(f"Set-Cookie: {set_cookie}")
    if location:
        head.append(f"Location: {location}")
    if chunked:
        head.append("Transfer-Encoding: chunked")
        payload = (f"{len(body):x}\r\n".encode() + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


@dataclass
class _Compiled:
    behaviour: Behaviour
    latency: Latency
    ok: bytes
    error: bytes
    unauthorized: bytes
    required: dict[str, str]
    busy: int = 0  # requests in service (with ``workers``)
    waiting: deque[tuple[_ServerConnection, list[Any]]] = field(default_factory=deque)


class _ServerConnection(asyncio.Protocol):
    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None
        self.pending: deque[list[Any]] = deque()  # [ready, payload, close, mid_close]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.server._connections.add(self)
        self.server.connections_total += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        try:
            requests = self.parser.feed(data)
        except ProtocolError:
            assert self.transport is not None
            self.transport.write(_response(400, 0, chunked=False, close=True))
            self.transport.close()
            return
        for request in requests:
            self._answer(request)

    def _answer(self, request: Request) -> None:
        path = request.path
        server = self.server
        server.requests_total += 1
        server.requests_by_path[path] += 1
        if path not in server.first_request_at:
            server.first_request_at[path] = time.time()
        server.last_request[path] = request
        compiled = server._route(path)
        behaviour = compiled.behaviour
        if behaviour.hang:
            return
        if behaviour.reset:
            assert self.transport is not None
            sock = self.transport.get_extra_info("socket")
            # Linger 0: closing sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
            return
        error = behaviour.error_rate > 0 and server._rng.random() < behaviour.error_rate
        payload = compiled.error if error else compiled.ok
        if compiled.required and any(request.header(k) != v for k, v in compiled.required.items()):
            payload = compiled.unauthorized
        status = int(payload[9:12])
        server.responses_by_status[status] += 1
        close = behaviour.close or not request.keep_alive
        entry = [False, payload, close, behaviour.close_mid_response]
        self.pending.append(entry)
        workers = behaviour.workers
        if workers is not None and compiled.busy >= workers:
            compiled.waiting.append((self, entry))
            return
        compiled.busy += 1
        self._serve(compiled, entry)

    def _serve(self, compiled: _Compiled, entry: list[Any]) -> None:
        """Hold one of the server's workers for a drawn service time, then answer."""
        server = self.server
        delay = compiled.latency.sample(server._rng)
        assert server._loop is not None
        if delay > 0:
            server._loop.call_later(delay, self._served, compiled, entry)
        else:
            self._served(compiled, entry)

    def _served(self, compiled: _Compiled, entry: list[Any]) -> None:
        self._ready(entry)
        if compiled.waiting:
            connection, waiting = compiled.waiting.popleft()
            connection._serve(compiled, waiting)  # the worker goes on to the next in line
        else:
            compiled.busy -= 1

    def _ready(self, entry: list[Any]) -> None:
        entry[0] = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        while self.pending and self.pending[0][0]:
            _, payload, close, mid_close = self.pending.popleft()
            if mid_close:
                transport.write(payload[: max(len(payload) - 1, len(payload) // 2)])
                transport.close()
                return
            transport.write(payload)
            self.server.responses_total += 1
            if close:
                transport.close()
                return


class TestServer:
    """An HTTP/1.1 server on loopback with programmable behaviour and exact counters.

    Use it as ``async with TestServer(...) as server`` inside an event loop, as
    ``with TestServer(...).running() as server`` from synchronous code (it runs in a
    thread of its own), or with the ``redline_server`` pytest fixture.

    Attributes:
        requests_total: requests received (complete request heads and bodies).
        responses_total: responses written in full.
        connections_total: connections accepted (after the TLS handshake, with TLS).
        requests_by_path: requests received per path.
        responses_by_status: answers decided per status code (hangs and resets aside).
        first_request_at: when each path was first requested (wall clock, seconds).
        last_request: the last request received per path (method, headers, body).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        routes: Mapping[str, Behaviour] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        stall_every: float = 0.0,
        stall_for: float = 0.0,
        seed: int | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Configure the server; nothing listens until it is started.

        Args:
            behaviour: the default behaviour.
            routes: behaviours for path prefixes (the longest matching prefix wins).
            host: address to listen on (loopback by default).
            port: port to listen on (0 picks a free one).
            stall_every: every this many seconds the whole server freezes...
            stall_for: ...for this many seconds (answers nothing, accepts nothing).
            seed: makes latency draws and error answers reproducible.
            tls: serve HTTPS with this server-side context.
        """
        if stall_every and not 0 < stall_for < stall_every:
            raise ValueError("stall_for must be positive and shorter than stall_every")
        self.host = host
        self.port = port
        self.stall_every = stall_every
        self.stall_for = stall_for
        self.tls = tls
        self._rng = random.Random(seed)
        self._default = self._compile(behaviour or Behaviour())
        self._routes = sorted(
            ((prefix, self._compile(b)) for prefix, b in (routes or {}).items()),
            key=lambda item: -len(item[0]),
        )
        self.requests_total = 0
        self.responses_total = 0
        self.connections_total = 0
        self.requests_by_path: Counter[str] = Counter()
        self.responses_by_status: Counter[int] = Counter()
        self.first_request_at: dict[str, float] = {}
        self.last_request: dict[str, Request] = {}
        self.stalls = 0
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_ServerConnection] = set()
        self._stall_handle: asyncio.TimerHandle | None = None

    @staticmethod
    def _compile(behaviour: Behaviour) -> _Compiled:
        return _Compiled(
            behaviour=behaviour,
            latency=behaviour._latency(),
            ok=_response(
                behaviour.status,
                behaviour.body_size,
                chunked=behaviour.chunked,
                close=behaviour.close,
                body=behaviour.body,
                content_type=behaviour.content_type,
                set_cookie=behaviour.set_cookie,
                location=behaviour.location,
            ),
            unauthorized=_response(401, 0, chunked=False, close=behaviour.close),
            required={k.lower(): v for k, v in (behaviour.require_headers or {}).items()},
            error=_response(
                behaviour.error_status,
                behaviour.body_size,
                chunked=behaviour.chunked,
                close=behaviour.close,
            ),
        )

    def set_behaviour(self, behaviour: Behaviour) -> None:
        """Change the default behaviour from now on (callable from any thread)."""
        compiled = self._compile(behaviour)

        def swap() -> None:
            self._default = compiled

        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(swap)
        else:
            swap()

    def _route(self, path: str) -> _Compiled:
        for prefix, compiled in self._routes:
            if path.startswith(prefix):
                return compiled
        return self._default

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:43121``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    # -- running inside an event loop ------------------------------------------------------
    async def start(self) -> None:
        """Start listening on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: _ServerConnection(self), self.host, self.port, backlog=4096, ssl=self.tls
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.stall_every:
            self._stall_handle = self._loop.call_later(self.stall_every, self._stall)

    def _stall(self) -> None:
        # Freeze the whole event loop, as a stop-the-world pause would: nothing is read,
        # written or accepted until it ends.
        time.sleep(self.stall_for)
        self.stalls += 1
        assert self._loop is not None
        self._stall_handle = self._loop.call_later(self.stall_every - self.stall_for, self._stall)

    async def stop(self) -> None:
        """Stop listening and close every connection."""
        if self._stall_handle is not None:
            self._stall_handle.cancel()
        if self._server is not None:
            self._server.close()
            for conn in list(self._connections):
                if conn.transport is not None:
                    conn.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> TestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- running in a thread of its own ----------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[TestServer]:
        """Run the server in a background thread for the duration of the ``with`` block."""
        started = threading.Event()
        stopping: list[asyncio.Event] = []
        failure: list[BaseException] = []

        async def main() -> None:
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                started.set()
                raise
            stop_event = asyncio.Event()
            stopping.append(stop_event)
            started.set()
            await stop_event.wait()
            await self.stop()

        thread = threading.Thread(
            target=_run_loop, args=(main,), name="redline-test-server", daemon=True
        )
        thread.start()
        started.wait()
        if failure:
            thread.join()
            raise failure[0]
        try:
            yield self
        finally:
            assert self._loop is not None
            self._loop.call_soon_threadsafe(stopping[0].set)
            thread.join(timeout=10)

    def serve_forever(self, *, on_ready: Callable[[TestServer], None] | None = None) -> None:
        """Run in the current thread until interrupted (``redline testserver``).

        ``on_ready`` is called once the server listens (with port 0, :attr:`port` is
        then the one it got).

        Raises:
            OSError: the address cannot be bound.
        """

        async def main() -> None:
            await self.start()
            if on_ready is not None:
                on_ready(self)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()

        with contextlib.suppress(KeyboardInterrupt):
            _run_loop(main)


def _run_loop(main: Any) -> None:
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        asyncio.run(main())
