"""Custom metrics of Python scenarios: k6's Counter, Gauge, Rate and Trend.

    from redline.scenario import Counter, Trend

    orders = Counter("orders_placed")
    basket = Trend("basket_items")

    @scenario
    async def buy(s):
        ...
        orders.add(1)
        basket.add(len(items))

A plan module makes its metrics at import, so every worker process has its own; the
worker takes what each recorded at every interval boundary (:func:`take_metrics`), and
the coordinator merges the workers' records. A :class:`MetricInterval` is one such
record (or a merge of several); its :meth:`~MetricInterval.value` is the statistic an
objective names: ``count`` and ``rate`` of a counter, ``value`` of a gauge, ``rate`` of
a rate, a trend's percentiles, ``avg``, ``min`` and ``max``
(``{metric: orders_placed, objective: "count > 10"}``).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from ._histogram import Histogram

__all__ = [
    "METRIC_KINDS",
    "TREND_SCALE",
    "Counter",
    "Gauge",
    "Metric",
    "MetricInterval",
    "Rate",
    "Trend",
    "take_metrics",
]

METRIC_KINDS = ("counter", "gauge", "rate", "trend")
"""The kinds of custom metric, as k6 names them (in lower case)."""
TREND_SCALE = 1000
"""A trend keeps ``value * TREND_SCALE`` in its histogram: three decimals of its unit."""

MetricKind = Literal["counter", "gauge", "rate", "trend"]


@dataclass(frozen=True, slots=True)
class MetricInterval:
    """What one custom metric recorded during an interval, or over several merged.

    ``count`` is how many times it was added to (set, for a gauge); ``total`` their sum
    (a counter's value); ``nonzero`` how many of a rate's adds were true; ``last`` and
    ``last_ns`` a gauge's latest value and when it was set (wall clock);
    ``low``/``high`` the extremes; ``histogram`` a trend's values (scaled by
    :data:`TREND_SCALE`).
    """

    kind: MetricKind
    count: int = 0
    total: float = 0.0
    nonzero: int = 0
    last: float = 0.0
    last_ns: int = 0
    low: float = 0.0
    high: float = 0.0
    histogram: Histogram = field(default_factory=Histogram)

    @staticmethod
    def merged(items: Iterable[MetricInterval]) -> MetricInterval:
        """The exact combination of several (a gauge keeps the latest value set)."""
        items = [i for i in items if i.count]
        if not items:
            raise ValueError("nothing to merge")
        latest = max(items, key=lambda i: i.last_ns)
        return MetricInterval(
            kind=items[0].kind,
            count=sum(i.count for i in items),
            total=sum(i.total for i in items),
            nonzero=sum(i.nonzero for i in items),
            last=latest.last,
            last_ns=latest.last_ns,
            low=min(i.low for i in items),
            high=max(i.high for i in items),
            histogram=Histogram.merged([i.histogram for i in items])
            if items[0].kind == "trend"
            else Histogram(),
        )

    @staticmethod
    def merged_by_name(
        records: Iterable[Mapping[str, MetricInterval]],
    ) -> dict[str, MetricInterval]:
        """Several ``{name: record}`` (workers, intervals) merged name by name."""
        by_name: dict[str, list[MetricInterval]] = {}
        for part in records:
            for name, record in part.items():
                by_name.setdefault(name, []).append(record)
        return {name: MetricInterval.merged(items) for name, items in by_name.items()}

    def value(self, statistic: str, *, seconds: float, percentile: float = 0.0) -> float:
        """The statistic an objective judges (see :data:`STATISTICS`)."""
        if statistic == "count":
            return self.total if self.kind == "counter" else float(self.count)
        if statistic == "rate":
            if self.kind == "rate":
                return self.nonzero / self.count if self.count else 0.0
            return self.total / seconds if seconds > 0 else 0.0
        if statistic == "value":
            return self.last
        if statistic == "min":
            return self.low
        if statistic == "max":
            return self.high
        if statistic == "mean":
            return self.total / self.count if self.count else 0.0
        # a bucket's highest value may pass the largest recorded: never report beyond it
        found = self.histogram.value_at_percentile(percentile) / TREND_SCALE
        return min(max(found, self.low), self.high)

    def summary(self, *, seconds: float) -> dict[str, Any]:
        """The JSON summary of the metric over a run (``summary.metrics.<name>``)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "counter":
            out.update(count=self.total, rate=self.value("rate", seconds=seconds))
        elif self.kind == "gauge":
            out.update(value=self.last, min=self.low, max=self.high)
        elif self.kind == "rate":
            out.update(rate=self.value("rate", seconds=seconds), passes=self.nonzero,
                       fails=self.count - self.nonzero)  # fmt: skip
        else:
            out.update(
                count=self.count, avg=self.value("mean", seconds=seconds), min=self.low,
                max=self.high,
                **{f"p{p:g}".replace(".", ""): self.value("p", seconds=seconds, percentile=p)
                   for p in (50, 90, 95, 99)},
            )  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of one interval's record (``intervals[].metrics.<name>``)."""
        out: dict[str, Any] = {"kind": self.kind, "count": self.count, "total": self.total,
                               "min": self.low, "max": self.high}  # fmt: skip
        if self.kind == "rate":
            out["nonzero"] = self.nonzero
        if self.kind == "gauge":
            out.update(last=self.last, last_ns=self.last_ns)
        if self.kind == "trend":
            out["histogram"] = self.histogram.encode()
        return out

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> MetricInterval:
        """Read :meth:`to_dict`'s form."""
        kind = data["kind"]
        if kind not in METRIC_KINDS:
            raise ValueError(f"unknown metric kind {kind!r}")
        return MetricInterval(
            kind=kind,
            count=int(data["count"]),
            total=float(data["total"]),
            nonzero=int(data.get("nonzero", 0)),
            last=float(data.get("last", 0.0)),
            last_ns=int(data.get("last_ns", 0)),
            low=float(data["min"]),
            high=float(data["max"]),
            histogram=Histogram.decode(data["histogram"]) if "histogram" in data else Histogram(),
        )


