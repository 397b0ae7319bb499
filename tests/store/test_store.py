"""The run store against real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.analysis import evaluate
from redline.core import (
    ControlEvent,
    EndpointInterval,
    GeneratorHost,
    GeneratorInterval,
    Histogram,
    IntervalSnapshot,
    RunResult,
    StoreError,
    parse_objective,
)
from redline.store import (
    LOST,
    MIGRATIONS,
    RUNNING,
    Migration,
    RunMeta,
    RunStore,
    StoredRun,
    open_store,
    parse_labels,
    parse_time,
)

BACKENDS = ["sqlite", "postgres"]


def measured(requests: int, errors: int, *, seed: int, scale: float = 1.0) -> EndpointInterval:
    rng = np.random.default_rng(seed)
    values = (rng.lognormal(7.0, 0.6, requests) * scale).astype(np.int64) + 1
    latency, actual = Histogram(), Histogram()
    latency.record_values(values)
    actual.record_values(values // 2 + 1)
    return EndpointInterval(
        requests=requests,
        errors=errors,
        status={200: requests - errors, 503: errors} if errors else {200: requests},
        error_classes={"read_timeout": 1} if errors else {},
        bytes_in=requests * 120,
        bytes_out=requests * 80,
        latency=latency,
        latency_actual=actual,
    )


def interval(index: int, *, warmup: bool = False, errors: int = 0) -> IntervalSnapshot:
    return IntervalSnapshot(
        index=index,
        start_s=float(index),
        duration_s=1.0,
        endpoints={
            "checkout": measured(90, errors, seed=index),
            "home": measured(210, 0, seed=100 + index, scale=0.3),
        },
        generator=GeneratorInterval(
            scheduled=300,
            sent=300,
            late=index % 2,
            max_lag_ms=0.4,
            cpu_percent=31.5,
            connections=12,
            in_flight=3,
            target_rps=300.0,
        ),
        warmup=warmup,
        groups={"buy": measured(30, 0, seed=200 + index, scale=3.0)},
        scenarios={"shopper": measured(30, errors, seed=300 + index, scale=4.0)},
        checks={"status is 200": (88, 2)},
        exceptions={"shopper": {"KeyError": 1}} if index == 2 else {},
    )


def make_run(
    run_id: str = "20261128T090000Z-abc123",
    *,
    started_at: str = "2026-11-28T09:00:00.000Z",
    plan: str = "shop",
    intervals: int = 6,
) -> RunResult:
    return RunResult(
        id=run_id,
        plan={"name": plan, "target": "http://127.0.0.1:8080", "load": {"rate": 300.0}},
        started_at=started_at,
        intervals=(
            interval(0, warmup=True),
            *(interval(i, errors=i % 3) for i in range(1, intervals)),
        ),
        workers=2,
        complete=True,
        stop_reason="completed",
        late_tolerance=0.02,
        open_model=True,
        notes=("a note",),
        tracebacks=("Traceback (most recent call last):\n  KeyError: 'sku'",),
    )


def started(run: RunResult) -> RunResult:
    """``run`` as ``run_plan`` reports it at its start: no intervals yet, running."""
    return dataclasses.replace(run, intervals=(), complete=False, stop_reason=RUNNING)


META = RunMeta(
    labels={"branch": "main", "pr": "42"},
    git_commit="0123456789abcdef0123456789abcdef01234567",
    git_dirty=True,
    host="ci-7",
    version="0.1.0",
    pid=None,
)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunStore]:
    location = str(tmp_path / "runs.db")
    if request.param == "postgres":
        location = request.getfixturevalue("postgres_url")
    with open_store(location) as opened:
        # The PostgreSQL database is shared by the session (integration tests leave
        # their runs in it): each test here starts from an empty store.
        opened._db.execute("DELETE FROM redline_runs")
        yield opened


def verdicts_of(run: RunResult):  # type: ignore[no-untyped-def]
    objectives = [
        parse_objective("p99 < 5ms", name="latency"),
        parse_objective("error_rate < 0.1%", name="availability"),
        parse_objective("rps >= 100", name="throughput"),
    ]
    return evaluate(run, objectives)


def test_the_same_run_reads_back_identically_from_sqlite_and_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    run = make_run()
    verdicts = verdicts_of(run)
    back: dict[str, StoredRun] = {}
    listed = {}
    for name, location in (("sqlite", str(tmp_path / "runs.db")), ("postgres", postgres_url)):
        with open_store(location) as store:
            store.save(run, META, verdicts)
            back[name] = store.load(run.id)
            listed[name] = [info.to_dict() for info in store.runs() if info.id == run.id]
            store._db.execute("DELETE FROM redline_runs WHERE id = ?", (run.id,))
    expected = StoredRun(run, META, tuple(verdicts)).to_dict()
    assert back["sqlite"].to_dict() == expected
    assert back["postgres"].to_dict() == expected
    assert listed["sqlite"] == listed["postgres"]
    (info,) = listed["sqlite"]
    assert info["labels"] == {"branch": "main", "pr": "42"}
    assert info["requests"] == run.total().requests
    assert info["p99_ms"] == run.total().latency_ms["p99"]
    assert sum(info["verdicts"].values()) == 3
    # Histograms survive bit for bit: every interval's percentiles are unchanged.
    for before, after in zip(run.intervals, back["postgres"].result.intervals, strict=True):
        assert after.total().latency.encode() == before.total().latency.encode()


def test_a_run_recorded_interval_by_interval_is_readable_before_it_finishes(
    store: RunStore,
) -> None:
    run = make_run()
    recorder = store.recorder(RunMeta(labels={"k": "v"}, host="elsewhere"))
    recorder.on_start(started(run))
    for item in run.intervals[:3]:
        recorder.on_interval(item)
    partial = store.load(run.id).result
    assert not partial.complete
    assert partial.stop_reason == RUNNING  # recently updated by a process we cannot see
    assert [i.index for i in partial.intervals] == [0, 1, 2]
    (info,) = store.runs()
    # Warm-up does not count: only intervals 1 and 2.
    assert info.requests == sum(i.total().requests for i in run.intervals[1:3])
    assert info.measured_s == 2.0
    assert recorder.finish(run, verdicts_of(run))
    assert recorder.errors == []
    whole = store.load(run.id)
    assert whole.result.to_dict() == run.to_dict()
    assert len(whole.verdicts) == 3


def test_a_run_whose_process_is_gone_is_lost(store: RunStore) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid names no process now
    run = make_run()
    meta = RunMeta(host=os.uname().nodename, pid=child.pid)
    store.begin(
        started(run),
        meta,
    )
    store.add_interval(run.id, run.intervals[1], late_tolerance=0.02)
    back = store.load(run.id).result
    assert (back.stop_reason, back.complete) == (LOST, False)
    assert back.total().requests == run.intervals[1].total().requests
    assert store.runs()[0].stop_reason == LOST


def test_a_run_on_another_host_is_lost_once_stale(store: RunStore) -> None:
    run = make_run()
    store.begin(
        started(run),
        RunMeta(host="far", pid=1),
    )
    assert store.load(run.id).result.stop_reason == RUNNING
    old = (datetime.now(UTC) - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    store._db.execute("UPDATE redline_runs SET updated_at = ?", (old,))
    assert store.load(run.id).result.stop_reason == LOST


def test_mark_stopped_only_touches_running_runs(store: RunStore) -> None:
    run = make_run()
    store.begin(
        started(run),
        META,
    )
    store.mark_stopped(run.id, "interrupted")
    assert store.load(run.id).result.stop_reason == "interrupted"
    store.save(run, META)
    store.mark_stopped(run.id, "crashed")
    assert store.load(run.id).result.stop_reason == "completed"


def test_lookup_by_prefix_latest_and_clear_errors(store: RunStore) -> None:
    store.save(make_run("20261128T090000Z-aaaaaa", started_at="2026-11-28T09:00:00.000Z"), META)
    store.save(make_run("20261128T090000Z-aabbbb", started_at="2026-11-28T09:00:00.000Z"), META)
    store.save(make_run("20261128T100000Z-cccccc", started_at="2026-11-28T10:00:00.000Z"), META)
    assert store.resolve("latest") == "20261128T100000Z-cccccc"
    assert store.resolve("20261128T10") == "20261128T100000Z-cccccc"
    assert store.resolve("20261128T090000Z-aaaaaa") == "20261128T090000Z-aaaaaa"
    with pytest.raises(StoreError, match="matches several runs"):
        store.resolve("20261128T0900")
    with pytest.raises(StoreError, match=r"no run '2025'"):
        store.load("2025")
    with pytest.raises(StoreError, match="no run"):
        store.resolve("%")  # not a pattern


def test_filters_by_plan_labels_and_time(store: RunStore) -> None:
    main = RunMeta(labels={"branch": "main"})
    feature = RunMeta(labels={"branch": "feature", "pr": "7"})
    store.save(make_run("r1", started_at="2026-11-01T08:00:00.000Z", plan="shop"), main)
    store.save(make_run("r2", started_at="2026-11-20T08:00:00.000Z", plan="shop"), feature)
    store.save(make_run("r3", started_at="2026-11-27T08:00:00.000Z", plan="search"), main)

    def ids(**filters: object) -> list[str]:
        return [info.id for info in store.runs(**filters)]  # type: ignore[arg-type]

    assert ids() == ["r3", "r2", "r1"]
    assert ids(plan="shop") == ["r2", "r1"]
    assert ids(labels={"branch": "main"}) == ["r3", "r1"]
    assert ids(labels={"branch": "feature", "pr": "7"}) == ["r2"]
    assert ids(labels={"branch": "feature", "pr": "8"}) == []
    assert ids(since=parse_time("2026-11-20")) == ["r3", "r2"]
    assert ids(until=parse_time("2026-11-20T08:00")) == ["r1"]
    assert ids(plan="shop", since=parse_time("2026-11-02"), until=parse_time("2026-11-30")) == [
        "r2"
    ]
    assert ids(limit=1) == ["r3"]


def test_schema_is_migrated_once_and_newer_stores_are_refused(tmp_path: Path) -> None:
    location = tmp_path / "runs.db"
    with open_store(location) as store:
        assert store.schema_version() == len(MIGRATIONS)
        store.save(make_run(), META)
    with open_store(location) as store:  # nothing to do the second time
        assert store.schema_version() == len(MIGRATIONS)
    later = Migration(
        len(MIGRATIONS) + 1,
        "a column a later redline adds",
        ("ALTER TABLE redline_runs ADD COLUMN cost {real}",),
    )
    with open_store(location, migrations=(*MIGRATIONS, later)) as store:
        assert store.schema_version() == len(MIGRATIONS) + 1
        assert store.load("latest").result.to_dict() == make_run().to_dict()
    with pytest.raises(StoreError, match=rf"schema version {later.version} was written by a newer"):
        open_store(location)


def test_migrations_apply_on_postgres_too(postgres_url: str) -> None:
    with open_store(postgres_url) as store:
        assert store.schema_version() == len(MIGRATIONS)
        tables = store._db.query(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'redline_%'"
        )
    assert {t for (t,) in tables} >= {"redline_runs", "redline_intervals", "redline_run_labels"}


def test_open_errors_name_the_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        open_store(tmp_path)
    with pytest.raises(StoreError, match="no run store here yet"):
        open_store(tmp_path / "missing.db", create=False)
    assert not (tmp_path / "missing.db").exists()
    (tmp_path / "junk.db").write_bytes(b"this is not a database, just bytes" * 100)
    with pytest.raises(StoreError, match=r"junk\.db"):
        open_store(tmp_path / "junk.db")
    # Nothing listens on port 1 of loopback; the password must not appear in the error.
    with pytest.raises(StoreError, match="cannot connect") as caught:
        open_store("postgresql://u:hunter22@127.0.0.1:1/db")
    assert "hunter22" not in str(caught.value)
    assert "[redacted]" in str(caught.value)


def test_a_failing_store_never_stops_the_recorder(tmp_path: Path) -> None:
    store = open_store(tmp_path / "runs.db")
    recorder = store.recorder(META)
    run = make_run()
    recorder.on_start(started(run))
    store.close()
    recorder.on_interval(run.intervals[0])
    assert not recorder.finish(run)
    assert recorder.errors
    assert all("runs.db" in e for e in recorder.errors)


def test_sqlite_file_holds_json_any_reader_can_query(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs.db") as store:
        store.save(make_run(), META)
    with sqlite3.connect(tmp_path / "runs.db") as conn:
        (count,) = conn.execute(
            "SELECT json_extract(data, '$.endpoints.checkout.requests') FROM redline_intervals "
            "WHERE idx = 1"
        ).fetchone()
    assert count == 90


@given(st.lists(st.from_regex(r"[a-z][a-z0-9_.-]{0,8}=[^\s=]{0,8}", fullmatch=True), max_size=5))
def test_labels_parse_back(items: list[str]) -> None:
    labels = parse_labels(items)
    # key to value, the last of a repeated key winning (as --label given twice)
    expected = {key: value for key, _, value in (i.partition("=") for i in items)}
    assert labels == expected


def test_bad_labels_and_times_are_explained() -> None:
    with pytest.raises(ValueError, match='expected a label like "branch=main"'):
        parse_labels(["branch"])
    with pytest.raises(ValueError, match="expected a date"):
        parse_time("last tuesday")
    with pytest.raises(ValueError, match="expected a date"):
        parse_time("2026")  # a bare number is neither a date nor an age


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_times_sort_like_the_moments_they_name(moment: datetime) -> None:
    stamp = parse_time(moment.isoformat())
    assert stamp.endswith("Z")
    assert len(stamp) == len("2026-11-28T09:00:00.000Z")
    later = parse_time((moment + timedelta(milliseconds=1)).isoformat())
    assert stamp < later


def test_ages_count_back_from_now() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_time("12h", now=now) == "2026-11-28T00:00:00.000Z"
    assert parse_time("7d", now=now) == "2026-11-21T12:00:00.000Z"
    assert parse_time("2026-11-28T09:30+01:00", now=now) == "2026-11-28T08:30:00.000Z"
    assert parse_time("20261128", now=now) == "2026-11-28T00:00:00.000Z"  # ISO basic form


def test_intervals_a_failed_write_missed_are_written_at_finish(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    run = make_run()
    with open_store(path) as store:
        recorder = store.recorder(META)
        # A start that differs from the end (default workers and tolerance): the finish
        # must rewrite the run's header, not only add what is missing.
        recorder.on_start(
            RunResult(id=run.id, plan=run.plan, started_at=run.started_at, intervals=(),
                      complete=False, stop_reason=RUNNING)
        )  # fmt: skip
        recorder.on_interval(run.intervals[0])
        # Another process takes the table away for a moment: the next write fails.
        with sqlite3.connect(path) as other:
            other.execute("ALTER TABLE redline_intervals RENAME TO hidden")
        recorder.on_interval(run.intervals[1])
        with sqlite3.connect(path) as other:
            other.execute("ALTER TABLE hidden RENAME TO redline_intervals")
        for item in run.intervals[2:]:
            recorder.on_interval(item)
        assert len(recorder.errors) == 1
        assert "no such table" in recorder.errors[0]
        assert recorder.finish(run)
        assert recorder.stored
        assert store.load(run.id).result.to_dict() == run.to_dict()


def test_analysis_and_the_target_report_are_kept_with_the_run(store: RunStore) -> None:
    from redline.core import TargetReport, TargetVerdict, WatchedThing

    run = make_run("kept")
    target = TargetReport(
        watched=(WatchedThing("serve", "process", cores=1.0),),
        samples={"serve": tuple({"interval": float(i), "cpu_cores": 0.5} for i in range(3))},
        verdict=TargetVerdict("none", "no resource of serve saturated: CPU 50% of its one core"),
    )
    analysis = {"drift": {"slope_ms_per_min": 0.5}}
    store.save(run, META, verdicts_of(run), analysis=analysis, target=target)
    loaded = store.load(run.id)
    assert loaded.target == target
    assert loaded.analysis == analysis
    bare = make_run("bare")
    store.save(bare, META)
    assert store.load(bare.id).target is None


def test_a_cluster_runs_hosts_and_control_timeline_are_stored(store: RunStore) -> None:
    base = make_run()
    hosts = (
        GeneratorHost("h1", "tcp://10.0.0.1:1", 0.75, capacity=3),
        GeneratorHost("h2", "tcp://10.0.0.2:1", 0.25, lost_at=3, lost_reason="left"),
    )
    intervals = tuple(
        dataclasses.replace(
            i,
            hosts={"h1": GeneratorInterval(sent=7), **({"h2": GeneratorInterval(sent=2)}
                                                    if i.index < 3 else {})},
            missing=0.25 if i.index >= 3 else 0.0,
        )
        for i in base.intervals
    )  # fmt: skip
    control = (ControlEvent(2.5, "pause"), ControlEvent(3.0, "rate", 450.0))
    run = dataclasses.replace(base, intervals=intervals, hosts=hosts, control=control)
    store.save(run, META, verdicts_of(run))
    back = store.load(run.id).result
    assert back.hosts == hosts
    assert back.control == control
    assert [i.missing for i in back.intervals] == [i.missing for i in intervals]
    assert back.generator().hosts == run.generator().hosts


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_decision_records_are_kept_newest_first_in_either_backend(
    backend: str, tmp_path: Path, postgres_url: str
) -> None:
    location = str(tmp_path / "runs.db") if backend == "sqlite" else postgres_url
    with open_store(location) as store:
        subject = f"shop-canary-{backend}-{tmp_path.name}"
        first = store.add_decision(
            "rollout", subject, "promote", {"step": 1, "weight": 5.0, "score": 100.0}
        )
        second = store.add_decision(
            "rollout", subject, "rollback", {"step": 2, "weight": 25.0, "evidence": ["p99 high"]}
        )
        kept = store.decisions(subject=subject)
    assert [d.id for d in kept] == [second, first]
    assert kept[0].decision == "rollback"
    assert kept[0].record == {"step": 2, "weight": 25.0, "evidence": ["p99 high"]}
    assert kept[1].to_dict()["record"]["score"] == 100.0
