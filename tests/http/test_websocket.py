"""WebSocket plans against the websockets library's asyncio server: connections held,
messages on a schedule, round trips matched and timed from the intended send, errors
classified, compression offered only when asked, plan errors with their paths.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import script_server  # tests/http is on the path

from redline.core import PlanError
from redline.engine import run_plan
from redline.plan import plan_from_dict

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def ws_server() -> Iterator[str]:
    with script_server(HERE / "wsserver.py") as port:
        yield f"ws://127.0.0.1:{port}"


def _plan(url: str, websocket: dict[str, Any], **changes: Any) -> Any:
    data: dict[str, Any] = {
        "name": "ws", "target": url, "websocket": websocket, "load": {"vus": 20},
        "duration": "2s", "workers": 1, "seed": 1,
    }  # fmt: skip
    data.update(changes)
    return plan_from_dict(data, source="ws.yaml")


def test_echo_round_trips_on_each_connections_own_schedule(ws_server: str) -> None:
    result = run_plan(_plan(ws_server, {"path": "/echo", "every": "100ms",
                                        "message": "hello ${seq()}"}))  # fmt: skip
    connect, message = result.endpoint("connect"), result.endpoint("message")
    assert connect.status == {101: 20}
    # 20 connections x 10 messages a second x 2 s, each starting at a random point of
    # its first 100 ms: 380 to 400 sent, every one answered
    assert 380 <= message.requests <= 400
    assert message.status == {101: message.requests}
    assert message.errors == 0
    assert message.latency_ms["p50"] < 50


def test_replies_are_matched_by_a_field_among_the_servers_own_messages(ws_server: str) -> None:
    result = run_plan(_plan(ws_server, {
        "path": "/json", "every": "100ms", "correlate": "id",
        "message": {"id": "${seq()}", "text": "hi"}, "name": "rpc",
    }))  # fmt: skip
    rpc = result.endpoint("rpc")
    assert rpc.requests >= 380
    assert rpc.errors == 0  # the pushes ({"push": true}) are not mistaken for replies
    metrics = result.metrics()
    sent, received = metrics["ws.messages_sent"].total, metrics["ws.messages_received"].total
    assert sent >= rpc.requests
    assert received >= 2 * rpc.requests  # a push and a reply for each message


def test_a_slow_server_shows_from_the_intended_send_and_the_sender_keeps_time(
    ws_server: str,
) -> None:
    # the server answers each message 300 ms late, one at a time per connection: the
    # sender still sends every 100 ms, and the wait queues up in the round trips
    result = run_plan(_plan(ws_server, {"path": "/slow", "every": "100ms", "message": "x"},
                            load={"vus": 5}, duration="3s", timeouts={"read": "20s"}))  # fmt: skip
    message = result.endpoint("message")
    assert message.requests + sum(message.error_classes.values()) >= 140  # 5 x 10/s x 3 s
    assert message.latency_ms["p50"] > 300
    assert message.latency_ms["max"] > 1000  # queued behind earlier ones: not hidden


def test_a_server_that_closes_is_counted_and_the_users_connect_again(ws_server: str) -> None:
    result = run_plan(_plan(ws_server, {"path": "/close", "every": "200ms", "message": "x"},
                            load={"vus": 4}))  # fmt: skip
    message, connect = result.endpoint("message"), result.endpoint("connect")
    assert set(message.error_classes) == {"ws_closed"}
    assert message.error_classes["ws_closed"] >= 8
    assert connect.status[101] > 4  # each closed connection was opened again


def test_a_refused_upgrade_is_a_handshake_error(ws_server: str) -> None:
    result = run_plan(_plan(ws_server, {"path": "/reject"}, load={"vus": 3}, duration="1s"))
    connect = result.endpoint("connect")
    assert set(connect.error_classes) == {"ws_handshake_403"}
    assert connect.error_classes["ws_handshake_403"] >= 3


def _upgrade_request(websocket: dict[str, Any]) -> bytes:
    """The handshake redline sends, as a bare TCP server sees it (then refused)."""
    seen: list[bytes] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def answer() -> None:
            server.settimeout(10)
            while not seen:  # the run first checks the port with a bare connect
                conn, _ = server.accept()
                with conn:
                    data = conn.recv(65536)
                    if data:
                        seen.append(data)
                        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        run_plan(_plan(f"ws://127.0.0.1:{port}", websocket, load={"vus": 1}, duration="1s"))
        thread.join(10)
    return seen[0]


def test_per_message_compression_is_offered_only_when_asked() -> None:
    plain = _upgrade_request({"path": "/"})
    assert b"upgrade: websocket" in plain.lower()
    assert b"permessage-deflate" not in plain.lower()
    deflate = _upgrade_request({"path": "/", "compression": True})
    assert b"permessage-deflate" in deflate.lower()


@pytest.mark.parametrize(
    ("websocket", "extra", "where", "expected"),
    [
        ({"every": "1s"}, {}, "websocket.every", "need a message"),
        ({"message": {"a": 1}, "correlate": "id"}, {}, "websocket.correlate", "no field 'id'"),
        ({"path": "echo"}, {}, "websocket.path", 'starting with "/"'),
        ({}, {"load": {"rate": "10/s"}}, "load", "give load.vus"),
        ({}, {"requests": [{"path": "/"}]}, "requests", "remove requests"),
        ({"bogus": 1}, {}, "websocket", "bogus"),
    ],
)  # fmt: skip
def test_bad_websocket_sections_name_their_path(
    websocket: dict[str, Any], extra: dict[str, Any], where: str, expected: str
) -> None:
    with pytest.raises(PlanError, match=expected) as caught:
        _plan("ws://127.0.0.1:1", websocket, **extra)
    assert where in str(caught.value)
