"""Shared helpers for the benchmarks: a pinned nginx, timed child processes, medians."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

TARGET_CORE = "0"
LOAD_CORE = "1"

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ default_type text/plain; return 200 "ok\\n"; }}
    }}
}}
"""


def require(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        sys.exit(
            f"benchmark needs {', '.join(missing)} (Debian: apt-get install nginx-light wrk hey)"
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def _serve_pinned(argv: Sequence[str], port: int) -> Iterator[str]:
    """Run a server on the target core until the block ends; yield its URL."""
    process = subprocess.Popen(
        ["taskset", "-c", TARGET_CORE, *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def pinned_script(script: Path, what: str) -> Iterator[int]:
    """``python script PORT`` on the target core until the block ends; yields the port
    once the script prints ``ready`` (the protocol benchmarks' servers)."""
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", TARGET_CORE, sys.executable, str(script), str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            sys.exit(f"the {what} did not start (pip install -e '.[test]')")
        yield port
    finally:
        server.kill()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()


@contextlib.contextmanager
def pinned_nginx() -> Iterator[str]:
    """nginx serving a 3-byte response, pinned to the target core."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=tmp, port=port))
        with _serve_pinned([nginx, "-c", str(conf), "-p", tmp], port) as url:
            yield url


@contextlib.contextmanager
def pinned_testserver(*args: str) -> Iterator[str]:
    """redline's test server in its own process, pinned to the target core."""
    port = free_port()
    argv = [sys.executable, "-m", "redline", "testserver", "--port", str(port), *args]
    with _serve_pinned(argv, port) as url:
        yield url


def redline_argv(
    url: str, *load: str, seconds: float, out: Path, python: str = sys.executable
) -> list[str]:
    """``redline run`` with one worker, no live view, and the result written to ``out``.

    ``python``: the interpreter whose redline runs (another venv's, to compare versions).
    """
    return [
        python, "-m", "redline", "run", "--url", url, *load,
        "--duration", f"{seconds}s", "--workers", "1", "--quiet", "--out", str(out),
    ]  # fmt: skip


@dataclass
class Timed:
    stdout: str
    cpu_s: float  # user + system seconds of the whole process tree
    wall_s: float


def run_pinned(argv: Sequence[str], *, timeout: float = 600) -> Timed:
    """Run ``argv`` pinned to the load core; measure its tree's CPU (reaped children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    completed = subprocess.run(
        ["taskset", "-c", LOAD_CORE, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode not in (0, 3):
        raise RuntimeError(f"{argv[0]} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(completed.stdout + completed.stderr, cpu, wall)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(lines)


def run_locust(url: str, seconds: int, binary: str, locustfile: str) -> tuple[Timed, int, float]:
    """Run Locust headless with 50 users pinned to the load core.

    Returns the timing, the request count and the requests per second it reports.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "locustfile.py"
        path.write_text(locustfile)
        prefix = Path(tmp) / "stats"
        timed = run_pinned(
            [binary, "-f", str(path), "--headless", "-u", "50", "-r", "50", "-t", f"{seconds}s",
             "--host", url.rstrip("/"), "--only-summary", "--csv", str(prefix),
             "--loglevel", "ERROR"]
        )  # fmt: skip
        rows = Path(f"{prefix}_stats.csv").read_text().splitlines()
    header = rows[0].split(",")
    aggregated = next(r.split(",") for r in rows if ",Aggregated," in r)
    requests = int(aggregated[header.index("Request Count")])
    return timed, requests, float(aggregated[header.index("Requests/s")])
