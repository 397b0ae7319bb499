"""Sub-metric objectives (k6's ``p(95){tag:value}``): judged on the tagged requests only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redline.analysis import evaluate
from redline.core import PlanError, parse_objective
from redline.engine import run_plan
from redline.plan import plan_from_dict
from redline.testing import Behaviour, TestServer


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    routes = {
        "/search": Behaviour(latency=0.06),
        "/slow-ok": Behaviour(latency=0.03),
        "/fast-error": Behaviour(status=503),
    }
    with TestServer(routes=routes).running() as running:
        yield running


def plan_with(url: str, slo: list[str]) -> object:
    return plan_from_dict(
        {
            "target": url,
            "requests": [
                {"name": "home", "path": "/", "weight": 19, "tags": {"kind": "page"}},
                {"name": "search", "path": "/search", "tags": {"kind": "search", "team": "s"}},
            ],
            "load": {"rate": 200},
            "duration": "3s",
            "seed": 5,
            "slo": slo,
        },
        source="plan.yaml",
    )


def test_a_tagged_sub_metric_fails_while_the_aggregate_passes(server: TestServer) -> None:
    plan = plan_with(server.url, ["p90 < 30ms", "p90{kind:search} < 30ms",
                                  "p90{kind:page,method:GET} < 30ms"])  # fmt: skip
    tagged = plan.slos[1]  # type: ignore[attr-defined]
    assert tagged.scope == "tags"
    assert tagged.endpoints == ("search",)
    result = run_plan(plan)  # type: ignore[arg-type]
    overall, search, pages = evaluate(result, plan.slos)  # type: ignore[attr-defined]
    # one request in twenty is a 60 ms search: the whole traffic's p90 is fast...
    assert overall.outcome == "pass", overall.reason
    # ...the searches' own p90 is not
    assert search.outcome == "fail", search.reason
    assert search.value is not None
    assert search.value >= 55
    assert search.samples == result.endpoint("search").requests
    assert pages.outcome == "pass"
    assert pages.samples == result.endpoint("home").requests


def test_a_status_sub_metric_judges_only_responses_of_that_status(server: TestServer) -> None:
    plan = plan_from_dict(
        {
            "target": server.url,
            "scenarios": {
                "mixed": {
                    "executor": "constant-arrival-rate", "rate": "100/s", "duration": "3s",
                    "requests": [
                        {"name": "ok", "path": "/slow-ok"},
                        {"name": "error", "path": "/fast-error", "weight": 9},
                    ],
                },
            },
            "slo": ["p50 < 10ms", "p50{scenario:mixed,status:200} < 10ms",
                    "p50{status:503} < 10ms"],
        },
        source="plan.yaml",
    )  # fmt: skip
    result = run_plan(plan)
    overall, ok, errors = evaluate(result, plan.slos)
    assert overall.outcome == "pass", overall.reason  # nine in ten answers are fast 503s
    assert ok.outcome == "fail", ok.reason  # every 200 took 30 ms
    assert ok.samples == result.endpoint("ok").requests
    assert errors.outcome == "pass", errors.reason
    assert errors.samples == result.endpoint("error").requests
    # the split survives the JSON round trip, so a stored run is judged the same
    again = type(result).from_dict(result.to_dict())
    assert [v.outcome for v in evaluate(again, plan.slos)] == ["pass", "fail", "pass"]


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ("p99{kind:nothing} < 1s", r"no request has the tags \{kind:nothing\}"),
        ("p99{status:ok} < 1s", "status is an HTTP status code like 200"),
        ("p99{kind} < 1s", "expected tags like"),
    ],
)
def test_tag_filters_that_select_nothing_are_refused(
    server: TestServer, objective: str, message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        plan_with(server.url, [objective])


def test_tags_are_parsed_like_k6s_and_survive_a_round_trip() -> None:
    objective = parse_objective("p(95){ team:s , kind:'search' } < 200")
    assert objective.tags == (("kind", "search"), ("team", "s"))
    assert objective.scope == "tags"
    assert objective.threshold == 200.0
    assert type(objective).from_dict(objective.to_dict()) == objective
    with pytest.raises(PlanError, match="not both"):
        parse_objective("p99{kind:a} < 1s", scope="endpoint", scope_name="home")
    with pytest.raises(PlanError, match="a system tag"):
        plan_from_dict(
            {"target": "http://127.0.0.1:1", "requests": [{"path": "/", "tags": {"name": "x"}}],
             "load": {"rate": 1}, "duration": "1s"}, source="plan.yaml",
        )  # fmt: skip
