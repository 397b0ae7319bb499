"""Durable offloading: put work on a queue, answer at once, let workers do it.

::

    offload = Offload(RedisStreamQueue(redis, "payments"), idempotency=RedisIdempotency(redis))
    job_id = await offload.enqueue({"order": 42, "amount": 1999}, key="order-42")

    async def charge(job: Job) -> None:
        await payments.charge(job.payload, idempotency_key=job.key)

    async with offload.worker(charge, concurrency=8, visibility_timeout_s=30):
        ...  # the worker consumes until the block ends

Delivery is at least once: a job whose worker dies (or stays silent longer than the
visibility timeout) is delivered again. What makes the second delivery harmless is the
job's key (the ``key`` given to :meth:`Offload.enqueue`, else its id):

- on the producer's side, enqueueing with a key already seen within ``key_ttl_s`` returns
  the first job's id and enqueues nothing (a client that retries its request does not pay
  twice);
- on the worker's side, an :class:`Idempotency` store takes a lease on the key before the
  handler runs and marks it done after: a job already done is acknowledged without running
  again, one running elsewhere is left to its worker. The one window left is a worker that
  dies after the handler's effect and before marking it done; a handler whose effect lives
  elsewhere closes it by passing ``job.key`` on (to a payment provider, or as a unique
  constraint).

A handler's error retries the job after the :class:`~redline.resilience.Retry`'s
full-jitter backoff, within its attempts and budget; a job out of attempts (or whose error
is not one to retry) goes to the dead-letter queue, with the error, for a person to read
(:meth:`Offload.dead_letters`) and requeue (:meth:`Offload.requeue_dead`).

Backends: :class:`MemoryQueue` here (one process, for tests of code that offloads),
:class:`~redline.resilience.redis.RedisStreamQueue` (Redis Streams and a consumer group)
and :class:`~redline.resilience.rabbitmq.RabbitQueue` (RabbitMQ).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import secrets
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from ._errors import ResilienceError
from ._events import Events
from ._retry import Retry, RetryBudget

__all__ = [
    "DeadJob",
    "Delivery",
    "Idempotency",
    "Job",
    "MemoryIdempotency",
    "MemoryQueue",
    "Offload",
    "OffloadWorker",
    "QueueBackend",
    "QueueStats",
    "QueueUnavailableError",
    "decode_job",
    "encode_job",
]

_log = logging.getLogger(__name__)
_NEW, _RUNNING, _DONE = "new", "running", "done"


class QueueUnavailableError(ResilienceError, ConnectionError):
    """The broker did not take the job: nothing was enqueued, the caller may try again.

    Every backend raises this one (the broker's own error is its ``__cause__``).
    """


@dataclass(frozen=True, slots=True)
class Job:
    """One unit of offloaded work, as the handler sees it."""

    id: str
    payload: Any
    """What was enqueued (a JSON value)."""
    key: str
    """The idempotency key: the producer's, else the job's id."""
    attempt: int = 1
    """1 on the first try, 2 on the first retry..."""
    enqueued_at: float = 0.0
    """Wall-clock seconds (``time.time()``) of the first enqueue, kept across retries."""


@dataclass(slots=True)
class Delivery:
    """A job handed to a worker, with the backend's handle to acknowledge it."""

    job: Job
    receipt: Any
    deliveries: int = 1
    """Times this copy was delivered (more than 1: a worker died or went silent with it)."""
    malformed: str | None = None
    """Why the message is not a job (it goes to the dead letters as it came)."""


@dataclass(frozen=True, slots=True)
class DeadJob:
    """A job that ran out of attempts (or failed in a way not to retry)."""

    job: Job
    error: str
    failed_at: float
    receipt: Any = None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A look at a queue: what a KEDA scaler or a dashboard needs."""

    depth: int
    """Jobs enqueued and not yet done: ready, delayed for a retry, or in flight."""
    lag: int
    """Jobs not yet delivered to any worker (delayed retries included)."""
    in_flight: int
    """Jobs delivered and not yet acknowledged."""
    dead_letters: int
    oldest_age_s: float | None
    """Age of the oldest job waiting (None: empty, or the broker cannot tell)."""

    def as_dict(self) -> dict[str, float | int | None]:
        """The stats as JSON-ready values."""
        return {
            "depth": self.depth,
            "lag": self.lag,
            "in_flight": self.in_flight,
            "dead_letters": self.dead_letters,
            "oldest_age_s": self.oldest_age_s,
        }


def encode_job(job: Job) -> dict[str, str]:
    """A job as flat string fields (a stream entry, message headers)."""
    return {
        "id": job.id,
        "payload": json.dumps(job.payload, separators=(",", ":")),
        "key": job.key,
        "attempt": str(job.attempt),
        "enqueued_at": repr(job.enqueued_at),
    }


def decode_job(fields: dict[str, str]) -> Job:
    """The job in ``fields``.

    Raises:
        ValueError: a field missing or not what :func:`encode_job` writes.
    """
    try:
        return Job(
            id=fields["id"],
            payload=json.loads(fields["payload"]),
            key=fields.get("key") or fields["id"],
            attempt=int(fields.get("attempt", "1")),
            enqueued_at=float(fields.get("enqueued_at", "0")),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"not a redline job: {exc!r} in {sorted(fields)}") from exc


class QueueBackend(ABC):
    """Where jobs wait: what :class:`Offload` and its workers need of a broker."""

    name: str

    @abstractmethod
    async def put(self, job: Job) -> None:
        """Enqueue ``job`` durably (returns once the broker has it)."""

    @abstractmethod
    async def take(
        self, consumer: str, count: int, *, block_s: float, visibility_s: float
    ) -> list[Delivery]:
        """Up to ``count`` jobs for ``consumer``, waiting up to ``block_s`` for any.

        First those another worker held longer than ``visibility_s`` without a word (it
        died or hangs), then new ones.
        """

    @abstractmethod
    async def ack(self, delivery: Delivery) -> None:
        """The job is done: it leaves the queue."""

    @abstractmethod
    async def retry(self, delivery: Delivery, delay_s: float) -> None:
        """Try the job again after ``delay_s`` as its next attempt (this copy is done)."""

    @abstractmethod
    async def dead_letter(self, delivery: Delivery, error: str) -> None:
        """Move the job to the dead-letter queue with ``error``."""

    async def extend(self, consumer: str, deliveries: list[Delivery]) -> None:  # noqa: B027
        """The jobs are still being worked on: restart their visibility timeout."""

    async def complete(self, job: Job, finished_at: float) -> None:  # noqa: B027
        """Announce that ``job`` is done (a completion stream a load test can read)."""

    async def stop_taking(self, consumer: str) -> None:  # noqa: B027
        """``consumer`` takes nothing more.

        What a broker pushed to it and it has not taken yet goes back to the queue.
        """

    @abstractmethod
    async def stats(self) -> QueueStats:
        """Depth, lag, jobs in flight, dead letters and the oldest job's age."""

    @abstractmethod
    async def dead(self, limit: int = 100) -> list[DeadJob]:
        """The oldest ``limit`` dead letters."""

    @abstractmethod
    async def requeue_dead(self, limit: int | None = None) -> int:
        """Move dead letters back to the queue as fresh jobs (first attempt); how many."""

    async def close(self) -> None:  # noqa: B027
        """Let go of connections the backend opened itself."""


class Idempotency(ABC):
    """Which keys are done, which are being worked on, which job a producer key made."""

    @abstractmethod
    async def begin(self, key: str, lease_s: float) -> str:
        """``"new"`` (the lease is now ours for ``lease_s``), ``"running"`` or ``"done"``."""

    @abstractmethod
    async def finish(self, key: str, ttl_s: float) -> None:
        """``key`` is done; remembered for ``ttl_s``."""

    @abstractmethod
    async def release(self, key: str) -> None:
        """Give the lease up (the work failed and may be tried again)."""

    async def renew(self, key: str, lease_s: float) -> None:  # noqa: B027
        """The work on ``key`` goes on: the lease lasts ``lease_s`` from now."""

    @abstractmethod
    async def remember(self, key: str, job_id: str, ttl_s: float) -> str:
        """The job id first enqueued under the producer key ``key`` (``job_id`` if none)."""

    @abstractmethod
    async def forget(self, key: str) -> None:
        """The producer key ``key`` made no job after all (its enqueue failed)."""


class MemoryIdempotency(Idempotency):
    """Keys in a dict of this process, with their deadlines (``clock``: monotonic)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """An empty store."""
        self.clock = clock
        self._keys: dict[str, tuple[str, float]] = {}
        self._jobs: dict[str, tuple[str, float]] = {}

    def _live(self, table: dict[str, tuple[str, float]], key: str) -> str | None:
        entry = table.get(key)
        if entry is None:
            return None
        if entry[1] <= self.clock():
            del table[key]
            return None
        return entry[0]

    async def begin(self, key: str, lease_s: float) -> str:
        """See :meth:`Idempotency.begin`."""
        state = self._live(self._keys, key)
        if state is not None:
            return state
        self._keys[key] = (_RUNNING, self.clock() + lease_s)
        return _NEW

    async def finish(self, key: str, ttl_s: float) -> None:
        """See :meth:`Idempotency.finish`."""
        self._keys[key] = (_DONE, self.clock() + ttl_s)

    async def release(self, key: str) -> None:
        """See :meth:`Idempotency.release`."""
        if self._live(self._keys, key) == _RUNNING:
            del self._keys[key]

    async def renew(self, key: str, lease_s: float) -> None:
        """See :meth:`Idempotency.renew`."""
        if self._live(self._keys, key) == _RUNNING:
            self._keys[key] = (_RUNNING, self.clock() + lease_s)

    async def remember(self, key: str, job_id: str, ttl_s: float) -> str:
        """See :meth:`Idempotency.remember`."""
        first = self._live(self._jobs, key)
        if first is not None:
            return first
        self._jobs[key] = (job_id, self.clock() + ttl_s)
        return job_id

    async def forget(self, key: str) -> None:
        """See :meth:`Idempotency.forget`."""
        self._jobs.pop(key, None)


class MemoryQueue(QueueBackend):
    """A queue in this process's memory: for tests of code that offloads, not durable."""

    def __init__(self, name: str = "jobs", *, clock: Callable[[], float] = time.monotonic) -> None:
        """An empty queue."""
        self.name = name
        self.clock = clock
        self._ready: deque[tuple[Job, int]] = deque()  # job, deliveries so far
        self._delayed: list[tuple[float, int, Job]] = []
        # receipt: job, deadline, deliveries, visibility timeout
        self._held: dict[int, tuple[Job, float, int, float]] = {}
        self._dead: list[DeadJob] = []
        self._receipts = itertools.count(1)
        self._seq = itertools.count()
        self._arrived: asyncio.Event | None = None
        self.completions: deque[tuple[Job, float]] = deque(maxlen=100_000)
        """Jobs done (with their finish time), when workers announce completions."""

    def _wake(self) -> None:
        if self._arrived is not None:
            self._arrived.set()

    async def put(self, job: Job) -> None:
        """See :meth:`QueueBackend.put` (what a broker could not take fails here too)."""
        json.dumps(job.payload)
        self._ready.append((job, 0))
        self._wake()

    def _due(self) -> float | None:
        now = self.clock()
        while self._delayed and self._delayed[0][0] <= now:
            self._ready.append((heapq.heappop(self._delayed)[2], 0))
        expired = [r for r, (_, deadline, _, _) in self._held.items() if deadline <= now]
        for receipt in expired:  # their worker went silent: deliver them again, first
            job, _, deliveries, _ = self._held.pop(receipt)
            self._ready.appendleft((job, deliveries))
        soonest = [d for _, d, _, _ in self._held.values()]
        if self._delayed:
            soonest.append(self._delayed[0][0])
        return min(soonest) - now if soonest else None

    async def take(
        self, consumer: str, count: int, *, block_s: float, visibility_s: float
    ) -> list[Delivery]:
        """See :meth:`QueueBackend.take`."""
        deadline = self.clock() + block_s
        while True:
            next_due = self._due()
            if self._ready:
                taken: list[Delivery] = []
                while self._ready and len(taken) < count:
                    job, deliveries = self._ready.popleft()
                    receipt = next(self._receipts)
                    deadline = self.clock() + visibility_s
                    self._held[receipt] = (job, deadline, deliveries + 1, visibility_s)
                    taken.append(Delivery(job, receipt, deliveries + 1))
                return taken
            left = deadline - self.clock()
            if left <= 0:
                return []
            self._arrived = asyncio.Event()
            wait = left if next_due is None else min(left, max(next_due, 0.001))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), wait)

    async def ack(self, delivery: Delivery) -> None:
        """See :meth:`QueueBackend.ack`."""
        self._held.pop(delivery.receipt, None)

    async def retry(self, delivery: Delivery, delay_s: float) -> None:
        """See :meth:`QueueBackend.retry`."""
        if self._held.pop(delivery.receipt, None) is None:
            return  # redelivered to someone else meanwhile: theirs now
        job = replace(delivery.job, attempt=delivery.job.attempt + 1)
        heapq.heappush(self._delayed, (self.clock() + delay_s, next(self._seq), job))
        self._wake()

    async def complete(self, job: Job, finished_at: float) -> None:
        """See :meth:`QueueBackend.complete`."""
        self.completions.append((job, finished_at))

    async def dead_letter(self, delivery: Delivery, error: str) -> None:
        """See :meth:`QueueBackend.dead_letter`."""
        self._held.pop(delivery.receipt, None)
        self._dead.append(DeadJob(delivery.job, error, time.time()))

    async def extend(self, consumer: str, deliveries: list[Delivery]) -> None:
        """See :meth:`QueueBackend.extend`: the timeout of the take, from now."""
        for delivery in deliveries:
            held = self._held.get(delivery.receipt)
            if held is not None:
                job, _, count, visibility = held
                self._held[delivery.receipt] = (job, self.clock() + visibility, count, visibility)

    async def stats(self) -> QueueStats:
        """See :meth:`QueueBackend.stats`."""
        self._due()
        waiting = [job for job, _ in self._ready] + [job for _, _, job in self._delayed]
        oldest = min((job.enqueued_at for job in waiting), default=None)
        lag = len(self._ready) + len(self._delayed)
        return QueueStats(
            depth=lag + len(self._held),
            lag=lag,
            in_flight=len(self._held),
            dead_letters=len(self._dead),
            oldest_age_s=None if oldest is None else max(0.0, time.time() - oldest),
        )

    async def dead(self, limit: int = 100) -> list[DeadJob]:
        """See :meth:`QueueBackend.dead`."""
        return self._dead[:limit]

    async def requeue_dead(self, limit: int | None = None) -> int:
        """See :meth:`QueueBackend.requeue_dead`."""
        moved = self._dead[:limit] if limit is not None else list(self._dead)
        del self._dead[: len(moved)]
        for dead in moved:
            self._ready.append((replace(dead.job, attempt=1), 0))
        self._wake()
        return len(moved)


