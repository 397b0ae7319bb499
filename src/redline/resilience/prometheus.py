"""Prometheus metrics for the strategies (prometheus-client).

    from redline.resilience.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics()          # the default registry
    metrics.watch(payments_breaker, retry) # or metrics.watch(): every strategy

The names and labels are in :mod:`redline.resilience._metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from ._metrics import FAMILIES, MetricsListener

__all__ = ["DEFAULT_BUCKETS", "PrometheusMetrics"]

DEFAULT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
JOB_BUCKETS = (*DEFAULT_BUCKETS, 30.0, 60.0, 300.0, 900.0)
_OWN_BUCKETS = {"batch_size": SIZE_BUCKETS, "job_latency_seconds": JOB_BUCKETS}


class PrometheusMetrics(MetricsListener):
    """Every strategy's events as Prometheus metrics in ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry = REGISTRY,
        *,
        namespace: str = "redline_resilience",
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        """Register the metric families in ``registry``."""
        self.registry = registry
        self._families: dict[str, Counter | Gauge | Histogram] = {}
        self._children: dict[tuple[str, tuple[str, ...]], Any] = {}
        for family, (kind, help_text, extra) in FAMILIES.items():
            labels = ("strategy", "name", *extra)
            name = f"{namespace}_{family}"
            if kind == "counter":
                self._families[family] = Counter(name, help_text, labels, registry=registry)
            elif kind == "gauge":
                self._families[family] = Gauge(name, help_text, labels, registry=registry)
            else:
                own = _OWN_BUCKETS.get(family, tuple(buckets))
                self._families[family] = Histogram(
                    name, help_text, labels, buckets=own, registry=registry
                )

    def _child(self, family: str, labels: tuple[str, ...]) -> Any:
        child = self._children.get((family, labels))
        if child is None:
            child = self._children[family, labels] = self._families[family].labels(*labels)
        return child

    def _add(self, family: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        self._child(family, labels).inc(amount)

    def _observe(self, family: str, labels: tuple[str, ...], value: float) -> None:
        self._child(family, labels).observe(value)

    def _set(self, family: str, labels: tuple[str, ...], value: float) -> None:
        self._child(family, labels).set(value)
