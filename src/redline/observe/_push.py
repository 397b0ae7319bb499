"""Pushing a run's intervals to metric stores: Prometheus remote write and OTLP.

    redline run plan.yaml --output prometheus=http://127.0.0.1:9090/api/v1/write
    redline run plan.yaml --output otlp=http://127.0.0.1:4318/v1/metrics

Both speak in the same series, built by :class:`Series` from each interval: counters that
add up over the run (``redline_requests_total``, errors, bytes, the generator's sent,
late and dropped), gauges of the interval (``redline_rps``, the latency percentiles in
ms, the target rate) and the Python scenarios' custom metrics (a counter as a counter,
a gauge as a gauge, a rate as the share of the interval, a trend's percentiles), each
labelled with ``plan``, ``run`` and ``endpoint`` (``all`` for the whole traffic). The
counters are cumulative from the run's start, so ``rate()`` and ``increase()`` work as
on any scraped counter.

Prometheus remote write 1.0 is a snappy-compressed protobuf ``WriteRequest``; its four
messages are written here by hand (a few varints), and compressed with cramjam. OTLP is
an ``ExportMetricsServiceRequest`` over HTTP, built with opentelemetry-proto's classes.
"""

from __future__ import annotations

import itertools
import struct
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from redline.core import IntervalSnapshot

__all__ = ["Series", "otlp_writer", "remote_write_writer", "write_request"]

_QUANTILES = (("0.5", 50.0), ("0.9", 90.0), ("0.95", 95.0), ("0.99", 99.0), ("0.999", 99.9))
# latency buckets of the OTLP histogram, in ms (Prometheus' defaults, stretched)
_BOUNDS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


@dataclass(frozen=True)
class Point:
    """One value of one series at one moment."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float
    kind: str  # "counter" or "gauge"
    unit: str = ""


class Series:
    """A run's series, interval by interval; counters carried from one to the next."""

    def __init__(self, *, histograms: bool = False) -> None:
        """Carry the counters; with ``histograms`` (OTLP's), the latency buckets too."""
        self.histograms = histograms
        self.totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self.latency: dict[tuple[tuple[str, str], ...], list[int]] = {}
        """Per endpoint, the cumulative count at or below each of :data:`_BOUNDS_MS`."""
        self.latency_sum: dict[tuple[tuple[str, str], ...], float] = {}
        self.latency_count: dict[tuple[tuple[str, str], ...], int] = {}

    def _count(self, name: str, labels: tuple[tuple[str, str], ...], add: float) -> Point:
        key = (name, labels)
        total = self.totals.get(key, 0.0) + add
        self.totals[key] = total
        return Point(name, labels, total, "counter")

    def points(self, run: str, plan: str, interval: IntervalSnapshot) -> Iterator[Point]:
        """Every series' value at the end of ``interval``."""
        base = (("plan", plan), ("run", run))
        seconds = interval.duration_s or 1.0
        for endpoint, data in [*interval.endpoints.items(), ("all", interval.total())]:
            labels = (("endpoint", endpoint), *base)
            yield self._count("redline_requests_total", labels, data.requests)
            yield self._count("redline_errors_total", labels, data.errors)
            yield self._count("redline_bytes_in_total", labels, data.bytes_in)
            yield self._count("redline_bytes_out_total", labels, data.bytes_out)
            yield Point("redline_rps", labels, data.requests / seconds, "gauge")
            latency = data.latency
            if latency.total_count:
                values = latency.values_at_percentiles([p for _, p in _QUANTILES])
                for (quantile, _), value in zip(_QUANTILES, values, strict=True):
                    yield Point(
                        "redline_latency_ms",
                        (*labels, ("quantile", quantile)),
                        value / 1000,
                        "gauge",
                        "ms",
                    )
                yield Point("redline_latency_max_ms", labels, latency.max / 1000, "gauge", "ms")
            if self.histograms:
                self._buckets(labels, data.latency)
        gen = interval.generator
        for name, value in (("sent", gen.sent), ("late", gen.late), ("dropped", gen.dropped)):
            yield self._count(f"redline_generator_{name}_total", base, value)
        if gen.target_rps is not None:
            yield Point("redline_generator_target_rps", base, gen.target_rps, "gauge")
        yield Point("redline_generator_cpu_percent", base, gen.cpu_percent, "gauge")
        for name, record in interval.metrics.items():
            labels = (("metric", name), *base)
            if record.kind == "counter":
                yield self._count("redline_metric_total", labels, record.total)
            elif record.kind == "gauge":
                yield Point("redline_metric_value", labels, record.last, "gauge")
            elif record.kind == "rate":
                yield Point(
                    "redline_metric_rate", labels, record.value("rate", seconds=seconds), "gauge"
                )
            else:
                for quantile, percentile in _QUANTILES:
                    found = record.value("percentile", seconds=seconds, percentile=percentile)
                    yield Point(
                        "redline_metric_trend", (*labels, ("quantile", quantile)), found, "gauge"
                    )

    def _buckets(self, labels: tuple[tuple[str, str], ...], latency: Any) -> None:
        counts = [latency.count_at_or_below(int(bound * 1000)) for bound in _BOUNDS_MS]
        before = self.latency.get(labels, [0] * len(_BOUNDS_MS))
        self.latency[labels] = [a + b for a, b in zip(before, counts, strict=True)]
        self.latency_count[labels] = self.latency_count.get(labels, 0) + latency.total_count
        mean = latency.mean if latency.total_count else 0.0
        self.latency_sum[labels] = (
            self.latency_sum.get(labels, 0.0) + mean * latency.total_count / 1000
        )