class Offload:
    """Enqueue jobs on ``backend`` and make the workers that do them (see the module)."""

    def __init__(
        self,
        backend: QueueBackend,
        *,
        idempotency: Idempotency | None = None,
        key_ttl_s: float = 86_400.0,
        name: str | None = None,
    ) -> None:
        """Configure; ``idempotency`` is :class:`MemoryIdempotency` unless given.

        A fleet of producers and workers needs a shared store
        (:class:`~redline.resilience.redis.RedisIdempotency`).
        """
        self.backend = backend
        self.idempotency = idempotency if idempotency is not None else MemoryIdempotency()
        self.key_ttl_s = key_ttl_s
        self.name = name or backend.name
        self.events = Events("offload", self.name)

    async def enqueue(
        self, payload: Any, *, key: str | None = None, job_id: str | None = None
    ) -> str:
        """Put a job on the queue; its id, at once (the first job's, for a key seen before).

        Raises:
            TypeError: ``payload`` is not JSON-serialisable (the backend finds it when it
                encodes the job: here, in the caller, never in a worker);
            QueueUnavailableError: the broker did not take the job.
        """
        job_id = job_id or secrets.token_hex(12)
        if key is not None:
            first = await self.idempotency.remember("enqueue:" + key, job_id, self.key_ttl_s)
            if first != job_id:
                if self.events.listeners:
                    self.events.emit("rejection", "duplicate")
                return first
        job = Job(job_id, payload, key or job_id, 1, time.time())
        try:
            await self.backend.put(job)
        except BaseException:
            if key is not None:  # not enqueued: a retry of this enqueue must not be refused
                with contextlib.suppress(Exception):
                    await self.idempotency.forget("enqueue:" + key)
            raise
        return job_id

    def worker(
        self,
        handler: Callable[[Job], Awaitable[Any]],
        *,
        concurrency: int = 8,
        visibility_timeout_s: float = 30.0,
        retry: Retry | None = None,
        consumer: str | None = None,
        poll_s: float = 0.5,
        stats_interval_s: float = 1.0,
        completions: bool = False,
    ) -> OffloadWorker:
        """A worker running ``handler`` on up to ``concurrency`` jobs at once.

        ``retry`` decides the retries (default: 5 attempts, full-jitter backoff from 0.5 s
        up to 60 s, within a :class:`RetryBudget`); ``visibility_timeout_s`` is how long a
        job may go without a word from its worker before another worker takes it (a
        worker renews it for jobs it is still running). With ``completions`` each job done
        is announced on the backend's completion stream (Redis: ``{stream}:completed``),
        which a load test reads to time jobs end to end
        (:class:`redline.scenario.Jobs`).
        """
        return OffloadWorker(
            self,
            handler,
            concurrency=concurrency,
            visibility_timeout_s=visibility_timeout_s,
            retry=retry or Retry(attempts=5, base_s=0.5, max_s=60.0, budget=RetryBudget()),
            consumer=consumer or f"{self.name}-{secrets.token_hex(4)}",
            poll_s=poll_s,
            stats_interval_s=stats_interval_s,
            completions=completions,
        )

    async def stats(self) -> QueueStats:
        """The queue now (see :class:`QueueStats`)."""
        return await self.backend.stats()

    async def dead_letters(self, limit: int = 100) -> list[DeadJob]:
        """The oldest ``limit`` jobs in the dead-letter queue."""
        return await self.backend.dead(limit)

    async def requeue_dead(self, limit: int | None = None) -> int:
        """Give dead letters another go, from their first attempt; how many were moved."""
        return await self.backend.requeue_dead(limit)


