"""A set of fault proxies behind Toxiproxy's HTTP API, so Toxiproxy's clients work unchanged.

Routes, JSON shapes and status codes follow Toxiproxy 2: ``GET/POST /proxies``,
``POST /populate``, ``GET/POST/DELETE /proxies/{name}``, ``GET/POST
/proxies/{name}/toxics``, ``GET/POST/DELETE /proxies/{name}/toxics/{toxic}``, ``POST
/reset``, ``GET /version`` and ``GET /metrics`` (Prometheus text). Errors are
``{"error": "...", "status": N}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote

from redline.core import ProtocolError
from redline.http import RequestParser

from ._proxy import Proxy, ProxyError

__all__ = ["API_VERSION", "FaultProxy"]

API_VERSION = "2.9.0"  # the Toxiproxy API this one answers as
"""The Toxiproxy API version the fault proxy answers as."""
T = TypeVar("T")


class FaultProxy:
    """Proxies by name, with Toxiproxy's API on ``host:port`` (``port=None``: no API).

    In asyncio: ``async with FaultProxy(port=0) as faults: await faults.create(...)``.
    From synchronous code (tests, the command line): ``with FaultProxy().running() as
    faults: faults.call(faults.create(...))``, which runs its loop in a thread.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int | None = 8474, seed: int | None = None
    ) -> None:
        """Prepare; nothing listens until :meth:`start`. ``seed`` makes toxics reproducible."""
        self.host = host
        self.port = port
        self.rng = random.Random(seed)
        self.proxies: dict[str, Proxy] = {}
        self._api: asyncio.Server | None = None
        self._api_connections: set[_ApiConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def api_url(self) -> str:
        """Where the API listens."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # -- life ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the API (if any) and every enabled proxy."""
        self._loop = asyncio.get_running_loop()
        if self.port is not None and self._api is None:
            self._api = await self._loop.create_server(
                lambda: _ApiConnection(self), self.host, self.port
            )
            self.port = int(self._api.sockets[0].getsockname()[1])
        for proxy in self.proxies.values():
            await proxy.start()

    async def close(self) -> None:
        """Stop the API and every proxy."""
        if self._api is not None:
            self._api.close()
            for connection in list(self._api_connections):
                connection.close()
            await self._api.wait_closed()
            self._api = None
        for proxy in self.proxies.values():
            await proxy.stop()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[FaultProxy]:
        """Run in a thread of its own until the block ends (see :meth:`call`)."""
        ready = threading.Event()
        loop = _new_loop()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.close())
            loop.close()

        thread = threading.Thread(target=serve, name="redline-faults", daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run ``coroutine`` in the proxy's loop (from another thread) and return its result."""
        if self._loop is None:
            raise RuntimeError("the fault proxy is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # -- proxies ---------------------------------------------------------------------
    def get(self, name: str) -> Proxy:
        """One proxy by name.

        Raises:
            ProxyError: 404 when there is none.
        """
        if name not in self.proxies:
            raise ProxyError("proxy not found", 404)
        return self.proxies[name]

    async def create(
        self, name: str, listen: str, upstream: str, *, enabled: bool = True, http: bool = False
    ) -> Proxy:
        """Create and start a proxy (``listen`` port 0 picks a free one; ``http``: HTTP mode).

        Raises:
            ProxyError: 409 when the name is taken, 400 for a bad address or listen error.
        """
        if name in self.proxies:
            raise ProxyError("proxy already exists", 409)
        proxy = Proxy(name, listen, upstream, enabled=enabled, http=http, rng=self.rng)
        await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def update(self, name: str, data: Mapping[str, Any]) -> Proxy:
        """Change a proxy's listen, upstream or enabled (a new address restarts it)."""
        proxy = self.get(name)
        if "split" in data:  # redline's extension: [{"upstream": ADDR, "weight": N}, ...]
            proxy.set_split(_split(data["split"]))
        listen = str(data.get("listen", proxy.listen))
        upstream = str(data.get("upstream", proxy.upstream))
        enabled = bool(data.get("enabled", proxy.enabled))
        if listen != proxy.listen or upstream != proxy.upstream:
            await proxy.stop()
            replacement = Proxy(
                name, listen, upstream, enabled=enabled, http=proxy.http, rng=self.rng
            )
            for toxic in proxy.toxics:
                replacement.add_toxic(toxic)
            replacement.set_split(proxy.split)
            await replacement.start()
            self.proxies[name] = replacement
            return replacement
        await proxy.set_enabled(enabled)
        return proxy

    async def delete(self, name: str) -> None:
        """Stop and forget a proxy."""
        await self.get(name).stop()
        del self.proxies[name]

    async def populate(self, items: Sequence[Mapping[str, Any]]) -> list[Proxy]:
        """Create the proxies in ``items``, replacing any of the same name that differ."""
        out = []
        for item in items:
            if not isinstance(item, Mapping) or not item.get("name"):
                raise ProxyError("each proxy needs a name, listen and upstream", 400)
            name = str(item["name"])
            existing = self.proxies.get(name)
            listen, upstream = str(item.get("listen", "")), str(item.get("upstream", ""))
            if existing is not None and (existing.upstream != upstream or (
                existing.listen != listen and not listen.endswith(":0"))):  # fmt: skip
                await self.delete(name)
                existing = None
            if existing is None:
                existing = await self.create(
                    name,
                    listen,
                    upstream,
                    enabled=bool(item.get("enabled", True)),
                    http=bool(item.get("http", False)),
                )
            out.append(existing)
        return out

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        for proxy in self.proxies.values():
            proxy.clear_toxics()
            await proxy.set_enabled(True)

    def metrics(self) -> str:
        """Prometheus text: bytes and connections per proxy, Toxiproxy's metric names."""
        lines = [
            "# HELP toxiproxy_proxy_sent_bytes_total Bytes sent through the proxy.",
            "# TYPE toxiproxy_proxy_sent_bytes_total counter",
        ]
        for proxy in self.proxies.values():
            for stream, size in proxy.bytes.items():
                lines.append(
                    f'toxiproxy_proxy_sent_bytes_total{{direction="{stream}",'
                    f'proxy="{proxy.name}",listener="{proxy.listen}",'
                    f'upstream="{proxy.upstream}"}} {size}'
                )
        lines += [
            "# HELP redline_proxy_connections_total Connections accepted by the proxy.",
            "# TYPE redline_proxy_connections_total counter",
            *(
                f'redline_proxy_connections_total{{proxy="{p.name}"}} {p.connections_total}'
                for p in self.proxies.values()
            ),
            "# HELP redline_proxy_toxics Toxics on the proxy.",
            "# TYPE redline_proxy_toxics gauge",
            *(
                f'redline_proxy_toxics{{proxy="{p.name}"}} {len(p.toxics)}'
                for p in self.proxies.values()
            ),
        ]
        return "\n".join(lines) + "\n"

    # -- the API ---------------------------------------------------------------------
    async def handle(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        """Answer one API request: ``(status, JSON-ready body or None)``."""
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        try:
            data = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError:
            return 400, _error("bad request body", 400)
        try:
            return await self._route(method, parts, data)
        except ProxyError as exc:
            return exc.status, _error(str(exc), exc.status)

    async def _route(self, method: str, parts: list[str], data: Any) -> tuple[int, Any]:
        if parts == ["version"] and method == "GET":
            return 200, {"version": API_VERSION}
        if parts == ["reset"] and method == "POST":
            await self.reset()
            return 204, None
        if parts == ["populate"] and method == "POST":
            items = data.get("proxies", data) if isinstance(data, Mapping) else data
            if not isinstance(items, list):
                raise ProxyError("expected a list of proxies", 400)
            populated = await self.populate(items)
            return 201, {"proxies": [p.to_dict() for p in populated]}
        if parts[:1] != ["proxies"]:
            raise ProxyError("not found", 404)
        if len(parts) == 1:
            if method == "GET":
                return 200, {name: p.to_dict() for name, p in self.proxies.items()}
            if method == "POST":
                body = _object(data)
                if not body.get("name") or not body.get("upstream"):
                    raise ProxyError("missing required field: name and upstream", 400)
                made = await self.create(
                    str(body["name"]),
                    str(body.get("listen") or "127.0.0.1:0"),
                    str(body["upstream"]),
                    enabled=bool(body.get("enabled", True)),
                    http=bool(body.get("http", False)),
                )
                return 201, made.to_dict()
        elif len(parts) == 2:
            if method == "GET":
                return 200, self.get(parts[1]).to_dict()
            if method in ("POST", "PATCH"):
                return 200, (await self.update(parts[1], _object(data))).to_dict()
            if method == "DELETE":
                await self.delete(parts[1])
                return 204, None
        elif len(parts) >= 3 and parts[2] == "toxics":
            return self._toxics(method, self.get(parts[1]), parts[3:], data)
        raise ProxyError("not found", 404)

    @staticmethod
    def _toxics(method: str, proxy: Proxy, rest: list[str], data: Any) -> tuple[int, Any]:
        if not rest:
            if method == "GET":
                return 200, [t.to_dict() for t in proxy.toxics]
            if method == "POST":
                return 200, proxy.add_toxic(_object(data)).to_dict()
        elif len(rest) == 1:
            if method == "GET":
                return 200, proxy.toxic(rest[0]).to_dict()
            if method in ("POST", "PATCH"):
                return 200, proxy.update_toxic(rest[0], _object(data)).to_dict()
            if method == "DELETE":
                proxy.remove_toxic(rest[0])
                return 204, None
        raise ProxyError("not found", 404)


def _split(data: Any) -> list[tuple[str, float]]:
    """``[{"upstream": "host:port", "weight": 95}, ...]`` as pairs.

    Raises:
        ProxyError: (400) not a list of such objects.
    """
    if not isinstance(data, list):
        raise ProxyError("split: expected a list of {upstream, weight} objects", 400)
    out = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping) or "upstream" not in item:
            raise ProxyError(f"split[{index}]: expected an object with upstream and weight", 400)
        try:
            out.append((str(item["upstream"]), float(item.get("weight", 1))))
        except (TypeError, ValueError):
            raise ProxyError(f"split[{index}].weight: expected a number", 400) from None
    return out


def _object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ProxyError("expected a JSON object", 400)
    return data


def _error(message: str, status: int) -> dict[str, Any]:
    return {"error": message, "status": status}


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class _ApiConnection(asyncio.Protocol):
    """HTTP/1.1 for the API: keep-alive, one request at a time."""

    def __init__(self, faults: FaultProxy) -> None:
        self.faults = faults
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.faults._api_connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.faults._api_connections.discard(self)

    def close(self) -> None:
        """Close at once (the server is stopping)."""
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            requests = self.parser.feed(data)
        except ProtocolError:
            self._write(400, _error("bad request", 400), close=True)
            return
        for request in requests:
            answer = self.faults_answer(
                request.method, request.path, request.body, not request.keep_alive
            )
            task = asyncio.ensure_future(answer)
            task.add_done_callback(lambda t: t.exception())

    async def faults_answer(self, method: str, path: str, body: bytes, close: bool) -> None:
        if path == "/metrics" and method == "GET":
            self._write(200, self.faults.metrics(), close=close, text=True)
            return
        status, answer = await self.faults.handle(method, path, body)
        self._write(status, answer, close=close)

    def _write(self, status: int, answer: Any, *, close: bool, text: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if answer is None:
            payload = b""
        elif text:
            payload = str(answer).encode()
        else:
            payload = json.dumps(answer).encode()
        kind = "text/plain; version=0.0.4" if text else "application/json"
        head = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Content-Length: {len(payload)}",
        ]
        if payload:
            head.append(f"Content-Type: {kind}")
        if close:
            head.append("Connection: close")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        if close:
            self.transport.close()
