"""Observing runs from outside: live Prometheus metrics of a run and a Grafana dashboard."""

from ._grafana import grafana_dashboard as grafana_dashboard
from ._prometheus import BUCKETS as BUCKETS
from ._prometheus import MetricsServer as MetricsServer
from ._prometheus import RunMetrics as RunMetrics

__all__ = ["BUCKETS", "MetricsServer", "RunMetrics", "grafana_dashboard"]
