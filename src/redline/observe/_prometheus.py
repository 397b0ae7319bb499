"""Live metrics of a run in Prometheus' format, so existing Prometheus and Grafana chart it.

The metrics follow the measured intervals as the coordinator merges them (warm-up left
out, so at the end they equal the run's summary):

- ``redline_requests_total{plan, endpoint}``: responses and transport failures;
- ``redline_errors_total{plan, endpoint}``: failures and responses of status >= 400;
- ``redline_request_duration_seconds{plan, endpoint}``: a histogram of latency from
  each request's intended start, with the bucket bounds of a native histogram of schema
  2 (each bound 2^(1/4) times the last, 61 us to 64 s), so a native-histogram conversion
  keeps every bucket; a traced run (``--trace``) adds OpenMetrics exemplars, the trace
  id of the latest traced request in each bucket (served when the scraper asks for
  OpenMetrics, as Prometheus does with exemplar storage on);
- ``redline_request_phase_seconds{plan, endpoint, phase}``: the same kind of histogram
  for each phase of a request (``dns``, ``connect``, ``tls``, ``send``, ``wait``,
  ``receive``; see docs/result-json.md), as k6's ``http_req_waiting`` and the like;
- ``redline_target_rate``, ``redline_achieved_rate`` (req/s over the last interval) and
  ``redline_in_flight`` gauges per plan; ``redline_run_info{plan, target}`` = 1;
- on a cluster (``--cluster``), the same per generator host:
  ``redline_host_achieved_rate{plan, host}``, ``redline_host_lag_seconds`` (the worst lag
  of the last interval), ``redline_host_cpu_percent`` and ``redline_host_missing_share``
  (the run's share of load lost with hosts, 0 to 1, labelled by plan only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Exemplar

from redline.core import Closing, Histogram, IntervalSnapshot, bucket_values

__all__ = ["BUCKETS", "MetricsServer", "RunMetrics"]

BUCKETS = tuple(2.0 ** (i / 4) for i in range(-56, 25))
"""Histogram bounds in seconds: a native histogram's of schema 2, from 2^-14 to 2^6 s."""


