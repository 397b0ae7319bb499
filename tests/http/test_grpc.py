"""gRPC calls from a plan against grpcio's own server: unary and server streaming,
status codes as error classes, deadlines, templates and feeders, plan errors with paths.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import free_port, script_server  # tests/http is on the path

from redline.core import PlanError
from redline.engine import run_plan
from redline.plan import decode_messages, encode_message, plan_from_dict

HERE = Path(__file__).parent
PROTO = HERE.parent / "fixtures" / "grpc" / "echo.proto"


@pytest.fixture(scope="module")
def grpc_server() -> Iterator[str]:
    with script_server(HERE / "grpcserver.py") as port:
        yield f"http://127.0.0.1:{port}"


def _plan(url: str, requests: list[dict[str, Any]], **changes: Any) -> Any:
    data: dict[str, Any] = {
        "name": "grpc", "target": url, "grpc": {"proto": str(PROTO)},
        "requests": requests, "load": {"rate": "100/s"}, "duration": "1s",
        "workers": 1, "seed": 1,
    }  # fmt: skip
    data.update(changes)
    return plan_from_dict(data, source="grpc.yaml")


def test_unary_calls_per_method_over_h2c(grpc_server: str) -> None:
    plan = _plan(grpc_server, [
        {"grpc": "echo.Echo/Say", "message": {"text": "hi ${seq(1)}"}, "weight": 3},
        {"name": "count", "grpc": "echo.Echo/Count", "message": {"upto": 5}},
    ])  # fmt: skip
    assert plan.protocol == "h2c"  # gRPC implies HTTP/2
    result = run_plan(plan)
    say, count = result.endpoint("echo.Echo/Say"), result.endpoint("count")
    assert say.requests == 75
    assert say.status == {200: 75}
    assert say.errors == 0
    assert count.status == {200: 25}
    # five streamed notes a call (a frame each) arrive before its trailers, where Say has one
    assert count.bytes_in / count.requests > say.bytes_in / say.requests + 4 * 14


def test_status_codes_are_error_classes(grpc_server: str) -> None:
    plan = _plan(grpc_server, [
        {"name": "ok", "grpc": "echo.Echo/Say", "message": {"text": "x"}},
        {"name": "unavailable", "grpc": "echo.Echo/Fail", "message": {"code": 14}},
        {"name": "exhausted", "grpc": "echo.Echo/Fail", "message": {"code": 8, "text": "full"}},
        {"name": "late", "grpc": "echo.Echo/Slow", "message": {"ms": 300}, "deadline": "50ms"},
    ], load={"rate": "40/s"})  # fmt: skip
    result = run_plan(plan)
    assert result.endpoint("ok").errors == 0
    assert result.endpoint("unavailable").error_classes == {"grpc_unavailable": 10}
    assert result.endpoint("exhausted").error_classes == {"grpc_resource_exhausted": 10}
    assert result.endpoint("late").error_classes == {"grpc_deadline_exceeded": 10}


def test_an_unimplemented_method_is_classified(grpc_server: str, tmp_path: Path) -> None:
    # the same service with one more method the server does not have
    other = tmp_path / "echo.proto"
    say = "rpc Say (Note) returns (Note);"
    other.write_text(PROTO.read_text().replace(say, say + "\n  rpc Shout (Note) returns (Note);"))
    plan = _plan(grpc_server, [{"grpc": "echo.Echo/Shout", "message": {"text": "x"}}],
                 grpc={"proto": str(other)}, load={"rate": "20/s"})  # fmt: skip
    result = run_plan(plan)
    assert result.total().error_classes == {"grpc_unimplemented": 20}


def test_messages_encode_and_decode_through_the_compiled_proto() -> None:
    plan = _plan("http://127.0.0.1:1", [{"grpc": "echo.Echo/Say", "message": {"text": "a"}}])
    call = plan.requests[0].grpc
    assert call is not None
    assert (call.input_type, call.output_type) == ("echo.Note", "echo.Note")
    frame = encode_message(call, '{"text": "hello", "n": 7}')
    assert frame[0] == 0
    assert int.from_bytes(frame[1:5], "big") == len(frame) - 5
    assert decode_messages(call, frame + frame) == [{"text": "hello", "n": "7"}] * 2


@pytest.mark.parametrize(
    ("request_", "extra", "where", "expected"),
    [
        ({"grpc": "echo.Echo/Shout"}, {}, "requests[0].grpc", "no method 'Shout' in echo.Echo"),
        ({"grpc": "echo.Nope/Say"}, {}, "requests[0].grpc", "no service 'echo.Nope'"),
        ({"grpc": "echo.Echo/Say", "message": {"txt": "a"}}, {}, "requests[0].message",
         "not a echo.Note in JSON"),
        ({"grpc": "echo.Echo/Say", "path": "/x"}, {}, "requests[0].path", "remove path"),
        ({"grpc": "echo.Echo/Say"}, {"protocol": "http1"}, "protocol", "gRPC runs over HTTP/2"),
        ({"path": "/", "message": {"a": 1}}, {}, "requests[0].message", "gRPC calls only"),
    ],
)  # fmt: skip
def test_bad_grpc_entries_name_their_path(
    request_: dict[str, Any], extra: dict[str, Any], where: str, expected: str
) -> None:
    with pytest.raises(PlanError, match=expected) as caught:
        _plan("http://127.0.0.1:1", [request_], **extra)
    assert where in str(caught.value)
    assert "grpc.yaml" in str(caught.value)


def test_a_proto_that_does_not_compile_says_where(tmp_path: Path) -> None:
    broken = tmp_path / "broken.proto"
    broken.write_text('syntax = "proto3";\nmessage A { strin x = 1; }\n')
    with pytest.raises(PlanError, match=r"broken.proto:2") as caught:
        _plan("http://127.0.0.1:1", [{"grpc": "a.B/C"}], grpc={"proto": str(broken)})
    assert "grpc.proto" in str(caught.value)


def test_a_python_journey_mixes_grpc_calls_with_http(grpc_server: str, tmp_path: Path) -> None:
    """``session.grpc`` in a scenario: the reply decoded, statuses raised, per-method names."""
    plan_file = tmp_path / "journey.py"
    plan_file.write_text(f"""
