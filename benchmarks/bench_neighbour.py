"""A noisy neighbour against the demo shop, without and with cpu.weight protection.

The shop (and nothing else of ours) runs on core 0; the generator and payments on core 1.
Three kinds of run, interleaved and repeated:

- ``alone``: the shop by itself;
- ``equal``: a CPU-hungry neighbour on core 0 in a cgroup of its own, the shop in a
  cgroup of its own, both at the default weight (100): no protection;
- ``protected``: the same neighbour, the shop's cgroup at cpu.weight 1000 (cpu.shares
  10240 on v1): its QoS.

It prints the median p99 of each kind, the neighbour's impact on p99 (equal vs alone,
protected vs alone) and how much of it the protection removed; it writes one HTML report
(``redline compare``: the protected runs against the unprotected ones, with intervals).

    python benchmarks/bench_neighbour.py --rounds 3 --seconds 20 --rate 120
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _common import free_port, wait_for_port
from redline import run
from redline.cli._main import main as redline_main
from redline.demo import generate
from redline.plan import plan_from_dict

SHOP_CORE = 0
LOAD_CORE = 1
REQUESTS = [
    {"name": "product", "path": "/products/${randint(1, 2000)}", "weight": 8},
    {"name": "search", "path": "/search?q=${choice(lamp, oak, copper, mug)}", "weight": 1},
]


@contextlib.contextmanager
def shop(workdir: Path) -> Iterator[tuple[str, int]]:
    db = workdir / "shop.db"
    generate(db, products=2000, reviews_each=12)
    ports = {"payments": free_port(), "shop": free_port()}
    processes = []
    try:
        for name, core, extra in (
            ("payments", LOAD_CORE, []),
            ("shop", SHOP_CORE, ["--payments", f"http://127.0.0.1:{ports['payments']}",
                                 "--db", str(db), "--workers", "8"]),
        ):  # fmt: skip
            processes.append(
                subprocess.Popen(
                    [
                        "taskset",
                        "-c",
                        str(core),
                        sys.executable,
                        "-m",
                        "redline.demo",
                        name,
                        *extra,
                        "--port",
                        str(ports[name]),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            wait_for_port(ports[name], timeout=30)
        yield f"http://127.0.0.1:{ports['shop']}", processes[-1].pid
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def plan(target: str, pid: int, kind: str, seconds: float, rate: float) -> object:
    schedule = []
    if kind != "alone":
        weight = 1000 if kind == "protected" else 100
        schedule = [
            {"name": "qos", "at": "0s", "for": f"{seconds + 5}s",
             "cgroup": {"target": f"pid:{pid}", "cpu_weight": weight}},
            {"name": "neighbour", "at": "0s", "for": f"{seconds + 5}s",
             "neighbour": {"cpu": 1, "cpus": str(SHOP_CORE), "weight": 100}},
        ]  # fmt: skip
    return plan_from_dict(
        {"name": f"neighbour-{kind}", "target": target, "requests": REQUESTS,
         "load": {"rate": f"{rate}/s"}, "duration": f"{seconds}s", "warmup": "3s",
         "timeouts": {"connect": "1s", "read": "5s"}, "generator": {"late_tolerance": 0.9},
         "faults": {"schedule": schedule}},
        source=f"bench_neighbour {kind}",
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=120)
    parser.add_argument("--html", type=Path, default=Path("neighbour.html"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_neighbour needs root (cgroups)")
    os.sched_setaffinity(0, {LOAD_CORE})  # the generator's workers inherit it
    p99: dict[str, list[float]] = {"alone": [], "equal": [], "protected": []}
    files: dict[str, list[str]] = {k: [] for k in p99}
    with tempfile.TemporaryDirectory() as tmp, shop(Path(tmp)) as (target, pid):
        for round_ in range(args.rounds):
            for kind in p99:  # interleaved: drift in the machine hits every kind alike
                out = Path(tmp) / f"{kind}-{round_}.json"
                outcome = run(plan(target, pid, kind, args.seconds, args.rate), out=out)
                total = outcome.result.total()
                p99[kind].append(total.latency_ms["p99"])
                files[kind].append(str(out))
                print(f"round {round_ + 1} {kind:>9}: p99 {total.latency_ms['p99']:8.1f} ms, "
                      f"{total.requests} requests, {total.errors} errors", flush=True)  # fmt: skip
        medians = {k: statistics.median(v) for k, v in p99.items()}
        print()
        for kind, value in medians.items():
            print(f"{kind:>9}: median p99 {value:8.1f} ms over {args.rounds} runs")
        equal = medians["equal"] - medians["alone"]
        protected = medians["protected"] - medians["alone"]
        print(f"neighbour's impact on p99: +{equal:.1f} ms unprotected, +{protected:.1f} ms "
              f"with cpu.weight 1000 ({protected / equal:.2f}x of it)" if equal > 0 else
              "the neighbour made no difference to p99 unprotected")  # fmt: skip
        redline_main(
            ["compare", ",".join(files["equal"]), ",".join(files["protected"]),
             "--html", str(args.html)]
        )  # fmt: skip
        print(f"report: {args.html} (protected runs against unprotected ones)")


if __name__ == "__main__":
    main()