class RunMetrics:
    """The running totals of one run, fed with :meth:`on_interval`, read by Prometheus.

    Thread-safe: the coordinator's thread updates while the HTTP server's threads read.
    """

    def __init__(self, plan: str, *, target: str = "") -> None:
        """Metrics labelled with the plan's name (and its target in the info)."""
        self.plan = plan
        self.target = target
        self._lock = threading.Lock()
        self._requests: dict[str, int] = {}
        self._errors: dict[str, int] = {}
        self._latency: dict[str, Histogram] = {}
        self._phases: dict[tuple[str, str], Histogram] = {}
        # per endpoint and bucket, the latest traced request that fell in it
        self._exemplars: dict[str, dict[int, Exemplar]] = {}
        self._target_rate = float("nan")
        self._achieved_rate = 0.0
        self._in_flight = 0
        self._hosts: dict[str, tuple[float, float, float]] = {}  # rate, lag s, CPU %
        self._missing = 0.0

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """Add one merged interval (it is an observer: pass it in a run's ``observers``)."""
        generator = interval.generator
        with self._lock:
            if interval.duration_s > 0:
                self._achieved_rate = generator.sent / interval.duration_s
            if generator.target_rps is not None:
                self._target_rate = generator.target_rps
            self._in_flight = generator.in_flight
            seconds = interval.duration_s or 1.0
            for host, gen in interval.hosts.items():
                self._hosts[host] = (gen.sent / seconds, gen.max_lag_ms / 1000, gen.cpu_percent)
            self._missing = interval.missing
            if interval.warmup:
                return
            for name, data in interval.endpoints.items():
                self._requests[name] = self._requests.get(name, 0) + data.requests
                self._errors[name] = self._errors.get(name, 0) + data.errors
                self._latency.setdefault(name, Histogram()).merge(data.latency)
                for phase, histogram in data.phases.items():
                    self._phases.setdefault((name, phase), Histogram()).merge(histogram)
            now = time.time()
            for kept in interval.exemplars:
                seconds = kept.latency_ms / 1000
                bucket = int(np.searchsorted(np.array(BUCKETS), seconds, side="left"))
                self._exemplars.setdefault(kept.endpoint, {})[bucket] = Exemplar(
                    {"trace_id": kept.trace_id}, seconds, now
                )

    def describe(self) -> list[Metric]:
        """Nothing to describe ahead: the endpoints appear as the run goes."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The current values, for ``prometheus_client``'s registry."""
        with self._lock:
            requests = dict(self._requests)
            errors = dict(self._errors)
            latency = {name: h.copy() for name, h in self._latency.items()}
            phases = {key: h.copy() for key, h in self._phases.items()}
            exemplars = {name: dict(e) for name, e in self._exemplars.items()}
            gauges = (self._target_rate, self._achieved_rate, self._in_flight)
            hosts = dict(self._hosts)
            missing = self._missing
        labels = ["plan", "endpoint"]
        counted = CounterMetricFamily(
            "redline_requests", "Requests answered or failed, per endpoint.", labels=labels
        )
        failed = CounterMetricFamily(
            "redline_errors", "Failed requests and responses of status >= 400.", labels=labels
        )
        for name in requests:
            counted.add_metric([self.plan, name], requests[name])
            failed.add_metric([self.plan, name], errors[name])
        durations = HistogramMetricFamily(
            "redline_request_duration_seconds",
            "Latency from each request's intended start.",
            labels=labels,
        )
        for name, histogram in latency.items():
            buckets, total = _cumulative(histogram)
            traced = exemplars.get(name, {})
            with_exemplars = [
                (bound, count, traced[i]) if i in traced else (bound, count)
                for i, (bound, count) in enumerate(buckets)
            ]
            durations.add_metric(
                [self.plan, name],
                buckets=with_exemplars,
                sum_value=total,
            )
        by_phase = HistogramMetricFamily(
            "redline_request_phase_seconds",
            "Time in each phase of a request: dns, connect, tls (new connections), send, "
            "wait (to the first byte), receive.",
            labels=[*labels, "phase"],
        )
        for (name, phase), histogram in phases.items():
            buckets, total = _cumulative(histogram)
            by_phase.add_metric([self.plan, name, phase], buckets=buckets, sum_value=total)
        yield counted
        yield failed
        yield durations
        if phases:
            yield by_phase
        for metric, text, value in (
            (
                "redline_target_rate",
                "The arrival rate asked for (req/s; NaN: closed model).",
                gauges[0],
            ),
            (
                "redline_achieved_rate",
                "Requests sent per second over the last interval.",
                gauges[1],
            ),
            ("redline_in_flight", "Requests awaiting their response.", gauges[2]),
        ):
            gauge = GaugeMetricFamily(metric, text, labels=["plan"])
            gauge.add_metric([self.plan], float(value))
            yield gauge
        if hosts:
            yield from self._host_gauges(hosts, missing)
        info = GaugeMetricFamily(
            "redline_run_info", "The run being measured.", labels=["plan", "target"]
        )
        info.add_metric([self.plan, self.target], 1.0)
        yield info

    def _host_gauges(
        self, hosts: dict[str, tuple[float, float, float]], missing: float
    ) -> Iterator[Metric]:
        """Each cluster host's generator over the last interval."""
        for column, (metric, text) in enumerate(
            (
                ("redline_host_achieved_rate", "Requests one host sent per second."),
                ("redline_host_lag_seconds", "One host's worst send lag in the last interval."),
                ("redline_host_cpu_percent", "CPU of one host's generator process."),
            )
        ):
            gauge = GaugeMetricFamily(metric, text, labels=["plan", "host"])
            for host, values in hosts.items():
                gauge.add_metric([self.plan, host], values[column])
            yield gauge
        lost = GaugeMetricFamily(
            "redline_host_missing_share", "The share of the load lost with hosts (0 to 1).",
            labels=["plan"],
        )  # fmt: skip
        lost.add_metric([self.plan], missing)
        yield lost


def _cumulative(histogram: Histogram) -> tuple[list[tuple[str, float]], float]:
    """Prometheus buckets (cumulative counts at :data:`BUCKETS`, then +Inf) and the sum."""
    indices, counts = histogram.to_sparse()
    seconds = bucket_values(indices).astype(np.float64) / 1e6
    cumulative = np.cumsum(counts)
    at = np.searchsorted(seconds, np.array(BUCKETS), side="right")
    below = [float(cumulative[i - 1]) if i else 0.0 for i in at]
    total = float(cumulative[-1]) if cumulative.size else 0.0
    buckets = [(repr(bound), count) for bound, count in zip(BUCKETS, below, strict=True)]
    buckets.append(("+Inf", total))
    return buckets, histogram.mean * histogram.total_count / 1e6


class MetricsServer(Closing):
    """``/metrics`` for a :class:`RunMetrics`, served on ``host:port`` in a thread.

    Use as a context manager; ``port=0`` picks a free port (see :attr:`url`).
    """

    def __init__(self, metrics: RunMetrics, *, host: str = "127.0.0.1", port: int = 9464) -> None:
        """Start serving at once."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(metrics)
        self._server: Any
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Where Prometheus scrapes."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
