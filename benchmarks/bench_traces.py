"""What tracing costs the load generator: CPU per request with trace context on and off.

    python benchmarks/bench_traces.py [--seconds 5] [--rounds 5]

Closed model, 50 users against nginx (pinned to its own core), one worker: untraced,
traced at the default sampling (``trace: true``: 1%, the slowest 5 and the failed), and
traced at sample 1.0, in interleaved rounds. No receiver runs: the cost measured is the
generator's (header, bookkeeping), not a collector's. Targets: at most +3% CPU per
request at the default sampling, at most +15% at 1.0.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import median, pinned_nginx, redline_argv, require, run_pinned, table

PLAN = """
target: {url}
requests: [{{name: home, path: /}}]
load: {{vus: 50}}
duration: 5s
{trace}
"""

KINDS = {"untraced": "", "default sampling": "trace: true", "sample 1.0": "trace: {sample: 1.0}"}


def cpu_per_request(url: str, trace: str, seconds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.yaml"
        plan.write_text(PLAN.format(url=url.rstrip("/"), trace=trace))
        out = Path(tmp) / "r.json"
        argv = redline_argv(url, seconds=seconds, out=out)
        argv[argv.index("--url") : argv.index("--url") + 2] = [str(plan)]
        timed = run_pinned(argv)
        requests = json.loads(out.read_text())["summary"]["total"]["requests"]
    return timed.cpu_s / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    require("nginx", "taskset")
    found: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with pinned_nginx() as url:
        for number in range(args.rounds):
            order = list(KINDS) if number % 2 == 0 else list(KINDS)[::-1]
            for kind in order:
                found[kind].append(cpu_per_request(url, KINDS[kind], args.seconds))
            print(f"round {number + 1}: " + ", ".join(
                f"{k} {v[-1]:.2f} us" for k, v in found.items()
            ), flush=True)  # fmt: skip
    base = median(found["untraced"])
    rows = [[kind, f"{median(v):.2f}", f"{median(v) / base - 1:+.1%}"] for kind, v in found.items()]
    print(f"\n== generator CPU per request, closed model 50 users, median of {args.rounds}")
    print(table(rows, ["requests", "CPU us per request", "vs untraced"]))
    print("targets: default sampling <= +3%, sample 1.0 <= +15%")


if __name__ == "__main__":
    main()
