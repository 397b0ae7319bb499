"""Plans written in Python: ``@scenario`` functions plus the plan's keys as module globals.

    from redline.scenario import Session, scenario

    target = "http://127.0.0.1:8080"
    load = {"rate": "50/s"}
    duration = "30s"

    @scenario(weight=3)
    async def browse(s: Session) -> None:
        r = await s.get("/products", name="list")
        await s.think(0.5, 1.5)

The module is imported here to validate the plan, and again in every worker process.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import inspect
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar, overload

from redline.core import Metric, PlanError

from ._parse import _TOP_KEYS, plan_from_dict
from ._spec import Plan, ScenarioSpec

__all__ = ["import_plan_module", "load_python_plan", "scenario"]

F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__redline_scenario__"


@dataclass(frozen=True)
class _Mark:
    name: str | None
    weight: int


@overload
def scenario(function: F, /) -> F: ...
@overload
def scenario(*, weight: int = 1, name: str | None = None) -> Callable[[F], F]: ...
def scenario(
    function: F | None = None, /, *, weight: int = 1, name: str | None = None
) -> F | Callable[[F], F]:
    """Mark an async function ``(session) -> None`` as a scenario of the plan.

    Args:
        function: the scenario (when used as ``@scenario`` without arguments).
        weight: its share of iterations relative to the plan's other scenarios.
        name: the name in results (default: the function's name).
    """

    def mark(fn: F) -> F:
        setattr(fn, _MARK, _Mark(name, weight))
        return fn

    return mark(function) if function is not None else mark


def import_plan_module(path: str | Path) -> ModuleType:
    """Import a Python plan file (once per process).

    Raises:
        PlanError: the file cannot be imported; names the line that failed.
    """
    file = Path(path).resolve()
    module_name = "redline_plan_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise PlanError("cannot load as a Python module", source=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except FileNotFoundError as exc:
        del sys.modules[module_name]
        if exc.filename not in (None, str(file)):  # a file the plan's own code opens
            raise PlanError(
                f"cannot import the plan: FileNotFoundError: no such file {exc.filename!r}",
                source=str(path),
                path=_failing_line(exc, file),
            ) from None
        raise PlanError(f"cannot read plan: {exc.strerror}", source=str(path)) from None
    except SyntaxError as exc:
        del sys.modules[module_name]
        raise PlanError(
            f"cannot import the plan: SyntaxError: {exc.msg}",
            source=str(path),
            path=f"line {exc.lineno}",
        ) from None
    except Exception as exc:  # noqa: BLE001  (whatever the plan's own code raised)
        del sys.modules[module_name]
        raise PlanError(
            f"cannot import the plan: {type(exc).__name__}: {exc}",
            source=str(path),
            path=_failing_line(exc, file),
        ) from None
    return module


def _failing_line(exc: BaseException, file: Path) -> str:
    """``line N``: the plan's own line where ``exc`` was raised (or nothing)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == file]
    return f"line {frames[-1].lineno}" if frames else ""


def load_python_plan(path: str | Path, *, overrides: Mapping[str, Any] | None = None) -> Plan:
    """Import and validate a Python plan file.

    Raises:
        PlanError: naming the file, the line or key, and what was expected.
    """
    module = import_plan_module(path)
    source = str(path)
    scenarios: list[ScenarioSpec] = []
    for attribute, value in vars(module).items():
        mark = getattr(value, _MARK, None)
        if not isinstance(mark, _Mark):
            continue
        line = f"line {value.__code__.co_firstlineno}" if hasattr(value, "__code__") else ""
        if not inspect.iscoroutinefunction(value):
            raise PlanError(
                f"scenario {attribute!r} must be an async function (async def)",
                source=source,
                path=line,
            )
        if not _awaits(value):
            raise PlanError(
                f"scenario {attribute!r} never awaits: requests and think times must be awaited",
                source=source,
                path=line,
            )
        if isinstance(mark.weight, bool) or not isinstance(mark.weight, int) or mark.weight < 1:
            raise PlanError(
                f"scenario {attribute!r}: weight must be a positive whole number, "
                f"got {mark.weight!r}",
                source=source,
                path=line,
            )
        scenarios.append(
            ScenarioSpec(name=mark.name or attribute, function=attribute, weight=mark.weight)
        )
    if not scenarios:
        raise PlanError(
            "defines no scenario: expected at least one @scenario async function", source=source
        )
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise PlanError(f"scenario names must be unique, got {names}", source=source)
    raw = {key: getattr(module, key) for key in _TOP_KEYS if key in vars(module)}
    raw.setdefault("name", Path(path).stem)
    metrics = tuple(sorted({(m.name, m.kind) for m in _metrics_of(vars(module).values())}))
    plan = plan_from_dict(
        raw,
        source=source,
        base_dir=Path(path).resolve().parent,
        overrides=overrides,
        scenarios=scenarios,
        module=str(Path(path).resolve()),
        hooks=(callable(vars(module).get("setup")), callable(vars(module).get("teardown"))),
        metrics=metrics,
    )
    shape = vars(module).get("shape")
    if shape is None:
        return plan
    if not callable(shape) or inspect.iscoroutinefunction(shape):
        raise PlanError(
            "shape must be a plain function shape(elapsed_s) -> rate, VUs or None",
            source=source,
            path="shape",
        )
    if plan.workloads:
        raise PlanError(
            "shape steers one load; this plan's scenarios each have their own (an "
            "externally-controlled scenario takes live control)",
            source=source,
            path="shape",
        )
    return dataclasses.replace(plan, has_shape=True)


def _metrics_of(values: Iterable[object]) -> Iterator[Metric]:
    """The module's custom metrics, and those its objects keep (``.metrics``).

    :class:`redline.scenario.Jobs` keeps its latency, counters and queue gauges so.
    """
    for value in values:
        if isinstance(value, Metric):
            yield value
            continue
        kept = getattr(value, "metrics", None)
        if isinstance(kept, tuple):
            yield from (m for m in kept if isinstance(m, Metric))


def _awaits(function: Callable[..., Any]) -> bool:
    """Whether the function's source contains an await (or async for/with)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return True  # no source to inspect: give it the benefit of the doubt
    return any(isinstance(n, ast.Await | ast.AsyncFor | ast.AsyncWith) for n in ast.walk(tree))
