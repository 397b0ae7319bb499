"""Two levels, loading done right, and invalidation across a fleet.

``Cache(l1, l2)``: L1 is a :class:`LocalCache` in the process, L2 an optional
:class:`~redline.cache.redis.RedisLayer` shared by every process. A read tries L1, then
L2 (and keeps what L2 had in L1).

Loading (:meth:`Cache.get_or_load`, :meth:`Cache.cached`):

- **single flight**: concurrent misses of one key in a process share one load;
- **a lease** (``lease_s``, with L2): one process of the fleet recomputes, the others wait
  for its value (up to the lease) instead of all hitting the source;
- **XFetch** early recomputation (Vattani, Chierichetti and Lowenstein): a value is
  refreshed before it expires with a probability that grows as expiry nears and with
  how long it took to compute, ``now - delta * beta * ln(rand()) >= expiry``, ``beta``
  1, so hot keys are recomputed once, in the background, before a stampede can start;
- **stale-while-revalidate** (``stale_ttl``): past its TTL a value is still served while
  one refresh runs in the background; **stale-if-error** (``stale_if_error``): when the
  refresh fails, the old value is served for that long rather than the error;
- **negative caching** (``negative_ttl``): a loader's ``None`` is cached too, for its own
  TTL.

Invalidation: :meth:`Cache.delete` by key, :meth:`Cache.invalidate_tag` by tag,
:meth:`Cache.bump_version` for the whole namespace. Every invalidation bumps the key's
generation, and a load stores its value only if the generation is still the one it began
with (so a slow load cannot put back what was just invalidated), and is published so
that every process drops the keys from its L1; a process that loses the channel clears
its L1 (it cannot know what it missed) until it has subscribed again.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import inspect
import json
import logging
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._local import LocalCache
from ._serial import JSON, Serializer

if TYPE_CHECKING:
    from .redis import RedisLayer

CLOSE_TIMEOUT_S = 2.0  # the longest a close waits for a connection to say goodbye
__all__ = ["Cache", "CacheStatistics"]

P = ParamSpec("P")
T = TypeVar("T")
_log = logging.getLogger(__name__)
_UNSET: Any = object()


@dataclass(slots=True)
class _Stored:
    """A value with its times (wall clock, shared across processes)."""

    value: Any
    fresh_until: float
    stale_until: float  # served while revalidating until then
    error_until: float  # served instead of a loader's error until then
    delta: float  # seconds the value took to compute (XFetch)
    negative: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {"v": self.value, "f": self.fresh_until, "s": self.stale_until,
                "e": self.error_until, "d": self.delta, "n": self.negative}  # fmt: skip

    @staticmethod
    def from_wire(data: dict[str, Any]) -> _Stored:
        return _Stored(data["v"], data["f"], data["s"], data["e"], data["d"], data["n"])


@dataclass
class _Counters:
    """The live counters of a cache (``cache.stats``), bumped as it works."""

    l1_hits: int = 0
    l1_misses: int = 0
    l2_hits: int = 0
    l2_misses: int = 0
    loads: int = 0
    load_errors: int = 0
    coalesced: int = 0
    lease_waits: int = 0
    early_refreshes: int = 0
    stale_served: int = 0
    stale_on_error: int = 0
    negative_hits: int = 0
    evictions: int = 0
    invalidations_sent: int = 0
    invalidations_received: int = 0
    l1_cleared: int = 0
    stores_refused: int = 0  # a load's value not stored: invalidated while it loaded


@dataclass(frozen=True)
class CacheStatistics:
    """What the cache did, by level, at one moment (see :meth:`Cache.statistics`)."""

    l1_hits: int = 0
    l1_misses: int = 0
    l2_hits: int = 0
    l2_misses: int = 0
    loads: int = 0
    load_errors: int = 0
    coalesced: int = 0
    lease_waits: int = 0
    early_refreshes: int = 0
    stale_served: int = 0
    stale_on_error: int = 0
    negative_hits: int = 0
    evictions: int = 0
    invalidations_sent: int = 0
    invalidations_received: int = 0
    l1_cleared: int = 0
    stores_refused: int = 0  # a load's value not stored: invalidated while it loaded
    l1_entries: int = 0


class Cache:
    """L1 + optional L2 with loading and invalidation (see the module)."""

    def __init__(
        self,
        l1: LocalCache | None = None,
        l2: RedisLayer | None = None,
        *,
        namespace: str = "default",
        ttl: float = 300.0,
        stale_ttl: float = 0.0,
        stale_if_error: float = 0.0,
        negative_ttl: float | None = None,
        beta: float = 1.0,
        lease_s: float | None = None,
        serializer: Serializer = JSON,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """Configure; with L2, call :meth:`start` to follow other processes' invalidations."""
        self.l1 = l1 if l1 is not None else LocalCache(10_000)
        self.l2 = l2
        self.namespace = namespace
        self.ttl = ttl
        self.stale_ttl = stale_ttl
        self.stale_if_error = stale_if_error
        self.negative_ttl = negative_ttl
        self.beta = beta
        self.lease_s = lease_s
        self.serializer = serializer
        self.clock = clock
        self.rng = rng
        self.version = 0
        self.origin = secrets.token_hex(8)
        self.stats = _Counters()
        """Live counters; :meth:`statistics` takes a frozen snapshot of them."""
        self._flights: dict[str, asyncio.Future[Any]] = {}
        self._refreshing: set[asyncio.Task[Any]] = set()
        self._generations: dict[str, int] = {}  # invalidations during a key's load
        self._listener: asyncio.Task[None] | None = None
        self.l1.on_evict = self._evicted

    def _evicted(self, key: Any, value: Any) -> None:
        self.stats.evictions += 1

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Read the namespace's version and follow invalidations (with L2; else nothing)."""
        if self.l2 is None or self._listener is not None:
            return
        self.version = await self.l2.version(self.l2.version_key(self.namespace))
        pubsub = await self.l2.subscribe(self.l2.channel(self.namespace), self._reconnected)
        self._listener = asyncio.create_task(self._follow(pubsub))

    def _reconnected(self) -> None:
        """The channel was lost and is back: invalidations may have been missed."""
        _log.warning("cache %r lost its invalidations for a while: L1 cleared", self.namespace)
        self._clear_l1()

    async def close(self) -> None:
        """Stop following invalidations and wait for background refreshes."""
        if self._listener is not None:
            self._listener.cancel()
            # bounded: a pub/sub connection broken mid-read must not hold the close up
            await asyncio.wait({self._listener}, timeout=CLOSE_TIMEOUT_S)
            self._listener = None
        if self._refreshing:
            await asyncio.wait(self._refreshing, timeout=CLOSE_TIMEOUT_S)

    async def __aenter__(self) -> Cache:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reads -----------------------------------------------------------------------
    async def get(self, key: str, default: Any = None) -> Any:
        """The cached value of ``key`` (fresh or within its stale window), or ``default``."""
        stored = self.l1.get(key, _UNSET)
        if stored is not _UNSET and stored.stale_until > self.clock():
            self.stats.l1_hits += 1
            return stored.value
        self.stats.l1_misses += 1
        stored = await self._from_l2(key)
        if stored is None or stored.stale_until <= self.clock():
            return default
        return stored.value

    async def _from_l2(self, key: str) -> _Stored | None:
        if self.l2 is None:
            return None
        data = await self.l2.get(self.l2.value_key(self.namespace, self.version, key))
        if data is None:
            self.stats.l2_misses += 1
            return None
        self.stats.l2_hits += 1
        stored = _Stored.from_wire(self.serializer.loads(data))
        self._keep_local(key, stored)
        return stored

    def _keep_local(self, key: str, stored: _Stored) -> None:
        self.l1.set(key, stored, ttl=max(stored.error_until - self.clock(), 0.001))

    # -- writes ----------------------------------------------------------------------
    def _stored(self, value: Any, ttl: float | None, delta: float) -> _Stored:
        now = self.clock()
        negative = value is None and self.negative_ttl is not None
        if negative:
            assert self.negative_ttl is not None
            ttl = self.negative_ttl
        fresh = now + (self.ttl if ttl is None else ttl)
        stale = fresh + self.stale_ttl
        return _Stored(value, fresh, stale, max(stale, fresh + self.stale_if_error), delta,
                       negative)  # fmt: skip

    async def set(
        self, key: str, value: Any, *, ttl: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Write through: L2, then L1, and tell the other processes to drop their copy.

        The key's generation moves on first, so a load already in flight anywhere cannot
        overwrite this value with what it read before.
        """
        stored = self._stored(value, ttl, 0.0)
        self._forget([key])
        if self.l2 is not None:
            await self.l2.invalidate([self.l2.value_key(self.namespace, self.version, key)])
        await self._put(key, stored, tags=tags, generation=None)
        await self._publish({"keys": [key]})

    async def _put(
        self, key: str, stored: _Stored, *, tags: Iterable[str], generation: tuple[int, str] | None
    ) -> bool:
        if generation is not None and self._generations.get(key, 0) != generation[0]:
            self.stats.stores_refused += 1
            return False  # invalidated here while it loaded
        if self.l2 is not None:
            value_key = self.l2.value_key(self.namespace, self.version, key)
            ttl = stored.error_until - self.clock()
            data = self.serializer.dumps(stored.to_wire())
            remote = None if generation is None else generation[1]
            ok = await self.l2.store(value_key, data, ttl, generation=remote)
            if not ok:
                self.stats.stores_refused += 1
                return False  # invalidated elsewhere while it loaded
            for tag in tags:
                await self.l2.tag(self.l2.tag_key(self.namespace, tag), value_key, ttl)
        elif tags:
            for tag in tags:
                self._local_tags.setdefault(tag, set()).add(key)
        self._keep_local(key, stored)
        return True

    @functools.cached_property
    def _local_tags(self) -> dict[str, builtins.set[str]]:
        return {}

    # -- invalidation ----------------------------------------------------------------
    async def delete(self, *keys: str) -> None:
        """Invalidate ``keys`` everywhere: L2, this L1, every other process's L1."""
        self._forget(keys)
        if self.l2 is not None:
            await self.l2.invalidate(
                self.l2.value_key(self.namespace, self.version, k) for k in keys
            )
        await self._publish({"keys": list(keys)})

    async def invalidate_tag(self, tag: str) -> int:
        """Invalidate every key stored under ``tag``; how many."""
        if self.l2 is None:
            keys: list[str] = sorted(self._local_tags.pop(tag, builtins.set()))
            self._forget(keys)
            return len(keys)
        value_keys = await self.l2.tagged(self.l2.tag_key(self.namespace, tag))
        await self.l2.invalidate(value_keys)
        keys = [self._key_of(v) for v in value_keys]
        self._forget(keys)
        await self._publish({"keys": keys})
        return len(keys)

    def _key_of(self, value_key: str) -> str:
        """The cache key in a value key: ``...{<namespace>:v<version>:<key>}``."""
        inner = value_key[value_key.index("{") + 1 : value_key.rindex("}")]
        _version, key = inner[len(self.namespace) + 2 :].split(":", 1)
        return key

    async def bump_version(self) -> int:
        """A new version of the namespace: everything cached before is gone, everywhere."""
        if self.l2 is None:
            self.version += 1
        else:
            self.version = await self.l2.bump(self.l2.version_key(self.namespace))
        self._clear_l1()
        await self._publish({"version": self.version})
        return self.version

    @contextlib.asynccontextmanager
    async def writing(self, *keys: str) -> AsyncIterator[None]:
        """Delete ``keys`` after the block writes the source (delete-after-write).

        A load that read the source before the write cannot store its old value after
        this delete: the delete bumps the keys' generations, and such a load's store is
        refused.
        """
        yield
        await self.delete(*keys)

    def _forget(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.l1.delete(key)
            if key in self._flights:  # a load in flight must not store what it read
                self._generations[key] = self._generations.get(key, 0) + 1

    def _clear_l1(self) -> None:
        self.l1.clear()
        self.stats.l1_cleared += 1
        for key in self._flights:
            self._generations[key] = self._generations.get(key, 0) + 1

    async def _publish(self, message: dict[str, Any]) -> None:
        if self.l2 is None:
            return
        message["origin"] = self.origin
        await self.l2.publish(self.l2.channel(self.namespace), json.dumps(message).encode())
        self.stats.invalidations_sent += 1

    async def _follow(self, pubsub: Any) -> None:
        """Apply other processes' invalidations; clear L1 whenever the channel is lost."""
        assert self.l2 is not None
        try:
            while True:
                try:
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._received(json.loads(message["data"]))
                    return
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - redis-py's errors, unknown here
                    # the channel is lost: what was missed is unknown
                    _log.warning("cache %r lost its invalidations: %s", self.namespace, exc)
                    self._clear_l1()
                    pubsub = await self._resubscribe(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), CLOSE_TIMEOUT_S)

    async def _resubscribe(self, old: Any) -> Any:
        assert self.l2 is not None
        with contextlib.suppress(Exception):
            await old.aclose()
        delay = 0.05
        while True:
            try:
                pubsub = await asyncio.wait_for(
                    self.l2.subscribe(self.l2.channel(self.namespace), self._reconnected),
                    CLOSE_TIMEOUT_S,
                )
                self.version = await self.l2.version(self.l2.version_key(self.namespace))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - redis-py's errors, unknown here
                _log.warning("cache %r cannot subscribe yet: %s", self.namespace, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            self._clear_l1()  # what was cached while deaf may be stale
            return pubsub

    def _received(self, message: dict[str, Any]) -> None:
        if message.get("origin") == self.origin:
            return
        self.stats.invalidations_received += 1
        if "version" in message:
            self.version = int(message["version"])
            self._clear_l1()
        else:
            self._forget(message.get("keys", ()))

    # -- loading ---------------------------------------------------------------------
    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        *,
        ttl: float | None = None,
        tags: Iterable[str] = (),
    ) -> Any:
        """The value of ``key``, loaded by ``loader()`` on a miss (see the module).

        Raises:
            whatever ``loader`` raises, when no stale value may be served instead.
        """
        stored = self.l1.get(key, _UNSET)
        if stored is _UNSET:
            self.stats.l1_misses += 1
            return await self._load(key, loader, ttl, tags, None, from_l2=True)
        self.stats.l1_hits += 1
        value = self._serve(key, loader, ttl, tags, stored)
        if value is not _UNSET:
            return value
        return await self._load(key, loader, ttl, tags, stored, from_l2=False)

    def _early(self, stored: _Stored, now: float) -> bool:
        """XFetch: refresh now? Likelier the nearer expiry and the slower the computation."""
        return stored.delta > 0 and (
            now - stored.delta * self.beta * math.log(self.rng() or 1e-300) >= stored.fresh_until
        )

    def _serve(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None,
        tags: Iterable[str],
        stored: _Stored,
    ) -> Any:
        """The value to answer with, refreshing it in the background when due; or _UNSET."""
        now = self.clock()
        if now < stored.fresh_until:
            if self._early(stored, now):
                self.stats.early_refreshes += 1
                self._refresh(key, loader, ttl, tags, stored)
            if stored.negative:
                self.stats.negative_hits += 1
            return stored.value
        if now < stored.stale_until:
            self.stats.stale_served += 1
            self._refresh(key, loader, ttl, tags, stored)
            return stored.value
        return _UNSET

    def _refresh(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None,
        tags: Iterable[str],
        stale: _Stored,
    ) -> None:
        if key in self._flights:
            return  # already being refreshed
        task = asyncio.ensure_future(self._load(key, loader, ttl, tags, stale, from_l2=False))
        self._refreshing.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[Any]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.warning("background refresh failed: %s", task.exception())

    async def _load(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None,
        tags: Iterable[str],
        stale: _Stored | None,
        *,
        from_l2: bool,
    ) -> Any:
        """One flight per key: L2 first (if asked), then the loader."""
        flight = self._flights.get(key)
        if flight is not None:
            self.stats.coalesced += 1
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            value = _UNSET
            if from_l2:
                stale = await self._from_l2(key)
                if stale is not None:
                    value = self._serve(key, loader, ttl, tags, stale)
            if value is _UNSET:
                value = await self._compute(key, loader, ttl, tags, stale)
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: waiters get it, nobody else must
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            del self._flights[key]
            self._generations.pop(key, None)  # kept only while a load is in flight

    async def _compute(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl: float | None,
        tags: Iterable[str],
        stale: _Stored | None,
    ) -> Any:
        local_generation = self._generations.get(key, 0)
        remote_generation = "0"
        lease: tuple[str, str] | None = None
        if self.l2 is not None:
            value_key = self.l2.value_key(self.namespace, self.version, key)
            remote_generation = await self.l2.generation(value_key)
            if self.lease_s is not None:
                token = secrets.token_hex(8)
                if await self.l2.lease(value_key, token, self.lease_s):
                    lease = (value_key, token)
                else:
                    waited = await self._wait_for_leaseholder(key, stale)
                    if waited is not None:
                        return waited.value
        try:
            started = time.monotonic()
            try:
                value = await loader()
            except Exception:
                self.stats.load_errors += 1
                if stale is not None and self.clock() < stale.error_until:
                    self.stats.stale_on_error += 1
                    return stale.value
                raise
            self.stats.loads += 1
            stored = self._stored(value, ttl, time.monotonic() - started)
            await self._put(key, stored, tags=tags,
                            generation=(local_generation, remote_generation))  # fmt: skip
            return value
        finally:
            if lease is not None and self.l2 is not None:
                await self.l2.release(*lease)

    async def _wait_for_leaseholder(self, key: str, stale: _Stored | None) -> _Stored | None:
        """Another process holds the lease: wait for its value (up to the lease)."""
        assert self.l2 is not None
        assert self.lease_s is not None
        self.stats.lease_waits += 1
        deadline = time.monotonic() + self.lease_s
        delay = 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
            data = await self.l2.get(self.l2.value_key(self.namespace, self.version, key))
            if data is not None:
                stored = _Stored.from_wire(self.serializer.loads(data))
                if stale is None or stored.fresh_until > stale.fresh_until:
                    self._keep_local(key, stored)
                    return stored
        return None  # the leaseholder gave no value in time: load it ourselves

    # -- the decorator ---------------------------------------------------------------
    def cached(
        self,
        *,
        ttl: float | None = None,
        key: str | Callable[..., str] | None = None,
        tags: Iterable[str] = (),
    ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
        """Cache an async function's results.

        ``key``: a template formatted with the arguments by name (``"user:{user_id}"``),
        a function of the arguments, or by default the function's name and the repr of
        its arguments.
        """
        fixed_tags = tuple(tags)

        def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
            prefix = f"{fn.__module__}.{fn.__qualname__}"
            parameters = inspect.signature(fn).parameters
            names = list(parameters)
            defaults = {n: p.default for n, p in parameters.items() if p.default is not p.empty}

            def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
                if key is None:
                    return f"{prefix}:{args!r}:{kwargs!r}" if kwargs else f"{prefix}:{args!r}"
                if callable(key):
                    return key(*args, **kwargs)
                named = dict(zip(names, args, strict=False))
                return key.format_map({**defaults, **named, **kwargs})

            @functools.wraps(fn)
            async def wrapped(*args: P.args, **kwargs: P.kwargs) -> T:
                cache_key = key_of(args, kwargs)
                stored = self.l1.get(cache_key, _UNSET)
                if stored is not _UNSET:
                    now = self.clock()
                    if now < stored.fresh_until and not self._early(stored, now):
                        self.stats.l1_hits += 1
                        value: T = stored.value
                        return value
                return await self.get_or_load(  # type: ignore[no-any-return]
                    cache_key, functools.partial(fn, *args, **kwargs), ttl=ttl, tags=fixed_tags
                )

            return wrapped

        return decorate

    # -- observability ---------------------------------------------------------------
    def statistics(self) -> CacheStatistics:
        """A frozen snapshot of every counter, and the L1's size."""
        return CacheStatistics(**vars(self.stats), l1_entries=len(self.l1))
