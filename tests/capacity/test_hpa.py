"""The HPA arithmetic against the Kubernetes controller's own test expectations.

Each case below is a fact taken from ``pkg/controller/podautoscaler``'s
``replica_calculator_test.go`` and ``horizontal_test.go`` (the inputs and the replicas the
controller must arrive at), written as redline's own test. A pod's CPU metric and request
are given per pod (the Kubernetes tests split them over two containers; the ratio is the
same).
"""

from __future__ import annotations

import math

import pytest

from redline.capacity._hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    Hpa,
    HpaController,
    MetricsUnavailableError,
    Pod,
    ScalingPolicy,
    ScalingRules,
    external_replicas,
    plain_metric_replicas,
    resource_replicas,
)


def pods(
    levels: list[int],
    count: int | None = None,
    *,
    ready: list[bool] | None = None,
    warming: list[bool] | None = None,
    phase: list[str] | None = None,
    deleting: list[bool] | None = None,
    requests: list[int] | None = None,
) -> list[Pod]:
    """Pods as the Kubernetes tests make them: the first ``len(levels)`` have metrics."""
    n = count if count is not None else len(levels)
    return [
        Pod(
            metric_milli=levels[i] if i < len(levels) else None,
            request_milli=requests[i] if requests else 1000,
            phase=phase[i] if phase else "Running",
            ready=ready[i] if ready else True,
            warming=warming[i] if warming else False,
            deleting=deleting[i] if deleting else False,
        )
        for i in range(n)
    ]


T, F = True, False

RESOURCE_CASES = [
    # (name, current, pods, target utilization, expected replicas)
    ("ScaleUp", 3, pods([300, 500, 700]), 30, 5),
    ("ScaleUpUnreadyLessScale", 3, pods([300, 500, 700], ready=[F, T, T]), 30, 4),
    ("ScaleUpHotCpuLessScale", 3, pods([300, 500, 700], warming=[T, F, F]), 30, 4),
    ("ScaleUpUnreadyNoScale", 3, pods([400, 500, 700], ready=[T, F, F]), 30, 3),
    (
        "ScaleHotCpuNoScale",
        3,
        pods([400, 500, 700], ready=[T, F, F], warming=[F, T, T]),
        30,
        3,
    ),
    (
        "ScaleUpIgnoresFailedPods",
        2,
        pods([500, 700], 4, ready=[T, T, F, F], phase=["Running"] * 2 + ["Failed"] * 2),
        30,
        4,
    ),
    (
        "ScaleUpIgnoresDeletionPods",
        2,
        pods([500, 700], 4, ready=[T, T, F, F], deleting=[F, F, T, T]),
        30,
        4,
    ),
    ("ScaleDown", 5, pods([100, 300, 500, 250, 250]), 50, 3),
    (
        "ScaleDownIncludeUnreadyPods",
        5,
        pods([100, 300, 500, 250, 250], ready=[T, T, T, F, F]),
        50,
        2,
    ),
    (
        "ScaleDownExcludeUnscheduledPods",
        5,
        pods([100], 5, ready=[T, F, F, F, F], phase=["Running"] + ["Pending"] * 4),
        50,
        1,
    ),
    (
        "ScaleDownIgnoreHotCpuPods",
        5,
        pods([100, 300, 500, 250, 250], warming=[F, F, F, T, T]),
        50,
        2,
    ),
    (
        "ScaleDownIgnoresFailedPods",
        5,
        pods(
            [100, 300, 500, 250, 250],
            7,
            ready=[T] * 5 + [F] * 2,
            phase=["Running"] * 5 + ["Failed"] * 2,
        ),
        50,
        3,
    ),
    (
        "ScaleDownIgnoresDeletionPods",
        5,
        pods([100, 300, 500, 250, 250], 7, ready=[T] * 5 + [F] * 2, deleting=[F] * 5 + [T] * 2),
        50,
        3,
    ),
    ("Tolerance", 3, pods([1010, 1030, 1020], requests=[900, 1000, 1100]), 100, 3),
    ("MissingMetrics", 4, pods([400, 95], 4), 100, 3),
    ("MissingMetricsNoChangeEq", 2, pods([1000], 2), 100, 2),
    ("MissingMetricsNoChangeGt", 2, pods([1900], 2), 100, 2),
    ("MissingMetricsNoChangeLt", 2, pods([600], 2), 100, 2),
    ("MissingMetricsUnreadyChange", 3, pods([100, 450], 3, ready=[F, T, T]), 50, 3),
    ("MissingMetricsHotCpuNoChange", 3, pods([100, 450], 3, warming=[T, F, F]), 50, 3),
    ("MissingMetricsUnreadyScaleUp", 3, pods([100, 2000], 3, ready=[F, T, T]), 50, 4),
    (
        "MissingMetricsHotCpuScaleUp",
        3,
        pods([100, 2000], 3, ready=[F, T, T], warming=[T, F, F]),
        50,
        4,
    ),
    ("MissingMetricsUnreadyScaleDown", 4, pods([100, 100, 100], 4, ready=[F, T, T, T]), 50, 3),
    ("DuringRollingUpdateWithMaxSurge", 2, pods([100, 100], 3), 50, 2),
]