from redline.core import TransportError
from redline.scenario import scenario

target = {grpc_server!r}
grpc = {{"proto": {str(PROTO)!r}}}
load = {{"vus": 2}}
duration = "1s"
workers = 1

@scenario
async def journey(s):
    note = await s.grpc("echo.Echo/Say", {{"text": "hello"}})
    s.check("echoed", note["text"] == "hello" and int(note["n"]) > 0)
    notes = await s.grpc("echo.Echo/Count", {{"upto": 3}}, name="count")
    s.check("streamed", [n["text"] for n in notes] == ["note 0", "note 1", "note 2"])
    try:
        await s.grpc("echo.Echo/Fail", {{"code": 5}})
    except TransportError as exc:
        s.check("not found", exc.error_class == "grpc_not_found")
""")
    from redline.plan import load_plan

    plan = load_plan(plan_file)
    assert plan.protocol == "h2c"
    result = run_plan(plan)
    checks = result.checks()
    for name in ("echoed", "streamed", "not found"):
        passed, failed = checks[name]
        assert passed > 10
        assert failed == 0
    assert result.endpoint("echo.Echo/Fail").error_classes == {
        "grpc_not_found": result.endpoint("echo.Echo/Fail").requests
    }


def test_grpc_through_the_fault_proxy_shows_its_latency(grpc_server: str, tmp_path: Path) -> None:
    """The fault proxy passes HTTP/2 through at L4: a latency toxic on schedule shows in
    the calls' percentiles and in the run's fault impacts."""
    import json

    port = free_port()
    upstream = grpc_server.removeprefix("http://")
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""
name: grpc-faults
target: http://127.0.0.1:{port}
grpc: {{proto: {PROTO}}}
requests: [{{grpc: echo.Echo/Say, message: {{text: hi}}}}]
load: {{rate: 50/s}}
duration: 4s
faults:
  proxies:
    - {{name: echo, listen: "127.0.0.1:{port}", upstream: "{upstream}"}}
  schedule:
    - {{name: slow, at: 1s, for: 2s, proxy: echo,
       toxic: {{type: latency, attributes: {{latency: 200}}}}}}
""")
    out = tmp_path / "run.json"
    done = subprocess.run(
        [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
         "--out", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(out.read_text())
    say = document["summary"]["endpoints"]["echo.Echo/Say"]
    assert say["errors"] == 0
    assert say["requests"] == 200
    assert say["latency_ms"]["p50"] < 50  # before and after the fault
    assert say["latency_ms"]["p90"] > 150  # the calls during it ran through the toxic
    assert say["latency_ms"]["max"] > 200
    (impact,) = document["analysis"]["faults"]
    assert impact["name"] == "slow"


def test_client_and_bidirectional_streaming_send_every_message(
    grpc_server: str,
) -> None:
    plan = _plan(grpc_server, [
        {"name": "sum", "grpc": "echo.Echo/Sum",
         "messages": [{"text": "a", "n": 1}, {"text": "b", "n": "${seq(1)}"}]},
        {"name": "chat", "grpc": "echo.Echo/Chat", "messages": [{"text": "x"}, {"text": "y"}]},
    ], load={"rate": "40/s"})  # fmt: skip
    result = run_plan(plan)
    assert result.endpoint("sum").status == {200: 20}
    assert result.endpoint("chat").status == {200: 20}
    assert result.total().errors == 0
    call = next(r.grpc for r in plan.requests if r.name == "chat")
    assert call is not None
    assert call.client_streaming
    assert call.server_streaming
    # what a bidirectional call sends: the messages one frame each
    frames = encode_message(call, '[{"text": "x"}, {"text": "y"}]')
    assert decode_messages(call, frames) == [{"text": "x"}, {"text": "y"}]


def test_messages_is_for_streaming_methods_only() -> None:
    with pytest.raises(PlanError, match="takes one message") as caught:
        _plan("http://127.0.0.1:1", [{"grpc": "echo.Echo/Say", "messages": [{"text": "a"}]}])
    assert "requests[0].messages" in str(caught.value)