class OffloadWorker:
    """Takes jobs from the queue and runs the handler on them (:meth:`Offload.worker`).

    ``async with worker:`` runs it for the block (or :meth:`start` and :meth:`stop`);
    ``await worker.run()`` runs it until :meth:`stop`.
    """

    def __init__(
        self,
        offload: Offload,
        handler: Callable[[Job], Awaitable[Any]],
        *,
        concurrency: int,
        visibility_timeout_s: float,
        retry: Retry,
        consumer: str,
        poll_s: float,
        stats_interval_s: float,
        completions: bool = False,
    ) -> None:
        """See :meth:`Offload.worker`."""
        if concurrency < 1 or visibility_timeout_s <= 0:
            raise ValueError("concurrency must be at least 1 and visibility_timeout_s above 0")
        self.offload = offload
        self.backend = offload.backend
        self.idempotency = offload.idempotency
        self.handler = handler
        self.concurrency = concurrency
        self.visibility_s = visibility_timeout_s
        # shorter than the visibility timeout: a job taken over from a dead worker finds
        # that worker's lease already gone
        self._lease_s = visibility_timeout_s * 0.9
        self.retry = retry
        self.consumer = consumer
        self.poll_s = poll_s
        self.stats_interval_s = stats_interval_s
        self.completions = completions
        self.events = offload.events
        self.completed = 0
        """Jobs this worker ran to success."""
        self.retried = 0
        self.dead_lettered = 0
        self.duplicates = 0
        """Deliveries of jobs already done (acknowledged without running)."""
        self._active: dict[asyncio.Task[None], Delivery] = {}
        self._leased: set[str] = set()  # keys whose lease this worker holds
        self._stopping = False
        self._slot = asyncio.Event()
        self._main: asyncio.Task[None] | None = None

    # -- running ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Take and run jobs until :meth:`stop`."""
        helpers = [asyncio.create_task(self._heartbeat())]
        if self.stats_interval_s > 0:
            helpers.append(asyncio.create_task(self._report()))
        failures = 0
        try:
            while not self._stopping:
                free = self.concurrency - len(self._active)
                if free <= 0:
                    self._slot.clear()
                    await self._slot.wait()
                    continue
                try:
                    deliveries = await self.backend.take(
                        self.consumer, free, block_s=self.poll_s, visibility_s=self.visibility_s
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the broker is away: ask again later
                    failures += 1
                    _log.warning("offload %r cannot take jobs: %r", self.offload.name, exc)
                    await asyncio.sleep(min(2.0, 0.05 * 2**failures))
                    continue
                failures = 0
                for delivery in deliveries:
                    task = asyncio.create_task(self._process(delivery))
                    self._active[task] = delivery
                    task.add_done_callback(self._finished)
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._active.pop(task, None)
        self._slot.set()

    async def start(self) -> None:
        """Run in a task of its own."""
        self._stopping = False
        self._main = asyncio.create_task(self.run())

    async def stop(self, *, drain: bool = True, timeout_s: float = 30.0) -> None:
        """Take nothing new; let the running jobs finish, or cancel them.

        With ``drain`` they have up to ``timeout_s``; a cancelled job is delivered again
        after its visibility timeout.
        """
        self._stopping = True
        self._slot.set()
        if self._main is not None:
            self._main.cancel()  # it may be blocked on the broker: nothing it holds is lost
            await asyncio.gather(self._main, return_exceptions=True)
            self._main = None
        with contextlib.suppress(Exception):
            await self.backend.stop_taking(self.consumer)
        if self._active:
            if drain:
                await asyncio.wait(set(self._active), timeout=timeout_s)
            for task in list(self._active):
                task.cancel()
            await asyncio.gather(*self._active, return_exceptions=True)

    async def __aenter__(self) -> OffloadWorker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- one job ----------------------------------------------------------------------------
    async def _process(self, delivery: Delivery) -> None:
        job = delivery.job
        if delivery.malformed is not None:
            error = f"not a job: {delivery.malformed}"
            await self._settle(lambda: self.backend.dead_letter(delivery, error))
            self.dead_lettered += 1
            self._emit("dead_letter", None)
            return
        attempt = job.attempt + delivery.deliveries - 1  # a worker that died used one up
        if attempt > self.retry.attempts:
            error = f"delivered {delivery.deliveries} times without an answer (workers died)"
            await self._settle(lambda: self.backend.dead_letter(delivery, error))
            self.dead_lettered += 1
            self._emit("dead_letter", None)
            return
        state = await self._claim(job.key)
        if state == _NEW:
            self._leased.add(job.key)
            try:
                await self._run(delivery, attempt)
            finally:
                self._leased.discard(job.key)
            return
        # done already: a copy delivered again after its worker finished (or died acking)
        await self._settle(lambda: self.backend.ack(delivery))
        self.duplicates += 1
        self._emit("duplicate", None)

    async def _run(self, delivery: Delivery, attempt: int) -> None:
        """Run the handler on a job whose lease this worker holds, and settle it."""
        job = delivery.job
        if job.attempt == 1 and delivery.deliveries == 1 and self.retry.budget is not None:
            self.retry.budget.deposit()
        started = time.monotonic()
        try:
            await self.handler(replace(job, attempt=attempt))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await self.idempotency.release(job.key)
            raise
        except Exception as exc:  # noqa: BLE001 - the handler's own errors, any kind
            seconds = time.monotonic() - started
            with contextlib.suppress(Exception):
                await self.idempotency.release(job.key)
            delay = self.retry.delay_after(attempt, exc)
            if delay is None:
                error = f"{type(exc).__name__}: {exc}"
                await self._settle(lambda: self.backend.dead_letter(delivery, error))
                self.dead_lettered += 1
                self._emit("dead_letter", seconds)
            else:
                await self._settle(lambda: self.backend.retry(delivery, delay))
                self.retried += 1
                self._emit("retry", seconds)
            return
        seconds = time.monotonic() - started
        await self._settle(lambda: self.idempotency.finish(job.key, self.offload.key_ttl_s))
        await self._settle(lambda: self.backend.ack(delivery))
        self.completed += 1
        if self.completions:
            finished = time.time()
            with contextlib.suppress(Exception):  # an announcement, not the job's outcome
                await self.backend.complete(job, finished)
        if self.events.listeners:
            self.events.emit("call", "success", seconds=seconds)
            self.events.emit("job", "completed", seconds=max(0.0, time.time() - job.enqueued_at))

    async def _claim(self, key: str) -> str:
        """Take the lease on ``key`` (``"new"``), or learn that it is ``"done"``.

        While another worker holds the lease (it is running the job, or died and its lease
        has yet to run out) or the store is away, wait and ask again: the job stays with
        this worker meanwhile (renewed by the heartbeat), so no broker hands it round and
        round, and no attempt is used up by waiting.
        """
        pause = min(0.05, self._lease_s / 4)
        while True:
            try:
                state = await self.idempotency.begin(key, self._lease_s)
            except Exception as exc:  # noqa: BLE001 - the store's errors, unknown here
                _log.warning("offload %r: idempotency store unreachable: %r",
                             self.offload.name, exc)  # fmt: skip
            else:
                if state != _RUNNING:
                    return state
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._lease_s / 2, 1.0)

    def _emit(self, outcome: str, seconds: float | None) -> None:
        if self.events.listeners:
            self.events.emit("call", outcome, seconds=seconds)

    async def _settle(self, step: Callable[[], Awaitable[Any]]) -> None:
        """Tell the broker, again while it is away.

        Up to the visibility timeout: after that the job is delivered again anyway, and
        its key makes that harmless.
        """
        give_up = time.monotonic() + self.visibility_s
        pause = 0.05
        while True:
            try:
                await step()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the broker's errors, unknown here
                if time.monotonic() + pause > give_up:
                    _log.warning("offload %r: the broker did not take a reply: %r",
                                 self.offload.name, exc)  # fmt: skip
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)

    async def _heartbeat(self) -> None:
        """Renew the visibility of jobs still running, a few times per timeout."""
        while True:
            await asyncio.sleep(self.visibility_s / 3)
            running = list(self._active.values())
            if running:
                with contextlib.suppress(Exception):
                    await self.backend.extend(self.consumer, running)
                    for key in list(self._leased):  # ours only: not those we wait for
                        await self.idempotency.renew(key, self._lease_s)

    async def _report(self) -> None:
        """The queue's gauges as ``queue`` events, for whoever listens."""
        while True:
            await asyncio.sleep(self.stats_interval_s)
            if not self.events.listeners:
                continue
            try:
                stats = await self.backend.stats()
            except Exception:  # noqa: BLE001 - the broker is away; the take loop says so
                continue
            for gauge, value in stats.as_dict().items():
                if value is None and gauge == "oldest_age_s" and not stats.depth:
                    value = 0.0  # empty: no job is waiting (a gauge left at its last age lies)
                if value is not None:
                    name = "oldest_age_seconds" if gauge == "oldest_age_s" else gauge
                    self.events.emit("queue", name, value=float(value))
