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
- **stale-while-revalidate** (``stale_ttl_s``): past its TTL a value is still served while
  one refresh runs in the background; **stale-if-error** (``stale_if_error_s``): when the
  refresh fails, the old value is served for that long rather than the error;
- **negative caching** (``negative_ttl_s``): a loader's ``None`` is cached too, for its own
  TTL.

Invalidation (:meth:`Cache.delete` by key, :meth:`Cache.invalidate_tag` by tag,
:meth:`Cache.bump_version` for the whole namespace) is the fleet's part, in
``_fleet.py``: generations that keep a slow load from putting back what was just
invalidated, and the channel that tells every process to drop the keys from its L1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ._fleet import CLOSE_TIMEOUT_S, FleetInvalidation, Generations
from ._local import LocalCache
from ._serial import JSON, Serializer
from ._stored import CacheStatistics, _Counters, _Stored

if TYPE_CHECKING:
    from .redis import RedisLayer

__all__ = ["Cache", "CacheStatistics"]

P = ParamSpec("P")
T = TypeVar("T")
_log = logging.getLogger(__name__)
_UNSET: Any = object()


class Cache:
    """L1 + optional L2 with loading and invalidation (see the module)."""

    def __init__(
        self,
        l1: LocalCache | None = None,
        l2: RedisLayer | None = None,
        *,
        namespace: str = "default",
        ttl_s: float = 300.0,
        stale_ttl_s: float = 0.0,
        stale_if_error_s: float = 0.0,
        negative_ttl_s: float | None = None,
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
        self.ttl_s = ttl_s
        self.stale_ttl_s = stale_ttl_s
        self.stale_if_error_s = stale_if_error_s
        self.negative_ttl_s = negative_ttl_s
        self.beta = beta
        self.lease_s = lease_s
        self.serializer = serializer
        self.clock = clock
        self.rng = rng
        self.stats = _Counters()
        """Live counters; :meth:`statistics` takes a frozen snapshot of them."""
        self._generations = Generations()
        self._flights = self._generations.flights
        self.fleet = FleetInvalidation(
            self.l1, l2, namespace=namespace, stats=self.stats, generations=self._generations
        )
        """Invalidation here, in L2 and in every other process (redline.cache._fleet)."""
        self._refreshing: set[asyncio.Task[Any]] = set()
        self.l1.on_evict = self._evicted

    def _evicted(self, key: Any, value: Any) -> None:
        self.stats.evictions += 1

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Read the namespace's version and follow invalidations (with L2; else nothing)."""
        await self.fleet.start()

    async def close(self) -> None:
        """Stop following invalidations and wait for background refreshes."""
        await self.fleet.close()
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
        data = await self.l2.get(self.fleet.value_key(key))
        if data is None:
            self.stats.l2_misses += 1
            return None
        self.stats.l2_hits += 1
        stored = _Stored.from_wire(self.serializer.loads(data))
        self._keep_local(key, stored)
        return stored

    def _keep_local(self, key: str, stored: _Stored) -> None:
        self.l1.set(key, stored, ttl_s=max(stored.error_until - self.clock(), 0.001))

    # -- writes ----------------------------------------------------------------------
    def _stored(self, value: Any, ttl_s: float | None, delta: float) -> _Stored:
        now = self.clock()
        negative = value is None and self.negative_ttl_s is not None
        if negative:
            assert self.negative_ttl_s is not None
            ttl_s = self.negative_ttl_s
        fresh = now + (self.ttl_s if ttl_s is None else ttl_s)
        stale = fresh + self.stale_ttl_s
        return _Stored(value, fresh, stale, max(stale, fresh + self.stale_if_error_s), delta,
                       negative)  # fmt: skip

    async def set(
        self, key: str, value: Any, *, ttl_s: float | None = None, tags: Iterable[str] = ()
    ) -> None:
        """Write through: L2, then L1, and tell the other processes to drop their copy.

        The key's generation moves on first, so a load already in flight anywhere cannot
        overwrite this value with what it read before.
        """
        stored = self._stored(value, ttl_s, 0.0)
        self.fleet.forget([key])
        if self.l2 is not None:
            await self.l2.invalidate([self.fleet.value_key(key)])
        await self._put(key, stored, tags=tags, generation=None)
        await self.fleet.publish({"keys": [key]})

    async def _put(
        self, key: str, stored: _Stored, *, tags: Iterable[str], generation: tuple[int, str] | None
    ) -> bool:
        if generation is not None and self._generations.current(key) != generation[0]:
            self.stats.stores_refused += 1
            return False  # invalidated here while it loaded
        if self.l2 is not None:
            value_key = self.fleet.value_key(key)
            ttl_s = stored.error_until - self.clock()
            data = self.serializer.dumps(stored.to_wire())
            remote = None if generation is None else generation[1]
            ok = await self.l2.store(value_key, data, ttl_s, generation=remote)
            if not ok:
                self.stats.stores_refused += 1
                return False  # invalidated elsewhere while it loaded
            for tag in tags:
                await self.l2.tag(self.l2.tag_key(self.namespace, tag), value_key, ttl_s)
        elif tags:
            for tag in tags:
                self.fleet.local_tags.setdefault(tag, set()).add(key)
        self._keep_local(key, stored)
        return True

    # -- invalidation (redline.cache._fleet) -----------------------------------------
    async def delete(self, *keys: str) -> None:
        """Invalidate ``keys`` everywhere: L2, this L1, every other process's L1."""
        await self.fleet.delete(keys)

    async def invalidate_tag(self, tag: str) -> int:
        """Invalidate every key stored under ``tag``; how many."""
        return await self.fleet.invalidate_tag(tag)

    async def bump_version(self) -> int:
        """A new version of the namespace: everything cached before is gone, everywhere."""
        return await self.fleet.bump_version()

    @contextlib.asynccontextmanager
    async def writing(self, *keys: str) -> AsyncIterator[None]:
        """Delete ``keys`` after the block writes the source (delete-after-write).

        A load that read the source before the write cannot store its old value after
        this delete: the delete bumps the keys' generations, and such a load's store is
        refused.
        """
        yield
        await self.delete(*keys)

    @property
    def version(self) -> int:
        """The namespace's version: the part of every key that :meth:`bump_version` moves."""
        return self.fleet.version

    # -- loading ---------------------------------------------------------------------
    async def get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        *,
        ttl_s: float | None = None,
        tags: Iterable[str] = (),
    ) -> Any:
        """The value of ``key``, loaded by ``loader()`` on a miss (see the module).

        Raises:
            whatever ``loader`` raises, when no stale value may be served instead.
        """
        stored = self.l1.get(key, _UNSET)
        if stored is _UNSET:
            self.stats.l1_misses += 1
            return await self._load(key, loader, ttl_s, tags, None, from_l2=True)
        self.stats.l1_hits += 1
        value = self._serve(key, loader, ttl_s, tags, stored)
        if value is not _UNSET:
            return value
        return await self._load(key, loader, ttl_s, tags, stored, from_l2=False)

    def _early(self, stored: _Stored, now: float) -> bool:
        """XFetch: refresh now? Likelier the nearer expiry and the slower the computation."""
        return stored.delta > 0 and (
            now - stored.delta * self.beta * math.log(self.rng() or 1e-300) >= stored.fresh_until
        )

    def _serve(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
        tags: Iterable[str],
        stored: _Stored,
    ) -> Any:
        """The value to answer with, refreshing it in the background when due; or _UNSET."""
        now = self.clock()
        if now < stored.fresh_until:
            if self._early(stored, now):
                self.stats.early_refreshes += 1
                self._refresh(key, loader, ttl_s, tags, stored)
            if stored.negative:
                self.stats.negative_hits += 1
            return stored.value
        if now < stored.stale_until:
            self.stats.stale_served += 1
            self._refresh(key, loader, ttl_s, tags, stored)
            return stored.value
        return _UNSET

    def _refresh(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
        tags: Iterable[str],
        stale: _Stored,
    ) -> None:
        if key in self._flights:
            return  # already being refreshed
        task = asyncio.ensure_future(self._load(key, loader, ttl_s, tags, stale, from_l2=False))
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
        ttl_s: float | None,
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
                    value = self._serve(key, loader, ttl_s, tags, stale)
            if value is _UNSET:
                value = await self._compute(key, loader, ttl_s, tags, stale)
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: waiters get it, nobody else must
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            self._generations.landed(key)

    async def _compute(
        self,
        key: str,
        loader: Callable[[], Awaitable[Any]],
        ttl_s: float | None,
        tags: Iterable[str],
        stale: _Stored | None,
    ) -> Any:
        local_generation = self._generations.current(key)
        remote_generation = "0"
        lease: tuple[str, str] | None = None
        if self.l2 is not None:
            value_key = self.fleet.value_key(key)
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
            stored = self._stored(value, ttl_s, time.monotonic() - started)
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
            data = await self.l2.get(self.fleet.value_key(key))
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
        ttl_s: float | None = None,
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
                    cache_key, functools.partial(fn, *args, **kwargs), ttl_s=ttl_s, tags=fixed_tags
                )

            return wrapped

        return decorate

    # -- observability ---------------------------------------------------------------
    def statistics(self) -> CacheStatistics:
        """A frozen snapshot of every counter, and the L1's size."""
        return CacheStatistics(**vars(self.stats), l1_entries=len(self.l1))
