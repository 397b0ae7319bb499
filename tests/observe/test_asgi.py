"""The runtime middleware on a real server: SLI counters, in-flight, loop lag, GC pauses."""

from __future__ import annotations

import contextlib
import gc
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from redline.observe import PrometheusSampler
from redline.observe.asgi import RuntimeMetrics


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["path"] == "/block":
        time.sleep(0.3)  # noqa: ASYNC251 - holds the event loop on purpose: the probe must see it
    if scope["path"] == "/gc":
        gc.collect()
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def get(url: str) -> None:
    with contextlib.suppress(urllib.error.HTTPError):  # a 404 is an answer too
        urllib.request.urlopen(url, timeout=5).read()


def samples(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_requests_latency_gc_and_loop_lag_are_exported(serve: Callable[..., str]) -> None:
    wrapped = RuntimeMetrics(app, lag_interval_s=0.05)
    try:
        url = serve(wrapped)
        for _ in range(3):
            get(url + "/")
        get(url + "/missing")
        get(url + "/gc")
        get(url + "/block")
        time.sleep(0.2)
        seen = samples(url)
    finally:
        wrapped.close()
    assert seen["http_requests_total{code=200,method=GET,route=/}"] == 3
    assert seen["http_requests_total{code=200,method=GET,route=/block}"] == 1
    assert seen["http_requests_total{code=404,method=GET,route=/missing}"] == 1
    counted = [v for k, v in seen.items() if k.startswith("http_request_duration_seconds_count")]
    assert sum(counted) == 6
    assert seen["http_requests_in_flight{}"] == 0
    assert seen["python_gc_collections_total{generation=2}"] >= 1
    assert seen["python_gc_pause_seconds_count{generation=2}"] >= 1
    late = (
        seen["python_event_loop_lag_seconds_bucket{le=+Inf}"]
        - seen["python_event_loop_lag_seconds_bucket{le=0.1}"]
    )
    assert late >= 1  # the 300 ms block made at least one probe over 100 ms late


def test_its_gauges_become_a_runs_series_through_the_prometheus_sampler(
    serve: Callable[..., str],
) -> None:
    wrapped = RuntimeMetrics(app)
    try:
        url = serve(wrapped)
        get(url + "/")
        reading = PrometheusSampler(url + "/metrics").read()
    finally:
        wrapped.close()
    assert reading.gauges["http_requests_in_flight"] == 0
    assert reading.counters['http_requests_total{code="200",method="GET",route="/"}'] == 1


def test_it_continues_the_callers_trace_and_its_calls_join_it(serve: Callable[..., str]) -> None:
    from redline.observe import OtlpReceiver, trace_headers

    seen_headers: list[dict[str, str]] = []

    async def calling(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen_headers.append(trace_headers())  # what a call to another service would carry
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    receiver = OtlpReceiver(port=0)
    with receiver.running():
        wrapped = RuntimeMetrics(calling, otlp=receiver.endpoint, service="shop")
        try:
            url = serve(wrapped)
            parent = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
            request = urllib.request.Request(url + "/products/42", headers={"traceparent": parent})
            with urllib.request.urlopen(request, timeout=5) as answer:
                answer.read()
        finally:
            wrapped.close()  # posts the last spans
    (span,) = receiver.spans()["ab" * 16]
    assert (span.service, span.name, span.parent_id) == ("shop", "GET /products/{id}", "cd" * 8)
    assert seen_headers == [{"traceparent": f"00-{'ab' * 16}-{span.span_id}-01"}]
