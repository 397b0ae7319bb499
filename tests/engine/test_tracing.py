"""Trace context on the engine's requests, and which traced requests a worker keeps."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from redline.engine._tracing import Tracer
from redline.http import RequestParser, encode_request
from redline.plan import TracePlan

PREFIX = "0123456789abcdef"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-01$")


def test_the_header_goes_in_the_head_and_the_body_stays_whole() -> None:
    tracer = Tracer(TracePlan(enabled=True), prefix=PREFIX, endpoints=1)
    data = encode_request("POST", "/orders", host="shop", headers=[("X-A", "1")], body=b"{}")
    traced, n = tracer.inject(data)
    (request,) = RequestParser().feed(traced)
    headers = {k.lower(): v for k, v in request.headers}
    found = TRACEPARENT.match(headers["traceparent"])
    assert found is not None
    assert found[1] == tracer.trace_id(n)
    assert found[1].startswith(PREFIX)
    assert int(found[2], 16) == n
    assert request.body == b"{}"
    assert headers["x-a"] == "1"


@given(st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=300))
def test_the_slowest_of_each_endpoint_are_kept_exactly(latencies: list[int]) -> None:
    tracer = Tracer(TracePlan(enabled=True, slowest=5, sample=0), prefix=PREFIX, endpoints=2)
    numbers = []
    for latency in latencies:
        _, n = tracer.inject(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        numbers.append(n)
        tracer.completed(0, n, latency, 200)
    kept = tracer.take()
    assert all(why == "slowest" and endpoint == 0 for _, endpoint, _, _, why in kept)
    assert sorted(ms for _, _, ms, _, _ in kept) == sorted(v / 1e6 for v in latencies)[-5:]
    assert tracer.take() == []  # taken: the next interval starts empty


def test_failed_are_kept_up_to_the_cap_and_one_in_every_whatever_its_latency() -> None:
    tracer = Tracer(
        TracePlan(enabled=True, slowest=0, failed=2, sample=0.25), prefix=PREFIX, endpoints=1
    )
    for n in range(1, 9):
        tracer.completed(0, n, 1000, 500 if n <= 3 else 200)
    kept = tracer.take()
    failed = [k for k in kept if k[4] == "failed"]
    sampled = [k for k in kept if k[4] == "sampled"]
    assert [k[3] for k in failed] == [500, 500]
    assert [k[0][-16:] for k in sampled] == [f"{4:016x}", f"{8:016x}"]


@given(
    st.lists(
        st.tuples(st.integers(0, 1), st.integers(1, 10**9), st.sampled_from([200, 200, 503])),
        min_size=1,
        max_size=400,
    ),
    st.sampled_from([0.0, 0.01, 0.5]),
)
def test_the_drivers_shortcut_keeps_exactly_what_weighing_every_request_keeps(
    requests: list[tuple[int, int, int]], sample: float
) -> None:
    plan = TracePlan(enabled=True, slowest=3, sample=sample)
    everything = Tracer(plan, prefix=PREFIX, endpoints=2)
    shortcut = Tracer(plan, prefix=PREFIX, endpoints=2)
    for n, (endpoint, latency, status) in enumerate(requests, start=1):
        everything.completed(endpoint, n, latency, status)
        # what TracedHttpRequests.response_complete checks before calling completed()
        if latency > shortcut.floor[endpoint] or status >= 400 or not n % shortcut.every:
            shortcut.completed(endpoint, n, latency, status)
    assert sorted(shortcut.take()) == sorted(everything.take())
