"""``capacity manifests``: Kubernetes resources from the capacity decisions.

A Deployment (its container's requests and limits, the replica count, readiness), an
``autoscaling/v2`` HorizontalPodAutoscaler with ``behavior``, a PodDisruptionBudget that
keeps the replicas the SLO needs during voluntary disruptions, and a PriorityClass.
The documents are plain data, written as YAML; the tests validate them against the
Kubernetes schemas.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from ._hpa import Hpa, ScalingRules

__all__ = ["Workload", "hpa_manifest", "manifests", "manifests_yaml"]


@dataclass(frozen=True)
class Workload:
    """What the manifests describe.

    Attributes:
        name: the Deployment's (and the others') name.
        image: the container image.
        port: the container port (and the readiness probe's).
        replicas: the replicas to start with (``capacity size``).
        min_available: replicas a disruption must leave (the SLO's need).
        cpu_request, cpu_limit, memory_request, memory_limit: quantities (``250m``,
            ``512Mi``; ``capacity rightsize``).
        priority: the PriorityClass value.
        readiness_path: the readiness probe's HTTP path.
    """

    name: str
    image: str
    port: int = 8080
    replicas: int = 2
    min_available: int = 1
    cpu_request: str = "250m"
    cpu_limit: str | None = None
    memory_request: str = "256Mi"
    memory_limit: str | None = None
    priority: int = 1000
    readiness_path: str = "/"


def _rules(rules: ScalingRules) -> dict[str, Any]:
    return {
        "stabilizationWindowSeconds": rules.stabilization_window_s,
        "selectPolicy": rules.select_policy,
        "policies": [
            {"type": p.type, "value": p.value, "periodSeconds": p.period_s} for p in rules.policies
        ],
    }


def _metric(metric: Any) -> dict[str, Any]:
    if metric.target_type == "Utilization":
        target: dict[str, Any] = {"type": "Utilization", "averageUtilization": metric.target}
    elif metric.target_type == "AverageValue":
        target = {"type": "AverageValue", "averageValue": f"{metric.target}m"}
    else:
        target = {"type": "Value", "value": f"{metric.target}m"}
    if metric.type == "Resource":
        return {"type": "Resource", "resource": {"name": metric.name, "target": target}}
    key = {"Pods": "pods", "External": "external", "Object": "object"}[metric.type]
    body: dict[str, Any] = {"metric": {"name": metric.name}, "target": target}
    if metric.type == "Object":
        body["describedObject"] = {"apiVersion": "v1", "kind": "Service", "name": "queue"}
    return {"type": metric.type, key: body}


def hpa_manifest(hpa: Hpa, target: str) -> dict[str, Any]:
    """An ``autoscaling/v2`` HorizontalPodAutoscaler scaling the Deployment ``target``."""
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "minReplicas": hpa.min_replicas,
        "maxReplicas": hpa.max_replicas,
        "metrics": [_metric(m) for m in hpa.metrics],
    }
    if hpa.behavior is not None:
        spec["behavior"] = {
            "scaleUp": _rules(hpa.behavior.scale_up),
            "scaleDown": _rules(hpa.behavior.scale_down),
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target},
        "spec": spec,
    }


def manifests(workload: Workload, hpa: Hpa | None = None) -> list[dict[str, Any]]:
    """The resources, as plain data, in the order they should be applied."""
    labels = {"app.kubernetes.io/name": workload.name}
    resources: dict[str, Any] = {
        "requests": {"cpu": workload.cpu_request, "memory": workload.memory_request}
    }
    limits = {
        k: v
        for k, v in (("cpu", workload.cpu_limit), ("memory", workload.memory_limit))
        if v is not None
    }
    if limits:
        resources["limits"] = limits
    out: list[dict[str, Any]] = [
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": f"{workload.name}-priority"},
            "value": workload.priority,
            "globalDefault": False,
            "description": f"{workload.name}: sized by redline capacity",
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": workload.name, "labels": labels},
            "spec": {
                "replicas": workload.replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "priorityClassName": f"{workload.name}-priority",
                        "containers": [
                            {
                                "name": workload.name,
                                "image": workload.image,
                                "ports": [{"containerPort": workload.port}],
                                "resources": resources,
                                "readinessProbe": {
                                    "httpGet": {
                                        "path": workload.readiness_path,
                                        "port": workload.port,
                                    },
                                    "periodSeconds": 5,
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": workload.name},
            "spec": {"minAvailable": workload.min_available, "selector": {"matchLabels": labels}},
        },
    ]
    if hpa is not None:
        out.append(hpa_manifest(hpa, workload.name))
    return out


def manifests_yaml(workload: Workload, hpa: Hpa | None = None) -> str:
    """The resources as one YAML stream (``---`` between them)."""
    return yaml.safe_dump_all(manifests(workload, hpa), sort_keys=False)
