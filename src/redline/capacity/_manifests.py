"""Autoscaling policies read from the files teams already have.

- ``autoscaling/v2`` ``HorizontalPodAutoscaler`` (``Resource`` cpu ``Utilization`` or
  ``AverageValue``, ``Pods``, ``External`` and ``Object`` metrics, ``behavior``);
- KEDA's ``keda.sh/v1alpha1`` ``ScaledObject`` with one trigger (``rabbitmq`` and other
  queue scalers: ``QueueLength`` is the backlog, ``MessageRate`` the arrival rate;
  ``prometheus``: its query's value, taken as the arrival rate);
- redline's own ``redline.dev/v1`` ``StepScaling`` and ``PredictiveScaling``.

Every mistake names the file and the path inside it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from redline.core import PlanError

from ._hpa import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    Hpa,
    MetricSpec,
    ScalingPolicy,
    ScalingRules,
)
from ._policies import HpaPolicy, KedaPolicy, Policy, PredictivePolicy, Step, StepPolicy

__all__ = ["hpa_of_policy", "load_policies", "parse_quantity_milli", "policy_from_manifest"]

_SUFFIXES = {
    "m": Decimal("0.001"), "": Decimal(1), "k": Decimal(10**3), "M": Decimal(10**6),
    "G": Decimal(10**9), "T": Decimal(10**12), "Ki": Decimal(2**10), "Mi": Decimal(2**20),
    "Gi": Decimal(2**30), "Ti": Decimal(2**40),
}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?\d+(?:\.\d+)?|[+-]?\.\d+)([a-zA-Z]*)$")


def parse_quantity_milli(value: object) -> int:
    """A Kubernetes quantity (``100``, ``250m``, ``1.5``, ``2k``, ``1Gi``) in milli-units.

    Raises:
        ValueError: not a quantity.
    """
    text = str(value).strip()
    found = _QUANTITY.match(text)
    if not found or found.group(2) not in _SUFFIXES:
        raise ValueError(f"expected a Kubernetes quantity such as 100, 250m or 1.5, got {value!r}")
    try:
        number = Decimal(found.group(1)) * _SUFFIXES[found.group(2)] * 1000
    except InvalidOperation:
        raise ValueError(f"expected a Kubernetes quantity, got {value!r}") from None
    return int(number.to_integral_value(rounding="ROUND_CEILING"))


class _Node:
    """A mapping in a manifest, with its path, for errors that say where."""

    def __init__(self, data: object, source: str, path: str) -> None:
        if not isinstance(data, Mapping):
            raise PlanError(
                f"expected a mapping, got {type(data).__name__}", source=source, path=path
            )
        self.data = data
        self.source = source
        self.path = path

    def fail(self, message: str, key: str | None = None) -> PlanError:
        where = f"{self.path}.{key}" if key else self.path
        return PlanError(message, source=self.source, path=where)

    def node(self, key: str) -> _Node:
        if key not in self.data:
            raise self.fail(f"missing {key!r}")
        return _Node(self.data[key], self.source, f"{self.path}.{key}")

    def optional(self, key: str) -> _Node | None:
        return None if self.data.get(key) is None else self.node(key)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 0) -> int:
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(f"missing {key!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"expected a whole number of at least {minimum}, got {value!r}", key)
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.data.get(key, default)
        if value is None:
            raise self.fail(f"missing {key!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise self.fail(f"expected a number, got {value!r}", key) from None
        if out < 0:
            raise self.fail(f"expected a number of at least 0, got {value!r}", key)
        return out

    def quantity(self, key: str) -> int:
        if key not in self.data:
            raise self.fail(f"missing {key!r}")
        try:
            return parse_quantity_milli(self.data[key])
        except ValueError as exc:
            raise self.fail(str(exc), key) from None

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value not in options:
            raise self.fail(f"expected one of {', '.join(options)}, got {value!r}", key)
        return str(value)

    def items(self, key: str) -> list[_Node]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise self.fail("expected a list", key)
        return [_Node(v, self.source, f"{self.path}.{key}[{i}]") for i, v in enumerate(value)]


def yaml_documents(path: str | Path, what: str) -> list[Any]:
    """The documents of a YAML file (``---`` between them), the empty ones left out.

    Raises:
        PlanError: the file cannot be read (``cannot read the <what>``) or is not YAML
            (with the line).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read the {what}: {exc.strerror}", source=source) from None
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else ""
        raise PlanError("not valid YAML", source=source, path=where) from None


