"""What the fault proxy costs with no toxic on: latency at a fixed rate, and the most it passes.

The target (``redline testserver``) and the proxy (``redline proxy``, its own process)
share the target core; the load generator has the other. Each figure is measured directly
and through the proxy, repeated, and printed with the ratio:

- p50 and p99 at a fixed open-model rate (``--rate``, default 2,000 req/s);
- the most throughput with 50 closed-model users.

Toxiproxy itself (a Go binary) is not packaged by Debian or PyPI, so it is not measured
here; on a machine that has ``toxiproxy-server``, pass ``--toxiproxy PATH`` to add it.

    python benchmarks/bench_faults.py [--repeat 3] [--rate 2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from _common import (
    TARGET_CORE,
    free_port,
    median,
    pinned_testserver,
    run_pinned,
    table,
    wait_for_port,
)


@contextlib.contextmanager
def proxied(url: str, command: list[str], api_port: int) -> Iterator[str]:
    """A proxy in front of ``url``, in its own process on the target core; yields its URL."""
    listen = free_port()
    upstream = url.removeprefix("http://").rstrip("/")
    process = subprocess.Popen(
        ["taskset", "-c", TARGET_CORE, *command],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(api_port)
        body = json.dumps({"name": "bench", "listen": f"127.0.0.1:{listen}", "upstream": upstream})
        request = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/proxies", data=body.encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5):
            pass
        wait_for_port(listen)
        yield f"http://127.0.0.1:{listen}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


def measure(url: str, load: list[str], seconds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        run_pinned(
            [sys.executable, "-m", "redline", "run", "--url", url, *load, "--duration",
             f"{seconds}s", "--workers", "1", "--quiet", "--no-store", "--out", str(out)]
        )  # fmt: skip
        total = json.loads(out.read_text())["summary"]["total"]
    return {"p50": total["latency_ms"]["p50"], "p99": total["latency_ms"]["p99"],
            "rps": total["rps"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--toxiproxy", default=shutil.which("toxiproxy-server"))
    args = parser.parse_args()
    rows = []
    with pinned_testserver() as target:
        ways: dict[str, contextlib.AbstractContextManager[str]] = {
            "direct": contextlib.nullcontext(target)
        }
        api = free_port()
        ways["redline proxy"] = proxied(
            target, [sys.executable, "-m", "redline", "proxy", "--port", str(api)], api
        )
        if args.toxiproxy:
            other = free_port()
            ways["toxiproxy"] = proxied(
                target, [args.toxiproxy, "-host", "127.0.0.1", "-port", str(other)], other
            )
        with contextlib.ExitStack() as stack:
            urls = {name: stack.enter_context(way) for name, way in ways.items()}
            fixed: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
            most: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
            for _ in range(args.repeat):  # interleaved, so drift hits every path alike
                for name, url in urls.items():
                    fixed[name].append(measure(url, ["--rate", f"{args.rate}/s"], args.seconds))
                    most[name].append(measure(url, ["--vus", "50"], args.seconds))
        found = {
            name: {
                "p50": median([m["p50"] for m in fixed[name]]),
                "p99": median([m["p99"] for m in fixed[name]]),
                "max": median([m["rps"] for m in most[name]]),
            }
            for name in urls
        }
    base = found["direct"]
    for name, values in found.items():
        rows.append(
            (name, f"{values['p50']:.3f} ms", f"{values['p99']:.3f} ms",
             f"{values['max']:,.0f}/s", f"{values['p50'] / base['p50']:.2f}x",
             f"{values['p99'] / base['p99']:.2f}x", f"{values['max'] / base['max']:.2f}x")
        )  # fmt: skip
    print(f"open model at {args.rate:,}/s and 50 closed-model users, {args.seconds} s each, "
          f"median of {args.repeat}")  # fmt: skip
    print(table(rows, ["path", "p50", "p99", "max throughput", "p50 ratio", "p99 ratio",
                       "throughput ratio"]))  # fmt: skip


if __name__ == "__main__":
    main()
