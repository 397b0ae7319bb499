"""The cost of protection on the success path: redline's breaker and retry beside pybreaker
and tenacity.

- Breaker overhead per call (a call that succeeds), sync: pybreaker and redline.
- Eight threads making 50 ms calls at once through one breaker: wall time against no
  breaker (pybreaker holds its lock across the call).
- Retry overhead per call when the first try succeeds, sync and async: tenacity and redline.
- A pipeline of deadline + breaker + bulkhead + retry around an async call: redline's
  ``Pipeline`` against the same stack of asyncio.timeout + aiobreaker + a semaphore +
  tenacity.

Overhead is the time per call minus a bare call's, median of ``--repeat`` rounds.

    pip install pybreaker tenacity   # the bench extra has them
    python benchmarks/bench_resilience.py [--calls 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

import aiobreaker
import pybreaker
import tenacity

from _common import median, table
from redline.resilience import Bulkhead, CircuitBreaker, Pipeline, Retry, Timeout


def work() -> int:
    return 1


async def awork() -> int:
    return 1


def per_call(call: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def per_call_async(call: Callable[[], Awaitable[object]], calls: int) -> float:
    async def loop() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            await call()
        return (time.perf_counter() - start) / calls

    return asyncio.run(loop())


def overhead(measure: Callable[[], float], bare: Callable[[], float], repeat: int) -> float:
    return median([measure() - bare() for _ in range(repeat)])


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
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n, r = args.calls, args.repeat
    bare = lambda: per_call(work, n)  # noqa: E731
    abare = lambda: per_call_async(awork, n)  # noqa: E731

    ours = CircuitBreaker()
    theirs = pybreaker.CircuitBreaker()
    rows = []
    mine = overhead(lambda: per_call(lambda: ours.call_sync(work), n), bare, r)
    other = overhead(lambda: per_call(lambda: theirs.call(work), n), bare, r)
    rows.append(("breaker, sync call", f"{other * 1e6:.2f} us", f"{mine * 1e6:.2f} us",
                 f"{mine / other:.2f}x"))  # fmt: skip

    retry = Retry(attempts=3)
    tenacious = tenacity.Retrying(stop=tenacity.stop_after_attempt(3), reraise=True)
    mine = overhead(lambda: per_call(lambda: retry.call_sync(work), n), bare, r)
    other = overhead(lambda: per_call(lambda: tenacious(work), n), bare, r)
    rows.append(("retry, sync, first try succeeds", f"{other * 1e6:.2f} us",
                 f"{mine * 1e6:.2f} us", f"{mine / other:.2f}x"))  # fmt: skip

    atenacious = tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(3), reraise=True)
    mine = overhead(lambda: per_call_async(lambda: retry.call(awork), n), abare, r)
    other = overhead(lambda: per_call_async(lambda: atenacious(awork), n), abare, r)
    rows.append(("retry, async, first try succeeds", f"{other * 1e6:.2f} us",
                 f"{mine * 1e6:.2f} us", f"{mine / other:.2f}x"))  # fmt: skip

    pipeline = Pipeline().add(Timeout(5.0)).add(CircuitBreaker()).add(Bulkhead(100)).add(Retry())
    peer_breaker = aiobreaker.CircuitBreaker()
    peer_retry = tenacity.AsyncRetrying(stop=tenacity.stop_after_attempt(3), reraise=True)
    semaphore: asyncio.Semaphore | None = None

    async def peer_stack() -> int:
        nonlocal semaphore
        semaphore = semaphore or asyncio.Semaphore(100)
        bulkhead = semaphore

        async def limited() -> int:
            async with bulkhead:
                return await peer_retry(awork)

        async with asyncio.timeout(5.0):
            return await peer_breaker.call_async(limited)

    mine = overhead(lambda: per_call_async(lambda: pipeline.call(awork), n // 4), abare, r)
    other = overhead(lambda: per_call_async(peer_stack, n // 4), abare, r)
    rows.append(("deadline + breaker + bulkhead + retry, async", f"{other * 1e6:.2f} us",
                 f"{mine * 1e6:.2f} us", f"{mine / other:.2f}x"))  # fmt: skip

    print(f"overhead per call on the success path, median of {r} rounds of {n:,} calls")
    print(table(rows, ["what", "peer (pybreaker / tenacity)", "redline", "ratio"]))

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
