"""What the HTML report and dashboard draw: the page document, the file, the live server."""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import urllib.request

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from redline.analysis import compare_runs, evaluate
from redline.core import EndpointInterval, Histogram, RunResult, parse_objective
from redline.report import Dashboard, html_report
from redline.report._dashboard import active_stage
from redline.report._html import page_json
from redline.report._page import MAX_POINTS, SPECTRUM, TOTAL, StepCache, page_data
from synthetic import synthetic_run


def data_of(html: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="redline-data">(.*?)</script>', html)
    assert found, "no data element in the page"
    parsed: dict[str, object] = json.loads(found.group(1))
    return parsed


def with_endpoints(run: RunResult) -> RunResult:
    """The run's traffic split over two endpoints, one of them failing with 503s."""
    slow = Histogram()
    slow.record_values([30_000, 40_000, 50_000, 60_000, 70_000, 5_000_000, 5_000_000])
    intervals = []
    for interval in run.intervals:
        home = interval.endpoints["home"]
        broken = EndpointInterval(
            requests=7, errors=7, status={503: 5}, error_classes={"timeout": 2}, latency=slow
        )
        intervals.append(dataclasses.replace(interval, endpoints={"home": home, "pay": broken}))
    return dataclasses.replace(run, intervals=tuple(intervals))


def test_series_and_distribution_add_up_to_the_run() -> None:
    run = with_endpoints(synthetic_run(3, intervals=12, rate=400, errors=0.05))
    data = page_data(run)
    series = data["series"]
    total = run.total()
    assert sum(series["requests"]) == total.requests
    assert series["t"] == [i.start_s + i.duration_s for i in run.intervals]
    assert sum(data["distribution"]["histogram"]["counts"]) == total.requests
    assert series["errors"]["HTTP 503"] == [5] * 12
    assert series["errors"]["timeout"] == [2] * 12
    rows = {row["name"]: row for row in data["endpoints"]}
    assert rows[TOTAL]["requests"] == total.requests
    assert rows[TOTAL]["p99"] == total.latency_ms["p99"]
    assert rows["pay"]["error_rate"] == 1.0
    spectrum = data["distribution"]["spectrum"][TOTAL]
    assert len(spectrum) == len(SPECTRUM)
    assert spectrum == sorted(spectrum)
    assert spectrum[-1] <= total.latency_ms["max"] + 1e-9


def repeated(count: int, warm: int = 0) -> RunResult:
    """``count`` one-second intervals of 3 requests each, the first ``warm`` warm-up."""
    one = synthetic_run(1, intervals=1, rate=3)
    first = one.intervals[0]
    intervals = tuple(
        dataclasses.replace(first, index=i, start_s=float(i), warmup=i < warm) for i in range(count)
    )
    return dataclasses.replace(one, intervals=intervals)


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=2 * MAX_POINTS + 7), st.integers(0, 100))
@example(MAX_POINTS, 0)
@example(MAX_POINTS + 1, 0)
@example(MAX_POINTS, 1)
def test_long_runs_merge_into_few_steps_without_losing_requests(count: int, warm: int) -> None:
    run = repeated(count, warm=min(warm, count - 1))
    data = page_data(run)
    series = data["series"]
    assert len(series["t"]) <= MAX_POINTS
    assert sum(series["requests"]) == 3 * count
    assert series["t"][-1] == count  # the last step ends where the run ends
    assert data["endpoints"][0]["requests"] == run.total().requests  # warm-up left out
    assert data["endpoints"][0]["p99"] == run.total().latency_ms["p99"]


def test_a_cache_gives_the_same_document_as_merging_anew() -> None:
    run = repeated(1300, warm=7)
    cache = StepCache()
    for count in (5, 600, 601, 1207, 1300):
        part = dataclasses.replace(run, intervals=run.intervals[:count])
        assert page_data(part, cache=cache) == page_data(part)


def test_an_hour_with_five_endpoints_stays_far_under_five_megabytes() -> None:
    base = synthetic_run(2, intervals=3600, rate=20)
    names = ["home", "search", "cart", "checkout", "login"]
    intervals = tuple(
        dataclasses.replace(i, endpoints={n: i.endpoints["home"] for n in names})
        for i in base.intervals
    )
    html = html_report(dataclasses.replace(base, intervals=intervals))
    assert len(html.encode()) < 5_000_000
    assert len(data_of(html)["series"]["t"]) == MAX_POINTS


def test_names_cannot_break_out_of_the_page() -> None:
    run = synthetic_run(1, intervals=2)
    hostile = "</script><script>alert(1)</script>"
    run = dataclasses.replace(run, plan={"name": hostile}, notes=(hostile,))
    html = html_report(run)
    assert hostile not in html
    data = data_of(html)
    assert data["run"]["plan"] == hostile
    assert data["notes"] == [hostile]


