"""HTTP/2 in the engine: runs against a server on h2 (another implementation), errors
classified, flow control, TLS with ALPN, and a stalled server seen from the intended start.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import pytest
import trustme
from h2server import H2Server  # tests/http is on the path (rootdir-less module)

from redline.core import PlanError
from redline.engine import run_plan
from redline.http import encode_request
from redline.http._h2 import request_block
from redline.plan import plan_from_dict


def _plan(url: str, **changes: Any) -> Any:
    data: dict[str, Any] = {
        "name": "h2",
        "target": url,
        "protocol": "h2c" if url.startswith("http:") else "h2",
        "requests": [{"name": "get", "path": "/"}],
        "load": {"rate": "200/s"},
        "duration": "1s",
        "workers": 1,
        "seed": 1,
    }
    data.update(changes)
    return plan_from_dict(data, source="test")


def test_open_model_over_h2c_sends_the_schedule_on_few_connections() -> None:
    with H2Server() as server:
        result = run_plan(_plan(f"http://127.0.0.1:{server.port}", load={"rate": "400/s"},
                                duration="2s"))  # fmt: skip
        total = result.total()
        assert total.requests == 800 == server.requests
        assert total.status == {200: 800}
        # 800 requests at 400/s with streams multiplexed: a connection or two, not dozens
        assert server.connections <= 2
        gen = result.generator()
        assert (gen.scheduled, gen.sent, gen.dropped) == (800, 800, 0)
        assert result.plan.protocol == "h2c"  # kept with the run
        assert result.plan.to_dict()["limits"]["max_streams"] == 100
        # bytes out are the HEADERS frames sent, not the request as HTTP/1.1 would be
        data = encode_request("GET", "/", host=f"127.0.0.1:{server.port}")
        block, _, _ = request_block(data, b"http")
        assert total.bytes_out == 800 * (9 + len(block)) < 800 * len(data)


def test_closed_model_users_are_streams_within_the_servers_limit() -> None:
    # the server allows 4 concurrent streams a connection: 12 users need 3 connections,
    # and no stream is refused for going over
    with H2Server(max_streams=4) as server:
        result = run_plan(_plan(f"http://127.0.0.1:{server.port}", load={"vus": 12},
                                requests=[{"name": "slow", "path": "/delay/5"}]))  # fmt: skip
        total = result.total()
        assert total.requests == server.requests
        assert total.errors == 0
        assert total.requests > 100  # 12 users x ~5 ms each for 1 s
        assert 3 <= server.connections <= 4


def test_status_codes_and_resets_are_classified() -> None:
    with H2Server() as server:
        result = run_plan(_plan(
            f"http://127.0.0.1:{server.port}",
            requests=[
                {"name": "ok", "path": "/"},
                {"name": "down", "path": "/status/503"},
                {"name": "refused", "path": "/refuse"},
            ],
            load={"rate": "150/s"},
        ))  # fmt: skip
        assert result.endpoint("ok").status == {200: 50}
        assert result.endpoint("down").status == {503: 50}
        assert result.endpoint("down").errors == 50
        refused = result.endpoint("refused")
        assert refused.error_classes == {"h2_rst_refused_stream": 50}
        assert server.requests == 50 + 50 + 3 * 50
        assert result.endpoint("ok").errors == 0


def test_goaway_ends_a_connection_and_unprocessed_requests_go_again_on_a_new_one() -> None:
    with H2Server() as server:
        result = run_plan(_plan(
            f"http://127.0.0.1:{server.port}",
            requests=[{"name": "ok", "path": "/", "weight": 9},
                      {"name": "bye", "path": "/goaway", "weight": 1}],
            load={"rate": "200/s"},
        ))  # fmt: skip
        total = result.total()
        assert result.endpoint("bye").requests == 20
        assert server.connections >= 10  # every GOAWAY closed one
        # requests past a GOAWAY's last stream were never processed: sent again, none lost
        assert total.status == {200: 200}
        assert total.errors == 0


def test_refused_streams_are_sent_again_then_reported() -> None:
    with H2Server() as server:
        result = run_plan(_plan(f"http://127.0.0.1:{server.port}",
                                requests=[{"name": "refused", "path": "/refuse"}],
                                load={"rate": "20/s"}))  # fmt: skip
        assert result.endpoint("refused").error_classes == {"h2_rst_refused_stream": 20}
        assert server.requests == 3 * 20  # three sends each: REFUSED_STREAM is safe to retry


def test_request_bodies_wait_on_flow_control_and_arrive_whole() -> None:
    # the server's stream window is 1,000 bytes: a 50 kB body goes out as the server
    # opens the window (WINDOW_UPDATE), and comes back intact
    body = "x" * 50_000
    with H2Server(window=1_000) as server:
        result = run_plan(_plan(
            f"http://127.0.0.1:{server.port}",
            requests=[{"name": "echo", "method": "POST", "path": "/echo", "body": body}],
            load={"rate": "20/s"},
        ))  # fmt: skip
        echo = result.endpoint("echo")
        assert echo.status == {200: 20}
        assert echo.bytes_in >= 20 * 50_000


def test_a_large_response_is_read_across_window_updates() -> None:
    size = 20 * 1024 * 1024  # beyond redline's 16 MiB stream window: updates are needed
    with H2Server() as server:
        result = run_plan(_plan(
            f"http://127.0.0.1:{server.port}",
            requests=[{"name": "big", "path": f"/bytes/{size}"}],
            load={"rate": "2/s"}, timeouts={"read": "20s"},
        ))  # fmt: skip
        big = result.endpoint("big")
        assert big.status == {200: 2}
        assert big.bytes_in >= 2 * size


def _tls() -> tuple[ssl.SSLContext, trustme.CA]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    return server, ca


def test_h2_over_tls_negotiates_by_alpn() -> None:
    context, _ = _tls()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with H2Server(tls=context) as server:
        result = run_plan(_plan(f"https://127.0.0.1:{server.port}", tls={"verify": False}))
        assert result.total().status == {200: 200}
        assert server.requests == 200


def test_a_server_that_will_not_speak_h2_fails_alpn() -> None:
    context, _ = _tls()
    context.set_alpn_protocols(["http/1.1"])
    with H2Server(tls=context) as server:
        result = run_plan(_plan(f"https://127.0.0.1:{server.port}", tls={"verify": False},
                                load={"rate": "20/s"}))  # fmt: skip
        total = result.total()
        assert total.error_classes == {"h2_alpn": 20}
        assert server.requests == 0


def test_a_stall_shows_in_the_open_models_p99_as_for_http1() -> None:
    """The same stall as the HTTP/1.1 test: 200 ms every 2 s, at 1,000 req/s.

    Streams are multiplexed, so nothing queues behind a connection; the latency from the
    intended start still carries the stall into p99, and the closed model hides it.
    """
    start = time.monotonic()

    def stall(protocol: Any, stream_id: int, path: str, body: bytes) -> bool:
        phase = (time.monotonic() - start) % 2.0
        if phase < 0.2:  # held until the stall ends
            loop = protocol.server.loop
            loop.call_later(0.2 - phase, protocol._respond, stream_id, 200, b"late")
            return True
        return False

    with H2Server(handler=stall) as server:
        url = f"http://127.0.0.1:{server.port}"
        open_run = run_plan(_plan(url, load={"rate": "1000/s"}, duration="5s"))
        closed_run = run_plan(_plan(url, load={"vus": 4}, duration="5s"))
    assert open_run.total().errors == 0
    assert open_run.total().latency_ms["p99"] > 150
    assert closed_run.total().latency_ms["p99"] < 150
    assert closed_run.total().latency_ms["max"] > 150


def test_one_blocked_stream_does_not_hold_up_the_others() -> None:
    with H2Server() as server:
        result = run_plan(_plan(
            f"http://127.0.0.1:{server.port}",
            requests=[{"name": "ok", "path": "/", "weight": 99},
                      {"name": "stuck", "path": "/stall", "weight": 1}],
            load={"rate": "200/s"}, duration="2s", timeouts={"read": "1s"},
        ))  # fmt: skip
        stuck, ok = result.endpoint("stuck"), result.endpoint("ok")
        assert stuck.error_classes == {"read_timeout": stuck.requests}
        assert ok.errors == 0
        assert ok.latency_ms["p99"] < 100  # no head-of-line blocking behind the stuck stream
        assert server.resets == stuck.requests  # each timed-out stream was reset (CANCEL)


@pytest.mark.parametrize(
    ("target", "protocol", "expected"),
    [
        ("http://127.0.0.1:1", "h2", "h2 is negotiated over TLS"),
        ("https://127.0.0.1:1", "h2c", "h2c is HTTP/2 over plain TCP"),
        ("http://127.0.0.1:1", "h3", 'expected "http1", "h2" or "h2c"'),
    ],
)
def test_protocol_and_scheme_must_agree(target: str, protocol: str, expected: str) -> None:
    with pytest.raises(PlanError, match=expected) as caught:
        plan_from_dict(
            {"target": target, "protocol": protocol, "requests": [{"path": "/"}],
             "load": {"rate": "1/s"}, "duration": "1s"}, source="p.yaml",
        )  # fmt: skip
    assert "p.yaml" in str(caught.value)
    assert "protocol" in str(caught.value)


def test_users_beyond_connections_times_streams_are_refused() -> None:
    with pytest.raises(PlanError, match=r"x limits.max_streams \(10\) is 20"):
        plan_from_dict(
            {"target": "http://127.0.0.1:1", "protocol": "h2c", "requests": [{"path": "/"}],
             "limits": {"max_connections": 2, "max_streams": 10},
             "load": {"vus": 21}, "duration": "1s"}, source="p.yaml",
        )  # fmt: skip
