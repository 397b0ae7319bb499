"""Sessions for Python scenarios: requests as awaitables on top of the callback client.

A :class:`SessionRuntime` lends connections from one pool to many sessions. A request
writes its bytes, parks a future, and the connection's completion callback records the
measurement and resolves the future with the response; the scenario's coroutine resumes
with a :class:`Response`. One runtime serves a worker's whole load.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import traceback
from collections import Counter, deque
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from http.cookies import SimpleCookie
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode, urljoin, urlsplit

from redline.core import (
    ConnectError,
    ConnectTimeoutError,
    ProtocolError,
    ReadTimeoutError,
    ResponseTooLargeError,
    TransportError,
)
from redline.http import (
    ClientConnection,
    ConnectionPool,
    connection_pool,
    encode_multipart,
    encode_request,
    parse_head,
)
from redline.plan import (
    DataSource,
    GrpcCall,
    RenderContext,
    decode_messages,
    encode_message,
    find_call,
)

from ._recorder import EXPECTED, UNEXPECTED, Recorder

if TYPE_CHECKING:
    from ._tracing import Tracer

__all__ = ["OriginPools", "Response", "Session", "SessionRuntime"]

_ERRORS: dict[str, type[TransportError]] = {
    "connect_refused": ConnectError,
    "connect_error": ConnectError,
    "unreachable": ConnectError,
    "connect_timeout": ConnectTimeoutError,
    "read_timeout": ReadTimeoutError,
    "protocol": ProtocolError,
    "too_large": ResponseTooLargeError,
}
MAX_TRACEBACKS = 5
_Waiter = tuple["asyncio.Future[Any]", frozenset[int] | None, int]
"""A request in flight: its future, the statuses it expects, its trace number (0: none)."""
_ENCODED_CACHE = 4096  # distinct bodiless requests whose bytes are kept per worker


def _failure(error_class: str, what: str) -> TransportError:
    error = _ERRORS.get(error_class, TransportError)(f"{what}: {error_class}")
    error.error_class = error_class
    return error


class Response:
    """A response as a scenario sees it.

    Attributes:
        status: the HTTP status code.
        content: the body as bytes (de-chunked).
        elapsed: seconds from sending the request to the end of the response.
    """

    __slots__ = ("_head", "_headers", "content", "elapsed", "status")

    def __init__(self, status: int, head: bytes, content: bytes, elapsed: float) -> None:
        """Wrap a completed response (built by the session)."""
        self.status = status
        self.content = content
        self.elapsed = elapsed
        self._head = head
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        """Header fields with lower-case names; repeated fields are joined with ", "."""
        if self._headers is None:
            headers: dict[str, str] = {}
            for name, value in parse_head(self._head):
                key = name.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            self._headers = headers
        return self._headers

    @property
    def ok(self) -> bool:
        """True for a status below 400."""
        return self.status < 400

    @property
    def text(self) -> str:
        """The body decoded (the charset of Content-Type, else UTF-8)."""
        charset = "utf-8"
        for part in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: the body is not JSON.
        """
        return json.loads(self.content)

    def set_cookies(self) -> list[tuple[str, str]]:
        """``(name, value)`` of every Set-Cookie field."""
        out = []
        for name, value in parse_head(self._head):
            if name.lower() == "set-cookie":
                for morsel in SimpleCookie(value).values():
                    out.append((morsel.key, morsel.value))
        return out

    def __repr__(self) -> str:
        return f"<Response {self.status}, {len(self.content)} bytes>"


