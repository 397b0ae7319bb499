"""HTTP/2: redline beside h2load against one nginx with ``http2`` on TLS, one core each.

    python benchmarks/bench_h2.py [--seconds 10] [--repeat 3] [--connections 10] [--streams 10]

nginx (one worker) runs on core 0; h2load and redline take turns on core 1, interleaved,
with the same connections and concurrent streams (h2load ``-c``/``-m``; redline's closed
model with ``vus = connections x streams`` and ``limits.max_streams``). Prints requests per
second of each, the median ratio (issue #28's target: redline >= 0.7x h2load) and the
percentiles redline reports that h2load does not (h2load gives mean and sd only). Then an
open-model run at half of h2load's rate, to show the rate held and its latency from the
intended start.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from _common import (
    NGINX_CONF,
    TARGET_CORE,
    _serve_pinned,
    free_port,
    median,
    run_pinned,
    table,
)

NGINX_H2 = NGINX_CONF.replace(
    "listen 127.0.0.1:{port} backlog=4096;",
    "listen 127.0.0.1:{port} ssl http2 backlog=4096;\n"
    "        ssl_certificate {dir}/cert.pem;\n        ssl_certificate_key {dir}/key.pem;",
).replace(
    "keepalive_timeout 120s;", "keepalive_timeout 120s;\n    http2_max_concurrent_streams 256;"
)


@contextlib.contextmanager
def nginx_h2() -> Iterator[str]:
    """nginx with HTTP/2 on TLS (a throwaway self-signed certificate), on the target core."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=localhost", "-keyout", f"{tmp}/key.pem", "-out", f"{tmp}/cert.pem"],
            check=True, capture_output=True,
        )  # fmt: skip
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_H2.format(dir=tmp, port=port))
        with _serve_pinned([nginx, "-c", str(conf), "-p", tmp], port) as url:
            yield url.replace("http://", "https://", 1)


def h2load(url: str, seconds: int, connections: int, streams: int) -> dict[str, float]:
    timed = run_pinned(
        ["h2load", "-c", str(connections), "-m", str(streams), "-D", str(seconds),
         "--warm-up-time=1", url]
    )  # fmt: skip
    rps = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", timed.stdout)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", timed.stdout)
    failed = re.search(r"(\d+) failed", timed.stdout)
    if rps is None:
        raise RuntimeError(f"h2load printed no rate:\n{timed.stdout[-2000:]}")
    return {
        "rps": float(rps.group(1)),
        "mean": mean.group(1) if mean else "?",  # type: ignore[dict-item]
        "failed": float(failed.group(1)) if failed else 0.0,
    }


def redline(url: str, seconds: int, load: dict, streams: int, connections: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.json"
        plan.write_text(json.dumps({
            "name": "h2", "target": url.rstrip("/"), "protocol": "h2",
            "tls": {"verify": False},
            "limits": {"max_streams": streams, "max_connections": connections},
            "requests": [{"name": "GET /", "path": "/"}],
            "load": load, "duration": f"{seconds}s", "warmup": "1s", "workers": 1,
        }))  # fmt: skip
        out = Path(tmp) / "r.json"
        argv = [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--out", str(out)]
        timed = run_pinned(argv)
        data = json.loads(out.read_text())
    total = data["summary"]["total"]
    return {
        "rps": total["rps"],
        "errors": total["errors"],
        "p50": total["latency_ms"]["p50"],
        "p99": total["latency_ms"]["p99"],
        "p999": total["latency_ms"].get("p99.9", total["latency_ms"].get("p999", float("nan"))),
        "cpu_s": timed.cpu_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--streams", type=int, default=10)
    args = parser.parse_args()
    for tool in ("nginx", "h2load", "openssl", "taskset"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"needs {tool} (Debian: apt-get install nginx nghttp2-client openssl)")
    c, m = args.connections, args.streams
    rows, ratios = [], []
    with nginx_h2() as url:
        for round_ in range(args.repeat):
            theirs = h2load(url, args.seconds, c, m)
            ours = redline(url, args.seconds, {"vus": c * m}, m, c)
            ratios.append(ours["rps"] / theirs["rps"])
            rows.append([
                round_ + 1, f"{theirs['rps']:,.0f}", theirs["mean"], f"{ours['rps']:,.0f}",
                f"{ours['p50']:.2f}", f"{ours['p99']:.2f}", f"{ours['p999']:.2f}",
                ours["errors"], f"{ratios[-1]:.2f}x",
            ])  # fmt: skip
        print(f"closed loop, {c} connections x {m} streams, {args.seconds} s, nginx on core "
              f"{TARGET_CORE}, load on the other core")  # fmt: skip
        print(table(rows, ["round", "h2load req/s", "h2load mean", "redline req/s",
                           "p50 ms", "p99 ms", "p99.9 ms", "errors", "ratio"]))  # fmt: skip
        print(f"median ratio redline / h2load: {median(ratios):.2f}x (target >= 0.70x)")
        rate = round(median([float(r[1].replace(",", "")) for r in rows]) / 2)
        held = redline(url, args.seconds, {"rate": f"{rate}/s"}, m, c)
        print(f"open model at {rate:,}/s: {held['rps']:,.0f} req/s held "
              f"({held['rps'] / rate:.1%}), p50 {held['p50']:.2f} ms, p99 {held['p99']:.2f} ms "
              f"from the intended start, errors {held['errors']}")  # fmt: skip


if __name__ == "__main__":
    main()
