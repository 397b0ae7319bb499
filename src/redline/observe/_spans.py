"""A service's own spans, without an OpenTelemetry SDK: W3C context in, OTLP JSON out.

:class:`SpanExporter` keeps finished spans in a bounded queue and posts them as OTLP JSON
(``/v1/traces``) from a thread of its own every half second; spans past ``max_queue``
are counted as dropped. The current span lives in a context variable, so an async
service's concurrent requests keep theirs apart; :func:`trace_headers` gives the
``traceparent`` of a call made inside it. :class:`redline.observe.asgi.RuntimeMetrics`
uses it to continue redline's traces; a service with an OpenTelemetry SDK needs none of
this.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SpanContext", "SpanExporter", "parse_traceparent", "trace_headers"]

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass(frozen=True, slots=True)
class SpanContext:
    """The trace a span belongs to, and the span."""

    trace_id: str
    span_id: str


_current: contextvars.ContextVar[SpanContext | None] = contextvars.ContextVar(
    "redline_span", default=None
)


def parse_traceparent(value: str | None) -> SpanContext | None:
    """A W3C ``traceparent`` header as a context (``None`` when absent or malformed)."""
    if not value:
        return None
    found = _TRACEPARENT.match(value.strip().lower())
    if found is None or found[1] == "0" * 32 or found[2] == "0" * 16:
        return None
    return SpanContext(found[1], found[2])


def trace_headers() -> dict[str, str]:
    """``{"traceparent": ...}`` for a call made inside the current span (or ``{}``)."""
    span = _current.get()
    if span is None:
        return {}
    return {"traceparent": f"00-{span.trace_id}-{span.span_id}-01"}


class SpanExporter:
    """Record spans and post them to an OTLP/HTTP endpoint as JSON, in the background."""

    def __init__(
        self, endpoint: str, *, service: str, max_queue: int = 20_000, interval_s: float = 0.5
    ) -> None:
        """Post to ``endpoint`` (``http://host:4318/v1/traces``) as ``service``."""
        self.endpoint = endpoint
        self.service = service
        self.interval_s = interval_s
        self.dropped = 0
        self.failed_posts = 0
        self._queue: deque[dict[str, object]] = deque()
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redline-spans", daemon=True)
        self._thread.start()

    @contextlib.contextmanager
    def span(self, name: str, *, parent: SpanContext | None = None) -> Iterator[SpanContext]:
        """A span around the block.

        It is a child of ``parent``, else of the current span, else a new trace's root. An
        exception in the block marks it an error and goes on.
        """
        above = parent if parent is not None else _current.get()
        context = SpanContext(
            above.trace_id if above is not None else secrets.token_hex(16), secrets.token_hex(8)
        )
        token = _current.set(context)
        start = time.time_ns()
        failed = False
        try:
            yield context
        except BaseException:
            failed = True
            raise
        finally:
            _current.reset(token)
            self._add(context, above, name, start, time.time_ns(), failed)

    def _add(
        self,
        context: SpanContext,
        parent: SpanContext | None,
        name: str,
        start: int,
        end: int,
        failed: bool,
    ) -> None:
        record: dict[str, object] = {
            "traceId": context.trace_id,
            "spanId": context.span_id,
            "name": name,
            "kind": 2,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "status": {"code": 2 if failed else 0},
        }
        if parent is not None:
            record["parentSpanId"] = parent.span_id
        with self._lock:
            if len(self._queue) >= self._max_queue:
                self.dropped += 1
                return
            self._queue.append(record)

    def _batch(self) -> list[dict[str, object]]:
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
        return batch

    def _post(self, spans: list[dict[str, object]]) -> None:
        body = json.dumps(
            {
                "resourceSpans": [
                    {
                        "resource": {
                            "attributes": [
                                {"key": "service.name", "value": {"stringValue": self.service}}
                            ]
                        },
                        "scopeSpans": [{"scope": {"name": "redline"}, "spans": spans}],
                    }
                ]
            }
        ).encode()
        request = urllib.request.Request(
            self.endpoint, data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                answer.read()
        except (urllib.error.URLError, OSError, ValueError):
            self.failed_posts += 1  # nobody listening now: these spans are lost

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            batch = self._batch()
            if batch:
                self._post(batch)

    def close(self) -> None:
        """Post what is left and stop."""
        self._stop.set()
        self._thread.join(timeout=5)
        batch = self._batch()
        if batch:
            self._post(batch)