class _Origin:
    """Connections to one origin (scheme, host, port): a pool, its listener, its waiters.

    Sessions lend its connections: completions resolve the futures they wait on.
    """

    def __init__(
        self, runtime: SessionRuntime, pool_options: Mapping[str, Any], host_header: str
    ) -> None:
        self.runtime = runtime
        self.bytes_out = runtime.recorder.bytes_out  # an HTTP/2 pool counts frames in it
        self.pool: ConnectionPool = connection_pool(self, capture=True, **pool_options)
        self.host_header = host_header
        self.acquirers: deque[asyncio.Future[ClientConnection]] = deque()

    async def acquire(self) -> ClientConnection:
        """A free connection, opening one when none is idle.

        Raises:
            TransportError: connecting failed.
        """
        idle = self.pool.idle
        while idle:
            conn = idle.pop()
            if conn.reusable:
                return conn
        waiter: asyncio.Future[ClientConnection] = self.runtime.loop.create_future()
        self.acquirers.append(waiter)
        if self.pool.connecting < len(self.acquirers):
            self.pool.grow()
        return await waiter

    def _release(self, conn: ClientConnection) -> None:
        if not conn.reusable:
            if self.acquirers and self.pool.connecting < len(self.acquirers):
                self.pool.grow()
            return
        while self.acquirers:
            waiter = self.acquirers.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self.pool.idle.append(conn)

    # -- PoolListener ----------------------------------------------------------------------
    def response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        now = time.monotonic_ns()
        runtime = self.runtime
        future, expect, traced = cast(_Waiter, conn.token)
        conn.token = None
        if traced:
            cast("Tracer", runtime.tracer).completed(conn.tag, traced, now - conn.sent_ns, status)
        flag = 0 if expect is None else (EXPECTED if status in expect else UNEXPECTED)
        runtime.recorder.record(
            conn.tag, now - conn.sent_ns, now - conn.sent_ns, status | flag, nbytes, now, conn
        )
        runtime.requests_in_flight -= 1
        if not future.done():
            future.set_result((status, conn.head, conn.body, now))
        self._release(conn)

    def request_failed(self, conn: ClientConnection, error_class: str) -> None:
        runtime = self.runtime
        runtime.recorder.record_error(conn.tag, error_class, time.monotonic_ns())
        runtime.requests_in_flight -= 1
        entry, conn.token = cast(_Waiter | None, conn.token), None
        if entry is not None and entry[2]:
            latency = time.monotonic_ns() - conn.sent_ns
            cast("Tracer", runtime.tracer).completed(conn.tag, entry[2], latency, None)
        if entry is not None and not entry[0].done():
            entry[0].set_exception(_failure(error_class, "request failed"))
        self._release(conn)

    def connection_ready(self, conn: ClientConnection) -> None:
        self._release(conn)

    def connect_failed(self, error_class: str) -> None:
        while self.acquirers:
            waiter = self.acquirers.popleft()
            if not waiter.done():
                waiter.set_exception(_failure(error_class, "connect failed"))
                break
        if self.acquirers and self.pool.connecting < len(self.acquirers):
            self.pool.grow()


