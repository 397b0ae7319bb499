from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from redline.core import PlanError
from redline.plan import ClosedLoad, OpenLoad, RenderContext, load_plan, plan_from_dict, quick_plan

BASE: dict[str, Any] = {
    "target": "http://127.0.0.1:8080",
    "requests": [{"name": "home", "path": "/"}],
    "load": {"rate": "100/s"},
    "duration": "10s",
}


def with_(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_full_plan_parses(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("name,token\nada,t1\nbob,t2\n")
    path = write(
        tmp_path,
        """
name: shop
target: http://127.0.0.1:8080
data: {users: users.csv}
requests:
  - {name: home, path: /, weight: 3}
  - name: order
    method: post
    path: /orders/${seq(100)}
    headers: {X-User: "${users.name}"}
    json: {sku: "${choice(a, b)}", qty: 2}
load:
  stages: [{duration: 5s, rate: 100/s}, {duration: 5s, rate: 0}]
  arrivals: poisson
warmup: 2s
timeouts: {connect: 1s, read: 2s}
limits: {max_connections: 10, max_in_flight: 50, max_response_size: 1MiB}
tls: {verify: false}
generator: {late_tolerance: 2%}
seed: 3
""",
    )
    plan = load_plan(path)
    assert plan.name == "shop"
    assert isinstance(plan.load, OpenLoad)
    assert plan.load.arrivals == "poisson"
    assert plan.duration == 10.0  # the stages' total
    assert plan.load.rate_at(2.5) == pytest.approx(50.0)
    assert plan.max_response_size == 1024 * 1024
    assert plan.late_tolerance == pytest.approx(0.02)
    assert plan.verify_tls is False
    order = plan.requests[1]
    assert order.method == "POST"
    assert not order.static
    ctx = RenderContext(seed=1)
    assert order.path.render(ctx) == "/orders/100"
    assert order.path.render(ctx) == "/orders/101"
    assert dict(order.headers)["X-User"].render(ctx) in ("ada", "bob")
    assert dict((k, v.text) for k, v in order.headers)["Content-Type"] == "application/json"


def test_error_names_file_path_and_expectation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
target: http://127.0.0.1:8080
requests: [{path: /}]
load:
  stages:
    - {duration: 1s, rate: 10/s}
    - {duration: 1s, rate: 20/s}
    - {duration: 1s, rate: "-3"}
""",
    )
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert (
        str(info.value)
        == f'{path}: load.stages[2].rate: expected a positive rate like "500/s", got "-3"'
    )


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    path = write(tmp_path, yaml.safe_dump(with_(duraton="5s")))
    with pytest.raises(PlanError, match=r'duraton: unknown key; did you mean "duration"\?'):
        load_plan(path)


def test_unknown_nested_key_has_its_path() -> None:
    with pytest.raises(
        PlanError, match=r"requests\[0\]\.methd: unknown key; did you mean \"method\""
    ):
        plan_from_dict(with_(requests=[{"path": "/", "methd": "GET"}]))


def test_malformed_yaml_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "target: [unclosed\nrequests: {")
    with pytest.raises(PlanError, match=r"plan.yaml: line \d+, column \d+: malformed YAML"):
        load_plan(path)


def test_missing_file_is_a_plan_error(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="cannot read plan"):
        load_plan(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "ftp://x"}, r"target: expected an http:// or https:// URL"),
        ({"requests": []}, r"requests: expected at least one request"),
        ({"load": {"rate": "100/s", "vus": 3}}, r"load: mixes open-model keys"),
        ({"load": {"vus": 0}}, r"load.vus: expected a positive whole number, got 0"),
        (
            {"load": {"rate": "100/s", "stages": [{"duration": "1s", "rate": 5}]}},
            r"load.stages: give rate",
        ),
        ({"duration": "soon"}, r'duration: expected a duration like "10s"'),
        ({"requests": [{"path": "x"}]}, r'requests\[0\].path: expected a path starting with "/"'),
        ({"requests": [{"path": "/${nope()}"}]}, r"requests\[0\].path: unknown function 'nope'"),
        ({"requests": [{"path": "/", "method": "BREW"}]}, r"requests\[0\].method: expected one of"),
        (
            {"requests": [{"name": "a"}, {"name": "a"}]},
            r"requests\[1\].name: duplicate request name",
        ),
        (
            {"requests": [{"url": "ftp://127.0.0.2:1/x"}]},  # another host is fine; not ftp
            r"requests\[0\].url: expected an http:// or https:// URL",
        ),
        ({"load": {"vus": 5000}}, r"load: 5000 virtual users need as many connections"),
        (
            {"requests": [{"path": "/", "headers": {"Bad Name": "x"}}]},
            r"headers.Bad Name: expected a header name",
        ),
        ({"generator": {"late_tolerance": 3}}, r"generator.late_tolerance: expected a fraction"),
    ],
)
def test_invalid_plans_are_explained(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError, match=message):
        plan_from_dict(with_(**changes), source="p.yaml")


def test_closed_model_with_think_range() -> None:
    plan = plan_from_dict(with_(load={"vus": 5, "think": {"min": "100ms", "max": "300ms"}}))
    assert isinstance(plan.load, ClosedLoad)
    assert (plan.load.think_min, plan.load.think_max) == (0.1, 0.3)


def test_ramping_vus_interpolate() -> None:
    plan = plan_from_dict(with_(load={"stages": [{"duration": "10s", "vus": 10}]}, duration=None))
    assert isinstance(plan.load, ClosedLoad)
    assert plan.load.vus_at(5) == 5
    assert plan.load.max_vus == 10


def test_overrides_replace_plan_values(tmp_path: Path) -> None:
    path = write(tmp_path, yaml.safe_dump(with_()))
    plan = load_plan(path, overrides={"url": "http://127.0.0.1:9/", "vus": 4, "duration": "2s"})
    assert plan.target == "http://127.0.0.1:9"
    assert isinstance(plan.load, ClosedLoad)
    assert plan.load.vus == 4
    assert plan.duration == 2.0


def test_quick_plan_from_url() -> None:
    plan = quick_plan("http://127.0.0.1:8080/a?b=1", rate="50/s", duration="3s", headers={"X": "1"})
    assert plan.target == "http://127.0.0.1:8080"
    assert plan.requests[0].path.text == "/a?b=1"
    assert plan.requests[0].name == "GET /a?b=1"
    with pytest.raises(PlanError, match="--url"):
        quick_plan("nope", rate="1/s")


def test_csv_errors_name_the_source(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b\n1\n")
    path = write(tmp_path, yaml.safe_dump(with_(data={"rows": "bad.csv"})))
    with pytest.raises(PlanError, match=r"data.rows: .*bad.csv' line 2: expected 2 columns, got 1"):
        load_plan(path)
    path = write(tmp_path, yaml.safe_dump(with_(data={"rows": "missing.csv"})))
    with pytest.raises(PlanError, match=r"data.rows: cannot read"):
        load_plan(path)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
plan_keys = st.sampled_from(
    ["target", "requests", "load", "duration", "warmup", "limits", "timeouts", "data", "x"]
)


@given(st.dictionaries(plan_keys, json_like, max_size=6))
def test_any_dict_is_a_plan_or_a_plan_error(data: dict[str, Any]) -> None:
    try:
        plan_from_dict({**BASE, **data}, source="fuzz.yaml", base_dir=Path("/nonexistent"))
    except PlanError as exc:
        message = str(exc)
    else:
        return
    assert message.startswith("fuzz.yaml: ")


@given(st.text(max_size=200))
def test_any_yaml_text_is_a_plan_or_a_plan_error(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_plan(path)
        except PlanError as exc:
            message = str(exc)
        else:
            return
    assert str(path) in message


def test_secrets_never_reach_the_recorded_plan() -> None:
    plan = plan_from_dict(
        {
            "target": "http://shop:s3cret-pass@127.0.0.1:8080",
            "redact": ["X-Api-Key", "password", "token"],
            "requests": [
                {
                    "path": "/search?q=x&token=tok-12345",
                    "headers": {"Authorization": "Bearer abc.def", "X-Api-Key": "key-98765"},
                },
                {
                    "name": "login",
                    "method": "POST",
                    "path": "/login",
                    "json": {"user": "ann", "password": "pw-55555"},
                },
            ],
            "load": {"rate": "10/s"},
            "duration": "1s",
        },
        source="plan.yaml",
    )
    recorded = json.dumps(plan.to_dict())
    for secret in ("s3cret-pass", "tok-12345", "abc.def", "key-98765", "pw-55555"):
        assert secret not in recorded
    first, login = plan.to_dict()["requests"]
    assert first["name"] == "GET /search?q=x&token=[redacted]"
    assert first["headers"] == {"Authorization": "[redacted]", "X-Api-Key": "[redacted]"}
    assert json.loads(login["body"]) == {"user": "ann", "password": "[redacted]"}
    # The requests themselves still carry the real values.
    assert dict((k, v.text) for k, v in plan.requests[0].headers)["X-Api-Key"] == "key-98765"


@pytest.mark.parametrize(
    ("redact", "message"),
    [
        ("X-Api-Key", "redact: expected a list of header or field names"),
        (["ok", "bad: name"], r"redact: \[1\]: expected a header or field name"),
        ([""], r"redact: \[0\]: expected a header or field name"),
    ],
)
def test_bad_redact_lists_are_explained(redact: object, message: str) -> None:
    data = {
        "target": "http://127.0.0.1:1",
        "requests": [{"path": "/"}],
        "load": {"rate": "1/s"},
        "duration": "1s",
        "redact": redact,
    }
    with pytest.raises(PlanError, match=message):
        plan_from_dict(data, source="plan.yaml")


def test_command_line_redact_adds_to_the_plans_own(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text(
        "target: http://127.0.0.1:1\nredact: [a]\nrequests: [{path: /}]\n"
        "load: {rate: 1/s}\nduration: 1s\n"
    )
    plan = load_plan(path, overrides={"redact": ["b"]})
    assert plan.redact == ("a", "b")
    quick = quick_plan("http://127.0.0.1:1/x?sig=abc12345", rate="1/s", redact=["sig"])
    assert quick.requests[0].name == "GET /x?sig=[redacted]"
    assert "abc12345" not in json.dumps(quick.to_dict())