# -- Prometheus remote write ------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (strings, nested messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def write_request(points: list[Point], timestamp_ms: int) -> bytes:
    """A remote-write ``WriteRequest`` (protobuf, uncompressed) with one sample per point.

    Labels are sorted by name with ``__name__`` first, as the protocol requires.
    """
    out = bytearray()
    for point in points:
        labels = sorted([("__name__", point.name), *point.labels])
        series = b"".join(
            _field(1, _field(1, name.encode()) + _field(2, value.encode()))
            for name, value in labels
        )
        sample = (
            _varint(1 << 3 | 1)
            + struct.pack("<d", point.value)
            + _varint(2 << 3 | 0)
            + _varint(timestamp_ms)
        )
        out += _field(1, series + _field(2, sample))
    return bytes(out)


def remote_write_writer(url: str) -> Callable[[Any, IntervalSnapshot], None]:
    """A writer pushing each interval to a Prometheus remote-write endpoint."""
    import cramjam  # the extra: redline[outputs]

    series = Series()

    def write(run: Any, interval: IntervalSnapshot) -> None:
        points = list(series.points(run.id, run.plan, interval))
        stamp = run.ns(interval.start_s + interval.duration_s) // 1_000_000
        body = bytes(cramjam.snappy.compress_raw(write_request(points, stamp)))
        request = urllib.request.Request(url, data=body, method="POST")
        request.add_header("Content-Type", "application/x-protobuf")
        request.add_header("Content-Encoding", "snappy")
        request.add_header("X-Prometheus-Remote-Write-Version", "0.1.0")
        request.add_header("User-Agent", "redline")
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    return write


# -- OTLP ---------------------------------------------------------------------------------------


def otlp_writer(url: str) -> Callable[[Any, IntervalSnapshot], None]:
    """A writer pushing each interval to an OTLP/HTTP metrics endpoint (protobuf)."""
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.common.v1 import common_pb2
    from opentelemetry.proto.metrics.v1 import metrics_pb2
    from opentelemetry.proto.resource.v1 import resource_pb2

    series = Series(histograms=True)
    cumulative = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE

    def attributes(labels: tuple[tuple[str, str], ...]) -> list[Any]:
        return [
            common_pb2.KeyValue(key=k, value=common_pb2.AnyValue(string_value=v)) for k, v in labels
        ]

    def write(run: Any, interval: IntervalSnapshot) -> None:
        start = run.ns(0.0)
        now = run.ns(interval.start_s + interval.duration_s)
        grouped: dict[str, list[Point]] = {}
        for point in series.points(run.id, run.plan, interval):
            grouped.setdefault(point.name, []).append(point)
        metrics = []
        for name, points in grouped.items():
            if name == "redline_latency_ms":
                continue  # the histogram below carries the distribution
            dotted = name.replace("_", ".").removesuffix(".total")
            data_points = [
                metrics_pb2.NumberDataPoint(
                    attributes=attributes(p.labels),
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    as_double=p.value,
                )
                for p in points
            ]
            if points[0].kind == "counter":
                metrics.append(
                    metrics_pb2.Metric(
                        name=dotted,
                        sum=metrics_pb2.Sum(
                            data_points=data_points,
                            aggregation_temporality=cumulative,
                            is_monotonic=True,
                        ),
                    )
                )
            else:
                metrics.append(
                    metrics_pb2.Metric(
                        name=dotted,
                        unit=points[0].unit,
                        gauge=metrics_pb2.Gauge(data_points=data_points),
                    )
                )
        histogram_points = [
            metrics_pb2.HistogramDataPoint(
                attributes=attributes(labels),
                start_time_unix_nano=start,
                time_unix_nano=now,
                count=series.latency_count[labels],
                sum=series.latency_sum[labels],
                explicit_bounds=list(_BOUNDS_MS),
                bucket_counts=_bucket_counts(series.latency[labels], series.latency_count[labels]),
            )
            for labels in series.latency
            if dict(labels)["run"] == run.id
        ]
        metrics.append(
            metrics_pb2.Metric(
                name="redline.latency",
                unit="ms",
                histogram=metrics_pb2.Histogram(
                    data_points=histogram_points, aggregation_temporality=cumulative
                ),
            )
        )
        message = metrics_service_pb2.ExportMetricsServiceRequest(
            resource_metrics=[
                metrics_pb2.ResourceMetrics(
                    resource=resource_pb2.Resource(
                        attributes=attributes((("service.name", "redline"),))
                    ),
                    scope_metrics=[
                        metrics_pb2.ScopeMetrics(
                            scope=common_pb2.InstrumentationScope(name="redline"),
                            metrics=metrics,
                        )
                    ],
                )
            ]
        )
        request = urllib.request.Request(url, data=message.SerializeToString(), method="POST")
        request.add_header("Content-Type", "application/x-protobuf")
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    return write


def _bucket_counts(at_or_below: list[int], total: int) -> list[int]:
    """Per-bucket counts (OTLP's) from cumulative counts at or below each bound."""
    edges = [*at_or_below, total]
    return [edges[0], *(b - a for a, b in itertools.pairwise(edges))]
