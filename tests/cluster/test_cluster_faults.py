"""What a cluster run does when a host fails, and the clear errors of a cluster it cannot use."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from dask_procs import DaskProcesses, dask_processes

from redline.core import IntervalSnapshot, RunError, RunResult
from redline.engine import connect_cluster, run_plan
from redline.plan import Plan, load_plan, plan_from_dict
from redline.testing import Behaviour, TestServer

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer(behaviour=Behaviour(latency=0.002)).running() as running:
        yield running


def open_plan(url: str, *, duration: str = "8s", **extra: Any) -> Plan:
    return plan_from_dict(
        {"target": url, "requests": [{"path": "/"}], "load": {"rate": 400},
         "duration": duration, "seed": 11, **extra}
    )  # fmt: skip


class KillAt:
    """Kill one worker (and its generator) when interval ``index`` arrives."""

    def __init__(self, cluster: DaskProcesses, name: str, index: int) -> None:
        self.cluster, self.name, self.index = cluster, name, index
        self.started = 0.0
        self.killed_s: float | None = None

    def on_start(self, run: RunResult) -> None:
        self.started = time.monotonic() + 0.5  # the fleet starts the load 0.5 s from now

    def on_interval(self, interval: IntervalSnapshot) -> None:
        if interval.index == self.index and self.killed_s is None:
            self.cluster.kill(self.name)
            self.killed_s = time.monotonic() - self.started


def lost_run(plan: Plan) -> tuple[RunResult, KillAt]:
    with dask_processes(4) as cluster, connect_cluster(cluster.address) as dask:
        killer = KillAt(cluster, "w2", 2)
        result = run_plan(plan, cluster=dask, observers=[killer])
    return result, killer


def test_a_killed_worker_is_noticed_within_two_intervals_and_its_share_reported(
    server: TestServer,
) -> None:
    plan = dataclasses.replace(open_plan(server.url), on_worker_lost="continue")
    result, killer = lost_run(plan)
    lost = next(h for h in result.hosts if h.name == "w2")
    assert killer.killed_s is not None
    assert lost.lost_noticed_s is not None
    assert lost.lost_noticed_s - killer.killed_s <= 2.0  # within two 1-second intervals
    assert lost.lost_at is not None
    assert 2 <= lost.lost_at <= 4
    # the run went on, every later interval saying it is a quarter short
    assert result.stop_reason == "completed"
    assert len(result.intervals) == 8
    short = [i for i in result.intervals if i.missing]
    assert [i.index for i in short] == list(range(lost.lost_at, 8))
    assert all(i.missing == 0.25 for i in short)
    assert all(set(i.hosts) == {"w0", "w1", "w3"} for i in short)
    assert all(i.total().requests == pytest.approx(300, abs=3) for i in short[1:])
    assert any("w2" in n and "25.0% share" in n and "went on" in n for n in result.notes)
    document = result.to_dict()
    assert document["intervals"][-1]["missing"] == 0.25
    assert document["generator"]["hosts"][2]["lost_at"] == lost.lost_at


def test_a_killed_worker_stops_the_run_by_default(server: TestServer) -> None:
    result, _ = lost_run(open_plan(server.url))
    assert result.stop_reason == "worker_failed"
    assert len(result.intervals) < 8  # the other hosts were stopped
    lost = next(h for h in result.hosts if h.name == "w2")
    assert lost.lost_at is not None
    assert any("w2" in note and "lost at interval" in note for note in result.notes)


def test_an_unreachable_scheduler_is_a_clear_error_before_any_load(server: TestServer) -> None:
    before = server.requests_total
    unreachable = r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    with (
        pytest.raises(RunError, match=unreachable),
        connect_cluster("tcp://127.0.0.1:9", wait_s=2) as dask,
    ):
        run_plan(open_plan(server.url), cluster=dask)
    assert server.requests_total == before


def test_a_scheduler_without_workers_is_a_clear_error(server: TestServer) -> None:
    with (
        dask_processes() as cluster,
        connect_cluster(cluster.address, wait_s=1) as dask,
        pytest.raises(RunError, match="has no workers"),
    ):
        run_plan(open_plan(server.url), cluster=dask)


def test_a_worker_with_another_redline_is_refused_naming_both_versions(
    server: TestServer, tmp_path: Path
) -> None:
    # the worker's Python finds a redline 9.9.9 first on its path (metadata only)
    info = tmp_path / "redline-9.9.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: redline\nVersion: 9.9.9\n")
    with dask_processes() as cluster:
        cluster.worker("old", env={"PYTHONPATH": str(tmp_path)})
        with connect_cluster(cluster.address) as dask, pytest.raises(RunError) as caught:
            run_plan(open_plan(server.url), cluster=dask)
    message = str(caught.value)
    assert "redline 9.9.9" in message
    assert "old" in message
    from importlib.metadata import version

    assert f"redline {version('redline')}" in message


PLAN_THAT_DIES = """
import os
from redline.scenario import scenario

