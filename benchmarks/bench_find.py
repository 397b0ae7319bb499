"""How close each way of finding a service's capacity gets, and what it costs in load time.

The target is redline's test server as an M/M/c queue (4 workers, exponential service of
mean 5 ms: capacity 800 req/s), pinned to its own core, with the objective p99 < 40 ms.
Its true redline, from the queueing formulas, is 669 req/s. Three methods, each repeated:

- ``breakpoint ramp``: k6's breakpoint test: a linear ramp (0 to 1,000 req/s over 60 s)
  with the objective as an abort rule; the answer is the rate at which it aborted (what
  a user reads off the chart). Run with ``redline run --type breakpoint``, which does
  what k6's executor and threshold do.
- ``stepped (Gatling-style)``: constant steps of 100 req/s, 10 s each; the answer is
  the last step that held.
- ``redline find``: geometric steps, bisection, repeats (5 s steps).

    python benchmarks/bench_find.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import LOAD_CORE, median, pinned_testserver, table

C, S, BOUND = 4, 0.005, 0.040

PLAN = """
name: queue
target: {url}
requests: [{{name: get, path: /}}]
load: {{rate: {rate}/s, arrivals: poisson}}
duration: {duration}s
warmup: 1s
workers: 1
generator: {{late_tolerance: 0.9}}
slo:
  - objective: p99 < 40ms
    abort: {abort}
    abort_after: 3s
"""


def erlang_c(c: int, offered: float) -> float:
    head = sum(offered**k / math.factorial(k) for k in range(c))
    tail = offered**c / math.factorial(c) * c / (c - offered)
    return tail / (head + tail)


def true_redline() -> float:
    mu = 1 / S

    def tail(t: float, lam: float) -> float:
        waits, theta = erlang_c(C, lam / mu), C * mu - lam
        waited = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
        return (1 - waits) * math.exp(-mu * t) + waits * waited

    def p99(lam: float) -> float:
        low, high = 0.0, 10.0
        for _ in range(100):
            mid = (low + high) / 2
            low, high = (mid, high) if tail(mid, lam) > 0.01 else (low, mid)
        return low

    low, high = 1.0, C * mu * 0.999999
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if p99(mid) <= BOUND else (low, mid)
    return low


def run_redline(argv: list[str]) -> tuple[str, float]:
    """Run redline on the load core; an objective that fails (exit 1) is an answer here."""
    start = time.monotonic()
    done = subprocess.run(
        ["taskset", "-c", LOAD_CORE, sys.executable, "-m", "redline", *argv],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    if done.returncode not in (0, 1, 3):
        raise RuntimeError(f"redline {argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout, time.monotonic() - start


def breakpoint_ramp(url: str, tmp: Path) -> tuple[float | None, float]:
    plan = tmp / "ramp.yaml"
    plan.write_text(PLAN.format(url=url, rate=1000, duration=60, abort="true"))
    out = tmp / "ramp.json"
    _, seconds = run_redline(["run", str(plan), "--type", "breakpoint", "--quiet", "--no-store",
                              "--out", str(out)])  # fmt: skip
    found = json.loads(out.read_text()).get("analysis", {}).get("breakpoint")
    return (found["rate"] if found else None), seconds


def stepped(url: str, tmp: Path) -> tuple[float | None, float]:
    last_good, seconds = None, 0.0
    for rate in range(100, 1001, 100):
        plan = tmp / "step.yaml"
        plan.write_text(PLAN.format(url=url, rate=rate, duration=10, abort="false"))
        out = tmp / "step.json"
        _, took = run_redline(["run", str(plan), "--quiet", "--no-store", "--out", str(out)])
        seconds += took
        verdict = json.loads(out.read_text())["verdicts"][0]
        if verdict["value"] is not None and verdict["value"] >= BOUND * 1000:
            break
        last_good = float(rate)
    return last_good, seconds


def find(url: str, tmp: Path) -> tuple[float | None, float]:
    plan = tmp / "find.yaml"
    plan.write_text(PLAN.format(url=url, rate=250, duration=5, abort="false"))
    out = tmp / "find.json"
    _, seconds = run_redline(["find", str(plan), "--step", "5s", "--no-store", "--out", str(out)])
    return json.loads(out.read_text())["rate"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    truth = true_redline()
    methods = {"breakpoint ramp (k6-style)": breakpoint_ramp, "stepped (Gatling-style)": stepped}
    methods["redline find"] = find
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        pinned_testserver("--latency", "5ms", "--exponential", "--workers", str(C)) as url,
    ):
        for name, method in methods.items():
            answers, times = [], []
            for _ in range(args.repeat):
                answer, seconds = method(url, Path(tmp))
                answers.append(answer)
                times.append(seconds)
                print(f"{name}: {answer} req/s in {seconds:.0f} s", file=sys.stderr)
            errors = [abs(a - truth) / truth for a in answers if a is not None]
            shown = ", ".join(f"{a:,.0f}" if a else "-" for a in answers)
            typical = f"{median(errors):.1%}" if errors else "-"
            worst = f"{max(errors):.1%}" if errors else "-"
            rows.append((name, shown, typical, worst, f"{median(times):.0f} s"))
    print(f"true redline of the M/M/{C} queue at p99 < {BOUND * 1000:.0f} ms: {truth:,.0f} req/s")
    print(table(rows, ["method", "answers (req/s)", "median error", "worst error", "time"]))


if __name__ == "__main__":
    main()
