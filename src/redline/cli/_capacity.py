"""``redline capacity``: replay a demand trace against autoscaling policies, and tune them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.table import Table

from redline.capacity import (
    DemandTrace,
    FleetModel,
    Policy,
    demand_from_prometheus,
    hpa_of_policy,
    load_access_log,
    load_demand,
    load_policies,
    recommend,
    replay,
)
from redline.core import RedlineError, parse_duration, parse_rate
from redline.report import replay_html, write_text

from . import _exit
from ._console import error, stdout_console

__all__ = ["add_capacity_parser"]


def add_capacity_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline capacity``."""
    parser = subparsers.add_parser(
        "capacity", help="replicas and autoscaling policies, from measurements"
    )
    commands = parser.add_subparsers(dest="capacity_command", required=True)
    replayed = commands.add_parser(
        "replay",
        help="replay a demand trace against autoscaling policies and score each",
        description="Simulate a fleet of replicas of measured capacity scaled by each "
        "policy (an autoscaling/v2 HorizontalPodAutoscaler, a KEDA ScaledObject, or "
        "redline's StepScaling and PredictiveScaling) through a demand trace, and score "
        "SLO-violation minutes, SPEC RG elasticity, scale events, replica-hours and cost.",
    )
    _trace_options(replayed)
    replayed.add_argument(
        "--policy",
        action="append",
        required=True,
        type=Path,
        help="a policy manifest (YAML; several documents, or --policy again, for several)",
    )
    _model_options(replayed)
    replayed.add_argument("--out", type=Path, help="write replay.json (ticks and scores)")
    replayed.add_argument("--csv", type=Path, help="write every tick of every policy as CSV")
    replayed.add_argument("--html", type=Path, help="write a report with a chart per policy")
    replayed.set_defaults(handler=replay_command)

    tuned = commands.add_parser(
        "recommend",
        help="search HPA parameters that keep SLO violations within a bound, cheapest first",
        description="Replay a grid of HPA parameters (target, scale-down window, scale-up "
        "rule, minReplicas) over the trace; feasible candidates first, then the cheapest, "
        "and the least risky within --tolerance of the cheapest.",
    )
    _trace_options(tuned)
    _model_options(tuned)
    tuned.add_argument(
        "--max-violation-minutes", type=float, required=True, help="the SLO-violation bound"
    )
    tuned.add_argument(
        "--metric", choices=("requests", "cpu"), default="requests",
        help="scale on requests per replica (a Pods metric) or CPU utilisation",
    )  # fmt: skip
    tuned.add_argument(
        "--min-replicas", type=int, action="append", help="minReplicas to try (default 1)"
    )
    tuned.add_argument("--max-replicas", type=int, default=100, help="maxReplicas (default 100)")
    tuned.add_argument(
        "--baseline", type=Path, help="the HPA manifest in use, to compare the pick with"
    )
    tuned.add_argument(
        "--tolerance", type=float, default=0.05,
        help="how much dearer than the cheapest the least risky pick may be (default 0.05)",
    )  # fmt: skip
    tuned.add_argument("--out", type=Path, help="write every candidate and the pick as JSON")
    tuned.set_defaults(handler=recommend_command)


def _trace_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "trace", nargs="?", type=Path,
        help="a CSV with columns time_s,rate (or an access log with --access-log)",
    )  # fmt: skip
    parser.add_argument(
        "--access-log", action="store_true",
        help="the trace is an access log (common or combined format): requests per --step",
    )  # fmt: skip
    parser.add_argument("--prometheus", metavar="URL", help="take the trace from Prometheus")
    parser.add_argument("--query", help="the range query giving requests per second")
    parser.add_argument("--start", type=float, help="the query's start (Unix seconds)")
    parser.add_argument("--end", type=float, help="the query's end (Unix seconds)")
    parser.add_argument("--step", default="10s", help="the trace's step (default 10s)")


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--capacity", required=True,
        help="requests per second one replica serves within the SLO (its redline), e.g. 100/s",
    )  # fmt: skip
    parser.add_argument("--saturation", help="the most one replica serves (default: --capacity)")
    parser.add_argument(
        "--startup", default="30s", help="from asking for a replica to it serving (default 30s)"
    )
    parser.add_argument(
        "--cpu-request", type=int, default=1000, help="each replica's CPU request, millicores"
    )
    parser.add_argument(
        "--cpu-per-request", type=float,
        help="CPU seconds per request (default: the request's CPU spent at --capacity)",
    )  # fmt: skip
    parser.add_argument("--metric-window", default="30s", help="metrics averaging window")
    parser.add_argument("--metric-resolution", default="15s", help="metrics scrape period")
    parser.add_argument("--price", type=float, default=0.0, help="price per replica-hour")
    parser.add_argument("--replicas", type=int, help="replicas at the start (default: as needed)")


def _trace(args: argparse.Namespace) -> DemandTrace:
    step = parse_duration(args.step)
    if args.prometheus:
        if not args.query or args.start is None or args.end is None:
            raise ValueError("--prometheus needs --query, --start and --end")
        return demand_from_prometheus(
            args.prometheus, args.query, start=args.start, end=args.end, step_s=step
        )
    if args.trace is None:
        raise ValueError("give a trace file (or --prometheus URL --query ...)")
    if args.access_log:
        return load_access_log(args.trace, step_s=step)
    return load_demand(args.trace)


