"""Dynamic values inside request paths, headers and bodies: ``${randint(1, 100)}``.

A template is compiled once, when the plan is validated, into literal parts and value
generators; rendering joins them. Requests without placeholders are never rendered: the
engine sends their precompiled bytes.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from redline.core import DataExhaustedError, RedlineError

__all__ = [
    "DataSource",
    "MissingVariableError",
    "RenderContext",
    "Template",
    "compile_template",
    "text_of",
]

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$")
_FIELD = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_ -]*?)\s*$")
FUNCTIONS = ("randint", "choice", "uuid", "seq")
_SEQ_KEYS = itertools.count(1)


@dataclass(frozen=True)
class DataSource:
    """Rows of a CSV or JSON-lines file, read when the plan is validated.

    ``mode`` says how rows are drawn: ``sequential`` (in order, cycling), ``random``, or
    ``unique`` (each row at most once in the whole run; when they run out a request fails
    with ``data_exhausted``, unless ``recycle`` starts over). Workers take disjoint rows.
    """

    name: str
    path: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    mode: Literal["sequential", "random", "unique"] = "sequential"
    recycle: bool = False

    def draw(self, ctx: RenderContext) -> tuple[Any, ...]:
        """The next row for this worker.

        Raises:
            DataExhaustedError: ``unique`` rows ran out and ``recycle`` is off.
        """
        if self.mode == "random":
            return self.rows[ctx.random.randrange(len(self.rows))]
        position = ctx.next_index(hash(self.name))
        if position >= len(self.rows) and self.mode == "unique" and not self.recycle:
            raise DataExhaustedError(
                f"data source {self.name!r} ran out of unique rows ({len(self.rows)} rows)"
            )
        return self.rows[position % len(self.rows)]


def text_of(value: Any) -> str:
    """A data value as text for a template (JSON for anything but strings)."""
    return value if isinstance(value, str) else json.dumps(value)


class RenderContext:
    """Per-worker state for rendering: seeded randomness, sequences and data cursors.

    ``stride``/``offset`` come from the worker's load segment so that sequences and
    data rows are partitioned exactly between workers (worker ``i`` of ``n`` takes
    values ``i, i + n, i + 2n, ...``).
    """

    __slots__ = ("_cursors", "offset", "random", "stride", "variables")

    def __init__(self, *, seed: int | None = None, stride: int = 1, offset: int = 0) -> None:
        """Create a context; ``seed`` makes every rendered value reproducible."""
        self.random = random.Random(seed)
        self.stride = stride
        self.offset = offset
        self.variables: Mapping[str, str] = {}
        """A flow's variables (``${vars.name}``), set by the step about to render."""
        self._cursors: dict[int, int] = {}

    def next_index(self, key: int) -> int:
        """Return this worker's next position in the shared sequence named ``key``."""
        count = self._cursors.get(key, 0)
        self._cursors[key] = count + 1
        return self.offset + count * self.stride


Part = str | Callable[[RenderContext, dict[str, tuple[str, ...]]], str]


class Template:
    """A compiled string template. ``static`` is True when it has no placeholders."""

    __slots__ = ("_parts", "_sources", "static", "text", "value")

    def __init__(self, text: str, parts: Sequence[Part], sources: Sequence[DataSource]) -> None:
        """Build from compiled parts; use :func:`compile_template` instead."""
        self.text = text
        self._parts = tuple(parts)
        self._sources = tuple(sources)
        self.static = all(isinstance(p, str) for p in self._parts)
        """True when rendering always gives the same text (``value``)."""
        self.value = "".join(p for p in self._parts if isinstance(p, str)) if self.static else ""
        """What a static template renders to: ``text`` with ``${env.NAME}`` filled in."""

    def render(self, ctx: RenderContext) -> str:
        """Render once; rows of each data source are drawn once per render.

        Raises:
            DataExhaustedError: a ``unique`` data source ran out of rows.
        """
        if self.static:
            return self.value
        rows = {s.name: s.draw(ctx) for s in self._sources}
        return "".join(p if isinstance(p, str) else p(ctx, rows) for p in self._parts)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def compile_template(
    text: str,
    sources: Mapping[str, DataSource],
    *,
    variables: bool = False,
    env: Mapping[str, str] | None = None,
) -> Template:
    """Compile ``text`` with ``${...}`` placeholders.

    Supported: ``${randint(a, b)}``, ``${choice(x, y, ...)}``, ``${uuid()}``,
    ``${seq()}`` or ``${seq(start)}``, ``${source.column}`` for a CSV data source, and
    ``${env.NAME}``: an environment variable of the process that reads the plan (k6's
    ``__ENV.NAME``), filled in once, so every worker and cluster host sends the same.
    With ``variables`` (a flow's steps), ``${vars.name}``: what an earlier step extracted.
    ``env`` (a scenario's own ``env:``) comes before the process environment.

    Raises:
        ValueError: for an unknown function, bad arguments, or an unknown data column.
    """
    parts: list[Part] = []
    used: dict[str, DataSource] = {}
    position = 0
    for match in _PLACEHOLDER.finditer(text):
        if match.start() > position:
            parts.append(text[position : match.start()])
        parts.append(_compile_placeholder(match.group(1), sources, used, variables, env or {}))
        position = match.end()
    if position < len(text):
        parts.append(text[position:])
    if "${" in _PLACEHOLDER.sub("", text):  # in the plan's own text, not in a value
        raise ValueError(f"unterminated placeholder in {text!r}: expected ${{...}}")
    return Template(text, parts, list(used.values()))


