"""Traces end to end: redline's traceparent, three services exporting OTLP, the join."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import redline
from redline.observe import OtlpReceiver, decode_otlp, load_otlp_json
from redline.observe._otlp import OtlpError
from redline.plan import plan_from_dict

SERVICES = Path(__file__).with_name("traced_services.py")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_spans_join_the_requests_and_say_where_each_routes_time_goes() -> None:
    gateway, orders, payments, otlp = free_ports(4)
    plan = plan_from_dict(
        {
            "name": "traced",
            "target": f"http://127.0.0.1:{gateway}",
            "requests": [
                {"name": "checkout", "path": "/checkout"},
                {"name": "fast", "path": "/fast"},
            ],
            "load": {"rate": "20/s"},
            "duration": "4s",
            "workers": 1,
            "trace": {"sample": 1.0, "otlp": f"127.0.0.1:{otlp}", "wait": "5s"},
            "observe": {
                "serve": f"{sys.executable} {SERVICES} {gateway} {orders} {payments} {otlp}"
            },
        },
        source="test",
    )
    outcome = redline.run(plan)
    traces = outcome.traces
    assert traces is not None
    assert traces.counts["joined"] > 40  # every request is traced at sample 1.0
    assert traces.counts.get("dropped", 0) == 0
    checkout = {(s.service, s.span): s for s in traces.attribution["checkout"]["p50"]}
    fast = {(s.service, s.span): s for s in traces.attribution["fast"]["p50"]}
    charge = checkout[("payments", "charge")].ms
    assert 18.0 <= charge <= 22.0  # 20 ms of payments, +-10%
    assert fast[("payments", "charge")].ms < 5.0
    # two 5 ms cache reads side by side are 5 ms of the path, not 10
    assert 4.5 <= checkout[("orders", "cache.get")].ms <= 7.5
    assert traces.spans_per_request["checkout"]["db.query"] == 10
    assert traces.spans_per_request["checkout"]["cache.get"] == 2
    # one call from service to service each, on every request (a trace whose spans are
    # still on their way may lack one: the mean, not exactly 1)
    calls = traces.calls_per_request["checkout"]
    assert set(calls) == {"gateway -> orders", "orders -> payments"}
    assert all(0.9 <= n <= 1.0 for n in calls.values()), calls
    assert abs(sum(s.share for s in traces.attribution["checkout"]["p50"]) - 1) < 1e-9
    waterfall = traces.waterfalls["checkout"]
    assert waterfall.spans[0].parent_id is None  # the target's root span first
    assert sum(s.name == "db.query" for s in waterfall.spans) == 10
    document = json.loads(json.dumps(outcome.to_dict()))
    assert document["traces"]["exemplars"][0]["trace_id"] == traces.exemplars[0].trace_id


def otlp_json(trace: str = "0af7651916cd43dd8448eb211c80319c") -> dict[str, object]:
    service = {"key": "service.name", "value": {"stringValue": "api"}}
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [service]},
                "scopeSpans": [
                    {
                        "spans": [
                            {"traceId": trace, "spanId": "b7ad6b7169203331", "name": "GET /",
                             "startTimeUnixNano": "1000", "endTimeUnixNano": "5000",
                             "status": {"code": 2}},
                        ]
                    }
                ],
            }
        ]
    }  # fmt: skip


def test_otlp_json_and_its_errors(tmp_path: Path) -> None:
    spans = decode_otlp(json.dumps(otlp_json()).encode(), "application/json")
    assert [(s.service, s.name, s.start_ns, s.end_ns, s.error) for s in spans] == [
        ("api", "GET /", 1000, 5000, True)
    ]
    with pytest.raises(OtlpError, match=r"spans\[0\]\.traceId: expected 32 hex digits"):
        decode_otlp(json.dumps(otlp_json("xyz")).encode(), "application/json")
    lines = tmp_path / "spans.jsonl"
    lines.write_text(json.dumps(otlp_json()) + "\n" + json.dumps(otlp_json()) + "\nnot json\n")
    with pytest.raises(Exception, match=r"spans.jsonl: line 3: not JSON"):
        load_otlp_json(str(lines))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["application/x-protobuf", "application/json"]))
def test_any_body_is_spans_or_a_clear_error_never_a_crash(body: bytes, kind: str) -> None:
    try:
        spans = decode_otlp(body, kind)
    except OtlpError:
        return
    assert isinstance(spans, list)


def test_the_receiver_answers_rejects_and_caps(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    receiver = OtlpReceiver(port=0, max_spans=1)
    with receiver.running():
        body = json.dumps(otlp_json()).encode()
        for _ in range(2):
            request = urllib.request.Request(
                receiver.endpoint, data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert answer.status == 200
        bad = urllib.request.Request(
            receiver.endpoint, data=b"{", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(bad, timeout=5)
        assert refused.value.code == 400
        refused.value.close()
    assert receiver.counts() == {"received": 2, "dropped": 1, "rejected": 1}
    assert sum(len(v) for v in receiver.spans().values()) == 1


def test_a_flow_of_scenario_steps_is_traced_and_joined_too() -> None:
    gateway, orders, payments, otlp = free_ports(4)
    plan = plan_from_dict(
        {
            "name": "traced-flow",
            "target": f"http://127.0.0.1:{gateway}",
            "flows": [
                {
                    "name": "buy",
                    "steps": [
                        {"name": "checkout", "path": "/checkout"},
                        {"name": "fast", "path": "/fast"},
                    ],
                }
            ],
            "load": {"vus": 2},
            "duration": "3s",
            "workers": 1,
            "trace": {"sample": 1.0, "otlp": f"127.0.0.1:{otlp}", "wait": "5s"},
            "observe": {
                "serve": f"{sys.executable} {SERVICES} {gateway} {orders} {payments} {otlp}"
            },
        },
        source="test",
    )
    traces = redline.run(plan).traces
    assert traces is not None
    assert traces.counts["joined"] > 10
    assert {e.endpoint for e in traces.exemplars} >= {"checkout", "fast"}
    assert traces.spans_per_request["checkout"]["db.query"] == 10
