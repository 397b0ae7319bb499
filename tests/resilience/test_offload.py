"""Durable offloading, on the in-process queue and on a real Redis.

The same behaviour is asked of both backends: retries after backoff, dead letters,
redelivery after the visibility timeout, idempotency keys on both sides. The Redis tests
then kill a worker process mid-job (SIGKILL) and restart the server mid-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from redline.resilience import (
    Delivery,
    Job,
    MemoryIdempotency,
    MemoryQueue,
    Offload,
    QueueUnavailableError,
    Retry,
    RetryBudget,
)
from redline.resilience.prometheus import PrometheusMetrics
from redline.resilience.rabbitmq import RabbitQueue
from redline.resilience.redis import RedisIdempotency, RedisStreamQueue


def run(main: Callable[[], Awaitable[Any]], seconds: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(main(), seconds))


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.02)
    return await check()


def quick(attempts: int = 3) -> Retry:
    return Retry(attempts=attempts, base_s=0.01, max_s=0.02)


@contextlib.asynccontextmanager
async def offload_on(kind: str, redis_url: str, prefix: str) -> AsyncIterator[Offload]:
    if kind == "memory":
        yield Offload(MemoryQueue("jobs"), idempotency=MemoryIdempotency())
        return
    if kind.startswith("amqp://"):
        rabbit = RabbitQueue(kind, "redline-test-" + prefix.split(":")[1])
        try:
            yield Offload(rabbit, idempotency=MemoryIdempotency())
        finally:
            await rabbit.purge()
            await rabbit.close()
        return
    client = Redis.from_url(redis_url)
    queue = RedisStreamQueue(client, "jobs", prefix=prefix)
    try:
        yield Offload(queue, idempotency=RedisIdempotency(client, prefix=prefix + "key:"))
    finally:
        await queue.purge()
        await client.aclose()


@pytest.fixture(params=["memory", "redis", "rabbitmq"])
def kind(request: pytest.FixtureRequest) -> str:
    """Each backend in turn (RabbitMQ's by its URL)."""
    if request.param == "rabbitmq":
        return str(request.getfixturevalue("rabbitmq_url"))
    return str(request.param)


# RabbitMQ has no visibility timeout of its own: it hands a job on when its channel closes
BACKENDS = pytest.mark.parametrize("kind", ["memory", "redis"])


def test_jobs_are_done_once_each_and_the_queue_empties(
    kind: str, redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with offload_on(kind, redis_url, redis_prefix) as offload:
            ids = [await offload.enqueue({"n": n}) for n in range(50)]
            assert len(set(ids)) == 50
            before = await offload.stats()
            assert (before.depth, before.lag, before.in_flight) == (50, 50, 0)
            if not kind.startswith("amqp://"):  # RabbitMQ does not tell (AMQP)
                assert before.oldest_age_s is not None
            done: list[tuple[str, int]] = []

            async def handler(job: Job) -> None:
                done.append((job.id, job.payload["n"]))

            async with offload.worker(handler, concurrency=4, poll_s=0.05) as worker:
                assert await until(lambda: _empty(offload))
            assert sorted(done, key=lambda d: d[1]) == list(zip(ids, range(50), strict=True))
            assert worker.completed == 50
            after = await offload.stats()
            assert (after.depth, after.lag, after.in_flight, after.oldest_age_s) == (0, 0, 0, None)

    run(main)


def test_a_producer_key_makes_one_job(kind: str, redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        async with offload_on(kind, redis_url, redis_prefix) as offload:
            first = await offload.enqueue({"order": 1}, key="order-1")
            again = await offload.enqueue({"order": 1}, key="order-1")
            other = await offload.enqueue({"order": 2}, key="order-2")
            assert again == first != other
            assert (await offload.stats()).depth == 2
            with pytest.raises(TypeError):
                await offload.enqueue({"not json": object()}, key="order-3")
            assert (await offload.stats()).depth == 2

    run(main)


def test_a_failing_job_is_retried_then_dead_lettered(
    kind: str, redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with offload_on(kind, redis_url, redis_prefix) as offload:
            flaky = await offload.enqueue({"kind": "flaky"})
            poison = await offload.enqueue({"kind": "poison"})
            fatal = await offload.enqueue({"kind": "fatal"})
            attempts: Counter[str] = Counter()

            async def handler(job: Job) -> None:
                attempts[job.id] += 1
                assert job.attempt == attempts[job.id]  # the handler sees its attempt
                kind = job.payload["kind"]
                if kind == "fatal":
                    raise LookupError("no such account")  # not an error to retry
                if kind == "poison" or job.attempt < 3:
                    raise ConnectionError(f"{kind} attempt {job.attempt}")

            retry = Retry(attempts=3, base_s=0.01, max_s=0.02, retry_on=(ConnectionError,))
            async with offload.worker(handler, retry=retry, poll_s=0.05) as worker:
                assert await until(lambda: _empty(offload, dead=2))
            assert attempts == {flaky: 3, poison: 3, fatal: 1}
            assert (worker.completed, worker.retried, worker.dead_lettered) == (1, 4, 2)
            dead = {d.job.id: d for d in await offload.dead_letters()}
            assert set(dead) == {poison, fatal}
            assert dead[poison].error == "ConnectionError: poison attempt 3"
            assert dead[fatal].error == "LookupError: no such account"
            assert dead[poison].job.payload == {"kind": "poison"}

            assert await offload.requeue_dead() == 2
            stats = await offload.stats()
            assert (stats.depth, stats.dead_letters) == (2, 0)

    run(main)


def test_the_retry_budget_dead_letters_what_it_cannot_afford(
    kind: str, redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with offload_on(kind, redis_url, redis_prefix) as offload:
            for n in range(10):
                await offload.enqueue({"n": n})

            async def handler(job: Job) -> None:
                raise ConnectionError("payments down")

            # room for 3 retries in all: ten failing jobs cannot all retry (no storm)
            budget = RetryBudget(ratio=0.0, floor_per_s=0.3, ttl_s=10)
            retry = Retry(attempts=5, base_s=0.01, max_s=0.02, budget=budget)
            async with offload.worker(handler, retry=retry, poll_s=0.05) as worker:
                assert await until(lambda: _empty(offload, dead=10))
            assert worker.retried == 3
            assert worker.dead_lettered == 10

    run(main)


@BACKENDS
def test_a_job_whose_worker_went_silent_is_delivered_again(
    kind: str, redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with offload_on(kind, redis_url, redis_prefix) as offload:
            job_id = await offload.enqueue({"n": 1})
            # a worker takes the job and is never heard of again
            taken = await offload.backend.take("lost", 10, block_s=0.5, visibility_s=0.2)
            assert [d.job.id for d in taken] == [job_id]
            assert (await offload.stats()).in_flight == 1
            seen: list[Job] = []

            async def handler(job: Job) -> None:
                seen.append(job)

            async with offload.worker(handler, visibility_timeout_s=0.2, poll_s=0.05):
                assert await until(lambda: _empty(offload))
            assert [job.id for job in seen] == [job_id]
            assert seen[0].attempt == 2  # the lost delivery used up the first attempt

    run(main)


def test_a_long_job_keeps_its_claim(kind: str, redis_url: str, redis_prefix: str) -> None:
    async def main() -> None:
        async with offload_on(kind, redis_url, redis_prefix) as offload:
            await offload.enqueue({"n": 1})
            runs = 0

            async def slow(job: Job) -> None:
                nonlocal runs
                runs += 1
                await asyncio.sleep(1.0)  # five visibility timeouts: renewed meanwhile

            async with (
                offload.worker(slow, visibility_timeout_s=0.2, poll_s=0.05),
                offload.worker(slow, visibility_timeout_s=0.2, poll_s=0.05),
            ):
                assert await until(lambda: _empty(offload))
            assert runs == 1

    run(main)


@BACKENDS
def test_a_job_done_but_not_acknowledged_does_not_run_again(
    kind: str, redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with offload_on(kind, redis_url, redis_prefix) as offload:
            backend = offload.backend
            acknowledge = backend.ack
            lost = 0

            async def ack_lost_once(delivery: Delivery) -> None:
                nonlocal lost
                if not lost:
                    lost += 1  # the worker died between its work and the ack
                    return
                await acknowledge(delivery)

            backend.ack = ack_lost_once  # type: ignore[method-assign]
            await offload.enqueue({"n": 1}, key="charge-1")
            runs = 0

            async def handler(job: Job) -> None:
                nonlocal runs
                runs += 1

            async with offload.worker(handler, visibility_timeout_s=0.2, poll_s=0.05) as worker:
                assert await until(lambda: _empty(offload))
            assert runs == 1
            assert worker.duplicates == 1

    run(main)


def test_a_renewed_claim_lasts_one_timeout_from_the_renewal() -> None:
    now = [100.0]
    queue = MemoryQueue(clock=lambda: now[0])

    async def main() -> None:
        await queue.put(Job("a", {}, "a"))
        [held] = await queue.take("w", 1, block_s=0, visibility_s=10)
        now[0] += 8
        for _ in range(5):  # renewed five times at once: ten seconds from now, no more
            await queue.extend("w", [held])
        now[0] += 9.9
        assert await queue.take("v", 1, block_s=0, visibility_s=10) == []
        now[0] += 0.2
        [again] = await queue.take("v", 1, block_s=0, visibility_s=10)
        assert (again.job.id, again.deliveries) == ("a", 2)

    run(main)


def test_the_queue_gauges_and_job_latency_reach_prometheus() -> None:
    async def main() -> None:
        registry = CollectorRegistry()
        metrics = PrometheusMetrics(registry)
        offload = Offload(MemoryQueue("orders"))
        metrics.watch(offload)
        for n in range(20):
            await offload.enqueue({"n": n})
        release = asyncio.Event()

        async def handler(job: Job) -> None:
            await release.wait()

        worker = offload.worker(handler, concurrency=5, stats_interval_s=0.05, poll_s=0.05)
        async with worker:

            def gauge(name: str) -> float | None:
                return registry.get_sample_value(
                    f"redline_resilience_queue_{name}", {"strategy": "offload", "name": "orders"}
                )

            assert await until(lambda: _true(gauge("in_flight") == 5))
            assert gauge("depth") == 20
            assert gauge("lag") == 15
            assert (gauge("oldest_age_seconds") or 0) > 0
            release.set()
            assert await until(lambda: _empty(offload))
        latency = registry.get_sample_value(
            "redline_resilience_job_latency_seconds_count",
            {"strategy": "offload", "name": "orders"},
        )
        assert latency == 20
        successes = registry.get_sample_value(
            "redline_resilience_calls_total",
            {"strategy": "offload", "name": "orders", "outcome": "success"},
        )
        assert successes == 20

    run(main)


async def _true(value: bool) -> bool:
    return value


async def _empty(offload: Offload, dead: int = 0) -> bool:
    stats = await offload.stats()
    return stats.depth == 0 and stats.dead_letters == dead


def test_a_malformed_entry_goes_to_the_dead_letters_untouched(
    redis_url: str, redis_prefix: str
) -> None:
    async def main() -> None:
        async with offload_on("redis", redis_url, redis_prefix) as offload:
            queue = offload.backend
            assert isinstance(queue, RedisStreamQueue)
            await queue.client.xadd(queue.stream, {"hello": "world"})
            runs = 0

            async def handler(job: Job) -> None:
                nonlocal runs
                runs += 1

            async with offload.worker(handler, poll_s=0.05):
                assert await until(lambda: _empty(offload, dead=1))
            assert runs == 0
            [dead] = await offload.dead_letters()
            assert dead.error.startswith("not a job: not a redline job")
            assert dead.job.payload["hello"] == "world"

    run(main)


# -- a worker process killed mid-job, and a server restarted mid-run -----------------------

_WORKER = """
import asyncio, sys
from redis.asyncio import Redis
from redline.resilience import Offload, Retry
from redline.resilience.rabbitmq import RabbitQueue
from redline.resilience.redis import RedisIdempotency, RedisStreamQueue

broker, redis_url, prefix, name = sys.argv[1:5]
APPLY = ("if redis.call('SET', KEYS[1], 1, 'NX') then "
         "redis.call('HINCRBY', KEYS[2], ARGV[1], 1) end")

async def main():
    client = Redis.from_url(redis_url)
    if broker.startswith("amqp://"):
        queue = RabbitQueue(broker, "redline-test-" + prefix.split(":")[1])
    else:
        queue = RedisStreamQueue(client, "jobs", prefix=prefix)
    offload = Offload(queue, idempotency=RedisIdempotency(client, prefix=prefix + "key:"))

    async def handler(job):
        await client.hincrby(prefix + "runs", job.id, 1)
        await client.hincrby(prefix + "by", name, 1)
        await asyncio.sleep(0.02)
        # the effect, made idempotent by the job's key (as a payment provider's would be),
        # and counted in the same step
        await client.eval(APPLY, 2, prefix + "effect:" + job.key, prefix + "applied", job.id)

    worker = offload.worker(handler, concurrency=8, visibility_timeout_s=1.0, poll_s=0.1,
                            retry=Retry(attempts=5, base_s=0.01, max_s=0.05))
    await worker.run()

asyncio.run(main())
"""


def _spawn_worker(broker: str, redis_url: str, prefix: str, name: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", _WORKER, broker, redis_url, prefix, name]
    return subprocess.Popen(command, env=env)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_worker_killed_mid_job_loses_nothing_and_doubles_nothing(
    broker: str, redis_url: str, redis_prefix: str, request: pytest.FixtureRequest
) -> None:
    # the job's effects and counts live in Redis for both brokers; the worker that is
    # killed holds jobs (Redis: in the group's pending list; RabbitMQ: unacknowledged)
    jobs = 600
    kind = "redis" if broker == "redis" else str(request.getfixturevalue("rabbitmq_url"))

    async def main() -> None:
        client = Redis.from_url(redis_url)
        try:
            async with offload_on(kind, redis_url, redis_prefix) as offload:
                ids = [await offload.enqueue({"n": n}) for n in range(jobs)]
                workers = [_spawn_worker(kind, redis_url, redis_prefix, f"w{i}") for i in range(2)]
                try:
                    # kill one while it holds jobs (it has begun, and work is left)
                    assert await until(lambda: _has_begun(client, redis_prefix, "w0"))
                    assert int(await client.hlen(redis_prefix + "runs")) < jobs - 100
                    workers[0].send_signal(signal.SIGKILL)
                    workers[0].wait(10)
                    # RabbitMQ tells only the jobs ready, not those in flight at the other
                    # worker: wait for the effects, then for an empty queue
                    assert await until(lambda: _all_applied(client, redis_prefix, jobs), 60)
                    assert await until(lambda: _empty(offload), seconds=60)
                    await asyncio.sleep(0.5)  # a second effect of any job would show now
                finally:
                    for worker in workers:
                        worker.kill()
                        worker.wait(10)
                runs = await _counts(client, redis_prefix + "runs")
                applied = await _counts(client, redis_prefix + "applied")
                assert applied == dict.fromkeys(ids, 1)  # every job, exactly once in effect
                assert set(runs) == set(ids)
                # the killed worker's jobs (up to its 8 in flight) ran again elsewhere, and
                # nothing it had finished did
                assert jobs < sum(runs.values()) <= jobs + 8
        finally:
            await client.aclose()

    run(main, seconds=120)


async def _counts(client: Redis, key: str) -> dict[str, int]:
    items = (await client.hgetall(key)).items()
    return {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in items}


async def _all_applied(client: Redis, prefix: str, jobs: int) -> bool:
    return int(await client.hlen(prefix + "applied")) >= jobs


async def _has_begun(client: Redis, prefix: str, worker: str) -> bool:
    return int(await client.hget(prefix + "by", worker) or 0) >= 10


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    """A Redis of the test's own that keeps its data (AOF, fsync always) over a restart."""
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is needed (.ci/run installs it)"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
               "--save", "", "--appendonly", "yes", "--appendfsync", "always"]  # fmt: skip
    servers: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers.append(server)
        for _ in range(250):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.02)
        raise AssertionError("redis-server did not start")

    def restart() -> None:
        servers[-1].terminate()
        servers[-1].wait(10)
        start()

    start()
    try:
        yield f"redis://127.0.0.1:{port}/0", restart
    finally:
        for server in servers:
            server.kill()
            server.wait(10)


async def _through_a_restart(
    producer: Offload, consumer: Offload, restart: Callable[[], None]
) -> int:
    """600 jobs enqueued while the broker restarts under a running worker: every one whose
    enqueue returned is done; the rest were refused, with the one error of every backend
    (how many, it returns)."""
    acknowledged: list[str] = []
    refused = 0
    done: set[str] = set()

    async def handler(job: Job) -> None:
        done.add(job.id)

    async def produce() -> None:
        nonlocal refused
        for n in range(600):
            try:
                acknowledged.append(await asyncio.wait_for(producer.enqueue({"n": n}), 5))
            except (QueueUnavailableError, TimeoutError):
                refused += 1  # not acknowledged: the caller knows it is not queued
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.002)

    async with consumer.worker(handler, poll_s=0.05, visibility_timeout_s=2.0):
        producing = asyncio.create_task(produce())
        await asyncio.sleep(0.4)
        await asyncio.to_thread(restart)
        await producing
        assert await until(lambda: _true(done >= set(acknowledged)), seconds=60)
    assert len(acknowledged) + refused == 600
    assert len(acknowledged) > 300
    assert done >= set(acknowledged)
    return refused


def test_a_redis_restart_mid_run_loses_no_acknowledged_job(own_redis: Any) -> None:
    url, restart = own_redis

    async def main() -> None:
        def client() -> Redis:
            return Redis.from_url(
                url,
                retry=RedisRetry(ExponentialBackoff(cap=0.2, base=0.01), 50),
                retry_on_error=[RedisConnectionError, OSError],
            )

        producer_side, worker_side = client(), client()
        offload = Offload(RedisStreamQueue(producer_side, "jobs"))
        consumer = Offload(
            RedisStreamQueue(worker_side, "jobs"), idempotency=RedisIdempotency(worker_side)
        )
        try:
            await _through_a_restart(offload, consumer, restart)
        finally:
            await producer_side.aclose()
            await worker_side.aclose()

    run(main, seconds=120)


def test_a_rabbitmq_restart_mid_run_loses_no_acknowledged_job(rabbit_node: Any) -> None:
    async def main() -> None:
        producer = Offload(RabbitQueue(rabbit_node.url, "jobs"))
        consumer = Offload(RabbitQueue(rabbit_node.url, "jobs"))
        try:
            refused = await _through_a_restart(producer, consumer, rabbit_node.restart)
            assert refused > 0  # the restart was felt (redis-py waits through one instead)
        finally:
            await producer.backend.close()
            await consumer.backend.close()

    run(main, seconds=180)
