"""Batching and offloading against a real Redis, beside what a team would write without them.

- **Batching**: 10,000 keys read by 10,000 concurrent callers, as a plain
  ``asyncio.gather`` of single GETs and through a :class:`~redline.resilience.Loader` over
  MGET (100 keys a batch): wall time and round trips, and the Batcher's own overhead per
  item (an identity batch function beside a gather of an identity coroutine, no I/O).
- **End-to-end job latency**: a Python plan publishes jobs at 200/s for 10 s through
  :class:`redline.scenario.Jobs`; a redline Offload worker (a thread of this process,
  its own event loop) does each in 20 ms and announces it. The p50 of the run's
  ``job_latency`` beside the p50 the consumer computes from its own timestamps (enqueued
  to done): target within 1 ms.
- **RabbitMQ clients** (``--rabbitmq URL``): 3,000 persistent messages published with
  publisher confirms, then consumed and acknowledged (prefetch 64), by aio-pika and by
  aiormq (what aio-pika is built on), interleaved: rate and CPU per message.
- **Offload**: ``--jobs`` jobs (100,000 by default) preloaded on a Redis stream, drained by
  4 consumer processes pinned to the load core; each job's effect is the same one-call Lua
  script (SET NX of its key, and a count). Beside redline's workers (idempotency store in
  Redis, leases, retries, heartbeats) runs a plain XREADGROUP / XACK+XDEL loop, the
  smallest correct consumer: the printed ratio is consumer CPU per job, redline's over the
  plain loop's (target <= 1.5). Then redline again with one of the 4 workers killed
  (SIGKILL) a third of the way through: every job id must have exactly one effect.

    python benchmarks/bench_offload.py [--redis redis://127.0.0.1:6379/0] [--jobs 100000]

Each figure is the median of ``--repeat`` rounds (3 by default), the variants interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from _common import LOAD_CORE, median, table
from redline.resilience import Batcher, Job, Loader, Offload, Retry
from redline.resilience.redis import RedisIdempotency, RedisStreamQueue

CONSUMERS = 4
GROUP = "workers"  # the group RedisStreamQueue uses, for the plain loop too
APPLY = "if redis.call('SET', KEYS[1], 1, 'NX') then redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end"

# -- batching ----------------------------------------------------------------------------


async def batching_round(url: str, keys: list[str]) -> dict[str, float]:
    # 64 connections, callers waiting for one: what a service's pool does
    client = Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=64))
    try:
        start = time.perf_counter()
        single = await asyncio.gather(*(client.get(k) for k in keys))
        plain_s = time.perf_counter() - start

        async def mget(batch: list[str]) -> list[Any]:
            return list(await client.mget(batch))

        loader: Loader[str, Any] = Loader(mget, max_size=100, max_concurrency=8)
        start = time.perf_counter()
        batched = await asyncio.gather(*(loader.load(k) for k in keys))
        batched_s = time.perf_counter() - start
        assert batched == single, "the loader answered differently from GET"

        async def identity(item: int) -> int:
            return item

        async def identities(items: list[int]) -> list[int]:
            return items

        n = len(keys)
        start = time.perf_counter()
        await asyncio.gather(*(identity(i) for i in range(n)))
        gather_s = time.perf_counter() - start
        batcher: Batcher[int, int] = Batcher(identities, max_size=100, max_pending=n)
        start = time.perf_counter()
        await asyncio.gather(*(batcher.submit(i) for i in range(n)))
        batcher_s = time.perf_counter() - start
        return {
            "plain_s": plain_s,
            "batched_s": batched_s,
            "round_trips": loader.batcher.flushes,
            "gather_us": gather_s / n * 1e6,
            "batcher_us": batcher_s / n * 1e6,
        }
    finally:
        await client.aclose()


def bench_batching(url: str, repeat: int) -> None:
    n = 10_000
    prefix = f"bench-batch:{secrets.token_hex(4)}:"
    keys = [f"{prefix}{i}" for i in range(n)]

    async def setup() -> None:
        client = Redis.from_url(url)
        await client.mset({k: str(i) for i, k in enumerate(keys)})
        await client.aclose()

    async def teardown() -> None:
        client = Redis.from_url(url)
        await client.delete(*keys)
        await client.aclose()

    asyncio.run(setup())
    rounds = [asyncio.run(batching_round(url, keys)) for _ in range(repeat)]
    asyncio.run(teardown())
    plain = median([r["plain_s"] for r in rounds])
    batched = median([r["batched_s"] for r in rounds])
    print(f"\n## Batching: {n:,} concurrent reads of distinct keys (median of {repeat})\n")
    print(
        table(
            [
                ["gather of GET", f"{plain * 1000:.0f} ms", f"{n:,}", "1.00x"],
                [
                    "Loader over MGET",
                    f"{batched * 1000:.0f} ms",
                    f"{int(rounds[0]['round_trips']):,}",
                    f"{plain / batched:.2f}x faster",
                ],
            ],
            ["", "wall", "round trips", "vs gather"],
        )
    )
    gather_us = median([r["gather_us"] for r in rounds])
    batcher_us = median([r["batcher_us"] for r in rounds])
    print(
        f"\nBatcher overhead, no I/O: {batcher_us:.2f} us per item beside {gather_us:.2f} us "
        f"for a gather of an identity coroutine ({batcher_us / gather_us:.2f}x)"
    )


# -- offload -----------------------------------------------------------------------------


async def consume_plain(url: str, stream: str, name: str, prefix: str) -> None:
    """The smallest correct consumer: XREADGROUP, do the effect, XACK+XDEL."""
    client = Redis.from_url(url)
    apply = client.register_script(APPLY)
    while True:
        answer = await client.xreadgroup(GROUP, name, {stream: ">"}, count=8, block=1000)
        for _, entries in answer or []:
            for entry_id, fields in entries:
                job_id = fields[b"id"].decode()
                await apply(keys=[prefix + "effect:" + job_id, prefix + "applied"], args=[job_id])
                async with client.pipeline(transaction=True) as pipe:
                    pipe.xack(stream, GROUP, entry_id)
                    pipe.xdel(stream, entry_id)
                    await pipe.execute()


async def consume_redline(url: str, stream: str, name: str, prefix: str) -> None:
    client = Redis.from_url(url)
    apply = client.register_script(APPLY)
    queue = RedisStreamQueue(client, stream, prefix="")
    offload = Offload(queue, idempotency=RedisIdempotency(client, prefix=prefix + "key:"))

    async def handler(job: Job) -> None:
        await apply(keys=[prefix + "effect:" + job.key, prefix + "applied"], args=[job.id])

    worker = offload.worker(
        handler, concurrency=8, consumer=name, visibility_timeout_s=2.0,
        retry=Retry(attempts=5, base_s=0.01, max_s=0.1),
    )  # fmt: skip
    await worker.run()


def child(kind: str, url: str, stream: str, name: str, prefix: str) -> None:
    consume = consume_plain if kind == "plain" else consume_redline
    asyncio.run(consume(url, stream, name, prefix))


async def preload(url: str, stream: str, jobs: int) -> list[str]:
    """Jobs on the stream, written as Offload.enqueue writes them (pipelined, for speed)."""
    client = Redis.from_url(url)
    queue = RedisStreamQueue(client, stream, prefix="")
    await queue._ensure_group()
    ids = [secrets.token_hex(12) for _ in range(jobs)]
    now = repr(time.time())
    for start in range(0, jobs, 1000):
        async with client.pipeline(transaction=False) as pipe:
            for job_id in ids[start : start + 1000]:
                pipe.xadd(stream, {"id": job_id, "payload": "{}", "key": job_id,
                                   "attempt": "1", "enqueued_at": now})  # fmt: skip
            await pipe.execute()
    await client.aclose()
    return ids


async def drained(url: str, stream: str, prefix: str, jobs: int) -> tuple[int, dict[str, int]]:
    client = Redis.from_url(url)
    try:
        while int(await client.hlen(prefix + "applied")) < jobs:  # noqa: ASYNC110 - other processes
            await asyncio.sleep(0.02)
        counts = await client.hgetall(prefix + "applied")
        applied = {k.decode(): int(v) for k, v in counts.items()}
        return int(await client.xlen(stream)), applied
    finally:
        await client.aclose()


def offload_round(url: str, kind: str, jobs: int, kill: bool) -> dict[str, float]:
    stream = f"bench-offload:{secrets.token_hex(4)}"
    prefix = stream + ":"
    ids = asyncio.run(preload(url, stream, jobs))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    workers = [
        subprocess.Popen(
            [
                "taskset",
                "-c",
                LOAD_CORE,
                sys.executable,
                __file__,
                "--child",
                kind,
                url,
                stream,
                f"c{i}",
                prefix,
            ],
        )
        for i in range(CONSUMERS)
    ]
    try:
        if kill:

            async def a_third() -> None:
                client = Redis.from_url(url)
                while int(await client.hlen(prefix + "applied")) < jobs // 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                await client.aclose()

            asyncio.run(a_third())
            workers[0].send_signal(signal.SIGKILL)
        left, applied = asyncio.run(drained(url, stream, prefix, jobs))
        wall = time.perf_counter() - start
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    async def cleanup() -> None:
        client = Redis.from_url(url)
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=10_000)]
        for start_at in range(0, len(keys), 10_000):
            await client.delete(*keys[start_at : start_at + 10_000])
        await client.delete(stream)
        await client.aclose()

    asyncio.run(cleanup())
    exact = applied == dict.fromkeys(ids, 1)
    return {"wall": wall, "cpu_us": cpu / jobs * 1e6, "exact": float(exact), "left": left}


def bench_offload(url: str, jobs: int, repeat: int) -> None:
    plain: list[dict[str, float]] = []
    ours: list[dict[str, float]] = []
    for _ in range(repeat):  # interleaved
        plain.append(offload_round(url, "plain", jobs, kill=False))
        ours.append(offload_round(url, "redline", jobs, kill=False))
    killed = offload_round(url, "redline", jobs, kill=True)

    def row(name: str, rounds: list[dict[str, float]]) -> list[str]:
        wall = median([r["wall"] for r in rounds])
        cpu = median([r["cpu_us"] for r in rounds])
        exact = all(r["exact"] for r in rounds)
        return [name, f"{jobs / wall:,.0f}", f"{cpu:.0f}", "yes" if exact else "NO"]

    print(f"\n## Offload: {jobs:,} jobs, {CONSUMERS} consumer processes (median of {repeat})\n")
    print(
        table(
            [
                row("plain XREADGROUP loop", plain),
                row("redline Offload workers", ours),
                row("redline, one worker killed", [killed]),
            ],
            ["", "jobs/s", "consumer CPU us/job", "every job exactly once"],
        )
    )
    ratio = median([r["cpu_us"] for r in ours]) / median([r["cpu_us"] for r in plain])
    verdict = "met" if ratio <= 1.5 else "MISSED"
    print(f"\nCPU per job, redline / plain loop: {ratio:.2f}x (target <= 1.5x: {verdict})")


E2E_PLAN = """
from redline.scenario import Jobs, Session, scenario

