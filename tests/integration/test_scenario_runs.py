"""Python scenarios end to end: worker processes, the real test server, exact counts."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

from redline.engine import run_plan
from redline.plan import load_plan, plan_from_dict
from redline.testing import Behaviour, TestServer

from .conftest import make_plan

Server = Callable[..., TestServer]

SHOP = {
    "/login": Behaviour(body=b'{"token": "t-1"}', content_type="application/json"),
    "/orders": Behaviour(require_headers={"Authorization": "Bearer t-1"}),
}


def write_plan(tmp_path: Path, url: str, body: str, *, load: str = '{"rate": "100/s"}') -> Path:
    path = tmp_path / "journeys.py"
    path.write_text(
        "from redline.scenario import Session, scenario\n"
        f"target = {url!r}\nload = {load}\nduration = '2s'\nworkers = 2\nseed = 1\n"
        + textwrap.dedent(body)
    )
    return path


def test_login_journey_metrics_match_the_server(redline_server: Server, tmp_path: Path) -> None:
    server = redline_server(routes=SHOP)
    path = write_plan(
        tmp_path,
        server.url,
        """
        @scenario
        async def shop(s: Session) -> None:
            r = await s.post("/login", json={"user": "ada"}, name="login")
            s.check("token", r.json().get("token") == "t-1")
            s.headers["Authorization"] = "Bearer " + r.json()["token"]
            async with s.group("orders page"):
                r = await s.get("/orders", name="orders")
                s.check("authorised", r.status == 200)
        """,
    )
    result = run_plan(load_plan(path))
    iterations = result.scenarios()["shop"]
    assert iterations.count == 200  # 100/s for 2 s: one iteration per arrival
    assert iterations.failures == 0
    assert result.endpoint("login").requests == server.requests_by_path["/login"] == 200
    assert result.endpoint("orders").requests == server.requests_by_path["/orders"] == 200
    assert server.responses_by_status == {200: 400}
    assert result.checks() == {"token": (200, 0), "authorised": (200, 0)}
    assert result.groups()["orders page"].count == 200
    # An iteration contains both requests, so it cannot be faster than either.
    assert iterations.latency_ms["max"] >= result.endpoint("orders").latency_ms["max"]
    assert result.total().requests == 400


def test_setup_result_reaches_scenarios_and_teardown_runs(
    redline_server: Server, tmp_path: Path
) -> None:
    server = redline_server(routes=SHOP)
    path = write_plan(
        tmp_path,
        server.url,
        """
        async def setup(session):
            r = await session.post("/login")
            return {"token": r.json()["token"]}

        def teardown(session, shared):
            assert shared == {"token": "t-1"}

        @scenario
        async def orders(s: Session) -> None:
            r = await s.get("/orders", headers={"Authorization": "Bearer " + s.shared["token"]})
            s.check("authorised", r.status == 200)
        """,
        load='{"vus": 3, "think": "10ms"}',
    )
    result = run_plan(load_plan(path))
    assert server.requests_by_path["/login"] == 1  # setup only, and not measured
    checks = result.checks()["authorised"]
    assert checks[1] == 0
    assert (
        checks[0] == server.requests_by_path["/orders"] == result.endpoint("GET /orders").requests
    )
    assert not result.notes


def test_exceptions_are_counted_and_never_stop_the_run(
    redline_server: Server, tmp_path: Path
) -> None:
    server = redline_server()
    path = write_plan(
        tmp_path,
        server.url,
        """
        @scenario(weight=3)
        async def fine(s: Session) -> None:
            await s.get("/fine")

        @scenario
        async def flaky(s: Session) -> None:
            await s.get("/flaky")
            {}["missing"]
        """,
    )
    result = run_plan(load_plan(path))
    assert result.complete
    assert result.scenarios()["fine"].count == 150
    flaky = result.scenarios()["flaky"]
    assert (flaky.count, flaky.failures, flaky.failure_types) == (50, 50, {"KeyError": 50})
    assert result.exceptions() == {"flaky": {"KeyError": 50}}
    assert 1 <= len(result.tracebacks) <= 5
    assert '{}["missing"]' in result.tracebacks[0] or "KeyError" in result.tracebacks[0]
    assert server.requests_by_path["/flaky"] == 50


def test_unique_data_runs_out_in_scenarios(redline_server: Server, tmp_path: Path) -> None:
    server = redline_server()
    (tmp_path / "codes.jsonl").write_text("".join(f'{{"code": "c{i}"}}\n' for i in range(30)))
    path = write_plan(
        tmp_path,
        server.url,
        """
        data = {"codes": {"file": "codes.jsonl", "mode": "unique"}}

        @scenario
        async def redeem(s: Session) -> None:
            await s.get("/redeem/" + s.data["codes"]["code"])
        """,
    )
    result = run_plan(load_plan(path))
    assert len(server.requests_by_path) == 30  # every code once, none twice
    assert set(server.requests_by_path.values()) == {1}
    assert result.exceptions() == {"redeem": {"DataExhaustedError": 170}}


def test_unique_data_runs_out_in_yaml_plans(redline_server: Server, tmp_path: Path) -> None:
    server = redline_server()
    (tmp_path / "codes.csv").write_text("code\na\nb\nc\n")
    plan = plan_from_dict(
        {
            "target": server.url,
            "data": {"codes": {"file": "codes.csv", "mode": "unique"}},
            "requests": [{"name": "redeem", "path": "/r/${codes.code}"}],
            "load": {"rate": "20/s"},
            "duration": "1s",
            "workers": 1,
        },
        base_dir=tmp_path,
    )
    result = run_plan(plan)
    assert sorted(server.requests_by_path) == ["/r/a", "/r/b", "/r/c"]
    assert result.endpoint("redeem").error_classes == {"data_exhausted": 17}


def test_declarative_plans_still_run_unchanged(redline_server: Server) -> None:
    server = redline_server()
    result = run_plan(make_plan(server.url, load={"rate": "100/s"}))
    assert result.total().requests == 100 == server.requests_total
    assert result.scenarios() == {}
    assert result.checks() == {}