class SessionRuntime:
    """Connections, recording and shared counters behind every session of a worker.

    The plan's target is its main origin (:attr:`pool`); a request to another host (a
    full URL, or a redirect there) opens a pool of that origin's own, under the same
    limits and the same ``allow``/``block`` checks.
    """

    def __init__(
        self,
        pool_options: Mapping[str, Any],
        *,
        host_header: str,
        recorder: Recorder,
        data: Iterable[DataSource] = (),
        ctx: RenderContext | None = None,
        shared: Any = None,
        tracer: Tracer | None = None,
        redirects: int = 0,
        verify_tls: bool = True,
        grpc_schema: bytes | None = None,
    ) -> None:
        """Create the runtime; ``pool_options`` are :class:`ConnectionPool` arguments.

        With ``tracer`` (a traced plan's), every request carries trace context.
        ``redirects`` is how many redirects a request follows unless it says otherwise.
        """
        self.pool_options = dict(pool_options)
        self.recorder = recorder  # before the origins: their pools count bytes in it
        self.main = _Origin(self, pool_options, host_header)
        self.pool = self.main.pool
        self.scheme = "https" if pool_options.get("tls") is not None else "http"
        """The target's scheme (a relative redirect stays on it)."""
        self.origins: dict[tuple[str, str, int], _Origin] = {
            (self.scheme, str(pool_options["host"]).lower(), int(pool_options["port"])): self.main
        }
        self.host_header = host_header
        self.recorder = recorder
        self.data = {source.name: source for source in data}
        self.ctx = ctx or RenderContext()
        self.shared = shared
        self.checks: dict[str, list[int]] = {}
        self.exceptions: dict[str, Counter[str]] = {}
        self.tracebacks: list[str] = []
        self.requests_in_flight = 0
        self.encoded: dict[tuple[Any, ...], tuple[int, bytes]] = {}
        self.tracer = tracer
        self.redirects = redirects
        self.verify_tls = verify_tls
        self.grpc_schema = grpc_schema
        self.grpc_calls: dict[str, GrpcCall] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running event loop (looked up once)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def origin(self, url: str) -> tuple[_Origin, str]:
        """The origin of an absolute URL (opened on first use), and its request target.

        Raises:
            ValueError: not an http(s) URL with a host.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname.lower(), port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        found = self.origins.get(key)
        if found is None:
            tls = None
            if parts.scheme == "https":
                tls = ssl.create_default_context()
                if not self.verify_tls:
                    tls.check_hostname = False
                    tls.verify_mode = ssl.CERT_NONE
            options = {**self.pool_options, "host": parts.hostname, "port": port, "tls": tls}
            default = 443 if parts.scheme == "https" else 80
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            header = host if port == default else f"{host}:{port}"
            found = self.origins[key] = _Origin(self, options, header)
        return found, target

    def pools(self) -> list[ConnectionPool]:
        """Every origin's pool, the target's first."""
        return [origin.pool for origin in self.origins.values()]

    async def aclose(self) -> None:
        """Close every origin's connections."""
        for pool in self.pools():
            await pool.aclose()

    # -- scenario outcomes -----------------------------------------------------------------
    def count_exception(self, scenario: str, exc: BaseException) -> None:
        """Count an exception a scenario raised; keep the first few tracebacks."""
        self.exceptions.setdefault(scenario, Counter())[type(exc).__name__] += 1
        if len(self.tracebacks) < MAX_TRACEBACKS:
            text = "".join(traceback.format_exception(exc))
            self.tracebacks.append(f"scenario {scenario!r}: {text}")

    def take_counters(
        self,
    ) -> tuple[dict[str, tuple[int, int]], dict[str, dict[str, int]], list[str]]:
        """Checks, exceptions and new tracebacks since the last call; resets them."""
        checks = {name: (pf[0], pf[1]) for name, pf in self.checks.items()}
        exceptions = {name: dict(types) for name, types in self.exceptions.items()}
        tracebacks = self.tracebacks
        self.checks, self.exceptions, self.tracebacks = {}, {}, []
        return checks, exceptions, tracebacks


class OriginPools:
    """Every origin's pool of a runtime, as a driver's one pool.

    The target's pool for growing and waiting; every origin's for the counts,
    timeouts and closing.
    """

    def __init__(self, runtime: SessionRuntime) -> None:
        self._runtime = runtime

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime.pool, name)  # grow, idle, connecting, max_*: the target's

    @property
    def size(self) -> int:
        """Connections open to every origin."""
        return sum(pool.size for pool in self._runtime.pools())

    @property
    def connections(self) -> list[ClientConnection]:
        """Every origin's connections."""
        return [conn for pool in self._runtime.pools() for conn in pool.connections]

    def sweep_timeouts(self) -> None:
        """Fail requests past their read timeout, on every origin."""
        for pool in self._runtime.pools():
            pool.sweep_timeouts()

    async def aclose(self) -> None:
        """Close every origin's connections."""
        await self._runtime.aclose()


