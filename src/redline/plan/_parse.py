"""Validation of plans written as YAML or as Python dicts, with path-qualified errors."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import mimetypes
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

import yaml

from redline.core import (
    AddressPolicy,
    Objective,
    PlanError,
    Redactor,
    parse_duration,
    parse_rate,
    parse_size,
)
from redline.http import encoding_missing

from ._data import _data_sources
from ._faults import parse_faults
from ._grpc import compile_proto, encode_message, find_call
from ._node import (
    _boolean,
    _duration_positive,
    _fraction,
    _names,
    _Node,
    _non_negative_int,
    _positive_int,
    _show,
    _target,
    _text,
)
from ._observe import parse_cost, parse_observe
from ._presets import DEFAULT_DURATIONS, shape_load
from ._slo import check_slos, slos_from_data
from ._spec import (
    ClosedLoad,
    CompressionSpec,
    Extraction,
    FilePart,
    FlowCheck,
    OpenLoad,
    Plan,
    RequestSpec,
    ScenarioSpec,
    Stage,
    ThinkStep,
    WebSocketSpec,
)
from ._template import DataSource, compile_template
from ._trace import parse_trace

__all__ = ["load_plan", "plan_from_dict", "quick_plan"]

T = TypeVar("T")
QUICK_DURATION = "10s"  # a plan made from the command line alone lasts this long

_TOP_KEYS = (
    "name",
    "protocol",
    "compression",
    "grpc",
    "websocket",
    "allow",
    "block",
    "observe",
    "cost",
    "trace",
    "slo",
    "target",
    "data",
    "requests",
    "flows",
    "load",
    "duration",
    "warmup",
    "timeouts",
    "limits",
    "tls",
    "workers",
    "seed",
    "generator",
    "redact",
    "type",
    "spike",
    "faults",
    "scenarios",
    "redirects",
)
_REQUEST_KEYS = (
    "name", "method", "path", "url", "headers", "body", "json", "multipart", "weight", "tags",
    "redirects", "grpc", "message", "messages", "metadata", "deadline",
)  # fmt: skip
_LOAD_KEYS = ("model", "rate", "stages", "start_rate", "arrivals", "vus", "start_vus", "think")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def load_plan(path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> Plan:
    """Read and validate a plan file: YAML, or Python (``.py``) with scenarios.

    Args:
        path: the plan file.
        overrides: command-line values (``url``, ``rate``, ``vus``, ``duration``) that
            replace the plan's own.

    Raises:
        PlanError: naming the file, the path inside it and what was expected.
    """
    source = str(path)
    if Path(path).suffix == ".py":
        from ._python import load_python_plan  # a cycle at import time otherwise

        return load_python_plan(path, overrides=overrides)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read plan: {exc.strerror or exc}", source=source) from exc
    except UnicodeDecodeError as exc:
        raise PlanError(f"not UTF-8 text: {exc.reason}", source=source) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlanError(f"{where}: malformed YAML: {problem}", source=source) from None
    except RecursionError:
        raise PlanError("malformed YAML: nested too deeply", source=source) from None
    return plan_from_dict(data, source=source, base_dir=Path(path).parent, overrides=overrides)


def quick_plan(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    rate: object = None,
    vus: object = None,
    duration: object = QUICK_DURATION,
    verify_tls: bool = True,
    redact: Sequence[str] = (),
    test_type: str | None = None,
    allow: Sequence[str] = (),
    block: Sequence[str] = (),
    protocol: str | None = None,
    compress: str | None = None,
) -> Plan:
    """Build a one-request plan from command-line values (``redline run --url ...``).

    ``duration`` None takes the default of ``test_type`` (10 s without one).

    Raises:
        PlanError: with the offending option named as the path.
    """
    try:
        target = _target(url)
    except ValueError as exc:
        raise PlanError(str(exc), source="command line", path="--url") from None
    parts = urlsplit(target)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    shown = Redactor(redact).url(path)  # the name is recorded everywhere; the path is not
    request: dict[str, Any] = {"name": f"{method.upper()} {shown}", "method": method, "path": path}
    if headers:
        request["headers"] = dict(headers)
    if body is not None:
        request["body"] = body
    data: dict[str, Any] = {
        "name": "quick",
        "target": origin,
        "requests": [request],
        "tls": {"verify": verify_tls},
    }
    if duration is not None or test_type is None:
        data["duration"] = duration if duration is not None else QUICK_DURATION
    if test_type:
        data["type"] = test_type
    if redact:
        data["redact"] = list(redact)
    if allow:
        data["allow"] = list(allow)
    if block:
        data["block"] = list(block)
    if protocol:
        data["protocol"] = protocol
    if compress:
        data["compression"] = {"accept": [e.strip() for e in compress.split(",") if e.strip()]}
    return plan_from_dict(
        data, source="command line", overrides={"rate": rate, "vus": vus} if rate or vus else None
    )


def plan_from_dict(
    data: object,
    *,
    source: str = "<dict>",
    base_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    scenarios: Sequence[ScenarioSpec] = (),
    module: str | None = None,
    hooks: tuple[bool, bool] = (False, False),
    metrics: tuple[tuple[str, str], ...] = (),
) -> Plan:
    """Validate a plan given as plain data (the same structure as the YAML form).

    ``scenarios`` (with the ``module`` that defines them, whether it has setup and
    teardown hooks, and its custom ``metrics``) stand in for ``requests`` in Python plans.

    Raises:
        PlanError: naming ``source``, the path inside it and what was expected.
    """
    if data is None:
        raise PlanError(
            "the plan is empty: expected a mapping with target and requests", source=source
        )
    root = _Node(data, "", source)
    root.check_keys(_TOP_KEYS)
    raw = dict(root.value)
    if overrides:
        raw = _apply_overrides(raw, overrides, source)
        root = _Node(raw, "", source)
    base_dir = base_dir or Path.cwd()

    functions = tuple(scenarios)  # a Python plan's @scenario functions
    # a Python plan that only publishes to a queue (redline.scenario.Jobs) names the broker
    websocket = "websocket" in root.value
    target = root.get(
        "target", functools.partial(_target, queues=bool(functions), websocket=websocket)
    )
    redact = root.get("redact", _names, ())
    addresses = AddressPolicy.parse(
        root.get("allow", _address_entries, ()), root.get("block", _address_entries, ())
    )
    redactor = Redactor(redact)
    data_sources = _data_sources(root, base_dir)
    by_name = {d.name: d for d in data_sources}
    workloads = "scenarios" in root.value
    if workloads:
        from ._workloads import check_no_single_load  # a cycle at import time otherwise

        check_no_single_load(root)
        scenarios = ()
        requests: tuple[RequestSpec, ...] = ()
        load: OpenLoad | ClosedLoad = ClosedLoad(vus=0)  # until the scenarios are read
        duration = 0.0
        shape: dict[str, Any] = {}
    else:
        if "flows" in root.value:
            if scenarios:
                root.fail("a Python plan's scenarios are its flows: remove flows", "flows")
            scenarios = _flows(root, target, by_name, redactor, base_dir=base_dir)
        if scenarios and "requests" in root.value:
            where = "flows" if "flows" in root.value else "scenarios"
            root.fail(f"a plan with {where} sends what they send: remove requests", "requests")
        if websocket and "requests" in root.value:
            root.fail("a WebSocket plan sends its websocket: messages: remove requests",
                      "requests")  # fmt: skip
        requests = (
            _requests(root, target, by_name, redactor, base_dir=base_dir)
            if not scenarios and not websocket
            else ()
        )
        load = _load(root)
        given: float | None = root.get("duration", _duration_positive, None)
        load, given, shape = _shaped(root, load, given)
        if given is None and not load.stages:
            root.fail(
                'is required (or give load.stages): expected a duration like "30s"', "duration"
            )
        duration = given if given is not None else sum(s.duration for s in load.stages)
        requests, scenarios = _by_session(requests, scenarios, root.get("redirects",
                                          _non_negative_int, 0))  # fmt: skip
    compression = _compression(root)
    timeouts = root.node("timeouts")
    limits = root.node("limits")
    tls = root.node("tls")
    generator = root.node("generator")
    for node, keys in (
        (timeouts, ("connect", "read")),
        (limits, ("max_connections", "max_streams", "max_in_flight", "max_response_size")),
        (tls, ("verify",)),
        (generator, ("late_threshold", "late_tolerance", "on_worker_lost")),
    ):
        if node is not None:
            node.check_keys(keys)
    plan = Plan(
        name=root.get("name", _text, Path(source).stem if base_dir else "plan"),
        target=target,
        requests=requests,
        load=load,
        duration=duration,
        warmup=root.get("warmup", parse_duration, 0.0),
        connect_timeout=_setting(timeouts, "connect", _duration_positive, "connect_timeout"),
        read_timeout=_setting(timeouts, "read", _duration_positive, "read_timeout"),
        max_connections=_setting(limits, "max_connections", _positive_int, "max_connections"),
        protocol=root.get("protocol", _protocol, _default_protocol(target, requests, raw)),
        grpc_schema=_grpc_schema(root, base_dir) if functions or scenarios else None,
        websocket=_websocket(root, by_name) if websocket else None,
        max_streams=_setting(limits, "max_streams", _positive_int, "max_streams"),
        max_in_flight=_setting(limits, "max_in_flight", _positive_int, "max_in_flight"),
        max_response_size=_setting(limits, "max_response_size", parse_size, "max_response_size"),
        verify_tls=_setting(tls, "verify", _boolean, "verify_tls"),
        workers=root.get("workers", _positive_int, None),
        seed=root.get("seed", _non_negative_int, None),
        late_threshold=_setting(generator, "late_threshold", _duration_positive, "late_threshold"),
        late_tolerance=_setting(generator, "late_tolerance", _fraction, "late_tolerance"),
        on_worker_lost=_setting(generator, "on_worker_lost", _on_lost, "on_worker_lost"),
        data=tuple(data_sources),
        source=source,
        scenarios=tuple(scenarios),
        module=module,
        has_setup=hooks[0],
        has_teardown=hooks[1],
        slos=_slos(raw.get("slo"), source, shape),
        redact=redact,
        shape=shape,
        faults=parse_faults(root),
        observe=parse_observe(root),
        cost=parse_cost(root),
        trace=parse_trace(root),
        addresses=addresses,
        metrics=metrics
        + (compression.metrics() if compression else ())
        + (_WS_METRICS if websocket else ()),
        compression=compression,
        redirects=root.get("redirects", _non_negative_int, 0),
    )
    if workloads:
        from ._workloads import combined_load, parse_workloads

        parsed = parse_workloads(
            root, plan, sources=by_name, redactor=redactor, functions=functions, base_dir=base_dir
        )
        plan = dataclasses.replace(
            plan,
            workloads=parsed,
            load=combined_load([w.plan.load for w in parsed]),
            duration=max(w.end for w in parsed),
        )
    plan = dataclasses.replace(plan, slos=check_slos(plan, plan.slos))
    _check_protocol(root, plan)
    if not workloads and isinstance(load, ClosedLoad) and load.max_vus > plan.max_slots:
        if plan.protocol == "http1":
            root.fail(
                f"{load.max_vus} virtual users need as many connections, but "
                f"limits.max_connections is {plan.max_connections}",
                "load",
            )
        root.fail(
            f"{load.max_vus} virtual users need as many streams, but limits.max_connections "
            f"({plan.max_connections}) x limits.max_streams ({plan.max_streams}) is "
            f"{plan.max_slots}",
            "load",
        )
    return plan


def _shaped(
    root: _Node, load: OpenLoad | ClosedLoad, duration: float | None
) -> tuple[OpenLoad | ClosedLoad, float | None, dict[str, Any]]:
    """The load drawn by the plan's ``type`` (see ``_presets``), if it has one."""
    kind = root.get("type", _text, None)
    spike = root.node("spike")
    if kind is None:
        if spike is not None:
            root.fail("spike settings need type: spike", "spike")
        return load, duration, {}
    if spike is not None:
        if kind != "spike":
            root.fail(f"spike settings apply to type: spike, not {_show(kind)}", "spike")
        spike.check_keys(("multiple", "for"))
    duration = duration or DEFAULT_DURATIONS.get(kind, 60.0)
    try:
        shaped, shape = shape_load(
            kind,
            load,
            duration,
            multiple=spike.get("multiple", _positive_number, 5.0) if spike else 5.0,
            spike_for=spike.get("for", _duration_positive, None) if spike else None,
        )
    except ValueError as exc:
        root.fail(str(exc), "type")
    return shaped, duration, shape


