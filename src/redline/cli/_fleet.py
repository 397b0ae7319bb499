"""``redline capacity place`` and ``redline capacity contend``: a fleet plan from a fleet file."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from redline.capacity import (
    Fleet,
    Placement,
    documents_yaml,
    limit_ranges,
    load_demand,
    load_fleet,
    place,
    placement_from_dict,
    priority_classes,
    qos_class,
    quota_check,
    resource_quotas,
    scheduling_manifests,
    simulate_spike,
)
from redline.core import PlanError, RedlineError, parse_duration, parse_objective
from redline.plan import plan_from_dict
from redline.report import fleet_html, write_text
from redline.runner import run

from . import _exit
from ._console import error, stdout_console
from ._local import free_port, pinned, wait_for

__all__ = ["add_fleet_parsers"]


def add_fleet_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``capacity place`` and ``capacity contend``."""
    placed = commands.add_parser(
        "place",
        help="nodes to buy and which replicas go where (CP-SAT), beside first-fit-decreasing",
        description="Solve the fleet's placement with OR-Tools CP-SAT: the cheapest nodes "
        "that hold every replica (anti-affinity across nodes, spread across zones, headroom "
        "per node), then, at that cost, the most traffic kept on one node. First-fit-"
        "decreasing is solved beside it.",
    )
    placed.add_argument("fleet", type=Path, help="the fleet file (YAML)")
    _solver_options(placed)
    placed.add_argument("--out", type=Path, help="write place.json")
    placed.add_argument("--manifests", type=Path,
                        help="write the plan as Kubernetes scheduling rules (YAML)")  # fmt: skip
    placed.add_argument("--html", type=Path, help="write a report: nodes, pods, traffic")
    placed.set_defaults(handler=place_command)

    contended = commands.add_parser(
        "contend",
        help="QoS classes, quotas for the peak, and priority and preemption under a spike",
        description="For each service its QoS class; per namespace the ResourceQuota and "
        "LimitRange that hold the peak and whether the quotas (and the placed nodes) cover "
        "it. With --spike, a discrete-event simulation of the placed fleet through a demand "
        "trace with PriorityClasses and preemption (and the same without preemption). With "
        "--measure, the same at request level, measured: AdmissionMiddleware's priorities "
        "on a service driven past its capacity on this machine.",
    )
    contended.add_argument("fleet", type=Path, help="the fleet file (YAML)")
    contended.add_argument("--placement", type=Path,
                           help="place.json to use (default: place the fleet now)")  # fmt: skip
    _solver_options(contended)
    contended.add_argument("--spike", type=Path, help="a demand trace (time_s,rate) to run")
    contended.add_argument(
        "--node-startup", metavar="DURATION",
        help="with --spike: a cluster autoscaler adds nodes for pending pods, each serving "
        "this long after it is asked for (e.g. 90s; default: no autoscaler, the placed "
        "nodes are all there is)",
    )  # fmt: skip
    contended.add_argument("--measure", action="store_true",
                           help="run the request-level check on this machine (~15 s)")  # fmt: skip
    contended.add_argument("--measure-seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    contended.add_argument("--out", type=Path, help="write contend.json")
    contended.add_argument(
        "--manifests", type=Path, help="write PriorityClasses, ResourceQuotas and LimitRanges"
    )
    contended.add_argument("--html", type=Path, help="write a report")
    contended.set_defaults(handler=contend_command)


def _solver_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-limit", type=float, default=10.0,
                        help="seconds the solver may take (default 10)")  # fmt: skip
    parser.add_argument(
        "--headroom", type=float, help="share of each node left free (overrides the fleet's)"
    )
    parser.add_argument("--cost-slack", type=float, default=0.0,
                        help="how much dearer than the cheapest the plan may go to keep "
                        "traffic on nodes (0.05: 5%%; default 0)")  # fmt: skip
    parser.add_argument("--max-types", type=int, default=4,
                        help="node types the solver chooses among (default 4)")  # fmt: skip


def _fleet(args: argparse.Namespace) -> Fleet:
    fleet = load_fleet(args.fleet)
    if args.headroom is not None:
        if not 0 <= args.headroom < 1:
            raise PlanError(f"expected a share from 0 to below 1, got {args.headroom}",
                            source="--headroom")  # fmt: skip
        fleet = Fleet(fleet.services, fleet.node_types, fleet.traffic, args.headroom,
                      fleet.priority_classes, fleet.quotas, fleet.source)  # fmt: skip
    return fleet


