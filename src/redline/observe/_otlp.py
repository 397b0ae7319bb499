"""An OTLP/HTTP trace receiver: what an OpenTelemetry SDK exports, kept in bounded memory.

``POST /v1/traces`` with ``application/x-protobuf`` (decoded with opentelemetry-proto,
the ``traces`` extra) or ``application/json`` (OTLP's JSON mapping: ids in hex, times as
strings of nanoseconds), optionally gzip-encoded, as the SDK's exporters send them. Spans
are kept by trace id up to ``max_spans``; past that they are counted as dropped, never
kept. A body that cannot be decoded is answered 400 and counted, never a crash.

``load_otlp_json`` reads the same JSON from a file (``redline traces import``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import json
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from redline.core import Span

from ._errors import WatchError

__all__ = ["OtlpReceiver", "decode_otlp", "load_otlp_json"]

MAX_BODY = 16 * 1024 * 1024


class OtlpError(ValueError):
    """An OTLP body that is not one (the message says where)."""


def _hex_id(value: Any, size: int, where: str) -> str:
    """An id from OTLP JSON (hex, as the spec says; base64, as some exporters write)."""
    if not isinstance(value, str):
        raise OtlpError(f"{where}: expected an id string, got {type(value).__name__}")
    text = value.strip().lower()
    if len(text) == size * 2 and all(c in "0123456789abcdef" for c in text):
        return text
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise OtlpError(f"{where}: expected {size * 2} hex digits, got {value!r}") from None
    if len(raw) != size:
        raise OtlpError(f"{where}: expected {size} bytes, got {len(raw)}")
    return raw.hex()


def _service(resource: Mapping[str, Any] | None) -> str:
    for attribute in (resource or {}).get("attributes", ()) or ():
        if isinstance(attribute, Mapping) and attribute.get("key") == "service.name":
            value = attribute.get("value") or {}
            if isinstance(value, Mapping):
                return str(value.get("stringValue", value.get("string_value", "")))
    return "unknown"


def _json_spans(document: Any) -> list[Span]:
    if not isinstance(document, Mapping):
        raise OtlpError("expected an object with resourceSpans")
    spans: list[Span] = []
    for r, resource_spans in enumerate(document.get("resourceSpans") or ()):
        if not isinstance(resource_spans, Mapping):
            raise OtlpError(f"resourceSpans[{r}]: expected an object")
        service = _service(resource_spans.get("resource"))
        for s, scope in enumerate(resource_spans.get("scopeSpans") or ()):
            for n, span in enumerate((scope or {}).get("spans") or ()):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                if not isinstance(span, Mapping):
                    raise OtlpError(f"{where}: expected an object")
                parent = span.get("parentSpanId") or None
                try:
                    start = int(span.get("startTimeUnixNano", 0))
                    end = int(span.get("endTimeUnixNano", 0))
                except (TypeError, ValueError):
                    raise OtlpError(f"{where}: times must be whole nanoseconds") from None
                status = span.get("status") or {}
                spans.append(
                    Span(
                        trace_id=_hex_id(span.get("traceId"), 16, f"{where}.traceId"),
                        span_id=_hex_id(span.get("spanId"), 8, f"{where}.spanId"),
                        parent_id=_hex_id(parent, 8, f"{where}.parentSpanId") if parent else None,
                        service=service,
                        name=str(span.get("name", "")),
                        start_ns=start,
                        end_ns=end,
                        error=status.get("code") in (2, "STATUS_CODE_ERROR")
                        if isinstance(status, Mapping)
                        else False,
                    )
                )
    return spans


def _protobuf_spans(body: bytes) -> list[Span]:
    try:
        from google.protobuf.message import DecodeError
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )
    except ImportError:
        raise OtlpError(
            "protobuf OTLP needs opentelemetry-proto: pip install 'redline[traces]'"
        ) from None
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise OtlpError(f"not an OTLP protobuf request: {exc}") from None
    spans: list[Span] = []
    for resource_spans in request.resource_spans:
        service = "unknown"
        for attribute in resource_spans.resource.attributes:
            if attribute.key == "service.name":
                service = attribute.value.string_value
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    raise OtlpError("a span's trace id must be 16 bytes and its span id 8")
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex() if span.parent_span_id else None,
                        service=service,
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        error=span.status.code == 2,
                    )
                )
    return spans


def decode_otlp(body: bytes, content_type: str, *, encoding: str = "") -> list[Span]:
    """The spans of one OTLP/HTTP export request.

    Raises:
        OtlpError: the body is not what its content type says (the message says why).
    """
    if encoding.strip().lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise OtlpError(f"not gzip: {exc}") from None
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise OtlpError(f"not JSON: {exc}") from None
        return _json_spans(document)
    if kind in ("application/x-protobuf", "application/protobuf", ""):
        return _protobuf_spans(body)
    raise OtlpError(f"unsupported content type {content_type!r}")


def load_otlp_json(path: str) -> list[Span]:
    """The spans of an OTLP JSON file (one export request, or one per line).

    Raises:
        WatchError: the file cannot be read or is not OTLP JSON (naming the line).
    """
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as exc:
        raise WatchError(f"{path}: cannot read it: {exc.strerror}") from exc
    try:
        return decode_otlp(text, "application/json")
    except OtlpError as whole:
        spans: list[Span] = []
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise WatchError(f"{path}: {whole}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                spans.extend(decode_otlp(line, "application/json"))
            except OtlpError as exc:
                raise WatchError(f"{path}: line {number}: {exc}") from None
        return spans


class OtlpReceiver:
    """Receive spans on ``host:port`` (loopback by default) while a run goes on."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 4318, *, max_spans: int = 500_000
    ) -> None:
        """Listen on ``host:port`` (0: any free port) once started.

        At most ``max_spans`` spans are kept; the rest are counted as dropped.
        """
        self.host = host
        self.port = port
        self.max_spans = max_spans
        self.received = 0
        self.dropped = 0
        self.rejected = 0
        self._spans: dict[str, list[Span]] = defaultdict(list)
        self._kept = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The URL an OTLP/HTTP exporter sends traces to."""
        return f"http://{self.host}:{self.port}/v1/traces"

    def add(self, spans: Sequence[Span]) -> None:
        """Keep ``spans`` (those past the cap are counted as dropped)."""
        with self._lock:
            self.received += len(spans)
            for span in spans:
                if self._kept >= self.max_spans:
                    self.dropped += 1
                    continue
                self._spans[span.trace_id].append(span)
                self._kept += 1

    def spans(self) -> dict[str, list[Span]]:
        """The spans kept so far, by trace id (a copy)."""
        with self._lock:
            return {trace: list(spans) for trace, spans in self._spans.items()}

    def counts(self) -> dict[str, int]:
        """``received``, ``dropped`` and ``rejected`` (bodies that could not be decoded)."""
        with self._lock:
            return {"received": self.received, "dropped": self.dropped, "rejected": self.rejected}

    @contextlib.contextmanager
    def running(self) -> Iterator[OtlpReceiver]:
        """Serve in a thread of its own while the block runs.

        Raises:
            WatchError: the address cannot be listened on.
        """
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                if self.path.split("?")[0] != "/v1/traces":
                    self.close_connection = True  # its body is left unread
                    self._answer(404, b"only /v1/traces is received here\n")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    receiver._reject()
                    self._answer(413, b"body too large\n")
                    self.close_connection = True
                    return
                body = self.rfile.read(length)
                try:
                    spans = decode_otlp(
                        body,
                        self.headers.get("Content-Type", ""),
                        encoding=self.headers.get("Content-Encoding", ""),
                    )
                except OtlpError as exc:
                    receiver._reject()
                    self._answer(400, f"{exc}\n".encode())
                    return
                receiver.add(spans)
                json_reply = "json" in self.headers.get("Content-Type", "")
                self._answer(200, b"{}" if json_reply else b"", json_reply)

            def _answer(self, status: int, body: bytes, json_reply: bool = False) -> None:
                self.send_response(status)
                kind = "application/json" if json_reply else "application/x-protobuf"
                self.send_header("Content-Type", kind if status == 200 else "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        try:
            server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise WatchError(f"--otlp {self.host}:{self.port}: cannot listen: {exc}") from exc
        server.daemon_threads = True
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="redline-otlp", daemon=True
        )
        self._thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=5)

    def _reject(self) -> None:
        with self._lock:
            self.rejected += 1