def _slos(data: Any, source: str, shape: Mapping[str, Any]) -> tuple[Objective, ...]:
    """The objectives; in a breakpoint test each is an abort rule, the point of the test."""
    objectives = slos_from_data(data, source=source)
    if shape.get("type") == "breakpoint":
        return tuple(dataclasses.replace(o, abort=True) for o in objectives)
    return objectives


_PLAN_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(Plan) if f.default is not dataclasses.MISSING
}
"""The plan's defaults, written once: in :class:`Plan`'s fields."""


def _setting(node: _Node | None, key: str, parse: Callable[[Any], T], field_name: str) -> T:
    """``key`` of an optional section, or the default of the Plan field it sets."""
    default: T = _PLAN_DEFAULTS[field_name]
    return node.get(key, parse, default) if node is not None else default


def _address_entries(value: object) -> tuple[str, ...]:
    """``allow:`` or ``block:``: host names, wildcards, addresses, CIDR networks."""
    if not isinstance(value, list):
        raise ValueError(
            f'expected a list of hosts or networks like ["127.0.0.0/8", "*.example.com"], '
            f"got {_show(value)}"
        )
    for index, item in enumerate(value):
        try:
            AddressPolicy.parse(block=[str(item)])
        except ValueError as exc:
            raise ValueError(f"[{index}]: {exc}") from None
    return tuple(str(item) for item in value)


