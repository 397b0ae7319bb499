"""Resident memory of a long open-model run: does it stay flat?

    python benchmarks/bench_memory.py [--minutes 10] [--rate 10000]

Runs redline against a pinned nginx and samples the resident set size (RSS) of the
coordinator and its worker every 10 s from /proc, then prints the series.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from _common import LOAD_CORE, pinned_nginx, redline_argv, require


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=10_000)
    args = parser.parse_args()
    require("nginx", "taskset")
    seconds = int(args.minutes * 60)
    with pinned_nginx() as url, tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        process = subprocess.Popen(
            [
                "taskset",
                "-c",
                LOAD_CORE,
                *redline_argv(url, "--rate", f"{args.rate}/s", seconds=seconds, out=out),
            ],
            stdout=subprocess.DEVNULL,
        )
        samples = []
        start = time.monotonic()
        while process.poll() is None:
            time.sleep(10)
            pids = [process.pid, *children(process.pid)]
            coordinator = rss_kib(pids[0])
            workers = sum(rss_kib(p) for p in pids[1:])
            samples.append((time.monotonic() - start, coordinator, workers))
            print(
                f"{samples[-1][0]:6.0f} s  coordinator {coordinator / 1024:7.1f} MiB  "
                f"worker {workers / 1024:7.1f} MiB",
                flush=True,
            )
        data = json.loads(out.read_text())
    gen = data["generator"]
    live = [s for s in samples if s[2] > 0]
    first, last = live[1], live[-1]  # the first sample is start-up
    print(
        f"\nachieved {gen['achieved_rps']:,.1f} req/s of {args.rate:,}, "
        f"dropped {gen['dropped']}, late {gen['late']}"
    )
    late = [
        (i["index"], i["generator"]["late"]) for i in data["intervals"] if i["generator"]["late"]
    ]
    print(f"intervals with late sends: {late or 'none'}; max lag {gen['max_lag_ms']:.1f} ms")
    print(
        f"worker RSS {first[2] / 1024:.1f} MiB at {first[0]:.0f} s -> "
        f"{last[2] / 1024:.1f} MiB at {last[0]:.0f} s"
    )
    print(
        f"coordinator RSS {first[1] / 1024:.1f} MiB -> {last[1] / 1024:.1f} MiB "
        f"(it keeps every interval: {len(data['intervals'])} of them)"
    )


if __name__ == "__main__":
    main()
