"""One codec for the core's frozen dataclasses: plain JSON data out, typed values back.

``to_data`` walks a dataclass field by field (tuples become lists, mappings dicts); a
field's ``metadata`` may rename its key (``{"key": "objective"}``) or leave it out when it
holds its default (``{"omit_default": True}``). ``from_data`` reads the same shape back
by the fields' type annotations, so a document written by an older version, which lacks
newer fields, still loads: a missing field takes its default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar, Union

__all__ = ["from_data", "to_data"]

T = TypeVar("T")


def to_data(value: Any) -> Any:
    """``value`` as JSON-ready data (dicts, lists, strings, numbers, booleans, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        encode = getattr(value, "__data__", None)
        if encode is not None:
            return encode()
        out: dict[str, Any] = {}
        for field in dataclasses.fields(value):
            if not field.init or field.metadata.get("skip"):
                continue
            item = getattr(value, field.name)
            if field.metadata.get("omit_default") and item == _default(field):
                continue
            out[field.metadata.get("key", field.name)] = to_data(item)
        return out
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    return value


def from_data(cls: type[T], data: Any, *, path: str = "$") -> T:
    """Rebuild a ``cls`` from :func:`to_data` output.

    Raises:
        ValueError: ``data`` does not fit ``cls``; the message names the path inside it
            (``$.plan.load.rate``) and what was expected there.
    """
    result: T = _read(cls, data, path)
    return result


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _read(kind: Any, data: Any, path: str) -> Any:
    if kind is Any or kind is object:
        return data
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is Union or origin is types.UnionType:
        if data is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        problems = []
        for option in options:
            try:
                return _read(option, data, path)
            except ValueError as exc:
                problems.append(str(exc))
        raise ValueError(problems[0] if len(problems) == 1 else f"{path}: {data!r} fits no type")
    if origin is typing.Literal:
        if data not in args:
            raise ValueError(f"{path}: expected one of {', '.join(map(repr, args))}, got {data!r}")
        return data
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        decode = getattr(kind, "__from_data__", None)
        if decode is not None:
            return decode(data)
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected an object, got {data!r}")
        hints = _hints(kind)
        values: dict[str, Any] = {}
        for field in dataclasses.fields(kind):
            if not field.init or field.metadata.get("skip"):
                continue
            key = field.metadata.get("key", field.name)
            if key not in data:
                if _default(field) is dataclasses.MISSING:
                    raise ValueError(f"{path}.{key}: missing")
                continue
            values[field.name] = _read(hints[field.name], data[key], f"{path}.{key}")
        made: Any = kind(**values)
        return made
    if origin is tuple:
        if not isinstance(data, list | tuple):
            raise ValueError(f"{path}: expected a list, got {data!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_read(args[0], v, f"{path}[{i}]") for i, v in enumerate(data))
        if len(args) != len(data):
            raise ValueError(f"{path}: expected {len(args)} items, got {len(data)}")
        return tuple(
            _read(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, data, strict=True))
        )
    if origin in (Mapping, dict, typing.Mapping) or kind is dict:
        if not isinstance(data, Mapping):
            raise ValueError(f"{path}: expected an object, got {data!r}")
        key_kind, value_kind = args or (Any, Any)
        return {
            _key(key_kind, k, path): _read(value_kind, v, f"{path}.{k}") for k, v in data.items()
        }
    if origin is list or kind is list:
        if not isinstance(data, list | tuple):
            raise ValueError(f"{path}: expected a list, got {data!r}")
        (item,) = args or (Any,)
        return [_read(item, v, f"{path}[{i}]") for i, v in enumerate(data)]
    if kind is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise ValueError(f"{path}: expected a number, got {data!r}")
        return float(data)
    if kind is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise ValueError(f"{path}: expected a whole number, got {data!r}")
        return data
    if kind in (str, bool):
        if not isinstance(data, kind):
            raise ValueError(f"{path}: expected a {kind.__name__}, got {data!r}")
        return data
    return data


def _key(kind: Any, key: str, path: str) -> Any:
    if kind is int:
        try:
            return int(key)
        except ValueError:
            raise ValueError(f"{path}: expected whole-number keys, got {key!r}") from None
    return key
