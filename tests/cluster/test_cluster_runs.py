"""Runs on a real Dask cluster: scheduler and workers as processes on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask_procs import DaskProcesses, dask_processes

import redline
from redline.core import Histogram, IntervalSnapshot, RunResult, bucket_values
from redline.engine import connect_cluster, run_plan, using_cluster
from redline.engine._cluster import DaskCluster, DaskFleet
from redline.plan import Plan, load_plan, plan_from_dict
from redline.testing import Behaviour, TestServer

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer(behaviour=Behaviour(latency=0.002)).running() as running:
        yield running


def open_plan(url: str, *, rate: int = 400, duration: str = "4s", **extra: Any) -> Plan:
    return plan_from_dict(
        {
            "target": url,
            "requests": [{"path": "/"}],
            "load": {"rate": rate},
            "duration": duration,
            "seed": 7,
            **extra,
        }
    )


class Tee:
    """A cluster whose fleets keep a copy of every message the coordinator receives."""

    def __init__(self, inner: DaskCluster) -> None:
        self.inner = inner
        self.seen: list[tuple[int, tuple[Any, ...]]] = []

    def fleet(self, plan: Plan, *, check_target: bool = True) -> DaskFleet:
        fleet = self.inner.fleet(plan, check_target=check_target)
        receive = fleet.receive

        def tee(timeout: float) -> list[tuple[int, tuple[Any, ...]]]:
            out = receive(timeout)
            self.seen.extend(out)
            return out

        fleet.receive = tee  # type: ignore[method-assign]
        return fleet


def test_four_workers_merge_exactly_what_they_measured(
    four_workers: DaskProcesses, server: TestServer
) -> None:
    plan = open_plan(server.url)
    before = server.requests_total
    local = run_plan(plan, workers=1)
    between = server.requests_total
    with connect_cluster(four_workers.address) as cluster:
        tee = Tee(cluster)
        result = run_plan(plan, cluster=tee)
    after = server.requests_total
    # the same schedule on one process and on four hosts: the same requests, all counted
    assert result.stop_reason == "completed", result.notes
    assert result.total().requests == local.total().requests == 1600
    assert between - before == local.total().requests
    assert after - between == result.total().requests
    # each interval's histogram is exactly the sum of what the four hosts sent: merged
    # through pickles and queues, percentiles equal those of all the values in one place
    parts: dict[int, list[Histogram]] = {}
    for _, message in tee.seen:
        if message[0] == "interval":
            parts.setdefault(message[1].index, []).append(message[1].endpoints["GET /"].latency)
    for interval in result.intervals:
        mine = parts[interval.index]
        assert len(mine) == 4
        one_place = Histogram()
        for part in mine:
            indices, counts = part.to_sparse()
            values = np.repeat(bucket_values(indices), counts)
            one_place.record_values(values)
        merged = interval.endpoints["GET /"].latency
        assert np.array_equal(merged.counts, one_place.counts)
        quantiles = [50, 90, 99, 99.9, 100]
        assert merged.values_at_percentiles(quantiles) == one_place.values_at_percentiles(quantiles)
    # one host, one process: the latency distributions agree within what jitter allows
    p50s = [r.total().latency_ms["p50"] for r in (local, result)]
    assert p50s[1] == pytest.approx(p50s[0], rel=0.5, abs=1.0)
    # a breakdown per host: each a quarter of the load, together all of it
    hosts = result.generator().hosts
    assert sorted(h["name"] for h in hosts) == ["w0", "w1", "w2", "w3"]
    assert [h["share"] for h in hosts] == [0.25] * 4
    assert sum(h["sent"] for h in hosts) == 1600
    assert all(h["achieved_rps"] == pytest.approx(100, rel=0.05) for h in hosts)
    assert all(abs(h["clock_offset_ms"]) <= h["clock_error_ms"] + 5 for h in hosts)
    document = json.loads(result.to_json())
    assert len(document["generator"]["hosts"]) == 4
    assert set(document["intervals"][0]["hosts"]) == {"w0", "w1", "w2", "w3"}
    back = RunResult.from_dict(document)
    assert back.generator().hosts == hosts


def test_an_objective_breached_only_in_aggregate_aborts_every_host(
    four_workers: DaskProcesses, server: TestServer
) -> None:
    # each host sends 100 req/s, under the 300 req/s ceiling; together they send 400
    plan = open_plan(
        server.url,
        duration="20s",
        slo=[{"objective": "rps <= 300", "abort": True, "abort_after": "2s"}],
    )
    with connect_cluster(four_workers.address) as cluster, using_cluster(cluster):
        outcome = redline.run(plan)
    result = outcome.result
    assert result.stop_reason == "aborted"
    assert any("rps <= 300" in note for note in result.notes)
    hosts = result.generator().hosts
    assert all(h["achieved_rps"] < 300 for h in hosts)
    # the breach was seen at interval 2 (after 2 s measured, a 2 s window); the stop
    # reached every host within one interval: none reported past interval 4
    assert len(result.intervals) <= 5
    last = max(i.index for i in result.intervals)
    assert all(set(i.hosts) == {"w0", "w1", "w2", "w3"} for i in result.intervals[:last])


def test_unique_rows_stay_unique_across_the_cluster(
    four_workers: DaskProcesses, server: TestServer, tmp_path: Path
) -> None:
    rows = tmp_path / "users.csv"
    rows.write_text("id\n" + "".join(f"{i}\n" for i in range(2000)))
    plan = plan_from_dict(
        {
            "target": server.url,
            "data": {"user": {"file": str(rows), "mode": "unique"}},
            "requests": [{"path": "/u/${user.id}", "name": "user"}],
            "load": {"rate": 400},
            "duration": "3s",
            "seed": 3,
        },
        base_dir=tmp_path,
    )
    with connect_cluster(four_workers.address) as cluster:
        result = run_plan(plan, cluster=cluster)
    seen = {p: n for p, n in server.requests_by_path.items() if p.startswith("/u/")}
    assert result.total().requests == result.endpoint("user").requests == 1200
    assert result.total().errors == 0
    assert len(seen) == 1200  # 1200 rows, each once: no row twice across four hosts
    assert set(seen.values()) == {1}


def test_a_worker_that_joins_during_a_run_is_refused(
    four_workers: DaskProcesses, server: TestServer
) -> None:
    plan = open_plan(server.url, rate=200, duration="6s")
    joined: list[float] = []

    class JoinAtTwo:
        def on_interval(self, interval: IntervalSnapshot) -> None:
            if interval.index == 1 and not joined:
                four_workers.worker("late", wait=False)
                joined.append(time.monotonic())

    try:
        with connect_cluster(four_workers.address) as cluster:
            result = run_plan(plan, cluster=cluster, observers=[JoinAtTwo()])
    finally:
        if "late" in four_workers.workers:
            four_workers.kill("late")
            del four_workers.workers["late"]
    assert result.stop_reason == "completed"
    assert any("joined during the run: refused" in note for note in result.notes)
    assert "late" not in {h.name for h in result.hosts}
    assert all("late" not in i.hosts for i in result.intervals)
    assert result.total().requests == 1200


def test_the_cli_runs_on_a_local_cluster_and_keeps_the_hosts(
    server: TestServer, tmp_path: Path
) -> None:
    out = tmp_path / "run.json"
    done = subprocess.run(
        [sys.executable, "-m", "redline", "run", "--url", server.url, "--rate", "100",
         "--duration", "3s", "--cluster", "local:2", "--no-store", "--quiet", "--out", str(out)],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "host " in done.stdout
    document = json.loads(out.read_text())
    hosts = document["generator"]["hosts"]
    assert len(hosts) == 2
    assert sum(h["sent"] for h in hosts) == document["summary"]["total"]["requests"] == 300


def test_declared_capacity_sets_each_hosts_share(server: TestServer) -> None:
    with dask_processes() as cluster:
        cluster.worker("big", resources="redline=2", wait=False)
        cluster.worker("small", wait=False)
        cluster.wait_for(2)
        with connect_cluster(cluster.address) as dask:
            result = run_plan(open_plan(server.url, rate=300, duration="3s"), cluster=dask)
    hosts = {h["name"]: h for h in result.generator().hosts}
    assert hosts["big"]["share"] == pytest.approx(2 / 3)
    assert hosts["big"]["sent"] == 600
    assert hosts["small"]["sent"] == 300


PLAN_WITH_HOOKS = """
from pathlib import Path
from redline.scenario import scenario

