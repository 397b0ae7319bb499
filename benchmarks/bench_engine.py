"""redline's engine side by side with wrk, hey and Locust against one pinned nginx.

    python benchmarks/bench_engine.py [--duration 10] [--repeat 3] [--baseline-python PY]

Prints medians over ``--repeat`` runs, ratios to wrk, CPU per request, the open model at
20,000 req/s, and what each tool reports for a server that stalls 200 ms every 2 s. With
``--baseline-python`` (the interpreter of a venv holding another redline, an older
commit say), that redline runs too, interleaved with this one, and both are compared.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

from _common import (
    median,
    pinned_nginx,
    pinned_testserver,
    redline_argv,
    require,
    run_locust,
    run_pinned,
    table,
)

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Get(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/")
"""


def redline(url: str, duration: int, *load: str, python: str = sys.executable) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        timed = run_pinned(redline_argv(url, *load, seconds=duration, out=out, python=python))
        data = json.loads(out.read_text())
    total = data["summary"]["total"]
    return {
        "requests": total["requests"],
        "rps": total["rps"],
        "cpu_s": timed.cpu_s,
        "p50_ms": total["latency_ms"]["p50"],
        "p99_ms": total["latency_ms"]["p99"],
        "generator": data["generator"],
        "errors": total["errors"],
    }


def wrk(url: str, duration: int, connections: int = 50) -> dict:
    timed = run_pinned(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url])
    requests = int(re.search(r"(\d+) requests in", timed.stdout).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", timed.stdout)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return {
        "requests": requests,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", timed.stdout).group(1)),
        "cpu_s": timed.cpu_s,
        "p99_ms": float(p99.group(1)) * scale,
    }


def hey(url: str, duration: int) -> dict:
    timed = run_pinned(["hey", "-z", f"{duration}s", "-c", "50", url])
    responses = sum(int(n) for n in re.findall(r"\[\d+\]\s+(\d+) responses", timed.stdout))
    return {
        "requests": responses,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", timed.stdout).group(1)),
        "cpu_s": timed.cpu_s,
    }


def locust(url: str, duration: int, binary: str) -> dict:
    timed, requests, rps = run_locust(url, duration, binary, LOCUSTFILE)
    return {"requests": requests, "rps": rps, "cpu_s": timed.cpu_s}