def _protocol(value: object) -> Literal["http1", "h2", "h2c"]:
    if value not in ("http1", "h2", "h2c"):
        raise ValueError(f'expected "http1", "h2" or "h2c", got {_show(value)}')
    return value


def _default_protocol(target: str, requests: Sequence[RequestSpec], raw: Mapping[str, Any]) -> str:
    """HTTP/1.1, but HTTP/2 for a plan with gRPC calls or a proto (h2 on https, h2c on http)."""
    if not any(r.grpc for r in requests) and "grpc" not in raw:
        return "http1"
    return "h2" if target.startswith("https:") else "h2c"


def _check_protocol(root: _Node, plan: Plan) -> None:
    """``h2`` is negotiated by ALPN over TLS, ``h2c`` spoken at once over plain TCP."""
    scheme = plan.origin[0]
    if plan.protocol == "http1" and any(r.grpc for r in plan.requests):
        root.fail("gRPC runs over HTTP/2: use h2 (https) or h2c (http)", "protocol")
    if plan.protocol == "h2" and scheme != "https":
        root.fail(
            f"h2 is negotiated over TLS: the target is {scheme}://, so use https:// "
            "or protocol: h2c (HTTP/2 over plain TCP, prior knowledge)",
            "protocol",
        )
    if plan.protocol == "h2c" and scheme != "http":
        root.fail(
            f"h2c is HTTP/2 over plain TCP: the target is {scheme}://, so use http:// "
            "or protocol: h2 (negotiated by ALPN over TLS)",
            "protocol",
        )


