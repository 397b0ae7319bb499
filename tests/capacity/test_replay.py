"""Replaying demand against autoscaling policies: the simulation, the scores, the search."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from demand_shapes import diurnal
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.capacity import (
    Behavior,
    DemandTrace,
    FleetModel,
    Hpa,
    HpaPolicy,
    KedaPolicy,
    MetricSpec,
    PredictivePolicy,
    View,
    load_policies,
    recommend,
    replay,
)
from redline.core import PlanError

CPU_70 = Hpa("hpa", 2, 60, (MetricSpec("Resource", "cpu", "Utilization", 70),), Behavior())


@dataclass
class Fixed:
    """A policy that always asks for the same count (for scores worked out by hand)."""

    count: int
    name: str = "fixed"
    period_s: float = 10.0

    def decide(self, view: View) -> int:
        return self.count

    def fresh_copy(self) -> Fixed:
        return Fixed(self.count, self.name, self.period_s)


def test_scores_by_hand_for_a_fixed_fleet() -> None:
    # 100 s at 150/s then 100 s at 450/s; 2 replicas of 100/s each, always ready
    trace = DemandTrace.of([0, 10, 100, 190], [150, 150, 450, 450], source="steps")
    trace = DemandTrace.of(
        list(np.arange(0, 200, 10.0)), [150.0] * 10 + [450.0] * 10, source="steps"
    )
    model = FleetModel(capacity_rps=100, saturation_rps=500, startup_s=0, initial_replicas=2)
    result = replay(trace, Fixed(2), model)
    s = result.scores
    assert s.violation_minutes == pytest.approx(100 / 60)  # the second half: 450 > 200
    # demand 2 then 5 replicas, supply 2: under by 3/5 half of the time
    assert s.under_accuracy == pytest.approx(100 * 0.5 * 3 / 5)
    assert s.over_accuracy == 0
    assert s.under_timeshare == pytest.approx(50)
    assert s.replica_hours == pytest.approx(2 * 200 / 3600)
    assert s.scale_events == 0
    assert result.ticks()[0] == {"t": 0.0, "demand": 150.0, "desired": 2, "replicas": 2, "ready": 2}


def test_new_replicas_serve_only_after_their_start_up() -> None:
    trace = DemandTrace.of(list(np.arange(0, 300, 10.0)), [50.0] * 30, source="flat")
    model = FleetModel(capacity_rps=100, startup_s=60, initial_replicas=1)
    result = replay(trace, Fixed(3), model)
    first = result.ticks()[0]
    assert (first["replicas"], first["desired"]) == (3, 3)
    ready = result.ready.tolist()
    assert ready[: int(60 / result.dt)] == [1] * int(60 / result.dt)
    assert ready[int(60 / result.dt)] == 3
    assert result.scores.replica_hours == pytest.approx(3 * 300 / 3600)


def test_the_hpa_scales_out_after_a_step_and_back_in_after_its_window() -> None:
    t = list(np.arange(0, 3600, 10.0))
    rate = [100.0 if x < 600 or x >= 1800 else 800.0 for x in t]
    trace = DemandTrace.of(t, rate, source="step")
    model = FleetModel(capacity_rps=100, startup_s=30)
    hpa = Hpa("rps", 1, 20, (MetricSpec("Pods", "rps", "AverageValue", 70_000),), Behavior())
    result = replay(trace, HpaPolicy(hpa), model)
    replicas = result.replicas
    at = lambda s: int(s / result.dt)  # noqa: E731
    assert replicas[at(590)] == 2  # 100/s at 70 per replica
    assert replicas[at(1700)] >= math.ceil(800 / 70)  # scaled out to hold 800/s
    # scale-in waits for the 300 s window after the drop at 1800 s
    assert replicas[at(1800 + 250)] == replicas[at(1700)]
    assert replicas[at(3590)] == 2
    assert result.scores.scale_events >= 2


def test_a_gap_holds_the_replicas_and_is_left_out_of_the_scores() -> None:
    t = [float(x) for x in range(0, 600, 10)] + [float(x) for x in range(1200, 1800, 10)]
    rate = [500.0] * 60 + [500.0] * 60
    trace = DemandTrace.of(t, rate, source="gappy")
    model = FleetModel(capacity_rps=100, startup_s=0)
    result = replay(trace, HpaPolicy(CPU_70), model)
    inside = (result.t >= 650) & (result.t < 1200)
    assert len(set(result.replicas[inside].tolist())) == 1  # held through the gap
    assert result.scores.gap_s == pytest.approx(600, abs=result.dt)
    assert any("gap" in note for note in result.notes)


@settings(max_examples=25, deadline=None)
@given(
    rates=st.lists(st.floats(min_value=0, max_value=5000), min_size=5, max_size=60),
    minimum=st.integers(min_value=1, max_value=4),
    span=st.integers(min_value=0, max_value=20),
)
def test_the_hpa_stays_within_its_bounds_and_pays_for_what_it_starts(
    rates: list[float], minimum: int, span: int
) -> None:
    trace = DemandTrace.of([60.0 * i for i in range(len(rates))], rates, source="random")
    hpa = Hpa("h", minimum, minimum + span, CPU_70.metrics, Behavior())
    result = replay(trace, HpaPolicy(hpa), FleetModel(capacity_rps=100, startup_s=45))
    after_start = result.replicas[1:]
    assert after_start.min() >= minimum
    assert after_start.max() <= minimum + span
    assert (result.ready <= np.maximum(result.replicas, result.ready[0])).all()
    s = result.scores
    assert 0 <= s.under_timeshare <= 100
    assert 0 <= s.over_timeshare <= 100
    assert s.replica_hours >= float(result.ready.sum()) * result.dt / 3600 - 1e-9


def test_a_spike_breaks_the_default_hpa_and_not_the_predictive_policy() -> None:
    trace = diurnal(days=2)
    model = FleetModel(capacity_rps=100, startup_s=60, price_per_replica_hour=0.05)
    reactive = replay(trace, HpaPolicy(CPU_70), model)
    ahead = replay(
        trace, PredictivePolicy(target_rps=70, lead_s=120, min_replicas=2, max_replicas=60), model
    )
    second_day = reactive.t >= 86400
    spike = second_day & (reactive.t % 86400 >= 12.5 * 3600) & (reactive.t % 86400 < 13 * 3600)
    assert reactive.violated[spike].sum() * reactive.dt / 60 >= 3  # minutes lost to the spike
    assert ahead.violated[second_day].sum() == 0  # a day of history sees it coming
    # and it is said what that costs
    assert ahead.scores.cost > reactive.scores.cost
    assert ahead.scores.replica_hours < 1.2 * reactive.scores.replica_hours


def test_keda_scales_from_and_to_zero_on_its_activation() -> None:
    t = list(np.arange(0, 3600, 10.0))
    rate = [0.0 if x < 600 or x >= 1800 else 300.0 for x in t]
    trace = DemandTrace.of(t, rate, source="bursty")
    model = FleetModel(capacity_rps=100, startup_s=20, initial_replicas=0)
    keda = KedaPolicy("rate", 70, activation=1, polling_s=30, cooldown_s=300, max_replicas=10)
    result = replay(trace, keda, model)
    at = lambda s: int(s / result.dt)  # noqa: E731
    assert result.replicas[at(590)] == 0
    assert result.replicas[at(1500)] >= math.ceil(300 / 70)
    assert result.replicas[at(1800 + 200)] > 0  # cooling down
    assert result.replicas[at(3590)] == 0


def test_recommend_finds_a_cheaper_feasible_hpa_than_a_cautious_one() -> None:
    trace = diurnal(days=1, spike=0)
    model = FleetModel(capacity_rps=100, startup_s=60)
    cautious = Hpa("team", 4, 60, (MetricSpec("Resource", "cpu", "Utilization", 40),), Behavior())
    result = recommend(
        trace, model, max_violation_minutes=5, min_replicas=(2,), max_replicas=60,
        baseline=cautious,
    )  # fmt: skip
    assert result.baseline is not None
    assert result.baseline.feasible
    assert result.best is not None
    assert result.best.feasible
    assert result.best.scores.violation_minutes <= 5
    assert result.best.scores.replica_hours < result.baseline.scores.replica_hours
    cheapest = result.cheapest
    assert cheapest is not None
    assert result.best.scores.replica_hours <= cheapest.scores.replica_hours * 1.05
    infeasible = [c for c in result.candidates if not c.feasible]
    assert all("> 5" in c.why for c in infeasible)
    ordered = [c.feasible for c in result.candidates]
    assert ordered == sorted(ordered, reverse=True)  # feasible first


HPA_YAML = """
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: shop}
  minReplicas: 2
  maxReplicas: 20
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}
    - type: Pods
      pods:
        metric: {name: requests_per_second}
        target: {type: AverageValue, averageValue: "70"}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 120
      policies: [{type: Pods, value: 2, periodSeconds: 60}]
