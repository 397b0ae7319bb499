"""Chaos experiments as files: a steady-state hypothesis, a method, and rollbacks.

    title: checkout survives slow payments
    proxies:                                   # started for the experiment (or api: URL)
      - {name: payments, listen: 127.0.0.1:9100, upstream: 127.0.0.1:9000}
    steady-state:                              # probed before and after the method
      plan: shop.yaml
      duration: 10s
      slo: [p99 < 250ms, error_rate < 1%]      # default: the plan's objectives
    method:
      - toxic: {proxy: payments, type: latency, attributes: {latency: 300}}
      - load: {plan: shop.yaml, duration: 30s}
      - pause: 5s
      - down: payments
      - up: payments
      - remove: {proxy: payments, name: latency_downstream}
      - {name: freeze, for: 5s, process: {target: "pid:4242", action: pause}}
    rollbacks:
      - reset                                  # every proxy up, every toxic gone

Paths in ``plan`` are relative to the experiment file. A host fault (``process``,
``cgroup``, ``neighbour``, ``network``, ``disk``, as in a plan's ``faults.schedule``) is
applied where it stands in the method, stays on for its ``for`` (``at`` delays it) while
the method goes on, and is undone then, or by the rollbacks' end at the latest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from redline.core import Objective, PlanError, parse_duration

from ._faults import HOST_FAULT_KEYS, FaultProxySpec, parse_proxies
from ._node import _Node, _show, _text
from ._slo import slos_from_data

__all__ = ["ACTIONS", "Action", "Experiment", "load_experiment"]

ACTIONS = ("toxic", "remove", "down", "up", "reset", "load", "pause")
"""The kinds of action an experiment's method and rollbacks may hold, beside host faults
(an :class:`Action` of kind ``fault``, written as in a plan's schedule)."""


@dataclass(frozen=True)
class Action:
    """One step of a method or of the rollbacks.

    ``kind`` is one of :data:`ACTIONS` or ``fault`` (a host fault: ``host_kind`` with its
    settings ``host``, on for ``seconds`` from ``delay`` after its turn); ``proxy`` names
    the proxy acted on; ``toxic`` is a toxic's JSON form (``toxic``), ``name`` a toxic's
    name (``remove``) or a fault's; ``plan`` and ``seconds`` say what load to run
    (``load``) or how long to wait (``pause``).
    """

    kind: str
    proxy: str = ""
    toxic: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    plan: Path | None = None
    seconds: float = 0.0
    host_kind: str = ""
    host: Mapping[str, Any] = field(default_factory=dict)
    delay: float = 0.0

    def describe(self) -> str:
        """One line for people."""
        if self.kind == "fault":
            return f"{self.host_kind} fault {self.name} for {self.seconds:g}s"
        if self.kind == "toxic":
            return f"toxic {self.toxic.get('type')} on {self.proxy}"
        if self.kind == "remove":
            return f"remove {self.name} from {self.proxy}"
        if self.kind in ("down", "up"):
            return f"{self.kind} {self.proxy}"
        if self.kind == "load":
            return f"load {self.plan} for {self.seconds:g}s"
        if self.kind == "pause":
            return f"pause {self.seconds:g}s"
        return "reset every proxy"


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment file."""

    title: str
    source: str
    plan: Path
    probe_s: float
    objectives: tuple[Objective, ...] | None
    method: tuple[Action, ...]
    rollbacks: tuple[Action, ...]
    proxies: tuple[FaultProxySpec, ...] = ()
    api: str | None = None


def load_experiment(path: str | Path) -> Experiment:
    """Read and check an experiment file.

    Raises:
        PlanError: the file cannot be read, or something in it is wrong (with its path).
    """
    path = Path(path)
    source = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read: {exc.strerror}", source=source) from None
    except yaml.YAMLError as exc:
        raise PlanError(f"not YAML: {exc}", source=source) from None
    root = _Node(raw, "", source)
    root.check_keys(("title", "proxies", "api", "steady-state", "method", "rollbacks"))
    base = path.parent
    state = root.node("steady-state")
    if state is None:
        root.fail("is required: the hypothesis to check before and after", "steady-state")
    state.check_keys(("plan", "duration", "slo"))
    proxies = parse_proxies(root)
    api = root.get("api", _text, None)
    known = {p.name for p in proxies}
    method = _actions(root, "method", base, known, api)
    if not method:
        root.fail("expected at least one action", "method")
    objectives = None
    if state.value.get("slo") is not None:
        objectives = slos_from_data(state.value["slo"], source=source)
    return Experiment(
        title=root.get("title", _text, path.stem),
        source=source,
        plan=_plan_path(state, "plan", base),
        probe_s=state.get("duration", parse_duration, 10.0),
        objectives=objectives,
        method=method,
        rollbacks=_actions(root, "rollbacks", base, known, api),
        proxies=proxies,
        api=api,
    )


def _plan_path(node: _Node, key: str, base: Path) -> Path:
    plan = base / node.get(key, _text)
    if not plan.is_file():
        node.fail(f"no plan file at {str(plan)!r}", key)
    return plan


def _actions(
    root: _Node, key: str, base: Path, known: set[str], api: str | None
) -> tuple[Action, ...]:
    out = []
    for path, value in root.items(key):
        if value == "reset":
            out.append(Action("reset"))
            continue
        item = _Node(value, path, root.source)
        hosts = [k for k in HOST_FAULT_KEYS if isinstance(item.value, Mapping) and k in item.value]
        if hosts:
            out.append(_host_action(item, hosts, len(out)))
            continue
        if len(item.value) != 1:
            item.fail(f"expected one action of {', '.join(ACTIONS)}, got {len(item.value)} keys")
        kind = next(iter(item.value))
        item.check_keys(ACTIONS)
        out.append(_action(item, kind, base, known, api))
    return tuple(out)


def _action(item: _Node, kind: str, base: Path, known: set[str], api: str | None) -> Action:
    def proxy_named(name: object, key: str) -> str:
        text = _text(name)
        if api is None and text not in known:
            item.fail(f"no proxy named {_show(text)} in proxies (or give api)", key)
        return text

    value = item.value[kind]
    if kind in ("down", "up"):
        return Action(kind, proxy=proxy_named(value, kind))
    if kind == "pause":
        return Action(kind, seconds=item.get(kind, parse_duration))
    if kind == "reset":
        return Action(kind)
    body = item.node(kind)
    if body is None:
        item.fail("expected a mapping", kind)
    if kind == "load":
        body.check_keys(("plan", "duration"))
        return Action(
            kind, plan=_plan_path(body, "plan", base),
            seconds=body.get("duration", parse_duration, 30.0),
        )  # fmt: skip
    if kind == "remove":
        body.check_keys(("proxy", "name"))
        return Action(kind, proxy=proxy_named(body.value.get("proxy"), f"{kind}.proxy"),
                      name=body.get("name", _text))  # fmt: skip
    toxic = {k: v for k, v in body.value.items() if k != "proxy"}
    if not toxic.get("type"):
        body.fail("is required: the toxic's type, like latency", "type")
    return Action(kind, proxy=proxy_named(body.value.get("proxy"), f"{kind}.proxy"), toxic=toxic)


def _host_action(item: _Node, hosts: list[str], index: int) -> Action:
    item.check_keys(("name", "at", "for", *HOST_FAULT_KEYS))
    if len(hosts) > 1:
        item.fail(f"expected one fault per entry, got {', '.join(hosts)} together")
    kind = hosts[0]
    settings = item.value[kind]
    if not isinstance(settings, Mapping):
        item.fail(f"expected settings like {{target: pid:N, ...}}, got {_show(settings)}", kind)
    length = item.get("for", parse_duration)
    if length <= 0:
        item.fail("must be longer than 0s", "for")
    return Action(
        "fault",
        name=item.get("name", _text, f"{kind}-{index + 1}"),
        seconds=length,
        delay=item.get("at", parse_duration, 0.0),
        host_kind=kind,
        host=dict(settings),
    )
