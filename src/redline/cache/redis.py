"""The cache's second level and its fleet-wide parts, in Redis (the ``redis`` extra).

    from redis.asyncio import Redis
    from redline.cache import Cache, LocalCache
    from redline.cache.redis import RedisLayer

    cache = Cache(LocalCache(10_000), RedisLayer(Redis()), namespace="products")
    await cache.start()      # L1 coherence: invalidations from other processes

Keys (one slot per cached key, so Redis Cluster works: a value and its generation share
a hash tag): ``{prefix}{<namespace>:v<version>:<key>}`` holds the value and
``...:gen`` the key's generation (bumped on every invalidation, so a load that began
before it cannot store what it read); ``{prefix}<namespace>:tag:<tag>`` the keys under a
tag; ``{prefix}<namespace>:version`` the namespace's version; ``...:lease`` the lease of
the one process recomputing; ``{prefix}<namespace>:invalidate`` the channel.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis

__all__ = ["RedisLayer"]

# KEYS: value, generation; ARGV: data, the TTL in ms, the generation the load began at
_SET_IF_GENERATION = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# KEYS: lease; ARGV: token
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_GENERATION_TTL_MS = 24 * 3600 * 1000


class RedisLayer:
    """What :class:`~redline.cache.Cache` keeps in Redis (see the module)."""

    def __init__(self, client: Redis, *, prefix: str = "redline:cache:") -> None:
        """Use ``client`` (redis-py's asyncio client) under ``prefix``."""
        self.client = client
        self.prefix = prefix
        self._set_if_generation = client.register_script(_SET_IF_GENERATION)
        self._release = client.register_script(_RELEASE)
        self._watchers: weakref.WeakKeyDictionary[Any, _ReconnectWatcher] = (
            weakref.WeakKeyDictionary()
        )

    # -- names -----------------------------------------------------------------------
    def value_key(self, namespace: str, version: int, key: str) -> str:
        """Where ``key``'s value lives."""
        return f"{self.prefix}{{{namespace}:v{version}:{key}}}"

    def tag_key(self, namespace: str, tag: str) -> str:
        """The set of keys under ``tag``."""
        return f"{self.prefix}{namespace}:tag:{tag}"

    def version_key(self, namespace: str) -> str:
        """The namespace's version."""
        return f"{self.prefix}{namespace}:version"

    def channel(self, namespace: str) -> str:
        """The channel of the namespace's invalidations."""
        return f"{self.prefix}{namespace}:invalidate"

    # -- values ----------------------------------------------------------------------
    async def get(self, value_key: str) -> bytes | None:
        """The stored bytes, if any."""
        data: Any = await self.client.get(value_key)
        return data if data is None or isinstance(data, bytes) else str(data).encode()

    async def generation(self, value_key: str) -> str:
        """The key's generation now (``"0"`` if never invalidated)."""
        value = await self.client.get(value_key + ":gen")
        return "0" if value is None else value.decode() if isinstance(value, bytes) else str(value)

    async def store(
        self, value_key: str, data: bytes, ttl_s: float, *, generation: str | None = None
    ) -> bool:
        """Store ``data`` for ``ttl_s``; with ``generation``, only if still that generation."""
        ttl_ms = max(1, int(ttl_s * 1000))
        if generation is None:
            await self.client.set(value_key, data, px=ttl_ms)
            return True
        stored = await self._set_if_generation(
            keys=[value_key, value_key + ":gen"], args=[data, ttl_ms, generation]
        )
        return bool(stored)

    async def invalidate(self, value_keys: Iterable[str]) -> None:
        """Delete values and bump their generations."""
        async with self.client.pipeline(transaction=False) as pipe:
            for value_key in value_keys:
                pipe.delete(value_key)
                pipe.incr(value_key + ":gen")
                pipe.pexpire(value_key + ":gen", _GENERATION_TTL_MS)
            await pipe.execute()

    # -- tags and versions -----------------------------------------------------------
    async def tag(self, tag_key: str, value_key: str, ttl_s: float) -> None:
        """Remember ``value_key`` under a tag (for as long as values live)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.sadd(tag_key, value_key)
            pipe.expire(tag_key, max(1, int(ttl_s)) + 60, gt=True)
            pipe.expire(tag_key, max(1, int(ttl_s)) + 60, nx=True)
            await pipe.execute()

    async def tagged(self, tag_key: str) -> list[str]:
        """The value keys under a tag (and forget the tag)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.smembers(tag_key)
            pipe.delete(tag_key)
            members, _ = await pipe.execute()
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)

    async def version(self, version_key: str) -> int:
        """The namespace's version (0 before any bump)."""
        value = await self.client.get(version_key)
        return int(value or 0)

    async def bump(self, version_key: str) -> int:
        """A new version: every key of the old one becomes unreachable."""
        return int(await self.client.incr(version_key))

    # -- leases and messages ---------------------------------------------------------
    async def lease(self, value_key: str, token: str, seconds: float) -> bool:
        """Take the lease to recompute ``value_key`` for ``seconds``, if no one holds it."""
        taken = await self.client.set(
            value_key + ":lease", token, nx=True, px=max(1, int(seconds * 1000))
        )
        return bool(taken)

    async def release(self, value_key: str, token: str) -> None:
        """Give the lease back (only if still ours)."""
        await self._release(keys=[value_key + ":lease"], args=[token])

    async def publish(self, channel: str, message: bytes) -> None:
        """Send an invalidation message."""
        await self.client.publish(channel, message)

    async def subscribe(self, channel: str, on_reconnect: Callable[[], None]) -> Any:
        """A pub/sub connection listening on ``channel``.

        redis-py reconnects a pub/sub connection by itself and subscribes again, silently:
        what was published in between is lost. ``on_reconnect`` is called each time that
        happens, so the cache can drop what it may have missed.
        """
        pubsub = self.client.pubsub()
        await pubsub.subscribe(channel)
        watcher = _ReconnectWatcher(on_reconnect)
        connection = pubsub.connection
        assert connection is not None  # subscribed: connected
        connection.register_connect_callback(watcher.connected)
        self._watchers[pubsub] = watcher  # redis-py holds the callback weakly
        return pubsub


class _ReconnectWatcher:
    """Calls back on every connect of a pub/sub connection after the first."""

    def __init__(self, on_reconnect: Callable[[], None]) -> None:
        self.on_reconnect = on_reconnect

    def connected(self, connection: Any) -> None:
        self.on_reconnect()
