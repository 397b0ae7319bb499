"""The HTML report and the live dashboard of real runs, in headless Chromium (Debian's).

Playwright drives the browser; it launches the system's ``chromium`` (installed by
``.ci/run``), never a browser of its own download.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from redline.core import TREND_SCALE, Histogram, MetricInterval, RunResult
from redline.report import html_report
from redline.testing import Behaviour, TestServer
from synthetic import synthetic_run

Server = Callable[..., TestServer]

# Chromium's own background traffic is switched off, so every request is the page's.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("Chromium is needed: install Debian's chromium package (.ci/run does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page with every request and console complaint it makes written down."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.requests: list[str] = []
        self.complaints: list[str] = []
        self.page.on("request", self._request)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.complaints.append(f"page error: {exc}"))

    def _request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.complaints.append(f"{message.type}: {message.text}")


def plan_file(tmp_path: Path, url: str) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""
name: shop
target: {url}
requests:
  - {{name: product, path: /products/1, weight: 4}}
  - {{name: search, path: /search, weight: 1}}
load:
  stages:
    - {{duration: 2s, rate: 80/s}}
    - {{duration: 3s, rate: 160/s}}
warmup: 1s
generator: {{late_tolerance: 0.9}}
slo:
  - p99 < 2s
  - error_rate < 50%
  - p50 < 0.01ms
"""
    )
    return plan


def drawn_charts(page: Page) -> dict[str, dict[str, int]]:
    """Per chart: its drawn lines (paths with points) and bars."""
    found: dict[str, dict[str, int]] = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('svg.chart')].map(svg => {
            const paths = [...svg.querySelectorAll('path.line')];
            const lines = paths.filter(p => /L/.test(p.getAttribute('d'))).length;
            return [svg.dataset.chart, {lines, bars: svg.querySelectorAll('rect.bar').length}];
        }))"""
    )  # fmt: skip
    return found


def endpoint_cells(page: Page) -> dict[str, dict[str, Any]]:
    """The endpoints table: per row, each column's displayed text and exact value."""
    rows: dict[str, dict[str, Any]] = page.evaluate(
        """() => {
            const head = [...document.querySelectorAll('#endpoints th')].map(th => th.textContent);
            const rows = [...document.querySelectorAll('#endpoints tbody tr')];
            return Object.fromEntries(rows.map(tr =>
                [tr.dataset.endpoint, Object.fromEntries([...tr.children].slice(1).map((td, i) =>
                    [head[i + 1], {text: td.textContent, value: td.dataset.value}]))]));
        }"""
    )  # fmt: skip
    return rows


def number(text: str) -> float:
    """The number shown in a cell: ``1,083`` -> 1083, ``1.95 ms`` -> 1.95, ``2.10 s`` -> 2100."""
    value = float(re.sub(r"[^0-9.]", "", text))
    return value * 1000 if text.endswith(" s") else value