def _model(args: argparse.Namespace) -> FleetModel:
    capacity = parse_rate(args.capacity)
    return FleetModel(
        capacity_rps=capacity,
        saturation_rps=parse_rate(args.saturation) if args.saturation else None,
        cpu_per_request_s=args.cpu_per_request,
        cpu_request_milli=args.cpu_request,
        startup_s=parse_duration(args.startup),
        metric_window_s=parse_duration(args.metric_window),
        metric_resolution_s=parse_duration(args.metric_resolution),
        price_per_replica_hour=args.price,
        initial_replicas=args.replicas,
    )


def replay_command(args: argparse.Namespace) -> int:
    """Carry out ``redline capacity replay``."""
    try:
        trace = _trace(args)
        model = _model(args)
        policies: list[Policy] = []
        for path in args.policy:
            policies.extend(
                load_policies(path, capacity_rps=model.capacity_rps, startup_s=model.startup_s)
            )
        replays = [replay(trace, policy, model) for policy in policies]
    except (RedlineError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    console = stdout_console()
    console.print(
        f"trace {trace.source}: {trace.duration_s / 3600:.1f} h at {trace.resolution_s:g} s, "
        f"peak {trace.peak:,.0f}/s; one replica holds the SLO up to "
        f"{model.capacity_rps:,.0f}/s, serves after {model.startup_s:g} s",
        highlight=False,
    )
    table = Table(title="replay", title_justify="left")
    for header in ("policy", "SLO violation", "replica-hours", "cost", "scale events",
                   "under %", "over %", "under time %", "max replicas"):  # fmt: skip
        table.add_column(header, justify="left" if header == "policy" else "right")
    for r in replays:
        s = r.scores
        table.add_row(
            r.policy, f"{s.violation_minutes:.1f} min", f"{s.replica_hours:,.1f}",
            f"{s.cost:,.2f}", str(s.scale_events), f"{s.under_accuracy:.1f}",
            f"{s.over_accuracy:.1f}", f"{s.under_timeshare:.1f}", str(s.max_replicas),
        )  # fmt: skip
    console.print(table)
    for note in {n for r in replays for n in r.notes}:
        console.print(f"note: {note}", style="yellow", highlight=False)
    document = {
        "trace": {
            "source": trace.source,
            "duration_s": trace.duration_s,
            "resolution_s": trace.resolution_s,
            "peak_rps": trace.peak,
            "gaps": [list(g) for g in trace.gaps],
        },
        "model": model.to_dict(),
        "ticks": replays[0].ticks(),
        "scores": replays[0].scores.to_dict(),
        "policies": [r.to_dict() for r in replays],
    }
    try:
        if args.out is not None:
            write_text(json.dumps(document, indent=1), args.out)
        if args.csv is not None:
            lines = ["policy," + replays[0].csv().splitlines()[0]]
            for r in replays:
                lines += [f"{r.policy},{row}" for row in r.csv().splitlines()[1:]]
            write_text("\n".join(lines) + "\n", args.csv)
        if args.html is not None:
            write_text(replay_html(document), args.html)
    except OSError as exc:
        error(f"cannot write {exc.filename!r}: {exc.strerror}")
        return _exit.USAGE
    return _exit.OK


def recommend_command(args: argparse.Namespace) -> int:
    """Carry out ``redline capacity recommend``."""
    try:
        trace = _trace(args)
        model = _model(args)
        baseline = None
        if args.baseline is not None:
            (policy, *_) = load_policies(
                args.baseline, capacity_rps=model.capacity_rps, startup_s=model.startup_s
            )
            baseline = hpa_of_policy(policy, source=str(args.baseline))
        result = recommend(
            trace,
            model,
            max_violation_minutes=args.max_violation_minutes,
            min_replicas=tuple(args.min_replicas or (1,)),
            max_replicas=args.max_replicas,
            metric=args.metric,
            baseline=baseline,
            tolerance=args.tolerance,
        )
    except (RedlineError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    console = stdout_console()
    table = Table(title="candidates, feasible and cheapest first", title_justify="left")
    for header in ("candidate", "SLO violation", "replica-hours", "scale events", "verdict"):
        table.add_column(header, justify="left" if header in ("candidate", "verdict") else "right")
    shown = list(result.candidates[:12])
    if result.baseline is not None:
        shown.append(result.baseline)
    for c in shown:
        table.add_row(
            c.name, f"{c.scores.violation_minutes:.1f} min", f"{c.scores.replica_hours:,.1f}",
            str(c.scores.scale_events), c.why,
            style="green" if c is result.best else None,
        )  # fmt: skip
    console.print(table)
    if len(result.candidates) > 12:
        console.print(f"... and {len(result.candidates) - 12} more (--out has them all)")
    if result.best is not None:
        console.print(f"recommended: {result.best.name}", style="bold green", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", style="yellow", highlight=False)
    if args.out is not None:
        try:
            write_text(json.dumps(result.to_dict(), indent=1), args.out)
        except OSError as exc:
            error(f"--out: cannot write {str(args.out)!r}: {exc.strerror}")
            return _exit.USAGE
    return _exit.OK if result.best is not None else _exit.FAILED