def _on_lost(value: object) -> Literal["abort", "continue"]:
    if value not in ("abort", "continue"):
        raise ValueError(f'expected "abort" or "continue", got {_show(value)}')
    return value


def _positive_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"expected a positive number, got {_show(value)}")
    return float(value)


def _apply_overrides(
    raw: dict[str, Any], overrides: Mapping[str, Any], source: str
) -> dict[str, Any]:
    raw = dict(raw)
    if overrides.get("url"):
        raw["target"] = overrides["url"]
    shaping = [f"--{k}" for k in ("rate", "vus", "duration") if overrides.get(k)]
    if "scenarios" in raw and shaping:
        raise PlanError(
            f"{' and '.join(shaping)} set the load of a plan with one; this plan's scenarios "
            "each have their own (change them in the plan)",
            source="command line",
        )
    if overrides.get("duration"):
        raw["duration"] = overrides["duration"]
    if overrides.get("type"):
        raw["type"] = overrides["type"]
    for key in ("allow", "block"):
        if overrides.get(key):
            raw[key] = [*(raw.get(key) or []), *overrides[key]]
    if overrides.get("redact"):
        own = raw.get("redact")
        raw["redact"] = [*(own if isinstance(own, list) else []), *overrides["redact"]]
    if overrides.get("protocol"):
        raw["protocol"] = overrides["protocol"]
    if overrides.get("compress"):
        accept = [e.strip() for e in str(overrides["compress"]).split(",") if e.strip()]
        raw["compression"] = {**(raw.get("compression") or {}), "accept": accept}
    if overrides.get("insecure"):
        tls = raw.get("tls")
        raw["tls"] = {**(tls if isinstance(tls, Mapping) else {}), "verify": False}
    rate, vus = overrides.get("rate"), overrides.get("vus")
    if rate and vus:
        raise PlanError(
            "give --rate (open model) or --vus (closed model), not both", source="command line"
        )
    load = dict(raw.get("load") or {}) if isinstance(raw.get("load"), Mapping) else {}
    if rate:
        load = {k: v for k, v in load.items() if k in ("arrivals",)}
        load.update(model="open", rate=rate)
    if vus:
        load = {k: v for k, v in load.items() if k in ("think",)}
        load.update(model="closed", vus=vus)
    if rate or vus:
        raw["load"] = load
    return raw


