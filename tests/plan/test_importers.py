"""Importers: HAR recordings, access logs and OpenAPI specs become valid plans."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from redline.core import PlanError
from redline.plan import (
    RequestSpec,
    ThinkStep,
    plan_from_access_log,
    plan_from_dict,
    plan_from_har,
    plan_from_openapi,
)

START = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def har_entry(
    url: str,
    at: float,
    *,
    took: float = 0.02,
    method: str = "GET",
    mime: str = "text/html",
    **request: Any,
) -> dict[str, Any]:
    return {
        "startedDateTime": (START + timedelta(seconds=at)).isoformat().replace("+00:00", "Z"),
        "time": took * 1000,
        "request": {"method": method, "url": url, "headers": request.pop("headers", []), **request},
        "response": {"status": 200, "content": {"mimeType": mime}},
    }


def write_har(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "visit.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    return path


def test_har_keeps_order_and_think_times_and_drops_assets(tmp_path: Path) -> None:
    base = "http://127.0.0.1:8080"
    path = write_har(
        tmp_path,
        [
            har_entry(
                base + "/search?q=lamp",
                1.5,
                headers=[
                    {"name": "Accept", "value": "text/html"},
                    {"name": "Cookie", "value": "x"},
                ],
            ),
            har_entry(base + "/", 0.0),
            har_entry(base + "/static/app.js", 0.03, mime="application/javascript"),
            har_entry(base + "/logo", 0.04, mime="image/png"),
            har_entry("https://cdn.example.org/lib.js", 0.05),
            har_entry(
                base + "/cart",
                2.0,
                method="POST",
                postData={"mimeType": "application/json", "text": '{"sku": 1}'},
            ),
        ],
    )
    data = plan_from_har(path)
    plan = plan_from_dict(data, source="visit.har")
    (flow,) = plan.scenarios
    steps = flow.steps
    requests = [s for s in steps if isinstance(s, RequestSpec)]
    assert [(r.method, r.path.text) for r in requests] == [
        ("GET", "/"),
        ("GET", "/search?q=lamp"),
        ("POST", "/cart"),
    ]
    thinks = [s for s in steps if isinstance(s, ThinkStep)]
    assert [round(t.minimum, 2) for t in thinks] == [
        1.48,
        0.48,
    ]  # gaps between one end and the next start
    assert dict((k, v.text) for k, v in requests[1].headers) == {"Accept": "text/html"}  # no Cookie
    assert requests[2].body is not None
    assert requests[2].body.text == '{"sku": 1}'
    assert plan.target == base
    assert len(plan_from_dict(plan_from_har(path, keep_assets=True)).scenarios[0].steps) > len(
        steps
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"log": {"entries": [}', r"visit\.har: line 1, column \d+: not valid JSON"),
        ('{"log": {"entries": []}}', r"expected a HAR recording with log\.entries"),
        ('{"log": {"entries": [{"request": {}}]}}', r"log\.entries\[0\]: malformed entry"),
    ],
)
def test_bad_har_files_are_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "visit.har"
    path.write_text(text)
    with pytest.raises(PlanError, match=message):
        plan_from_har(path)


def log_line(path: str, at: float, method: str = "GET") -> str:
    when = (START + timedelta(seconds=at)).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return f'127.0.0.1 - - [{when}] "{method} {path} HTTP/1.1" 200 512 "-" "curl/8"\n'


def test_access_log_mix_becomes_weights(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text(
        "".join(log_line(p, i / 10) for i, p in enumerate(["/a", "/a", "/b", "/a?x=1", "/c"] * 20))
    )
    data = plan_from_access_log(path, target="http://127.0.0.1:9", rate="50/s")
    weights = {r["name"]: r["weight"] for r in data["requests"]}
    assert weights == {"GET /a": 40, "GET /b": 20, "GET /a?x=1": 20, "GET /c": 20}
    assert plan_from_dict(data).load.rate == 50  # type: ignore[union-attr]


def test_access_log_pace_follows_the_log(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    lines = [log_line("/a", 0.1 * i) for i in range(10)] + [
        log_line("/a", 1 + 0.05 * i) for i in range(20)
    ]
    path.write_text("".join(lines))
    plan = plan_from_dict(plan_from_access_log(path, target="http://127.0.0.1:9", pace=2.0))
    assert [s.target for s in plan.load.stages] == [20.0, 40.0]
    assert plan.duration == pytest.approx(1.0)  # two recorded seconds, twice as fast


def test_access_log_bad_line_names_it(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text(log_line("/a", 0) + "garbage\n")
    with pytest.raises(PlanError, match=r"access\.log: line 2: expected the combined log format"):
        plan_from_access_log(path, target="http://127.0.0.1:9")


SPEC = """
openapi: 3.0.3
info: {title: shop}
servers: [{url: "http://127.0.0.1:8080/api"}]
paths:
  /items/{id}:
    parameters:
      - {name: id, in: path, required: true, schema: {type: integer, example: 7}}
    get:
      operationId: getItem
      parameters:
        - {name: fields, in: query, required: true, schema: {type: string, enum: [short, long]}}
        - {name: debug, in: query, schema: {type: boolean}}
  /orders:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: "#/components/schemas/Order"}
components:
  schemas:
    Order:
      type: object
      properties:
        sku: {type: string, example: lamp}
        qty: {type: integer, minimum: 1}
        tags: {type: array, items: {type: string}}
"""


def test_openapi_gives_one_request_per_operation(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    data = plan_from_openapi(path)
    plan = plan_from_dict(data)
    by_name = {r.name: r for r in plan.requests}
    assert by_name["getItem"].path.text == "/api/items/7?fields=short"
    order = by_name["POST /orders"]
    assert order.body is not None
    assert json.loads(order.body.text) == {"sku": "lamp", "qty": 1, "tags": ["example"]}
    assert plan.target == "http://127.0.0.1:8080"


def test_openapi_rejects_other_documents(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text('{"swagger": "2.0"}')
    with pytest.raises(PlanError, match="expected an OpenAPI 3 document"):
        plan_from_openapi(path)
