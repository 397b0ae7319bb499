"""What keeping runs costs: the run store beside a plain append-only JSON-lines file.

    python benchmarks/bench_store.py [--intervals 600] [--endpoints 5] [--repeat 3]
                                     [--postgres postgresql://postgres@127.0.0.1/postgres]

A run's coordinator writes one interval per second. This measures, for realistic
intervals (each endpoint with two HdrHistograms of 1,000 lognormal latencies):

- the time to record one interval as it arrives (SQLite, PostgreSQL), against the
  cheapest durable alternative: appending the same JSON to a file and fsyncing it;
- bytes kept per hour of run;
- for a one-hour run: the time to finish it after recording it live (summary and
  verdicts), to save it whole (an import), to read it back whole (``redline show``,
  ``redline export``), and its size.

Reading and writing happen in the coordinator, never in a worker: the figure to hold
against is the 1 s interval, not a request.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg

from _common import median, table
from redline.core import EndpointInterval, GeneratorInterval, Histogram, IntervalSnapshot, RunResult
from redline.store import RunMeta, open_store

PERCENT = 100.0


def make_interval(index: int, endpoints: int, rng: np.random.Generator) -> IntervalSnapshot:
    parts = {}
    for e in range(endpoints):
        latency, actual = Histogram(), Histogram()
        values = rng.lognormal(7.5, 0.8, 1000).astype(np.int64) + 1
        latency.record_values(values)
        actual.record_values(values // 2 + 1)
        latency.compact()
        actual.compact()
        parts[f"endpoint-{e}"] = EndpointInterval(
            requests=1000,
            errors=3,
            status={200: 997, 503: 3},
            error_classes={},
            bytes_in=120_000,
            bytes_out=80_000,
            latency=latency,
            latency_actual=actual,
        )
    return IntervalSnapshot(
        index=index,
        start_s=float(index),
        duration_s=1.0,
        endpoints=parts,
        generator=GeneratorInterval(scheduled=1000 * endpoints, sent=1000 * endpoints),
    )


def cycle(distinct: list[IntervalSnapshot], count: int) -> list[IntervalSnapshot]:
    """``count`` consecutive intervals made of the ``distinct`` ones in turn."""
    return [
        dataclasses.replace(distinct[i % len(distinct)], index=i, start_s=float(i))
        for i in range(count)
    ]


def header(run_id: str) -> RunResult:
    return RunResult(
        id=run_id,
        plan={"name": "bench", "target": "http://127.0.0.1:1"},
        started_at="2026-11-28T00:00:00.000Z",
        intervals=(),
        complete=False,
        stop_reason="running",
    )


def time_store(location: str, intervals: list[IntervalSnapshot], run_id: str) -> list[float]:
    with open_store(location) as store:
        store.begin(header(run_id), RunMeta(host="bench"))
        times = []
        for item in intervals:
            start = time.perf_counter()
            store.add_interval(run_id, item, late_tolerance=0.01)
            times.append(time.perf_counter() - start)
        return times


def time_jsonl(path: Path, intervals: list[IntervalSnapshot]) -> list[float]:
    times = []
    with path.open("a", encoding="utf-8") as handle:
        for item in intervals:
            start = time.perf_counter()
            handle.write(json.dumps(item.to_dict(late_tolerance=0.01)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            times.append(time.perf_counter() - start)
    return times


@contextlib.contextmanager
def scratch_database(admin: str) -> Iterator[str]:
    """A database of its own next to ``admin``'s, dropped afterwards."""
    name = f"redline_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, default=600)
    parser.add_argument("--endpoints", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a server to create a scratch database on (dropped afterwards)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    distinct = [make_interval(i, args.endpoints, rng) for i in range(60)]
    intervals = cycle(distinct, args.intervals)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.postgres) as postgres:
        results: dict[str, list[list[float]]] = {"sqlite": [], "postgres": [], "jsonl": []}
        for rep in range(args.repeat):
            results["jsonl"].append(time_jsonl(Path(tmp) / f"r{rep}.jsonl", intervals))
            results["sqlite"].append(time_store(f"{tmp}/runs.db", intervals, f"s{rep}"))
            results["postgres"].append(time_store(postgres, intervals, f"bench-{rep}"))
        base = median([median(r) for r in results["jsonl"]])
        for name, reps in results.items():
            med = median([median(r) for r in reps])
            rows.append(
                (
                    name,
                    f"{med * 1e3:.3f}",
                    f"{median([p99(r) for r in reps]) * 1e3:.3f}",
                    f"{med * PERCENT:.3f}%",
                    f"{med / base:.2f}x",
                )
            )
        print(
            f"record one interval ({args.endpoints} endpoints, median of {args.repeat} runs "
            f"of {args.intervals} intervals)"
        )
        print(table(rows, ("writer", "median ms", "p99 ms", "of a 1 s interval", "vs jsonl")))

        hour = cycle(distinct, 3600)
        run = RunResult(
            id="hour",
            plan={"name": "bench", "target": "http://127.0.0.1:1"},
            started_at="2026-11-28T01:00:00.000Z",
            intervals=tuple(hour),
        )
        size_rows = []
        for name, location in (("sqlite", f"{tmp}/hour.db"), ("postgres", postgres)):
            time_store(location, hour, "hour")  # recorded live, interval by interval
            with open_store(location) as store:
                start = time.perf_counter()
                store.save(run, RunMeta(host="bench"))  # what the end of a live run costs
                finished = time.perf_counter() - start
                whole = dataclasses.replace(run, id="whole")
                start = time.perf_counter()
                store.save(whole, RunMeta(host="bench"))  # an imported run, in one go
                saved = time.perf_counter() - start
                loads = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    store.load("hour")
                    loads.append(time.perf_counter() - start)
                if name == "postgres":
                    (size,) = store._db.query(
                        "SELECT sum(pg_column_size(data)) FROM redline_intervals "
                        "WHERE run_id = 'hour'"
                    )[0]
                else:
                    store._db.execute("DELETE FROM redline_runs WHERE id = 'whole'")
                    store._db.execute("VACUUM")
                    size = Path(f"{tmp}/hour.db").stat().st_size
            size_rows.append(
                (
                    name,
                    f"{finished:.2f}",
                    f"{saved:.2f}",
                    f"{median(loads):.2f}",
                    f"{size / 1e6:.1f}",
                )
            )
        print()
        print(f"a one-hour run ({args.endpoints} endpoints at 1,000 req/s each)")
        print(
            table(
                size_rows,
                ("store", "finish live run s", "save whole s", "load whole s", "MB kept"),
            )
        )


if __name__ == "__main__":
    main()