def load_policies(path: str | Path, *, capacity_rps: float, startup_s: float) -> list[Policy]:
    """Every policy in a YAML file (one document each; ``---`` between them).

    Raises:
        PlanError: the file cannot be read, or a manifest is not a policy redline models.
    """
    source = str(path)
    documents = yaml_documents(path, "policy")
    if not documents:
        raise PlanError("no manifest in the file", source=source)
    return [
        policy_from_manifest(d, source=source, path=f"$[{i}]" if len(documents) > 1 else "$",
                             capacity_rps=capacity_rps, startup_s=startup_s)
        for i, d in enumerate(documents)
    ]  # fmt: skip


def policy_from_manifest(
    data: object, *, source: str, path: str = "$", capacity_rps: float, startup_s: float
) -> Policy:
    """One policy from one manifest (see the module's documentation)."""
    root = _Node(data, source, path)
    kind = root.data.get("kind")
    name = str((root.data.get("metadata") or {}).get("name") or kind or "policy")
    spec = root.node("spec")
    if kind == "HorizontalPodAutoscaler":
        version = root.data.get("apiVersion")
        if version != "autoscaling/v2":
            raise root.fail(f"expected apiVersion autoscaling/v2, got {version!r}", "apiVersion")
        return HpaPolicy(hpa_from_spec(spec, name))
    if kind == "ScaledObject":
        return _keda(spec, name)
    if kind == "StepScaling":
        return _step(spec, name, capacity_rps)
    if kind == "PredictiveScaling":
        return _predictive(spec, name, capacity_rps, startup_s)
    raise root.fail(
        "expected kind HorizontalPodAutoscaler (autoscaling/v2), ScaledObject (KEDA), "
        f"StepScaling or PredictiveScaling, got {kind!r}",
        "kind",
    )


def hpa_from_spec(spec: _Node, name: str) -> Hpa:
    """``spec`` of an autoscaling/v2 HorizontalPodAutoscaler."""
    minimum = spec.integer("minReplicas", 1)
    maximum = spec.integer("maxReplicas", minimum=1)
    if minimum > maximum:
        raise spec.fail(f"minReplicas {minimum} is above maxReplicas {maximum}", "minReplicas")
    metrics = tuple(_metric(m) for m in spec.items("metrics")) or (
        MetricSpec("Resource", "cpu", "Utilization", 80),  # the API's default
    )
    behavior_node = spec.optional("behavior")
    behavior = None
    if behavior_node is not None:
        behavior = Behavior(
            _rules(behavior_node.optional("scaleUp"), DEFAULT_SCALE_UP),
            _rules(behavior_node.optional("scaleDown"), DEFAULT_SCALE_DOWN),
        )
    return Hpa(name, minimum, maximum, metrics, behavior)


def _metric(node: _Node) -> MetricSpec:
    kind = node.choice("type", ("Resource", "Pods", "External", "Object"))
    body = node.node({"Resource": "resource", "Pods": "pods", "External": "external",
                      "Object": "object"}[kind])  # fmt: skip
    if kind == "Resource":
        name = body.choice("name", ("cpu", "memory"))
        if name == "memory":
            raise body.fail("memory targets are not modelled (CPU and request rates are)", "name")
    else:
        metric = body.node("metric")
        if not isinstance(metric.data.get("name"), str):
            raise metric.fail("expected the metric's name", "name")
        name = metric.data["name"]
    target = body.node("target")
    target_type = target.choice("type", ("Utilization", "AverageValue", "Value"))
    if target_type == "Utilization":
        if kind != "Resource":
            raise target.fail("Utilization is a target of Resource metrics only", "type")
        value = target.integer("averageUtilization", minimum=1)
    elif target_type == "AverageValue":
        value = target.quantity("averageValue")
    else:
        if kind in ("Resource", "Pods"):
            raise target.fail(f"a {kind} metric takes Utilization or AverageValue", "type")
        value = target.quantity("value")
    if value <= 0:
        raise target.fail("the target must be above 0")
    return MetricSpec(kind, name, target_type, value)  # type: ignore[arg-type]


def _rules(node: _Node | None, default: ScalingRules) -> ScalingRules:
    """GenerateHPAScale{Up,Down}Rules: what is not given takes the default."""
    if node is None:
        return default
    window = node.integer("stabilizationWindowSeconds", default.stabilization_window_s)
    if window > 3600:
        raise node.fail("at most 3600 seconds", "stabilizationWindowSeconds")
    select = node.choice("selectPolicy", ("Max", "Min", "Disabled"), default.select_policy)
    policies = tuple(
        ScalingPolicy(
            p.choice("type", ("Pods", "Percent")),  # type: ignore[arg-type]
            p.integer("value", minimum=1),
            p.integer("periodSeconds", minimum=1),
        )
        for p in node.items("policies")
    )
    for i, p in enumerate(policies):
        if p.period_s > 1800:
            raise node.fail("periodSeconds is at most 1800", f"policies[{i}].periodSeconds")
    return ScalingRules(window, policies or default.policies, select)  # type: ignore[arg-type]