def test_the_report_of_a_real_run_draws_every_chart_offline_with_the_runs_numbers(
    redline_server: Server, browser: Browser, tmp_path: Path
) -> None:
    target = redline_server(Behaviour(latency=0.002, error_rate=0.05))
    out, html = tmp_path / "run.json", tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "redline", "run", str(plan_file(tmp_path, target.url)),
         "--quiet", "--out", str(out), "--html", str(html)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # p50 < 0.01ms fails
    document = json.loads(out.read_text())
    assert html.stat().st_size < 5_000_000

    watched = Watched(browser)
    page = watched.page
    page.goto(html.as_uri())
    page.wait_for_selector("svg.chart[data-chart=histogram]")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 50_000

    assert watched.requests == [html.as_uri()], "the report made a network request"
    assert watched.complaints == []

    charts = drawn_charts(page)
    endpoints = ["product", "search"]
    expected = {"latency-all", *(f"latency-{n}" for n in endpoints)}
    expected |= {"throughput", "errors", "spectrum", "histogram"}
    assert set(charts) == expected
    for name in expected - {"histogram"}:
        assert charts[name]["lines"] >= 1, f"{name} drew no line"
    assert charts["latency-all"]["lines"] == 4  # p50, p90, p99, max
    assert charts["throughput"]["lines"] == 3  # achieved, sent, target
    assert charts["spectrum"]["lines"] == 3  # all and each endpoint
    assert charts["histogram"]["bars"] >= 3

    summary = document["summary"]
    rows = endpoint_cells(page)
    assert set(rows) == {"all", *endpoints}
    for name, row in rows.items():
        expected_row = summary["total"] if name == "all" else summary["endpoints"][name]
        assert int(row["requests"]["value"]) == expected_row["requests"]
        assert number(row["requests"]["text"]) == expected_row["requests"]
        assert int(row["errors"]["value"]) == expected_row["errors"]
        for column, key in (("p50", "p50"), ("p99", "p99"), ("max", "max")):
            exact = expected_row["latency_ms"][key]
            assert float(row[column]["value"]) == pytest.approx(exact)
            assert number(row[column]["text"]) == pytest.approx(exact, rel=0.01)

    phases = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('#phases tbody tr')].map(tr =>
            [tr.dataset.endpoint, [...tr.children].slice(1).map(td => td.dataset.value)]))"""
    )  # fmt: skip
    assert set(phases) == {"all", *endpoints}
    for name, values in phases.items():
        timed = (summary["total"] if name == "all" else summary["endpoints"][name])["phases"]
        for value, phase in zip(
            values, ("dns", "connect", "tls", "send", "wait", "receive"), strict=True
        ):
            assert float(value) == pytest.approx(timed[phase]["p99"])

    cards = page.evaluate(
        """() => [...document.querySelectorAll('.card')].map(c => ({
            outcome: c.dataset.outcome, name: c.querySelector('.card-name').textContent,
            value: c.querySelector('.value').dataset.value}))"""
    )
    assert [c["outcome"] for c in cards] == [v["outcome"] for v in document["verdicts"]]
    assert [c["outcome"] for c in cards][-1] == "fail"
    for card, verdict in zip(cards, document["verdicts"], strict=True):
        assert card["name"] == verdict["objective"]["name"]
        assert float(card["value"]) == pytest.approx(verdict["value"])
    assert page.text_content("#plan-name") == "shop"
    assert document["id"] in page.text_content("header")

    # hover shows values; a drag zooms every time chart; a double-click resets
    box = page.locator("svg.chart[data-chart=latency-all] rect.overlay").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2)
    assert re.search(r"p99: [\d.]+ m?s", page.locator(".tip").first.text_content() or "")
    before = page.locator("svg.chart[data-chart=throughput] .tick").all_text_contents()
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    zoomed = page.locator("svg.chart[data-chart=throughput] .tick").all_text_contents()
    assert zoomed != before
    assert page.locator(".reset-zoom").count() == 5  # every time chart zoomed together
    page.locator("svg.chart[data-chart=errors] rect.overlay").dblclick()
    assert page.locator(".reset-zoom").count() == 0
    assert watched.complaints == []
    page.close()


def dashboard_run(url: str, out: Path, *options: str) -> subprocess.Popen[str]:
    """``redline run`` at 100 req/s with a live dashboard on a free port."""
    return subprocess.Popen(
        [sys.executable, "-m", "redline", "run", "--url", url, "--rate", "100/s", "--quiet",
         "--no-store", "--dashboard", "0", "--out", str(out), *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def dashboard_url(process: subprocess.Popen[str]) -> re.Match[str]:
    """The dashboard's address, from the run's first line."""
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r"dashboard at (http://127\.0\.0\.1:\d+/)", first)
    assert found, first
    return found


def test_the_dashboard_counts_up_during_the_run_and_ends_at_its_total(
    redline_server: Server, browser: Browser, tmp_path: Path
) -> None:
    target = redline_server(Behaviour(latency=0.001))
    out = tmp_path / "run.json"
    process = dashboard_run(target.url, out, "--duration", "6s", "--linger", "60s")
    try:
        found = dashboard_url(process)
        watched = Watched(browser)
        page = watched.page
        page.goto(found.group(1))
        counts: list[int] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = page.locator("#live-requests")
            if shown.count():
                counts.append(int(shown.get_attribute("data-value") or 0))
                if page.text_content("#live-state") == "finished":
                    break
            time.sleep(0.25)
        assert page.text_content("#live-state") == "finished"
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        assert out.exists()  # written before the linger
        total = json.loads(out.read_text())["summary"]["total"]["requests"]
        assert counts == sorted(counts), "the count went down"
        assert len(set(counts)) >= 3, f"the count did not grow during the run: {counts}"
        assert counts[-1] == total
        assert len(drawn_charts(page)) == 5
        assert watched.complaints == []
        assert {re.sub(r"^(http://[^/]+/).*", r"\1", u) for u in watched.requests} == {
            found.group(1)
        }, "the dashboard asked for something off its own server"
        page.close()
        process.send_signal(signal.SIGINT)  # leave the linger at once
        _, stderr = process.communicate(timeout=30)
        # the run's own exit code, not an interruption's (3 if a busy machine sent late)
        assert process.returncode in (0, 3), stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_a_run_without_intervals_draws_empty_charts_and_does_not_hang(
    browser: Browser, tmp_path: Path
) -> None:
    empty = RunResult(id="empty", plan={"name": "shop"}, started_at="", intervals=())
    html = tmp_path / "empty.html"
    html.write_text(html_report(empty))
    watched = Watched(browser)
    watched.page.goto(html.as_uri(), timeout=10_000)
    assert set(drawn_charts(watched.page)) == {
        "latency-all", "throughput", "errors", "spectrum", "histogram"
    }  # fmt: skip
    assert watched.complaints == []
    watched.page.close()


@pytest.mark.parametrize("errors", [0.0, 0.004])
def test_counts_are_drawn_with_whole_number_ticks(
    browser: Browser, tmp_path: Path, errors: float
) -> None:
    # no errors at all, or one or two now and then: never "1, 1, 1, 0, 0, 0"
    run = synthetic_run(3, errors=errors, rate=300)
    html = tmp_path / "counts.html"
    html.write_text(html_report(run))
    watched = Watched(browser)
    watched.page.goto(html.as_uri(), timeout=10_000)
    ticks = watched.page.locator("svg.chart[data-chart=errors] .grid text").all_text_contents()
    # the y axis is labelled first, in counts; the time axis after it, in seconds
    y_ticks = [float(t.replace(",", "")) for t in ticks if not t.endswith("s")]
    assert y_ticks, ticks
    assert all(v == int(v) for v in y_ticks), ticks
    assert len(set(y_ticks)) == len(y_ticks), ticks  # no label twice
    assert watched.complaints == []
    watched.page.close()


def _target(scale: float) -> Any:
    from redline.core import (
        ProfileFunction,
        TargetProfile,
        TargetReport,
        TargetVerdict,
        UseRow,
        WatchedThing,
    )

    app = "/srv/shop.py"
    folded = {
        f"main ({app}:1);handler ({app}:5);scan_catalogue ({app}:9)": int(60 * scale),
        f"main ({app}:1);handler ({app}:5);scan_catalogue ({app}:10)": int(20 * scale),
        f"main ({app}:1);handler ({app}:5);render ({app}:20)": 20,
    }
    total = sum(folded.values())
    top = (
        ProfileFunction(
            "scan_catalogue", app, 9, 80 * scale / total * 100, 80 * scale / total * 100
        ),
        ProfileFunction("render", app, 20, 20 / total * 100, 20 / total * 100),
    )
    return TargetReport(
        watched=(WatchedThing("serve", "process", cores=1.0, python=True),),
        samples={
            "serve": tuple(
                {"interval": float(i), "cpu_pct": 90.0, "rss_bytes": 50e6, "threads": 4.0}
                for i in range(10)
            )
        },
        profile=TargetProfile(67.0, (1.0, 9.0), samples=total, top=top, folded=folded),
        use=(UseRow("cpu", "serve", 90.0),),
        verdict=TargetVerdict("cpu", "CPU of serve (90% of its one core)"),
    )


def test_the_target_sections_draw_charts_a_use_table_and_a_working_flamegraph(
    browser: Browser, tmp_path: Path
) -> None:
    run = synthetic_run(3, intervals=10)
    page_file = tmp_path / "report.html"
    page_file.write_text(
        html_report(run, target=_target(3.0), baseline=run, baseline_target=_target(1.0))
    )
    watched = Watched(browser)
    page = watched.page
    page.goto(page_file.as_uri())
    assert watched.complaints == []
    charts = drawn_charts(page)
    assert charts["target-cpu"]["lines"] == 1
    assert charts["target-memory"]["lines"] == 1
    assert "bottleneck: cpu" in page.locator(".bottleneck").inner_text()
    use = page.locator("h2", has_text="USE").locator("xpath=..").locator("tbody tr")
    assert use.count() == 1
    frames = page.locator("svg.flamegraph g.frame")
    names = frames.evaluate_all(
        "gs => gs.map(g => g.querySelector('title').textContent.split('\\n')[0])"
    )
    # lines of one function are one frame
    assert names.count("scan_catalogue (/srv/shop.py)") == 1
    grew = page.evaluate(
        """() => [...document.querySelectorAll('svg.flamegraph g.frame')]
            .filter(g => g.querySelector('title').textContent.startsWith('scan_catalogue'))
            .map(g => g.querySelector('rect').getAttribute('fill'))"""
    )
    assert grew[0].startswith("rgb(235,")  # a larger share than the baseline's: red
    page.fill(".flame-search", "render")
    marked = page.evaluate(
        """() => [...document.querySelectorAll('svg.flamegraph rect')]
            .filter(r => r.getAttribute('fill') === '#c026d3').length"""
    )
    assert marked == 1
    assert "matched:" in page.locator(".flame-tools .caption").first.inner_text()
    before = frames.count()
    page.locator("svg.flamegraph g.frame", has_text="render").first.click()
    assert page.locator("svg.flamegraph g.frame").count() < before  # zoomed into one frame
    assert page.locator("table", has_text="baseline").last.locator("tbody tr").count() >= 1
    assert not [r for r in watched.requests if not r.startswith("file:")]


def test_the_traces_section_draws_the_attribution_and_a_waterfall(
    browser: Browser, tmp_path: Path
) -> None:
    from redline.core import Span, SpanShare, TraceReport, Waterfall

    trace = "ab" * 16
    spans = (
        Span(trace, "01" * 8, None, "gateway", "GET /checkout", 0, 40_000_000),
        Span(trace, "02" * 8, "01" * 8, "payments", "charge", 5_000_000, 30_000_000),
    )
    traces = TraceReport(
        attribution={"checkout": {"p99": (SpanShare("payments", "charge", 0.62, 25.0),)}},
        waterfalls={"checkout": Waterfall(trace, 41.0, spans)},
        counts={"joined": 9, "received": 18},
    )
    page_file = tmp_path / "report.html"
    page_file.write_text(html_report(synthetic_run(4, intervals=5), traces=traces))
    watched = Watched(browser)
    page = watched.page
    page.goto(page_file.as_uri())
    assert watched.complaints == []
    rows = page.locator("table.attribution tbody tr")
    assert rows.count() == 1
    assert "62.0%" in rows.first.inner_text()
    bars = page.locator("svg.waterfall rect")
    assert bars.count() == 2
    widths = bars.evaluate_all("rs => rs.map(r => Number(r.getAttribute('width')))")
    assert widths[1] < widths[0]  # the child is shorter than the request
    assert "trace " + trace in page.locator(".chart-title", has_text="Slowest traced").inner_text()


def answered(page: Page, text: str) -> None:
    """Wait for the control panel's answer (polled: the page's policy forbids eval)."""
    deadline = time.monotonic() + 10
    while page.text_content("#control-answer") != text:
        assert time.monotonic() < deadline, page.text_content("#control-answer")
        time.sleep(0.05)


def test_the_dashboards_buttons_pause_resume_and_set_the_rate(
    redline_server: Server, browser: Browser, tmp_path: Path
) -> None:
    target = redline_server(Behaviour(latency=0.001))
    out = tmp_path / "run.json"
    # Long enough that the run is still going when the last window closes, however slowly
    # the page loads (a 12 s run had ended by then on a busy CI machine: nothing sent); the
    # test stops it with Ctrl-C once it has seen what it came for.
    process = dashboard_run(target.url, out, "--duration", "90s", "--no-linger", "--control", "0")
    try:
        found = dashboard_url(process)
        watched = Watched(browser)
        page = watched.page
        page.goto(found.group(1))
        page.wait_for_selector("#control-pause", timeout=20_000)
        time.sleep(1.0)
        page.click("#control-pause")
        answered(page, "pause: done")
        time.sleep(0.5)  # in flight: done
        before = target.requests_total
        time.sleep(1.5)
        assert target.requests_total == before  # paused: nothing sent
        page.click("#control-resume")
        page.fill("#control-value", "300")
        page.click("#control-set")
        answered(page, "rate: done")
        time.sleep(2.2)
        after = target.requests_total
        time.sleep(1.0)
        assert target.requests_total - after == pytest.approx(300, abs=45)
        assert watched.complaints == []
        page.close()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr  # interrupted, and its record kept
        actions = [e["action"] for e in json.loads(out.read_text())["control"]]
        assert actions == ["pause", "resume", "rate"]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_report_of_a_plan_with_scenarios_shows_each_scenario(
    redline_server: Server, browser: Browser, tmp_path: Path
) -> None:
    target = redline_server(Behaviour(latency=0.001))
    plan = tmp_path / "scenarios.yaml"
    plan.write_text(
        f"""
