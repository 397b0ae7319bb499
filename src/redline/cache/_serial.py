"""How values travel to Redis: JSON by default, msgpack when installed, pickle only on request.

pickle runs code from the bytes it reads: anyone who can write to the Redis can run code
in every process that reads from it, so it is never a default, and must be named.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Protocol

__all__ = ["JSON", "PICKLE", "Serializer", "msgpack_serializer", "serializer"]


class Serializer(Protocol):
    """Turns values into bytes and back."""

    name: str

    def dumps(self, value: Any) -> bytes:
        """Bytes for ``value``."""

    def loads(self, data: bytes) -> Any:
        """The value of ``data``."""


class _Json:
    """Serializes values as UTF-8 JSON."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class _Pickle:
    """Serializes values with pickle (the highest protocol)."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)  # only by explicit opt-in (see the module)


class _Msgpack:
    name = "msgpack"

    def __init__(self) -> None:
        import msgpack  # type: ignore[import-untyped,import-not-found,unused-ignore]

        self._packb = msgpack.packb
        self._unpackb = msgpack.unpackb

    def dumps(self, value: Any) -> bytes:
        data: bytes = self._packb(value, use_bin_type=True)
        return data

    def loads(self, data: bytes) -> Any:
        return self._unpackb(data, raw=False)


JSON: Serializer = _Json()
"""Values as JSON (text, safe to share across languages); the default."""
PICKLE: Serializer = _Pickle()
"""Values as pickles (any Python object; only for caches no untrusted writer can reach)."""


def msgpack_serializer() -> Serializer:
    """The msgpack serializer (the ``msgpack`` package must be installed).

    Raises:
        ImportError: msgpack is not installed.
    """
    return _Msgpack()


def serializer(name: str) -> Serializer:
    """The serializer called ``name``: ``json``, ``msgpack`` or ``pickle``.

    Raises:
        ValueError: another name; ImportError: msgpack asked for and not installed.
    """
    if name == "json":
        return JSON
    if name == "msgpack":
        return msgpack_serializer()
    if name == "pickle":
        return PICKLE
    raise ValueError(f"serializer must be json, msgpack or pickle, got {name!r}")