def open_table(runs: list[tuple[str, dict]], rate: float) -> str:
    """The open-model runs: achieved rate, drops, lateness, latency, CPU per request."""
    rows = []
    for i, r in runs:
        gen = r["generator"]
        lag = gen.get("lag_ms") or {}
        rows.append(
            [
                i,
                f"{gen['achieved_rps']:,.1f}",
                f"{gen['achieved_rps'] / rate - 1:+.3%}",
                gen["dropped"],
                gen["late"],
                f"{lag.get('p99', float('nan')):.3f}",
                f"{r['p50_ms']:.3f}",
                f"{r['p99_ms']:.3f}",
                f"{r['cpu_s'] / r['requests'] * 1e6:.1f}",
            ]
        )
    headers = ["run", "achieved req/s", "vs target", "dropped", "late", "lateness p99 ms",
               "p50 ms", "p99 ms", "CPU us/req"]  # fmt: skip
    return table(rows, headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--locust", default=shutil.which("locust"), help="the locust executable")
    parser.add_argument("--skip", action="append", default=[], help="closed, open, capacity, stall")
    parser.add_argument(
        "--baseline-python", help="also run the redline of this interpreter, interleaved"
    )
    args = parser.parse_args()
    base = args.baseline_python
    require("nginx", "wrk", "hey", "taskset")
    d = args.duration

    if "closed" not in args.skip:
        print(
            f"\n== closed model, 50 connections, {d} s, one process each, "
            "nginx and tool on separate cores"
        )
        tools = {
            "redline": lambda url: redline(url, d, "--vus", "50"),
            "wrk": lambda url: wrk(url, d),
            "hey": lambda url: hey(url, d),
        }
        if base:
            tools["redline (baseline)"] = lambda url: redline(url, d, "--vus", "50", python=base)
        if args.locust:
            tools["locust (FastHttpUser)"] = lambda url: locust(url, d, args.locust)
        results: dict[str, list[dict]] = {name: [] for name in tools}
        with pinned_nginx() as url:
            for _ in range(args.repeat):
                for name, tool in tools.items():  # interleaved, so drift hits every tool alike
                    results[name].append(tool(url))
        wrk_rps = median([r["rps"] for r in results["wrk"]])
        redline_rps = median([r["rps"] for r in results["redline"]])
        rows = []
        for name, runs in results.items():
            rps = median([r["rps"] for r in runs])
            cpu_us = median([r["cpu_s"] / r["requests"] * 1e6 for r in runs])
            rows.append(
                [
                    name,
                    f"{rps:,.0f}",
                    f"{rps / wrk_rps:.2f}",
                    f"{redline_rps / rps:.1f}",
                    f"{cpu_us:.1f}",
                ]
            )
        print(
            table(rows, ["tool", "req/s (median)", "x wrk", "redline / tool", "CPU us per request"])
        )
        per_round = [r["rps"] / w["rps"] for r, w in zip(results["redline"], results["wrk"],
                                                          strict=True)]  # fmt: skip
        print(
            "redline / wrk per round: " + ", ".join(f"{x:.2f}" for x in per_round)
            + f" (target >= 0.90 in every round: {'met' if min(per_round) >= 0.9 else 'MISSED'})"
        )  # fmt: skip
        closed_cpu_us = median([r["cpu_s"] / r["requests"] * 1e6 for r in results["redline"]])

    if "open" not in args.skip:
        print(
            f"\n== open model at 20,000 req/s for {d} s against the same nginx "
            "(redline, one worker)"
        )
        versions = {"this": sys.executable, **({"baseline": base} if base else {})}
        runs = []
        with pinned_nginx() as url:
            for i in range(1, args.repeat + 1):
                for version, python in versions.items():  # interleaved
                    runs.append((f"{i} {version}", redline(url, d, "--rate", "20000/s",
                                                           python=python)))  # fmt: skip
        print(open_table(runs, 20000))
        open_cpu = median([r["cpu_s"] / r["requests"] * 1e6 for _, r in runs if "this" in _])
        if "closed" not in args.skip:
            ratio = open_cpu / closed_cpu_us
            print(
                f"CPU per request, open at 20k / closed: {open_cpu:.1f} / {closed_cpu_us:.1f} us "
                f"= {ratio:.2f}x (target <= 2x: {'met' if ratio <= 2 else 'MISSED'})"
            )

    if "capacity" not in args.skip:
        print(
            f"\n== one worker: its closed-model throughput, then the open model at 0.8x that "
            f"({d} s each, same nginx)"
        )
        rounds = []
        with pinned_nginx() as url:
            for i in range(1, args.repeat + 1):
                closed = redline(url, d, "--vus", "50")
                rate = round(0.8 * closed["rps"])
                opened = redline(url, d, "--rate", f"{rate}/s")
                rounds.append((i, closed["rps"], rate, opened))
        rows = []
        for i, closed_rps, rate, r in rounds:
            gen = r["generator"]
            lag = gen.get("lag_ms") or {}
            within = abs(gen["achieved_rps"] / rate - 1) <= 0.01 and not gen["dropped"]
            rows.append([
                i, f"{closed_rps:,.0f}", f"{rate:,}", f"{gen['achieved_rps']:,.1f}",
                f"{gen['achieved_rps'] / rate - 1:+.3%}", gen["dropped"],
                f"{lag.get('p99', float('nan')):.3f}", f"{r['p50_ms']:.3f}",
                "met" if within and lag.get("p99", 99) < 1 else "MISSED",
            ])  # fmt: skip
        print(table(rows, ["round", "closed req/s", "open target", "achieved", "vs target",
                           "dropped", "lateness p99 ms", "p50 ms", "target"]))  # fmt: skip

    if "stall" not in args.skip:
        print(f"\n== a server that stalls 200 ms every 2 s, {d} s (redline's test server, pinned)")
        with pinned_testserver("--stall-every", "2s", "--stall-for", "200ms") as url:
            open_run = redline(url, d, "--rate", "1000/s")
            closed_run = redline(url, d, "--vus", "50")
            wrk_run = wrk(url, d)
        print(
            table(
                [
                    [
                        "redline, open model 1,000 req/s",
                        f"{open_run['rps']:,.0f}",
                        f"{open_run['p99_ms']:.1f}",
                    ],
                    [
                        "redline, closed model 50 VUs",
                        f"{closed_run['rps']:,.0f}",
                        f"{closed_run['p99_ms']:.1f}",
                    ],
                    ["wrk, 50 connections", f"{wrk_run['rps']:,.0f}", f"{wrk_run['p99_ms']:.1f}"],
                ],
                ["measured by", "req/s", "p99 ms"],
            )
        )


if __name__ == "__main__":
    main()