class _DataRows(Mapping[str, Mapping[str, Any]]):
    """``session.data[name]``: this session's row of a data source, drawn on first use."""

    def __init__(self, runtime: SessionRuntime) -> None:
        self._runtime = runtime
        self._rows: dict[str, dict[str, Any]] = {}

    def __getitem__(self, name: str) -> Mapping[str, Any]:
        row = self._rows.get(name)
        if row is None:
            source = self._runtime.data.get(name)
            if source is None:
                known = ", ".join(self._runtime.data) or "none defined"
                raise KeyError(f"no data source {name!r} (data sources: {known})")
            row = dict(zip(source.columns, source.draw(self._runtime.ctx), strict=True))
            self._rows[name] = row
        return row

    def __iter__(self) -> Any:
        return iter(self._runtime.data)

    def __len__(self) -> int:
        return len(self._runtime.data)


class _Group:
    """Times a block into the recorder under ``key``: a group, or an endpoint (measure)."""

    __slots__ = ("_index", "_runtime", "_start")

    def __init__(self, runtime: SessionRuntime, key: str | tuple[str, str]) -> None:
        self._runtime = runtime
        self._index = runtime.recorder.index(key)
        self._start = 0

    async def __aenter__(self) -> None:
        self._start = time.monotonic_ns()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(kind, exc, tb)

    def __enter__(self) -> None:
        self._start = time.monotonic_ns()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        now = time.monotonic_ns()
        recorder = self._runtime.recorder
        if kind is None:
            recorder.record(self._index, now - self._start, now - self._start, 200, 0, now)
        elif not issubclass(kind, asyncio.CancelledError):
            recorder.record_error(self._index, kind.__name__, now)


