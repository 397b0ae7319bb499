"""The offload queue on RabbitMQ (the ``rabbitmq`` extra: aio-pika).

::

    from redline.resilience import Offload
    from redline.resilience.rabbitmq import RabbitQueue

    offload = Offload(RabbitQueue("amqp://guest:guest@127.0.0.1/", "payments"))

Three queues per offload queue, declared on first use:

- ``{name}``: a durable *quorum* queue of the jobs. Workers consume with a prefetch of
  their concurrency and acknowledge each job when it is done. RabbitMQ hands a job to
  another worker when its worker's channel closes (the process died, the connection
  broke); the quorum queue counts those deliveries (``x-delivery-count``), so a job that
  kills its workers runs out of attempts like any other. A worker that hangs with its
  connection alive keeps its jobs until the broker's ``consumer_timeout`` (30 minutes by
  default): the visibility timeout of RabbitMQ is that setting, not ``visibility_timeout_s``.
- ``{name}.delay``: retries waiting for their backoff, each with a per-message expiry,
  dead-lettered back into ``{name}`` when it expires. Expiry happens at the head of the
  queue only, so a retry waits at most as long as the longest backoff ahead of it.
- ``{name}.dead``: the dead letters, with the error in a header.

Every publish waits for the broker's confirm before the job it replaces is acknowledged,
so a job is never in neither place; it may briefly be in both (a broken connection
between the two steps), and its key makes the second copy harmless. The connection is
aio-pika's robust one: it reconnects, declares again and resumes consuming by itself.

Statistics come from the queues' declarations: ``lag`` is the ready jobs plus the delayed
ones; ``in_flight`` counts only this process's unacknowledged deliveries (AMQP does not
tell the others'); the oldest job's age is not known without the management API (None).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import replace
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelInvalidStateError

from ._offload import DeadJob, Delivery, Job, QueueBackend, QueueStats, QueueUnavailableError

__all__ = ["RabbitQueue"]

_GONE = (ChannelInvalidStateError, aio_pika.exceptions.ChannelClosed, ConnectionError)


class RabbitQueue(QueueBackend):
    """Jobs in a RabbitMQ quorum queue (see the module)."""

    def __init__(self, url: str, name: str) -> None:
        """A queue ``name`` on the broker at ``url`` (connected on first use)."""
        self.url = url
        self.name = name
        self.delay_name = name + ".delay"
        self.dead_name = name + ".dead"
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._consuming = False
        self._held: set[int] = set()
        self._lock = asyncio.Lock()

    async def _ready(self) -> AbstractRobustChannel:
        async with self._lock:
            if self._channel is None:
                self._connection = await aio_pika.connect_robust(self.url)
                channel = await self._connection.channel(publisher_confirms=True)
                self._queue = await channel.declare_queue(
                    self.name, durable=True, arguments={"x-queue-type": "quorum"}
                )
                await channel.declare_queue(
                    self.delay_name,
                    durable=True,
                    arguments={
                        "x-dead-letter-exchange": "",
                        "x-dead-letter-routing-key": self.name,
                    },
                )
                await channel.declare_queue(self.dead_name, durable=True)
                self._channel = channel
            assert self._channel is not None
            return self._channel

    async def _publish(
        self, routing_key: str, job: Job, *, expiration_s: float | None = None, **extra: Any
    ) -> None:
        channel = await self._ready()
        message = aio_pika.Message(
            json.dumps(job.payload, separators=(",", ":")).encode(),
            message_id=job.id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            expiration=expiration_s,
            headers={
                "key": job.key,
                "attempt": job.attempt,
                "enqueued_at": repr(job.enqueued_at),
                **extra,
            },
        )
        await channel.default_exchange.publish(message, routing_key=routing_key)

    async def put(self, job: Job) -> None:
        """Publish, persistent, and wait for the broker's confirm."""
        try:
            await self._publish(self.name, job)
        except (*_GONE, aio_pika.exceptions.AMQPError, OSError) as exc:
            raise QueueUnavailableError(f"RabbitMQ did not take job {job.id}: {exc!r}") from exc

    async def take(
        self, consumer: str, count: int, *, block_s: float, visibility_s: float
    ) -> list[Delivery]:
        """Jobs the broker pushed to this worker (prefetch: the first ``count`` asked)."""
        if not self._consuming:
            channel = await self._ready()
            await channel.set_qos(prefetch_count=count)
            assert self._queue is not None
            await self._queue.consume(self._inbox.put, consumer_tag=consumer)
            self._consuming = True
        taken: list[Delivery] = []
        with contextlib.suppress(TimeoutError):
            taken.append(self._delivery(await asyncio.wait_for(self._inbox.get(), block_s)))
        while taken and len(taken) < count and not self._inbox.empty():
            taken.append(self._delivery(self._inbox.get_nowait()))
        return taken

    async def stop_taking(self, consumer: str) -> None:
        """Cancel the consumer; the jobs prefetched and not taken go back to the queue."""
        if not self._consuming or self._queue is None:
            return
        self._consuming = False
        with contextlib.suppress(*_GONE):
            await self._queue.cancel(consumer)
        while not self._inbox.empty():
            with contextlib.suppress(*_GONE):
                await self._inbox.get_nowait().nack(requeue=True)

    def _delivery(self, message: AbstractIncomingMessage) -> Delivery:
        previous = _header_int(message, "x-delivery-count", 0)
        self._held.add(id(message))
        try:
            job = _job_of(message)
        except (ValueError, TypeError) as exc:
            tag = str(message.delivery_tag or 0)
            body = {"body": message.body.decode("latin-1")}
            return Delivery(Job(str(message.message_id or tag), body, tag), message,
                            previous + 1, malformed=repr(exc))  # fmt: skip
        return Delivery(job, message, previous + 1)

    async def _settle(self, message: AbstractIncomingMessage) -> None:
        self._held.discard(id(message))
        with contextlib.suppress(*_GONE):  # its channel is gone: the broker delivers it again
            await message.ack()

    async def ack(self, delivery: Delivery) -> None:
        """Acknowledge the delivery."""
        await self._settle(delivery.receipt)

    async def retry(self, delivery: Delivery, delay_s: float) -> None:
        """The next attempt into the delay queue (confirmed), then this copy acknowledged."""
        job = delivery.job
        following = Job(job.id, job.payload, job.key, job.attempt + 1, job.enqueued_at)
        await self._publish(self.delay_name, following, expiration_s=max(delay_s, 0.001))
        await self._settle(delivery.receipt)

    async def dead_letter(self, delivery: Delivery, error: str) -> None:
        """Into the dead queue with the error (confirmed), then this copy acknowledged."""
        await self._publish(self.dead_name, delivery.job, error=error, failed_at=repr(time.time()))
        await self._settle(delivery.receipt)

    async def stats(self) -> QueueStats:
        """Passive declarations of the three queues."""
        channel = await self._ready()
        # the underlying channel: the robust one answers a passive declaration from its cache
        raw = await channel.get_underlay_channel()
        counts = []
        for name in (self.name, self.delay_name, self.dead_name):
            declared = await raw.queue_declare(name, passive=True)
            counts.append(declared.message_count or 0)
        ready, delayed, dead = counts
        return QueueStats(
            depth=ready + delayed + len(self._held),
            lag=ready + delayed,
            in_flight=len(self._held),
            dead_letters=dead,
            oldest_age_s=None,
        )

    async def _drain_dead(self, limit: int, requeue: bool) -> list[DeadJob]:
        channel = await self._ready()
        dead_queue = await channel.declare_queue(self.dead_name, passive=True)
        messages: list[AbstractIncomingMessage] = []
        jobs: list[DeadJob] = []
        try:
            while len(messages) < limit:
                message = await dead_queue.get(fail=False, no_ack=False)
                if message is None:
                    break
                messages.append(message)
                headers = message.headers or {}
                job = _job_of(message)
                jobs.append(
                    DeadJob(job, str(headers.get("error", "")),
                            float(str(headers.get("failed_at", "0"))), message)
                )  # fmt: skip
            if requeue:
                for dead in jobs:
                    fresh = replace(dead.job, attempt=1)
                    await self._publish(self.name, fresh)
                    await dead.receipt.ack()
                messages = []
        finally:
            for message in messages:  # only looked at: back where they were
                await message.nack(requeue=True)
        return jobs

    async def dead(self, limit: int = 100) -> list[DeadJob]:
        """The first ``limit`` dead letters (taken and put back)."""
        return await self._drain_dead(limit, requeue=False)

    async def requeue_dead(self, limit: int | None = None) -> int:
        """Dead letters back into the queue as first attempts."""
        return len(await self._drain_dead(limit if limit is not None else 10_000, requeue=True))

    async def purge(self) -> None:
        """Delete the three queues (tests, and a queue being retired)."""
        channel = await self._ready()
        for name in (self.name, self.delay_name, self.dead_name):
            await channel.queue_delete(name)
        self._consuming = False

    async def close(self) -> None:
        """Close the connection (unacknowledged jobs go back to the queue)."""
        if self._connection is not None:
            await self._connection.close()
        self._connection = None
        self._channel = None
        self._queue = None
        self._consuming = False


def _header_int(message: AbstractIncomingMessage, name: str, default: int) -> int:
    value = (message.headers or {}).get(name)
    return default if value is None else int(str(value))


def _job_of(message: AbstractIncomingMessage) -> Job:
    """The job a message carries (its id, JSON body and the headers :meth:`_publish` sets).

    Raises:
        ValueError: the body is not JSON or a header is not a number.
    """
    headers = message.headers or {}
    return Job(
        id=str(message.message_id),
        payload=json.loads(message.body),
        key=str(headers.get("key") or message.message_id),
        attempt=_header_int(message, "attempt", 1),
        enqueued_at=float(str(headers.get("enqueued_at", "0"))),
    )