"""

KEDA_YAML = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: worker}
spec:
  scaleTargetRef: {name: worker}
  pollingInterval: 15
  cooldownPeriod: 120
  minReplicaCount: 0
  maxReplicaCount: 30
  triggers:
    - type: rabbitmq
      metadata: {queueName: orders, mode: QueueLength, value: "50", activationValue: "5"}
"""


def test_manifests_are_read_as_kubernetes_and_keda_mean_them(tmp_path: Path) -> None:
    path = tmp_path / "policies.yaml"
    path.write_text(HPA_YAML + "---\n" + KEDA_YAML)
    hpa, keda = load_policies(path, capacity_rps=100, startup_s=30)
    assert isinstance(hpa, HpaPolicy)
    spec = hpa.hpa
    assert (spec.name, spec.min_replicas, spec.max_replicas) == ("shop", 2, 20)
    assert spec.metrics[0] == MetricSpec("Resource", "cpu", "Utilization", 60)
    assert spec.metrics[1] == MetricSpec("Pods", "requests_per_second", "AverageValue", 70_000)
    assert spec.behavior is not None
    assert spec.behavior.scale_down.stabilization_window_s == 120
    assert spec.behavior.scale_down.policies[0].value == 2
    assert spec.behavior.scale_up.policies[0].value == 4  # the default filled in
    assert isinstance(keda, KedaPolicy)
    assert (keda.metric, keda.target, keda.activation) == ("queue", 50, 5)
    assert (keda.polling_s, keda.cooldown_s, keda.min_replicas) == (15, 120, 0)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (
            HPA_YAML.replace("minReplicas: 2", "minReplicas: 30"),
            "$.spec.minReplicas",
            "above maxReplicas",
        ),
        (HPA_YAML.replace("autoscaling/v2", "autoscaling/v1"), "$.apiVersion", "autoscaling/v2"),
        (
            HPA_YAML.replace('"70"', '"lots"'),
            "$.spec.metrics[1].pods.target.averageValue",
            "quantity",
        ),
        (
            HPA_YAML.replace("averageUtilization: 60", "averageUtilization: 0"),
            "$.spec.metrics[0].resource.target.averageUtilization",
            "at least 1",
        ),
        (
            HPA_YAML.replace("kind: HorizontalPodAutoscaler", "kind: Deployment"),
            "$.kind",
            "expected kind",
        ),
        (
            KEDA_YAML.replace('value: "50"', 'value: "x"'),
            "$.spec.triggers[0].metadata.value",
            "expected a number",
        ),
    ],
)
def test_bad_manifests_name_the_path(tmp_path: Path, text: str, where: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PlanError, match=message) as caught:
        load_policies(path, capacity_rps=100, startup_s=30)
    assert str(caught.value).startswith(f"{path}: {where}")
