"""Session and SessionRuntime against the real test server, in one event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from redline.core import ConnectError
from redline.engine import Response, Session
from redline.engine._recorder import Recorder
from redline.engine._requests import host_header
from redline.engine._session import SessionRuntime
from redline.engine._worker import pool_options
from redline.plan import quick_plan
from redline.testing import Behaviour, TestServer

ROUTES = {
    "/login": Behaviour(
        body=b'{"token": "t-9"}', content_type="application/json", set_cookie="sid=abc; Path=/"
    ),
    "/private": Behaviour(require_headers={"Authorization": "Bearer t-9"}),
    "/cookie": Behaviour(require_headers={"Cookie": "sid=abc"}),
    "/missing": Behaviour(status=404),
    "/text": Behaviour(body="héllo".encode("latin-1"), content_type="text/plain; charset=latin-1"),
}


def run(
    scenario: Callable[[Session, SessionRuntime], Awaitable[Any]], server: TestServer | None = None
) -> Any:
    async def main() -> Any:
        async with server or TestServer(routes=ROUTES) as srv:
            plan = quick_plan(srv.url, rate="1/s")
            runtime = SessionRuntime(
                pool_options(plan), host_header=host_header(plan), recorder=Recorder([])
            )
            try:
                return await scenario(Session(runtime), runtime), srv, runtime
            finally:
                await runtime.pool.aclose()

    return asyncio.run(main())


def test_json_token_and_default_headers() -> None:
    async def scenario(s: Session, _: SessionRuntime) -> list[int]:
        r = await s.post("/login", json={"user": "ada"}, name="login")
        s.headers["Authorization"] = f"Bearer {r.json()['token']}"
        private = await s.get("/private", name="private")
        return [r.status, private.status]

    statuses, server, runtime = run(scenario)
    assert statuses == [200, 200]
    assert server.responses_by_status == {200: 2}
    taken = runtime.recorder.take()
    assert taken["login"].requests == 1
    assert taken["private"].status == {200: 1}
    assert taken["login"].bytes_out > 0


def test_cookies_are_kept_and_sent_back() -> None:
    async def scenario(s: Session, _: SessionRuntime) -> int:
        await s.post("/login")
        assert s.cookies == {"sid": "abc"}
        return (await s.get("/cookie")).status

    status, server, _ = run(scenario)
    assert status == 200
    assert server.responses_by_status[401] == 0


def test_query_text_and_headers() -> None:
    async def scenario(s: Session, _: SessionRuntime) -> Response:
        return await s.get("/text", query={"q": "lamp", "n": 2})

    response, server, _ = run(scenario)
    assert response.text == "héllo"
    assert response.headers["content-type"] == "text/plain; charset=latin-1"
    assert response.ok
    assert server.requests_by_path["/text"] == 1


def test_expect_turns_statuses_into_successes_or_errors() -> None:
    async def scenario(s: Session, _: SessionRuntime) -> None:
        await s.get("/missing", name="expected", expect=404)
        await s.get("/missing", name="default")
        await s.get("/text", name="unexpected", expect=[201, 204])

    _, _, runtime = run(scenario)
    taken = runtime.recorder.take()
    assert (taken["expected"].errors, taken["expected"].error_classes) == (0, {})
    assert (taken["default"].errors, taken["default"].error_classes) == (1, {})
    assert taken["unexpected"].errors == 1
    assert taken["unexpected"].error_classes == {"unexpected_status": 1}
    assert taken["unexpected"].status == {200: 1}


def test_checks_and_groups_are_counted() -> None:
    async def scenario(s: Session, runtime: SessionRuntime) -> dict[str, tuple[int, int]]:
        async with s.group("pair"):
            assert s.check("ok", (await s.get("/text")).ok)
            assert not s.check("ok", (await s.get("/missing")).ok)
        with pytest.raises(ValueError, match="inner"):
            async with s.group("failing"):
                raise ValueError("inner")
        return runtime.take_counters()[0]

    checks, _, runtime = run(scenario)
    assert checks == {"ok": (1, 1)}
    taken = runtime.recorder.take()
    assert taken[("group", "pair")].requests == 1
    assert taken[("group", "pair")].latency.total_count == 1
    assert taken[("group", "failing")].error_classes == {"ValueError": 1}


def test_transport_failure_raises_and_is_recorded() -> None:
    async def scenario(s: Session, _: SessionRuntime) -> None:
        with pytest.raises(ConnectError) as info:
            await s.get("/", name="down")
        assert info.value.error_class == "connect_refused"

    async def main() -> None:
        plan = quick_plan("http://127.0.0.1:1/", rate="1/s")
        runtime = SessionRuntime(
            pool_options(plan), host_header=host_header(plan), recorder=Recorder([])
        )
        await scenario(Session(runtime), runtime)
        await runtime.pool.aclose()
        assert runtime.recorder.take()["down"].error_classes == {"connect_refused": 1}

    asyncio.run(main())


def test_many_sessions_share_a_few_connections() -> None:
    async def scenario(s: Session, runtime: SessionRuntime) -> int:
        sessions = [Session(runtime) for _ in range(20)]
        await asyncio.gather(*(x.get("/text") for x in sessions for _ in range(5)))
        return runtime.pool.size

    size, server, _ = run(scenario)
    assert server.requests_total == 100
    # 100 requests at once from 20 sessions: they wait for connections the pool opens at
    # most 32 at a time (max_connecting) and reuse them, never one per request (100)
    assert 1 <= size <= 32


def test_measure_times_work_that_is_not_http_as_an_endpoint() -> None:
    async def scenario(s: Session, runtime: SessionRuntime) -> None:
        async with s.measure("queue.publish"):
            await asyncio.sleep(0.02)
        with s.measure("queue.publish"):  # blocking code: the same histograms
            time.sleep(0.01)  # noqa: ASYNC251 (blocking code is what the sync form is for)
        with pytest.raises(ConnectionError):
            async with s.measure("queue.publish"):
                raise ConnectionError("broker gone")
        await s.get("/text", name="text")

    _, _, runtime = run(scenario)
    taken = runtime.recorder.take()
    published = taken["queue.publish"]
    assert published.requests == 3
    assert published.errors == 1
    assert published.error_classes == {"ConnectionError": 1}
    assert published.latency.total_count == 2
    assert 9_000 <= published.latency.min <= 15_000  # microseconds: the 10 ms block
    assert 19_000 <= published.latency.max <= 40_000  # and the 20 ms one
    assert taken["text"].requests == 1  # beside the HTTP endpoint, not instead of it
