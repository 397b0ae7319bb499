"""Three services that continue redline's traces: gateway -> orders -> payments.

    python traced_services.py GATEWAY_PORT ORDERS_PORT PAYMENTS_PORT OTLP_PORT

Each is a ThreadingHTTPServer with its own OpenTelemetry tracer provider (its own
``service.name``), exporting spans over OTLP/HTTP (protobuf) to ``OTLP_PORT``:

- gateway ``GET /checkout`` and ``GET /fast``: calls orders (same path);
- orders: 10 ``db.query`` spans of 1 ms one after another, then two ``cache.get`` spans of
  5 ms side by side (threads), then calls payments;
- payments: ``charge``, 20 ms on ``/checkout``, 1 ms on ``/fast``.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()


def tracer(service: str, otlp_port: int) -> Tracer:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{otlp_port}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=200))
    return provider.get_tracer(service)


def call(port: int, path: str, context: Context) -> None:
    headers: dict[str, str] = {}
    PROPAGATOR.inject(headers, context=context)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers)
        connection.getresponse().read()
    finally:
        connection.close()


def serve(port: int, name: str, tracer_: Tracer, work: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parent = PROPAGATOR.extract(dict(self.headers.items()), getter=DefaultGetter())
            with tracer_.start_as_current_span(
                f"GET {self.path}", context=parent, kind=SpanKind.SERVER
            ) as span:
                work(self.path, set_span_in_context(span))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()


def main() -> None:
    gateway_port, orders_port, payments_port, otlp_port = map(int, sys.argv[1:5])
    gateway = tracer("gateway", otlp_port)
    orders = tracer("orders", otlp_port)
    payments = tracer("payments", otlp_port)

    def gateway_work(path: str, context: Context) -> None:
        call(orders_port, path, context)

    def orders_work(path: str, context: Context) -> None:
        for _ in range(10):
            with orders.start_as_current_span("db.query", context=context):
                time.sleep(0.001)

        def cache_get() -> None:
            with orders.start_as_current_span("cache.get", context=context):
                time.sleep(0.005)

        side_by_side = [threading.Thread(target=cache_get) for _ in range(2)]
        for thread in side_by_side:
            thread.start()
        for thread in side_by_side:
            thread.join()
        call(payments_port, path, context)

    def payments_work(path: str, context: Context) -> None:
        with payments.start_as_current_span("charge", context=context):
            time.sleep(0.02 if path == "/checkout" else 0.001)

    serve(payments_port, "payments", payments, payments_work)
    serve(orders_port, "orders", orders, orders_work)
    serve(gateway_port, "gateway", gateway, gateway_work)
    print("serving", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