@pytest.mark.parametrize(
    ("current", "given", "target", "expected"),
    [case[1:] for case in RESOURCE_CASES],
    ids=[case[0] for case in RESOURCE_CASES],
)
def test_resource_cpu_cases_of_the_replica_calculator(
    current: int, given: list[Pod], target: int, expected: int
) -> None:
    assert resource_replicas(given, target, current) == expected


def test_the_computed_tolerance_case() -> None:
    """TestReplicaCalcComputedToleranceAlgImplementation, computed as the test computes it."""
    start, used = 10, 10 * 150
    requested = 2 * used
    per_pod = requested // start
    requests = [per_pod + d for d in (100, -100, 10, -10, 2, -2, 1, -1, 0, 0)]
    levels = [used // 10] * 10
    target = abs(1 / (requested / used * (1 - 0.1))) + 0.01
    final = math.ceil(used / (requested * target) * start)
    assert resource_replicas(pods(levels, requests=requests), int(target * 100), start) == final
    close = abs(1 / (requested / used * (1 - 0.1))) + 0.004
    assert resource_replicas(pods(levels, requests=requests), int(close * 100), start) == start


def test_no_metric_at_all_is_an_error_not_a_guess() -> None:
    with pytest.raises(MetricsUnavailableError):
        resource_replicas(pods([], 3), 50, 3)
    with pytest.raises(MetricsUnavailableError):
        plain_metric_replicas(pods([10, 10], phase=["Pending", "Pending"]), 1000, 2)


PODS_METRIC_CASES = [
    ("ScaleUpCM", 3, pods([20000, 10000, 30000]), 15000, 4),
    (
        "ScaleUpCMUnreadyHotCpuNoLessScale",
        3,
        pods([50000, 10000, 30000], ready=[T, T, F], warming=[F, F, T]),
        15000,
        6,
    ),
    (
        "ScaleUpCMUnreadyHotCpuScaleWouldScaleDown",
        3,
        pods([50000, 15000, 30000], ready=[F, T, F], warming=[T, F, T]),
        15000,
        7,
    ),
    ("ScaleDownCM", 5, pods([12000] * 5), 20000, 3),
    ("ToleranceCM", 3, pods([20000, 21000, 21000]), 20000, 3),
]


@pytest.mark.parametrize(
    ("current", "given", "target", "expected"),
    [case[1:] for case in PODS_METRIC_CASES],
    ids=[case[0] for case in PODS_METRIC_CASES],
)
def test_pods_metric_cases_of_the_replica_calculator(
    current: int, given: list[Pod], target: int, expected: int
) -> None:
    assert plain_metric_replicas(given, target, current) == expected


@pytest.mark.parametrize(
    ("name", "current", "ready", "value", "average", "expected"),
    [
        ("ScaleUpCMExternal", 1, 1, 4400, None, 2),
        ("ScaleUpCMExternalIgnoresUnreadyPods", 3, 1, 4400, None, 2),
        ("ScaleUpPerPodCMExternal", 3, 3, None, 2150, 4),
        ("ScaleDownCMExternal", 5, 5, 14334, None, 3),
        ("ScaleDownPerPodCMExternal", 5, 5, None, 2867, 3),
        ("ToleranceCMExternal", 3, 3, 8888, None, 3),
        ("TolerancePerPodCMExternal", 3, 3, None, 2900, 3),
    ],
)
def test_external_metric_cases_of_the_replica_calculator(
    name: str, current: int, ready: int, value: int | None, average: int | None, expected: int
) -> None:
    got = external_replicas(
        8600, current=current, ready_pods=ready, value_milli=value, average_milli=average
    )
    assert got == expected, name


# -- horizontal_test.go: normalisation ---------------------------------------------------
NOW = 10_000.0


def rules(
    pods: int, pods_period: int, percent: int, percent_period: int, window: int
) -> ScalingRules:
    """generateScalingRules: the Pods policy first, then the Percent one; selectPolicy Max."""
    policies = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(window, tuple(policies), "Max")


def spread(changes: list[int], period: int) -> list[tuple[int, float]]:
    """generateEventsUniformDistribution: events in the middle of equal slices of the period."""
    segment = period / len(changes)
    return [(c, NOW - (period - segment * (i + 1) + segment / 2)) for i, c in enumerate(changes)]


SCALING_WITH_RULES = [
    # name, min, max, current, desired, up rules, down rules, up events, down events, expected
    ("within range", 3, 8, 5, 7, None, None, [], [], 7),
    ("below min", 2, 8, 3, 1, None, None, [], [], 2),
    ("zero within range when min is 0", 0, 10, 1, 0, None, None, [], [], 0),
    ("max is the limit", 1, 10, 20, 1000, None, None, [], [], 10),
    ("desired above max", 100, 150, 100, 1000, None, None, [], [], 150),
    ("user up policy limits", 1, 2000, 3, 1000, rules(0, 0, 1, 60, 0), None, [], [], 4),
    ("user down policy limits", 3, 2000, 1000, 3, None, rules(20, 60, 0, 0, 0), [], [], 980),
    ("scaleUp with default behavior", 1, 1000, 10, 50, None, None, [], [], 20),
    (
        "pods policy larger than percent",
        1,
        1000,
        10,
        500,
        rules(100, 60, 100, 60, 0),
        None,
        [],
        [],
        110,
    ),
    (
        "percent policy larger than pods",
        1,
        1000,
        10,
        500,
        rules(2, 60, 100, 60, 0),
        None,
        [],
        [],
        20,
    ),
    ("max with large pod policy", 1, 1000, 10, 50, rules(100, 60, 0, 0, 0), None, [], [], 50),
    ("max with large percent policy", 1, 1000, 10, 50, rules(10000, 60, 0, 0, 0), None, [], [], 50),
    ("pod policy limitation", 1, 1000, 10, 50, rules(30, 60, 0, 0, 0), None, [], [], 40),
    ("percent policy limitation", 1, 1000, 10, 50, rules(0, 0, 200, 60, 0), None, [], [], 30),
    ("down percent larger than pods", 1, 1000, 100, 2, None, rules(20, 60, 1, 60, 300), [], [], 80),
    ("down pods larger than percent", 1, 1000, 100, 2, None, rules(2, 60, 1, 60, 300), [], [], 98),
    (
        "down to min with large pod policy",
        1,
        1000,
        10,
        0,
        None,
        rules(100, 60, 0, 0, 300),
        [],
        [],
        1,
    ),
    (
        "down to min with large percent policy",
        5,
        1000,
        10,
        2,
        None,
        rules(0, 0, 100, 60, 300),
        [],
        [],
        5,
    ),
    ("down pod policy limitation", 1, 1000, 10, 2, None, rules(5, 60, 0, 0, 300), [], [], 5),
    ("down percent policy limitation", 1, 1000, 10, 5, None, rules(0, 0, 50, 60, 300), [], [], 5),
    ("up to max with events", 1, 200, 100, 500, rules(300, 60, 0, 0, 0), None, [1, 5, 9], [], 200),
    (
        "up to max with percent and events",
        1,
        200,
        100,
        500,
        rules(0, 0, 10000, 60, 0),
        None,
        [1, 5, 9],
        [],
        200,
    ),
    (
        "up held by recent events",
        1,
        1000,
        100,
        500,
        rules(5, 120, 0, 0, 0),
        None,
        [1, 5, 9],
        [],
        100,
    ),
    (
        "up pod policy after events",
        1,
        1000,
        100,
        500,
        rules(150, 120, 0, 0, 0),
        None,
        [1, 5, 9],
        [],
        235,
    ),
    (
        "up percent policy after events",
        1,
        1000,
        100,
        500,
        rules(0, 0, 200, 120, 0),
        None,
        [1, 5, 9],
        [],
        255,
    ),
    (
        "up percent after up and down events",
        1,
        1000,
        6,
        24,
        rules(0, 0, 300, 300, 0),
        None,
        [4],
        [2],
        16,
    ),
    ("down default policy and events", 1, 1000, 10, 5, None, None, [], [1, 5, 9], 5),
    (
        "down to min=1 after events",
        1,
        1000,
        100,
        0,
        None,
        rules(115, 120, 0, 0, 300),
        [],
        [1, 5, 9],
        1,
    ),
    (
        "down to min=5 after events",
        5,
        1000,
        100,
        0,
        None,
        rules(130, 120, 0, 0, 300),
        [],
        [1, 5, 9],
        5,
    ),
    (
        "down to min by percent after events",
        5,
        1000,
        100,
        2,
        None,
        rules(0, 0, 100, 120, 300),
        [],
        [1, 5, 9],
        5,
    ),
    (
        "down pod policy after events",
        1,
        1000,
        100,
        2,
        None,
        rules(5, 120, 0, 0, 300),
        [],
        [1, 5, 9],
        100,
    ),
    (
        "down percent policy after events",
        1,
        1000,
        100,
        0,
        None,
        rules(0, 0, 50, 120, 300),
        [],
        [2, 4, 6],
        56,
    ),
    (
        "down percent after up and down events",
        1,
        1000,
        10,
        1,
        None,
        rules(0, 0, 50, 180, 0),
        [2],
        [4],
        6,
    ),
    (
        "down held by earlier events",
        1,
        1000,
        100,
        0,
        None,
        rules(0, 0, 10, 120, 300),
        [],
        [10, 10, 10],
        100,
    ),
    (
        "down still allowed after events",
        1,
        1000,
        10,
        5,
        None,
        rules(0, 0, 1000, 120, 300),
        [],
        [10, 10, 10],
        5,
    ),
    (
        "outdated up events, one policy",
        1,
        1000,
        100,
        200,
        rules(1000, 60, 0, 0, 0),
        None,
        [8, 12, 9, 11],
        [],
        200,
    ),
    (
        "up events, two policies",
        1,
        1000,
        100,
        200,
        rules(1000, 120, 100, 60, 0),
        None,
        [8, 12, 9, 11],
        [],
        200,
    ),
    (
        "outdated down events",
        1,
        1000,
        100,
        5,
        None,
        rules(1000, 60, 0, 0, 300),
        [],
        [8, 12, 9, 11],
        5,
    ),
]


@pytest.mark.parametrize(
    ("minimum", "maximum", "current", "desired", "up", "down", "ups", "downs", "expected"),
    [case[1:] for case in SCALING_WITH_RULES],
    ids=[case[0] for case in SCALING_WITH_RULES],
)
def test_rate_policies_of_the_horizontal_controller(
    minimum: int,
    maximum: int,
    current: int,
    desired: int,
    up: ScalingRules | None,
    down: ScalingRules | None,
    ups: list[int],
    downs: list[int],
    expected: int,
) -> None:
    behavior = Behavior(up or DEFAULT_SCALE_UP, down or DEFAULT_SCALE_DOWN)
    controller = HpaController(Hpa("t", minimum, maximum, (), behavior))
    for changes, events in ((ups, controller.up_events), (downs, controller.down_events)):
        if changes:
            from redline.capacity._hpa import _Event

            events.extend(_Event(c, at) for c, at in spread(changes, 120))
    assert controller.rate_limited(current, desired, NOW) == expected


def test_min_change_policies() -> None:
    """TestCalculateScaleUpLimitWithScalingRules and ...ScaleDownLimitWithBehaviors."""
    both = (ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 50, 60))
    controller = HpaController(Hpa("t", 1, 10, ()))
    assert controller.scale_up_limit(1, ScalingRules(300, both, "Min"), NOW) == 2
    assert controller.scale_down_limit(5, ScalingRules(300, both, "Min"), NOW) == 3
    assert controller.scale_up_limit(5, ScalingRules(300, both, "Disabled"), NOW) == 5


