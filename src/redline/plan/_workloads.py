"""A plan's ``scenarios:`` (k6's): several workloads, each with its own executor and window.

    scenarios:
      browse:   {executor: constant-arrival-rate, rate: 50/s, duration: 10s,
                 requests: [{name: home, path: /}]}
      accounts: {executor: per-vu-iterations, vus: 5, iterations: 10, start_time: 2s,
                 requests: [{name: signup, method: POST, path: /signup}]}

Each scenario becomes a :class:`Workload` whose ``plan`` holds what it sends and its
load *on the run's clock*: zero before ``start_time``, its own shape for its duration,
zero after. The engine then runs one driver per workload, side by side, with the drivers
it already has; the iteration executors are virtual users that count what they do.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

from redline.core import Redactor, parse_duration, parse_rate

from ._node import _Node, _non_negative_int, _positive_int, _show, _text
from ._parse import _by_session, _flows, _requests, _tags, _think
from ._spec import (
    EXECUTORS,
    ClosedLoad,
    OpenLoad,
    Plan,
    RequestSpec,
    ScenarioSpec,
    Stage,
    Workload,
    stage_value,
)
from ._template import DataSource

__all__ = ["check_no_single_load", "combined_load", "parse_workloads"]

_COMMON = ("executor", "start_time", "graceful_stop", "tags", "env", "requests", "flows", "exec")
_THINK = ("think",)
_KEYS: dict[str, tuple[str, ...]] = {
    "constant-arrival-rate": (
        "rate", "time_unit", "duration", "arrivals", "pre_allocated_vus", "max_vus",
    ),
    "ramping-arrival-rate": (
        "start_rate", "time_unit", "stages", "arrivals", "pre_allocated_vus", "max_vus",
    ),
    "constant-vus": ("vus", "duration", *_THINK),
    "ramping-vus": ("start_vus", "stages", *_THINK),
    "per-vu-iterations": ("vus", "iterations", "max_duration", *_THINK),
    "shared-iterations": ("vus", "iterations", "max_duration", *_THINK),
    "externally-controlled": ("vus", "max_vus", "duration", *_THINK),
}  # fmt: skip
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_MAX_DURATION = 600.0  # k6's default maxDuration of the iteration executors: 10 minutes
_GRACEFUL_STOP = 30.0  # k6's default gracefulStop


def parse_workloads(
    root: _Node,
    base: Plan,
    *,
    sources: Mapping[str, DataSource],
    redactor: Redactor,
    functions: Sequence[ScenarioSpec],
    base_dir: Path,
) -> tuple[Workload, ...]:
    """The workloads of ``root``'s ``scenarios:``, each with a plan derived from ``base``.

    ``functions`` are a Python plan's ``@scenario`` functions, which ``exec:`` names.

    Raises:
        PlanError: naming the scenario and key, and what was expected.
    """
    section = root.node("scenarios")
    assert section is not None
    if not section.value:
        section.fail("expected at least one scenario, like {browse: {executor: ..., ...}}")
    workloads: list[Workload] = []
    owners: dict[str, str] = {}  # endpoint name -> the scenario that sends it
    for name, value in section.value.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            section.fail(f"expected a scenario name (letters, digits, _ . -), got {_show(name)}")
        node = _Node(value, section.child_path(name), root.source)
        workload = _workload(
            node,
            name,
            base,
            sources=sources,
            redactor=redactor,
            functions={f.name: f for f in functions},
            base_dir=base_dir,
        )
        for endpoint in workload.endpoints:
            other = owners.setdefault(endpoint, name)
            if other != name:
                node.fail(
                    f"request {_show(endpoint)} is sent by scenario {other!r} too: request names "
                    "must be unique across scenarios (they name the endpoints measured)"
                )
        workloads.append(workload)
    return tuple(workloads)


def _workload(
    node: _Node,
    name: str,
    base: Plan,
    *,
    sources: Mapping[str, DataSource],
    redactor: Redactor,
    functions: Mapping[str, ScenarioSpec],
    base_dir: Path,
) -> Workload:
    executor = node.get("executor", _text)
    if executor not in EXECUTORS:
        node.fail(f"expected one of {', '.join(EXECUTORS)}, got {_show(executor)}", "executor")
    node.check_keys(_COMMON + _KEYS[executor])
    env = _env(node)
    tags = _scenario_tags(node, name)
    given = [key for key in ("requests", "flows", "exec") if key in node.value]
    if len(given) != 1:
        node.fail("expected one of requests, flows or exec (what each iteration does)")
    requests: tuple[RequestSpec, ...] = ()
    journeys: tuple[ScenarioSpec, ...] = ()
    if given == ["requests"]:
        requests = tuple(
            _tagged(r, tags)
            for r in _requests(
                node, base.target, sources, redactor, env=dict(env), base_dir=base_dir
            )
        )
    elif given == ["flows"]:
        journeys = tuple(
            dataclasses.replace(
                flow,
                steps=tuple(
                    _tagged(s, tags) if isinstance(s, RequestSpec) else s for s in flow.steps
                ),
            )
            for flow in _flows(
                node, base.target, sources, redactor, env=dict(env), base_dir=base_dir
            )
        )
    else:
        function = node.get("exec", _text)
        if function not in functions:
            known = ", ".join(sorted(functions)) or "none: exec is for Python plans"
            node.fail(f"no @scenario function {function!r} (scenarios: {known})", "exec")
        journeys = (dataclasses.replace(functions[function], weight=1),)
    if requests:
        requests, by_session = _by_session(requests, (), base.redirects)
        if by_session:
            journeys = (dataclasses.replace(by_session[0], name=name),)
    iterations: int | None = None
    vus = 0
    max_in_flight, max_connections = base.max_in_flight, base.max_connections
    load: OpenLoad | ClosedLoad
    if executor.endswith("arrival-rate"):
        load, duration = _arrival_load(node, executor)
        if "max_vus" in node.value:
            max_in_flight = node.get("max_vus", _positive_int)
    else:
        think = _think(node) if "think" in node.value else None
        think_range = (think.minimum, think.maximum) if think is not None else (0.0, 0.0)
        if executor == "ramping-vus":
            stages = _stages(node, "vus")
            load = ClosedLoad(stages=stages, start_vus=node.get("start_vus", _non_negative_int, 1))
            duration = sum(s.duration for s in stages)
        else:
            vus = node.get("vus", _non_negative_int if executor == "externally-controlled" else
                           _positive_int, 1)  # fmt: skip
            load = ClosedLoad(vus=vus)
            if executor in ("per-vu-iterations", "shared-iterations"):
                iterations = node.get("iterations", _positive_int, 1)
                duration = node.get("max_duration", _duration, _MAX_DURATION)
            else:
                duration = node.get("duration", _duration)
        load = dataclasses.replace(load, think_min=think_range[0], think_max=think_range[1])
        vus = max(vus, load.max_vus)
        if executor == "externally-controlled":
            most = node.get("max_vus", _positive_int, max(vus, 1))
            if most < vus:
                node.fail(f"max_vus ({most}) must be at least vus ({vus})", "max_vus")
            max_connections = most
            vus = most
        elif vus > base.max_connections:
            node.fail(
                f"{vus} virtual users need as many connections, but limits.max_connections "
                f"is {base.max_connections}",
                "vus" if "vus" in node.value else "stages",
            )
        if executor in ("per-vu-iterations", "shared-iterations") and requests:
            # An iteration is one request, in weighted turn, by a virtual user that counts.
            journeys = (ScenarioSpec(name=name, function="", steps=requests, pick_one=True),)
            requests = ()
    start = node.get("start_time", parse_duration, 0.0)
    plan = dataclasses.replace(
        base,
        name=f"{base.name}/{name}",
        requests=requests,
        scenarios=journeys,
        load=_windowed(load, start=start, length=duration),
        duration=start + duration,
        warmup=0.0,
        slos=(),
        workloads=(),
        max_in_flight=max_in_flight,
        max_connections=max_connections,
    )
    return Workload(
        name=name,
        executor=executor,
        plan=plan,
        start_time=start,
        duration=duration,
        graceful_stop=node.get("graceful_stop", parse_duration, _GRACEFUL_STOP),
        iterations=iterations,
        vus=vus,
        tags=tuple(t for t in tags if t[0] != "scenario"),
        env=env,
    )


def _duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f'expected a positive duration like "30s", got {_show(value)}')
    return seconds


def _arrival_load(node: _Node, executor: str) -> tuple[OpenLoad, float]:
    """An arrival-rate executor's load, and how long it lasts."""
    unit = node.get("time_unit", _duration, 1.0)
    arrivals = node.get("arrivals", _text, "constant")
    if arrivals not in ("constant", "poisson"):
        node.fail(f'expected "constant" or "poisson", got {_show(arrivals)}', "arrivals")
    how = cast(Literal["constant", "poisson"], arrivals)

    def per_second(value: object) -> float:
        if value == 0 or value == "0":
            return 0.0
        return parse_rate(value) / unit if isinstance(value, int | float) else parse_rate(value)

    if executor == "constant-arrival-rate":
        rate = node.get("rate", per_second)
        if rate <= 0:
            node.fail('expected a positive rate like "50/s"', "rate")
        return OpenLoad(rate=rate, arrivals=how), node.get("duration", _duration)
    stages = _stages(node, "rate", per_second)
    start_rate = node.get("start_rate", per_second, 0.0)
    return (
        OpenLoad(stages=stages, start_rate=start_rate, arrivals=how),
        sum(s.duration for s in stages),
    )