class _Field:
    __slots__ = ("col", "source")

    def __init__(self, source: str, col: int) -> None:
        self.source, self.col = source, col

    def __call__(self, ctx: RenderContext, rows: dict[str, tuple[str, ...]]) -> str:
        return text_of(rows[self.source][self.col])


class MissingVariableError(RedlineError):
    """A flow step uses a variable that no earlier step extracted (this iteration)."""


class _Var:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, ctx: RenderContext, rows: dict[str, tuple[str, ...]]) -> str:
        try:
            return ctx.variables[self.name]
        except KeyError:
            raise MissingVariableError(
                f"variable {self.name!r} was not extracted in this iteration"
            ) from None


class _RandInt:
    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def __call__(self, ctx: RenderContext, rows: dict[str, tuple[str, ...]]) -> str:
        return str(ctx.random.randint(self.low, self.high))


class _Choice:
    __slots__ = ("options",)

    def __init__(self, options: tuple[str, ...]) -> None:
        self.options = options

    def __call__(self, ctx: RenderContext, rows: dict[str, tuple[str, ...]]) -> str:
        return ctx.random.choice(self.options)


class _Uuid:
    __slots__ = ()

    def __call__(self, ctx: RenderContext, rows: dict[str, tuple[str, ...]]) -> str:
        return str(uuid.UUID(int=ctx.random.getrandbits(128), version=4))


class _Seq:
    __slots__ = ("key", "start")

    def __init__(self, start: int, key: int) -> None:
        self.start, self.key = start, key

    def __call__(self, ctx: RenderContext, rows: dict[str, tuple[str, ...]]) -> str:
        return str(self.start + ctx.next_index(self.key))


def _compile_placeholder(
    expression: str,
    sources: Mapping[str, DataSource],
    used: dict[str, DataSource],
    variables: bool,
    env: Mapping[str, str],
) -> Part:
    if field_match := _FIELD.match(expression):
        source_name, column = field_match.groups()
        if source_name == "vars" and "vars" not in sources:
            if not variables:
                raise ValueError(
                    f"${{{expression}}}: variables come from a flow step's extract, so they "
                    "can be used in flow steps only"
                )
            return _Var(column)
        if source_name == "env" and "env" not in sources:
            value = env.get(column, os.environ.get(column))
            if value is None:
                raise ValueError(f"environment variable {column!r} is not set (${{{expression}}})")
            return value
        source = sources.get(source_name)
        if source is None:
            known = ", ".join(sorted(sources)) or "none defined"
            raise ValueError(f"unknown data source {source_name!r} (data sources: {known})")
        if column not in source.columns:
            raise ValueError(
                f"data source {source_name!r} has no column {column!r} "
                f"(columns: {', '.join(source.columns)})"
            )
        used[source_name] = source
        return _Field(source_name, source.columns.index(column))
    call = _CALL.match(expression)
    if call is None:
        raise ValueError(f"cannot read placeholder ${{{expression}}}: expected a function call")
    name, raw_args = call.group(1), call.group(2)
    args = [a.strip() for a in raw_args.split(",")] if raw_args and raw_args.strip() else []
    if name == "randint":
        try:
            low, high = (int(a) for a in args)
        except ValueError:
            raise ValueError(f"randint takes two integers, got ${{{expression}}}") from None
        if low > high:
            raise ValueError(f"randint needs low <= high, got ${{{expression}}}")
        return _RandInt(low, high)
    if name == "choice":
        if not args:
            raise ValueError("choice needs at least one value, like ${choice(a, b)}")
        return _Choice(tuple(args))
    if name == "uuid":
        if args:
            raise ValueError(f"uuid takes no arguments, got ${{{expression}}}")
        return _Uuid()
    if name == "seq":
        try:
            start = int(args[0]) if args else 0
        except ValueError:
            raise ValueError(
                f"seq takes an optional integer start, got ${{{expression}}}"
            ) from None
        return _Seq(start, next(_SEQ_KEYS))
    known = ", ".join(FUNCTIONS)
    raise ValueError(f"unknown function {name!r} in ${{{expression}}} (known: {known})")
