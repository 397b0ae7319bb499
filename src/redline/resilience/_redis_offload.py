"""The offload queue and idempotency store in Redis (re-exported by ``redline.resilience.redis``).

One stream per queue with one consumer group, ``workers``:

- ``{prefix}{name}``: jobs waiting or in flight. A job is added by XADD, delivered by
  XREADGROUP, acknowledged by XACK *and deleted* (XDEL), so the stream holds exactly the
  jobs not yet done: its length is the depth, and the depth less the group's pending
  entries is the lag.
- A worker that dies leaves its jobs in the group's pending list; XAUTOCLAIM hands those
  idle longer than the visibility timeout to a live worker, and XPENDING's delivery count
  says how many workers already had each.
- ``{prefix}{name}:delayed``: retries waiting for their backoff, a sorted set scored by
  the due time on the Redis server's clock; a Lua script moves the due ones to the stream.
- ``{prefix}{name}:dead``: the dead-letter stream.
- ``{prefix}{name}:completed``: jobs done, when workers announce them (``completions``),
  capped near the newest 100,000: what a load test reads to time jobs end to end.

The idempotency store keeps ``{prefix}key:{key}`` as ``running`` (with a lease, SET NX
PX) or ``done`` (with a TTL); producer keys are ``{prefix}key:enqueue:{key}``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._offload import (
    DeadJob,
    Delivery,
    Idempotency,
    Job,
    QueueBackend,
    QueueStats,
    QueueUnavailableError,
    decode_job,
    encode_job,
)

__all__ = ["RedisIdempotency", "RedisStreamQueue"]

_GROUP = "workers"

# KEYS: delayed zset, stream. ARGV: max to move. Moves due retries to the stream.
_MOVE_DUE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local fields = cjson.decode(member)
  local flat = {}
  for k, v in pairs(fields) do flat[#flat + 1] = k; flat[#flat + 1] = v end
  redis.call('XADD', KEYS[2], '*', unpack(flat))
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""

# KEYS: delayed zset, stream. ARGV: group, entry id, delay ms, job as JSON. The retry is
# scheduled and this copy acknowledged in one step: a crash between cannot lose or double it.
_RETRY = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local acked = redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
if acked == 0 then return 0 end
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
return 1
"""

# KEYS: dead stream, stream. ARGV: group, entry id, then the dead entry's fields.
_DEAD = """
local acked = redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
if acked == 0 then return 0 end
redis.call('XDEL', KEYS[2], ARGV[2])
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
return 1
"""

