"""Trace context on a worker's requests (W3C ``traceparent``), and the traced requests kept.

Every request of a traced plan carries ``traceparent: 00-<trace id>-<span id>-01``: the
trace id is the run's random prefix, the worker's number and a counter (unique in the
run, cheap to make), the span id is the counter. Kept per interval, for the runner to join
with the target's spans: the slowest requests of each endpoint, the failed ones (up to a
cap) and one in ``every`` whatever its latency. Untraced plans use the plain drivers: the
hot path pays for tracing only when a plan asks for it.
"""

from __future__ import annotations

import heapq
import time
from typing import Any, cast

from redline.http import ClientConnection
from redline.plan import TracePlan

from ._http_drivers import HttpRequests, HttpUsers

__all__ = ["TracedHttpRequests", "TracedHttpUsers", "Tracer"]

SAMPLED_CAP = 200
"""The most requests a worker keeps per interval whatever their latency (memory is
bounded, and every kept request costs a message to the coordinator)."""

Kept = tuple[str, int, float, "int | None", str]
"""A kept request: trace id, endpoint index, latency ms, status (None: failed), why."""


class Tracer:
    """Trace ids for one worker's requests, and the requests of an interval worth keeping."""

    __slots__ = ("_count", "_every", "_failed", "_failed_cap", "_head", "_last", "_prefix",
                 "_sampled", "_slowest", "_tail", "_top", "every", "floor")  # fmt: skip

    def __init__(self, trace: TracePlan, *, prefix: str, endpoints: int) -> None:
        """Trace with ids that start with ``prefix`` (16 hex digits)."""
        self._prefix = prefix.encode()
        self._count = 0
        self._every = trace.every
        self._slowest = trace.slowest
        self._failed_cap = trace.failed
        self._top: list[list[tuple[int, int, int]]] = [[] for _ in range(endpoints)]
        # what the drivers read before calling completed(): a request is worth weighing
        # when it is slower than an endpoint's floor (the slowest kept, once there are
        # enough), failed, or the every-th one
        self.floor = [-1 if self._slowest else 1 << 62] * endpoints
        self.every = self._every or 1 << 62
        self._failed: list[tuple[int, int, int, int | None]] = []
        self._sampled: list[tuple[int, int, int, int | None]] = []
        # the last request split where the header goes: a precompiled request is one
        # bytes object, sent again and again
        self._last = b""
        self._head = b""
        self._tail = b""

    def inject(self, data: bytes) -> tuple[bytes, int]:
        """``data`` with a ``traceparent`` header, and the request's number."""
        self._count += 1
        n = self._count
        if data is not self._last:
            end = data.find(b"\r\n\r\n")
            self._last, self._head = data, data[:end] + b"\r\ntraceparent: 00-" + self._prefix
            self._tail = data[end:]
        return b"%s%016x-%016x-01%s" % (self._head, n, n, self._tail), n

    def completed(self, endpoint: int, n: int, latency_ns: int, status: int | None) -> None:
        """Weigh one finished request (``status`` None: it failed without a response)."""
        if endpoint >= len(self._top):  # a scenario's request, named on first use
            grow = endpoint + 1 - len(self._top)
            self._top.extend([] for _ in range(grow))
            self.floor.extend([-1 if self._slowest else 1 << 62] * grow)
        top = self._top[endpoint]
        if len(top) < self._slowest:
            heapq.heappush(top, (latency_ns, n, status or 0))
        elif top and latency_ns > top[0][0]:
            heapq.heapreplace(top, (latency_ns, n, status or 0))
        if self._slowest and len(top) >= self._slowest:
            self.floor[endpoint] = top[0][0]
        if (status is None or status >= 400) and len(self._failed) < self._failed_cap:
            self._failed.append((n, endpoint, latency_ns, status))
        if self._every and n % self._every == 0 and len(self._sampled) < SAMPLED_CAP:
            self._sampled.append((n, endpoint, latency_ns, status))

    def trace_id(self, n: int) -> str:
        """The trace id of request ``n``."""
        return f"{self._prefix.decode()}{n:016x}"

    def take(self) -> list[Kept]:
        """The requests kept since the last call (and start afresh)."""
        out: list[Kept] = []
        for endpoint, top in enumerate(self._top):
            for latency, n, status in top:
                out.append((self.trace_id(n), endpoint, latency / 1e6, status or None, "slowest"))
            top.clear()
        self.floor = [-1 if self._slowest else 1 << 62] * len(self._top)
        for kind, kept in (("failed", self._failed), ("sampled", self._sampled)):
            out.extend(
                (self.trace_id(n), endpoint, latency / 1e6, status, kind)
                for n, endpoint, latency, status in kept
            )
            kept.clear()
        return out


