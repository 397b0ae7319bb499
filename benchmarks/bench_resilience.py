"""The cost of protection on the success path: redline's strategies beside pybreaker,
tenacity and aiobreaker.

- Breaker overhead per call (a call that succeeds), sync: pybreaker and redline.
- Retry overhead per call when the first try succeeds, sync and async: tenacity and redline.
- A pipeline of deadline + breaker + bulkhead + retry around an async call: redline's
  ``Pipeline`` against the same stack of asyncio.timeout + aiobreaker + a semaphore +
  tenacity.
- The breaker and the pipeline again with a Prometheus listener attached (what watching
  costs).
- Eight threads making 50 ms calls at once through one breaker: wall time against no
  breaker (pybreaker holds its lock across the call).

Two measures of each overhead (per call, minus a bare call's):

- **time**: the fastest of ``--repeat`` rounds, the cases interleaved round by round, on
  one core (``taskset``), as timeit advises for microbenchmarks;
- **instructions** (``--instructions``, needs valgrind): instructions per call counted by
  callgrind, from two runs of different lengths (so start-up cancels out). Counts do not
  move with the machine's noise: the ratio they give is the one to quote.

    pip install -e '.[bench]'
    python benchmarks/bench_resilience.py [--calls 200000] [--repeat 7] [--instructions]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable

import aiobreaker
import pybreaker
import tenacity
from prometheus_client import CollectorRegistry

from _common import LOAD_CORE, median, table
from redline.resilience import Bulkhead, CircuitBreaker, Pipeline, Retry, Timeout
from redline.resilience.prometheus import PrometheusMetrics


def work() -> int:
    return 1


async def awork() -> int:
    return 1


def sync_cases() -> dict[str, Callable[[], object]]:
    ours, theirs = CircuitBreaker(), pybreaker.CircuitBreaker()
    watched = CircuitBreaker()
    PrometheusMetrics(CollectorRegistry()).watch(watched)
    retry = Retry(attempts=3)
    tenacious = tenacity.Retrying(stop=tenacity.stop_after_attempt(3), reraise=True)
    return {
        "bare": lambda: work(),
        "breaker": lambda: ours.call_sync(work),
        "pybreaker": lambda: theirs.call(work),
        "breaker+prometheus": lambda: watched.call_sync(work),
        "retry": lambda: retry.call_sync(work),
        "tenacity": lambda: tenacious(work),
    }


def async_cases() -> dict[str, Callable[[], Awaitable[object]]]:
    def stack() -> Pipeline:
        return Pipeline().add(Timeout(5.0)).add(CircuitBreaker()).add(Bulkhead(100)).add(Retry())

    pipeline, watched = stack(), stack()
    metrics = PrometheusMetrics(CollectorRegistry())
    metrics.watch(watched, *watched.strategies)
    retry = Retry(attempts=3)
    atenacious = tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(3), reraise=True)
    peer_breaker = aiobreaker.CircuitBreaker()
    peer_retry = tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(3), reraise=True)
    semaphores: list[asyncio.Semaphore] = []

    async def peer_stack() -> int:
        if not semaphores:
            semaphores.append(asyncio.Semaphore(100))
        bulkhead = semaphores[0]

        async def limited() -> int:
            async with bulkhead:
                return await peer_retry(awork)

        async with asyncio.timeout(5.0):
            return await peer_breaker.call_async(limited)

    return {
        "async bare": lambda: awork(),
        "async retry": lambda: retry.call(awork),
        "async tenacity": lambda: atenacious(awork),
        "pipeline": lambda: pipeline.call(awork),
        "peer stack": peer_stack,
        "pipeline+prometheus": lambda: watched.call(awork),
    }


def run_sync(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def run_async(call: Callable[[], Awaitable[object]], calls: int) -> float:
    async def loop() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await call()
        return (time.perf_counter() - start) / calls

    return asyncio.run(loop())


def run_case(name: str, calls: int) -> float:
    """Run one case ``calls`` times; seconds per call."""
    sync = sync_cases()
    if name in sync:
        return run_sync(sync[name], calls)
    return run_async(async_cases()[name], calls)


def names() -> list[str]:
    return [*sync_cases(), *async_cases()]


def timed(calls: int, repeat: int) -> dict[str, float]:
    """Fastest seconds per call of each case, the cases interleaved round by round."""
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name in names():
            n = calls // 4 if name in ("pipeline", "peer stack", "pipeline+prometheus") else calls
            seconds = run_case(name, n)
            best[name] = min(best.get(name, seconds), seconds)
    return best


def instructions(calls: int) -> dict[str, float]:
    """Instructions per call of each case, counted by callgrind."""

    def count(name: str, n: int) -> int:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             sys.executable, __file__, "--case", name, "--calls", str(n)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        found = re.search(r"Collected : (\d+)", done.stderr)
        assert found, done.stderr[-500:]
        return int(found.group(1))

    small, large = calls // 10, calls
    return {name: (count(name, large) - count(name, small)) / (large - small) for name in names()}


def overheads(per_call: dict[str, float]) -> dict[str, float]:
    sync_bare, async_bare = per_call["bare"], per_call["async bare"]
    return {
        name: value - (sync_bare if name in sync_cases() else async_bare)
        for name, value in per_call.items()
        if "bare" not in name
    }


PAIRS = [
    ("breaker, sync call", "pybreaker", "breaker"),
    ("retry, sync, first try succeeds", "tenacity", "retry"),
    ("retry, async, first try succeeds", "async tenacity", "async retry"),
    ("deadline + breaker + bulkhead + retry, async", "peer stack", "pipeline"),
    ("breaker with a Prometheus listener", "pybreaker", "breaker+prometheus"),
    ("pipeline with a Prometheus listener", "peer stack", "pipeline+prometheus"),
]


def report(title: str, values: dict[str, float], unit: Callable[[float], str]) -> None:
    over = overheads(values)
    rows = [(what, unit(over[peer]), unit(over[mine]), f"{over[mine] / over[peer]:.2f}x")
            for what, peer, mine in PAIRS]  # fmt: skip
    print(title)
    print(table(rows, ["what", "peer", "redline", "ratio"]))


def concurrent_wall(call: Callable[[Callable[[], None]], object]) -> float:
    def slow() -> None:
        time.sleep(0.05)

    threads = [threading.Thread(target=call, args=(slow,)) for _ in range(8)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # one case, for callgrind
    args = parser.parse_args()
    if args.case:
        run_case(args.case, args.calls)
        return
    if shutil.which("taskset") and os.environ.get("REDLINE_BENCH_PINNED") != "1":
        # one core for the measurement, away from the machine's other work
        os.environ["REDLINE_BENCH_PINNED"] = "1"
        os.execvp("taskset", ["taskset", "-c", LOAD_CORE, sys.executable, *sys.argv])

    r = args.repeat
    report(
        f"overhead per call, time (fastest of {r} rounds of {args.calls:,} calls)",
        timed(args.calls, r),
        lambda v: f"{v * 1e6:.2f} us",
    )
    if args.instructions:
        if shutil.which("valgrind") is None:
            print("\n--instructions needs valgrind (Debian's valgrind package)")
        else:
            print()
            report(
                "overhead per call, instructions (callgrind)",
                instructions(max(args.calls // 100, 2000)),
                lambda v: f"{v:,.0f}",
            )

    ours, theirs = CircuitBreaker(), pybreaker.CircuitBreaker()
    walls = {
        "no breaker": median([concurrent_wall(lambda f: f()) for _ in range(r)]),
        "pybreaker": median([concurrent_wall(theirs.call) for _ in range(r)]),
        "redline": median([concurrent_wall(ours.call_sync) for _ in range(r)]),
    }
    print("\neight threads, each one 50 ms call through one breaker (wall time, median)")
    print(table([(k, f"{v * 1000:.0f} ms", f"{v / walls['no breaker']:.2f}x")
                 for k, v in walls.items()], ["breaker", "wall time", "vs none"]))  # fmt: skip


if __name__ == "__main__":
    main()