def _validated(documents: list[dict[str, Any]]) -> str:
    """Check manifests against the Kubernetes 1.29 schemas when kubernetes-validate is here."""
    try:
        import kubernetes_validate  # type: ignore[import-untyped]
    except ImportError:
        return "not validated (pip install kubernetes-validate to check them)"
    for document in documents:
        kubernetes_validate.validate(document, "1.29", strict=True)
    return f"{len(documents)} documents valid against the Kubernetes 1.29 schemas"


def _dump(path: Path, documents: list[dict[str, Any]]) -> None:
    write_text(documents_yaml(documents), path)


def place_command(args: argparse.Namespace) -> int:
    """Run ``redline capacity place``."""
    console = stdout_console()
    try:
        fleet = _fleet(args)
        plan = place(
            fleet,
            time_limit_s=args.time_limit,
            max_types=args.max_types,
            cost_slack=args.cost_slack,
        )
    except (RedlineError, OSError) as exc:
        error(str(exc))
        return _exit.USAGE if isinstance(exc, PlanError) else _exit.NOT_CARRIED_OUT
    document = plan.to_dict()
    _print_plan(console, document)
    try:
        if args.manifests:
            documents = scheduling_manifests(fleet, plan.placement)
            checked = _validated(documents)
            _dump(args.manifests, documents)
            console.print(f"scheduling rules: {args.manifests} ({checked})", highlight=False)
        if args.out:
            write_text(json.dumps(document, indent=2) + "\n", args.out)
            console.print(f"wrote {args.out}", highlight=False)
        if args.html:
            write_text(fleet_html(document), args.html)
            console.print(f"wrote {args.html}", highlight=False)
    except (RedlineError, OSError, ValueError) as exc:
        error(str(exc))
        return _exit.NOT_CARRIED_OUT
    return _exit.OK


def _bar(share: float, width: int = 20) -> str:
    filled = max(0, min(width, round(share * width)))
    return "#" * filled + "." * (width - filled)


def _print_plan(console: Console, document: dict[str, Any]) -> None:
    table = Table(title="placement", title_justify="left")
    for column in ("", "nodes", "cost/h", "cross-node req/s", "share", "CPU used", "gap"):
        table.add_column(column, justify="left" if not column else "right")
    rows = [("CP-SAT", document), ("traffic-blind", document["traffic_blind"]),
            ("first-fit-decreasing", document["baseline"])]  # fmt: skip
    for name, row in rows:
        gap = row.get("gap")
        table.add_row(
            name, str(row["node_count"]), f"{row['cost_per_hour']:,.2f}",
            f"{row['cross_node_rps']:,.0f}", f"{row['cross_node_share']:.0%}",
            f"{row['cpu_utilisation']:.0%}",
            "-" if gap is None else f"{gap:.1%} ({row['status']})",
        )  # fmt: skip
    console.print(table)
    buy = ", ".join(f"{b['count']} x {b['type']} in {b['zone']}" for b in document["node_types"])
    console.print(f"buy: {buy}; solved in {document['solve_s']:.1f} s", highlight=False)
    nodes = Table(title="nodes", title_justify="left")
    for column in ("node", "CPU", "memory", "pods"):
        nodes.add_column(column)
    for node in document["nodes"]:
        nodes.add_row(
            node["name"],
            f"{_bar(node['cpu_utilisation'])} {node['cpu_utilisation']:.0%}",
            f"{_bar(node['memory_utilisation'], 10)} {node['memory_utilisation']:.0%}",
            ", ".join(node["services"]),
        )
    console.print(nodes)


