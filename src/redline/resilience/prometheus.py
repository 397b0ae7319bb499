"""Prometheus metrics for the strategies (prometheus-client).

    from redline.resilience.prometheus import PrometheusMetrics

    metrics = PrometheusMetrics()          # the default registry
    metrics.watch(payments_breaker, retry) # or metrics.watch(): every strategy

The names and labels are in :mod:`redline.resilience._metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from ._metrics import FAMILIES, MetricsListener

__all__ = ["DEFAULT_BUCKETS", "PrometheusMetrics"]

DEFAULT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


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
        for family, (kind, help_text, extra) in FAMILIES.items():
            labels = ("strategy", "name", *extra)
            name = f"{namespace}_{family}"
            if kind == "counter":
                self._families[family] = Counter(name, help_text, labels, registry=registry)
            elif kind == "gauge":
                self._families[family] = Gauge(name, help_text, labels, registry=registry)
            else:
                self._families[family] = Histogram(
                    name, help_text, labels, buckets=tuple(buckets), registry=registry
                )

    def _add(self, family: str, labels: Mapping[str, str], amount: float = 1.0) -> None:
        metric = self._families[family]
        assert isinstance(metric, Counter)
        metric.labels(**labels).inc(amount)

    def _observe(self, family: str, labels: Mapping[str, str], value: float) -> None:
        metric = self._families[family]
        assert isinstance(metric, Histogram)
        metric.labels(**labels).observe(value)

    def _set(self, family: str, labels: Mapping[str, str], value: float) -> None:
        metric = self._families[family]
        assert isinstance(metric, Gauge)
        metric.labels(**labels).set(value)
