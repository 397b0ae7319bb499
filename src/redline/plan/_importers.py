"""Plans from traffic that already exists: HAR recordings, access logs, OpenAPI specs.

Each importer returns plan data (the structure of a YAML plan), validated with
:func:`plan_from_dict` before anything is written.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from redline.core import PlanError

__all__ = ["dump_plan", "plan_from_access_log", "plan_from_har", "plan_from_openapi"]

_STATIC = re.compile(
    r"\.(?:css|js|mjs|map|png|jpe?g|gif|svg|webp|avif|ico|woff2?|ttf|otf|eot|mp4|webm)(?:\?|$)",
    re.IGNORECASE,
)
_STATIC_TYPES = ("image/", "font/", "text/css", "javascript", "video/", "audio/")
_HOP_HEADERS = {
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "accept-encoding",
    "cookie",
    "authorization",
    "upgrade",
    "te",
    "trailer",
}
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read {what}: {exc.strerror or exc}", source=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"not valid JSON: {exc.msg}",
            source=str(path),
            path=f"line {exc.lineno}, column {exc.colno}",
        ) from None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def plan_from_har(
    path: str | Path,
    *,
    keep_assets: bool = False,
    rate: str = "1/s",
    duration: str = "1m",
) -> dict[str, Any]:
    """A plan with one flow replaying a browser recording in order, with its think times.

    Requests to other origins than the first request's are left out, and so are static
    assets (by extension or response type) unless ``keep_assets``. The pause between the
    end of one request and the start of the next becomes a think step.

    Raises:
        PlanError: the file is not a HAR recording (names file and place).
    """
    file = Path(path)
    data = _read_json(file, "HAR file")
    entries = data.get("log", {}).get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise PlanError("expected a HAR recording with log.entries", source=str(file))
    parsed = []
    for index, entry in enumerate(entries):
        where = f"log.entries[{index}]"
        try:
            request = entry["request"]
            url = str(request["url"])
            method = str(request["method"]).upper()
            started = datetime.fromisoformat(str(entry["startedDateTime"]).replace("Z", "+00:00"))
            elapsed = float(entry.get("time") or 0.0) / 1000
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanError(f"malformed entry: {exc}", source=str(file), path=where) from None
        mime = str(entry.get("response", {}).get("content", {}).get("mimeType", ""))
        parsed.append((where, request, url, method, started, elapsed, mime))
    origin = _origin(parsed[0][2])
    steps: list[dict[str, Any]] = []
    previous_end: datetime | None = None
    for _, request, url, method, started, elapsed, mime in sorted(parsed, key=lambda p: p[4]):
        if _origin(url) != origin or method not in _METHODS:
            continue
        if not keep_assets and (
            _STATIC.search(urlsplit(url).path) or mime.startswith(_STATIC_TYPES)
        ):
            continue
        if previous_end is not None:
            pause = (started - previous_end).total_seconds()
            if pause >= 0.05:
                steps.append({"think": f"{pause:.3f}s"})
        previous_end = started + timedelta(seconds=elapsed)
        step: dict[str, Any] = {"method": method, "path": _path_of(url)}
        headers = {
            str(h["name"]): str(h["value"])
            for h in request.get("headers", [])
            if isinstance(h, dict)
            and not str(h.get("name", "")).startswith(":")
            and str(h.get("name", "")).lower() not in _HOP_HEADERS
        }
        if headers:
            step["headers"] = headers
        post = request.get("postData")
        if isinstance(post, dict) and post.get("text"):
            step["body"] = str(post["text"])
            if post.get("mimeType") and not any(k.lower() == "content-type" for k in headers):
                step.setdefault("headers", {})["Content-Type"] = str(post["mimeType"])
        steps.append(step)
    if not any("path" in step for step in steps):
        raise PlanError("no request left after filtering (try keep_assets)", source=str(file))
    return {
        "name": file.stem,
        "target": origin,
        "flows": [{"name": "recording", "steps": steps}],
        "load": {"rate": rate},
        "duration": duration,
    }


_COMBINED = re.compile(
    r"^(?P<host>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "
    r'"(?P<method>[A-Z]+) (?P<target>\S+)(?: HTTP/[\d.]+)?" '
    r"(?P<status>\d{3}) \S+"
)


def _log_lines(file: Path) -> Iterator[tuple[int, datetime, str, str]]:
    try:
        handle = file.open(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise PlanError(
            f"cannot read access log: {exc.strerror or exc}", source=str(file)
        ) from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            match = _COMBINED.match(line)
            if match is None:
                raise PlanError(
                    "expected the combined log format "
                    '(host - user [time] "METHOD /path HTTP/1.1" status size ...)',
                    source=str(file),
                    path=f"line {number}",
                )
            try:
                when = datetime.strptime(match["time"], "%d/%b/%Y:%H:%M:%S %z")
            except ValueError:
                raise PlanError(
                    f"unreadable time {match['time']!r}", source=str(file), path=f"line {number}"
                ) from None
            yield number, when, match["method"], match["target"]


def plan_from_access_log(
    path: str | Path,
    *,
    target: str,
    rate: str | None = None,
    pace: float | None = None,
    top: int = 200,
) -> dict[str, Any]:
    """A plan that replays the request mix of an nginx/Apache combined access log.

    With ``rate``, the ``top`` most frequent requests become weighted requests at that
    arrival rate. With ``pace`` (a time factor: 2.0 replays twice as fast), the load
    follows the log's own per-second rate as stages. Without either, the log's average
    rate is used. Query strings are kept; methods other than redline's are left out.

    Raises:
        PlanError: a line is not in the combined format (names file and line).
    """
    file = Path(path)
    counts: Counter[tuple[str, str]] = Counter()
    per_second: Counter[int] = Counter()
    first: datetime | None = None
    last: datetime | None = None
    for _, when, method, request_target in _log_lines(file):
        if method not in _METHODS or not request_target.startswith("/"):
            continue
        counts[(method, request_target)] += 1
        first = when if first is None or when < first else first
        last = when if last is None or when > last else last
        per_second[int(when.timestamp())] += 1
    if not counts or first is None or last is None:
        raise PlanError("no request found in the log", source=str(file))
    span = max((last - first).total_seconds(), 1.0)
    requests = [
        {
            "name": f"{method} {request_target}",
            "method": method,
            "path": request_target,
            "weight": n,
        }
        for (method, request_target), n in counts.most_common(top)
    ]
    plan: dict[str, Any] = {"name": file.stem, "target": target.rstrip("/"), "requests": requests}
    if pace is not None:
        start = int(first.timestamp())
        stages = []
        for second in range(int(span) + 1):
            stage_rate = per_second.get(start + second, 0) * pace
            stages.append({"duration": f"{1 / pace:.6g}s", "rate": stage_rate or 0})
        plan["load"] = {"start_rate": stages[0]["rate"], "stages": stages}
    else:
        plan["load"] = {"rate": rate or f"{sum(counts.values()) / span:.6g}/s"}
        plan["duration"] = "1m"
    return plan


def plan_from_openapi(path: str | Path, *, target: str | None = None) -> dict[str, Any]:
    """A plan with one request per operation of an OpenAPI 3 spec (JSON or YAML).

    Path and required query parameters, and JSON bodies, get values from the spec's
    examples, defaults and enums, or simple ones made from their schema types.

    Raises:
        PlanError: the file is not an OpenAPI 3 document.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read spec: {exc.strerror or exc}", source=str(file)) from None
    try:
        spec = yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise PlanError(f"not valid JSON or YAML: {exc}", source=str(file), path=where) from None
    if not isinstance(spec, dict) or not str(spec.get("openapi", "")).startswith("3"):
        raise PlanError(
            'expected an OpenAPI 3 document (an "openapi: 3.x" field)', source=str(file)
        )
    servers = spec.get("servers") or [{}]
    base = target or str(servers[0].get("url") or "")
    if not base.startswith(("http://", "https://")):
        raise PlanError("the spec names no absolute server URL: give a target", source=str(file))
    prefix = urlsplit(base).path.rstrip("/")
    requests = []
    for route, operations in (spec.get("paths") or {}).items():
        if not isinstance(operations, dict):
            continue
        shared = operations.get("parameters", [])
        for method, operation in operations.items():
            if method.upper() not in _METHODS or not isinstance(operation, dict):
                continue
            parameters = [_deref(spec, p) for p in [*shared, *operation.get("parameters", [])]]
            request_path = prefix + route
            query = []
            for parameter in parameters:
                value = _example(spec, parameter, parameter.get("schema", {}))
                if parameter.get("in") == "path":
                    request_path = request_path.replace("{" + parameter["name"] + "}", str(value))
                elif parameter.get("in") == "query" and parameter.get("required"):
                    query.append(f"{parameter['name']}={value}")
            if query:
                request_path += "?" + "&".join(query)
            name = operation.get("operationId") or f"{method.upper()} {route}"
            request: dict[str, Any] = {"name": name, "method": method.upper(), "path": request_path}
            body = _deref(spec, operation.get("requestBody", {}))
            media = body.get("content", {}).get("application/json")
            if isinstance(media, dict):
                request["json"] = _example(spec, media, media.get("schema", {}))
            requests.append(request)
    if not requests:
        raise PlanError("the spec has no operations", source=str(file))
    return {
        "name": str(spec.get("info", {}).get("title") or file.stem),
        "target": _origin(base),
        "requests": requests,
        "load": {"rate": "10/s"},
        "duration": "1m",
    }


