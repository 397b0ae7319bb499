from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from redline.core import (
    PHASES,
    SCHEMA_VERSION,
    EndpointInterval,
    GeneratorHost,
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
    assert data["schema_version"] == SCHEMA_VERSION
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


def test_a_cluster_runs_hosts_and_short_intervals_survive_json() -> None:
    hosts = (
        GeneratorHost("h1", "tcp://10.0.0.1:1", 0.5, clock_offset_ms=0.3, clock_error_ms=0.1),
        GeneratorHost("h2", "tcp://10.0.0.2:1", 0.5, lost_at=2, lost_reason="no word for 1.5s",
                      lost_noticed_s=2.7),
    )  # fmt: skip
    intervals = []
    for index in range(4):
        per_host = {"h1": GeneratorInterval(scheduled=5, sent=5, max_lag_ms=1.0 + index)}
        if index < 2:
            per_host["h2"] = GeneratorInterval(scheduled=5, sent=5, cpu_percent=40.0)
        base = interval(index, {"a": endpoint([1000] * (10 if index < 2 else 5))})
        intervals.append(
            dataclasses.replace(base, hosts=per_host, missing=0.0 if index < 2 else 0.5)
        )
    result = RunResult(
        id="c1",
        plan={"name": "p", "target": "http://127.0.0.1:1"},
        started_at="2026-01-01T00:00:00.000Z",
        intervals=tuple(intervals),
        hosts=hosts,
    )
    data = json.loads(result.to_json())
    by_name = {h["name"]: h for h in data["generator"]["hosts"]}
    # measured intervals 1..3 (0 is warm-up): h1 sent 15 in 3 s, h2 5 before it was lost
    assert by_name["h1"]["achieved_rps"] == pytest.approx(5.0)
    assert by_name["h1"]["max_lag_ms"] == 4.0
    assert by_name["h2"]["sent"] == 5
    assert by_name["h2"]["lost_at"] == 2
    assert by_name["h2"]["max_cpu_percent"] == 40.0
    assert [i.get("missing", 0.0) for i in data["intervals"]] == [0.0, 0.0, 0.5, 0.5]
    assert set(data["intervals"][3]["hosts"]) == {"h1"}
    again = RunResult.from_dict(data)
    assert again.hosts == hosts
    assert [i.missing for i in again.intervals] == [0.0, 0.0, 0.5, 0.5]
    assert again.intervals[1].hosts == intervals[1].hosts
    assert again.generator().hosts == result.generator().hosts
    # a run on one machine keeps its JSON as it was: no hosts, no missing
    local = RunResult.from_dict(json.loads(RunResult(
        id="l1", plan={"name": "p", "target": "http://127.0.0.1:1"},
        started_at="2026-01-01T00:00:00.000Z", intervals=(interval(0, {}),),
    ).to_json()))  # fmt: skip
    assert local.hosts == ()
    assert "hosts" not in local.to_dict()["generator"]
