"""Request phases timed end to end: DNS, connect, TLS, send, wait (first byte), receive.

A TLS test server on loopback delays every answer by 30 ms: the time to first byte is
that delay, and the set-up phases are spent once per connection, never on a reused one.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
import trustme

from redline.analysis import evaluate
from redline.core import FAIL, PASS, Histogram, RunResult, parse_objective
from redline.engine import run_plan
from redline.http import PHASE_EVERY
from redline.testing import Behaviour, TestServer

from .conftest import make_plan


@pytest.fixture(scope="module")
def tls_context() -> ssl.SSLContext:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def slow_tls(tls_context: ssl.SSLContext) -> Iterator[TestServer]:
    with TestServer(Behaviour(latency=0.03), tls=tls_context).running() as server:
        yield server


def _nonzero(histogram: Histogram) -> int:
    return histogram.total_count - histogram.count_at_or_below(0)


def _phases(result: RunResult) -> dict[str, Histogram]:
    total = result.intervals[0].total()
    merged = [i.total() for i in result.measured]
    out = {}
    for name in total.phases:
        h = Histogram()
        for part in merged:
            h.merge(part.phases[name])
        out[name] = h
    return out


def test_wait_is_the_delay_to_the_first_byte_and_set_up_is_paid_per_connection(
    slow_tls: TestServer,
) -> None:
    url = slow_tls.url.replace("127.0.0.1", "localhost")  # a name: DNS is looked up
    result = run_plan(make_plan(url, load={"vus": 2}, duration="2s", tls={"verify": False}))
    summary = result.total()
    assert summary.requests > 40
    wait = summary.phases_ms["wait"]
    assert wait["p50"] == pytest.approx(30.0, abs=2.0)
    phases = _phases(result)
    connections = slow_tls.connections_total
    assert 1 <= connections <= 4
    # every new connection paid for its look-up, connect and handshake; no reused one did
    assert _nonzero(phases["tls"]) == connections
    assert _nonzero(phases["connect"]) == connections
    assert _nonzero(phases["dns"]) == connections
    # timed: each connection's first request and one in PHASE_EVERY after it
    timed = phases["wait"].total_count
    assert all(h.total_count == timed for h in phases.values())
    assert summary.requests / PHASE_EVERY <= timed <= summary.requests / PHASE_EVERY + connections
    # the whole request is its phases (to within the clock reads between them)
    total_p50 = summary.latency_actual_ms["p50"]
    parts = sum(summary.phases_ms[name]["p50"] for name in ("send", "wait", "receive"))
    assert parts == pytest.approx(total_p50, abs=1.0)


def test_every_request_on_a_new_connection_pays_for_its_handshake(
    tls_context: ssl.SSLContext,
) -> None:
    with TestServer(Behaviour(close=True), tls=tls_context).running() as server:
        result = run_plan(
            make_plan(server.url, load={"rate": "50/s"}, duration="1s", tls={"verify": False})
        )
    phases = _phases(result)
    answered = phases["wait"].total_count
    assert answered >= 40
    assert answered == result.total().requests  # each on a new connection: all timed
    assert _nonzero(phases["tls"]) == answered
    assert _nonzero(phases["connect"]) == answered
    assert _nonzero(phases["dns"]) == 0  # an IP literal needs no look-up


def test_objectives_judge_a_phase(slow_tls: TestServer) -> None:
    plan = make_plan(
        slow_tls.url,
        load={"rate": "100/s"},
        duration="2s",
        tls={"verify": False},
        slo=["ttfb.p50 < 40ms", "wait.p50 < 20ms", "tls.p50 < 5ms"],
    )
    result = run_plan(plan)
    verdicts = {v.objective.text: v for v in evaluate(result, plan.slos)}
    assert verdicts["ttfb.p50 < 40ms"].outcome == PASS
    assert verdicts["wait.p50 < 20ms"].outcome == FAIL
    assert "wait p50" in verdicts["wait.p50 < 20ms"].reason
    assert verdicts["tls.p50 < 5ms"].outcome == PASS  # most requests reuse a connection
    assert parse_objective("ttfb.p50 < 40ms").phase == "wait"
