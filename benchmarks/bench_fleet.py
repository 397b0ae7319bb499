"""The capacity plan against a real fleet: N replicas of the demo shop behind HAProxy.

    python benchmarks/bench_fleet.py [--max-replicas 4] [--step 3] [--cpu-quota 0.15]

The demo's shop (as it is: eight workers, its bottleneck a pool) and payments run on the
target core, HAProxy (round robin) in front of N shops; ``redline find`` (the demo's
objectives: p99 < 300 ms, errors < 1%) measures the fleet's redline from the generator's
core, for N = 1..max. ``capacity size``'s views of one replica (from N = 1's search)
predict the fleet's capacity: measured (N x the redline; its lower bound is what sizing
uses) and queueing (N x the highest rate an M/M/c replica holds within the SLO). Target:
each prediction within 15% of the measured capacity.

With ``--cpu-quota`` each shop runs in a cgroup of its own with that CPU quota (cores),
as a pod with a CPU limit; without it the shops share the target core, which no real
fleet does.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _common import TARGET_CORE, free_port, require, table, wait_for_port
from redline.capacity import mmc_max_rate, replica_model_from_find
from redline.cli._demo import START_RATE, _plan
from redline.demo import generate
from redline.observe import CgroupSandbox
from redline.runner import find


@contextlib.contextmanager
def started(argv: list[str], port: int, *, quota: float = 0.0) -> Iterator[None]:
    process = subprocess.Popen(
        ["taskset", "-c", TARGET_CORE, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    sandbox = None
    try:
        if quota:
            sandbox = CgroupSandbox(cpu=quota, memory=None)
            sandbox.join(process.pid)  # taskset execs python: the same process
        wait_for_port(port, timeout=30)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
        if sandbox is not None:
            sandbox.remove()


def haproxy_config(port: int, shops: list[int]) -> str:
    servers = "\n".join(
        f"    server shop{i} 127.0.0.1:{p} maxconn 200" for i, p in enumerate(shops)
    )
    return f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fleet
    bind 127.0.0.1:{port}
    default_backend shops
backend shops
    balance roundrobin
{servers}
"""


def measure(url: str, start: float, step: float, refine: int, repeats: int) -> dict[str, object]:
    plan = _plan(url, {"rate": f"{start:.0f}/s"}, step, quick=True)
    found = find(plan, factor=1.5, step_s=step, refine_s=step, repeats=repeats,
                 max_refine=refine, max_rate=8000)  # fmt: skip
    document = found.to_dict()
    held = [s.achieved for s in found.steps if s.holds and not s.limited]
    document["measured"] = found.rate if found.rate is not None else max(held, default=0.0)
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-replicas", type=int, default=4)
    parser.add_argument("--step", type=float, default=3.0)
    parser.add_argument("--cpu-quota", type=float, default=0.0, help="cores per shop")
    parser.add_argument("--refine", type=int, default=2, help="bisection steps per search")
    parser.add_argument("--repeats", type=int, default=1, help="repeats of the bracket")
    args = parser.parse_args()
    require("haproxy", "taskset")
    python = sys.executable
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        db = Path(tmp) / "shop.db"
        generate(db, products=2000, reviews_each=12)
        payments = free_port()
        stack.enter_context(
            started([python, "-m", "redline.demo", "payments", "--port", str(payments)], payments)
        )
        shops: list[int] = []
        for n in range(1, args.max_replicas + 1):
            port = free_port()
            stack.enter_context(started(
                [python, "-m", "redline.demo", "shop", "--port", str(port), "--db", str(db),
                 "--payments", f"http://127.0.0.1:{payments}", "--workers", "8"], port,
                quota=args.cpu_quota,
            ))  # fmt: skip
            shops.append(port)
            front = free_port()
            config = Path(tmp) / f"haproxy-{n}.cfg"
            config.write_text(haproxy_config(front, shops))
            with started(["haproxy", "-db", "-f", str(config)], front):
                start = START_RATE * n * (args.cpu_quota or 1)
                found = measure(
                    f"http://127.0.0.1:{front}", start, args.step, args.refine, args.repeats
                )
            results.append(found)
            print(f"N={n}: measured redline {found['measured']:,.0f} req/s", flush=True)
    one = replica_model_from_find(results[0], source="N=1")
    per_replica_queueing = mmc_max_rate(one.workers, one.service_s, 0.300)
    rows = []
    for n, found in enumerate(results, start=1):
        measured = float(found["measured"])  # type: ignore[arg-type]
        by_measurement = n * one.redline_rps
        by_queueing = n * per_replica_queueing
        rows.append([
            n, f"{measured:,.0f}", f"{by_measurement:,.0f}",
            f"{by_measurement / measured - 1:+.0%}" if measured else "-",
            f"{by_queueing:,.0f}", f"{by_queueing / measured - 1:+.0%}" if measured else "-",
        ])  # fmt: skip
    print(
        f"\none replica: redline {one.redline_rps:,.0f} req/s (95% CI {one.low_rps:,.0f}-"
        f"{one.high_rps:,.0f}), {one.workers} workers of {one.service_s * 1000:.1f} ms"
    )
    print(table(rows, ["replicas", "measured req/s", "predicted (N x redline)", "error",
                       "predicted (M/M/c)", "error"]))  # fmt: skip
    print("target: each prediction within 15% of the measured capacity")


if __name__ == "__main__":
    main()