target: {target.url}
scenarios:
  browse: {{executor: constant-arrival-rate, rate: 50/s, duration: 2s,
            requests: [{{name: home, path: /}}]}}
  setup: {{executor: per-vu-iterations, vus: 2, iterations: 5,
           requests: [{{name: signup, method: POST, path: /signup}}]}}
"""
    )
    out, html = tmp_path / "run.json", tmp_path / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
         "--out", str(out), "--html", str(html)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(out.read_text())["summary"]["workloads"]
    watched = Watched(browser)
    page = watched.page
    page.goto(html.as_uri())
    page.wait_for_selector("#workloads")
    rows = page.evaluate(
        """() => [...document.querySelectorAll('#workloads tbody tr')].map(tr =>
            [...tr.children].map(td => td.dataset.value ?? td.textContent))"""
    )  # fmt: skip
    assert [r[:3] for r in rows] == [
        ["browse", "constant-arrival-rate", "0-2"], ["setup", "per-vu-iterations", "0-600"],
    ]  # fmt: skip
    for row in rows:
        assert int(row[3]) == summary[row[0]]["iterations"]
        assert int(row[4]) == summary[row[0]]["requests"]
    assert int(rows[1][3]) == 10
    assert watched.complaints == []
    page.close()


def test_custom_metrics_are_drawn_over_time(browser: Browser, tmp_path: Path) -> None:
    # a queue backing up then draining, and job latency per interval: what Jobs records
    depths = [0, 40, 120, 260, 300, 180, 60, 0, 0, 0]
    result = synthetic_run(7)
    intervals = []
    for interval, depth in zip(result.intervals, depths, strict=True):
        latency = Histogram()
        latency.record_values(np.full(20, (50 + depth) * TREND_SCALE, dtype=np.int64))
        metrics = {
            "queue_depth": MetricInterval(kind="gauge", count=1, total=depth, last=depth,
                                          low=depth, high=depth),
            "job_latency": MetricInterval(kind="trend", count=20, total=20.0 * (50 + depth),
                                          low=50 + depth, high=50 + depth, histogram=latency),
        }  # fmt: skip
        intervals.append(dataclasses.replace(interval, metrics=metrics))
    result = dataclasses.replace(result, intervals=tuple(intervals))
    html = tmp_path / "metrics.html"
    html.write_text(html_report(result))
    watched = Watched(browser)
    watched.page.goto(html.as_uri(), timeout=10_000)
    watched.page.wait_for_selector("#metric-charts")
    charts = drawn_charts(watched.page)
    assert charts["metric-queue_depth"]["lines"] == 1
    assert charts["metric-job_latency"]["lines"] == 2  # p50 and p99
    titles = watched.page.evaluate(
        "() => [...document.querySelectorAll('#metric-charts svg.chart')].map(s => s.dataset.chart)"
    )
    assert sorted(titles) == ["metric-job_latency", "metric-queue_depth"]
    # the drawn series carry the intervals' own numbers
    data = json.loads(
        watched.page.evaluate("() => document.getElementById('redline-data').textContent")
    )
    series = {m["name"]: m for m in data["metric_series"]}
    assert series["queue_depth"]["lines"]["value"] == depths
    assert series["job_latency"]["lines"]["p99"] == pytest.approx(
        [50 + d for d in depths], rel=0.01
    )
    assert watched.complaints == []
    watched.page.close()
