"""The in-process cache (L1): bounded, TTL per entry, W-TinyLFU admission or plain LRU.

W-TinyLFU (Einziger, Friedman and Manes; Caffeine's policy) in three regions:

- a **window** (1% of the capacity), plain LRU: every new key enters here, so a burst of
  new keys gets a chance to prove itself;
- the **main** region, segmented LRU: **probation** (20% of main) and **protected**
  (80%); a hit in probation promotes the key to protected, whose least recent entries
  step back down to probation.

When the window overflows, its least recent key (the candidate) is admitted to the main
region only if the frequency sketch has seen it more often than the key main would evict
(the victim); otherwise the candidate goes. A scan of keys seen once therefore passes
through the window without flushing the popular keys, which LRU cannot avoid.

Sizes count entries (``max_entries``) or bytes (``max_bytes`` with a ``weigher``).
Expired entries are dropped when met. Access is synchronous and meant for one thread
(an event loop's: the asyncio :class:`~redline.cache.Cache` uses it so); threads sharing
one must hold a lock around each call, as with cachetools.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from ._sketch import FrequencySketch

__all__ = ["POLICIES", "LocalCache"]

POLICIES = ("tinylfu", "lru")
"""The eviction policies of :class:`LocalCache`: W-TinyLFU (default) and LRU."""
_WINDOW, _PROBATION, _PROTECTED = 0, 1, 2
_MISSING: Any = object()


def default_weigher(value: Any) -> int:
    """Bytes of ``value``: its length for bytes and str, else ``sys.getsizeof``."""
    if isinstance(value, bytes | bytearray | str):
        return len(value)
    return sys.getsizeof(value)


class LocalCache:
    """A bounded in-process cache with TTLs and W-TinyLFU admission (see the module)."""

    def __init__(
        self,
        max_entries: int = 10_000,
        *,
        max_bytes: int | None = None,
        weigher: Callable[[Any], int] = default_weigher,
        policy: str = "tinylfu",
        ttl_s: float | None = None,
        window: float = 0.01,
        protected: float = 0.8,
        read_sample: int = 4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A cache of ``max_entries`` entries, or of ``max_bytes`` bytes when given.

        ``read_sample``: one read in that many is counted in the frequency sketch (writes
        always are): the sketch compares frequencies, which sampling keeps, at a quarter
        of the cost of a hit (1: count every read).

        Raises:
            ValueError: an unknown policy, or a capacity below one.
        """
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        capacity = max_bytes if max_bytes is not None else max_entries
        if capacity < 1:
            raise ValueError(f"the capacity must be at least 1, got {capacity}")
        self.policy = policy
        self.capacity = capacity
        self.by_bytes = max_bytes is not None
        self.weigher = weigher
        self.ttl_s = ttl_s
        self.clock = clock
        lfu = policy == "tinylfu"
        self._window_cap = max(1, int(capacity * window)) if lfu else capacity
        main = capacity - self._window_cap if lfu else 0
        self._protected_cap = int(main * protected)
        self._data: dict[Hashable, list[Any]] = {}  # key: [value, expires, weight, region]
        self._regions: tuple[OrderedDict[Hashable, None], ...] = (
            OrderedDict(), OrderedDict(), OrderedDict()
        )  # fmt: skip
        self._weights = [0, 0, 0]
        self._sketch = FrequencySketch(max_entries if max_bytes is None else 1024) if lfu else None
        self.read_sample = max(1, read_sample)
        self._countdown = self.read_sample
        self.hits = self.misses = self.evictions = self.expirations = 0
        self.on_evict: Callable[[Hashable, Any], None] | None = None

    # -- reads -----------------------------------------------------------------------
    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value under ``key``, or ``default`` (missing or expired)."""
        entry = self._data.get(key)
        if self._sketch is not None:
            countdown = self._countdown - 1
            if countdown:
                self._countdown = countdown
            else:
                self._countdown = self.read_sample
                self._sketch.increment(hash(key))
        if entry is None:
            self.misses += 1
            return default
        expires = entry[1]
        if expires is not None and expires <= self.clock():
            self._remove(key, entry)
            self.expirations += 1
            self.misses += 1
            return default
        self.hits += 1
        region = entry[3]
        if region == _PROBATION:
            self._promote(key, entry)
        else:
            self._regions[region].move_to_end(key)
        return entry[0]

    def __getitem__(self, key: Hashable) -> Any:
        """The value under ``key``.

        Raises:
            KeyError: missing or expired.
        """
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def peek(self, key: Hashable, default: Any = None) -> Any:
        """The value under ``key`` without counting an access (nor moving it)."""
        entry = self._data.get(key)
        if entry is None or (entry[1] is not None and entry[1] <= self.clock()):
            return default
        return entry[0]

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` holds a live value (no access is counted)."""
        return self.peek(key, _MISSING) is not _MISSING

    def __len__(self) -> int:
        """Entries held (expired ones not yet met included)."""
        return len(self._data)

    @property
    def weight(self) -> int:
        """Entries held, or their bytes when sized in bytes."""
        return sum(self._weights)

    # -- writes ----------------------------------------------------------------------
    def set(self, key: Hashable, value: Any, ttl_s: float | None = None) -> None:
        """Store ``value`` for ``ttl_s`` seconds (default: the cache's; None: no limit)."""
        ttl_s = self.ttl_s if ttl_s is None else ttl_s
        expires = None if ttl_s is None else self.clock() + ttl_s
        weight = self.weigher(value) if self.by_bytes else 1
        if weight > self.capacity:
            self.delete(key)  # could never fit
            return
        entry = self._data.get(key)
        if entry is not None:
            self._weights[entry[3]] += weight - entry[2]
            entry[0], entry[1], entry[2] = value, expires, weight
            if entry[3] == _PROBATION:
                self._promote(key, entry)
            else:
                self._regions[entry[3]].move_to_end(key)
        else:
            if self._sketch is not None:
                self._sketch.increment(hash(key))
            self._data[key] = [value, expires, weight, _WINDOW]
            self._regions[_WINDOW][key] = None
            self._weights[_WINDOW] += weight
        self._evict()

    __setitem__ = set

    def delete(self, key: Hashable) -> bool:
        """Drop ``key``; whether it was there."""
        entry = self._data.get(key)
        if entry is None:
            return False
        self._remove(key, entry)
        return True

    def clear(self) -> None:
        """Drop everything (the frequency sketch is kept)."""
        self._data.clear()
        for region in self._regions:
            region.clear()
        self._weights = [0, 0, 0]

    def expire(self) -> int:
        """Drop every expired entry now; how many."""
        now = self.clock()
        dead = [k for k, e in self._data.items() if e[1] is not None and e[1] <= now]
        for key in dead:
            self._remove(key, self._data[key])
        self.expirations += len(dead)
        return len(dead)

    # -- policy ----------------------------------------------------------------------
    def _remove(self, key: Hashable, entry: list[Any]) -> None:
        del self._data[key]
        del self._regions[entry[3]][key]
        self._weights[entry[3]] -= entry[2]

    def _promote(self, key: Hashable, entry: list[Any]) -> None:
        regions, weights = self._regions, self._weights
        del regions[_PROBATION][key]
        weights[_PROBATION] -= entry[2]
        regions[_PROTECTED][key] = None
        weights[_PROTECTED] += entry[2]
        entry[3] = _PROTECTED
        while weights[_PROTECTED] > self._protected_cap and len(regions[_PROTECTED]) > 1:
            demoted, _ = regions[_PROTECTED].popitem(last=False)
            moved = self._data[demoted]
            weights[_PROTECTED] -= moved[2]
            regions[_PROBATION][demoted] = None
            weights[_PROBATION] += moved[2]
            moved[3] = _PROBATION

    def _evict(self) -> None:
        weights, regions = self._weights, self._regions
        if self._sketch is None:  # LRU: the window is the whole cache
            while weights[_WINDOW] > self.capacity:
                self._drop(next(iter(regions[_WINDOW])))
            return
        while weights[_WINDOW] > self._window_cap:
            candidate = next(iter(regions[_WINDOW]))
            entry = self._data[candidate]
            # the candidate leaves the window for probation: main may now be too full
            del regions[_WINDOW][candidate]
            weights[_WINDOW] -= entry[2]
            regions[_PROBATION][candidate] = None
            weights[_PROBATION] += entry[2]
            entry[3] = _PROBATION
            main_cap = self.capacity - self._window_cap
            while weights[_PROBATION] + weights[_PROTECTED] > main_cap:
                victim = next(iter(regions[_PROBATION] or regions[_PROTECTED]))
                if victim == candidate:
                    self._drop(candidate)
                    break
                if self._admits(candidate, victim):
                    self._drop(victim)
                else:
                    self._drop(candidate)
                    break

    def _admits(self, candidate: Hashable, victim: Hashable) -> bool:
        assert self._sketch is not None
        return self._sketch.frequency(hash(candidate)) > self._sketch.frequency(hash(victim))

    def _drop(self, key: Hashable) -> None:
        entry = self._data[key]
        self._remove(key, entry)
        self.evictions += 1
        if self.on_evict is not None:
            self.on_evict(key, entry[0])