class _Traced:
    """What both traced drivers add: context on each request sent, each one weighed."""

    tracer: Tracer

    def _send(
        self, conn: ClientConnection, endpoint: int, intended: int, data: bytes, now: int
    ) -> None:
        # _Http._send, inlined with the header: one call less per request
        data, conn.token = self.tracer.inject(data)
        self.in_flight += 1  # type: ignore[attr-defined]
        self.sent[now >= self.clock.boundary] += 1  # type: ignore[attr-defined]
        self.bytes_out[endpoint] += len(data)  # type: ignore[attr-defined]
        conn.send(data, endpoint, intended, now)

    def request_failed(self, conn: ClientConnection, error_class: str) -> None:
        """A failed request is always worth keeping."""
        if conn.token is not None:
            latency = time.monotonic_ns() - conn.intended_ns
            self.tracer.completed(conn.tag, cast(int, conn.token), latency, None)
        super().request_failed(conn, error_class)  # type: ignore[misc]

    def take_exemplars(self) -> list[Kept]:
        """The traced requests kept in the interval."""
        return self.tracer.take()


class TracedHttpRequests(_Traced, HttpRequests):
    """The open model, traced."""

    def __init__(self, *, tracer: Tracer, **parts: Any) -> None:
        """Send as :class:`HttpRequests` does, with trace context from ``tracer``."""
        super().__init__(**parts)
        self.tracer = tracer

    def response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        """:meth:`HttpRequests.response_complete` with the request weighed (one clock read)."""
        now = time.monotonic_ns()
        latency = now - conn.intended_ns
        tracer = self.tracer
        n: int = conn.token  # type: ignore[assignment]
        if latency > tracer.floor[conn.tag] or status >= 400 or not n % tracer.every:
            tracer.completed(conn.tag, n, latency, status)
        self.record(conn.tag, latency, now - conn.sent_ns, status, nbytes, now, conn)
        self.in_flight -= 1
        self._free(conn)
        self._pump()
        if self.stopping:
            self._check_drained()


class TracedHttpUsers(_Traced, HttpUsers):
    """The closed model, traced, its inline resend included (see :class:`HttpUsers`)."""

    def __init__(self, *, tracer: Tracer, **parts: Any) -> None:
        """Send as :class:`HttpUsers` does, with trace context from ``tracer``."""
        super().__init__(**parts)
        self.tracer = tracer

    def response_complete(self, conn: ClientConnection, status: int, nbytes: int) -> None:
        """:meth:`HttpUsers.response_complete` with each request weighed and traced."""
        now = time.monotonic_ns()
        latency = now - conn.intended_ns
        tracer = self.tracer
        n: int = conn.token  # type: ignore[assignment]
        if latency > tracer.floor[conn.tag] or status >= 400 or not n % tracer.every:
            tracer.completed(conn.tag, n, latency, status)
        self.record(conn.tag, latency, now - conn.sent_ns, status, nbytes, now, conn)
        if self.fast_loop and conn.reusable and not self.stopping:
            fixed = self.fixed_request
            endpoint, data = fixed if fixed is not None else self.mix.next()
            if data is None:
                self.in_flight -= 1
                self._exhausted(conn, endpoint, now)
                return
            data, conn.token = tracer.inject(data)
            self.sent[now >= self.clock.boundary] += 1
            self.bytes_out[endpoint] += len(data)
            conn.send(data, endpoint, now, now)
            return
        self.in_flight -= 1
        self._continue(conn, now)
        if self.stopping:
            self._check_drained()
