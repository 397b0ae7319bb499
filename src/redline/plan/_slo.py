"""SLO sections: a plan's ``slo:`` list, a separate SLO file, and OpenSLO v1 documents."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from redline.core import PHASES, SCOPES, Objective, PlanError, parse_duration, parse_objective

from ._node import _boolean, _Node, _show, _text
from ._spec import Plan, RequestSpec

__all__ = ["QuerySli", "check_slos", "load_slo_sources", "load_slos", "slos_from_data"]

_WINDOW = "{{.window}}"
_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?$")


@dataclasses.dataclass(frozen=True)
class QuerySli:
    """An OpenSLO objective whose indicator is the service's own Prometheus queries.

    ``redline slo rules`` turns it into burn-rate rules as it does redline's own
    objectives; a run cannot be judged against it (a run has redline's measurements,
    not the service's series).

    Attributes:
        name: the objective's name.
        text: what it says, for rule annotations.
        target: the share of good events asked for (0.999).
        kind: ``good``, ``bad``, ``raw-success`` or ``raw-failure``.
        counted: the good or bad events' query (or the raw ratio's).
        total: all events' query (None for a raw ratio).
        counter: the queries name counters (a bare selector is taken as a rate over the
            window; a query with Sloth's ``{{.window}}`` placeholder gets it filled in).
    """

    name: str
    text: str
    target: float
    kind: str
    counted: str
    total: str | None
    counter: bool = True

    def _over(self, query: str, window: str) -> str:
        if _WINDOW in query:
            return query.replace(_WINDOW, window)
        return f"sum(rate({query}[{window}]))"  # a bare counter selector (checked on load)

    def error_ratio(self, window: str) -> str:
        """The PromQL of the bad share of events over ``window`` (``5m``)."""
        counted = self._over(self.counted, window)
        if self.kind == "raw-failure":
            return f"({counted})"
        if self.kind == "raw-success":
            return f"1 - ({counted})"
        total = self._over(self.total or "", window)
        if self.kind == "bad":
            return f"({counted}) / ({total})"
        return f"1 - (({counted}) / ({total}))"


_KEYS = (
    "name",
    "objective",
    "endpoint",
    "group",
    "scenario",
    "check",
    "metric",
    "abort",
    "abort_after",
    "burn_rate",
    "prometheus",
)
_PROMETHEUS_KEYS = ("requests", "errors", "latency", "labels")
_OPENSLO_OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_UNITLESS = ("rps", "throughput", "error_rate", "checks")
_OPENSLO_SPEC_KEYS = (
    "description",
    "service",
    "indicator",
    "timeWindow",
    "budgetingMethod",
    "objectives",
)


def slos_from_data(data: object, *, source: str, path: str = "slo") -> tuple[Objective, ...]:
    """Objectives from a list of SLO entries (a plan's ``slo:`` section).

    Raises:
        PlanError: naming ``source``, the entry and what was expected.
    """
    if data is None:
        return ()
    if not isinstance(data, list):
        raise PlanError(
            f"expected a list of objectives, got {_show(data)}", source=source, path=path
        )
    out = []
    for index, item in enumerate(data):
        at = f"{path}[{index}]"
        if isinstance(item, str):
            out.append(parse_objective(item, source=source, path=at))
            continue
        node = _Node(item, at, source)
        node.check_keys(_KEYS)
        scopes = [k for k in (*SCOPES,) if k in node.value]
        if len(scopes) > 1:
            node.fail(
                "give one of endpoint, group, scenario, check or metric, not "
                + " and ".join(scopes)
            )
        scope = scopes[0] if scopes else "total"
        burn_rate = node.get("burn_rate", _burn_rate, 2.0)
        objective = parse_objective(
            node.value.get("objective"),
            name=node.get("name", _text, ""),
            scope=scope,
            scope_name=node.get(scope, _text) if scopes else "",
            abort=node.get("abort", _boolean, False),
            abort_after=node.get("abort_after", parse_duration, 0.0),
            burn_rate=burn_rate,
            source=source,
            path=at,
        )
        if objective.metric == "check_rate" and scope not in ("total", "check"):
            node.fail("a checks objective is scoped with check: NAME (or not at all)", scope)
        if objective.phase and scope not in ("total", "endpoint"):
            node.fail(
                f"a {objective.phase} phase objective is scoped with endpoint: NAME (or not at "
                f"all): a {scope} is not one HTTP exchange",
                scope,
            )
        if scope == "check" and objective.metric != "check_rate":
            node.fail(f"check: scopes only checks objectives, not {objective.metric}", "check")
        out.append(objective)
    return tuple(out)


def load_slos(path: str | Path) -> tuple[Objective, ...]:
    """Objectives from a file: an ``slo:`` list (or a bare list), or OpenSLO v1 ``SLO``s.

    Raises:
        PlanError: the file cannot be read or holds no objective redline can evaluate.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read SLO file: {exc.strerror}", source=source) from None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise PlanError(f"not valid YAML: {exc}", source=source, path=where) from None
    if not documents:
        raise PlanError("the SLO file is empty", source=source)
    if all(isinstance(d, Mapping) and "apiVersion" in d for d in documents):
        out: list[Objective] = []
        for index, document in enumerate(documents):
            for item in _openslo(document, source=source, path=f"document[{index}]"):
                if isinstance(item, QuerySli):
                    raise PlanError(
                        f"objective {item.name!r} is read from Prometheus queries: "
                        "redline slo rules turns it into alerts, but a run is judged on "
                        'redline\'s own measurements (metricSource type "redline")',
                        source=source,
                        path=f"document[{index}]",
                    )
                out.append(item)
        return tuple(out)
    if len(documents) > 1:
        raise PlanError("expected one document with an slo: list", source=source)
    document = documents[0]
    if isinstance(document, Mapping):
        _Node(document, "", source).check_keys(("slo",))
        return slos_from_data(document.get("slo"), source=source)
    return slos_from_data(document, source=source, path="")


def load_slo_sources(
    path: str | Path,
) -> tuple[tuple[Objective, dict[str, Any]] | QuerySli, ...]:
    """Objectives of an ``slo:`` file, each with its ``prometheus:`` settings (or ``{}``).

    ``prometheus:`` names the service's own metrics for ``redline slo rules``:
    ``requests`` (a counter of all requests), ``errors`` (a counter of failed ones),
    ``latency`` (a histogram in seconds) and ``labels`` (matchers for every selector).
    OpenSLO documents may also hold objectives whose indicators are Prometheus queries:
    those come back as :class:`QuerySli`.

    Raises:
        PlanError: the file cannot be read, or a ``prometheus:`` entry is malformed.
    """
    source = str(path)
    queries = _openslo_file(path)
    if queries is not None:
        return tuple(q if isinstance(q, QuerySli) else (q, {}) for q in queries)
    objectives = load_slos(path)
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    entries = document.get("slo") if isinstance(document, Mapping) else document
    if not isinstance(entries, list):  # OpenSLO documents: no prometheus settings here
        return tuple((o, {}) for o in objectives)
    out = []
    for index, (objective, entry) in enumerate(zip(objectives, entries, strict=True)):
        settings: dict[str, Any] = {}
        if isinstance(entry, Mapping) and entry.get("prometheus") is not None:
            node = _Node(entry["prometheus"], f"slo[{index}].prometheus", source)
            if not isinstance(node.value, Mapping):
                node.fail(f"expected a mapping of {', '.join(_PROMETHEUS_KEYS)}")
            node.check_keys(_PROMETHEUS_KEYS)
            for key in ("requests", "errors", "latency"):
                if key in node.value:
                    settings[key] = node.get(key, _text)
            labels = node.value.get("labels")
            if labels is not None:
                if not isinstance(labels, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, str | int) for k, v in labels.items()
                ):
                    node.fail("expected label names mapped to values", "labels")
                settings["labels"] = {k: str(v) for k, v in labels.items()}
        out.append((objective, settings))
    return tuple(out)


def _openslo_file(path: str | Path) -> list[Objective | QuerySli] | None:
    """Every objective of an OpenSLO file, queries and all; None for another kind of file."""
    source = str(path)
    try:
        documents = [
            d for d in yaml.safe_load_all(Path(path).read_text(encoding="utf-8")) if d is not None
        ]
    except (OSError, yaml.YAMLError):
        return None  # load_slos says what is wrong
    if not documents or not all(isinstance(d, Mapping) and "apiVersion" in d for d in documents):
        return None
    out: list[Objective | QuerySli] = []
    for index, document in enumerate(documents):
        out.extend(_openslo(document, source=source, path=f"document[{index}]"))
    return out


def check_slos(plan: Plan, objectives: Sequence[Objective]) -> tuple[Objective, ...]:
    """Reject objectives the plan can never feed, before any load is sent.

    YAML plans name every endpoint up front, so unknown endpoints are caught; Python
    scenarios name theirs while running, so only scenario names are checked for them.

    Returns:
        the objectives, each tag filter (``p99{kind:search}``) resolved to the endpoints
        of the requests and flow steps whose tags match.

    Raises:
        PlanError: naming the objective's file and entry.
    """
    declared = not plan.module
    requests = plan.all_requests()
    endpoints = {r.name for r in requests}
    has_checks = any(r.checks or r.extract for r in requests)
    scenarios = {s.name for p in (plan, *(w.plan for w in plan.workloads)) for s in p.scenarios}
    resolved: list[Objective] = []
    for objective in objectives:
        resolved.append(objective)

        def fail(message: str, objective: Objective = objective) -> PlanError:
            return PlanError(message, source=objective.source or plan.source, path=objective.path)

        if objective.scope == "scenario" and objective.scope_name not in scenarios:
            known = ", ".join(sorted(scenarios)) or "none: the plan has no scenarios or flows"
            raise fail(f"no scenario {objective.scope_name!r} in the plan (scenarios: {known})")
        if not declared:
            continue
        if objective.scope == "endpoint" and objective.scope_name not in endpoints:
            raise fail(
                f"no endpoint {objective.scope_name!r} in the plan "
                f"(endpoints: {', '.join(sorted(endpoints))})"
            )
        if objective.scope == "group":
            raise fail("a YAML plan has no groups (Python scenarios make them); use endpoint:")
        if objective.metric == "check_rate" and not has_checks:
            raise fail(
                "the plan has no checks (a flow step's check: or extract:, or Python "
                "scenarios' s.check): it can never be judged"
            )
        if objective.scope == "tags":
            resolved[-1] = _with_endpoints(objective, requests, fail)
    metrics = dict(plan.metrics)
    for objective in resolved:
        if objective.scope == "metric":
            _check_metric(objective, metrics, plan)
        if objective.scope == "tags" and not declared:
            raise PlanError(
                "tag filters select a YAML plan's requests and flow steps; Python scenarios "
                "name theirs while running",
                source=objective.source or plan.source,
                path=objective.path,
            )
    return tuple(resolved)


_STATISTICS = {
    "counter": ("count", "rate"),
    "gauge": ("value", "min", "max"),
    "rate": ("rate",),
    "trend": ("percentile", "mean", "min", "max", "count"),
}


def _check_metric(objective: Objective, metrics: dict[str, str], plan: Plan) -> None:
    """A custom metric's objective names a metric of the plan, by a statistic of its kind."""

    def fail(message: str) -> PlanError:
        return PlanError(message, source=objective.source or plan.source, path=objective.path)

    kind = metrics.get(objective.scope_name)
    if kind is None:
        known = ", ".join(sorted(metrics)) or "none: a Python plan makes them"
        phases = ""
        if objective.text.startswith(objective.scope_name + "."):
            phases = f" (or a request phase: {', '.join(PHASES)})"
        raise fail(
            f"no custom metric {objective.scope_name!r} in the plan (metrics: {known}){phases}; "
            'make one at the top of the plan module, e.g. Counter("orders")'
        )
    allowed = _STATISTICS[kind]
    if objective.metric not in allowed:
        shown = ", ".join("p95" if a == "percentile" else "avg" if a == "mean" else a
                          for a in allowed)  # fmt: skip
        raise fail(f"{objective.scope_name!r} is a {kind}: judge it by {shown}")


def _with_endpoints(
    objective: Objective, requests: Sequence[RequestSpec], fail: Callable[[str], PlanError]
) -> Objective:
    """``objective`` with the endpoints its tag filter selects.

    ``status`` is a system tag of each response, not of a request: the others select the
    endpoints, and the run keeps their latency per status code to judge it.
    """
    for key, value in objective.tags:
        if key == "status" and not (value.isdigit() and 100 <= int(value) <= 599):
            raise fail(f"status is an HTTP status code like 200, got {value!r}")
    names = [
        r.name
        for r in requests
        if all(r.tag_values().get(key) == value for key, value in objective.tags if key != "status")
    ]
    if not names:
        seen = sorted({f"{k}:{v}" for r in requests for k, v in r.tags})
        raise fail(
            f"no request has the tags {{{objective.scope_name}}} "
            f"(tags in the plan: {', '.join(seen) or 'none'}; and name, method, scenario, status)"
        )
    return dataclasses.replace(objective, endpoints=tuple(dict.fromkeys(names)))


def _burn_rate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 1:
        raise ValueError(f"expected a burn rate above 1 (e.g. 2), got {_show(value)}")
    return float(value)


# -- OpenSLO v1 -----------------------------------------------------------------------------
def _openslo(document: Mapping[str, Any], *, source: str, path: str) -> list[Objective | QuerySli]:
    root = _Node(document, path, source)
    root.check_keys(("apiVersion", "kind", "metadata", "spec"))
    if document.get("apiVersion") != "openslo/v1":
        root.fail(f"expected apiVersion openslo/v1, got {_show(document.get('apiVersion'))}")
    if document.get("kind") != "SLO":
        root.fail(f"only kind SLO is supported, got {_show(document.get('kind'))}", "kind")
    metadata = root.node("metadata")
    name = metadata.get("name", _text, "") if metadata else ""
    spec = root.node("spec")
    if spec is None:
        root.fail("is required", "spec")
    if "indicatorRef" in spec.value:
        spec.fail("is not supported: put the indicator inline under spec.indicator", "indicatorRef")
    for key in ("alertPolicies", "timeSliceTarget", "timeSliceWindow"):
        if key in spec.value:
            spec.fail("is not supported by redline (a run is judged as one window)", key)
    spec.check_keys(_OPENSLO_SPEC_KEYS)
    method = spec.get("budgetingMethod", _text, "Occurrences")
    if method != "Occurrences":
        spec.fail(f"only Occurrences is supported, got {method!r}", "budgetingMethod")
    indicator = spec.node("indicator")
    if indicator is None:
        spec.fail("is required", "indicator")
    indicator.check_keys(("metadata", "spec"))
    sli = indicator.node("spec")
    if sli is None:
        indicator.fail("is required", "spec")
    sli.check_keys(("ratioMetric", "thresholdMetric"))
    out: list[Objective | QuerySli] = []
    for index, raw in enumerate(spec.value.get("objectives") or []):
        item = _Node(raw, spec.child_path("objectives") + f"[{index}]", source)
        item.check_keys(("displayName", "op", "value", "target", "targetPercent"))
        label = item.get("displayName", _text, "") or name
        out.append(_openslo_objective(sli, item, label, source))
    if not out:
        spec.fail("needs at least one entry", "objectives")
    return out


def _openslo_objective(sli: _Node, item: _Node, name: str, source: str) -> Objective | QuerySli:
    ratio_node = sli.node("ratioMetric")
    if ratio_node is not None and _queried(ratio_node):
        return _query_sli(ratio_node, item, name)
    if "thresholdMetric" in sli.value:
        metric = _metric_source(sli, "thresholdMetric")
        op = _OPENSLO_OPS.get(str(item.value.get("op")))
        if op is None:
            item.fail(f"expected one of lt, lte, gt, gte, got {_show(item.value.get('op'))}", "op")
        value = item.value.get("value")
        # OpenSLO values are bare numbers; a latency's are taken as milliseconds.
        number = isinstance(value, int | float) and not isinstance(value, bool)
        shown = f"{value}ms" if number and metric.value.get("metric") not in _UNITLESS else value
        text = f"{metric.get('metric', _text)} {op} {shown}"
        return _scoped_objective(text, metric, name, source, item.path)
    ratio = sli.node("ratioMetric")
    if ratio is None:
        sli.fail("needs ratioMetric or thresholdMetric")
    ratio.check_keys(("counter", "good", "bad", "total"))
    target = _openslo_target(item)
    kind = "good" if "good" in ratio.value else "bad"
    counted = _metric_source(ratio, kind)
    what = counted.get("metric", _text)
    total = _metric_source(ratio, "total")
    if total.get("metric", _text) != "requests":
        total.fail('redline counts requests: expected metric: "requests"', "metric")
    percent = f"{target * 100:g}%"
    if (kind == "bad" and what == "errors") or (kind == "good" and what == "successful_requests"):
        text = f"error_rate <= {100 - target * 100:g}%"
    elif kind == "good" and what == "requests_within":
        text = f"{percent} of requests under {counted.get('threshold', _text)}"
    else:
        counted.fail(
            f"unknown {kind} metric {what!r}: redline maps good: successful_requests or "
            "requests_within (with threshold), bad: errors"
        )
    return _scoped_objective(text, counted, name, source, item.path)


def _openslo_target(item: _Node) -> float:
    if "target" in item.value:
        target = float(item.get("target", float))
    elif "targetPercent" in item.value:
        target = float(item.get("targetPercent", float)) / 100
    else:
        item.fail("needs target (e.g. 0.99) or targetPercent")
    if not 0 < target < 1:
        item.fail(f"a target must be between 0 and 1, got {target}", "target")
    return target


def _queried(ratio: _Node) -> bool:
    """Whether a ratioMetric's sources are Prometheus queries (not redline's own)."""
    for key in ("good", "bad", "total", "raw"):
        holder = ratio.value.get(key) if isinstance(ratio.value, Mapping) else None
        source = holder.get("metricSource") if isinstance(holder, Mapping) else None
        if isinstance(source, Mapping) and str(source.get("type", "")).lower() == "prometheus":
            return True
    return False


def _query_of(ratio: _Node, key: str) -> str:
    source, kind = _source_of(ratio, key, "")
    if kind.lower() != "prometheus":
        source.fail(f"every source of one ratio must be Prometheus, got {kind!r}", "type")
    spec = source.node("spec")
    if spec is None:
        source.fail("is required (with query: ...)", "spec")
    spec.check_keys(("query",))
    query = spec.get("query", _text).strip()
    if _WINDOW not in query and not _SELECTOR.match(query):
        spec.fail(
            f"expected Sloth's {_WINDOW} placeholder where the window goes "
            "(sum(rate(http_requests_total[{{.window}}]))) or a bare counter selector",
            "query",
        )
    return query


def _query_sli(ratio: _Node, item: _Node, name: str) -> QuerySli:
    ratio.check_keys(("counter", "good", "bad", "total", "raw", "rawType"))
    target = _openslo_target(item)
    counter = ratio.get("counter", _boolean, True)
    if "raw" in ratio.value:
        raw_type = ratio.get("rawType", _text, "failure")
        if raw_type not in ("success", "failure"):
            ratio.fail(f"expected success or failure, got {raw_type!r}", "rawType")
        counted = _query_of(ratio, "raw")
        return QuerySli(name, f"raw {raw_type} ratio >= {target:g}", target,
                        f"raw-{raw_type}", counted, None, counter)  # fmt: skip
    if ("good" in ratio.value) == ("bad" in ratio.value):
        ratio.fail("needs good or bad (one of them) with total, or raw")
    kind = "good" if "good" in ratio.value else "bad"
    counted = _query_of(ratio, kind)
    total = _query_of(ratio, "total")
    return QuerySli(name, f"{kind}/total events, target {target:g}", target, kind, counted, total,
                    counter)  # fmt: skip


def _source_of(node: _Node, key: str, default: str) -> tuple[_Node, str]:
    """``node.key.metricSource`` (checked) and its ``type``."""
    holder = node.node(key)
    if holder is None:
        node.fail("is required", key)
    holder.check_keys(("metricSource",))
    metric_source = holder.node("metricSource")
    if metric_source is None:
        holder.fail("is required", "metricSource")
    metric_source.check_keys(("type", "metricSourceRef", "spec"))
    return metric_source, metric_source.get("type", _text, default)


def _metric_source(node: _Node, key: str) -> _Node:
    metric_source, kind = _source_of(node, key, "redline")
    if kind.lower() != "redline":
        metric_source.fail(
            f'redline judges its own measurements: expected type "redline", got {kind!r}', "type"
        )
    spec = metric_source.node("spec")
    if spec is None:
        metric_source.fail("is required (with metric: ...)", "spec")
    spec.check_keys(("metric", "threshold", "endpoint", "group", "scenario"))
    return spec


def _scoped_objective(text: str, spec: _Node, name: str, source: str, path: str) -> Objective:
    scope = next((k for k in ("endpoint", "group", "scenario") if k in spec.value), "total")
    return parse_objective(
        text,
        name=name,
        scope=scope,
        scope_name=spec.get(scope, _text) if scope != "total" else "",
        source=source,
        path=path,
    )
