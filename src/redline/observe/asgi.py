"""An ASGI middleware that shows a Python service from inside, for redline and for production.

    from redline.observe.asgi import RuntimeMetrics
    app = RuntimeMetrics(app)                 # metrics at /metrics (Prometheus text)

It exports, through prometheus-client:

===============================================  =====================================
metric                                           what
===============================================  =====================================
``http_requests_total{method,route,code}``       requests answered (what ``redline slo
                                                 rules`` reads, with the histogram below)
``http_request_duration_seconds{method,route}``  request durations (a histogram)
``http_requests_in_flight``                      requests being handled now
``python_event_loop_lag_seconds``                how late the loop ran a timer just now
                                                 (a histogram, and the last as a gauge)
``python_gc_collections_total{generation}``      collections by generation
``python_gc_pause_seconds{generation}``          how long they stopped the world (histogram)
===============================================  =====================================

Watch it with ``--observe prometheus:http://HOST:PORT/metrics``: the gauges (in flight,
loop lag) become series of the run, aligned with the load. The GC hook is process-wide
(``gc.callbacks``) and installed once; the loop-lag probe is a timer on the running loop,
every ``lag_interval_s``.

A request's ``route`` is its path with numeric segments as ``{id}`` (``/products/{id}``),
or what ``route_of(scope)`` says. With ``otlp="http://HOST:4318/v1/traces"`` the
middleware continues the caller's W3C trace (redline's ``--trace``) with a server span per
request that carries one (it starts no trace of its own), exported as OTLP JSON;
:func:`redline.observe.trace_headers` gives the ``traceparent`` for the calls the app
makes, so they join the trace.

A FastAPI or Starlette app is wrapped the same way::

    app = FastAPI()
    app.add_middleware(RuntimeMetrics, otlp="http://127.0.0.1:4318/v1/traces", service="shop")
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ._spans import SpanExporter, parse_traceparent

__all__ = ["RuntimeMetrics"]

_NUMBER = re.compile(r"/\d+(?=/|$)")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_PAUSES = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)


class RuntimeMetrics:
    """Wrap an ASGI app: count and time its requests, probe its loop and its GC."""

    def __init__(
        self,
        app: App,
        *,
        registry: CollectorRegistry | None = None,
        path: str | None = "/metrics",
        lag_interval_s: float = 0.1,
        buckets: tuple[float, ...] = _LATENCY,
        route_of: Callable[[Scope], str] | None = None,
        otlp: str | None = None,
        service: str = "app",
    ) -> None:
        """Wrap ``app``; serve the metrics at ``path`` (``None``: serve them elsewhere).

        ``registry``: where the metrics live (default: a registry of this middleware's
        own, so two apps in one process do not collide).
        """
        self.app = app
        self.route_of = route_of or _route
        self.spans = SpanExporter(otlp, service=service) if otlp else None
        self.registry = registry if registry is not None else CollectorRegistry()
        self.path = path
        self.lag_interval_s = lag_interval_s
        r = self.registry
        self.requests = Counter(
            "http_requests", "Requests answered", ["method", "route", "code"], registry=r
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Request durations",
            ["method", "route"],
            buckets=buckets,
            registry=r,
        )
        self.in_flight = Gauge("http_requests_in_flight", "Requests being handled", registry=r)
        self.lag = Histogram(
            "python_event_loop_lag_seconds",
            "How late the event loop ran a timer",
            buckets=(*_PAUSES, 0.5, 1.0),
            registry=r,
        )
        self.lag_now = Gauge(
            "python_event_loop_lag_last_seconds", "The latest event-loop lag", registry=r
        )
        self.collections = Counter(
            "python_gc_collections", "Garbage collections", ["generation"], registry=r
        )
        self.pauses = Histogram(
            "python_gc_pause_seconds",
            "Garbage collection pauses",
            ["generation"],
            buckets=_PAUSES,
            registry=r,
        )
        self._gc_started: float | None = None
        self._probe: asyncio.Task[None] | None = None
        gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        """Remove the GC hook, stop the loop probe, post the last spans."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._probe is not None:
            self._probe.cancel()
        if self.spans is not None:
            self.spans.close()

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        generation = str(info.get("generation", "?"))
        self.collections.labels(generation).inc()
        if self._gc_started is not None:
            self.pauses.labels(generation).observe(time.perf_counter() - self._gc_started)
            self._gc_started = None

    async def _probe_loop(self) -> None:
        while True:
            asked = time.perf_counter()
            await asyncio.sleep(self.lag_interval_s)
            late = max(time.perf_counter() - asked - self.lag_interval_s, 0.0)
            self.lag.observe(late)
            self.lag_now.set(late)

    def _ensure_probe(self) -> None:
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probe_loop())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self._ensure_probe()
        if self.path is not None and scope.get("path") == self.path:
            await self._serve_metrics(send)
            return
        method = scope.get("method", "GET")
        route = self.route_of(scope)
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        started = time.perf_counter()
        self.in_flight.inc()
        try:
            parent = parse_traceparent(_header(scope, b"traceparent")) if self.spans else None
            if parent is None or self.spans is None:  # traces are continued, never begun
                await self.app(scope, receive, sending)
            else:
                with self.spans.span(f"{method} {route}", parent=parent):
                    await self.app(scope, receive, sending)
        finally:
            self.in_flight.dec()
            self.duration.labels(method, route).observe(time.perf_counter() - started)
            self.requests.labels(method, route, str(status[0])).inc()

    async def _serve_metrics(self, send: Send) -> None:
        body = generate_latest(self.registry)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _route(scope: Scope) -> str:
    """The path with numeric segments as ``{id}``: a bounded set of label values."""
    return _NUMBER.sub("/{id}", str(scope.get("path", "")))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None
