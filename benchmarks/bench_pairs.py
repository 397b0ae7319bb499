"""Generator CPU per request of two redlines, in interleaved pairs: what a change costs.

    python benchmarks/bench_pairs.py BEFORE/bin/python AFTER/bin/python [--pairs 7]
                                     [--seconds 5] [--vus 50]

Each pair runs the closed model (``--vus`` users, one worker) against nginx on its own
core, once with each interpreter's redline (installed with ``pip install``, not editable:
this machine compiles an editable install's modules at every start), the order
alternating. Prints each pair and the median of the pair ratios.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import median, pinned_nginx, redline_argv, require, run_pinned


def cpu_per_request(url: str, python: str, seconds: int, vus: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        argv = redline_argv(url, "--vus", str(vus), seconds=seconds, out=out, python=python)
        timed = run_pinned(argv)
        requests = json.loads(out.read_text())["summary"]["total"]["requests"]
    return timed.cpu_s / requests * 1e6, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--vus", type=int, default=50)
    args = parser.parse_args()
    require("nginx", "taskset")
    before: list[float] = []
    after: list[float] = []
    with pinned_nginx() as url:
        for number in range(args.pairs):
            order = [("before", args.before), ("after", args.after)]
            if number % 2:
                order.reverse()
            for name, python in order:
                value, _ = cpu_per_request(url, python, args.seconds, args.vus)
                (before if name == "before" else after).append(value)
            print(
                f"pair {number + 1}: before {before[-1]:.2f} us, after {after[-1]:.2f} us "
                f"({after[-1] / before[-1] - 1:+.1%})",
                flush=True,
            )
    ratios = [b / a for a, b in zip(before, after, strict=True)]
    print(
        f"median before {median(before):.2f} us, after {median(after):.2f} us; median pair "
        f"ratio {median(ratios) - 1:+.1%}; lower in {sum(r < 1 for r in ratios)} of "
        f"{len(ratios)}"
    )


if __name__ == "__main__":
    main()
