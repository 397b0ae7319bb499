"""Declarative requests and flows beyond one host: redirects (followed or not),
multipart uploads, and several hosts in one plan, each checked at the servers."""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from redline.core import PlanError
from redline.engine import run_plan
from redline.plan import load_plan, plan_from_dict
from redline.testing import Behaviour, TestServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def servers() -> Iterator[tuple[TestServer, TestServer]]:
    """The plan's target, and a second host it also calls (an auth service, say)."""
    with TestServer().running() as other:
        routes = {
            "/old": Behaviour(status=301, location="/new"),
            "/see-other": Behaviour(status=303, location="/result"),
            "/away": Behaviour(status=302, location=f"{other.url}/landing"),
            "/loop": Behaviour(status=302, location="/loop"),
        }
        with TestServer(routes=routes).running() as target:
            yield target, other


def closed(url: str, requests: list[dict[str, Any]], **top: Any) -> Any:
    return plan_from_dict(
        {"target": url, "requests": requests, "load": {"vus": 1}, "duration": "1s", **top}
    )


def test_redirects_are_not_followed_unless_asked(servers: tuple[TestServer, TestServer]) -> None:
    target, _ = servers
    result = run_plan(closed(target.url, [{"name": "old", "path": "/old"}]), workers=1)
    assert target.requests_by_path["/new"] == 0
    assert result.endpoint("old").status.keys() == {301}  # what the target answered


def test_followed_redirects_are_each_a_request_of_the_endpoint(
    servers: tuple[TestServer, TestServer],
) -> None:
    target, other = servers
    plan = closed(
        target.url,
        [{"name": "old", "path": "/old"}, {"name": "away", "path": "/away"},
         {"name": "posted", "method": "POST", "path": "/see-other", "body": "x"},
         {"name": "loop", "path": "/loop", "redirects": 3}],
        redirects=5,
    )  # fmt: skip
    result = run_plan(plan, workers=1)
    old = result.endpoint("old")
    assert old.status[301] == old.status[200] == target.requests_by_path["/new"] > 0
    # a redirect to another host is followed there
    assert other.requests_by_path["/landing"] == result.endpoint("away").status[200] > 0
    # 303 turns the POST into a GET without its body
    assert target.last_request["/result"].method == "GET"
    assert target.last_request["/result"].body == b""
    # a redirect loop stops after the request's own limit: 1 + 3 hops per iteration
    loop = result.endpoint("loop")
    assert loop.status == {302: loop.requests}
    assert target.requests_by_path["/loop"] % 4 == 0


def test_a_flow_spans_two_hosts(servers: tuple[TestServer, TestServer]) -> None:
    target, other = servers
    plan = plan_from_dict(
        {
            "target": target.url,
            "flows": [{"name": "login", "steps": [
                {"name": "token", "method": "POST", "url": f"{other.url}/oauth/token"},
                {"name": "home", "path": "/home"},
            ]}],
            "load": {"vus": 2}, "duration": "1s",
        }
    )  # fmt: skip
    result = run_plan(plan, workers=1)
    assert other.requests_by_path["/oauth/token"] == result.endpoint("token").requests > 0
    assert target.requests_by_path["/oauth/token"] == 0
    assert other.last_request["/oauth/token"].header("Host") == other.url.split("//")[1]


def test_block_stops_a_redirect_to_a_blocked_host(servers: tuple[TestServer, TestServer]) -> None:
    target, other = servers
    port = other.url.rsplit(":", 1)[1]
    # both servers are on 127.0.0.1: block the other one by its name, localhost
    away = {"target": target.url, "requests": [{"name": "away", "path": "/go"}],
            "load": {"vus": 1}, "duration": "1s", "redirects": 2,
            "block": ["localhost"]}  # fmt: skip
    with TestServer(
        routes={"/go": Behaviour(status=302, location=f"http://localhost:{port}/landing")}
    ).running() as origin:
        away["target"] = origin.url
        result = run_plan(plan_from_dict(away), workers=1)
    assert other.requests_by_path["/landing"] == 0
    assert result.endpoint("away").error_classes.get("blocked", 0) > 0


def test_multipart_uploads_reach_the_server_whole(
    servers: tuple[TestServer, TestServer], tmp_path: Path
) -> None:
    target, _ = servers
    photo = bytes(range(256)) * 4
    (tmp_path / "photo.png").write_bytes(photo)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        f"""
target: {target.url}
load: {{vus: 1}}
duration: 1s
seed: 3
requests:
  - name: upload
    method: POST
    path: /upload
    multipart:
      title: "holiday ${{seq()}}"
      photo: {{file: photo.png}}
"""
    )
    plan = load_plan(plan_file)
    run_plan(plan, workers=1)
    request = target.last_request["/upload"]
    kind = request.header("Content-Type")
    assert kind is not None
    assert kind.startswith("multipart/form-data; boundary=")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {kind}\r\n\r\n".encode() + request.body
    )
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["photo"].get_content() == photo
    assert parts["photo"].get_filename() == "photo.png"
    assert parts["photo"].get_content_type() == "image/png"
    assert parts["title"].get_content().startswith("holiday ")
    count = target.requests_by_path["/upload"]
    assert parts["title"].get_content() == f"holiday {count - 1}"  # rendered per request


@pytest.mark.parametrize(
    ("request_", "path", "message"),
    [
        ({"path": "/", "body": "x", "json": {}}, "requests[0]", "not body and json"),
        ({"path": "/", "multipart": {"f": {"file": "missing.bin"}}},
         "requests[0].multipart.f.file", "cannot read 'missing.bin'"),
        ({"path": "/", "multipart": {"f": {"path": "x"}}}, "requests[0].multipart.f.path",
         "unknown key"),
        ({"path": "/", "redirects": -1}, "requests[0].redirects", "whole number >= 0"),
    ],
)  # fmt: skip
def test_bad_requests_name_their_path(request_: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(PlanError, match=message) as caught:
        plan_from_dict(
            {"target": "http://127.0.0.1:9", "requests": [request_], "load": {"rate": 1},
             "duration": "1s"}, source="p.yaml",
        )  # fmt: skip
    assert caught.value.path == path
