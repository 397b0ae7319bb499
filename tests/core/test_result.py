from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from redline.core import (
    PHASES,
    EndpointInterval,
    GeneratorInterval,
    Histogram,
    IntervalSnapshot,
    RunResult,
)


def endpoint(latencies_us: list[int], *, status: int = 200, failures: int = 0) -> EndpointInterval:
    h = Histogram()
    h.record_values(np.array(latencies_us))
    return EndpointInterval(
        requests=len(latencies_us) + failures,
        errors=(len(latencies_us) if status >= 400 else 0) + failures,
        status={status: len(latencies_us)} if latencies_us else {},
        error_classes={"reset": failures} if failures else {},
        bytes_in=100 * len(latencies_us),
        bytes_out=50 * len(latencies_us),
        latency=h,
        latency_actual=h.copy(),
    )


def interval(index: int, endpoints: dict[str, EndpointInterval], **gen: object) -> IntervalSnapshot:
    sent = sum(e.requests for e in endpoints.values())
    generator = GeneratorInterval(scheduled=sent, sent=sent, target_rps=float(sent), **gen)  # type: ignore[arg-type]
    return IntervalSnapshot(
        index=index,
        start_s=float(index),
        duration_s=1.0,
        endpoints=endpoints,
        generator=generator,
        warmup=index == 0,
    )


def make_result() -> RunResult:
    return RunResult(
        id="r1",
        plan={"name": "p", "target": "http://127.0.0.1:1"},
        started_at="2026-01-01T00:00:00.000Z",
        intervals=(
            interval(0, {"a": endpoint([100_000] * 10)}),  # warm-up: excluded
            interval(
                1, {"a": endpoint([1000] * 9, failures=1), "b": endpoint([5000] * 2, status=503)}
            ),
            interval(2, {"a": endpoint([2000] * 10)}, late=3),
        ),
    )


def test_summary_excludes_warmup_and_merges_endpoints() -> None:
    result = make_result()
    assert result.duration_s == 2.0
    a = result.endpoint("a")
    assert a.requests == 20
    assert a.errors == 1
    assert a.rps == 10.0
    assert a.error_classes == {"reset": 1}
    assert a.latency_ms["max"] < 10  # the 100 ms warm-up samples are not counted
    total = result.total()
    assert total.requests == 22
    assert total.errors == 3  # one transport failure, two 503s
    assert total.status == {200: 19, 503: 2}
    assert result.endpoint_names() == ["a", "b"]


def test_generator_is_limited_when_late_exceeds_tolerance() -> None:
    result = make_result()
    gen = result.generator()
    assert gen.late == 3
    assert gen.limited  # 3 late of 22 scheduled is above 1%
    assert gen.limited_intervals == 1


def test_json_round_trip_preserves_every_interval() -> None:
    result = make_result()
    data = json.loads(result.to_json())
    again = RunResult.from_dict(data)
    assert again.intervals == result.intervals
    assert again.to_dict() == result.to_dict()


def test_json_contract_has_the_documented_fields() -> None:
    data = make_result().to_dict()
    for key in ("id", "plan", "started_at", "duration_s", "generator", "summary", "intervals"):
        assert key in data
    for key in ("target_rps", "achieved_rps", "late", "dropped", "limited"):
        assert key in data["generator"]
    a = data["summary"]["endpoints"]["a"]
    for key in ("requests", "errors", "rps", "latency_ms", "status", "error_classes"):
        assert key in a
    assert set(a["latency_ms"]) >= {"p50", "p90", "p95", "p99", "p999", "max", "mean"}
    first = data["intervals"][1]["endpoints"]["a"]
    assert Histogram.decode(first["histogram"]).total_count == 9
    assert data["intervals"][2]["limited"] is True


def _with_phases(data: EndpointInterval, wait_us: int) -> EndpointInterval:
    phases = {}
    for name in PHASES:
        h = Histogram()
        h.record_values(np.array([wait_us if name == "wait" else 0] * data.latency.total_count))
        phases[name] = h
    return dataclasses.replace(data, phases=phases)


def test_phases_merge_exactly_and_round_trip_through_json() -> None:
    first = _with_phases(endpoint([31_000] * 10), 30_000)
    second = _with_phases(endpoint([41_000] * 30), 40_000)
    merged = EndpointInterval.merged([first, second, endpoint([5000])])  # one without phases
    assert list(merged.phases) == list(PHASES)
    assert merged.phases["wait"].total_count == 40
    assert merged.phases["wait"].value_at_percentile(50) == pytest.approx(40_000, rel=0.001)
    result = RunResult(
        id="r2",
        plan={"name": "p", "target": "http://127.0.0.1:1"},
        started_at="2026-01-01T00:00:00.000Z",
        intervals=(interval(1, {"a": first}), interval(2, {"a": second, "b": endpoint([9])})),
    )
    data = json.loads(result.to_json())
    assert data["schema_version"] == 4
    wait = data["summary"]["total"]["phases"]["wait"]
    assert set(wait) >= {"p50", "p90", "p95", "p99", "p999", "max", "mean"}
    assert wait["p50"] == pytest.approx(40.0, rel=0.001)
    assert data["summary"]["endpoints"]["a"]["phases"]["wait"]["min"] == pytest.approx(
        30.0, rel=0.001
    )
    assert "phases" not in data["summary"]["endpoints"]["b"]  # no HTTP exchange timed
    again = RunResult.from_dict(data)
    assert again.intervals == result.intervals


def test_from_dict_rejects_other_documents() -> None:
    with pytest.raises(ValueError, match=r"redline\.run/1"):
        RunResult.from_dict({"schema": "something"})
    data = make_result().to_dict()
    del data["intervals"]
    with pytest.raises(ValueError, match="malformed"):
        RunResult.from_dict(data)
