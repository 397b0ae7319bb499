"""Strategies for a fleet, through Redis (the ``redis`` extra: redis-py's asyncio client).

- :class:`RedisRateLimiter`: one token bucket per key for every process that shares the
  Redis, taken atomically by a Lua script on the server's clock (no clock skew between
  processes); the same interface as :class:`~redline.resilience.RateLimiter`, awaited.
- :class:`SharedBreakerState`: a circuit breaker's openings shared by a fleet. When one
  process's breaker opens, closes, or is forced open or disabled, it writes the state to
  Redis and publishes it; every other process's breaker of the same name adopts it at
  once (an open one for the rest of the same wait). Half-open probing stays local. A
  process that starts late reads the current state on start.

- :class:`RedisStreamQueue` and :class:`RedisIdempotency`: durable offloading
  (:class:`~redline.resilience.Offload`) through a Redis stream and a consumer group, with
  job keys shared by the fleet.

Keys are ``{prefix}{name}``: one key per bucket or breaker, so a Redis Cluster places
each on one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._breaker import CLOSED, DISABLED, FORCED_OPEN, METRICS_ONLY, OPEN, CircuitBreaker
from ._events import Event, Events
from ._limits import bucket_size, take_tokens
from ._redis_offload import RedisIdempotency, RedisStreamQueue

CLOSE_TIMEOUT_S = 2.0  # the longest a close waits for a connection to say goodbye
__all__ = ["RedisIdempotency", "RedisRateLimiter", "RedisStreamQueue", "SharedBreakerState"]

_log = logging.getLogger(__name__)
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
P = ParamSpec("P")
T = TypeVar("T")

# KEYS[1]: the bucket; ARGV: rate, burst, tokens wanted. Returns the wait as a string
# (a Lua number would come back truncated to an integer).
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(saved[1]) or burst
local at = tonumber(saved[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= want then tokens = tokens - want else wait = (want - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """A token bucket per key shared through Redis: ``rate`` a second, ``burst`` saved."""

    def __init__(
        self,
        client: Redis,
        rate: float,
        *,
        burst: float | None = None,
        max_wait_s: float = 0.0,
        prefix: str = "redline:rate:",
        name: str = "rate_limiter",
        fail_open: bool = True,
    ) -> None:
        """Configure; a bucket starts full (and is forgotten once it would be full again).

        ``fail_open``: with Redis unreachable, admit (and log) rather than refuse: a rate
        limit protects the service, and refusing everything would be the outage itself.

        Raises:
            ValueError: a rate that is not positive, or a burst below one token.
        """
        burst = bucket_size(rate, burst)
        self.client = client
        self.rate = rate
        self.burst = burst
        self.max_wait_s = max_wait_s
        self.prefix = prefix
        self.name = name
        self.fail_open = fail_open
        self.events = Events("rate_limiter", name)
        self._script = client.register_script(_TOKEN_BUCKET)

    async def try_acquire(self, tokens: float = 1.0, key: str = "") -> float:
        """Take ``tokens`` from ``key``'s bucket if it has enough: 0, else the seconds to wait."""
        try:
            wait = await self._script(keys=[self.prefix + self.name + ":" + key],
                                      args=[self.rate, self.burst, tokens])  # fmt: skip
        except _UNREACHABLE as exc:
            if not self.fail_open:
                raise
            _log.warning("rate limiter %r admits without Redis: %s", self.name, exc)
            return 0.0
        return float(wait)

    async def take(self, tokens: float = 1.0, key: str = "") -> float:
        """:meth:`try_acquire`, under the name every :class:`KeyedLimiter` offers."""
        return await self.try_acquire(tokens, key)

    async def acquire(self, tokens: float = 1.0, key: str = "") -> None:
        """Take ``tokens``, waiting up to ``max_wait_s`` for them.

        Raises:
            RateLimitedError: not within the wait.
        """
        await take_tokens(lambda: self.try_acquire(tokens, key), self.max_wait_s, self.events)

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` once a token is taken."""
        await self.acquire()
        return await fn(*args, **kwargs)


_SHARED = (CLOSED, OPEN, FORCED_OPEN, DISABLED, METRICS_ONLY)  # half-open stays local


class SharedBreakerState:
    """Share ``breaker``'s state with every process's breaker of the same name.

    ``async with SharedBreakerState(client, breaker):`` (or :meth:`start` and
    :meth:`close`) for as long as the breaker should follow the fleet.
    """

    def __init__(
        self, client: Redis, breaker: CircuitBreaker, *, prefix: str = "redline:breaker:"
    ) -> None:
        """Configure (nothing is read or written before :meth:`start`)."""
        self.client = client
        self.breaker = breaker
        self.key = prefix + breaker.name
        self.channel = self.key + ":changes"
        self.origin = secrets.token_hex(8)  # this process's own messages are skipped
        self.adopted = 0
        self._listener: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        # redis-py holds connect callbacks weakly: this object keeps the bound one alive
        self._resync_watcher = _Reconnected(self._reconnected)

    async def start(self) -> None:
        """Adopt the fleet's current state, then follow its changes and publish ours."""
        self._loop = asyncio.get_running_loop()
        pubsub = await self._subscribe()
        self.breaker.events.subscribe(self._on_event)
        self._listener = asyncio.create_task(self._follow(pubsub))

    async def close(self) -> None:
        """Stop following and publishing (writes already started are finished)."""
        self.breaker.events.unsubscribe(self._on_event)
        if self._listener is not None:
            self._listener.cancel()
            # bounded: a pub/sub connection broken mid-read must not hold the close up
            await asyncio.wait({self._listener}, timeout=CLOSE_TIMEOUT_S)
            self._listener = None
        if self._writes:
            await asyncio.wait(self._writes, timeout=CLOSE_TIMEOUT_S)

    async def __aenter__(self) -> SharedBreakerState:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _subscribe(self) -> Any:
        """Subscribe to the changes, then adopt the current state (no change falls between).

        redis-py may also reconnect the pub/sub connection by itself (with retries on)
        and subscribe again without a word: what was published in between is lost. A
        connect callback re-reads the state each time that happens.
        """
        pubsub = self.client.pubsub()
        await pubsub.subscribe(self.channel)
        connection = pubsub.connection
        if connection is not None:
            connection.register_connect_callback(self._resync_watcher.connected)
        await self._reread()
        return pubsub

    async def _reread(self) -> None:
        current = await self.client.get(self.key)
        if current is not None:
            self._adopt(json.loads(current))

    def _reconnected(self) -> None:
        """A pub/sub connection came back: re-read what may have been missed."""
        if self._loop is None:
            return
        task = self._loop.create_task(self._resync())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _resync(self) -> None:
        try:
            await asyncio.wait_for(self._reread(), CLOSE_TIMEOUT_S)
        except (*_UNREACHABLE, RuntimeError) as exc:
            _log.warning("breaker %r could not re-read its state: %s", self.breaker.name, exc)

    async def _follow(self, pubsub: Any) -> None:
        """Adopt what peers publish; on a lost connection, subscribe again (and re-read)."""
        try:
            while True:
                try:
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        change = json.loads(message["data"])
                        if change.get("origin") != self.origin:
                            self._adopt(change)
                    return
                except (*_UNREACHABLE, RuntimeError) as exc:
                    _log.warning("breaker %r lost Redis: %s", self.breaker.name, exc)
                    await asyncio.sleep(0.5)
                    with contextlib.suppress(*_UNREACHABLE):  # a TimeoutError is an OSError
                        fresh = await asyncio.wait_for(self._subscribe(), CLOSE_TIMEOUT_S)
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT_S)
                        pubsub = fresh
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT_S)

    def _adopt(self, change: dict[str, Any]) -> None:
        state = change.get("state")
        if state not in _SHARED or state == self.breaker.state:
            return
        open_for = None
        if state == OPEN:
            open_for = float(change.get("until", 0)) - time.time()
            if open_for <= 0:
                return  # that opening is over
        self.adopted += 1
        self.breaker.adopt(state, open_for_s=open_for, peer=True)

    def _on_event(self, event: Event) -> None:
        if event.type != "state" or event.peer or event.outcome not in _SHARED:
            return
        change: dict[str, Any] = {"state": event.outcome, "origin": self.origin}
        if event.outcome == OPEN:
            change["until"] = time.time() + max(self.breaker.open_until - self.breaker.clock(), 0)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._spawn(change)
        else:  # a transition made in another thread
            loop.call_soon_threadsafe(self._spawn, change)

    def _spawn(self, change: dict[str, Any]) -> None:
        task = asyncio.ensure_future(self._write(change))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, change: dict[str, Any]) -> None:
        payload = json.dumps(change)
        try:
            if change["state"] == OPEN:
                ttl_ms = max(int((change["until"] - time.time()) * 1000), 1)
                await self.client.set(self.key, payload, px=ttl_ms)
            elif change["state"] == CLOSED:
                await self.client.delete(self.key)
            else:
                await self.client.set(self.key, payload)
            await self.client.publish(self.channel, payload)
        except _UNREACHABLE as exc:  # the breaker works on alone; peers learn nothing
            _log.warning("breaker %r could not share %s: %s", self.breaker.name, change, exc)


class _Reconnected:
    """Calls back on every connect of a pub/sub connection after the one it was added on."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def connected(self, connection: Any) -> None:
        self.callback()