def _stages(
    node: _Node, unit: str, convert: Callable[[object], float] | None = None
) -> tuple[Stage, ...]:
    """``stages: [{duration, target}]`` (k6's; ``rate:`` or ``vus:`` for ``target`` too)."""
    entries = node.items("stages")
    if not entries:
        node.fail("expected stages, like [{duration: 10s, target: 20}]", "stages")
    out = []
    for path, value in entries:
        stage = _Node(value, path, node.source)
        stage.check_keys(("duration", "target", unit))
        key = "target" if "target" in stage.value else unit
        target = stage.get(key, convert or _non_negative_int)
        out.append(Stage(duration=stage.get("duration", parse_duration), target=float(target)))
    return tuple(out)


def _env(node: _Node) -> tuple[tuple[str, str], ...]:
    section = node.node("env")
    if section is None:
        return ()
    pairs = []
    for key, value in section.value.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            section.fail(f"expected a variable name, got {_show(key)}")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            section.fail(f"expected a value (text or a number), got {_show(value)}", key)
        pairs.append((key, str(value)))
    return tuple(pairs)


def _scenario_tags(node: _Node, name: str) -> tuple[tuple[str, str], ...]:
    """The scenario's ``tags:`` (as a request's) and the system tag ``scenario``."""
    return tuple(sorted({**dict(_tags(node)), "scenario": name}.items()))


