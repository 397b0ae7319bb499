"""A plan's ``faults:``: proxies the run starts, and faults applied to them on schedule.

    faults:
      proxies:                       # started by the run, stopped after it
        - {name: payments, listen: 127.0.0.1:9100, upstream: 127.0.0.1:9000}
      api: http://127.0.0.1:8474     # or: an external proxy's API (Toxiproxy, redline proxy)
      schedule:
        - {name: slow, at: 60s, for: 30s, proxy: payments,
           toxic: {type: latency, attributes: {latency: 300}}}
        - {at: 120s, for: 10s, proxy: payments, down: true}
        - {name: freeze, at: 4s, for: 2s, process: {target: serve, action: pause}}
        - {name: squeeze, at: 10s, for: 20s, cgroup: {target: serve, cpu_max: 0.2}}
        - {name: neighbour, at: 10s, for: 20s, neighbour: {cpu: 1, weight: 100}}

``at`` counts from the start of the load (warm-up included), as the run's intervals do.
A toxic is Toxiproxy's JSON form; its type and attributes are checked when the run
starts its proxies (by ``redline.faults``). A host fault (``process``, ``cgroup``,
``neighbour``, ``network``, ``disk``) is one key holding its settings; they too are checked
by ``redline.faults`` before any load, and ``max`` bounds how long it may stay applied if
the run hangs (default: its ``for``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redline.core import parse_duration
from redline.http import parse_address

from ._node import _boolean, _Node, _show, _text

__all__ = [
    "HOST_FAULT_KEYS",
    "FaultPlan",
    "FaultProxySpec",
    "FaultSpec",
    "parse_faults",
    "parse_proxies",
]

HOST_FAULT_KEYS = ("process", "cgroup", "neighbour", "network", "disk", "dns")
"""The keys of a scheduled fault that hold a host fault (beside ``down`` and ``toxic``)."""


@dataclass(frozen=True)
class FaultProxySpec:
    """A proxy the run starts: ``listen`` forwards to ``upstream``."""

    name: str
    listen: str
    upstream: str
    http: bool = False


@dataclass(frozen=True)
class FaultSpec:
    """One scheduled fault, for a while.

    It is ``down`` (the proxy disabled), a ``toxic`` added, or a host fault (``host_kind``
    with its settings in ``host``).
    """

    name: str
    proxy: str
    at_s: float
    for_s: float
    down: bool = False
    toxic: Mapping[str, Any] = field(default_factory=dict)
    host_kind: str = ""
    host: Mapping[str, Any] = field(default_factory=dict)
    max_s: float | None = None

    @property
    def kind(self) -> str:
        """``down``, the toxic's type, or the host fault's kind (``process:pause``)."""
        if self.host_kind:
            action = self.host.get("action")
            return f"{self.host_kind}:{action}" if action else self.host_kind
        return "down" if self.down else str(self.toxic.get("type", ""))

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as kept in the run's plan."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.kind,
            "proxy": self.proxy,
            "at_s": self.at_s,
            "for_s": self.for_s,
        }
        if self.host_kind:
            out["host"] = {self.host_kind: dict(self.host)}
            if self.max_s is not None:
                out["max_s"] = self.max_s
        elif not self.down:
            out["toxic"] = dict(self.toxic)
        return out


@dataclass(frozen=True)
class FaultPlan:
    """Everything under ``faults:``."""

    proxies: tuple[FaultProxySpec, ...] = ()
    schedule: tuple[FaultSpec, ...] = ()
    api: str | None = None
    allow_host: bool = False
    dns: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``proxies``, ``schedule`` and ``api``."""
        return {
            "proxies": [
                {"name": p.name, "listen": p.listen, "upstream": p.upstream, "http": p.http}
                for p in self.proxies
            ],
            "schedule": [f.to_dict() for f in self.schedule],
            "api": self.api,
        }


def _address(value: object) -> str:
    text = _text(value)
    parse_address(text)  # HOST:PORT, or a ValueError that says so
    return text


