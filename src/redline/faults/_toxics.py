"""Toxics: what a fault proxy does to the bytes of a connection, with Toxiproxy's semantics.

Each toxic acts on one direction of every connection through its proxy: ``downstream``
(from the upstream server back to the client, the default) or ``upstream`` (from the
client to the server). ``toxicity`` is the probability that a connection gets the toxic,
rolled once per connection and toxic. Attributes, by type (times in milliseconds unless
said, as in Toxiproxy):

- ``latency``: ``latency``, ``jitter``: each chunk waits latency +- a uniform jitter
  after it arrived (chunks keep their order; delays do not add up).
- ``bandwidth``: ``rate`` in KB/s (1 KB = 1000 bytes): chunks are paced to that rate.
- ``slow_close``: ``delay``: the close of the stream waits that long.
- ``timeout``: ``timeout``: no data passes, and the connection is closed that long after
  the toxic starts on it (0: never closed; data is dropped until the toxic goes).
- ``reset_peer``: ``timeout``: the connection is reset (a TCP RST) that long after the
  toxic starts on it (0: at once).
- ``slicer``: ``average_size``, ``size_variation`` (bytes), ``delay`` (microseconds):
  chunks are cut into pieces of average_size +- size_variation, with a delay between.
- ``limit_data``: ``bytes``: the connection is closed once that many bytes have passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import FaultError

__all__ = ["STREAMS", "TOXIC_TYPES", "Toxic", "ToxicError"]

STREAMS = ("upstream", "downstream")
"""The directions a toxic can act on: towards the upstream, or back to the client."""

# type -> attribute -> default (Toxiproxy's for its types; a string default: a text one)
TOXIC_TYPES: Mapping[str, Mapping[str, int | str]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    # HTTP-level (redline's own; see _http.py)
    "http_status": {"status": 503, "rate": 1, "path": ""},
    "http_delay": {"delay": 0, "path": ""},
    "http_header": {"name": "", "value": "", "path": ""},
    "http_truncate": {"bytes": 0, "path": ""},
}
"""Each toxic type and its attributes with their defaults (Toxiproxy's, then HTTP toxics)."""


class ToxicError(FaultError, ValueError):
    """A toxic that cannot be made: unknown type or stream, or a bad attribute."""


@dataclass(frozen=True)
class Toxic:
    """One toxic of a proxy (Toxiproxy's JSON form: :meth:`to_dict`, :meth:`from_dict`)."""

    type: str
    name: str = ""
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: Mapping[str, float | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TOXIC_TYPES:
            raise ToxicError(
                f"invalid toxic type {self.type!r} (expected one of {', '.join(TOXIC_TYPES)})"
            )
        if self.stream not in STREAMS:
            raise ToxicError(f"invalid stream {self.stream!r} (expected upstream or downstream)")
        if not 0.0 <= self.toxicity <= 1.0:
            raise ToxicError(f"toxicity must be within 0..1, got {self.toxicity}")
        known = TOXIC_TYPES[self.type]
        merged: dict[str, float | str] = dict(known)
        for key, value in self.attributes.items():
            if key not in known:
                raise ToxicError(
                    f"{self.type} has no attribute {key!r} (expected {', '.join(known)})"
                )
            if isinstance(known[key], str):
                if not isinstance(value, str):
                    raise ToxicError(f"{self.type}.{key} must be text, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ToxicError(f"{self.type}.{key} must be a number >= 0, got {value!r}")
            merged[key] = value
        _check_http(self.type, merged)
        object.__setattr__(self, "attributes", merged)
        if not self.name:
            object.__setattr__(self, "name", f"{self.type}_{self.stream}")

    def attribute(self, key: str) -> float:
        """One numeric attribute's value."""
        return float(self.attributes[key])

    def to_dict(self) -> dict[str, Any]:
        """Toxiproxy's JSON form of a toxic."""
        return {
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": {k: _plain(v) for k, v in self.attributes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Toxic:
        """A toxic from Toxiproxy's JSON form (``type`` required, the rest defaulted).

        Raises:
            ToxicError: a missing type, or any of the reasons the constructor refuses.
        """
        if not isinstance(data, Mapping) or "type" not in data:
            raise ToxicError("a toxic needs a type")
        attributes = data.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise ToxicError("attributes must be an object")
        toxicity = data.get("toxicity", 1.0)
        if isinstance(toxicity, bool) or not isinstance(toxicity, int | float):
            raise ToxicError(f"toxicity must be a number, got {toxicity!r}")
        return cls(
            type=str(data["type"]),
            name=str(data.get("name") or ""),
            stream=str(data.get("stream") or "downstream"),
            toxicity=float(toxicity),
            attributes=dict(attributes),
        )

    def updated(self, data: Mapping[str, Any]) -> Toxic:
        """A copy with the fields and attributes in ``data`` changed (a live update)."""
        attributes = {**self.attributes, **(data.get("attributes") or {})}
        toxicity = data.get("toxicity", self.toxicity)
        return Toxic(
            type=self.type,
            name=self.name,
            stream=str(data.get("stream", self.stream)),
            toxicity=float(toxicity),
            attributes=attributes,
        )


def _check_http(kind: str, attributes: Mapping[str, float | str]) -> None:
    if kind == "http_header" and not attributes["name"]:
        raise ToxicError("http_header needs the name of the header")
    if kind == "http_status":
        if not 100 <= float(attributes["status"]) <= 599:
            raise ToxicError(f"http_status.status must be 100..599, got {attributes['status']}")
        if not 0 <= float(attributes["rate"]) <= 1:
            raise ToxicError(f"http_status.rate must be within 0..1, got {attributes['rate']}")


def _plain(value: float | str) -> int | float | str:
    if isinstance(value, str):
        return value
    return int(value) if float(value).is_integer() else value
