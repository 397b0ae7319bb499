"""Sizing a fleet: Erlang C, the response-time tail, headroom; right-sizing; manifests."""

from __future__ import annotations

import math

import kubernetes_validate
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from redline.capacity import Behavior, Hpa, MetricSpec
from redline.capacity._k8s import Workload, manifests, manifests_yaml
from redline.capacity._rightsize import rightsize
from redline.capacity._size import (
    ReplicaModel,
    erlang_c,
    mmc_max_rate,
    mmc_response_quantile,
    replica_model_from_find,
    size_fleet,
)
from redline.core import TargetReport, WatchedThing


def erlang_c_by_the_formula(servers: int, load: float) -> float:
    top = load**servers / math.factorial(servers) * servers / (servers - load)
    return top / (sum(load**k / math.factorial(k) for k in range(servers)) + top)


@given(servers=st.integers(min_value=1, max_value=40), share=st.floats(0.01, 0.99))
def test_erlang_c_equals_the_closed_formula(servers: int, share: float) -> None:
    load = servers * share
    assert erlang_c(servers, load) == pytest.approx(erlang_c_by_the_formula(servers, load))


def test_erlang_c_reference_values() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: the utilisation
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=1e-4)  # the tables' value
    assert erlang_c(3, 3.0) == 1.0  # unstable


def test_response_tail_is_exact_where_it_is_known() -> None:
    # M/M/1: the response time is exponential with rate mu - lambda
    assert mmc_response_quantile(1, 50, 0.010, 0.99) == pytest.approx(math.log(100) / 50)
    # an idle queue: only the service, exponential with rate mu
    assert mmc_response_quantile(8, 0.0, 0.010, 0.99) == pytest.approx(0.01 * math.log(100))
    assert mmc_response_quantile(2, 250, 0.010, 0.99) == math.inf


def test_the_issues_m_m_4_truth() -> None:
    """M/M/4, 10 ms exponential service, p99 < 100 ms: about 349 req/s analytically."""
    assert mmc_max_rate(4, 0.010, 0.100) == pytest.approx(349, abs=2)


FIND = {
    "rate": 340.0,
    "low": 330.0,
    "high": 352.0,
    "saturation": 400.0,
    "outcome": "found",
    "objective": "p99 < 100ms",
    "steps": [
        {"rate": 50, "achieved": 50, "p50_ms": 10.0, "p99_ms": 45.0, "verdicts": []},
        {"rate": 300, "achieved": 300, "p50_ms": 12.0, "p99_ms": 70.0, "verdicts": []},
        {"rate": 450, "achieved": 400, "p50_ms": 900.0, "p99_ms": 3000.0, "verdicts": []},
    ],
}


def test_a_replica_from_a_find_result() -> None:
    model = replica_model_from_find(FIND, source="find.json")
    assert (model.redline_rps, model.low_rps, model.saturation_rps) == (340, 330, 400)
    assert model.service_s == pytest.approx(0.010)
    assert model.workers == 4  # 400 req/s x 10 ms
    assert not model.lower_bound
    unbroken = {**FIND, "rate": None, "low": None, "high": None, "outcome": "held at max"}
    assert replica_model_from_find(unbroken).lower_bound
    with pytest.raises(ValueError, match="no step"):
        replica_model_from_find({"steps": []}, source="x.json")


def test_size_takes_the_most_demanding_view_then_adds_headroom() -> None:
    model = replica_model_from_find(FIND)
    plan = size_fleet(model, 3000, slo_p99_ms=100, spare=1, zones=3, price_per_replica_hour=0.1)
    assert plan.by_measurement == math.ceil(3000 / 330)  # the interval's lower bound: 10
    assert plan.by_queueing == math.ceil(3000 / mmc_max_rate(4, 0.010, 0.100))  # 9
    assert plan.replicas_for_slo == 10
    # 11 with the spare; losing the largest of 3 zones must still leave 11: 17
    assert plan.replicas == 17
    assert plan.replicas - math.ceil(plan.replicas / 3) >= 11
    assert plan.p99_ms is not None
    assert plan.p99_ms < 100
    assert plan.cost_per_month == pytest.approx(17 * 0.1 * 730)
    assert plan.utilisation == pytest.approx(3000 / (17 * 400))
    contended = size_fleet(model, 3000, slo_p99_ms=100, sigma=0.05)
    assert contended.by_scaling > plan.by_scaling  # contention across replicas costs more
    with pytest.raises(ValueError, match="above 0"):
        size_fleet(model, 0)


