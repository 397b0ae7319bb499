"""Load through a queue: jobs published at an open-model rate, timed to their completion.

A real Redis carries the queue; the consumer is a redline Offload worker in a thread of
the test (its own event loop) that announces completions. The run's job latency is then
compared with the consumer's own timestamps, job by job in aggregate.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from redis.asyncio import Redis

import redline
from redline.plan import load_plan
from redline.resilience import Job, Offload
from redline.resilience.redis import RedisStreamQueue

pytestmark = pytest.mark.timeout(180)

PLAN = """
from redline.scenario import Jobs, Session, scenario

target = {url!r}                       # the broker: the scenario only publishes
load = {{"rate": 50}}
duration = "3s"
workers = 2
payments = Jobs(redis={url!r}, queue="payments", prefix={prefix!r}, timeout_s={timeout},
                watch_s=0.2)
slo = {slo!r}

@scenario
async def pay(s: Session) -> None:
    await payments.publish(s, {{"amount": 1999}})
"""


def write(tmp_path: Path, redis_url: str, prefix: str, slo: list[str], timeout: float) -> Path:
    path = tmp_path / "jobs_plan.py"
    path.write_text(PLAN.format(url=redis_url, prefix=prefix, slo=slo, timeout=timeout))
    return path


class Consumer:
    """An Offload worker in a thread of its own, announcing each job it completes."""

    def __init__(self, redis_url: str, prefix: str, work_s: float) -> None:
        self.redis_url, self.prefix, self.work_s = redis_url, prefix, work_s
        self.timings: list[tuple[float, float]] = []  # enqueued_at, finished_at
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        client = Redis.from_url(self.redis_url)
        queue = RedisStreamQueue(client, "payments", prefix=self.prefix)
        offload = Offload(queue)

        async def handler(job: Job) -> None:
            await asyncio.sleep(self.work_s)

        original = queue.complete

        async def complete(job: Job, finished_at: float) -> None:
            self.timings.append((job.enqueued_at, finished_at))
            await original(job, finished_at)

        queue.complete = complete  # type: ignore[method-assign]
        async with offload.worker(handler, concurrency=16, poll_s=0.05, completions=True):
            await asyncio.to_thread(self.stop.wait)
        await queue.purge()
        await client.aclose()


@pytest.fixture
def consumer(redis_url: str, redis_prefix: str) -> Iterator[Consumer]:
    running = Consumer(redis_url, redis_prefix, work_s=0.05)
    running.thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        running.thread.join(30)


def test_job_latency_matches_the_consumers_own_timestamps(
    consumer: Consumer, redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    slo = ["job_latency.p99 < 5s", "jobs_timed_out.count < 1", "queue_depth.max < 1000"]
    plan = load_plan(write(tmp_path, redis_url, redis_prefix, slo, timeout=30))
    outcome = redline.run(plan)
    metrics = outcome.result.metrics()
    assert metrics["jobs_completed"].total == 150  # 50/s for 3 s, every one seen done
    assert "jobs_timed_out" not in metrics
    latency = metrics["job_latency"]
    assert latency.count == 150
    assert latency.low >= 50  # no job is faster than its work
    # the consumer's view of the same jobs: from enqueue to done
    assert len(consumer.timings) == 150
    consumer_ms = np.array([(done - queued) * 1000 for queued, done in consumer.timings])
    ours = latency.value("percentile", seconds=3, percentile=50)
    assert abs(ours - float(np.median(consumer_ms))) < 1.0
    assert [v.outcome for v in outcome.verdicts] == ["pass", "pass", "pass"]
    summary = outcome.result.to_dict()["summary"]["metrics"]
    assert summary["job_latency"]["kind"] == "trend"
    assert summary["job_latency"]["count"] == 150
    assert summary["queue_depth"]["max"] >= 0


def test_jobs_nobody_consumes_time_out_and_pile_up(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    slo = ["jobs_timed_out.count < 1", "queue_depth.max < 50"]
    plan = load_plan(write(tmp_path, redis_url, redis_prefix, slo, timeout=0.5))
    try:
        outcome = redline.run(plan)
    finally:
        asyncio.run(_purge(redis_url, redis_prefix))
    metrics = outcome.result.metrics()
    assert "job_latency" not in metrics  # nothing finished: no latency, never a fast one
    assert metrics["jobs_timed_out"].total >= 100  # all but the last half second's
    assert metrics["queue_depth"].high >= 100
    assert [v.outcome for v in outcome.verdicts] == ["fail", "fail"]
    # the queue's depth over time: it only grows
    depths = [i.metrics["queue_depth"].last for i in outcome.result.intervals
              if "queue_depth" in i.metrics]  # fmt: skip
    assert depths == sorted(depths)
    assert depths[-1] > depths[0]


async def _purge(redis_url: str, prefix: str) -> Any:
    client = Redis.from_url(redis_url)
    await RedisStreamQueue(client, "payments", prefix=prefix).purge()
    await client.aclose()


RABBIT_PLAN = """
from redline.scenario import Jobs, Session, scenario

target = {url!r}                       # the broker: the scenario only publishes
load = {{"rate": 40}}
duration = "2s"
workers = 1
orders = Jobs(rabbitmq={url!r}, queue={queue!r}, timeout_s=60, watch_s=0.2)
slo = ["queue_lag.max >= 60"]

