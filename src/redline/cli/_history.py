"""``redline history PLAN``: one metric across stored runs, with its change points."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from redline.analysis import ChangePoint, change_points
from redline.core import StoreError
from redline.store import RunInfo, parse_labels, parse_time

from . import _exit
from ._console import error, stdout_console
from ._store import add_store_option, reading_store

__all__ = ["HISTORY_METRICS", "add_history_parser", "metric_of"]

HISTORY_METRICS = ("p50", "p90", "p95", "p99", "p999", "max", "mean", "error_ratio", "rps")


def add_history_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline history``."""
    parser = subparsers.add_parser(
        "history",
        help="a metric across stored runs of a plan, with change points",
        description="Show a metric across the stored, finished runs of a plan (oldest "
        "first) and mark where it changed (E-divisive means, permutation-tested).",
    )
    parser.add_argument("plan", help="the plan's name")
    parser.add_argument(
        "--metric", default="p99", choices=HISTORY_METRICS, help="what to follow (default p99)"
    )
    parser.add_argument("--endpoint", help="one endpoint instead of all traffic")
    parser.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="only runs with it"
    )
    parser.add_argument("--since", metavar="WHEN", help='runs started at or after: "7d", a date')
    parser.add_argument("--limit", type=int, default=200, help="the newest N runs (default 200)")
    parser.add_argument(
        "--min-size", type=int, default=3, help="fewest runs between changes (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_store_option(parser)
    parser.set_defaults(handler=history_command)


def metric_of(summary: Mapping[str, Any], metric: str, endpoint: str | None) -> float | None:
    """``metric`` from a stored run summary, for all traffic or one endpoint."""
    totals = summary.get("summary", {})
    data = totals.get("endpoints", {}).get(endpoint) if endpoint else totals.get("total")
    if not data or not data.get("requests"):
        return None
    if metric == "error_ratio":
        return float(data["errors"] / data["requests"])
    if metric == "rps":
        return float(data["rps"])
    return float(data["latency_ms"][metric])


def history_command(args: argparse.Namespace) -> int:
    """Carry out ``redline history``."""
    try:
        labels = parse_labels(args.label)
        since = parse_time(args.since) if args.since else None
        if args.min_size < 2:
            raise ValueError(f"--min-size: expected at least 2, got {args.min_size}")
        with reading_store(args.store) as store:
            infos = store.runs(plan=args.plan, labels=labels, since=since, limit=args.limit)
    except (StoreError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    points: list[tuple[RunInfo, float]] = []
    for info in reversed(infos):  # oldest first
        value = metric_of(info.summary, args.metric, args.endpoint) if info.summary else None
        if value is not None and info.complete:
            points.append((info, value))
    if not points:
        error(f"no finished runs of plan {args.plan!r} with a {args.metric} to show")
        return _exit.USAGE
    changes = change_points([v for _, v in points], min_size=args.min_size)
    if args.json:
        print(json.dumps(_document(args, points, changes), indent=1))
        return _exit.OK
    console = stdout_console()
    console.print(_table(args, points, changes))
    if not changes:
        console.print(f"no change points in {len(points)} runs", highlight=False)
    for change in changes:
        run = points[change.index][0]
        console.print(
            f"change at run {run.id}: {args.metric} {change.before:,.4g} -> "
            f"{change.after:,.4g} ({change.change:+.1%}, p={change.p_value:.3f})",
            style="bold",
            highlight=False,
        )
    return _exit.OK


def _document(
    args: argparse.Namespace, points: list[tuple[RunInfo, float]], changes: list[ChangePoint]
) -> dict[str, Any]:
    return {
        "plan": args.plan,
        "metric": args.metric,
        "endpoint": args.endpoint,
        "runs": [
            {"id": info.id, "started_at": info.started_at, "labels": dict(info.labels), "value": v}
            for info, v in points
        ],
        "change_points": [
            {
                "run": points[c.index][0].id,
                "index": c.index,
                "before": c.before,
                "after": c.after,
                "change": c.change,
                "p_value": c.p_value,
            }
            for c in changes
        ],
    }


def _table(
    args: argparse.Namespace, points: list[tuple[RunInfo, float]], changes: list[ChangePoint]
) -> Table:
    scope = args.endpoint or "all traffic"
    table = Table(
        title=f"{args.metric} of plan {args.plan} ({scope}), oldest first", title_justify="left"
    )
    table.add_column("run (started, UTC)", no_wrap=True)
    table.add_column("labels", overflow="fold")
    table.add_column(args.metric, justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("change", overflow="fold")
    at = {c.index: c for c in changes}
    low, high = min(v for _, v in points), max(v for _, v in points)
    for index, (info, value) in enumerate(points):
        bar = "#" * (1 + round(19 * (value - low) / (high - low))) if high > low else "#"
        change = at.get(index)
        table.add_row(
            info.id,
            " ".join(f"{k}={v}" for k, v in info.labels.items()),
            f"{value:,.4g}",
            bar,
            Text(f"{change.change:+.1%} from here", style="bold yellow") if change else "",
        )
    return table
