"""Does a probe stay flat? Memory of ``run_probes`` over many runs, and what a run costs.

    python benchmarks/bench_probe.py [--runs 200] [--every 0.2]

Runs a smoke plan (20 req/s for 0.5 s) against redline's test server, over and over, as
``redline probe`` does (no store: the store keeps every run by design), and prints the
process's resident memory after the first 20 runs and at the end, with the growth per
100 runs, and the median wall time of one probe run (worker start included). The
metrics' record is fixed-size by construction; this measures everything else around it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import psutil

from redline.plan import plan_from_dict
from redline.rollout import ProbeMetrics
from redline.runner import run_probes
from redline.testing import Behaviour, TestServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--every", type=float, default=0.2)
    args = parser.parse_args()
    process = psutil.Process()
    metrics = ProbeMetrics()
    marks: dict[int, float] = {}
    times: list[float] = []
    last = [time.monotonic()]

    def on_probe(number: int, outcome: str) -> None:
        now = time.monotonic()
        times.append(now - last[0])
        last[0] = now
        if number in (20, args.runs):
            marks[number] = process.memory_info().rss / 2**20
        assert outcome == "pass", outcome

    with TestServer(Behaviour(latency=0.002), seed=1).running() as server:
        plan = plan_from_dict(
            {
                "name": "smoke",
                "target": server.url,
                "requests": [{"name": "home", "path": "/"}],
                "load": {"rate": "20/s"},
                "duration": "0.5s",
                "workers": 1,
            },
            source="bench",
        )
        run_probes(plan, every_s=args.every, metrics=metrics, count=args.runs, on_probe=on_probe)
    growth = (marks[args.runs] - marks[20]) / (args.runs - 20) * 100
    print(f"{args.runs} probe runs, one every {args.every:g}s (or as fast as they finish)")
    print(f"RSS after 20 runs: {marks[20]:.1f} MiB; after {args.runs}: {marks[args.runs]:.1f} MiB")
    print(f"growth: {growth:+.2f} MiB per 100 runs")
    print(f"one probe run, start to start: median {statistics.median(times[1:]):.2f}s")
    print(f"runs recorded: {metrics.runs('smoke')}")


if __name__ == "__main__":
    main()