def _requests(
    root: _Node,
    target: str,
    sources: Mapping[str, DataSource],
    redactor: Redactor,
    *,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> tuple[RequestSpec, ...]:
    entries = root.items("requests")
    if not entries:
        root.fail("expected at least one request, like [{name: home, path: /}]", "requests")
    specs: list[RequestSpec] = []
    names: set[str] = set()
    schema = _grpc_schema(root, base_dir or Path.cwd()) if _calls_grpc(entries) else None
    for path, value in entries:
        node = _Node(value, path, root.source)
        spec = _request(
            node, target, sources, redactor, env=env, base_dir=base_dir, grpc_schema=schema
        )
        if spec.name in names:
            node.fail(f"duplicate request name {_show(spec.name)}: names must be unique", "name")
        names.add(spec.name)
        specs.append(spec)
    return tuple(specs)


def _request(
    node: _Node,
    target: str,
    sources: Mapping[str, DataSource],
    redactor: Redactor,
    *,
    flow: bool = False,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    grpc_schema: bytes | None = None,
) -> RequestSpec:
    """One request: of ``requests``, or a step of a flow (which may extract and check).

    Its default name is its method and path with secret query values redacted: names
    are recorded everywhere.
    """
    node.check_keys(_REQUEST_KEYS + (("extract", "check") if flow else ()))
    if "grpc" in node.value:
        return _grpc_request(node, target, sources, env, grpc_schema)
    for key in ("message", "messages", "metadata", "deadline"):
        if key in node.value:
            node.fail("applies to gRPC calls only (give grpc: package.Service/Method)", key)
    target_parts = urlsplit(target)
    method = node.get("method", _text, "GET").upper()
    if method not in _METHODS:
        node.fail(f"expected one of {', '.join(_METHODS)}, got {_show(method)}", "method")
    if "path" in node.value and "url" in node.value:
        node.fail("give path or url, not both")
    origin = ""
    if "url" in node.value:
        url = node.get("url", _target)
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (target_parts.scheme, target_parts.netloc):
            origin = f"{parts.scheme}://{parts.netloc}"  # another host of the plan
        request_path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    else:
        request_path = node.get("path", _text, "/")
        if not request_path.startswith("/"):
            node.fail(f'expected a path starting with "/", got {_show(request_path)}', "path")
    name = node.get("name", _text, f"{method} {redactor.url(request_path)}")
    bodies = [key for key in ("body", "json", "multipart") if key in node.value]
    if len(bodies) > 1:
        node.fail(f"give one of body, json or multipart, not {' and '.join(bodies)}")
    headers_node = node.node("headers")
    header_items: list[tuple[str, str]] = []
    if headers_node is not None:
        for key, header_value in headers_node.value.items():
            if not isinstance(key, str) or not key.strip() or any(c in key for c in ":\r\n "):
                headers_node.fail(f"expected a header name, got {_show(key)}", str(key))
            if not isinstance(header_value, str | int | float) or isinstance(header_value, bool):
                headers_node.fail(f"expected a header value, got {_show(header_value)}", key)
            if any(c in str(header_value) for c in "\r\n"):
                headers_node.fail("header values cannot contain line breaks", key)
            header_items.append((key, str(header_value)))
    body_text: str | None = None
    if "json" in node.value:
        try:
            body_text = json.dumps(node.value["json"], separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            node.fail(f"expected JSON-serialisable data: {exc}", "json")
        if not any(k.lower() == "content-type" for k, _ in header_items):
            header_items.append(("Content-Type", "application/json"))
    elif "body" in node.value:
        body_text = node.get("body", str)

    def compile_at(text: str, key: str) -> Any:
        try:
            return compile_template(text, sources, variables=flow, env=env)
        except ValueError as exc:
            raise PlanError(str(exc), source=node.source, path=node.child_path(key)) from None

    multipart = _multipart(node, compile_at, base_dir or Path.cwd())
    boundary = ""
    if multipart:
        boundary = "redline-" + hashlib.sha1(f"{name}{request_path}".encode()).hexdigest()[:24]
        if not any(k.lower() == "content-type" for k, _ in header_items):
            header_items.append(("Content-Type", f"multipart/form-data; boundary={boundary}"))

    return RequestSpec(
        name=name,
        method=method,
        url=(origin or target) + request_path,
        path=compile_at(request_path, "path" if "path" in node.value else "url"),
        headers=tuple((k, compile_at(v, f"headers.{k}")) for k, v in header_items),
        body=compile_at(body_text, "json" if "json" in node.value else "body")
        if body_text is not None
        else None,
        weight=node.get("weight", _positive_int, 1),
        extract=_extractions(node) if flow else (),
        checks=_flow_checks(node) if flow else (),
        tags=_tags(node),
        origin=origin,
        redirects=node.get("redirects", _non_negative_int, None),
        multipart=multipart,
        boundary=boundary,
    )


def _compression(root: _Node) -> CompressionSpec | None:
    """``compression: {accept: [gzip, br, zstd], request: gzip}``."""
    section = root.node("compression")
    if section is None:
        return None
    section.check_keys(("accept", "request"))
    accept = section.get("accept", _names, ())
    for index, name in enumerate(accept):
        problem = encoding_missing(name)
        if problem:
            section.fail(problem, f"accept[{index}]")
    request = section.get("request", _text, None)
    if request is not None:
        problem = encoding_missing(request)
        if problem:
            section.fail(problem, "request")
    if not accept and request is None:
        section.fail("expected accept: [gzip, br, zstd] and/or request: gzip")
    return CompressionSpec(accept=tuple(accept), request=request)


_WS_METRICS = (("ws.messages_sent", "counter"), ("ws.messages_received", "counter"))
"""A WebSocket run's message rates: every message sent, every message received."""


def _websocket(root: _Node, sources: Mapping[str, DataSource]) -> WebSocketSpec:
    """``websocket: {path, every, message, correlate, name, compression, headers}``."""
    section = root.node("websocket")
    assert section is not None
    section.check_keys(("path", "every", "message", "correlate", "name", "compression",
                        "headers"))  # fmt: skip
    if "scenarios" in root.value or "flows" in root.value:
        root.fail("a WebSocket plan holds connections of its own: remove scenarios", "websocket")
    if not isinstance(_load(root), ClosedLoad):
        root.fail("a WebSocket plan holds connections: give load.vus (connections), not rate",
                  "load")  # fmt: skip
    path = section.get("path", _text, "/")
    if not path.startswith("/"):
        section.fail(f'expected a path starting with "/", got {_show(path)}', "path")
    message_value = section.value.get("message")
    message = None
    if message_value is not None:
        text = (
            message_value
            if isinstance(message_value, str)
            else json.dumps(message_value, separators=(",", ":"))
        )
        try:
            message = compile_template(text, sources)
        except ValueError as exc:
            section.fail(str(exc), "message")
    every = section.get("every", _duration_positive, None)
    if every is not None and message is None:
        section.fail("messages every so often need a message: give message", "every")
    correlate = section.get("correlate", _text, "echo")
    if correlate != "echo" and message_value is not None and not isinstance(message_value, Mapping):
        section.fail(f"correlating by the field {correlate!r} needs a message that is a "
                     "mapping (JSON)", "correlate")  # fmt: skip
    if (
        isinstance(message_value, Mapping)
        and correlate != "echo"
        and correlate not in message_value
    ):
        section.fail(f"the message has no field {correlate!r} to match replies by", "correlate")
    headers = section.node("headers")
    return WebSocketSpec(
        path=path,
        every=every,
        message=message,
        correlate=correlate,
        name=section.get("name", _text, "message"),
        compression=section.get("compression", _boolean, False),
        headers=tuple((str(k), str(v)) for k, v in headers.value.items()) if headers else (),
    )


def _calls_grpc(entries: Sequence[tuple[str, Any]]) -> bool:
    return any(isinstance(v, Mapping) and "grpc" in v for _, v in entries)


def _grpc_schema(root: _Node, base_dir: Path) -> bytes | None:
    """The plan's ``grpc: {proto: file.proto, import_paths: [dir]}``, compiled."""
    section = root.node("grpc")
    if section is None:
        return None
    section.check_keys(("proto", "import_paths"))
    proto = base_dir / section.get("proto", _text)
    if not proto.is_file():
        section.fail(f"no such file {proto}", "proto")
    imports = [base_dir / p for p in section.get("import_paths", _names, ())]
    try:
        return compile_proto(proto, imports)
    except ValueError as exc:
        section.fail(str(exc), "proto")
    raise AssertionError("unreachable")  # pragma: no cover - fail raises


def _grpc_request(
    node: _Node,
    target: str,
    sources: Mapping[str, DataSource],
    env: Mapping[str, str] | None,
    schema: bytes | None,
) -> RequestSpec:
    """``{grpc: package.Service/Method, message: {...}, metadata: {...}, deadline: 1s}``."""
    if schema is None:
        node.fail("a gRPC call needs the plan's proto: add grpc: {proto: service.proto}", "grpc")
        raise AssertionError("unreachable")  # pragma: no cover
    for key in ("method", "path", "url", "body", "json", "multipart", "headers", "redirects"):
        if key in node.value:
            node.fail("a gRPC call sends its message: remove " + key, key)
    try:
        call = find_call(schema, node.get("grpc", _text))
    except ValueError as exc:
        node.fail(str(exc), "grpc")
        raise AssertionError("unreachable") from None  # pragma: no cover
    if "message" in node.value and "messages" in node.value:
        node.fail("give message or messages, not both")
    key = "messages" if "messages" in node.value else "message"
    message = node.value.get(key, {})
    if key == "messages":
        if not call.client_streaming:
            node.fail(f"{call.method} takes one message: give message", "messages")
        if not isinstance(message, list) or not all(isinstance(m, Mapping) for m in message):
            node.fail("expected a list of messages (mappings of their fields)", "messages")
    elif not isinstance(message, Mapping):
        node.fail("expected the message as a mapping of its fields (protobuf's JSON form)", key)
    try:
        body = compile_template(json.dumps(message, separators=(",", ":")), sources, env=env)
    except ValueError as exc:
        node.fail(str(exc), key)
    if body.static:
        try:
            encode_message(call, body.value)
        except ValueError as exc:
            node.fail(str(exc), key)
    headers = [("content-type", "application/grpc"), ("te", "trailers")]
    metadata = node.node("metadata")
    if metadata is not None:
        for key, value in metadata.value.items():
            if not isinstance(key, str) or not key or key.lower() != key or ":" in key:
                metadata.fail(f"expected a lower-case metadata key, got {_show(key)}", str(key))
            if not isinstance(value, str | int | float) or isinstance(value, bool):
                metadata.fail(f"expected a text value, got {_show(value)}", key)
            headers.append((key, str(value)))
    deadline = node.get("deadline", _duration_positive, None)
    if deadline is not None:
        headers.append(("grpc-timeout", f"{max(1, round(deadline * 1000))}m"))
    path = "/" + call.method
    return RequestSpec(
        name=node.get("name", _text, call.method),
        method="POST",
        url=target + path,
        path=compile_template(path, sources),
        headers=tuple((k, compile_template(v, sources, env=env)) for k, v in headers),
        body=body,
        weight=node.get("weight", _positive_int, 1),
        tags=_tags(node),
        grpc=call,
    )


def _by_session(
    requests: tuple[RequestSpec, ...], scenarios: Sequence[ScenarioSpec], redirects: int
) -> tuple[tuple[RequestSpec, ...], Sequence[ScenarioSpec]]:
    """Requests that follow redirects or go to other hosts are sent by sessions.

    The plain request path keeps one pool on the target and measures what it answers;
    such requests become one scenario, ``requests``, whose iteration is one of them in
    weighted turn (the same mix, the same endpoints).
    """
    if not any(r.origin or (r.redirects if r.redirects is not None else redirects)
               for r in requests):  # fmt: skip
        return requests, scenarios
    return (), (ScenarioSpec(name="requests", function="", steps=requests, pick_one=True),)


def _multipart(
    node: _Node, compile_at: Callable[[str, str], Any], base_dir: Path
) -> tuple[tuple[str, Any], ...]:
    """``multipart: {field: text, upload: {file: a.png, filename:, content_type:}}``.

    Text fields are templates; files are read now, relative to the plan.
    """
    section = node.node("multipart")
    if section is None:
        return ()
    if not section.value:
        section.fail("expected fields, like {name: value, upload: {file: photo.png}}")
    parts: list[tuple[str, Any]] = []
    for key, value in section.value.items():
        if not isinstance(key, str) or not key:
            section.fail(f"expected a field name, got {_show(key)}")
        if isinstance(value, Mapping):
            part = _Node(value, section.child_path(key), node.source)
            part.check_keys(("file", "filename", "content_type"))
            relative = part.get("file", _text)
            path = base_dir / relative
            try:
                content = path.read_bytes()
            except OSError as exc:
                part.fail(f"cannot read {relative!r}: {exc.strerror or exc}", "file")
            guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            parts.append((key, FilePart(
                filename=part.get("filename", _text, path.name), content=content,
                content_type=part.get("content_type", _text, guessed),
            )))  # fmt: skip
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            parts.append((key, compile_at(str(value), f"multipart.{key}")))
        else:
            section.fail(f"expected a text value or {{file: PATH}}, got {_show(value)}", key)
    return tuple(parts)


def _tags(node: _Node) -> tuple[tuple[str, str], ...]:
    """A request's ``tags: {kind: search}`` (names ``name`` and ``method`` are the system's)."""
    section = node.node("tags")
    if section is None:
        return ()
    pairs = []
    for key, value in section.value.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][\w.-]*", key):
            section.fail(f"expected a tag name (letters, digits, _ . -), got {_show(key)}")
        if key in ("name", "method", "status", "scenario"):
            section.fail(f"{key!r} is a system tag: it is set by redline", key)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            section.fail(f"expected a tag value (text or a number), got {_show(value)}", key)
        pairs.append((key, str(value)))
    return tuple(sorted(pairs))


_VARIABLE = re.compile(r"\$\{\s*vars\.([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def _check_variables(node: _Node, spec: RequestSpec, extracted: set[str]) -> None:
    """Every ``${vars.x}`` of a step must be extracted by an earlier step of its flow."""
    texts = [("path", spec.path.text)] + [(f"headers.{k}", v.text) for k, v in spec.headers]
    if spec.body is not None:
        texts.append(("body" if "body" in node.value else "json", spec.body.text))
    for key, text in texts:
        for name in _VARIABLE.findall(text):
            if name not in extracted:
                known = ", ".join(sorted(extracted)) or "none yet"
                node.fail(
                    f"${{vars.{name}}} is not extracted by an earlier step (extracted: {known})",
                    key,
                )


def _extractions(node: _Node) -> tuple[Extraction, ...]:
    """A flow step's ``extract``: ``{token: {json: $.token}, to: {header: Location}}``."""
    section = node.node("extract")
    if section is None:
        return ()
    out = []
    for name, how in section.value.items():
        entry = _Node(how, section.child_path(str(name)), node.source)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            section.fail(f"expected a variable name (letters, digits, _), got {_show(name)}")
        if not isinstance(how, Mapping) or len(how) != 1:
            entry.fail('expected one of {json: "$.path"}, {regex: "..."}, {header: Name}')
        kind, expression = next(iter(how.items()))
        if kind not in ("json", "regex", "header") or not isinstance(expression, str):
            entry.fail(f"expected json, regex or header with a text, got {_show(how)}")
        extraction = Extraction(str(name), kind, expression)
        if kind == "json" and extraction.json_steps() is None:
            entry.fail(
                f"expected a JSON path like $.items[0].id or $['a key'], got {_show(expression)}",
                kind,
            )
        if kind == "regex":
            try:
                re.compile(expression)
            except re.error as exc:
                entry.fail(f"not a regular expression: {exc}", kind)
        out.append(extraction)
    return tuple(out)


def _flow_checks(node: _Node) -> tuple[FlowCheck, ...]:
    """``check: {"status is 200": {status: 200}, "has items": {body_contains: items}}``."""
    section = node.node("check")
    if section is None:
        return ()
    out = []
    for name, how in section.value.items():
        entry = _Node(how, section.child_path(str(name)), node.source)
        if not isinstance(how, Mapping) or len(how) != 1:
            entry.fail("expected one of {status: 200 or [200, 201]}, {body_contains: text}")
        kind, expected = next(iter(how.items()))
        if kind == "status":
            codes = expected if isinstance(expected, list) else [expected]
            if not codes or not all(
                isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599 for c in codes
            ):
                entry.fail(f"expected status codes from 100 to 599, got {_show(expected)}", kind)
            out.append(FlowCheck(str(name), "status", tuple(codes)))
        elif kind == "body_contains" and isinstance(expected, str) and expected:
            out.append(FlowCheck(str(name), "body_contains", expected))
        else:
            entry.fail(f"expected status or body_contains, got {_show(how)}")
    return tuple(out)


def _flows(
    root: _Node,
    target: str,
    sources: Mapping[str, DataSource],
    redactor: Redactor,
    *,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> list[ScenarioSpec]:
    """``flows``: declarative journeys, each an ordered list of requests and think times."""
    flows: list[ScenarioSpec] = []
    names: set[str] = set()
    for path, value in root.items("flows"):
        node = _Node(value, path, root.source)
        node.check_keys(("name", "weight", "steps"))
        name = node.get("name", _text, f"flow {len(flows) + 1}")
        if name in names:
            node.fail(f"duplicate flow name {_show(name)}: names must be unique", "name")
        names.add(name)
        steps: list[RequestSpec | ThinkStep] = []
        extracted: set[str] = set()
        for step_path, step in node.items("steps"):
            step_node = _Node(step, step_path, root.source)
            if "think" in step_node.value:
                step_node.check_keys(("think",))
                steps.append(_think(step_node))
            else:
                spec = _request(
                    step_node, target, sources, redactor, flow=True, env=env, base_dir=base_dir
                )
                _check_variables(step_node, spec, extracted)
                extracted.update(e.name for e in spec.extract)
                steps.append(spec)
        if not any(isinstance(step, RequestSpec) for step in steps):
            node.fail("expected steps with at least one request", "steps")
        weight = node.get("weight", _positive_int, 1)
        flows.append(ScenarioSpec(name=name, function="", weight=weight, steps=tuple(steps)))
    return flows


def _think(node: _Node) -> ThinkStep:
    """``think``: a duration, or a uniform range ``{min, max}`` (in load or a flow step)."""
    think = node.value["think"]
    if isinstance(think, Mapping):
        think_node = _Node(think, node.child_path("think"), node.source)
        think_node.check_keys(("min", "max"))
        low = think_node.get("min", parse_duration)
        high = think_node.get("max", parse_duration)
        if high < low:
            think_node.fail("max must be at least min", "max")
        return ThinkStep(low, high)
    seconds = node.get("think", parse_duration)
    return ThinkStep(seconds, seconds)


def _load(root: _Node) -> OpenLoad | ClosedLoad:
    node = root.node("load")
    if node is None:
        root.fail('is required: expected e.g. {rate: "100/s"} or {vus: 10}', "load")
    node.check_keys(_LOAD_KEYS)
    model = node.get("model", str, None)
    is_open = bool({"rate", "start_rate", "arrivals"} & set(node.value))
    is_closed = bool({"vus", "start_vus", "think"} & set(node.value))
    if model is None:
        if is_open and is_closed:
            node.fail(
                "mixes open-model keys (rate) with closed-model keys (vus, think); pick one model"
            )
        stage_keys = {k for _, s in node.items("stages") if isinstance(s, Mapping) for k in s}
        model = "closed" if is_closed or "vus" in stage_keys else "open"
    if model not in ("open", "closed"):
        node.fail(f'expected "open" or "closed", got {_show(model)}', "model")
    unit_key = "rate" if model == "open" else "vus"
    stages = []
    for path, value in node.items("stages"):
        stage = _Node(value, path, root.source)
        stage.check_keys(("duration", unit_key))
        target = stage.get(unit_key, _stage_rate if model == "open" else _non_negative_int)
        stages.append(Stage(duration=stage.get("duration", parse_duration), target=float(target)))
    if model == "open":
        if "vus" in node.value or "think" in node.value or "start_vus" in node.value:
            node.fail("vus, start_vus and think belong to the closed model (model: open here)")
        rate = node.get("rate", parse_rate, None)
        if rate is None and not stages:
            node.fail('expected rate (like "500/s") or stages', "rate")
        if rate is not None and stages:
            node.fail("give rate (constant) or stages (ramping), not both", "stages")
        arrivals = node.get("arrivals", str, "constant")
        if arrivals not in ("constant", "poisson"):
            node.fail(f'expected "constant" or "poisson", got {_show(arrivals)}', "arrivals")
        return OpenLoad(
            rate=rate,
            stages=tuple(stages),
            start_rate=node.get("start_rate", _stage_rate, 0.0),
            arrivals=cast(Literal["constant", "poisson"], arrivals),
        )
    if "rate" in node.value or "arrivals" in node.value or "start_rate" in node.value:
        node.fail("rate, start_rate and arrivals belong to the open model (model: closed here)")
    vus = node.get("vus", _positive_int, None)
    if vus is None and not stages:
        node.fail("expected vus (like 50) or stages", "vus")
    if vus is not None and stages:
        node.fail("give vus (constant) or stages (ramping), not both", "stages")
    think = _think(node) if "think" in node.value else ThinkStep(0.0, 0.0)
    think_min, think_max = think.minimum, think.maximum
    return ClosedLoad(
        vus=vus,
        stages=tuple(stages),
        start_vus=node.get("start_vus", _non_negative_int, 0),
        think_min=think_min,
        think_max=think_max,
    )


def _stage_rate(value: object) -> float:
    """A stage's rate may be 0 (ramp down to nothing); otherwise like parse_rate."""
    if value == 0 or value == "0" or (isinstance(value, str) and value.strip() in ("0/s", "0/m")):
        return 0.0
    return parse_rate(value)
