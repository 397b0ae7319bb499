"""What the HTML report and the dashboard cost, and redline's report beside Locust's.

Part 1 builds reports of runs of 1 minute, 10 minutes and 1 hour (1 and 5 endpoints,
lognormal latencies) and prints the time to build the file, its size, and the time the
dashboard takes to make the next live document when one more interval of that run
arrives (it makes one per interval while someone watches, reusing the merged steps).

Part 2 runs the same 30 s load against redline's test server (pinned to its own core)
with ``redline run --html`` and with ``locust --headless --html``, then opens each report
in headless Chromium (Debian's, through Playwright) several times and prints the file size,
the requests the page makes when opened (a report that fetches scripts from a CDN is
blank offline), the time until the page's load event, and the charts drawn.

    python benchmarks/bench_report.py [--locust PATH] [--repeat 5] [--seconds 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from _common import free_port, median, pinned_testserver, run_pinned, table
from redline.core import EndpointInterval, GeneratorInterval, Histogram, IntervalSnapshot, RunResult
from redline.report import Dashboard, html_report

LOCUSTFILE = """
from locust import FastHttpUser, constant_throughput, task

class Shopper(FastHttpUser):
    wait_time = constant_throughput(2)

    @task(4)
    def product(self):
        self.client.get("/products/1", name="product")

    @task(1)
    def search(self):
        self.client.get("/search", name="search")
"""

PLAN = """
name: shop
target: {url}
requests:
  - {{name: product, path: /products/1, weight: 4}}
  - {{name: search, path: /search, weight: 1}}
load: {{rate: 100/s}}
duration: {seconds}s
workers: 1
"""

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def synthetic(seconds: int, endpoints: int, rate: int = 200) -> RunResult:
    """A run of ``seconds`` one-second intervals, ``rate`` requests each over ``endpoints``."""
    rng = np.random.default_rng(seconds * 10 + endpoints)
    names = [f"endpoint-{i}" for i in range(endpoints)]
    intervals = []
    for index in range(seconds):
        data = {}
        for name in names:
            histogram = Histogram()
            n = rate // endpoints
            histogram.record_values(rng.lognormal(8.0, 0.6, n).astype(np.int64) + 1)
            data[name] = EndpointInterval(
                requests=n, errors=int(rng.binomial(n, 0.01)), status={200: n},
                latency=histogram.compact(), latency_actual=histogram,
            )  # fmt: skip
        intervals.append(
            IntervalSnapshot(
                index=index, start_s=float(index), duration_s=1.0, endpoints=data,
                generator=GeneratorInterval(scheduled=rate, sent=rate, target_rps=rate),
            )
        )  # fmt: skip
    return RunResult(
        id=f"bench-{seconds}-{endpoints}", plan={"name": "bench", "duration_s": seconds},
        started_at="2026-11-28T00:00:00Z", intervals=tuple(intervals),
    )  # fmt: skip


def timed(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return median(times)


def scaling(repeat: int) -> None:
    rows = []
    for seconds in (60, 600, 3600):
        for endpoints in (1, 5):
            run = synthetic(seconds, endpoints)
            html = html_report(run)
            build = timed(lambda run=run: html_report(run), repeat)
            with Dashboard(run.plan, port=0) as dashboard:
                dashboard.start(dataclasses.replace(run, intervals=()))
                for interval in run.intervals[:-repeat]:
                    dashboard.update(interval)
                dashboard.document()  # what a watcher has seen so far
                times = []
                for interval in run.intervals[-repeat:]:
                    dashboard.update(interval)
                    start = time.perf_counter()
                    dashboard.document()
                    times.append(time.perf_counter() - start)
                document = median(times)
            rows.append(
                (f"{seconds}s", endpoints, f"{build * 1000:,.0f} ms",
                 f"{len(html.encode()) / 1024:,.0f} KiB", f"{document * 1000:,.0f} ms")
            )  # fmt: skip
    print("report and dashboard cost by run length (median of", repeat, "builds)")
    print(table(rows, ["run", "endpoints", "build report", "report size", "live document"]))


def open_in_chromium(path: Path, repeat: int) -> dict[str, object]:
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("benchmark needs Debian's chromium (apt-get install chromium)")
    loads, requests, charts = [], [], 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for _ in range(repeat):
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            seen: list[str] = []
            page.on("request", lambda r, seen=seen: seen.append(r.url))
            page.goto(path.as_uri(), wait_until="load", timeout=60_000)
            loads.append(
                page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
            )
            page.wait_for_timeout(500)
            charts = page.evaluate(
                "document.querySelectorAll('svg.chart, canvas, .echarts, .js-plotly-plot').length"
            )
            requests.append(len([u for u in seen if not u.startswith("file:")]))
            page.close()
        browser.close()
    return {
        "size": f"{path.stat().st_size / 1024:,.0f} KiB",
        "requests": max(requests),
        "load": f"{median(loads):,.0f} ms",
        "charts": charts,
    }


def side_by_side(locust: str | None, seconds: int, repeat: int) -> None:
    reports: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp, pinned_testserver("--latency", "2ms") as url:
        plan = Path(tmp) / "plan.yaml"
        plan.write_text(PLAN.format(url=url, seconds=seconds))
        out = Path(tmp) / "redline.html"
        run_pinned([sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
                    "--html", str(out)])  # fmt: skip
        reports["redline run --html"] = out
        if locust:
            locustfile = Path(tmp) / "locustfile.py"
            locustfile.write_text(LOCUSTFILE)
            out = Path(tmp) / "locust.html"
            run_pinned([locust, "-f", str(locustfile), "--headless", "-u", "50", "-r", "50",
                        "-t", f"{seconds}s", "--host", url.rstrip("/"), "--html", str(out),
                        "--loglevel", "ERROR", "--web-port", str(free_port())])  # fmt: skip
            reports["locust --html"] = out
        rows = []
        for name, path in reports.items():
            found = open_in_chromium(path, repeat)
            rows.append((name, found["size"], found["requests"], found["load"], found["charts"]))
    print(f"\n{seconds} s at 100 req/s, each report opened {repeat} times in headless Chromium")
    print(table(rows, ["report", "size", "requests when opened", "load event", "charts"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--locust", default=shutil.which("locust"), help="the locust executable")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    scaling(args.repeat)
    side_by_side(args.locust, args.seconds, args.repeat)


if __name__ == "__main__":
    main()
