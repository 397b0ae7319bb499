"""Canary judgement: A/A passes, +20% p99 or +1 point of errors fails, no traffic fails.

The judgements are simulated from a recorded distribution: one real run against the
test server (lognormal service times plus everything the loopback, the event loop and
the recorder add), kept in tests/fixtures/recorded, whose merged latency histogram is
drawn from, interval by interval, as baseline and canary cohorts: 30 intervals of 300
requests each (a half-hour canary judged on one-minute steps at 5 req/s a cohort), 1%
errors. Seeds are fixed: the same verdicts every time (97 A/A passes, 99 and 100
failures when this was written).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from redline.analysis import Side
from redline.core import EndpointInterval, Histogram, bucket_values
from redline.rollout import (
    FAIL,
    HIGH,
    NODATA,
    PASS,
    JudgePolicy,
    MetricPolicy,
    cohort_of,
    judge,
)

INTERVALS = 30
PER_INTERVAL = 300


RECORDED = Path(__file__).parents[1] / "fixtures" / "recorded" / "testserver-latency.json"


@pytest.fixture(scope="module")
def recorded() -> tuple[np.ndarray, np.ndarray]:
    """Latency values (us) and their counts, as recorded (the file says how)."""
    merged = Histogram.decode(json.loads(RECORDED.read_text())["histogram"])
    indices, counts = merged.to_sparse()
    assert counts.sum() >= 2000  # enough of a distribution to draw from
    return bucket_values(indices).astype(np.float64), counts.astype(np.float64)


def cohort(
    recorded: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    *,
    scale: float = 1.0,
    errors: float = 0.01,
    intervals: int = INTERVALS,
    per_interval: int = PER_INTERVAL,
) -> Side:
    values, counts = recorded
    items = []
    for _ in range(intervals):
        drawn = rng.choice(values, size=per_interval, p=counts / counts.sum())
        # Jitter within the bucket, so a scaled copy is not just the same buckets renamed.
        drawn = drawn * rng.uniform(0.98, 1.02, per_interval) * scale
        latency = Histogram()
        latency.record_values(drawn.astype(np.int64) + 1)
        items.append(
            EndpointInterval(
                requests=per_interval,
                errors=int(rng.binomial(per_interval, errors)),
                latency=latency,
            )
        )
    return cohort_of(items, [1.0] * intervals)


def verdicts(
    recorded: tuple[np.ndarray, np.ndarray], seed: int, trials: int, **canary: float
) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for trial in range(trials):
        baseline = cohort(recorded, rng)
        candidate = cohort(recorded, rng, **canary)
        out.append(judge(baseline, candidate, resamples=500, seed=trial).verdict)
    return out


@pytest.mark.timeout(600)
def test_a_canary_the_same_as_its_baseline_passes_95_in_100(recorded) -> None:  # type: ignore[no-untyped-def]
    results = verdicts(recorded, seed=1, trials=100)
    assert results.count(PASS) >= 95, results


@pytest.mark.timeout(600)
def test_a_canary_with_a_fifth_more_p99_fails_95_in_100(recorded) -> None:  # type: ignore[no-untyped-def]
    results = verdicts(recorded, seed=2, trials=100, scale=1.2)
    assert results.count(FAIL) >= 95, results


@pytest.mark.timeout(600)
def test_a_canary_with_one_more_point_of_errors_fails_95_in_100(recorded) -> None:  # type: ignore[no-untyped-def]
    results = verdicts(recorded, seed=3, trials=100, errors=0.02)
    assert results.count(FAIL) >= 95, results


def test_a_canary_that_receives_no_traffic_fails(recorded) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    baseline = cohort(recorded, rng)
    empty = cohort_of([EndpointInterval() for _ in range(INTERVALS)], [1.0] * INTERVALS)
    judgement = judge(baseline, empty)
    assert judgement.verdict == FAIL
    assert judgement.score == 0
    assert judgement.requests == {"baseline": INTERVALS * PER_INTERVAL, "canary": 0}
    assert "canary cohort has 0 requests" in judgement.reasons[0]
    assert all(m.classification == NODATA and m.failed for m in judgement.metrics)
    # Nor does a canary with no intervals at all, or too few requests for the minimum.
    assert judge(baseline, cohort_of([], [])).verdict == FAIL
    trickle = cohort(recorded, rng, intervals=5, per_interval=10)
    assert judge(baseline, trickle).verdict == FAIL


def test_too_few_requests_for_a_p99_is_nodata_and_a_critical_nodata_fails(recorded) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    # 200 requests a cohort: enough for the minimum, too few for a p99 (about 480).
    small = [cohort(recorded, rng, intervals=4, per_interval=50) for _ in range(2)]
    judgement = judge(*small)
    p99 = next(m for m in judgement.metrics if m.metric == "p99")
    assert p99.classification == NODATA
    assert judgement.verdict == FAIL
    assert "critical metric p99 failed" in " ".join(judgement.reasons)
    # Without p99 in the policy the same data can pass.
    policy = JudgePolicy(metrics=(MetricPolicy("p50"), MetricPolicy("error_ratio")))
    assert judge(*small, policy).verdict == PASS


def test_weights_thresholds_and_directions_make_the_score(recorded) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(6)
    baseline = cohort(recorded, rng)
    faster = cohort(recorded, rng, scale=0.7)
    # Lower latency is not a failure when the bad direction is up...
    judgement = judge(baseline, faster)
    assert judgement.verdict == PASS
    assert judgement.score == 100
    assert {m.classification for m in judgement.metrics if m.metric != "error_ratio"} == {"low"}
    # ...but is when either direction is bad (a canary that suddenly answers too fast may
    # be answering from an error path).
    policy = JudgePolicy(
        metrics=(
            MetricPolicy("p50", bad="either", weight=3),
            MetricPolicy("error_ratio", weight=1, critical=True),
        )
    )
    either = judge(baseline, faster, policy)
    assert either.score == pytest.approx(25.0)
    assert either.verdict == FAIL  # below the marginal threshold (75)
    marginal = JudgePolicy(metrics=policy.metrics, pass_score=95, marginal_score=20)
    assert judge(baseline, faster, marginal).verdict == "marginal"
    # A slower canary: high, failed, and critical p99 fails the judgement whatever the score.
    slower = judge(baseline, cohort(recorded, rng, scale=1.3))
    p99 = next(m for m in slower.metrics if m.metric == "p99")
    assert (p99.classification, p99.failed, p99.critical) == (HIGH, True, True)
    assert slower.verdict == FAIL
    assert p99.low is not None
    assert p99.low > 1


def test_a_judgement_reads_the_same_inference_as_compare(recorded) -> None:  # type: ignore[no-untyped-def]
    from redline.analysis import decide, measure_sides

    rng = np.random.default_rng(7)
    sides = (cohort(recorded, rng), cohort(recorded, rng, scale=1.15))
    judgement = judge(*sides, resamples=800, seed=9)
    raw, _ = measure_sides(
        {"total": sides},
        resamples=800,
        rng=np.random.default_rng(9),
        metrics=["p50", "p95", "p99", "error_ratio"],
    )
    level, compared = decide(raw, floor=0.05, alpha=0.02)
    assert judgement.level == level
    for m, c in zip(judgement.metrics, compared, strict=True):
        assert (m.metric, m.ratio, m.low, m.high) == (c.metric, c.ratio, c.low, c.high)
        if c.outcome in ("regression", "improvement"):
            assert m.classification in (HIGH, "low")
        else:
            assert m.classification == PASS


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"metrics": "p99"}, "policy.metrics: expected a list"),
        ({"metrics": [{"metric": "p42"}]}, "policy.metrics[0]: metric: expected one of"),
        ({"metrics": [{"metric": "p99", "bad": "up"}]}, "policy.metrics[0]: bad: expected"),
        ({"metrics": [{"metric": "p99", "wieght": 2}]}, "policy.metrics[0]: unknown key 'wieght'"),
        ({"metrics": [{"metric": "p99", "weight": 0}]}, "weight: expected a positive"),
        ({"pass": 50, "marginal": 80}, "policy: scores: expected 0 <= marginal <= pass"),
        ({"min_requests": 0}, "min_requests: expected at least 1"),
        ({"thresholds": {}}, "policy: unknown key 'thresholds'"),
    ],
)
def test_bad_policies_are_named_by_their_path(policy: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        JudgePolicy.from_dict(policy)