_NAME = re.compile(r"[A-Za-z_][\w.-]*")
_REGISTRY: dict[str, Metric] = {}
_TREND_MAX = 3_600_000_000  # the histogram's highest value


class Metric:
    """A custom metric, recorded by name across a worker's scenarios."""

    kind: ClassVar[str] = ""

    def __init__(self, name: str) -> None:
        """Make (or, by the same name and kind, reuse) the metric ``name``.

        Raises:
            ValueError: the name is not a metric name, or is taken by another kind.
        """
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"a metric name is letters, digits, _ . - (got {name!r})")
        other = _REGISTRY.get(name)
        if other is not None and other.kind != self.kind:
            raise ValueError(f"metric {name!r} is already a {other.kind}, not a {self.kind}")
        self.name = name
        self._reset()
        _REGISTRY[name] = self

    def _reset(self) -> None:
        self.count = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def _note(self, value: float) -> float:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"metric {self.name!r}: expected a finite number, got {value!r}")
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)
        return value

    def take(self) -> MetricInterval | None:
        """What was recorded since the last take (None: nothing)."""
        if not self.count:
            return None
        out = self._interval()
        self._reset()
        return out

    def _interval(self) -> MetricInterval:
        return MetricInterval(kind=self.kind, count=self.count, total=self.total,  # type: ignore[arg-type]
                              low=self.low, high=self.high)  # fmt: skip


class Counter(Metric):
    """A sum that only grows: ``add(n)`` (k6's Counter). Judged by ``count`` and ``rate``."""

    kind = "counter"

    def add(self, value: float = 1.0) -> None:
        """Add ``value`` (at least 0)."""
        if value < 0:
            raise ValueError(f"counter {self.name!r} only grows: add(>= 0), got {value!r}")
        self._note(value)


class Gauge(Metric):
    """A value that goes up and down: ``set(x)`` keeps the latest (k6's Gauge)."""

    kind = "gauge"

    def _reset(self) -> None:
        super()._reset()
        self.last = 0.0
        self.last_ns = 0

    def set(self, value: float) -> None:
        """Set the gauge to ``value``."""
        self.last = self._note(value)
        self.last_ns = time.time_ns()

    add = set  # k6's gauge.add(value) sets it

    def _interval(self) -> MetricInterval:
        return MetricInterval(kind="gauge", count=self.count, total=self.total, low=self.low,
                              high=self.high, last=self.last, last_ns=self.last_ns)  # fmt: skip


class Rate(Metric):
    """The share of true adds: ``add(ok)`` (k6's Rate). Judged by ``rate``."""

    kind = "rate"

    def _reset(self) -> None:
        super()._reset()
        self.nonzero = 0

    def add(self, value: object) -> None:
        """Count ``value``: true (or a non-zero number) or false."""
        self._note(1.0 if value else 0.0)
        if value:
            self.nonzero += 1

    def _interval(self) -> MetricInterval:
        return MetricInterval(kind="rate", count=self.count, total=self.total, low=self.low,
                              high=self.high, nonzero=self.nonzero)  # fmt: skip


class Trend(Metric):
    """A distribution of values: ``add(x)`` (k6's Trend).

    Judged by percentiles, avg, min and max; kept to three decimals of its unit, from 0
    to 3.6 million.
    """

    kind = "trend"

    def _reset(self) -> None:
        super()._reset()
        self.values: list[int] = []

    def add(self, value: float) -> None:
        """Add one value (at least 0)."""
        if value < 0:
            raise ValueError(f"trend {self.name!r} keeps values >= 0, got {value!r}")
        self.values.append(min(round(self._note(value) * TREND_SCALE), _TREND_MAX))

    def _interval(self) -> MetricInterval:
        histogram = Histogram()
        histogram.record_values(np.asarray(self.values, dtype=np.int64))
        return MetricInterval(kind="trend", count=self.count, total=self.total, low=self.low,
                              high=self.high, histogram=histogram.compact())  # fmt: skip


def take_metrics() -> dict[str, MetricInterval]:
    """Every custom metric's record since the last take, by name (a worker, per interval)."""
    out = {}
    for name, metric in _REGISTRY.items():
        taken = metric.take()
        if taken is not None:
            out[name] = taken
    return out
