"""The httpx transport against a real server (uvicorn on loopback) that misbehaves on cue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from redline.resilience import (
    DEADLINE_HEADER,
    BreakerOpen,
    CircuitBreaker,
    Hedge,
    RetryBudget,
    deadline,
)
from redline.resilience.httpx import DeadlineTimeout, ResilientTransport

Serve = Callable[..., str]  # the serve fixture (conftest.py)


class Downstream:
    """An ASGI app that answers each request with the next scripted (status, delay, headers)."""

    def __init__(self, *script: tuple[int, float, dict[str, str]]) -> None:
        self.script = list(script)
        self.seen: list[dict[str, str]] = []  # each request's headers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        headers["method"] = scope["method"]
        self.seen.append(headers)
        step = min(len(self.seen), len(self.script)) - 1
        status, delay, extra = self.script[step]
        await asyncio.sleep(delay)
        body = str(len(self.seen)).encode()
        out = [(b"content-length", str(len(body)).encode())]
        out += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body})


def fetch(
    url: str, transport: ResilientTransport, method: str = "GET", seconds: float | None = None
) -> httpx.Response:
    async def main() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, timeout=10) as client, deadline(seconds):
            return await client.request(method, url + "/")

    return asyncio.run(main())


def recording(transport: ResilientTransport) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    transport.retry.sleep = sleep
    return slept


def test_retries_honour_retry_after_and_return_the_success(serve: Serve) -> None:
    downstream = Downstream((503, 0, {"retry-after": "3"}), (200, 0, {}))
    transport = ResilientTransport(attempts=3, budget=RetryBudget())
    slept = recording(transport)
    response = fetch(serve(downstream), transport)
    assert response.status_code == 200
    assert response.text == "2"  # the second request's answer
    assert slept[0] >= 3  # the server asked for 3 s
    assert len(downstream.seen) == 2


def test_spent_retries_return_the_last_answer(serve: Serve) -> None:
    downstream = Downstream((502, 0, {}))
    transport = ResilientTransport(attempts=3)
    recording(transport)
    response = fetch(serve(downstream), transport)
    assert response.status_code == 502
    assert response.text == "3"  # three attempts, the last one's body
    assert len(downstream.seen) == 3


def test_a_post_is_never_retried(serve: Serve) -> None:
    downstream = Downstream((503, 0, {}), (200, 0, {}))
    transport = ResilientTransport(attempts=3)
    response = fetch(serve(downstream), transport, method="POST")
    assert response.status_code == 503
    assert len(downstream.seen) == 1


def test_no_retry_beyond_the_budget(serve: Serve) -> None:
    downstream = Downstream((503, 0, {}), (200, 0, {}))
    transport = ResilientTransport(attempts=3, budget=RetryBudget(ratio=0, floor_per_s=0))
    response = fetch(serve(downstream), transport)
    assert response.status_code == 503
    assert len(downstream.seen) == 1


def test_each_host_has_a_breaker_that_opens_on_5xx(serve: Serve) -> None:
    failing, healthy = Downstream((500, 0, {})), Downstream((200, 0, {}))
    bad, good = serve(failing), serve(healthy)
    transport = ResilientTransport(breaker=lambda host: CircuitBreaker(name=host, minimum_calls=3))
    assert [fetch(bad, transport).status_code for _ in range(3)] == [500, 500, 500]
    with pytest.raises(BreakerOpen):
        fetch(bad, transport)
    assert len(failing.seen) == 3  # the refused request never left
    assert fetch(good, transport).status_code == 200  # another host, another breaker
    states = {host: b.state for host, b in transport.breakers.items()}
    assert sorted(states.values()) == ["closed", "open"]


def test_the_deadline_travels_and_bounds_the_request(serve: Serve) -> None:
    downstream = Downstream((200, 0, {}), (200, 1.0, {}))
    url = serve(downstream)
    fetch(url, ResilientTransport(), seconds=2.0)
    sent = int(downstream.seen[0][DEADLINE_HEADER.lower()])
    assert 1000 < sent <= 2000  # what was left of the caller's 2 s
    with pytest.raises(httpx.TimeoutException) as timed_out:
        fetch(url, ResilientTransport(timeout_s=0.2))
    assert isinstance(timed_out.value, DeadlineTimeout)


def test_a_slow_answer_is_hedged(serve: Serve) -> None:
    downstream = Downstream((200, 1.0, {}), (200, 0, {}))
    hedge = Hedge(delay_s=0.05)
    response = fetch(serve(downstream), ResilientTransport(hedge=hedge))
    assert response.text == "2"  # the hedge answered first
    assert hedge.won_by_hedge == 1
