"""WebSocket: 10,000 connections held by one redline worker, its memory per connection,
and echo round trips against the websockets library's server.

    python benchmarks/bench_websocket.py [--connections 10000] [--seconds 40] [--every 10]

The echo server (tests/http/wsserver.py) runs on core 0, redline (one worker) on core 1.
Each connection sends a message every ``--every`` seconds at its own fixed times and
times the echo from the intended send. Memory per connection is the worker's peak RSS
with all connections open, less its peak RSS with 10 connections, over the difference
(sampled by psutil every 0.2 s). per-message compression is off (the default).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from _common import LOAD_CORE, TARGET_CORE, pinned_script

ROOT = Path(__file__).resolve().parents[1]
SERVER = ROOT / "tests" / "http" / "wsserver.py"


def _peak_worker_rss(root: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        try:
            for child in root.children(recursive=True):
                if "multiprocessing" in " ".join(child.cmdline()):  # the worker
                    peak[0] = max(peak[0], child.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.2)


def run(port: int, connections: int, seconds: int, every: int) -> tuple[dict, int]:
    with tempfile.TemporaryDirectory() as tmp:
        plan = Path(tmp) / "plan.json"
        plan.write_text(json.dumps({
            "name": "ws", "target": f"ws://127.0.0.1:{port}",
            "websocket": {"path": "/echo", "every": f"{every}s", "message": "echo ${seq()}"},
            "load": {"vus": connections}, "duration": f"{seconds}s", "workers": 1,
            "timeouts": {"connect": "30s"}, "limits": {"max_connections": connections},
        }))  # fmt: skip
        out = Path(tmp) / "r.json"
        process = subprocess.Popen(
            ["taskset", "-c", LOAD_CORE, sys.executable, "-m", "redline", "run", str(plan),
             "--quiet", "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        stop, peak = threading.Event(), [0]
        watcher = threading.Thread(target=_peak_worker_rss,
                                   args=(psutil.Process(process.pid), stop, peak))  # fmt: skip
        watcher.start()
        _, err = process.communicate(timeout=seconds + 300)
        stop.set()
        watcher.join()
        if process.returncode not in (0, 3):
            raise RuntimeError(err[-2000:])
        data = json.loads(out.read_text())
    endpoints = data["summary"]["endpoints"]
    return endpoints, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--every", type=int, default=10)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + 1000:
        sys.exit(f"the open-files limit ({hard}) is below {args.connections} connections")
    with pinned_script(SERVER, "WebSocket server") as port:
        small, small_rss = run(port, 10, 10, args.every)
        big, big_rss = run(port, args.connections, args.seconds, args.every)
    connect, message = big["connect"], big["message"]
    per_conn = (big_rss - small_rss) / (args.connections - 10)
    print(f"{args.connections:,} connections asked of one worker for {args.seconds} s, "
          f"a message each every {args.every} s (server on core {TARGET_CORE}, redline on "
          f"{LOAD_CORE})")  # fmt: skip
    print(
        f"handshakes: {connect['requests']:,} done, errors {connect['errors']}, "
        f"p50 {connect['latency_ms']['p50']:.1f} ms, p99 {connect['latency_ms']['p99']:.1f} ms"
    )
    print(f"echo round trips: {message['requests']:,} ({message['rps']:,.0f}/s), errors "
          f"{message['errors']}, p50 {message['latency_ms']['p50']:.2f} ms, p90 "
          f"{message['latency_ms']['p90']:.2f} ms, p99 {message['latency_ms']['p99']:.2f} ms, "
          f"p99.9 {message['latency_ms'].get('p999', float('nan')):.2f} ms")  # fmt: skip
    print(
        f"worker peak RSS: {big_rss / 2**20:,.0f} MiB with {args.connections:,} connections, "
        f"{small_rss / 2**20:,.0f} MiB with 10: {per_conn / 1024:.1f} KiB per connection"
    )
    del small, soft


if __name__ == "__main__":
    main()
