"""What tracing costs the load generator: CPU per request with trace context on and off.

    python benchmarks/bench_traces.py [--seconds 5] [--rounds 5] [--rate 15000]

Against nginx (pinned to its own core), one worker: untraced, traced at the default
sampling (``trace: true``: 1%, the slowest 5 and the failed), and traced at sample 1.0,
in interleaved rounds; twice: the closed model (50 users, as fast as nginx answers) and
the open model at a fixed ``--rate``. In the closed model the generator's CPU per request
also depends on how fast the server answers (a slower answer means fewer responses per
wake-up of the event loop, more system calls per request): the traced requests are 70
bytes longer for nginx to parse. The open model at a rate the generator keeps up with
measures the generator's own work per request. No receiver runs: the cost measured is
the generator's (header, bookkeeping), not a collector's. Targets: at most +3% CPU per
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
load: {load}
duration: 5s
{trace}
"""

KINDS = {"untraced": "", "default sampling": "trace: true", "sample 1.0": "trace: {sample: 1.0}"}


def cpu_per_request(url: str, trace: str, seconds: int, load: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.yaml"
        plan.write_text(PLAN.format(url=url.rstrip("/"), trace=trace, load=load))
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
    parser.add_argument("--rate", type=int, default=15000)
    args = parser.parse_args()
    require("nginx", "taskset")
    models = {
        "closed model, 50 users": "{vus: 50}",
        f"open model, {args.rate}/s": f"{{rate: {args.rate}/s}}",
    }
    found = {(m, kind): [] for m in models for kind in KINDS}
    with pinned_nginx() as url:
        for number in range(args.rounds):
            for model, load in models.items():
                order = list(KINDS) if number % 2 == 0 else list(KINDS)[::-1]
                for kind in order:
                    found[model, kind].append(cpu_per_request(url, KINDS[kind], args.seconds, load))
                print(f"round {number + 1}, {model}: " + ", ".join(
                    f"{k} {found[model, k][-1]:.2f} us" for k in KINDS
                ), flush=True)  # fmt: skip
    for model in models:
        base = median(found[model, "untraced"])
        rows = [
            [
                kind,
                f"{median(found[model, kind]):.2f}",
                f"{median(found[model, kind]) / base - 1:+.1%}",
            ]
            for kind in KINDS
        ]
        print(f"\n== generator CPU per request, {model}, median of {args.rounds}")
        print(table(rows, ["requests", "CPU us per request", "vs untraced"]))
    print("targets: default sampling <= +3%, sample 1.0 <= +15%")


if __name__ == "__main__":
    main()