def _tagged(request: RequestSpec, tags: tuple[tuple[str, str], ...]) -> RequestSpec:
    """``request`` with the scenario's tags (its own win where both set one)."""
    merged = {**dict(tags), **dict(request.tags)}
    return dataclasses.replace(request, tags=tuple(sorted(merged.items())))


def _windowed(load: OpenLoad | ClosedLoad, *, start: float, length: float) -> Any:
    """``load`` on the run's clock: nothing before ``start``, nothing after ``start + length``.

    Written as stages from zero: hold zero until ``start``, jump to the load's first value,
    follow its stages (cut at ``length``, the last value held to it), jump back to zero.
    """
    if isinstance(load, OpenLoad):
        first, stages = (load.rate, ()) if load.rate is not None else (load.start_rate, load.stages)
    else:
        first, stages = (float(load.vus), ()) if load.vus is not None else (
            float(load.start_vus), load.stages)  # fmt: skip
    out: list[Stage] = [Stage(start, 0.0)] if start > 0 else []
    out.append(Stage(0.0, float(first or 0.0)))
    elapsed, value = 0.0, float(first or 0.0)
    for stage in stages:
        if elapsed >= length:
            break
        if elapsed + stage.duration > length:
            fraction = (length - elapsed) / stage.duration
            out.append(Stage(length - elapsed, value + (stage.target - value) * fraction))
            elapsed = length
            break
        out.append(stage)
        elapsed, value = elapsed + stage.duration, stage.target
    if elapsed < length:
        out.append(Stage(length - elapsed, value))
    out.append(Stage(0.0, 0.0))
    if isinstance(load, OpenLoad):
        return OpenLoad(stages=tuple(out), start_rate=0.0, arrivals=load.arrivals)
    return dataclasses.replace(load, vus=None, stages=tuple(out), start_vus=0)


def combined_load(loads: Sequence[OpenLoad | ClosedLoad]) -> OpenLoad | ClosedLoad:
    """The sum of windowed loads: the open ones' rates, or (none open) the closed ones' VUs.

    Exact: a sum of piecewise-linear curves is one, with the union of their breakpoints.
    """
    opened = [load for load in loads if isinstance(load, OpenLoad)]
    chosen: Sequence[OpenLoad | ClosedLoad] = opened or loads
    ends: set[float] = {0.0}
    for load in chosen:
        elapsed = 0.0
        for stage in load.stages:
            elapsed += stage.duration
            ends.add(elapsed)
    points = sorted(ends)

    def value(at: float) -> float:  # right-continuous, as rate_at and vus_at are
        return sum(
            stage_value(load.start_rate if isinstance(load, OpenLoad) else load.start_vus,
                        load.stages, at)
            for load in chosen
        )  # fmt: skip

    stages: list[Stage] = []
    for a, b in itertools.pairwise(points):
        middle = value((a + b) / 2)
        start = value(a)
        stages += [Stage(0.0, start), Stage(b - a, start + 2 * (middle - start))]
    stages.append(Stage(0.0, value(points[-1])))
    if opened:
        poisson = all(load.arrivals == "poisson" for load in opened)
        return OpenLoad(stages=tuple(stages), arrivals="poisson" if poisson else "constant")
    return ClosedLoad(stages=tuple(stages))


def check_no_single_load(root: _Node) -> None:
    """With ``scenarios:``, the keys of a plan with one load have no place at the top."""
    for key in ("requests", "flows", "load", "duration", "type", "spike"):
        if key in root.value:
            root.fail(
                f"a plan with scenarios gives each scenario its own {key}: move it into "
                "them, or remove scenarios",
                key,
            )