def _keda(spec: _Node, name: str) -> KedaPolicy:
    triggers = spec.items("triggers")
    if len(triggers) != 1:
        raise spec.fail(f"expected one trigger, got {len(triggers)}", "triggers")
    trigger = triggers[0]
    kind = trigger.data.get("type")
    metadata = trigger.node("metadata")
    if kind == "prometheus":
        metric = "rate"
        value_key, activation_key = "threshold", "activationThreshold"
    else:
        mode = metadata.choice("mode", ("QueueLength", "MessageRate"), "QueueLength")
        metric = "queue" if mode == "QueueLength" else "rate"
        value_key, activation_key = "value", "activationValue"
    target = metadata.number(value_key)
    if target <= 0:
        raise metadata.fail("must be above 0", value_key)
    minimum = spec.integer("minReplicaCount", 0)
    maximum = spec.integer("maxReplicaCount", 100, minimum=1)
    if minimum > maximum:
        raise spec.fail(f"minReplicaCount {minimum} is above maxReplicaCount {maximum}")
    advanced = spec.optional("advanced")
    hpa_config = advanced.optional("horizontalPodAutoscalerConfig") if advanced else None
    behavior_node = hpa_config.optional("behavior") if hpa_config else None
    behavior = None
    if behavior_node is not None:
        behavior = Behavior(
            _rules(behavior_node.optional("scaleUp"), DEFAULT_SCALE_UP),
            _rules(behavior_node.optional("scaleDown"), DEFAULT_SCALE_DOWN),
        )
    hpa = Hpa(
        name,
        max(1, minimum),
        maximum,
        (MetricSpec("External", metric, "AverageValue", int(target * 1000)),),
        behavior,
    )
    return KedaPolicy(
        metric,  # type: ignore[arg-type]
        target,
        activation=metadata.number(activation_key, 0.0),
        polling_s=spec.number("pollingInterval", 30.0),
        cooldown_s=spec.number("cooldownPeriod", 300.0),
        min_replicas=minimum,
        max_replicas=maximum,
        name=name,
        hpa=hpa,
    )


def _step(spec: _Node, name: str, capacity_rps: float) -> StepPolicy:
    steps = []
    for node in spec.items("steps"):
        lower = node.data.get("above", -float("inf"))
        upper = node.data.get("below", float("inf"))
        change = node.data.get("change")
        percent = isinstance(change, str) and change.strip().endswith("%")
        try:
            amount = float(str(change).strip().rstrip("%"))
        except ValueError:
            raise node.fail(
                f"expected a change such as +2, -1 or +50%, got {change!r}", "change"
            ) from None
        steps.append(Step(amount, float(lower), float(upper), percent))
    if not steps:
        raise spec.fail("expected at least one step", "steps")
    minimum = spec.integer("minReplicas", 1)
    maximum = spec.integer("maxReplicas", minimum=1)
    if minimum > maximum:
        raise spec.fail(f"minReplicas {minimum} is above maxReplicas {maximum}", "minReplicas")
    return StepPolicy(
        tuple(steps),
        capacity_rps,
        metric=spec.choice("metric", ("cpu", "load"), "cpu"),  # type: ignore[arg-type]
        cooldown_s=spec.number("cooldownSeconds", 60.0),
        evaluation_s=spec.number("evaluationSeconds", 60.0),
        min_replicas=minimum,
        max_replicas=maximum,
        name=name,
    )


def _predictive(spec: _Node, name: str, capacity_rps: float, startup_s: float) -> PredictivePolicy:
    utilisation = spec.number("targetUtilization", 70.0)
    if not 0 < utilisation <= 100:
        raise spec.fail("expected a percentage above 0 and at most 100", "targetUtilization")
    minimum = spec.integer("minReplicas", 1)
    maximum = spec.integer("maxReplicas", minimum=1)
    if minimum > maximum:
        raise spec.fail(f"minReplicas {minimum} is above maxReplicas {maximum}", "minReplicas")
    return PredictivePolicy(
        target_rps=capacity_rps * utilisation / 100,
        season_s=spec.number("seasonSeconds", 86400.0),
        lead_s=spec.number("leadSeconds", startup_s * 2),
        spread_s=spec.number("spreadSeconds", 300.0),
        scale_down_window_s=spec.number("scaleDownWindowSeconds", 300.0),
        min_replicas=minimum,
        max_replicas=maximum,
        name=name,
    )


def hpa_of_policy(policy: Policy, *, source: str) -> Hpa:
    """The HPA of a policy read from a HorizontalPodAutoscaler manifest.

    Raises:
        PlanError: the policy is another kind.
    """
    if isinstance(policy, HpaPolicy):
        return policy.hpa
    raise PlanError(
        f"expected a HorizontalPodAutoscaler, got a {type(policy).__name__}", source=source
    )
