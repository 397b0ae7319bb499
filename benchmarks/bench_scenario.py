"""CPU per request of a three-request journey: Python scenario vs declarative plan vs Locust.

    python benchmarks/bench_scenario.py [--duration 10] [--repeat 3]

All three run closed-model with 50 users against one nginx, each tool pinned to its
own core; CPU is user + system seconds of the tool's whole process tree.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _common import median, pinned_nginx, redline_argv, require, run_locust, run_pinned, table

SCENARIO = """
from redline.scenario import Session, scenario

target = {url!r}
load = {{"vus": 50}}

@scenario
async def journey(s: Session) -> None:
    await s.get("/", name="home")
    await s.get("/products", name="products")
    await s.get("/cart", name="cart")
"""

FLOW = """
target: {url}
load: {{vus: 50}}
duration: 10s
flows:
  - name: journey
    steps:
      - {{name: home, path: /}}
      - {{name: products, path: /products}}
      - {{name: cart, path: /cart}}
"""

REQUESTS = """
target: {url}
load: {{vus: 50}}
duration: 10s
requests:
  - {{name: home, path: /}}
  - {{name: products, path: /products}}
  - {{name: cart, path: /cart}}
"""

LOCUSTFILE = """
from locust import FastHttpUser, constant, task

class Journey(FastHttpUser):
    wait_time = constant(0)

    @task
    def journey(self):
        self.client.get("/", name="home")
        self.client.get("/products", name="products")
        self.client.get("/cart", name="cart")
"""


def redline_cpu(
    url: str, template: str, suffix: str, seconds: int, python: str = sys.executable
) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / f"plan{suffix}"
        plan.write_text(template.format(url=url.rstrip("/")))
        out = Path(tmp) / "r.json"
        argv = redline_argv(url, seconds=seconds, out=out, python=python)
        argv[argv.index("--url") : argv.index("--url") + 2] = [str(plan)]
        timed = run_pinned(argv)
        requests = json.loads(out.read_text())["summary"]["total"]["requests"]
    return timed.cpu_s, requests


def locust_cpu(url: str, seconds: int, binary: str) -> tuple[float, int]:
    timed, requests, _ = run_locust(url, seconds, binary, LOCUSTFILE)
    return timed.cpu_s, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--locust", default=shutil.which("locust"), help="the locust executable")
    parser.add_argument(
        "--baseline-python", help="also run the redline of this interpreter, interleaved"
    )
    args = parser.parse_args()
    require("nginx", "taskset")
    d = args.duration
    tools = {
        "redline Python scenario": lambda url: redline_cpu(url, SCENARIO, ".py", d),
        "redline YAML flow": lambda url: redline_cpu(url, FLOW, ".yaml", d),
        "redline YAML requests": lambda url: redline_cpu(url, REQUESTS, ".yaml", d),
    }
    if args.baseline_python:
        base = args.baseline_python
        tools["redline Python scenario (baseline)"] = lambda url: redline_cpu(
            url, SCENARIO, ".py", d, python=base
        )
    if args.locust:
        tools["locust FastHttpUser"] = lambda url: locust_cpu(url, d, args.locust)
    results: dict[str, list[tuple[float, int]]] = {name: [] for name in tools}
    with pinned_nginx() as url:
        for _ in range(args.repeat):
            for name, tool in tools.items():
                results[name].append(tool(url))
    per_request = {
        name: median([cpu / n * 1e6 for cpu, n in runs]) for name, runs in results.items()
    }
    rate = {name: median([n / d for _, n in runs]) for name, runs in results.items()}
    scenario = per_request["redline Python scenario"]
    print(f"\n== a journey of three requests, 50 users, {d} s, median of {args.repeat}")
    rows = [
        [n, f"{rate[n]:,.0f}", f"{us:.1f}", f"{scenario / us:.2f}"] for n, us in per_request.items()
    ]
    print(table(rows, ["tool", "req/s", "CPU us per request", "scenario / this"]))


if __name__ == "__main__":
    main()
