"""The redline of a known queue, a concurrency sweep, a spike's recovery and a soak's drift.

The test server with ``workers=c`` and exponential service time S is an M/M/c queue under
Poisson arrivals; its p99 response time at each arrival rate is computed here from the
queueing formulas, independently of redline, and the search must land near the rate at
which that p99 meets the objective.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from redline.runner import find
from redline.testing import Behaviour, Latency, TestServer

from .conftest import make_plan

Server = Callable[..., TestServer]

C, S = 4, 0.005  # four workers, 5 ms mean service: capacity 800 req/s
P99_BOUND = 0.040


def erlang_c(c: int, offered: float) -> float:
    """The probability that an arrival waits in an M/M/c queue (offered = lambda / mu)."""
    head = sum(offered**k / math.factorial(k) for k in range(c))
    tail = offered**c / math.factorial(c) * c / (c - offered)
    return tail / (head + tail)


def sojourn_tail(t: float, lam: float, c: int, mu: float) -> float:
    """P(response time > t): no wait and service > t, or an Exp(c mu - lam) wait + service."""
    waits = erlang_c(c, lam / mu)
    theta = c * mu - lam
    if abs(theta - mu) < 1e-9:
        waited = math.exp(-mu * t) * (1 + mu * t)
    else:
        waited = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
    return (1 - waits) * math.exp(-mu * t) + waits * waited


def bisect(predicate: Callable[[float], bool], low: float, high: float) -> float:
    """The boundary between ``low`` (predicate true) and ``high`` (false)."""
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if predicate(middle) else (low, middle)
    return low


def mmc_redline(bound_s: float, c: int, service_s: float) -> float:
    mu = 1 / service_s

    def p99(lam: float) -> float:
        return bisect(lambda t: sojourn_tail(t, lam, c, mu) > 0.01, 0.0, 10.0)

    return bisect(lambda lam: p99(lam) <= bound_s, 1e-6, c * mu * (1 - 1e-9))


def queue(redline_server: Server) -> TestServer:
    return redline_server(Behaviour(latency=Latency("exponential", S), workers=C), seed=3)


@pytest.mark.timeout(400)
def test_find_lands_within_15_percent_of_the_mmc_redline(redline_server: Server) -> None:
    expected = mmc_redline(P99_BOUND, C, S)
    assert 600 < expected < 700  # the queue's redline is what the test believes it is
    target = queue(redline_server)
    plan = make_plan(
        target.url,
        load={"rate": "250/s", "arrivals": "poisson"},
        warmup="1s",
        slo=[f"p99 < {P99_BOUND * 1000:g}ms"],
        generator={"late_tolerance": 0.9},
    )
    seen = []
    found = find(plan, step_s=4, refine_s=3, repeats=2, on_step=lambda step, run: seen.append(step))
    assert found.outcome == "found", found.reason
    assert found.rate is not None
    assert abs(found.rate - expected) / expected < 0.15, (found.summary(), expected)
    assert found.objective == "p99 < 40ms"
    assert found.last_good is not None
    assert found.first_bad is not None
    assert found.last_good <= found.first_bad
    phases = [s.phase for s in seen]
    assert phases[0] == "step"
    assert "refine" in phases
    assert phases.count("repeat") == 2
    assert list(found.steps) == seen


@pytest.mark.timeout(300)
def test_a_closed_sweep_fits_the_usl_and_checks_littles_law(
    redline_server: Server, tmp_path: Path
) -> None:
    target = queue(redline_server)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"name: sweep\ntarget: {target.url}\nrequests: [{{name: get, path: /}}]\n"
        "load: {vus: 1}\nduration: 2s\nslo: [p99 < 1s]\n"
    )
    out = tmp_path / "sweep.json"
    done = subprocess.run(
        [sys.executable, "-m", "redline", "find", str(plan), "--closed", "--levels",
         "1,2,3,4,6,8", "--step", "2s", "--no-store", "--out", str(out)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "USL: sigma" in done.stdout
    assert "peak concurrency N*" in done.stdout
    document = json.loads(out.read_text())
    levels = document["levels"]
    assert [lv["users"] for lv in levels] == [1, 2, 3, 4, 6, 8]
    for level in levels:  # each user is always in a request: X * R is the user count
        assert level["little"]["ratio"] == pytest.approx(1.0, abs=0.15)
        assert not level["little"]["client_bound"]
    usl = document["usl"]
    # four workers of 5 ms: one user gets ~200/s, and eight cannot get past ~800/s
    assert usl["lambda"] == pytest.approx(1 / S, rel=0.3)
    assert usl["peak_throughput"] < 1.2 * C / S
    assert usl["r_squared"] > 0.8


@pytest.mark.timeout(120)
def test_a_spike_run_reports_its_recovery(redline_server: Server, tmp_path: Path) -> None:
    target = queue(redline_server)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"name: spiky\ntarget: {target.url}\nrequests: [{{name: get, path: /}}]\n"
        "load: {rate: 100/s, arrivals: poisson}\ntype: spike\nduration: 20s\n"
        "spike: {multiple: 12, for: 2s}\ngenerator: {late_tolerance: 0.9}\n"
    )
    out = tmp_path / "spike.json"
    done = subprocess.run(
        [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
         "--out", str(out)],
        capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 3), done.stdout + done.stderr
    assert "spike: " in done.stdout
    found = json.loads(out.read_text())["analysis"]["recovery"]
    assert found["spike_start_s"] == 8.0
    assert found["spike_end_s"] == 10.0
    # 1,200/s into 800/s of capacity for 2 s: a queue that takes about a second to drain
    assert found["peak_p99_ms"] > 3 * found["baseline_p99_ms"]
    assert found["recovered_after_s"] is not None
    assert 0 <= found["recovered_after_s"] <= 6


@pytest.mark.timeout(120)
def test_a_soak_run_reports_a_planted_drift(redline_server: Server, tmp_path: Path) -> None:
    target = redline_server(Behaviour(latency=0.002))
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"name: soaked\ntarget: {target.url}\nrequests: [{{name: get, path: /}}]\n"
        "load: {rate: 100/s}\ntype: soak\nduration: 20s\ngenerator: {late_tolerance: 0.9}\n"
    )
    out = tmp_path / "soak.json"
    stop = threading.Event()

    def leak() -> None:  # the service slows by 4 ms a second: 2 ms to ~80 ms
        latency = 0.002
        while not stop.wait(0.5):
            latency += 0.002
            target.set_behaviour(Behaviour(latency=latency))

    leaking = threading.Thread(target=leak)
    leaking.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
             "--out", str(out)],
            capture_output=True, text=True, timeout=100, check=False,
        )  # fmt: skip
    finally:
        stop.set()
        leaking.join()
    assert done.returncode in (0, 3), done.stdout + done.stderr
    assert "soak: p99 rises" in done.stdout
    trend = json.loads(out.read_text())["analysis"]["drift"]
    assert trend["drifting"]
    assert trend["slope_ms_per_hour"] > 0
    assert trend["change"] > 0.5


@pytest.mark.timeout(120)
def test_a_generator_that_cannot_keep_up_ends_the_search_and_says_so(
    redline_server: Server, tmp_path: Path
) -> None:
    # one request in flight at a time against a 50 ms server: at most 20 req/s, asked 100
    target = redline_server(Behaviour(latency=0.05))
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"name: narrow\ntarget: {target.url}\nrequests: [{{name: get, path: /}}]\n"
        "load: {rate: 100/s}\nduration: 3s\nlimits: {max_in_flight: 1}\nslo: [p99 < 1s]\n"
    )
    out = tmp_path / "find.json"
    done = subprocess.run(
        [sys.executable, "-m", "redline", "find", str(plan), "--step", "3s", "--no-store",
         "--out", str(out)],
        capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    document = json.loads(out.read_text())
    assert document["outcome"] == "generator limited"
    assert document["rate"] is None
    assert "the generator could not send 100 req/s" in document["reason"]
    assert [s["limited"] for s in document["steps"]] == [True]