def sample(cpu: float, memory: float, oom: int = 0) -> dict[str, float | None]:
    return {"cpu_cores": cpu, "rss_bytes": memory, "oom_kills": oom}


def report(samples: list[dict[str, float | None]]) -> TargetReport:
    return TargetReport(
        watched=(WatchedThing("serve", "process", cores=2.0),), samples={"serve": tuple(samples)}
    )


def test_rightsize_is_vpa_shaped() -> None:
    mib = 1 << 20
    cpu = [0.1] * 80 + [0.5] * 18 + [1.5] * 2  # cores; p90 0.5, p99 1.5
    runs = [report([sample(c, 300 * mib) for c in cpu[:50]]),
            report([sample(c, 400 * mib) for c in cpu[50:]])]  # fmt: skip
    plan = rightsize(
        runs, current_cpu_milli=2000, current_memory_bytes=2048 * mib, replicas=4,
        price_vcpu_hour=0.04, price_gib_hour=0.005,
    )  # fmt: skip
    assert plan.samples == 100
    assert plan.cpu_request_milli == math.ceil(500 * 1.15)
    assert plan.cpu_limit_milli == math.ceil(1500 * 1.15)
    assert plan.memory_request_bytes == math.ceil(400 * mib * 1.15)
    assert plan.memory_limit_bytes == plan.memory_request_bytes
    expected = (
        4
        * 730
        * (
            (2000 - 575) / 1000 * 0.04
            + (2048 * mib - plan.memory_request_bytes) / (1 << 30) * 0.005
        )
    )
    assert plan.saving_per_month == pytest.approx(expected)
    oom = rightsize([report([sample(0.2, 400 * mib), sample(0.2, 400 * mib, oom=1)] * 40)])
    assert oom.memory_request_bytes == math.ceil(400 * mib * 1.15) + 100 * mib
    small = rightsize([report([sample(0.001, 10 * mib)] * 70)])
    assert small.cpu_request_milli == 25  # VPA's floors
    assert small.memory_request_bytes == 250 * mib
    with pytest.raises(ValueError, match="--serve or --observe"):
        rightsize([TargetReport()])


def test_manifests_are_valid_kubernetes() -> None:
    hpa = Hpa(
        "shop", 3, 30,
        (MetricSpec("Resource", "cpu", "Utilization", 60),
         MetricSpec("Pods", "requests_per_second", "AverageValue", 70_000)),
        Behavior(),
    )  # fmt: skip
    workload = Workload(
        "shop", "ghcr.io/example/shop:1.0", replicas=17, min_available=11,
        cpu_request="575m", cpu_limit="1725m", memory_request="460Mi", memory_limit="460Mi",
    )  # fmt: skip
    documents = manifests(workload, hpa)
    assert [d["kind"] for d in documents] == [
        "PriorityClass", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler",
    ]  # fmt: skip
    for document in documents:
        kubernetes_validate.validate(document, "1.29", strict=True)
    assert list(yaml.safe_load_all(manifests_yaml(workload, hpa))) == documents
    deployment = documents[1]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"] == {"cpu": "575m", "memory": "460Mi"}
    assert documents[2]["spec"]["minAvailable"] == 11
    assert documents[3]["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    broken = {**documents[1], "spec": {**documents[1]["spec"], "replicas": "many"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.29", strict=True)


def test_a_model_replica_is_plain_data() -> None:
    model = ReplicaModel(100, 90, 110, None, 0.005, 1)
    assert model.to_dict()["service_ms"] == 5