@pytest.mark.parametrize(
    ("recommendations", "proposed", "expected", "kept"),
    [
        ([], 5, 5, 1),
        ([(4, -120), (5, -60)], 3, 5, 3),
        ([(1, -120), (2, -60)], 3, 3, 3),
        ([(10, -600), (9, -540)], 3, 3, 2),
        ([(10, -600), (4, -60), (5, -120), (9, -540)], 3, 5, 4),
    ],
)
def test_legacy_stabilisation(
    recommendations: list[tuple[int, float]], proposed: int, expected: int, kept: int
) -> None:
    """TestNormalizeDesiredReplicas: without behavior, the highest of five minutes."""
    controller = HpaController(Hpa("t", 1, 100, ()))
    controller.recommendations = [(r, NOW + at) for r, at in recommendations]
    assert controller.stabilize_legacy(proposed, NOW) == expected
    assert len(controller.recommendations) == kept


@pytest.mark.parametrize(
    ("recommendations", "current", "proposed", "up_s", "down_s", "expected", "stored"),
    [
        ([(1, -120), (2, -60)], 100, 3, 300, 0, 3, [1, 2, 3]),
        ([(4, -120), (5, -60)], 1, 3, 0, 300, 3, [4, 5, 3]),
        ([(10, -600), (9, -540)], 100, 3, 0, 0, 3, [10, 3]),
        ([(10, -600), (9, -540)], 1, 100, 0, 0, 100, [10, 100]),
        ([(10, -600), (4, -60), (5, -120), (9, -540)], 100, 3, 0, 180, 5, [10, 4, 5, 3]),
        ([(10, -6000), (6, -60), (5, -120), (9, -180)], 1, 100, 300, 0, 5, [100, 6, 5, 9]),
        ([(2, -6000), (3, -180)], 2, 1, 300, 300, 2, None),
        ([(2, -6000), (1, -180)], 2, 3, 300, 300, 2, None),
    ],
)
def test_stabilisation_with_behavior(
    recommendations: list[tuple[int, float]],
    current: int,
    proposed: int,
    up_s: int,
    down_s: int,
    expected: int,
    stored: list[int] | None,
) -> None:
    """TestNormalizeDesiredReplicasWithBehavior."""
    behavior = Behavior(ScalingRules(up_s, ()), ScalingRules(down_s, ()))
    controller = HpaController(Hpa("t", 1, 1000, (), behavior))
    controller.recommendations = [(r, NOW + at) for r, at in recommendations]
    assert controller.stabilize(current, proposed, NOW) == expected
    if stored is not None:
        assert [r for r, _ in controller.recommendations] == stored