target = "{url}"
load = {{"rate": 20}}
duration = "3s"

if os.environ.get("PLAN_TEST_DIE"):  # this host's plan cannot even start
    os._exit(3)


@scenario
async def hit(s):
    await s.get("/")
"""


def test_a_worker_dying_while_starting_is_a_clear_error(server: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "plan.py"
    path.write_text(PLAN_THAT_DIES.format(url=server.url))
    plan = load_plan(path)
    with dask_processes() as cluster:
        cluster.worker("fine", wait=False)
        cluster.worker("doomed", env={"PLAN_TEST_DIE": "1"}, wait=False)
        cluster.wait_for(2)
        exited = r"doomed.*exited while starting.*code 3"
        with connect_cluster(cluster.address) as dask, pytest.raises(RunError, match=exited):
            run_plan(plan, cluster=dask)
        # the healthy host's generator, still waiting for a start, ended with the run
        deadline = time.monotonic() + 10
        while generators() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert generators() == []


def generators() -> list[int]:
    """Generator processes (``redline.engine._remote``) running on this machine."""
    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if "redline.engine._remote" in " ".join(p.info["cmdline"] or ())
    ]


PLAN_WITH_DATA = """
from pathlib import Path
from redline.scenario import scenario

target = "{url}"
load = {{"rate": 20}}
duration = "2s"
USERS = (Path(__file__).parent / "users.csv").read_text().split()


@scenario
async def hit(s):
    await s.get("/" + USERS[0])
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1)")
def test_a_plan_file_a_worker_cannot_read_is_a_clear_error(
    server: TestServer, tmp_path: Path
) -> None:
    folder = tmp_path / "plan"
    folder.mkdir()
    (folder / "plan.py").write_text(PLAN_WITH_DATA.format(url=server.url))
    (folder / "users.csv").write_text("alice\nbob\n")
    plan = load_plan(folder / "plan.py")
    # a host without the plan's folder: the worker runs in a mount namespace of its own
    # where an empty tmpfs hides it; the plan travels with the spec, its data file not
    hide = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount -t tmpfs none "{folder}" && exec "$0" "$@"']  # fmt: skip
    with dask_processes() as cluster:
        cluster.worker("elsewhere", prefix=hide, env={"XDG_CACHE_HOME": str(tmp_path / "c")})
        with connect_cluster(cluster.address) as dask, pytest.raises(RunError) as caught:
            run_plan(plan, cluster=dask)
    message = str(caught.value)
    assert "elsewhere" in message
    assert "failed while starting" in message
    assert "users.csv" in message
    assert "no such file" in message
    # the plan itself did travel: the worker imported its copy, which failed on the data
    assert list((tmp_path / "c" / "redline" / "plans").glob("*/plan.py"))


def test_the_cli_exits_3_when_the_scheduler_cannot_be_reached(server: TestServer) -> None:
    before = server.requests_total
    done = subprocess.run(
        [sys.executable, "-m", "redline", "run", "--url", server.url, "--rate", "50",
         "--duration", "2s", "--cluster", "tcp://127.0.0.1:9", "--cluster-wait", "1",
         "--no-store", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 3
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr
    assert server.requests_total == before


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("scheduler:8786", "expected a scheduler address like tcp://host:8786"),
        ("local:zero", "local:N with N a whole number"),
        ("local:0", "local:N with N a whole number"),
    ],
)
def test_a_bad_cluster_address_is_refused(address: str, message: str) -> None:
    with pytest.raises(RunError, match=message), connect_cluster(address):
        pass