def _deref(spec: Mapping[str, Any], node: Any, depth: int = 0) -> Any:
    if isinstance(node, dict) and "$ref" in node and depth < 20:
        ref = str(node["$ref"])
        if ref.startswith("#/"):
            target: Any = spec
            for part in ref[2:].split("/"):
                target = target.get(part, {}) if isinstance(target, dict) else {}
            return _deref(spec, target, depth + 1)
    return node if isinstance(node, dict) else {}


def _example(
    spec: Mapping[str, Any], holder: Mapping[str, Any], schema: Any, depth: int = 0
) -> Any:
    """A value for a parameter or body: its example, else one built from its schema."""
    if "example" in holder:
        return holder["example"]
    examples = holder.get("examples")
    if isinstance(examples, dict) and examples:
        first = _deref(spec, next(iter(examples.values())))
        if "value" in first:
            return first["value"]
    schema = _deref(spec, schema)
    for key in ("example", "default"):
        if key in schema:
            return schema[key]
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if depth > 5:
        return None
    if kind == "object" or "properties" in schema:
        return {
            name: _example(spec, {}, sub, depth + 1)
            for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        return [_example(spec, {}, schema.get("items", {}), depth + 1)]
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.0))
    if kind == "boolean":
        return True
    return "example"


def dump_plan(plan: Mapping[str, Any]) -> str:
    """Plan data as YAML text, keys in the order given."""
    return yaml.safe_dump(dict(plan), sort_keys=False, allow_unicode=True)