@pytest.mark.parametrize(
    ("previous", "up", "after", "outdated", "change_in_60s"),
    [
        ([], rules(10, 60, 100, 60, 0), [5], [F], 0),
        ([(7, -61)], rules(10, 60, 100, 60, 0), [5], [F], 0),
        ([(7, -58)], rules(10, 60, 100, 60, 0), [7, 5], [F, F], 7),
        ([(7, -61), (6, -59)], rules(10, 60, 0, 0, 0), [5, 6], [F, F], 6),
        (
            [(8, -29), (6, -59), (7, -61), (9, -61)],
            rules(10, 60, 100, 30, 0),
            [8, 6, 5, 9],
            [F, F, F, T],
            14,
        ),
        ([(7, -58), (6, -59)], rules(10, 120, 100, 30, 0), [7, 6, 5], [F, F, F], 13),
    ],
)
def test_scale_events_are_stored_and_reused(
    previous: list[tuple[int, float]],
    up: ScalingRules,
    after: list[int],
    outdated: list[bool],
    change_in_60s: int,
) -> None:
    """TestStoreScaleEvents (scale up): outdated events are reused, in place."""
    from redline.capacity._hpa import _Event

    controller = HpaController(Hpa("t", 1, 100, (), Behavior(up, DEFAULT_SCALE_DOWN)))
    controller.up_events = [_Event(c, NOW + at) for c, at in previous]
    assert controller._changed(60, controller.up_events, NOW) == change_in_60s
    controller.store_event(10, 15, NOW)
    assert [e.change for e in controller.up_events] == after
    assert [e.outdated for e in controller.up_events] == outdated


def test_reconcile_clamps_to_bounds_and_holds_without_metrics() -> None:
    controller = HpaController(Hpa("t", 2, 6, ()))
    assert controller.reconcile(1, None, NOW) == 2  # below min: to min, metrics or not
    assert controller.reconcile(8, 3, NOW) == 6  # above max: to max
    assert controller.reconcile(4, None, NOW) == 4  # no valid metric: no change
    assert controller.reconcile(3, 100, NOW) == 6  # no behavior: at most 2x (or 4), max 6
