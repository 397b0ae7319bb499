"""What a cache keeps with a value, and what it counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CacheStatistics"]


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
