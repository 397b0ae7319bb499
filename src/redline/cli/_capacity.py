"""``redline capacity``: replay a demand trace against autoscaling policies, and tune them."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

import yaml
from rich.table import Table

from redline.capacity import (
    DemandTrace,
    FleetModel,
    Policy,
    Workload,
    demand_from_prometheus,
    fit_scaling,
    hpa_of_policy,
    load_access_log,
    load_demand,
    load_policies,
    manifests_yaml,
    parse_quantity_milli,
    policy_from_manifest,
    recommend,
    replay,
    replica_model_from_find,
    rightsize,
    size_fleet,
)
from redline.core import RedlineError, StoreError, parse_duration, parse_objective, parse_rate
from redline.plan import ServeSpec
from redline.report import replay_html, write_text
from redline.runner import as_plan, find

from . import _exit
from ._console import error, stdout_console
from ._fleet import add_fleet_parsers
from ._store import add_store_option, reading_store

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

    sized = commands.add_parser(
        "size",
        help="replicas that hold the SLO at a peak, with spares and zones, and their cost",
        description="From one replica's redline find result: replicas for the peak by the "
        "measured capacity (its 95%% lower bound), an M/M/c queue per replica (Erlang C) "
        "and the scaling law across replicas; then spares and zone headroom.",
    )
    sized.add_argument("--find", type=Path, required=True, help="redline find --out JSON")
    peak = sized.add_mutually_exclusive_group(required=True)
    peak.add_argument("--peak", help="the forecast peak, e.g. 5000/s")
    peak.add_argument("--trace", type=Path, help="a demand trace (time_s,rate): its peak")
    sized.add_argument("--slo", help='the latency objective, e.g. "p99 < 100ms" (default: find\'s)')
    sized.add_argument("--spare", type=int, default=0, help="replicas one may lose (default 0)")
    sized.add_argument("--zones", type=int, default=1, help="zones to survive losing one of")
    sized.add_argument("--sigma", type=float, default=0.0, help="USL contention across replicas")
    sized.add_argument("--kappa", type=float, default=0.0, help="USL coherency across replicas")
    sized.add_argument(
        "--service-cv", type=float, default=1.0,
        help="service time's coefficient of variation (1: exponential)",
    )  # fmt: skip
    sized.add_argument(
        "--optimistic", action="store_true",
        help="size on the measured redline, not its 95%% lower bound",
    )  # fmt: skip
    sized.add_argument("--price", type=float, default=0.0, help="price per replica-hour")
    sized.add_argument("--out", type=Path, help="write the plan as JSON")
    sized.set_defaults(handler=size_command)

    right = commands.add_parser(
        "rightsize",
        help="CPU and memory requests and limits from what watched runs used (VPA-style)",
        description="From the target samples of stored runs (run with --serve or --observe): "
        "CPU request at a percentile of use plus a margin, memory from the peak plus the "
        "margin (an OOM bumps it), and what the change saves.",
    )
    right.add_argument("runs", nargs="+", help="stored run ids (or unique prefixes)")
    right.add_argument("--cpu-percentile", type=float, default=90.0)
    right.add_argument("--margin", type=float, default=0.15, help="safety margin (0.15: 15%%)")
    right.add_argument("--current-cpu", help="the CPU request in use, e.g. 1000m")
    right.add_argument("--current-memory", help="the memory request in use, e.g. 1Gi")
    right.add_argument("--replicas", type=int, default=1)
    right.add_argument("--price-vcpu-hour", type=float, default=0.0)
    right.add_argument("--price-gib-hour", type=float, default=0.0)
    right.add_argument("--out", type=Path, help="write the result as JSON")
    add_store_option(right)
    right.set_defaults(handler=rightsize_command)

    scaled = commands.add_parser(
        "scaling",
        help="the redline at several sizes (replicas, workers, CPU quotas) and how it grows",
        description="Serve the target at each size ({size} in the command, or a CPU quota "
        "with --cpus), find its redline, and fit how capacity grows with size: efficiency "
        "per step and the scalability law over size.",
    )
    scaled.add_argument("plan", help="an open-model plan with objectives")
    scaled.add_argument(
        "--serve", required=True, help='the target\'s command; "{size}" stands for the size'
    )
    which = scaled.add_mutually_exclusive_group(required=True)
    which.add_argument("--sizes", help="sizes put into {size}, e.g. 1,2,4 (replicas, workers)")
    which.add_argument("--cpus", help="CPU quotas in cores, e.g. 0.25,0.5,1 (a cgroup each)")
    scaled.add_argument("--unit", help="what a size counts, for the advice (default: size/core)")
    scaled.add_argument("--step", default="5s", help="each search step (default 5s)")
    scaled.add_argument("--factor", type=float, default=1.5, help="search step-up factor")
    scaled.add_argument("--repeats", type=int, default=2, help="repeats of each bracket (2)")
    scaled.add_argument("--out", type=Path, help="write the points and the fit as JSON")
    scaled.set_defaults(handler=scaling_command)

    made = commands.add_parser(
        "manifests",
        help="Deployment, HPA, PodDisruptionBudget and PriorityClass from the decisions",
    )
    made.add_argument("--name", required=True, help="the Deployment's name")
    made.add_argument("--image", required=True, help="the container image")
    made.add_argument("--port", type=int, default=8080)
    made.add_argument("--size", type=Path, help="capacity size --out JSON: replicas, minAvailable")
    made.add_argument("--rightsize", type=Path, help="capacity rightsize --out JSON")
    made.add_argument(
        "--hpa", type=Path, help="an HPA manifest, or capacity recommend --out JSON (its pick)"
    )
    made.add_argument("--replicas", type=int, help="replicas (default: --size's, else 2)")
    made.add_argument("--priority", type=int, default=1000)
    made.add_argument("--out", type=Path, help="write the YAML here (default: print it)")
    made.set_defaults(handler=manifests_command)
    add_fleet_parsers(commands)


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
    if not _write_json(result.to_dict(), args.out):
        return _exit.USAGE
    return _exit.OK if result.best is not None else _exit.FAILED


def _write_json(data: Any, path: Path | None) -> bool:
    """Write ``--out`` (when given); whether it went well (the error is printed)."""
    if path is None:
        return True
    try:
        write_text(json.dumps(data, indent=1), path)
    except OSError as exc:
        error(f"--out: cannot write {str(path)!r}: {exc.strerror}")
        return False
    return True


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: line {exc.lineno}: not JSON ({exc.msg})") from None


def size_command(args: argparse.Namespace) -> int:
    """Carry out ``redline capacity size``."""
    try:
        document = _read_json(args.find, "find result")
        model = replica_model_from_find(document, source=str(args.find))
        peak = parse_rate(args.peak) if args.peak else load_demand(args.trace).peak
        slo_text = args.slo or document.get("objective") or ""
        slo_ms = None
        if slo_text:
            objective = parse_objective(slo_text, source="--slo")
            if objective.metric == "percentile":
                slo_ms = objective.threshold
        plan = size_fleet(
            model, peak, slo_p99_ms=slo_ms, spare=args.spare, zones=args.zones,
            sigma=args.sigma, kappa=args.kappa, service_cv=args.service_cv,
            conservative=not args.optimistic, price_per_replica_hour=args.price,
        )  # fmt: skip
    except (RedlineError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    console = stdout_console()
    console.print(
        f"one replica: redline {model.redline_rps:,.0f} req/s (95% CI {model.low_rps:,.0f}-"
        f"{model.high_rps:,.0f}), {model.workers} worker(s) of {model.service_s * 1000:.1f} ms",
        highlight=False,
    )
    queueing = "-" if plan.by_queueing is None else str(plan.by_queueing)
    console.print(
        f"peak {peak:,.0f} req/s: {plan.replicas_for_slo} replica(s) for the SLO "
        f"(measured {plan.by_measurement}, queueing {queueing}, scaling {plan.by_scaling}); "
        f"{plan.replicas} with {args.spare} spare over {args.zones} zone(s)",
        highlight=False,
    )
    predicted = "-" if plan.p99_ms is None else f"{plan.p99_ms:,.1f} ms"
    console.print(
        f"utilisation at the peak {plan.utilisation:.0%}; predicted p99 {predicted}"
        + (f" (SLO {plan.slo_ms:g} ms)" if plan.slo_ms is not None else "")
        + (f"; cost {plan.cost_per_month:,.2f} per month" if args.price else ""),
        highlight=False,
    )
    for note in plan.notes:
        console.print(f"note: {note}", style="yellow", highlight=False)
    if not _write_json(plan.to_dict(), args.out):
        return _exit.USAGE
    return _exit.OK


def rightsize_command(args: argparse.Namespace) -> int:
    """Carry out ``redline capacity rightsize``."""
    try:
        with reading_store(args.store) as store:
            reports = []
            for run in args.runs:
                stored = store.load(run)
                if stored.target is None:
                    raise ValueError(
                        f"run {stored.result.id} watched no target (run it with --serve or "
                        "--observe)"
                    )
                reports.append(stored.target)
        plan = rightsize(
            reports,
            cpu_percentile=args.cpu_percentile,
            margin=args.margin,
            current_cpu_milli=parse_quantity_milli(args.current_cpu)
            if args.current_cpu else None,
            current_memory_bytes=parse_quantity_milli(args.current_memory) // 1000
            if args.current_memory else None,
            replicas=args.replicas,
            price_vcpu_hour=args.price_vcpu_hour,
            price_gib_hour=args.price_gib_hour,
        )  # fmt: skip
    except (StoreError, RedlineError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    data = plan.to_dict()
    console = stdout_console()
    console.print(
        f"{plan.samples} samples: CPU used p50 {plan.cpu_used_p50_milli:,.0f}m, max "
        f"{plan.cpu_used_max_milli:,.0f}m; memory max {plan.memory_max_bytes / (1 << 20):,.0f}Mi",
        highlight=False,
    )
    console.print(
        f"requests: cpu {data['requests']['cpu']}, memory {data['requests']['memory']}; "
        f"limits: cpu {data['limits']['cpu']}, memory {data['limits']['memory']}",
        highlight=False,
    )
    if plan.saving_per_month is not None:
        console.print(f"saves {plan.saving_per_month:,.2f} per month", highlight=False)
    for note in plan.notes:
        console.print(f"note: {note}", style="yellow", highlight=False)
    if not _write_json(data, args.out):
        return _exit.USAGE
    return _exit.OK


def manifests_command(args: argparse.Namespace) -> int:
    """Carry out ``redline capacity manifests``."""
    try:
        replicas, minimum = args.replicas or 2, 1
        if args.size is not None:
            size = _read_json(args.size, "size plan")
            replicas = args.replicas or int(size["replicas"])
            minimum = int(size["replicas_for_slo"])
        requests = {"cpu": "250m", "memory": "256Mi"}
        limits: dict[str, str | None] = {"cpu": None, "memory": None}
        if args.rightsize is not None:
            right = _read_json(args.rightsize, "rightsize result")
            requests, limits = right["requests"], right["limits"]
        hpa = None
        if args.hpa is not None:
            if args.hpa.suffix == ".json":
                best = _read_json(args.hpa, "recommendation").get("best")
                if not best:
                    raise ValueError(f"{args.hpa}: the recommendation has no feasible pick")
                manifest = best["hpa"]
            else:
                manifest = yaml.safe_load(args.hpa.read_text(encoding="utf-8"))
            policy = policy_from_manifest(
                manifest, source=str(args.hpa), capacity_rps=1.0, startup_s=30.0
            )
            hpa = hpa_of_policy(policy, source=str(args.hpa))
        text = manifests_yaml(
            Workload(
                args.name, args.image, port=args.port, replicas=replicas,
                min_available=min(minimum, replicas), cpu_request=requests["cpu"],
                cpu_limit=limits["cpu"], memory_request=requests["memory"],
                memory_limit=limits["memory"], priority=args.priority,
            ),
            hpa,
        )  # fmt: skip
    except (RedlineError, ValueError, KeyError, OSError, yaml.YAMLError) as exc:
        error(f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError) else str(exc))
        return _exit.USAGE
    if args.out is None:
        print(text, end="")
        return _exit.OK
    try:
        write_text(text, args.out)
    except OSError as exc:
        error(f"--out: cannot write {str(args.out)!r}: {exc.strerror}")
        return _exit.USAGE
    return _exit.OK


def scaling_command(args: argparse.Namespace) -> int:
    """Carry out ``redline capacity scaling``."""
    console = stdout_console()
    try:
        plan = as_plan(args.plan)
        sizes = [float(v) for v in (args.cpus or args.sizes).split(",") if v.strip()]
        if len(sizes) < 2 or any(v <= 0 for v in sizes):
            raise ValueError("--sizes/--cpus: expected two or more sizes above 0, e.g. 1,2,4")
        if args.sizes and "{size}" not in args.serve:
            raise ValueError('--serve: put "{size}" where the size goes in the command')
        step = parse_duration(args.step)
        points = []
        for size in sizes:
            command = args.serve.replace("{size}", f"{size:g}")
            serve = ServeSpec(command=command, cpu_limit=size if args.cpus else None)
            sized = dataclasses.replace(
                plan, observe=dataclasses.replace(plan.observe, serve=serve)
            )
            found = find(sized, step_s=step, factor=args.factor, repeats=args.repeats)
            held = [s.achieved for s in found.steps if s.holds and not s.limited]
            capacity = found.rate if found.rate is not None else max(held, default=0.0)
            console.print(
                f"size {size:g}: {found.summary()}"
                + ("" if found.rate is not None else f" (held up to {capacity:,.0f} req/s)"),
                highlight=False,
            )
            points.append((size, capacity))
        fit = fit_scaling(points, unit=args.unit or ("core" if args.cpus else "size"))
    except (RedlineError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    for line in fit.advice:
        console.print(line, highlight=False)
    if not _write_json(fit.to_dict(), args.out):
        return _exit.USAGE
    return _exit.OK
