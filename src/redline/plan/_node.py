"""Validation primitives for plans: a mapping with its path, and small value checks."""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from redline.core import PlanError, parse_duration

T = TypeVar("T")

_MISSING = object()


class _Node:
    """A mapping inside the plan, with its path, for precise error messages."""

    def __init__(self, value: object, path: str, source: str) -> None:
        self.path = path
        self.source = source
        if not isinstance(value, Mapping):
            self.fail(f"expected a mapping, got {_show(value)}")
        self.value: Mapping[str, Any] = value

    def fail(self, message: str, key: str | None = None) -> NoReturn:
        path = self.child_path(key) if key is not None else self.path
        raise PlanError(message, source=self.source, path=path)

    def child_path(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def check_keys(self, allowed: tuple[str, ...]) -> None:
        for key in self.value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f'; did you mean "{hint[0]}"?' if hint else ""
                self.fail(
                    f"unknown key{suggestion} (expected one of: {', '.join(allowed)})", str(key)
                )

    def get(self, key: str, convert: Callable[[Any], T], default: object = _MISSING) -> T:
        if key not in self.value or self.value[key] is None:
            if default is _MISSING:
                self.fail("is required", key)
            return default  # type: ignore[return-value]
        try:
            return convert(self.value[key])
        except PlanError:
            raise
        except (ValueError, TypeError) as exc:
            raise PlanError(str(exc), source=self.source, path=self.child_path(key)) from None

    def node(self, key: str) -> _Node | None:
        if self.value.get(key) is None:
            return None
        return _Node(self.value[key], self.child_path(key), self.source)

    def items(self, key: str) -> list[tuple[str, object]]:
        value = self.value.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"expected a list, got {_show(value)}", key)
        return [(self.child_path(key) + f"[{i}]", item) for i, item in enumerate(value)]


def _show(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"expected a positive whole number, got {_show(value)}")
    return value


def _non_negative_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {_show(value)}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a non-empty string, got {_show(value)}")
    return value


def _names(value: object) -> tuple[str, ...]:
    """A list of header or field names (``redact:``)."""
    if not isinstance(value, list):
        raise ValueError(
            f'expected a list of header or field names like ["X-Api-Key"], got {_show(value)}'
        )
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or any(c in item for c in ":\r\n"):
            raise ValueError(f"[{index}]: expected a header or field name, got {_show(item)}")
    return tuple(item.strip() for item in value)


def _fraction(value: object) -> float:
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100
        except ValueError:
            number = math.nan
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        number = math.nan
    if not 0 <= number <= 1:
        raise ValueError(f'expected a fraction like 0.01 or "1%", got {_show(value)}')
    return number


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_show(value)}")
    return value


def _duration_positive(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f'expected a positive duration like "10s", got {_show(value)}')
    return seconds


QUEUE_SCHEMES = {"redis": 6379, "rediss": 6379, "amqp": 5672, "amqps": 5671}
"""Targets a Python plan may name when it only publishes to a queue (their default ports)."""


def _target(value: object, *, queues: bool = False, websocket: bool = False) -> str:
    text = _text(value)
    parts = urlsplit(text)
    schemes = ("http", "https", *QUEUE_SCHEMES) if queues else ("http", "https")
    if websocket:
        schemes = ("ws", "wss", "http", "https")
    if parts.scheme not in schemes or not parts.hostname:
        queue = " (or a queue's redis:// or amqp:// URL)" if queues else ""
        queue = " (or ws:// or wss://)" if websocket else queue
        raise ValueError(
            f'expected an http:// or https:// URL like "http://127.0.0.1:8080"{queue}, '
            f"got {_show(value)}"
        )
    try:
        _ = parts.port
    except ValueError:
        raise ValueError(f"expected a valid port in {_show(value)}") from None
    return text.rstrip("/")
