"""What the HTML report draws of the target: saturation series, the USE table, flamegraphs.

Saturation series share the run's time axis (each sample sits at its interval's start),
so the page draws them under the latency chart and zooms them together. Stacks are sent
folded (``frame;frame`` to counts), the largest first, at most :data:`MAX_STACKS` of them;
the page builds the flamegraph from them, and a differential one against a baseline's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from redline.core import RunResult, TargetProfile, TargetReport

from ._target import use_cells

__all__ = ["MAX_STACKS", "grown_functions", "target_data"]

_COUNTED = ("_total", "_count", "_sum")  # counters: amounts per interval, not levels

MAX_STACKS = 1500
"""The most stacks a flamegraph is sent; the rest are counted as ``(other stacks)``."""

# (chart, metric, scale): the figures the page charts, and what they are divided by
_CHARTS: tuple[tuple[str, str, float], ...] = (
    ("cpu", "cpu_pct", 1.0),
    ("memory", "rss_bytes", 1024 * 1024),
    ("memory", "memory_bytes", 1024 * 1024),
    ("pressure", "cpu_some_pct", 1.0),
    ("pressure", "memory_some_pct", 1.0),
    ("pressure", "io_some_pct", 1.0),
    ("throttling", "throttled_s", 1.0),
    ("threads", "threads", 1.0),
    ("threads", "sockets_established", 1.0),
    ("network", "listen_overflows", 1.0),
    ("network", "tcp_retransmits", 1.0),
)


_LINE = re.compile(r":\d+\)$")


def _folded(stacks: Mapping[str, int]) -> dict[str, int]:
    # a flamegraph's frame is a function, not a line: lines of one function merge
    merged: Counter[str] = Counter()
    for stack, count in stacks.items():
        merged[";".join(_LINE.sub(")", frame) for frame in stack.split(";"))] += count
    ranked = sorted(merged.items(), key=lambda item: -item[1])
    kept = dict(ranked[:MAX_STACKS])
    rest = sum(count for _, count in ranked[MAX_STACKS:])
    if rest:
        kept["(other stacks)"] = rest
    return kept


def _profile(profile: TargetProfile) -> dict[str, Any]:
    return {
        "samples": profile.samples,
        "waiting_samples": profile.waiting_samples,
        "window_s": list(profile.window_s),
        "rate_hz": profile.rate_hz,
        "top": [vars_of(f) for f in profile.top[:15]],
        "waiting_top": [vars_of(f) for f in profile.waiting_top[:15]],
        "folded": _folded(profile.folded),
        "waiting_folded": _folded(profile.waiting_folded),
        "waits": dict(profile.waits),
        "note": profile.note,
    }


def vars_of(function: Any) -> dict[str, Any]:
    """A profile function as plain data."""
    return {
        "function": function.function,
        "file": function.file,
        "line": function.line,
        "self_pct": function.self_pct,
        "total_pct": function.total_pct,
    }


def grown_functions(
    profile: TargetProfile, baseline: TargetProfile, *, limit: int = 10
) -> list[dict[str, Any]]:
    """The functions whose share of on-CPU samples grew most from ``baseline``."""
    before = {(f.function, f.file): f for f in baseline.top}
    rows: list[dict[str, Any]] = []
    for function in profile.top:
        old = before.get((function.function, function.file))
        old_total = old.total_pct if old is not None else 0.0
        old_self = old.self_pct if old is not None else 0.0
        rows.append(
            {
                "function": function.function,
                "file": function.file,
                "line": function.line,
                "total_pct": function.total_pct,
                "baseline_total_pct": old_total,
                "change_pct": round(function.total_pct - old_total, 2),
                "self_change_pct": round(function.self_pct - old_self, 2),
            }
        )
    rows.sort(key=lambda r: -r["change_pct"])
    return [r for r in rows if r["change_pct"] > 0][:limit]


def target_data(
    target: TargetReport, result: RunResult, *, baseline: TargetReport | None = None
) -> dict[str, Any]:
    """The page's ``target`` document."""
    starts = {i.index: i.start_s for i in result.intervals}
    charts: dict[str, list[dict[str, Any]]] = {}
    for thing in target.watched:
        for chart, metric, scale in _CHARTS:
            pairs = [
                (starts[i], None if v is None else v / scale)
                for i, v in target.series(thing.name, metric)
                if i in starts
            ]
            if any(v is not None for _, v in pairs):
                charts.setdefault(chart, []).append(
                    {
                        "name": f"{thing.name} {metric}",
                        "x": [t for t, _ in pairs],
                        "y": [v for _, v in pairs],
                    }
                )
        if thing.kind == "prometheus":  # the endpoint's own gauges, a few
            names = sorted(
                {
                    k
                    for s in target.samples.get(thing.name, ())
                    for k in s
                    if k != "interval" and not k.split("{")[0].endswith(_COUNTED)
                }
            )
            for name in names[:8]:
                pairs = [(starts[i], v) for i, v in target.series(thing.name, name) if i in starts]
                charts.setdefault("metrics", []).append(
                    {"name": name, "x": [t for t, _ in pairs], "y": [v for _, v in pairs]}
                )
    data: dict[str, Any] = {
        "verdict": (
            {"bottleneck": target.verdict.bottleneck, "evidence": target.verdict.evidence}
            if target.verdict is not None
            else None
        ),
        "use": [use_cells(row) for row in target.use],
        "charts": charts,
        "profile": _profile(target.profile) if target.profile is not None else None,
        "cost": None,
        "growth": None,
        "notes": list(target.notes),
    }
    if target.cost is not None:
        data["cost"] = {
            "cpu_ms": (target.cost.cpu_s_per_request or 0) * 1000,
            "gib_ms": (target.cost.memory_gib_s_per_request or 0) * 1000,
            "per_million": target.cost.per_million,
        }
    if target.memory_growth is not None:
        growth = target.memory_growth
        data["growth"] = {
            "thing": growth.thing,
            "mib_per_min": growth.slope_bytes_per_s * 60 / 1024 / 1024,
            "low": growth.low * 60 / 1024 / 1024,
            "high": growth.high * 60 / 1024 / 1024,
            "growing": growth.growing,
        }
    if baseline is not None and baseline.profile is not None and target.profile is not None:
        data["baseline_profile"] = _profile(baseline.profile)
        data["grown"] = grown_functions(target.profile, baseline.profile)
    return data
