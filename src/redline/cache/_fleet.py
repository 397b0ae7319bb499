"""Invalidation across a fleet: this process's L1, the shared L2, every other L1.

Every invalidation moves the generation of the keys it touches, and a load stores its
value only if the generation is still the one it began with (so a slow load cannot put
back what was just invalidated). With an L2, invalidations are published on the
namespace's channel so that every process drops the keys from its L1; a process that
loses the channel clears its L1 (it cannot know what it missed) until it has subscribed
again, and so does one whose redis-py reconnected silently.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._local import LocalCache
from ._stored import _Counters

if TYPE_CHECKING:
    from .redis import RedisLayer

__all__ = ["CLOSE_TIMEOUT_S", "FleetInvalidation", "Generations"]

CLOSE_TIMEOUT_S = 2.0  # the longest a close waits for a connection to say goodbye
_log = logging.getLogger(__name__)


class Generations:
    """The keys with a load in flight, and how often each was invalidated since."""

    def __init__(self) -> None:
        """Nothing in flight."""
        self.flights: dict[str, asyncio.Future[Any]] = {}
        self._counts: dict[str, int] = {}

    def current(self, key: str) -> int:
        """The key's generation now (a load notes it when it begins)."""
        return self._counts.get(key, 0)

    def bump(self, key: str) -> None:
        """``key`` was invalidated: a load of it in flight must not store what it read."""
        if key in self.flights:
            self._counts[key] = self._counts.get(key, 0) + 1

    def bump_all(self) -> None:
        """Everything was invalidated."""
        for key in self.flights:
            self._counts[key] = self._counts.get(key, 0) + 1

    def landed(self, key: str) -> None:
        """The key's load ended: its generation is kept only while a load is in flight."""
        self.flights.pop(key, None)
        self._counts.pop(key, None)


class FleetInvalidation:
    """Invalidates one namespace's keys here, in L2, and in every other process."""

    def __init__(
        self,
        l1: LocalCache,
        l2: RedisLayer | None,
        *,
        namespace: str,
        stats: _Counters,
        generations: Generations,
    ) -> None:
        """Invalidate in ``l1`` and ``l2``, counting in ``stats``."""
        self.l1 = l1
        self.l2 = l2
        self.namespace = namespace
        self.stats = stats
        self.generations = generations
        self.version = 0
        self.origin = secrets.token_hex(8)  # this process's own messages are skipped
        self.local_tags: dict[str, builtins.set[str]] = {}  # without L2: tag -> keys
        self._listener: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Read the namespace's version and follow invalidations (with L2; else nothing)."""
        if self.l2 is None or self._listener is not None:
            return
        self.version = await self.l2.version(self.l2.version_key(self.namespace))
        pubsub = await self.l2.subscribe(self.l2.channel(self.namespace), self._reconnected)
        self._listener = asyncio.create_task(self._follow(pubsub))

    async def close(self) -> None:
        """Stop following invalidations (bounded: a broken connection does not hold it)."""
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait({self._listener}, timeout=CLOSE_TIMEOUT_S)
            self._listener = None

    def _reconnected(self) -> None:
        """The channel was lost and is back: invalidations may have been missed."""
        _log.warning("cache %r lost its invalidations for a while: L1 cleared", self.namespace)
        self.clear_l1()

    # -- invalidating ------------------------------------------------------------------
    def value_key(self, key: str) -> str:
        """The L2 key of ``key`` in the namespace's current version."""
        assert self.l2 is not None
        return self.l2.value_key(self.namespace, self.version, key)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop ``keys`` from this L1; loads of them in flight will not store."""
        for key in keys:
            self.l1.delete(key)
            self.generations.bump(key)

    def clear_l1(self) -> None:
        """Drop this whole L1; no load in flight will store."""
        self.l1.clear()
        self.stats.l1_cleared += 1
        self.generations.bump_all()

    async def delete(self, keys: Iterable[str]) -> None:
        """Invalidate ``keys`` everywhere: L2, this L1, every other process's L1."""
        keys = list(keys)
        self.forget(keys)
        if self.l2 is not None:
            await self.l2.invalidate(self.value_key(k) for k in keys)
        await self.publish({"keys": keys})

    async def invalidate_tag(self, tag: str) -> int:
        """Invalidate every key stored under ``tag``; how many."""
        if self.l2 is None:
            keys: list[str] = sorted(self.local_tags.pop(tag, builtins.set()))
            self.forget(keys)
            return len(keys)
        value_keys = await self.l2.tagged(self.l2.tag_key(self.namespace, tag))
        await self.l2.invalidate(value_keys)
        keys = [self._key_of(v) for v in value_keys]
        self.forget(keys)
        await self.publish({"keys": keys})
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
        self.clear_l1()
        await self.publish({"version": self.version})
        return self.version

    async def publish(self, message: dict[str, Any]) -> None:
        """Tell the other processes (with L2; else nothing)."""
        if self.l2 is None:
            return
        message["origin"] = self.origin
        await self.l2.publish(self.l2.channel(self.namespace), json.dumps(message).encode())
        self.stats.invalidations_sent += 1

    # -- following the others ----------------------------------------------------------
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
                    self.clear_l1()
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
            self.clear_l1()  # what was cached while deaf may be stale
            return pubsub

    def _received(self, message: dict[str, Any]) -> None:
        if message.get("origin") == self.origin:
            return
        self.stats.invalidations_received += 1
        if "version" in message:
            self.version = int(message["version"])
            self.clear_l1()
        else:
            self.forget(message.get("keys", ()))
