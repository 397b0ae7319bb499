"""What watching the target costs it, and whether a memory verdict is right every time.

    python benchmarks/bench_observe.py overhead [--pairs 6] [--seconds 20]
    python benchmarks/bench_observe.py soak [--runs 5] [--seconds 120]

``overhead``: the demo shop (pinned to CPU 0, its payments beside it) at 80% of its
redline (found first, or ``--rate``), in interleaved pairs: one run that only loads it,
one that also watches its process, its metrics endpoint and the host and profiles it
with py-spy (the generator on CPU 1). Printed: median throughput, p99 and shop CPU per
request of either, and the cost of watching as ratios. Targets: throughput cost <= 3%,
p99 cost <= 5%.

``soak``: the planted target's leaking path (64 KiB kept per request) and its flat path
(64 KiB allocated and freed), each served and watched over ``--seconds`` of 20 req/s,
``--runs`` times, the two soaks side by side. Printed: each run's memory slope, its 95%
interval and the verdict. Target: growth named in every leaking run and in no flat one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import LOAD_CORE, TARGET_CORE, free_port, median, table, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
PLANTED = ROOT / "tests" / "observe" / "planted.py"
REQUESTS = [
    {"name": "product", "path": "/products/${randint(1, 2000)}", "weight": 8},
    {"name": "search", "path": "/search?q=${choice(lamp, oak, copper, mug)}", "weight": 1},
]


@contextlib.contextmanager
def demo_shop(workdir: Path) -> Iterator[tuple[str, int]]:
    """The demo's shop and payments, pinned to the target's core; the shop's URL and pid."""
    from redline.demo import generate

    db = workdir / "shop.db"
    generate(db, products=2000, reviews_each=12)
    pay, shop = free_port(), free_port()
    pin = ["taskset", "-c", TARGET_CORE]
    processes = []
    try:
        for argv, port in (
            (["payments"], pay),
            (["shop", "--payments", f"http://127.0.0.1:{pay}", "--db", str(db)], shop),
        ):
            process = subprocess.Popen(
                [*pin, sys.executable, "-m", "redline.demo", *argv, "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            processes.append(process)
            wait_for_port(port, timeout=30)
        yield f"http://127.0.0.1:{shop}", processes[-1].pid
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def redline_json(plan: dict[str, Any], *, find: bool = False) -> dict[str, Any]:
    """Run ``redline run`` (or ``find``) on the load core; its JSON document."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plan.yaml"
        path.write_text(json.dumps(plan))
        out = Path(tmp) / "out.json"
        command = ["find", str(path), "--step", "4s", "--repeats", "1"] if find else [
            "run", str(path), "--quiet"
        ]  # fmt: skip
        subprocess.run(
            ["taskset", "-c", LOAD_CORE, sys.executable, "-m", "redline", *command,
             "--no-store", "--out", str(out)],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=900,
        )  # fmt: skip
        return dict(json.loads(out.read_text()))


def overhead(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, demo_shop(Path(tmp)) as (url, pid):
        base = {"name": "shop", "target": url, "requests": REQUESTS, "workers": 1,
                "warmup": "2s", "generator": {"late_tolerance": 0.2}}  # fmt: skip
        rate = args.rate
        if rate is None:
            found = redline_json(
                {**base, "load": {"rate": "100/s"}, "duration": "4s", "slo": ["p99 < 300ms"]},
                find=True,
            )
            rate = found["rate"] or found["last_good"]
            print(f"redline of the shop: {rate:.0f} req/s (the runs go at 80%: {0.8 * rate:.0f})")
        plan = {**base, "load": {"rate": f"{0.8 * rate:.0f}/s"}, "duration": f"{args.seconds}s"}
        watch = {
            "all": [f"pid:{pid}", f"prometheus:{url}/metrics", "host"],
            "process": [f"pid:{pid}"],
        }[args.watch]
        profile = {"rate": args.profile_rate} if not args.no_profile else False
        watched = {**plan, "observe": {"watch": watch, "profile": profile}}
        rows: dict[str, list[tuple[float, float, float | None]]] = {"plain": [], "watched": []}
        for pair in range(args.pairs):
            order = ("plain", "watched") if pair % 2 == 0 else ("watched", "plain")
            for kind in order:
                started = _cpu_of(pid)
                document = redline_json(plan if kind == "plain" else watched)
                used = _cpu_of(pid) - started
                total = document["summary"]["total"]
                rows[kind].append(
                    (total["rps"], total["latency_ms"]["p99"], used / total["requests"])
                )
            print(f"pair {pair + 1}: " + ", ".join(
                f"{k} {rows[k][-1][0]:.0f} req/s p99 {rows[k][-1][1]:.1f} ms" for k in rows
            ), flush=True)  # fmt: skip
    med = {k: [median([r[i] for r in v]) for i in range(3)] for k, v in rows.items()}
    print(f"\n== the demo shop at {0.8 * rate:.0f} req/s, {args.pairs} interleaved pairs of "
          f"{args.seconds} s, medians")  # fmt: skip
    print(table(
        [[k, f"{m[0]:,.1f}", f"{m[1]:.1f}", f"{m[2] * 1e3:.3f}"] for k, m in med.items()],
        ["runs", "req/s", "p99 ms", "shop CPU-ms per request"],
    ))  # fmt: skip
    cost_rps = 1 - med["watched"][0] / med["plain"][0]
    cost_p99 = med["watched"][1] / med["plain"][1] - 1
    cost_cpu = med["watched"][2] / med["plain"][2] - 1
    print(f"throughput cost of watching: {cost_rps:+.1%} (target <= 3%)")
    print(f"p99 cost of watching: {cost_p99:+.1%} (target <= 5%)")
    print(f"the shop's CPU per request: {cost_cpu:+.1%}")


def _cpu_of(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def soak_run(path: str, seconds: int) -> dict[str, Any]:
    port = free_port()
    plan = {
        "name": f"soak{path.replace('/', '-')}",
        "target": f"http://127.0.0.1:{port}",
        "requests": [{"path": path}],
        "load": {"rate": "20/s"},
        "duration": f"{seconds}s",
        "workers": 1,
        "observe": {"serve": {"command": f"{sys.executable} {PLANTED} {port}",
                              "cpus": TARGET_CORE}},
    }  # fmt: skip
    growth = redline_json(plan)["target"]["memory_growth"]
    return dict(growth) if growth else {}


def soak(args: argparse.Namespace) -> None:
    rows = []
    named = {"/leak": 0, "/flat": 0}
    for number in range(args.runs):
        with ThreadPoolExecutor(2) as pool:
            found = dict(zip(("/leak", "/flat"), pool.map(
                lambda p: soak_run(p, args.seconds), ("/leak", "/flat")
            ), strict=True))  # fmt: skip
        for path, growth in found.items():
            mib = 60 / 1024 / 1024
            rows.append([number + 1, path, f"{growth['slope_bytes_per_s'] * mib:+.3f}",
                         f"{growth['low'] * mib:+.3f} .. {growth['high'] * mib:+.3f}",
                         "growing" if growth["growing"] else "none"])  # fmt: skip
            named[path] += bool(growth["growing"])
        print(rows[-2], rows[-1], flush=True)
    print(f"\n== memory over {args.seconds} s soaks at 20 req/s, {args.runs} runs each")
    print(table(rows, ["run", "path", "MiB/min", "95% CI", "verdict"]))
    print(f"growth named: leaking {named['/leak']} of {args.runs}, flat {named['/flat']} of "
          f"{args.runs} (target: {args.runs} of {args.runs} and 0)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    cost = sub.add_parser("overhead")
    cost.add_argument("--pairs", type=int, default=6)
    cost.add_argument("--seconds", type=int, default=20)
    cost.add_argument("--rate", type=float, help="the shop's redline (default: find it)")
    cost.add_argument(
        "--watch", choices=("all", "process"), default="all",
        help="all: the process, its metrics and the host; process: the process alone",
    )  # fmt: skip
    cost.add_argument("--no-profile", action="store_true", help="watch without py-spy")
    cost.add_argument("--profile-rate", type=float, default=19.0, help="py-spy samples/s")
    leak = sub.add_parser("soak")
    leak.add_argument("--runs", type=int, default=5)
    leak.add_argument("--seconds", type=int, default=120)
    args = parser.parse_args()
    if not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        sys.exit("needs taskset and two cores")
    started = time.monotonic()
    overhead(args) if args.what == "overhead" else soak(args)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
