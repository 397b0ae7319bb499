"""Declarative flows that correlate: extract values from responses, use them, check them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from redline.core import PlanError
from redline.engine import run_plan
from redline.plan import plan_from_dict
from redline.testing import Behaviour, TestServer

ROUTES = {
    "/login": Behaviour(body=b'{"token": "t-9", "user": {"ids": [7, 8]}}',
                        content_type="application/json"),
    "/private": Behaviour(require_headers={"Authorization": "Bearer t-9"}),
    "/form": Behaviour(body=b'<input name="csrf" value="c-42">', content_type="text/html"),
    "/orders/8": Behaviour(status=201),
    "/submit/c-42": Behaviour(),
    "/kind/text": Behaviour(),
}  # fmt: skip


@pytest.fixture(scope="module")
def server() -> Iterator[TestServer]:
    with TestServer(routes=ROUTES).running() as running:
        yield running


def flow(url: str, steps: list[dict[str, Any]], *, rate: int = 20) -> Any:
    return plan_from_dict(
        {"target": url, "flows": [{"name": "journey", "steps": steps}],
         "load": {"rate": rate}, "duration": "1s"}, source="plan.yaml",
    )  # fmt: skip


def test_values_extracted_from_one_step_drive_the_next(server: TestServer) -> None:
    before = dict(server.requests_by_path)
    plan = flow(server.url, [
        {"name": "login", "method": "POST", "path": "/login",
         "extract": {"token": {"json": "$.token"}, "order": {"json": "$.user.ids[1]"},
                     "kind": {"header": "Content-Type"}},
         "check": {"logged in": {"status": 200}, "has a token": {"body_contains": "token"}}},
        {"name": "private", "path": "/private",
         "headers": {"Authorization": "Bearer ${vars.token}"}, "check": {"ok": {"status": 200}}},
        {"name": "form", "path": "/form",
         "extract": {"csrf": {"regex": 'name="csrf" value="([^"]+)"'}}},
        {"name": "submit", "method": "POST", "path": "/submit/${vars.csrf}"},
        {"name": "order", "path": "/orders/${vars.order}",
         "check": {"created": {"status": [201, 202]}}},
    ])  # fmt: skip
    result = run_plan(plan)
    for path in ("/login", "/private", "/form", "/submit/c-42", "/orders/8"):
        assert server.requests_by_path[path] - before.get(path, 0) == 20, path
    assert result.total().errors == 0  # the token made /private answer 200, not 401
    checks = result.checks()
    for name in ("logged in", "has a token", "ok", "created", "extract token",
                 "extract order", "extract kind", "extract csrf"):  # fmt: skip
        assert checks[name] == (20, 0), name


def test_a_value_not_found_fails_its_check_and_the_step_that_needs_it(
    server: TestServer,
) -> None:
    before = server.requests_by_path["/private"]
    plan = flow(server.url, [
        {"name": "login", "method": "POST", "path": "/login",
         "extract": {"token": {"json": "$.missing"}}},
        {"name": "private", "path": "/private",
         "headers": {"Authorization": "Bearer ${vars.token}"}},
    ], rate=10)  # fmt: skip
    result = run_plan(plan)
    assert result.checks()["extract token"] == (0, 10)
    assert server.requests_by_path["/private"] == before  # never sent without its token
    assert result.exceptions() == {"journey": {"MissingVariableError": 10}}


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([{"path": "/x/${vars.id}"}],
         "flows[0].steps[0].path: ${vars.id} is not extracted by an earlier step"),
        ([{"path": "/a", "extract": {"id": {"json": "items[0]"}}}],
         "expected a JSON path like $.items[0].id"),
        ([{"path": "/a", "extract": {"id": {"json": "$.a[x]"}}}], "expected a JSON path"),
        ([{"path": "/a", "extract": {"id": {"regex": "(unclosed"}}}], "not a regular expression"),
        ([{"path": "/a", "extract": {"id": {"xpath": "//a"}}}], "expected json, regex or header"),
        ([{"path": "/a", "extract": {"my-id": {"header": "X"}}}], "expected a variable name"),
        ([{"path": "/a", "check": {"ok": {"status": 42}}}],
         "expected status codes from 100 to 599"),
        ([{"path": "/a", "check": {"ok": {"body": "x"}}}], "expected status or body_contains"),
    ],
)  # fmt: skip
def test_flow_mistakes_are_explained_before_any_load(
    steps: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(PlanError, match=message.replace("$", r"\$").replace("[", r"\[")):
        flow("http://127.0.0.1:1", steps)


def test_variables_belong_to_flows_only() -> None:
    with pytest.raises(PlanError, match="can be used in flow steps only"):
        plan_from_dict(
            {"target": "http://127.0.0.1:1", "requests": [{"path": "/${vars.id}"}],
             "load": {"rate": 1}, "duration": "1s"}
        )  # fmt: skip
    with pytest.raises(PlanError, match="unknown key"):
        plan_from_dict(
            {"target": "http://127.0.0.1:1", "requests": [{"path": "/", "extract": {}}],
             "load": {"rate": 1}, "duration": "1s"}
        )  # fmt: skip
