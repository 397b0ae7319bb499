"""redline's own fault proxy as the rollout's weighted splitter, request by request."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from redline.engine import run_plan
from redline.faults import FaultProxy
from redline.plan import plan_from_dict
from redline.rollout import (
    PROMOTED,
    ROLLED_BACK,
    ProxySplitter,
    RolloutPlan,
    SplitterError,
    judge,
    progressive_rollout,
)
from redline.testing import Behaviour, TestServer

from .test_judge import cohort, recorded  # noqa: F401 - the fixture, shared

Server = Callable[..., TestServer]


@pytest.fixture
def faults() -> Iterator[FaultProxy]:
    proxy = FaultProxy(host="127.0.0.1", port=0, seed=7)
    with proxy.running():
        yield proxy


def send(url: str, requests: int) -> None:
    plan = {
        "name": "through-the-proxy",
        "target": url,
        "requests": [{"name": "home", "path": "/"}],
        "load": {"rate": f"{requests // 2}/s"},
        "duration": "2s",
        "workers": 1,
    }
    run_plan(plan_from_dict(plan, source="test"))


@pytest.mark.timeout(120)
def test_the_proxy_splits_requests_by_weight_on_kept_alive_connections(
    redline_server: Server, faults: FaultProxy
) -> None:
    stable = redline_server(Behaviour(latency=0.001), seed=1)
    canary = redline_server(Behaviour(latency=0.001), seed=2)
    upstreams = [u.removeprefix("http://").rstrip("/") for u in (stable.url, canary.url)]
    proxy = faults.call(faults.create("shop", "127.0.0.1:0", upstreams[0], http=True))
    splitter = ProxySplitter(faults.api_url, "shop", upstreams[0], upstreams[1])
    splitter.set_canary_weight(20)
    send(f"http://{proxy.listen}", 1000)
    # Per request, not per connection: the load generator keeps its few connections
    # alive, and still about a fifth of the requests reach the canary.
    assert stable.requests_total + canary.requests_total == 1000
    assert 140 <= canary.requests_total <= 260
    with urllib.request.urlopen(f"{faults.api_url}/proxies/shop", timeout=5) as answer:
        shown = json.loads(answer.read())
    assert shown["split"] == [
        {"upstream": upstreams[0], "weight": 80.0},
        {"upstream": upstreams[1], "weight": 20.0},
    ]
    splitter.set_canary_weight(0)
    before = canary.requests_total
    send(f"http://{proxy.listen}", 200)
    assert canary.requests_total == before  # weight 0: nothing
    with pytest.raises(SplitterError, match="answered 404"):
        ProxySplitter(faults.api_url, "nobody", upstreams[0], upstreams[1]).set_canary_weight(5)


def test_a_rollout_through_the_proxy_promotes_or_rolls_back(
    faults: FaultProxy,
    recorded: tuple[np.ndarray, np.ndarray],  # noqa: F811
) -> None:
    proxy = faults.call(faults.create("shop", "127.0.0.1:0", "127.0.0.1:9", http=True))
    splitter = ProxySplitter(faults.api_url, "shop", "127.0.0.1:9", "127.0.0.1:10")
    rng = np.random.default_rng(5)
    base = cohort(recorded, rng)
    good, slow = cohort(recorded, rng), cohort(recorded, rng, scale=1.5)
    plan = RolloutPlan(weights=(5, 25, 100), interval_s=1)
    promoted = progressive_rollout(
        plan, splitter, lambda _: judge(base, good), sleep=lambda _: None
    )
    assert promoted.outcome == PROMOTED
    assert proxy.split == (("127.0.0.1:9", 0.0), ("127.0.0.1:10", 100.0))
    rolled = progressive_rollout(plan, splitter, lambda _: judge(base, slow), sleep=lambda _: None)
    assert rolled.outcome == ROLLED_BACK
    assert proxy.split == (("127.0.0.1:9", 100.0), ("127.0.0.1:10", 0.0))