class Session:
    """One user's view of the target in a scenario: requests, cookies, checks, groups.

    In the open model every iteration gets a new session; in the closed model a virtual
    user keeps its session (and its cookies and data rows) across iterations.

    Attributes:
        headers: default headers sent with every request (e.g. Authorization).
        cookies: cookies set by responses, sent back with later requests.
        shared: what the plan's ``setup()`` returned (None without one).
        data: rows of the plan's data sources, ``session.data["users"]["name"]``.
    """

    def __init__(self, runtime: SessionRuntime) -> None:
        """Create a session on ``runtime`` (the engine does this)."""
        self._runtime = runtime
        self.headers: dict[str, str] = {}
        self.cookies: dict[str, str] = {}
        self.shared = runtime.shared
        self.data: Mapping[str, Mapping[str, Any]] = _DataRows(runtime)
        self._random = runtime.ctx.random
        self.started_ns = time.monotonic_ns()
        """When the current iteration was meant to start (``time.monotonic_ns()``): the
        arrival's intended start in the open model. Work an iteration sets off (a queued
        job) is timed from here, as the iteration is."""

    def request(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        body: bytes | str | None = None,
        files: Mapping[str, tuple[str, bytes | str, str] | bytes | str] | None = None,
        expect: int | Iterable[int] | None = None,
        redirects: int | None = None,
    ) -> Coroutine[Any, Any, Response]:
        """Send one request and wait for its response (await it).

        Args:
            method: the HTTP method.
            path: the path on the target, starting with "/", or a full URL (another
                host: the plan's ``allow``/``block`` apply to it too).
            name: the endpoint name in results (default: ``"METHOD path"`` without query).
            headers: headers for this request (over the session's defaults).
            query: query parameters, URL-encoded onto the path.
            json: a body to send as JSON.
            body: a raw body (with ``files``: the form's text fields, a mapping).
            files: a multipart/form-data upload: field name to ``(filename, content,
                content type)``, or to a plain value (a text field).
            expect: status codes that count as success; any other is an error of class
                ``unexpected_status``. Default: any status below 400.
            redirects: how many redirects to follow (default: the plan's ``redirects``).
                Each hop is measured as a request of the same endpoint, as k6 does; the
                last response is returned.

        Raises:
            TransportError: the request failed below HTTP (its error class is recorded).
        """
        method = method.upper()
        target = path
        if query:
            target += ("&" if "?" in path else "?") + urlencode(query, doseq=True)
        payload: bytes | None = None
        content_type: str | None = None
        if files is not None:
            payload, content_type = encode_multipart(files)
        elif json is not None:
            payload, content_type = _json_dumps(json), "application/json"
        elif body is not None:
            payload = body.encode() if isinstance(body, str) else body
        endpoint_name = name or f"{method} {path.split('?', 1)[0]}"
        hops = self._runtime.redirects if redirects is None else redirects
        if hops <= 0:  # one coroutine per request: the common case has nothing to follow
            return self._exchange(
                method, target, endpoint_name, headers, payload, content_type, expect
            )
        return self._follow(
            method, target, endpoint_name, headers, payload, content_type, expect, hops
        )

    async def _follow(
        self,
        method: str,
        url: str,
        endpoint_name: str,
        headers: Mapping[str, str] | None,
        payload: bytes | None,
        content_type: str | None,
        expect: int | Iterable[int] | None,
        hops: int,
    ) -> Response:
        """A request and the redirects it follows, up to ``hops`` of them."""
        while True:
            response = await self._exchange(
                method, url, endpoint_name, headers, payload, content_type, expect
            )
            location = response.headers.get("location") if response.status in _REDIRECTS else None
            if not location or hops <= 0:
                return response
            hops -= 1
            url = urljoin(self._absolute(url), location)
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, payload, content_type = "GET", None, None  # as browsers do

    def _absolute(self, url: str) -> str:
        if url.startswith(("http://", "https://")):
            return url
        return f"{self._runtime.scheme}://{self._runtime.host_header}{url}"

    async def _exchange(
        self,
        method: str,
        url: str,
        name: str,
        headers: Mapping[str, str] | None,
        payload: bytes | None,
        content_type: str | None,
        expect: int | Iterable[int] | None,
    ) -> Response:
        """One request on the origin of ``url`` (a path: the plan's target)."""
        runtime = self._runtime
        if url.startswith(("http://", "https://")):
            origin, target = runtime.origin(url)
        else:
            origin, target = runtime.main, url
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items()) if self.cookies else ""
        # Bodiless requests repeat: their bytes are cached by everything that shapes them.
        key = None
        if payload is None:
            key = (
                method,
                origin.host_header,
                target,
                name,
                tuple(self.headers.items()) if self.headers else (),
                tuple(headers.items()) if headers else (),
                cookie,
            )
            cached = runtime.encoded.get(key)
        else:
            cached = None
        if cached is None:
            fields = dict(self.headers)
            if content_type is not None:
                fields.setdefault("Content-Type", content_type)
            if headers:
                fields.update(headers)
            if cookie:
                fields["Cookie"] = cookie
            data = encode_request(
                method, target, host=origin.host_header, headers=fields.items(), body=payload
            )
            endpoint = runtime.recorder.index(name)
            if key is not None and len(runtime.encoded) < _ENCODED_CACHE:
                runtime.encoded[key] = (endpoint, data)
        else:
            endpoint, data = cached
        expected = (
            None if expect is None else frozenset([expect] if isinstance(expect, int) else expect)
        )
        # An idle connection is taken here; only waiting for one needs the coroutine.
        idle = origin.pool.idle
        conn = idle.pop() if idle else None
        if conn is None or not conn.reusable:
            try:
                conn = await origin.acquire()
            except TransportError as exc:
                runtime.recorder.record_error(endpoint, exc.error_class, time.monotonic_ns())
                raise
        future: asyncio.Future[Any] = runtime.loop.create_future()
        traced = 0
        if runtime.tracer is not None:
            data, traced = runtime.tracer.inject(data)
        conn.token = (future, expected, traced)
        runtime.requests_in_flight += 1
        runtime.recorder.bytes_out[endpoint] += len(data)
        sent = time.monotonic_ns()
        conn.send(data, endpoint, sent, sent)
        status, head, content, done = await future
        response = Response(status, head, content, (done - sent) / 1e9)
        if b"ookie:" in head or b"OOKIE:" in head:  # Set-Cookie in any case; cheap to test
            self.cookies.update(response.set_cookies())
        return response

    def get(self, path: str, **options: Any) -> Coroutine[Any, Any, Response]:
        """``request("GET", path, ...)`` (await it)."""
        return self.request("GET", path, **options)

    def post(self, path: str, **options: Any) -> Coroutine[Any, Any, Response]:
        """``request("POST", path, ...)`` (await it)."""
        return self.request("POST", path, **options)

    def put(self, path: str, **options: Any) -> Coroutine[Any, Any, Response]:
        """``request("PUT", path, ...)`` (await it)."""
        return self.request("PUT", path, **options)

    def patch(self, path: str, **options: Any) -> Coroutine[Any, Any, Response]:
        """``request("PATCH", path, ...)`` (await it)."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Coroutine[Any, Any, Response]:
        """``request("DELETE", path, ...)`` (await it)."""
        return self.request("DELETE", path, **options)

    async def grpc(
        self,
        method: str,
        message: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """Call a gRPC method of the plan's proto (``grpc: {proto:}``) over HTTP/2.

        Args:
            method: ``package.Service/Method``.
            message: the request message in protobuf's JSON form (a dict); for a
                client-streaming or bidirectional method, a list of them (all sent, then
                the call's end of stream).
            name: the endpoint name in results (default: ``method``).
            metadata: lower-case metadata keys and their values.
            deadline: seconds (sent as ``grpc-timeout``).

        Returns:
            the response message as a dict; for a server-streaming method, the list of
            them.

        Raises:
            TransportError: the call failed (error class ``grpc_<status>`` when the
                server ended it with a status other than OK).
            ValueError: no such method in the proto, or ``message`` does not fit it.
        """
        runtime = self._runtime
        call = runtime.grpc_calls.get(method)
        if call is None:
            if runtime.grpc_schema is None:
                raise ValueError("session.grpc needs the plan's proto: grpc: {proto: x.proto}")
            call = runtime.grpc_calls[method] = find_call(runtime.grpc_schema, method)
        body = [dict(m) for m in message] if isinstance(message, Sequence) else dict(message or {})
        payload = encode_message(call, json.dumps(body, separators=(",", ":")))
        headers = {"content-type": "application/grpc", "te": "trailers", **(metadata or {})}
        if deadline is not None:
            headers["grpc-timeout"] = f"{max(1, round(deadline * 1000))}m"
        response = await self._exchange(
            "POST", "/" + method, name or method, headers, payload, None, None
        )
        messages = decode_messages(call, response.content)
        if call.server_streaming:
            return messages
        return messages[0] if messages else {}

    def check(self, name: str, condition: object) -> bool:
        """Count a named check as passed or failed; the scenario goes on either way."""
        passed = bool(condition)
        counts = self._runtime.checks.setdefault(name, [0, 0])
        counts[0 if passed else 1] += 1
        return passed

    def group(self, name: str) -> _Group:
        """``async with session.group("checkout"):`` measures the block as a whole."""
        return _Group(self._runtime, ("group", name))

    def measure(self, name: str) -> _Group:
        """Time work that is not HTTP (a database call, a queue publish) as an endpoint.

        ``async with s.measure("db.orders"):`` (or ``with`` around blocking code) records
        the block's duration in ``name``'s histograms, beside the HTTP endpoints, as
        Locust's custom users do: in summaries, percentiles, objectives
        (``endpoint: db.orders``) and reports. An exception in the block is an error of
        its type, and goes on up.
        """
        return _Group(self._runtime, name)

    async def think(self, minimum: float, maximum: float | None = None) -> None:
        """Pause like a user: ``minimum`` seconds, or uniformly up to ``maximum``."""
        delay = minimum if maximum is None else self._random.uniform(minimum, maximum)
        await asyncio.sleep(delay)


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


_REDIRECTS = frozenset((301, 302, 303, 307, 308))