def _placement(args: argparse.Namespace, fleet: Fleet) -> tuple[Placement, dict[str, Any] | None]:
    if args.placement is None:
        plan = place(
            fleet,
            time_limit_s=args.time_limit,
            max_types=args.max_types,
            cost_slack=args.cost_slack,
        )
        return plan.placement, plan.to_dict()
    source = str(args.placement)
    try:
        data = json.loads(args.placement.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlanError(f"cannot read the placement: {exc.strerror}", source=source) from None
    except ValueError:
        raise PlanError("not valid JSON", source=source) from None
    return placement_from_dict(fleet, data, source=source), data


def contend_command(args: argparse.Namespace) -> int:
    """Run ``redline capacity contend``."""
    console = stdout_console()
    try:
        startup = None if args.node_startup is None else parse_duration(args.node_startup)
    except ValueError as exc:
        error(f"--node-startup: {exc}")
        return _exit.USAGE
    try:
        fleet = _fleet(args)
        placement, placed = _placement(args, fleet)
        trace = load_demand(args.spike) if args.spike else None
    except (RedlineError, OSError) as exc:
        error(str(exc))
        return _exit.USAGE if isinstance(exc, PlanError) else _exit.NOT_CARRIED_OUT
    document: dict[str, Any] = {
        "qos": [{"service": s.name, "namespace": s.namespace, "priority": s.priority,
                 "priority_value": fleet.priority(s), "qos": qos_class(s)}
                for s in fleet.services],
        "quotas": quota_check(fleet, placement.nodes),
        "manifests": priority_classes(fleet) + resource_quotas(fleet) + limit_ranges(fleet),
    }  # fmt: skip
    _print_contend(console, document)
    if trace is not None:
        with_preemption = simulate_spike(fleet, placement.nodes, trace, node_startup_s=startup)
        without = simulate_spike(
            fleet, placement.nodes, trace, preemption=False, node_startup_s=startup
        )
        document["spike"] = with_preemption.to_dict()
        document["spike"]["source"] = trace.source
        document["spike_without_preemption"] = without.to_dict()
        _print_spike(console, document["spike"], document["spike_without_preemption"])
    if args.measure:
        try:
            document["measured"] = measure_priorities(console, seconds=args.measure_seconds)
        except (RedlineError, OSError, RuntimeError) as exc:
            error(f"the request-level check: {exc}")
            return _exit.NOT_CARRIED_OUT
    if placed is not None:
        document["placement"] = placed
    try:
        if args.manifests:
            checked = _validated(document["manifests"])
            _dump(args.manifests, document["manifests"])
            console.print(f"quotas and classes: {args.manifests} ({checked})", highlight=False)
        if args.out:
            write_text(json.dumps(document, indent=2) + "\n", args.out)
            console.print(f"wrote {args.out}", highlight=False)
        if args.html:
            write_text(fleet_html(placed, document), args.html)
            console.print(f"wrote {args.html}", highlight=False)
    except (RedlineError, OSError, ValueError) as exc:
        error(str(exc))
        return _exit.NOT_CARRIED_OUT
    failed = not all(r["covers"] for r in document["quotas"] if r["namespace"] != "(cluster)")
    spike = document.get("spike")
    if spike is not None and not (spike["preempted_only_lower"] and spike["top_priority_kept_slo"]):
        failed = True
    measured = document.get("measured")
    if measured is not None and not measured["high_kept_slo"]:
        failed = True
    return _exit.FAILED if failed else _exit.OK


def _print_contend(console: Console, document: dict[str, Any]) -> None:
    table = Table(title="QoS classes", title_justify="left")
    for column in ("service", "namespace", "priority", "QoS"):
        table.add_column(column)
    for row in document["qos"]:
        table.add_row(row["service"], row["namespace"],
                      f"{row['priority']} ({row['priority_value']})", row["qos"])  # fmt: skip
    console.print(table)
    quotas = Table(title="quotas at peak", title_justify="left")
    for column in ("namespace", "resource", "quota", "steady", "peak", "covers"):
        quotas.add_column(column)
    for row in document["quotas"]:
        covers = ("yes" if row["covers"] else "NO") + f" ({row['source']})"
        quotas.add_row(row["namespace"], row["resource"], row["quota"], row["steady"],
                       row["peak"], covers)  # fmt: skip
    console.print(quotas)


def _print_spike(console: Console, spike: dict[str, Any], without: dict[str, Any]) -> None:
    table = Table(title=f"spike ({spike['duration_s']:.0f} s)", title_justify="left")
    for column in ("service", "priority", "peak ready", "worst latency", "SLO",
                   "preempted", "pods waited", "longest wait", "same, no preemption"):  # fmt: skip
        table.add_column(column)
    other = {s["name"]: s for s in without["services"]}
    for s in spike["services"]:
        worst = (
            "-"
            if s["slo"] is None
            else ("unbounded" if s["max_latency_ms"] is None else f"{s['max_latency_ms']:.0f} ms")
        )
        kept = (
            "-"
            if s["kept_slo"] is None
            else ("kept" if s["kept_slo"] else f"missed {s['slo_violation_s']:.0f} s")
        )
        o = other[s["name"]]
        alt = "-" if o["kept_slo"] is None else (
            "kept" if o["kept_slo"] else f"missed {o['slo_violation_s']:.0f} s")  # fmt: skip
        table.add_row(s["name"], s["priority"], str(s["peak_ready"]), worst, kept,
                      str(s["preempted"]), str(s["pods_waited"]), f"{s['max_wait_s']:.0f} s",
                      alt)  # fmt: skip
    console.print(table)
    console.print(
        f"{len(spike['preemptions'])} pods preempted, "
        + ("all of lower priority than their preemptor" if spike["preempted_only_lower"]
           else "SOME NOT OF LOWER PRIORITY")
        + "; the highest-priority services "
        + ("kept their SLO" if spike["top_priority_kept_slo"] else "MISSED their SLO"),
        highlight=False,
    )  # fmt: skip
    if spike.get("nodes_added") is not None:
        console.print(_nodes_added_line(spike["nodes_added"]), highlight=False)


def _nodes_added_line(added: list[dict[str, Any]]) -> str:
    """What the spike's cluster autoscaler bought, in a sentence."""
    if not added:
        return "the cluster autoscaler added no nodes"
    kinds: dict[str, int] = {}
    for node in added:
        kinds[node["type"]] = kinds.get(node["type"], 0) + 1
    bought = ", ".join(f"{n} x {kind}" for kind, n in kinds.items())
    price = sum(node["price_per_hour"] for node in added)
    first = min(node["ready_t"] for node in added)
    nodes = "node" if len(added) == 1 else "nodes"
    return (f"the cluster autoscaler added {len(added)} {nodes} ({bought}, +{price:.2f}/h), "
            f"the first ready at t={first:.0f} s")  # fmt: skip


@contextlib.contextmanager
def _priority_service(capacity: int, work_ms: float) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [*pinned(), sys.executable, "-m", "redline.demo", "priority", "--port", str(port),
         "--capacity", str(capacity), "--work-ms", str(work_ms)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def measure_priorities(
    console: Console,
    *,
    seconds: float = 10.0,
    capacity: int = 8,
    work_ms: float = 20.0,
    overload: float = 1.5,
    slo: str = "p99 < 100ms",
) -> dict[str, Any]:
    """Drive the demo's priority service past its capacity and measure both routes.

    ``overload`` x its capacity, a quarter of the requests high priority (see
    ``redline.demo._priority``).
    """
    capacity_rps = capacity * 1000.0 / work_ms
    rate = capacity_rps * overload
    objective = parse_objective(slo)
    with _priority_service(capacity, work_ms) as target:
        plan = plan_from_dict(
            {"name": "contend-priorities", "target": target,
             "requests": [
                 {"name": "high", "path": "/checkout", "headers": {"x-priority": "high"},
                  "weight": 1},
                 {"name": "low", "path": "/browse", "headers": {"x-priority": "low"},
                  "weight": 3},
             ],
             "load": {"rate": f"{rate:.0f}/s"}, "duration": f"{seconds}s", "warmup": "1s",
             "workers": 1, "timeouts": {"connect": "1s", "read": "5s"},
             "generator": {"late_tolerance": 0.2}},
            source="contend --measure",
        )  # fmt: skip
        console.print(
            f"request-level check: {rate:.0f} req/s for {seconds:.0f} s against a service "
            f"of {capacity_rps:.0f} req/s (a quarter high priority)", highlight=False)  # fmt: skip
        result = run(plan).result
    out: dict[str, Any] = {"rate": rate, "capacity_rps": capacity_rps, "seconds": seconds,
                           "slo": slo}  # fmt: skip
    for name in ("high", "low"):
        if name not in result.endpoint_names():
            raise RuntimeError(f"no {name}-priority requests were measured")
        summary = result.endpoint(name)
        ok, shed = summary.status.get(200, 0), summary.status.get(503, 0)
        out[name] = {
            "requests": summary.requests, "ok": ok, "shed": shed,
            "shed_share": round(shed / summary.requests, 6) if summary.requests else 0.0,
            "p50_ms": summary.latency_ms["p50"], "p99_ms": summary.latency_ms["p99"],
            "ok_per_s": round(ok / result.duration_s, 1) if result.duration_s else 0.0,
        }  # fmt: skip
    out["high_kept_slo"] = out["high"]["p99_ms"] < objective.threshold
    out["low_shed"] = out["low"]["shed"] > 0
    console.print(
        f"high priority: p99 {out['high']['p99_ms']:.1f} ms ({slo}: "
        f"{'kept' if out['high_kept_slo'] else 'MISSED'}), {out['high']['shed_share']:.1%} "
        f"shed; low priority: p99 {out['low']['p99_ms']:.1f} ms, "
        f"{out['low']['shed_share']:.1%} shed", highlight=False)  # fmt: skip
    return out
