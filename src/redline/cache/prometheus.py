"""Prometheus metrics for caches, read from their statistics at scrape time (no cost per hit).

``CacheCollector(products_cache, sessions_cache)`` registers them in the default registry.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ._cache import Cache

__all__ = ["CacheCollector"]

# statistic: (family, help, label name, label value)
_COUNTERS = {
    "l1_hits": ("hits", "Reads answered, by level", "level", "l1"),
    "l2_hits": ("hits", "Reads answered, by level", "level", "l2"),
    "l1_misses": ("misses", "Reads not answered, by level", "level", "l1"),
    "l2_misses": ("misses", "Reads not answered, by level", "level", "l2"),
    "loads": ("loads", "Loader calls, by outcome", "outcome", "success"),
    "load_errors": ("loads", "Loader calls, by outcome", "outcome", "error"),
    "coalesced": ("coalesced_waits", "Misses that waited for another's load", "by", "process"),
    "lease_waits": ("coalesced_waits", "Misses that waited for another's load", "by", "fleet"),
    "early_refreshes": ("refreshes", "Background refreshes, by cause", "cause", "early"),
    "stale_served": ("stale_served", "Stale values served, by cause", "cause", "revalidate"),
    "stale_on_error": ("stale_served", "Stale values served, by cause", "cause", "error"),
    "negative_hits": ("negative_hits", "Cached absences served", "", ""),
    "evictions": ("evictions", "Entries evicted from L1", "", ""),
    "invalidations_sent": ("invalidations", "Invalidation messages", "direction", "sent"),
    "invalidations_received": ("invalidations", "Invalidation messages", "direction", "received"),
    "l1_cleared": ("l1_clears", "Times L1 was cleared (version bump, lost channel)", "", ""),
    "stores_refused": ("stores_refused", "Loaded values not stored: invalidated meanwhile", "", ""),
}


class CacheCollector(Collector):
    """Every cache's statistics as ``redline_cache_*`` metrics, labelled by namespace."""

    def __init__(self, *caches: Cache, registry: CollectorRegistry | None = REGISTRY) -> None:
        """Collect ``caches`` (and register in ``registry`` unless None)."""
        self.caches = list(caches)
        if registry is not None:
            registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """The metrics now."""
        families: dict[str, CounterMetricFamily] = {}
        entries = GaugeMetricFamily(
            "redline_cache_l1_entries", "Entries in L1", labels=["namespace"]
        )
        for cache in self.caches:
            stats = cache.statistics()
            for stat, (family, help_text, label, value) in _COUNTERS.items():
                labels = ["namespace", label] if label else ["namespace"]
                metric = families.get(family)
                if metric is None:
                    metric = families[family] = CounterMetricFamily(
                        f"redline_cache_{family}", help_text, labels=labels
                    )
                metric.add_metric([cache.namespace, value] if label else [cache.namespace],
                                  getattr(stats, stat))  # fmt: skip
            entries.add_metric([cache.namespace], stats.l1_entries)
        yield from families.values()
        yield entries

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the families are known at collection."""
        return iter(())