target = "{url}"
load = {{"rate": 80}}
duration = "2s"
LOG = Path({log!r})


async def setup(session):
    with LOG.open("a") as log:
        log.write("setup\\n")
    await session.get("/setup")
    return {{"token": "t-4242"}}


async def teardown(session, shared):
    with LOG.open("a") as log:
        log.write("teardown " + shared["token"] + "\\n")


@scenario
async def hit(s):
    await s.get("/t/" + s.shared["token"], name="hit")
"""


def test_setup_runs_once_and_every_host_gets_its_result(
    four_workers: DaskProcesses, server: TestServer, tmp_path: Path
) -> None:
    log = tmp_path / "hooks.log"
    path = tmp_path / "plan.py"
    path.write_text(PLAN_WITH_HOOKS.format(url=server.url, log=str(log)))
    setups = server.requests_by_path["/setup"]
    tokens = server.requests_by_path["/t/t-4242"]
    with connect_cluster(four_workers.address) as cluster:
        result = run_plan(load_plan(path), cluster=cluster)
    assert result.stop_reason == "completed", result.notes
    assert log.read_text().splitlines() == ["setup", "teardown t-4242"]
    assert server.requests_by_path["/setup"] == setups + 1
    # every host's iterations used setup's token: all of them reached /t/t-4242
    hits = result.endpoint("hit")
    assert hits.requests == 160
    assert hits.errors == 0
    assert server.requests_by_path["/t/t-4242"] - tokens == 160
    assert all(i.hosts[h].sent > 0 for i in result.measured for h in i.hosts)
    assert len(result.hosts) == 4