def parse_proxies(node: _Node) -> tuple[FaultProxySpec, ...]:
    """The ``proxies:`` list under ``node``: unique names, ``host:port`` addresses."""
    proxies = []
    for path, value in node.items("proxies"):
        item = _Node(value, path, node.source)
        item.check_keys(("name", "listen", "upstream", "http"))
        proxies.append(
            FaultProxySpec(
                name=item.get("name", _text),
                listen=item.get("listen", _address),
                upstream=item.get("upstream", _address),
                http=item.get("http", _boolean, False),
            )
        )
    names = [p.name for p in proxies]
    if len(set(names)) != len(names):
        node.fail("proxy names must be unique", "proxies")
    return tuple(proxies)


def parse_faults(root: _Node) -> FaultPlan:
    """The plan's ``faults:`` section (an empty plan of faults without one)."""
    node = root.node("faults")
    if node is None:
        return FaultPlan()
    node.check_keys(("proxies", "schedule", "api", "dns"))
    dns = node.node("dns")
    if dns is not None:
        dns.check_keys(("records",))
        records = dns.value.get("records")
        if not isinstance(records, Mapping) or not records:
            dns.fail("expected the names it answers for: {payments.test: 127.0.0.1}", "records")
        for name, value in records.items():
            for address in [value] if isinstance(value, str) else list(value):
                try:
                    ipaddress.ip_address(str(address))
                except ValueError:
                    dns.fail(f"expected an IP address, got {_show(address)}", f"records.{name}")
    proxies = parse_proxies(node)
    names = [p.name for p in proxies]
    api = node.get("api", _text, None)
    schedule = []
    for index, (path, value) in enumerate(node.items("schedule")):
        item = _Node(value, path, root.source)
        item.check_keys(("name", "at", "for", "max", "proxy", "down", "toxic", *HOST_FAULT_KEYS))
        at = item.get("at", parse_duration)
        length = item.get("for", parse_duration)
        if length <= 0:
            item.fail("must be longer than 0s", "for")
        hosts = [k for k in HOST_FAULT_KEYS if k in item.value]
        if hosts:
            schedule.append(_host_fault(item, hosts, index, at, length))
            continue
        proxy = item.get("proxy", _text)
        if api is None and proxy not in names:
            item.fail(
                f"no proxy named {_show(proxy)} in faults.proxies (or give faults.api)", "proxy"
            )
        down = item.get("down", _boolean, False)
        toxic = item.value.get("toxic")
        if down == (toxic is not None):
            item.fail("give either down: true or a toxic")
        if toxic is not None and (not isinstance(toxic, Mapping) or not toxic.get("type")):
            item.fail("expected a toxic like {type: latency, attributes: {latency: 300}}", "toxic")
        kind = "down" if down else str(toxic["type"])  # type: ignore[index]
        schedule.append(
            FaultSpec(
                name=item.get("name", _text, f"{kind}-{index + 1}"),
                proxy=proxy,
                at_s=at,
                for_s=length,
                down=down,
                toxic=dict(toxic) if toxic is not None else {},
            )
        )
    return FaultPlan(
        proxies=proxies,
        schedule=tuple(schedule),
        api=api,
        dns=dict(dns.value) if dns is not None else None,
    )


def _host_fault(item: _Node, hosts: list[str], index: int, at: float, length: float) -> FaultSpec:
    """A scheduled host fault; its settings are checked by ``redline.faults`` before load."""
    if len(hosts) > 1 or "down" in item.value or "toxic" in item.value:
        item.fail(f"expected one fault per entry, got {', '.join(hosts)} together")
    kind = hosts[0]
    settings = item.value[kind]
    if not isinstance(settings, Mapping):
        item.fail(f"expected settings like {{target: serve, ...}}, got {_show(settings)}", kind)
    max_s = item.get("max", parse_duration, None)
    if max_s is not None and max_s < length:
        item.fail("must be at least as long as for", "max")
    return FaultSpec(
        name=item.get("name", _text, f"{kind}-{index + 1}"),
        proxy=str(settings.get("proxy", "")),
        at_s=at,
        for_s=length,
        host_kind=kind,
        host=dict(settings),
        max_s=max_s,
    )
