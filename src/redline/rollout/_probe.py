"""Synthetic probes' metrics for Prometheus: a fixed-size record of every probe run.

A probe is a smoke plan run on a schedule (``redline probe``, ``redline.runner.probe``).
Each run adds to counters and to a latency histogram of fixed buckets, per probe name,
and sets a few gauges; nothing grows with the number of runs, so a probe can run for
days in flat memory. Exported as:

==============================================  ============================================
metric                                          what
==============================================  ============================================
``redline_probe_runs_total{probe,outcome}``     probe runs: ``pass``, ``fail`` (an
                                                objective failed or a request errored),
                                                ``error`` (the target could not be reached)
``redline_probe_requests_total{probe}``         requests the probes sent (an unreachable
                                                target counts one, failed)
``redline_probe_errors_total{probe}``           of those, failed: ``slo rules`` burns
                                                budget from these two
``redline_probe_latency_seconds{probe}``        request latency (a histogram, from the
                                                intended start)
``redline_probe_success{probe}``                1 if the last run passed, else 0
``redline_probe_last_run_timestamp_seconds``    when the last run ended (staleness alerts)
``redline_probe_p99_seconds{probe}``            the last run's p99
==============================================  ============================================
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from redline.core import Histogram, RunResult

__all__ = ["PROBE_BUCKETS", "ProbeMetrics"]

PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""The latency histogram's bucket bounds, in seconds."""
OUTCOMES = ("pass", "fail", "error")


@dataclass
class _Probe:
    runs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    requests: int = 0
    errors: int = 0
    buckets: np.ndarray = field(default_factory=lambda: np.zeros(len(PROBE_BUCKETS) + 1))
    latency_sum: float = 0.0
    success: float = 0.0
    last: float = 0.0
    p99: float = 0.0


class ProbeMetrics(Collector):
    """Every probe's record, as a Prometheus collector (register it in a registry)."""

    def __init__(self) -> None:
        """Start with no probes."""
        self._probes: dict[str, _Probe] = {}
        self._lock = threading.Lock()

    def record(self, name: str, result: RunResult, *, passed: bool) -> str:
        """Add one finished probe run of ``name``; its outcome (``pass`` or ``fail``)."""
        latency = Histogram.merged(i.total().latency for i in result.measured)
        requests = sum(i.total().requests for i in result.measured)
        errors = sum(i.total().errors for i in result.measured)
        outcome = "pass" if passed and errors == 0 else "fail"
        counts = np.array(
            [latency.count_at_or_below(round(b * 1e6)) for b in PROBE_BUCKETS]
            + [latency.total_count],
            dtype=np.float64,
        )
        with self._lock:
            probe = self._probes.setdefault(name, _Probe())
            probe.runs[outcome] += 1
            probe.requests += requests
            probe.errors += errors
            probe.buckets += counts
            probe.latency_sum += latency.mean * latency.total_count / 1e6
            probe.success = 1.0 if outcome == "pass" else 0.0
            probe.last = time.time()
            probe.p99 = latency.value_at_percentile(99) / 1e6 if latency.total_count else 0.0
        return outcome

    def record_error(self, name: str) -> str:
        """Add a probe run that could not reach its target: one request, failed."""
        with self._lock:
            probe = self._probes.setdefault(name, _Probe())
            probe.runs["error"] += 1
            probe.requests += 1
            probe.errors += 1
            probe.success = 0.0
            probe.last = time.time()
        return "error"

    def runs(self, name: str) -> dict[str, int]:
        """How many runs of ``name`` ended each way."""
        with self._lock:
            probe = self._probes.get(name)
            return dict(probe.runs) if probe else dict.fromkeys(OUTCOMES, 0)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        """The families above, one sample per probe (and outcome)."""
        with self._lock:
            probes = {name: _copy(p) for name, p in self._probes.items()}
        runs = CounterMetricFamily(
            "redline_probe_runs", "Probe runs by outcome", labels=["probe", "outcome"]
        )
        requests = CounterMetricFamily(
            "redline_probe_requests", "Requests sent by probes", labels=["probe"]
        )
        errors = CounterMetricFamily(
            "redline_probe_errors", "Probe requests that failed", labels=["probe"]
        )
        latency = HistogramMetricFamily(
            "redline_probe_latency_seconds", "Probe request latency", labels=["probe"]
        )
        success = GaugeMetricFamily(
            "redline_probe_success", "1 if the last probe run passed", labels=["probe"]
        )
        last = GaugeMetricFamily(
            "redline_probe_last_run_timestamp_seconds", "When the last run ended", labels=["probe"]
        )
        p99 = GaugeMetricFamily("redline_probe_p99_seconds", "The last run's p99", labels=["probe"])
        for name, probe in probes.items():
            for outcome, count in probe.runs.items():
                runs.add_metric([name, outcome], count)
            requests.add_metric([name], probe.requests)
            errors.add_metric([name], probe.errors)
            bounds: Sequence[str] = [f"{b:g}" for b in PROBE_BUCKETS] + ["+Inf"]
            latency.add_metric(
                [name],
                list(zip(bounds, probe.buckets.tolist(), strict=True)),
                sum_value=probe.latency_sum,
            )
            success.add_metric([name], probe.success)
            last.add_metric([name], probe.last)
            p99.add_metric([name], probe.p99)
        yield from (runs, requests, errors, latency, success, last, p99)


def _copy(probe: _Probe) -> _Probe:
    return _Probe(
        dict(probe.runs),
        probe.requests,
        probe.errors,
        probe.buckets.copy(),
        probe.latency_sum,
        probe.success,
        probe.last,
        probe.p99,
    )
