"""Load on a Dask cluster against load from local processes, on this machine's two cores.

    python benchmarks/bench_cluster.py [--rate 10000] [--seconds 10] [--repeats 3]

Two questions (issue 23's targets):

1. Delivery: do 4 Dask workers deliver an open-model rate within 1% of the target at
   10,000 req/s? nginx serves on the target core; the scheduler, the four workers (each
   with its generator process) and the coordinator (this process) share the load core.
   Interleaved with the same plan on 4 local worker processes (the peer: the engine
   without Dask), repeated; medians and the cluster/local ratio are printed.
2. Coordinator cost: CPU of the coordinator (this process: merging, the Dask client,
   liveness) per 1-second interval with 1, 2, 4 and 8 workers at one total rate. Target:
   it grows at most linearly with the workers (cost(n) <= n x cost(1)).

Needs redline[cluster] and nginx (or falls back to redline's test server as target).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from _common import LOAD_CORE, free_port, pinned_nginx, pinned_testserver, table, wait_for_port
from redline.core import RunResult
from redline.engine import connect_cluster, run_plan
from redline.plan import Plan, plan_from_dict

DASK = str(Path(sys.executable).with_name("dask"))


@contextlib.contextmanager
def dask_on_load_core(workers: int) -> Iterator[str]:
    """A scheduler and ``workers`` worker processes pinned to the load core."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    pin = ["taskset", "-c", LOAD_CORE]
    started = [
        subprocess.Popen(
            [*pin, DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
    ]  # fmt: skip
    try:
        wait_for_port(port, timeout=30)
        for index in range(workers):
            started.append(
                subprocess.Popen(
                    [*pin, DASK, "worker", address, "--name", f"w{index}", "--nthreads", "1",
                     "--no-nanny", "--no-dashboard"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )  # fmt: skip
        from distributed import Client

        with Client(address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for process in reversed(started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def plan_at(url: str, rate: int, seconds: int) -> Plan:
    return plan_from_dict(
        {"target": url, "requests": [{"path": "/"}], "load": {"rate": rate},
         "duration": f"{seconds}s", "seed": 1}
    )  # fmt: skip


def delivered(result: RunResult, rate: int) -> tuple[float, float, float]:
    """Achieved rate, its share of the target, the share of sends late (> 5 ms)."""
    gen = result.generator()
    return gen.achieved_rps, gen.achieved_rps / rate, gen.late / max(gen.sent, 1)


def delivery(url: str, rate: int, seconds: int, repeats: int) -> None:
    plan = plan_at(url, rate, seconds)
    rows: dict[str, list[tuple[float, float, int]]] = {"local x4": [], "dask x4": []}
    answered: dict[str, list[int]] = {"local x4": [], "dask x4": []}
    with dask_on_load_core(4) as address, connect_cluster(address) as cluster:
        for _ in range(repeats):
            for name in rows:  # interleaved
                if name == "local x4":
                    result = run_plan(plan, workers=4)
                else:
                    result = run_plan(plan, cluster=cluster)
                rows[name].append(delivered(result, rate))
                answered[name].append(result.total().requests)
    out = []
    for name, runs in rows.items():
        out.append(
            [
                name,
                f"{statistics.median(r[0] for r in runs):,.1f}",
                f"{statistics.median(r[1] for r in runs):.4f}",
                f"{min(r[1] for r in runs):.4f}",
                f"{statistics.median(r[2] for r in runs):.2%}",
                f"{statistics.median(answered[name]):,.0f}",
            ]
        )
    print(f"\n1. delivery at {rate:,} req/s for {seconds} s, {repeats} runs each (medians)")
    print(
        table(out, ["generator", "achieved req/s", "of target", "worst", "late > 5ms", "answered"])
    )
    ratio = statistics.median(r[1] for r in rows["dask x4"]) / statistics.median(
        r[1] for r in rows["local x4"]
    )
    worst = min(r[1] for r in rows["dask x4"])
    print(f"cluster/local delivered ratio {ratio:.4f}; worst cluster run {worst:.2%} of target")
    print(f"target (within 1% of {rate:,} req/s): {'MET' if worst >= 0.99 else 'MISSED'}")


def coordinator_cost(url: str, rate: int, seconds: int, repeats: int) -> None:
    me = psutil.Process()
    plan = plan_at(url, rate, seconds)
    costs: dict[int, list[float]] = {}
    for workers in (1, 2, 4, 8):
        with dask_on_load_core(workers) as address, connect_cluster(address) as cluster:
            for _ in range(repeats):
                before = me.cpu_times()
                result = run_plan(plan, cluster=cluster)
                after = me.cpu_times()
                used = (after.user - before.user) + (after.system - before.system)
                costs.setdefault(workers, []).append(1000 * used / len(result.intervals))
    base = statistics.median(costs[1])
    rows = []
    linear = True
    for workers, runs in costs.items():
        cost = statistics.median(runs)
        linear = linear and cost <= workers * base * 1.05
        rows.append([workers, f"{cost:.1f}", f"{cost / base:.2f}", f"{workers:.2f}"])
    print(f"\n2. coordinator CPU per interval at {rate:,} req/s, {repeats} runs each (medians)")
    print(table(rows, ["workers", "CPU ms / interval", "x 1 worker", "linear bound"]))
    print(f"target (grows at most linearly with workers): {'MET' if linear else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cost-rate", type=int, default=2_000)
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LOAD_CORE)})  # the coordinator shares the load core
    target = pinned_nginx() if shutil.which("nginx") else pinned_testserver()
    with target as url:
        print(f"target {url} ({'nginx' if shutil.which('nginx') else 'redline testserver'})")
        started = time.monotonic()
        delivery(url, args.rate, args.seconds, args.repeats)
        coordinator_cost(url, args.cost_rate, args.seconds, args.repeats)
        print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