def test_not_a_number_becomes_null() -> None:
    assert json.loads(page_json({"a": float("nan"), "b": [float("inf"), 1.5]})) == {
        "a": None,
        "b": [None, 1.5],
    }


def test_the_report_forbids_every_request() -> None:
    html = html_report(synthetic_run(1, intervals=2))
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy
    assert "default-src 'none'" in policy.group(1)
    assert "connect-src" not in policy.group(1)
    assert not re.search(r"(src|href)=\"https?:", html)


def test_verdicts_and_comparison_are_carried_with_their_numbers() -> None:
    objective = parse_objective("p99 < 3ms")
    run = synthetic_run(4, intervals=10)
    slower = synthetic_run(5, intervals=10, scale=1.5)
    verdicts = evaluate(run, [objective])
    comparison = compare_runs([slower], [run])
    data = page_data(run, verdicts, baseline=slower, comparison=comparison)
    card = data["verdicts"][0]
    assert card["outcome"] == verdicts[0].outcome
    assert card["value"] == verdicts[0].value
    assert card["value_text"] == objective.format(verdicts[0].value)
    rows = {m["name"]: m for m in data["comparison"]["metrics"]}
    p50 = next(m for m in comparison.metrics if m.name == "p50")
    assert rows["p50"]["change"] == p50.ratio - 1
    assert rows["p50"]["outcome"] == "improvement"
    assert data["baseline"]["run"]["id"] == slower.id


def test_the_active_stage_follows_the_plan() -> None:
    stages = [{"duration": 3, "rate": 100}, {"duration": 4, "rate": 200}]
    plan = {"warmup_s": 2.0, "load": {"model": "open", "stages": stages}}
    assert active_stage(plan, 1.0) == "warm-up"
    assert active_stage(plan, 3.0) == "stage 1 of 2: 100/s for 3s"
    assert active_stage(plan, 6.5) == "stage 2 of 2: 200/s for 4s"
    assert active_stage(plan, 60.0) == "stage 2 of 2: 200/s for 4s"
    assert active_stage({"load": {"vus": 8}}, 0.0) == "steady 8 users"


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        body: bytes = response.read()
        return body


def test_the_dashboard_serves_the_run_so_far_then_the_final_result() -> None:
    run = synthetic_run(6, intervals=6, slo=[])
    objective = parse_objective("p99 < 50ms")
    plan = {"name": "shop", "duration_s": 6.0, "load": {"rate": 300}}
    with Dashboard(plan, [objective], port=0) as dashboard:
        page = get(dashboard.url).decode()
        assert 'data-events="/events"' in page
        assert "connect-src 'self'" in page
        assert json.loads(get(dashboard.url + "data"))["live"]["state"] == "running"
        dashboard.on_start(dataclasses.replace(run, intervals=(), stop_reason="running"))
        counts = []
        for interval in run.intervals[:4]:
            dashboard.on_interval(interval)
            data = json.loads(get(dashboard.url + "data"))
            counts.append(data["endpoints"][0]["requests"])
            assert data["live"]["stage"] == "steady 300/s"
            assert data["verdicts"][0]["name"] == "p99 < 50ms"
        assert counts == [300, 600, 900, 1200]
        verdicts = evaluate(run, [objective])
        dashboard.finish(run, verdicts)
        final = json.loads(get(dashboard.url + "data"))
        assert final["live"]["state"] == "finished"
        assert final["endpoints"][0]["requests"] == run.total().requests


def test_the_event_stream_sends_each_new_document_and_ends_on_close() -> None:
    run = synthetic_run(7, intervals=3)
    dashboard = Dashboard({"name": "shop"}, port=0)
    dashboard.on_start(dataclasses.replace(run, intervals=()))
    received: list[dict[str, object]] = []

    def listen() -> None:
        with urllib.request.urlopen(dashboard.url + "events", timeout=10) as stream:
            for line in stream:
                if line.startswith(b"data: "):
                    received.append(json.loads(line[6:]))
                    if len(received) == 4:
                        return

    reader = threading.Thread(target=listen)
    reader.start()
    try:
        for interval in run.intervals:
            while len(received) < interval.index + 1 and reader.is_alive():
                threading.Event().wait(0.01)
            dashboard.on_interval(interval)
        reader.join(timeout=10)
    finally:
        dashboard.close()
    assert not reader.is_alive()
    requests = [sum(d["series"]["requests"]) for d in received]
    assert requests == [0, 300, 600, 900]
    assert np.all(np.diff(requests) > 0)