@scenario
async def order(s: Session) -> None:
    await orders.publish(s, {{"sku": "lamp"}})
"""


def test_a_plan_publishes_to_rabbitmq_at_an_open_model_rate(
    rabbitmq_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    queue = "redline-test-jobs-" + redis_prefix.split(":")[1]
    path = tmp_path / "rabbit_plan.py"
    path.write_text(RABBIT_PLAN.format(url=rabbitmq_url, queue=queue))
    try:
        outcome = redline.run(load_plan(path))
    finally:
        asyncio.run(_purge_rabbit(rabbitmq_url, queue))
    result = outcome.result
    published = result.endpoint(f"publish:{queue}")
    assert published.requests == 80  # 40/s for 2 s, each enqueue confirmed by the broker
    assert published.errors == 0
    # nobody consumes: every job waits, and the queue's gauges say so
    metrics = result.metrics()
    assert metrics["queue_lag"].high == 80
    assert metrics["queue_depth"].high == 80
    assert [v.outcome for v in outcome.verdicts] == ["pass"]


async def _purge_rabbit(url: str, queue: str) -> None:
    from redline.resilience.rabbitmq import RabbitQueue

    backend = RabbitQueue(url, queue)
    await backend.purge()
    await backend.close()


WEBHOOK_PLAN = """
from redline.scenario import Jobs, Session, scenario

target = {url!r}
load = {{"rate": 40}}
duration = "2s"
workers = 2
orders = Jobs(webhook=True, timeout_s=30)
slo = ["job_latency.min >= 80ms", "jobs_timed_out.count < 1"]

@scenario
async def order(s: Session) -> None:
    r = await s.post("/orders", json={{}}, headers={{"x-callback": orders.callback_url}},
                     name="order")
    orders.track(s, r.json()["job_id"])
"""


async def _answer(send: Any, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class CallingBack:
    """A service that answers 202 with a job id and posts the job's completion 80 ms later
    to the URL the request named (as a queue-backed service with a webhook does)."""

    def __init__(self) -> None:
        self.posted: list[int] = []  # the status of each completion it posted
        self.jobs = itertools.count()
        self.ready: dict[str, float] = {}  # a polled job: when its status turns done

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if scope["path"].startswith("/jobs/"):  # a status page: done 80 ms after the order
            done = time.monotonic() >= self.ready.get(scope["path"][6:], math.inf)
            await _answer(send, 200, {"status": "done" if done else "pending"})
            return
        headers = dict(scope["headers"])
        if b"x-callback" not in headers:  # polled, not called back
            job_id = f"job-{next(self.jobs)}"
            self.ready[job_id] = time.monotonic() + 0.08
            await _answer(send, 202, {"job_id": job_id})
            return
        job_id = f"job-{next(self.jobs)}"
        asyncio.get_running_loop().create_task(self._later(headers[b"x-callback"], job_id))
        await _answer(send, 202, {"job_id": job_id})

    async def _later(self, url: bytes, job_id: str) -> None:
        await asyncio.sleep(0.08)
        async with httpx.AsyncClient() as client:
            answer = await client.post(url.decode(), json={"id": job_id})
        self.posted.append(answer.status_code)


def test_a_service_that_posts_its_completions_is_timed_by_them(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    service = CallingBack()
    path = tmp_path / "webhook_plan.py"
    path.write_text(WEBHOOK_PLAN.format(url=serve(service)))
    outcome = redline.run(load_plan(path))
    metrics = outcome.result.metrics()
    # the service notes a completion after its POST is answered: the run may have taken
    # the last ones a moment before the service's own tasks wrote them down
    deadline = time.monotonic() + 10
    while len(service.posted) < 80 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.posted == [204] * 80  # every completion taken, by whichever worker
    assert metrics["jobs_completed"].total == 80
    latency = metrics["job_latency"]
    assert latency.count == 80
    assert latency.low >= 80  # from the order's intended start: never less than the work
    assert [v.outcome for v in outcome.verdicts] == ["pass", "pass"]


POLL_PLAN = """
from redline.scenario import Jobs, Session, scenario

target = {url!r}
load = {{"rate": 20}}
duration = "2s"
workers = 1
orders = Jobs(webhook=True, timeout_s=30)

@scenario
async def order(s: Session) -> None:
    r = await s.post("/orders", json={{}}, name="order")
    await orders.wait(s, r.json()["job_id"], poll="/jobs/{{id}}", every_s=0.02)
"""


def test_a_job_polled_on_its_status_page_is_timed_to_the_poll_that_saw_it_done(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    service = CallingBack()
    path = tmp_path / "poll_plan.py"
    path.write_text(POLL_PLAN.format(url=serve(service)))
    result = redline.run(load_plan(path)).result
    metrics = result.metrics()
    assert metrics["jobs_completed"].total == 40  # every iteration waited its job out
    latency = metrics["job_latency"]
    assert latency.low >= 80  # not done before the service said so
    polls = result.endpoint("job status")
    assert polls.requests >= 40 * 3  # each job asked about until done, every 20 ms
    assert service.posted == []  # nothing called back: polled
