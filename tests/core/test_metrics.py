"""Custom metrics (k6's Counter, Gauge, Rate, Trend): records, merges, statistics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.core import Counter, Gauge, MetricInterval, PlanError, Rate, Trend, parse_objective
from redline.core._metrics import _REGISTRY, take_metrics


@pytest.fixture(autouse=True)
def clean_registry() -> None:
    _REGISTRY.clear()


def test_each_kind_records_what_k6s_does() -> None:
    orders, ok, depth, basket = Counter("orders"), Rate("ok"), Gauge("depth"), Trend("basket")
    for n in range(10):
        orders.add(2)
        ok.add(n != 3)
        depth.set(n)
        basket.add(n)
    taken = take_metrics()
    assert taken["orders"].value("count", seconds=4) == 20
    assert taken["orders"].value("rate", seconds=4) == 5
    assert taken["ok"].value("rate", seconds=4) == 0.9
    assert taken["depth"].value("value", seconds=4) == 9
    assert taken["depth"].value("max", seconds=4) == 9
    assert taken["basket"].value("mean", seconds=4) == 4.5
    assert taken["basket"].value("percentile", seconds=4, percentile=50) == pytest.approx(
        4, abs=0.01
    )
    assert taken["basket"].value("percentile", seconds=4, percentile=100) == 9
    assert take_metrics() == {}  # taken: the next interval starts empty


def test_bad_values_and_names_are_refused() -> None:
    with pytest.raises(ValueError, match="only grows"):
        Counter("c").add(-1)
    with pytest.raises(ValueError, match="keeps values >= 0"):
        Trend("t").add(-0.5)
    with pytest.raises(ValueError, match="finite"):
        Gauge("g").set(float("nan"))
    with pytest.raises(ValueError, match="already a counter"):
        Trend("c")
    with pytest.raises(ValueError, match="metric name"):
        Counter("has space")


@given(
    parts=st.lists(
        st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=30),
        min_size=1,
        max_size=5,
    )
)
def test_merging_workers_records_is_recording_them_once(parts: list[list[float]]) -> None:
    _REGISTRY.clear()
    records = []
    for values in parts:
        _REGISTRY.clear()
        trend = Trend("t")
        for value in values:
            trend.add(value)
        records.append(take_metrics()["t"])
    merged = MetricInterval.merged(records)
    everything = [v for values in parts for v in values]
    assert merged.count == len(everything)
    assert merged.total == pytest.approx(sum(everything))
    assert merged.low == min(everything)
    assert merged.high == max(everything)
    assert merged.histogram.total_count == len(everything)
    assert MetricInterval.from_dict(merged.to_dict()) == merged


def test_a_gauge_merge_keeps_the_latest_value() -> None:
    early = MetricInterval(kind="gauge", count=1, total=5, last=5, last_ns=10, low=5, high=5)
    late = MetricInterval(kind="gauge", count=1, total=2, last=2, last_ns=20, low=2, high=2)
    assert MetricInterval.merged([late, early]).last == 2


@pytest.mark.parametrize(
    ("text", "statistic", "threshold", "percentile"),
    [
        ("count > 10", "count", 10, 0),
        ("rate >= 95%", "rate", 0.95, 0),
        ("p(95) < 200", "percentile", 200, 95),
        ("avg <= 3.5", "mean", 3.5, 0),
        ("med < 1", "percentile", 1, 50),
        ("value < 100", "value", 100, 0),
    ],
)
def test_metric_objectives_parse_k6_thresholds(
    text: str, statistic: str, threshold: float, percentile: float
) -> None:
    objective = parse_objective(text, scope="metric", scope_name="m")
    assert (objective.metric, objective.threshold, objective.percentile) == (
        statistic, threshold, percentile,
    )  # fmt: skip
    assert not objective.is_ratio
    with pytest.raises(PlanError, match="unknown statistic"):
        parse_objective("p99.9x < 1", scope="metric", scope_name="m")