# KEYS: the key. ARGV: lease ms. "new", "running" or "done".
_BEGIN = """
if redis.call('SET', KEYS[1], 'running', 'NX', 'PX', ARGV[1]) then return 'new' end
return redis.call('GET', KEYS[1]) or 'new'
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == 'running' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == 'running' then redis.call('DEL', KEYS[1]) end
return 1
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: dict[Any, Any]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


class RedisStreamQueue(QueueBackend):
    """Jobs in a Redis stream with a consumer group (see the module)."""

    def __init__(
        self,
        client: Redis,
        name: str,
        *,
        prefix: str = "redline:offload:",
        completed_maxlen: int = 100_000,
    ) -> None:
        """A queue named ``name`` on ``client`` (nothing is written before the first use)."""
        self.client = client
        self.name = name
        self.stream = prefix + name
        self.delayed = self.stream + ":delayed"
        self.dead_stream = self.stream + ":dead"
        self.completed_stream = self.stream + ":completed"
        self.completed_maxlen = completed_maxlen
        self._group_ready = False
        self._cursor = "0-0"
        self._move_due = client.register_script(_MOVE_DUE)
        self._retry = client.register_script(_RETRY)
        self._dead = client.register_script(_DEAD)

    async def _ensure_group(self) -> None:
        try:
            # from the start ("0"): jobs added before the first worker are not skipped
            await self.client.xgroup_create(self.stream, _GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def put(self, job: Job) -> None:
        """XADD the job."""
        try:
            await self.client.xadd(self.stream, encode_job(job))  # type: ignore[arg-type]
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise QueueUnavailableError(f"Redis did not take job {job.id}: {exc}") from exc

    async def take(
        self, consumer: str, count: int, *, block_s: float, visibility_s: float
    ) -> list[Delivery]:
        """Due retries to the stream, then XAUTOCLAIM the stuck, then XREADGROUP new."""
        if not self._group_ready:
            await self._ensure_group()
        try:
            return await self._take(consumer, count, block_s, visibility_s)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # the server lost it (restarted without its data)
            await self._ensure_group()
            return await self._take(consumer, count, block_s, visibility_s)

    async def _take(
        self, consumer: str, count: int, block_s: float, visibility_s: float
    ) -> list[Delivery]:
        await self._move_due(keys=[self.delayed, self.stream], args=[100])
        taken: list[Delivery] = []
        answer: Any = await self.client.xautoclaim(
            self.stream, _GROUP, consumer, int(visibility_s * 1000), self._cursor, count=count
        )
        cursor, claimed = answer[0], answer[1]
        self._cursor = _text(cursor)
        if claimed:
            counts = await self._delivery_counts(claimed, consumer)
            taken.extend(self._deliveries(claimed, counts))
        if len(taken) < count:
            block = max(1, int(block_s * 1000)) if not taken else None
            answer = await self.client.xreadgroup(
                _GROUP, consumer, {self.stream: ">"}, count=count - len(taken), block=block
            )
            for _, entries in answer or []:
                taken.extend(self._deliveries(entries, {}))
        return taken

    async def _delivery_counts(self, entries: list[Any], consumer: str) -> dict[str, int]:
        """How many times each claimed entry was delivered (now all this consumer's)."""
        ids = [_text(entry_id) for entry_id, _ in entries]
        rows = await self.client.xpending_range(
            self.stream, _GROUP, min=min(ids, key=_id_order), max=max(ids, key=_id_order),
            count=len(ids) + 1000, consumername=consumer,
        )  # fmt: skip
        return {_text(row["message_id"]): int(row["times_delivered"]) for row in rows}

    def _deliveries(self, entries: list[Any], counts: dict[str, int]) -> list[Delivery]:
        deliveries = []
        for entry_id, raw in entries:
            if raw is None:
                continue  # deleted while pending
            receipt = _text(entry_id)
            try:
                job = decode_job(_fields(raw))
            except ValueError as exc:
                # not ours to run: straight to the dead letters, untouched
                job = Job(receipt, _fields(raw), receipt)
                deliveries.append(Delivery(job, receipt, malformed=str(exc)))
                continue
            deliveries.append(Delivery(job, receipt, counts.get(receipt, 1)))
        return deliveries

    async def ack(self, delivery: Delivery) -> None:
        """XACK and XDEL, together."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, _GROUP, delivery.receipt)
            pipe.xdel(self.stream, delivery.receipt)
            await pipe.execute()

    async def retry(self, delivery: Delivery, delay_s: float) -> None:
        """The next attempt into the delayed set, this copy acknowledged (one script)."""
        job = delivery.job
        following = Job(job.id, job.payload, job.key, job.attempt + 1, job.enqueued_at)
        member = _json(encode_job(following))
        await self._retry(
            keys=[self.delayed, self.stream],
            args=[_GROUP, delivery.receipt, int(delay_s * 1000), member],
        )

    async def dead_letter(self, delivery: Delivery, error: str) -> None:
        """Into the dead stream with the error, this copy acknowledged (one script)."""
        job = delivery.job
        fields = dict(job.payload) if delivery.malformed else encode_job(job)
        fields = {**fields, "error": error, "failed_at": repr(time.time())}
        flat = [part for pair in fields.items() for part in pair]
        await self._dead(
            keys=[self.dead_stream, self.stream], args=[_GROUP, delivery.receipt, *flat]
        )

    async def complete(self, job: Job, finished_at: float) -> None:
        """XADD to ``{stream}:completed``: id, key, enqueued and finished times.

        The stream is capped near its newest ``completed_maxlen`` entries.
        """
        fields = {"id": job.id, "key": job.key, "enqueued_at": repr(job.enqueued_at),
                  "finished_at": repr(finished_at)}  # fmt: skip
        await self.client.xadd(
            self.completed_stream, fields,  # type: ignore[arg-type]
            maxlen=self.completed_maxlen, approximate=True,
        )  # fmt: skip

    async def extend(self, consumer: str, deliveries: list[Delivery]) -> None:
        """XCLAIM with JUSTID to ourselves: their idle time starts again."""
        ids = [delivery.receipt for delivery in deliveries]
        await self.client.xclaim(self.stream, _GROUP, consumer, 0, ids, justid=True)

    async def stats(self) -> QueueStats:
        """XLEN, XPENDING, ZCARD and the head of the stream, in one round trip."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xlen(self.stream)
            pipe.zcard(self.delayed)
            pipe.xlen(self.dead_stream)
            pipe.xrange(self.stream, count=1)
            pipe.zrange(self.delayed, 0, 0)
            pipe.exists(self.stream)
            results = await pipe.execute()
        length, delayed, dead, head, first_delayed, exists = results
        pending = 0
        if exists:
            try:
                pending = int((await self.client.xpending(self.stream, _GROUP))["pending"])
            except ResponseError:  # no group yet: nothing delivered
                pending = 0
        ages = []
        if head:
            ages.append(float(_fields(head[0][1]).get("enqueued_at", "0") or 0))
        if first_delayed:
            ages.append(float(_json_loads(first_delayed[0]).get("enqueued_at", "0")))
        oldest = min(ages) if ages else None
        return QueueStats(
            depth=int(length) + int(delayed),
            lag=int(length) - pending + int(delayed),
            in_flight=pending,
            dead_letters=int(dead),
            oldest_age_s=None if oldest is None else max(0.0, time.time() - oldest),
        )

    async def dead(self, limit: int = 100) -> list[DeadJob]:
        """The dead stream's first ``limit`` entries."""
        entries: Any = await self.client.xrange(self.dead_stream, count=limit)
        jobs = []
        for entry_id, raw in entries:
            fields = _fields(raw)
            try:
                job = decode_job(fields)
            except ValueError:
                job = Job(_text(entry_id), fields, _text(entry_id))
            jobs.append(
                DeadJob(job, fields.get("error", ""), float(fields.get("failed_at", "0")),
                        _text(entry_id))
            )  # fmt: skip
        return jobs

    async def requeue_dead(self, limit: int | None = None) -> int:
        """Dead letters back on the stream as first attempts (each in one transaction)."""
        moved = 0
        for dead in await self.dead(limit if limit is not None else 10_000):
            fresh = Job(dead.job.id, dead.job.payload, dead.job.key, 1, dead.job.enqueued_at)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.xadd(self.stream, encode_job(fresh))  # type: ignore[arg-type]
                pipe.xdel(self.dead_stream, dead.receipt)
                await pipe.execute()
            moved += 1
        return moved

    async def purge(self) -> None:
        """Delete the queue's keys (tests, and a queue being retired)."""
        await self.client.delete(self.stream, self.delayed, self.dead_stream, self.completed_stream)
        self._group_ready = False


class RedisIdempotency(Idempotency):
    """Keys in Redis, shared by every producer and worker of a fleet (see the module)."""

    def __init__(self, client: Redis, *, prefix: str = "redline:offload:key:") -> None:
        """A store on ``client``."""
        self.client = client
        self.prefix = prefix
        self._begin = client.register_script(_BEGIN)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def begin(self, key: str, lease_s: float) -> str:
        """SET NX PX, else the key's state."""
        lease_ms = max(1, int(lease_s * 1000))
        return _text(await self._begin(keys=[self.prefix + key], args=[lease_ms]))

    async def finish(self, key: str, ttl_s: float) -> None:
        """SET ``done`` with the TTL."""
        await self.client.set(self.prefix + key, "done", px=max(1, int(ttl_s * 1000)))

    async def release(self, key: str) -> None:
        """DEL, if still ``running``."""
        await self._release(keys=[self.prefix + key])

    async def renew(self, key: str, lease_s: float) -> None:
        """PEXPIRE, if still ``running``."""
        await self._renew(keys=[self.prefix + key], args=[max(1, int(lease_s * 1000))])

    async def remember(self, key: str, job_id: str, ttl_s: float) -> str:
        """SET NX EX of the job id, else the one already there."""
        full = self.prefix + key
        if await self.client.set(full, job_id, nx=True, px=max(1, int(ttl_s * 1000))):
            return job_id
        first = await self.client.get(full)
        return job_id if first is None else _text(first)

    async def forget(self, key: str) -> None:
        """DEL."""
        await self.client.delete(self.prefix + key)


def _id_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _json(fields: dict[str, str]) -> str:
    return json.dumps(fields, separators=(",", ":"), sort_keys=True)


def _json_loads(raw: Any) -> dict[str, str]:
    value = json.loads(_text(raw))
    return value if isinstance(value, dict) else {}