target = {url!r}
load = {{"rate": 200}}
duration = "10s"
workers = 1
jobs = Jobs(redis={url!r}, queue="e2e", prefix={prefix!r}, timeout_s=30)

@scenario
async def pay(s: Session) -> None:
    await jobs.publish(s, {{"amount": 1}})
"""


def e2e_round(url: str) -> tuple[float, float]:
    """One run of E2E_PLAN beside a consumer thread: (redline's p50, the consumer's), ms."""
    import tempfile
    import threading
    from pathlib import Path

    import redline
    from redline.plan import load_plan

    prefix = f"bench-e2e:{secrets.token_hex(4)}:"
    timings: list[float] = []
    stop = threading.Event()

    async def consume() -> None:
        client = Redis.from_url(url)
        queue = RedisStreamQueue(client, "e2e", prefix=prefix)
        original = queue.complete

        async def complete(job: Job, finished_at: float) -> None:
            timings.append((finished_at - job.enqueued_at) * 1000)
            await original(job, finished_at)

        queue.complete = complete  # type: ignore[method-assign]

        async def work(job: Job) -> None:
            await asyncio.sleep(0.02)

        async with Offload(queue).worker(work, concurrency=32, completions=True):
            await asyncio.to_thread(stop.wait)
        await queue.purge()
        await client.aclose()

    thread = threading.Thread(target=lambda: asyncio.run(consume()))
    thread.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "e2e.py"
            path.write_text(E2E_PLAN.format(url=url, prefix=prefix))
            result = redline.run(load_plan(path)).result
    finally:
        stop.set()
        thread.join(30)
    latency = result.metrics()["job_latency"]
    ours = latency.value("percentile", seconds=result.duration_s, percentile=50)
    return ours, median(timings)


def bench_end_to_end(url: str, repeat: int) -> None:
    rounds = [e2e_round(url) for _ in range(repeat)]
    differences = [ours - theirs for ours, theirs in rounds]
    print(f"\n## End-to-end job latency: 2,000 jobs at 200/s, 20 ms each (median of {repeat})\n")
    print(
        table(
            [
                ["redline job_latency p50", f"{median([r[0] for r in rounds]):.3f} ms"],
                [
                    "consumer's own p50 (enqueued to done)",
                    f"{median([r[1] for r in rounds]):.3f} ms",
                ],
                ["difference", f"{median(differences):+.3f} ms"],
            ],
            ["", ""],
        )
    )
    worst = max(abs(d) for d in differences)
    verdict = "met" if worst < 1.0 else "MISSED"
    print(f"\nlargest difference of {repeat} rounds: {worst:.3f} ms (target < 1 ms: {verdict})")


async def amqp_round(url: str, client: str, n: int) -> tuple[float, float, float, float]:
    """(publish/s, publish CPU us, consume/s, consume CPU us) for one client."""
    import aio_pika
    import aiormq

    queue = f"bench-amqp-{client}-{secrets.token_hex(3)}"
    body = b'{"n":1}'
    got, done = 0, asyncio.Event()
    if client == "aio-pika":
        connection = await aio_pika.connect_robust(url)
        channel = await connection.channel(publisher_confirms=True)
        declared = await channel.declare_queue(queue, durable=True)

        def publish() -> Any:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            return channel.default_exchange.publish(message, routing_key=queue)

        async def on_message(message: Any) -> None:
            nonlocal got
            await message.ack()
            got += 1
            if got == n:
                done.set()

        async def consume() -> None:
            await channel.set_qos(prefetch_count=64)
            await declared.consume(on_message)

        async def close() -> None:
            await channel.queue_delete(queue)
            await connection.close()
    else:
        raw = await aiormq.connect(url)
        plain = await raw.channel()  # publisher confirms on by default
        await plain.queue_declare(queue, durable=True)
        persistent = aiormq.spec.Basic.Properties(delivery_mode=2)

        def publish() -> Any:
            return plain.basic_publish(body, routing_key=queue, properties=persistent)

        async def on_raw(message: Any) -> None:
            nonlocal got
            await message.channel.basic_ack(message.delivery.delivery_tag)
            got += 1
            if got == n:
                done.set()

        async def consume() -> None:
            await plain.basic_qos(prefetch_count=64)
            await plain.basic_consume(queue, on_raw)

        async def close() -> None:
            await plain.queue_delete(queue)
            await raw.close()

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(publish() for _ in range(n)))
    published = (n / (time.perf_counter() - wall), (time.process_time() - cpu) / n * 1e6)
    wall, cpu = time.perf_counter(), time.process_time()
    await consume()
    await done.wait()
    consumed = (n / (time.perf_counter() - wall), (time.process_time() - cpu) / n * 1e6)
    await close()
    return (*published, *consumed)


def bench_amqp(url: str, repeat: int) -> None:
    n = 3000
    rounds: dict[str, list[tuple[float, float, float, float]]] = {"aio-pika": [], "aiormq": []}
    for _ in range(repeat):  # interleaved
        for client, kept in rounds.items():
            kept.append(asyncio.run(amqp_round(url, client, n)))
    rows = []
    for client, kept in rounds.items():
        rows.append([client, *(f"{median([r[i] for r in kept]):,.0f}" for i in range(4))])
    print(f"\n## RabbitMQ clients: {n:,} persistent messages (median of {repeat})\n")
    print(table(rows, ["", "publish/s (confirmed)", "CPU us", "consume+ack/s", "CPU us"]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rabbitmq", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--only", choices=["batching", "e2e", "amqp", "offload"])
    args = parser.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.only in (None, "batching"):
        bench_batching(args.redis, args.repeat)
    if args.only in (None, "e2e"):
        bench_end_to_end(args.redis, args.repeat)
    if args.only in (None, "amqp"):
        bench_amqp(args.rabbitmq, args.repeat)
    if args.only in (None, "offload"):
        bench_offload(args.redis, args.jobs, args.repeat)


if __name__ == "__main__":
    main()
