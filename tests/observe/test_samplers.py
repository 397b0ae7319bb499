"""Samplers against real processes, the host, and a real Prometheus endpoint."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from redline.observe import HostSampler, ProcessSampler, PrometheusSampler, WatchError
from redline.observe._samplers import Reading, figures

BURN = "import time\nend = time.time() + 30\nwhile time.time() < end: pass\n"
SLEEP = "import time\ntime.sleep(30)\n"


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(code: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", code])
        processes.append(process)
        return process

    yield start  # type: ignore[misc]
    for process in processes:
        process.kill()
        process.wait()


def test_a_burning_process_uses_about_one_core_and_a_sleeping_one_none(child) -> None:  # type: ignore[no-untyped-def]
    burning = ProcessSampler(child(BURN).pid)
    sleeping = ProcessSampler(child(SLEEP).pid)
    before = (burning.read(), sleeping.read())
    time.sleep(1.0)
    after = (burning.read(), sleeping.read())
    hot = figures(before[0], after[0], burning.thing.cores)
    cold = figures(before[1], after[1], sleeping.thing.cores)
    assert hot["cpu_cores"] is not None
    assert hot["cpu_cores"] > 0.5  # a shared 2-core machine: at least half a core
    assert cold["cpu_cores"] is not None
    assert cold["cpu_cores"] < 0.1
    assert hot["rss_bytes"] is not None
    assert hot["rss_bytes"] > 1_000_000
    assert hot["threads"] == 1
    assert burning.thing.python


def test_the_tree_counts_children_and_a_dead_process_reads_as_gone(child) -> None:  # type: ignore[no-untyped-def]
    parent = child(
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {BURN!r}])\n"
        "time.sleep(30)\n"
    )
    sampler = ProcessSampler(parent.pid)
    deadline = time.monotonic() + 10
    while len(sampler.tree()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = sampler.read()
    time.sleep(1.0)
    after = sampler.read()
    assert after.gauges["processes"] == 2
    assert (figures(before, after, 2.0)["cpu_cores"] or 0) > 0.5  # the child's CPU counts
    for process in sampler.tree()[::-1]:
        process.kill()
    parent.wait()
    gone = sampler.read()
    assert gone.gone
    assert all(v is None for v in figures(after, gone, 2.0).values())


def test_no_such_pid_is_a_clear_error() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    with pytest.raises(WatchError, match=rf"pid:{process.pid}: no such process"):
        ProcessSampler(process.pid)


def test_the_host_reads_cpu_network_and_tcp_counters() -> None:
    host = HostSampler()
    before = host.read()
    time.sleep(0.3)
    after = host.read()
    values = figures(before, after, host.thing.cores)
    assert host.thing.cores is not None
    assert host.thing.cores >= 1
    for key in ("cpu_cores", "net_rx_bytes", "tcp_retransmits", "listen_overflows"):
        assert values[key] is not None
        assert values[key] >= 0  # type: ignore[operator]
    assert 0 <= (values["cpu_pct"] or 0) <= 100.5


def test_figures_turn_counters_into_amounts_and_keep_missing_ones_missing() -> None:
    before = Reading(10.0, {"cpu_s": 1.0, "net_rx_bytes": None, "io_some_stall_us": 0.0})
    after = Reading(
        12.0, {"cpu_s": 2.5, "net_rx_bytes": 100.0, "io_some_stall_us": 500_000.0}, {"threads": 4}
    )
    values = figures(before, after, 1.5)
    assert values["cpu_cores"] == pytest.approx(0.75)
    assert values["cpu_pct"] == pytest.approx(50.0)
    assert values["net_rx_bytes"] is None  # unknown at the start: unknown, not 100
    assert values["io_some_pct"] == pytest.approx(25.0)
    assert values["threads"] == 4


@pytest.fixture
def metrics_url() -> Iterator[tuple[str, Gauge, Counter]]:
    registry = CollectorRegistry()
    depth = Gauge("queue_depth", "jobs waiting", ["queue"], registry=registry)
    served = Counter("jobs", "jobs served", registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics", depth, served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_prometheus_endpoints_gauges_become_series_and_counters_amounts(metrics_url) -> None:  # type: ignore[no-untyped-def]
    url, depth, served = metrics_url
    sampler = PrometheusSampler(url)
    depth.labels("emails").set(3)
    before = sampler.read()
    depth.labels("emails").set(7)
    served.inc(5)
    after = sampler.read()
    values = figures(before, after, None)
    assert values['queue_depth{queue="emails"}'] == 7
    assert values["jobs_total"] == 5
    assert not sampler.problems


def test_a_prometheus_endpoint_that_is_down_or_garbled_gives_a_note_not_a_crash() -> None:
    class Garbage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"this is {not the text format\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        garbled = PrometheusSampler(f"http://127.0.0.1:{server.server_port}/metrics")
        reading = garbled.read()
    finally:
        server.shutdown()
        server.server_close()
    assert reading.gauges == {}
    assert any("not the Prometheus text format" in p for p in garbled.problems)
    down = PrometheusSampler(f"http://127.0.0.1:{server.server_port}/metrics")
    assert down.read().gauges == {}
    assert any("scrape failed" in p for p in down.problems)
