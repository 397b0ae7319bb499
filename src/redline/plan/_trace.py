"""A plan's ``trace:``: W3C trace context on its requests, and where spans come back.

    trace:
      sample: 0.01          # this share of requests is kept whatever its latency
      slowest: 5            # and the slowest 5 per endpoint per interval
      failed: 20            # and up to 20 failed ones per interval
      otlp: 127.0.0.1:4318  # the OTLP/HTTP receiver the target exports to (or --otlp)
      wait: 5s              # after the load, how long to wait for the last spans

``trace: true`` takes those defaults. Every request carries a ``traceparent`` (sampled),
so a target that continues the trace records it; redline keeps the spans of the requests
above and joins them to its own by trace id.
"""

from __future__ import annotations

from dataclasses import dataclass

from redline.core import parse_duration
from redline.http import parse_address

from ._node import _fraction, _Node, _non_negative_int, _text

__all__ = ["TracePlan", "parse_trace"]


@dataclass(frozen=True)
class TracePlan:
    """Everything under ``trace:`` (``enabled`` is False without the section).

    Attributes:
        enabled: whether requests carry trace context.
        sample: the share of requests kept whatever their latency (0-1).
        slowest: the slowest requests kept per endpoint per interval.
        failed: the failed requests kept per interval, at most.
        otlp: ``host:port`` of the OTLP/HTTP receiver redline runs during the load.
        wait_s: how long to wait after the load for spans still on their way.
    """

    enabled: bool = False
    sample: float = 0.01
    slowest: int = 5
    failed: int = 20
    otlp: str | None = None
    wait_s: float = 5.0

    @property
    def every(self) -> int:
        """Keep one request in this many whatever its latency (0: none)."""
        return round(1 / self.sample) if self.sample > 0 else 0


def _otlp(value: object) -> str:
    text = _text(value)
    parse_address(text, default_host="127.0.0.1")
    return text


def parse_trace(root: _Node) -> TracePlan:
    """The plan's ``trace:`` section."""
    value = root.value.get("trace")
    if value is None or value is False:
        return TracePlan()
    if value is True:
        return TracePlan(enabled=True)
    node = _Node(value, root.child_path("trace"), root.source)
    node.check_keys(("sample", "slowest", "failed", "otlp", "wait"))
    return TracePlan(
        enabled=True,
        sample=node.get("sample", _fraction, 0.01),
        slowest=node.get("slowest", _non_negative_int, 5),
        failed=node.get("failed", _non_negative_int, 20),
        otlp=node.get("otlp", _otlp, None),
        wait_s=node.get("wait", parse_duration, 5.0),
    )
