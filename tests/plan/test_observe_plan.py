"""A plan's observe: and cost: sections, and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from redline.core import PlanError
from redline.plan import parse_cpus, parse_limit, parse_watch, plan_from_dict


def plan(**sections: Any):  # type: ignore[no-untyped-def]
    data = {"target": "http://127.0.0.1:8000", "requests": [{"path": "/"}], "load": {"rate": 10}}
    data["duration"] = "2s"
    return plan_from_dict({**data, **sections}, source="plan.yaml")


def test_every_part_of_observe_and_cost_is_read() -> None:
    made = plan(
        observe={
            "serve": {
                "command": "uvicorn app:app --port 8000",
                "cpus": "0-1",
                "limit": "cpu=0.5,memory=256M",
                "grace": "2s",
                "ready_timeout": "10s",
            },
            "watch": [
                "pid:1234",
                "cgroup:/sys/fs/cgroup/app",
                "prometheus:http://127.0.0.1:9100/metrics",
                "host",
            ],
            "profile": {"rate": 50, "gil": True},
        },
        cost={"vcpu_hour": 0.04, "gib_hour": 0.005},
    )
    serve = made.observe.serve
    assert serve is not None
    assert serve.argv == ["uvicorn", "app:app", "--port", "8000"]
    assert serve.cpu_list == (0, 1)
    assert (serve.cpu_limit, serve.memory_limit) == (0.5, 256 * 1024 * 1024)
    assert (serve.grace_s, serve.ready_timeout_s) == (2.0, 10.0)
    assert [str(w) for w in made.observe.watch] == [
        "pid:1234",
        "cgroup:/sys/fs/cgroup/app",
        "prometheus:http://127.0.0.1:9100/metrics",
        "host",
    ]
    assert made.observe.profile is not None
    assert (made.observe.profile.rate_hz, made.observe.profile.gil, made.observe.profile.idle) == (
        50.0,
        True,
        True,
    )
    assert made.cost is not None
    assert (made.cost.vcpu_hour, made.cost.gib_hour) == (0.04, 0.005)
    assert plan().observe.active is False
    assert plan(observe={"serve": "python app.py"}).observe.active


@pytest.mark.parametrize(
    ("sections", "path", "message"),
    [
        ({"observe": {"watch": ["pid:abc"]}}, "observe.watch[0]", "a process id like pid:1234"),
        ({"observe": {"watch": ["cgroup:relative"]}}, "observe.watch[0]", "an absolute path"),
        ({"observe": {"watch": ["mystery"]}}, "observe.watch[0]", "expected one of pid:1234"),
        (
            {"observe": {"serve": {"command": "x", "limit": "disk=1"}}},
            "observe.serve.limit",
            "unknown resource",
        ),
        (
            {"observe": {"serve": {"command": "x", "cpus": "1-0"}}},
            "observe.serve.cpus",
            "rising range",
        ),
        ({"observe": {"serve": ""}}, "observe.serve", "a command"),
        ({"observe": {"profile": {"rate": 5000}}}, "observe.profile.rate", "between 1 and 1000"),
        ({"observe": {"serves": "x"}}, "observe.serves", 'did you mean "serve"'),
        ({"cost": {"vcpu_hour": -1}}, "cost.vcpu_hour", "a price of 0 or more"),
    ],
)
def test_bad_sections_name_the_file_the_path_and_what_was_expected(
    sections: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(PlanError) as raised:
        plan(**sections)
    text = str(raised.value)
    assert text.startswith(f"plan.yaml: {path}: "), text
    assert message in text


def test_the_small_parsers() -> None:
    assert parse_cpus("0,2-3,2") == (0, 2, 3)
    assert parse_limit("memory=1Gi") == (None, 1024**3)
    assert parse_limit("cpu=2") == (2.0, None)
    with pytest.raises(ValueError, match="at least 4M"):
        parse_limit("memory=1k")
    assert str(parse_watch(" host ")) == "host"
