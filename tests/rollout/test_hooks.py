"""The hooks server against the documented shapes of Argo Rollouts and Flagger.

The payloads and templates below are the ones their documentation shows (Argo Rollouts'
docs/analysis/web.md, Flagger's docs/gitbook/usage/webhooks.md); the judgements behind
them are real, on cohorts drawn from the recorded distribution of test_judge.py. (No
Kubernetes cluster runs here, so neither controller does: the tests send what they send.)
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import yaml

from redline.analysis import Side
from redline.rollout import FLAGGER_HOOKS, HookServer, PrometheusError, judge

from .test_judge import cohort, recorded  # noqa: F401 - the fixture, shared

# Argo Rollouts' documented web metric, with redline's URL and JSON path.
ARGO_TEMPLATE = """
metrics:
- name: redline-judge
  successCondition: result == true
  provider:
    web:
      url: "{url}judge?baseline=stable&canary={canary}"
      timeoutSeconds: 20
      jsonPath: "{{$.passed}}"
- name: redline-score
  successCondition: result >= 95
  provider:
    web:
      url: "{url}judge?baseline=stable&canary={canary}"
      jsonPath: "{{$.score}}"
"""

# Flagger's documented webhook payload.
FLAGGER_PAYLOAD = {
    "name": "podinfo",
    "namespace": "test",
    "phase": "Progressing",
    "metadata": {"test": "all", "token": "16688eb5e9f289f1991c"},
}


@pytest.fixture
def hooks(recorded: tuple[np.ndarray, np.ndarray]) -> Iterator[HookServer]:  # noqa: F811
    rng = np.random.default_rng(31)
    cohorts: dict[str, Side] = {
        "stable": cohort(recorded, rng),
        "podinfo-primary": cohort(recorded, rng),
        "twin": cohort(recorded, rng),
        "slow": cohort(recorded, rng, scale=1.3),
        "podinfo": cohort(recorded, rng, scale=1.3),
    }

    def judged(baseline: str, canary: str) -> Any:
        if canary == "down":
            raise PrometheusError("http://127.0.0.1:1: cannot reach Prometheus")
        return judge(cohorts[baseline], cohorts[canary])

    budget = threading.Event()  # set: the budget allows a rollout
    with HookServer(
        judged, gate=lambda: (budget.is_set(), "budget"), errors=(PrometheusError,)
    ) as server:
        server.budget = budget  # type: ignore[attr-defined]
        yield server


def call(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def json_path(document: Any, path: str) -> Any:
    """Argo's ``{$.a.b}`` JSONPath, the subset its web provider's examples use."""
    assert path.startswith("{$")
    assert path.endswith("}")
    for part in path[2:-1].split(".")[1:]:
        document = document[part]
    return document


def argo_measure(metric: dict[str, Any]) -> bool:
    """What Argo does with one web metric: GET, select ``jsonPath``, test the condition."""
    web = metric["provider"]["web"]
    status, body = call(web["url"])
    assert status == 200, body  # Argo counts anything else as an error, not a result
    result = json_path(body, web["jsonPath"])
    condition = metric["successCondition"]
    if condition == "result == true":
        return result is True
    assert condition == "result >= 95"
    return float(result) >= 95


@pytest.mark.parametrize(("canary", "passes"), [("twin", True), ("slow", False)])
def test_argo_rollouts_web_metrics_read_the_verdict_and_the_score(
    hooks: HookServer, canary: str, passes: bool
) -> None:
    template = yaml.safe_load(ARGO_TEMPLATE.format(url=hooks.url, canary=canary))
    outcomes = [argo_measure(metric) for metric in template["metrics"]]
    assert outcomes == [passes, passes]


def test_argo_gets_an_error_not_a_result_when_nothing_can_be_judged(hooks: HookServer) -> None:
    status, body = call(f"{hooks.url}judge?baseline=stable&canary=down")
    assert status == 503
    assert "cannot reach Prometheus" in body["error"]
    status, body = call(f"{hooks.url}judge?baseline=stable")
    assert status == 400
    # POST with a JSON body works as GET does (Argo's method: POST).
    status, body = call(f"{hooks.url}judge", {"baseline": "stable", "canary": "twin"})
    assert (status, body["verdict"]) == (200, "pass")


def test_flagger_hooks_advance_a_good_canary_and_roll_back_a_bad_one(hooks: HookServer) -> None:
    good = {**FLAGGER_PAYLOAD, "metadata": {**FLAGGER_PAYLOAD["metadata"], "canary": "twin"}}
    # The documented payload names podinfo: podinfo-primary is its baseline, podinfo slower.
    for hook in ("rollout", "confirm-traffic-increase", "confirm-promotion"):
        status, body = call(f"{hooks.url}flagger/{hook}", FLAGGER_PAYLOAD)
        assert status == 403, (hook, body)  # halt: a failed check
        assert (body["baseline"], body["canary"], body["verdict"]) == (
            "podinfo-primary", "podinfo", "fail"
        )  # fmt: skip
        status, body = call(f"{hooks.url}flagger/{hook}", good)
        assert status == 200, (hook, body)  # advance
    # rollback: 200 (roll back) when the judgement fails, 403 when it passes.
    status, body = call(f"{hooks.url}flagger/rollback", FLAGGER_PAYLOAD)
    assert (status, body["rollback"]) == (200, True)
    status, body = call(f"{hooks.url}flagger/rollback", good)
    assert (status, body["rollback"]) == (403, False)


def test_flagger_gates_follow_the_budget_and_the_rest_are_recorded(hooks: HookServer) -> None:
    for hook in ("confirm-rollout", "pre-rollout"):
        assert call(f"{hooks.url}flagger/{hook}", FLAGGER_PAYLOAD)[0] == 403
    hooks.budget.set()  # type: ignore[attr-defined]
    for hook in ("confirm-rollout", "pre-rollout"):
        assert call(f"{hooks.url}flagger/{hook}", FLAGGER_PAYLOAD)[0] == 200
    event = {
        "name": "podinfo",
        "namespace": "test",
        "phase": "Failed",
        "metadata": {"eventMessage": "rolled back", "eventType": "Warning", "timestamp": "1"},
    }
    for hook in ("post-rollout", "event"):
        assert call(f"{hooks.url}flagger/{hook}", event)[0] == 200
    status, listed = call(f"{hooks.url}judgements")
    assert status == 200
    assert [j["hook"] for j in listed["judgements"]] == [
        "confirm-rollout", "pre-rollout", "confirm-rollout", "pre-rollout", "post-rollout", "event"
    ]  # fmt: skip
    assert set(FLAGGER_HOOKS) >= {j["hook"] for j in listed["judgements"]}
    assert call(f"{hooks.url}flagger/unknown", event)[0] == 404
    assert call(f"{hooks.url}flagger/rollout", {"metadata": "x"})[0] == 400
