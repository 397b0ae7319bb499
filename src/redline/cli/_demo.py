"""``redline demo``: the whole practice on a built-in shop, with nothing installed.

The shop (``redline.demo``) runs twice on loopback, as it is and with its strategies
switched on (cache, breaker, deadline, limiter, queue), both calling a payments service
through redline's fault proxy. Then:

1. a smoke test;
2. the shop's redline under the demo's objectives (``redline find``);
3. a steady load at 70% of that redline while payments slows down, then goes down: the
   cascading failure, judged by the objectives, with time to detect and to recover;
4. the same load and faults against the shop with its strategies: checkouts whose
   payment fails fast are queued (202) and paid once payments is back; the queue's
   backlog over time (the shop's own gauges), its job latency, and that it drained;
5. the redline again, with the strategies;
6. the two fault runs compared, with confidence intervals, and judged as a canary
   would be (``redline judge``: the strategies against the shop as it is);
7. the shop's capacity plan: replicas for a sale of 2,000 req/s from its redline (the
   measured capacity's lower bound, an M/M/c queue per replica), with a spare over three
   zones, and what they cost (``redline capacity size``); then the everyday fleet (the
   shop, payments and a low-priority reports job) placed on nodes (``capacity place``)
   and the sale's ramp run through it (``capacity contend --spike``): which pods are
   preempted and whether the shop keeps its p99 (``fleet.html``);
8. (the full demo, as root) a CPU-hungry neighbour on the shop's core, twice: both at the
   default ``cpu.weight``, then the shop's cgroup at 1000: its p99 each time, in one
   report (``neighbour.html``).

Each search watches the shop's process (its CPU, memory, threads per step), and after each
one a short profiled run at the redline says where the shop's time goes: its bottleneck
and a flamegraph, before the strategies and after (``profile.html``, differential). A
short traced run then says where checkout's p50 and p99 go: the shop and payments continue
redline's traces and export their spans to it.

It writes the HTML reports and ``demo.json`` (every number) into ``--out``. Every
number is measured: on another machine they change, the story holds.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from redline.analysis import Side, Step, compare_runs
from redline.capacity import (
    DemandTrace,
    PlacedNode,
    PlacementError,
    fleet_from_dict,
    place,
    replica_model_from_find,
    simulate_spike,
    size_fleet,
)
from redline.core import (
    PlanError,
    RedlineError,
    RunError,
    RunOutcome,
    RunResult,
    parse_objective,
)
from redline.demo import generate
from redline.faults import FaultProxy
from redline.plan import Plan, plan_from_dict
from redline.report import fleet_html, html_report, render_comparison
from redline.rollout import judge
from redline.runner import find, run

from . import _exit
from ._console import error, stdout_console
from ._judge import judgement_table
from ._local import free_port, pinned, wait_for
from ._run import console_run, print_outcome

__all__ = ["add_demo_parser"]

OBJECTIVES = [
    {"name": "latency", "objective": "p99 < 300ms"},
    {"name": "errors", "objective": "error_rate < 1%"},
]
START_RATE = 100.0  # req/s: where the searches start
REQUESTS = [
    {"name": "product", "path": "/products/${randint(1, 2000)}", "weight": 8},
    {"name": "search", "path": "/search?q=${choice(lamp, oak, copper, mug)}", "weight": 1},
    {"name": "checkout", "method": "POST", "path": "/checkout",
     "json": {"order": "${uuid()}", "items": 2}, "weight": 1},
]  # fmt: skip


def add_demo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline demo``."""
    parser = subparsers.add_parser("demo", help="measure and improve a built-in demo shop")
    parser.add_argument("--quick", action="store_true", help="shorter steps: under a minute")
    parser.add_argument("--out", type=Path, default=Path("redline-demo"),
                        help="for the reports and demo.json (default: ./redline-demo)")  # fmt: skip
    parser.set_defaults(handler=demo_command)


@contextlib.contextmanager
def _services(workdir: Path, console: Console) -> Iterator[dict[str, Any]]:
    """Payments, the fault proxy in front of it, and the two shops; all on loopback."""
    db = workdir / "shop.db"
    generate(db, products=2000, reviews_each=12)
    pin = pinned()
    ports = {"payments": free_port(), "via_proxy": free_port(),
             "shop": free_port(), "protected": free_port(), "otlp": free_port()}  # fmt: skip
    # the services continue redline's traces, exporting spans to the traced runs' receiver
    otlp = ["--otlp", f"http://127.0.0.1:{ports['otlp']}/v1/traces"]
    with contextlib.ExitStack() as stack:
        pids: dict[str, int] = {}

        def start(*argv: str, port: int) -> None:
            process = subprocess.Popen(
                [*pin, sys.executable, "-m", "redline.demo", *argv, "--port", str(port)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            stack.callback(process.wait, 10)
            stack.callback(process.terminate)
            wait_for(port, process)
            pids[str(port)] = process.pid  # taskset execs python: the same process

        start("payments", *otlp, port=ports["payments"])
        faults = stack.enter_context(FaultProxy(port=0).running())
        faults.call(faults.create("payments", f"127.0.0.1:{ports['via_proxy']}",
                                  f"127.0.0.1:{ports['payments']}"))  # fmt: skip
        payments = f"http://127.0.0.1:{ports['via_proxy']}"
        common = ["--payments", payments, "--db", str(db), "--workers", "8", *otlp]
        start("shop", *common, port=ports["shop"])
        start("shop", *common, "--strategies", "cache,breaker,deadline,limiter,queue",
              port=ports["protected"])  # fmt: skip
        console.print(
            f"shop on :{ports['shop']}, the same shop with its strategies on "
            f":{ports['protected']}, payments on :{ports['payments']} behind the fault "
            f"proxy (API {faults.api_url})",
            highlight=False,
        )
        yield {
            "shop": f"http://127.0.0.1:{ports['shop']}",
            "protected": f"http://127.0.0.1:{ports['protected']}",
            "api": faults.api_url,
            "pid": {
                "shop": pids[str(ports["shop"])],
                "protected": pids[str(ports["protected"])],
            },
            "otlp": f"127.0.0.1:{ports['otlp']}",
        }


def _plan(target: str, load: dict[str, Any], seconds: float, *, quick: bool, **extra: Any) -> Plan:
    return plan_from_dict(
        {"name": "demo-shop", "target": target, "requests": REQUESTS, "load": load,
         "duration": f"{seconds}s", "warmup": "500ms" if quick else "2s", "workers": 1,
         "slo": OBJECTIVES,
         "timeouts": {"connect": "1s", "read": "2s"},
         # two cores shared by the shop, payments, the proxy and the generator: judge the
         # generator on what it sent, not on a few late sends when the machine is busy
         "generator": {"late_tolerance": 0.2}, **extra},
        source="demo",
    )  # fmt: skip


def _outcome(plan: Plan, console: Console) -> RunOutcome:
    with console_run(console) as (control, observers):
        outcome = run(plan, observers=observers, control=control)
    if outcome.result.stop_reason == "interrupted":
        raise KeyboardInterrupt  # Ctrl-C ends the demo, not just this run
    print_outcome(console, outcome)
    return outcome


def _watching(target: str, pid: int, *, profile: bool = False) -> dict[str, Any]:
    # the shop's process, and its own metrics: its worker pool's use is only seen there
    # (an asyncio semaphore's waiters are on no thread's stack)
    watch = [f"pid:{pid}", f"prometheus:{target}/metrics"]
    return {"observe": {"watch": watch, "profile": profile}}


def _profile(
    target: str, pid: int, found: dict[str, Any], quick: bool, console: Console
) -> RunOutcome:
    """A short run at the redline, profiled: where the shop's time goes there."""
    rate = found["rate"] or found["at_least"] or START_RATE
    plan = _plan(target, {"rate": f"{rate:.0f}/s"}, 3 if quick else 8, quick=quick,
                 **_watching(target, pid, profile=True))  # fmt: skip
    return _outcome(plan, console)


def _traced(
    target: str, otlp: str, found: dict[str, Any], quick: bool, console: Console
) -> dict[str, Any]:
    """A short traced run at half the redline: where checkout's p50 and p99 go."""
    rate = 0.5 * (found["rate"] or found["at_least"] or START_RATE)
    plan = _plan(target, {"rate": f"{rate:.0f}/s"}, 3 if quick else 6, quick=quick,
                 trace={"sample": 0.1, "otlp": otlp, "wait": "2s"})  # fmt: skip
    traces = _outcome(plan, console).traces
    if traces is None:
        return {}
    return {
        band: [
            {"service": s.service, "span": s.span, "share": s.share, "ms": s.ms} for s in shares[:4]
        ]
        for band, shares in traces.attribution.get("checkout", {}).items()
    }


def _bottleneck(outcome: RunOutcome) -> dict[str, Any]:
    target = outcome.target
    if target is None or target.verdict is None:
        return {}
    profile = target.profile
    return {
        "bottleneck": target.verdict.bottleneck,
        "evidence": target.verdict.evidence,
        "top": [f.function for f in profile.top[:5]] if profile is not None else [],
        "cpu_ms_per_request": (target.cost.cpu_s_per_request or 0) * 1000 if target.cost else None,
    }


def _find(target: str, start: float, quick: bool, console: Console, pid: int) -> dict[str, Any]:
    step = 2.0 if quick else 5.0
    plan = _plan(target, {"rate": f"{start:.0f}/s"}, step, quick=quick, **_watching(target, pid))

    def on_step(step: Step, result: RunResult) -> None:
        console.print(
            f"  {step.rate:7.0f} req/s offered: p99 {step.p99_ms:7.1f} ms, "
            f"errors {step.error_rate:.2%} -> {'holds' if step.holds else 'breaks'}"
            f"{f', bottleneck {step.bottleneck}' if step.bottleneck else ''}",
            highlight=False,
        )

    found = find(plan, factor=1.5, step_s=step, refine_s=step,
                         repeats=1 if quick else 2, max_refine=1 if quick else 2, max_rate=5000,
                         on_step=on_step)  # fmt: skip
    console.print(found.summary(), highlight=False)
    # when the search could not finish (the generator fell behind an overloaded shop),
    # the highest rate that held is still a measured lower bound
    held = [step.rate for step in found.steps if step.holds and not step.limited]
    return {**found.to_dict(), "at_least": max(held) if held else None}


def _fault_plan(target: str, api: str, rate: float, quick: bool, pid: int) -> Plan:
    seconds = 10 if quick else 30
    slow_at, slow_for, down_at, down_for = (2, 3, 5, 3) if quick else (6, 8, 18, 6)
    schedule = [
        {"name": "payments-slow", "at": f"{slow_at}s", "for": f"{slow_for}s", "proxy": "payments",
         "toxic": {"type": "latency", "attributes": {"latency": 1500}}},
        {"name": "payments-down", "at": f"{down_at}s", "for": f"{down_for}s", "proxy": "payments",
         "down": True},
    ]  # fmt: skip
    # watched: the shop's own gauges (its worker pool; with the queue, the backlog) over time
    return _plan(target, {"rate": f"{rate:.0f}/s"}, seconds, quick=quick,
                 faults={"api": api, "schedule": schedule}, **_watching(target, pid))  # fmt: skip


def _fault_run(
    services: dict[str, Any], shop: str, rate: float, quick: bool, console: Console
) -> RunOutcome:
    """The fault plan against one of the two shops, watched."""
    plan = _fault_plan(services[shop], services["api"], rate, quick, services["pid"][shop])
    return _outcome(plan, console)


def _impacts(outcome: RunOutcome) -> list[dict[str, Any]]:
    return list(outcome.analysis.get("faults", []))


def _checkouts(result: RunResult) -> dict[str, int]:
    """Checkouts by answer: paid at once (200), taken and queued (202), refused (the rest)."""
    if "checkout" not in result.endpoint_names():
        return {"paid": 0, "queued": 0, "refused": 0}
    status = result.endpoint("checkout").status
    checkout = result.endpoint("checkout")
    return {"paid": status.get(200, 0), "queued": status.get(202, 0),
            "refused": checkout.requests - status.get(200, 0) - status.get(202, 0)}  # fmt: skip


def _drained(target: str, console: Console, *, wait_s: float) -> dict[str, Any] | None:
    """The shop's payment queue once its backlog has drained (or after ``wait_s``)."""
    started = time.monotonic()
    stats: dict[str, Any] | None = None
    while time.monotonic() - started < wait_s:
        try:
            with urllib.request.urlopen(f"{target}/jobs/stats", timeout=2) as answer:
                stats = json.loads(answer.read())
        except (OSError, ValueError):
            return stats
        if stats is not None and not stats["pending"]:
            break
        time.sleep(0.2)
    if stats is None:
        return None
    stats["drained"] = not stats["pending"]
    stats["waited_s"] = round(time.monotonic() - started, 1)
    console.print(
        f"payment queue: {stats['queued']} orders queued while payments was slow or down, "
        f"{stats['completed']} paid since (job latency p50 {_s(stats['p50_ms'])}, p99 "
        f"{_s(stats['p99_ms'])}); deepest backlog {stats['deepest']}, "
        + ("drained" if stats["drained"] else f"{stats['pending']} still pending")
        + f" {stats['waited_s']:.1f} s after the run; {stats['dead_letters']} dead letters",
        highlight=False,
    )
    return stats


def _s(ms: float | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.2f} s"


def _errors(result: RunResult) -> dict[str, Any]:
    total = result.total()
    return {"requests": total.requests, "errors": total.errors,
            "error_rate": total.error_rate, "p99_ms": total.latency_ms["p99"]}  # fmt: skip


def demo_command(args: argparse.Namespace) -> int:
    """Carry out ``redline demo``."""
    console = stdout_console()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        error(f"--out: cannot create {str(args.out)!r}: {exc.strerror}")
        return _exit.USAGE
    document: dict[str, Any] = {"quick": args.quick}
    write: dict[str, str] = {}  # report files, by name
    started = time.monotonic()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="redline-demo-") as tmp,
            _services(Path(tmp), console) as services,
        ):
            console.rule("1. smoke test: does it answer at all?")
            smoke = _outcome(
                _plan(services["shop"], {"rate": "20/s"}, 1 if args.quick else 5, quick=args.quick),
                console,
            ).result
            document["smoke"] = _errors(smoke)
            if smoke.total().error_rate > 0.01:
                raise RuntimeError("the smoke test failed: the shop answers with errors")

            console.rule("2. the shop's redline: the most it takes within p99 < 300 ms, <1% errors")
            baseline = _find(
                services["shop"], START_RATE, args.quick, console, services["pid"]["shop"]
            )
            document["redline"] = {"baseline": baseline}
            rate = 0.7 * (baseline["rate"] or baseline["at_least"] or 40)
            console.rule("   where the shop's time goes at its redline (py-spy, --profile)")
            plain_profile = _profile(
                services["shop"], services["pid"]["shop"], baseline, args.quick, console
            )
            document["bottleneck"] = {"baseline": _bottleneck(plain_profile)}
            console.rule("   where checkout's time goes: a traced run at half the redline")
            document["checkout_traces"] = {
                "baseline": _traced(
                    services["shop"], services["otlp"], baseline, args.quick, console
                )
            }

            console.rule(f"3. {rate:.0f} req/s (70% of it); payments slows, then goes down")
            plain_run = _fault_run(services, "shop", rate, args.quick, console)
            plain, plain_verdicts = plain_run.result, list(plain_run.verdicts)
            write["baseline-faults.html"] = html_report(
                plain, plain_verdicts, target=plain_run.target
            )

            console.rule("4. the same, with strategies: cache, breaker, deadline, limiter, queue")
            guarded_run = _fault_run(services, "protected", rate, args.quick, console)
            guarded, guarded_verdicts = guarded_run.result, list(guarded_run.verdicts)
            document["faults"] = {
                "rate": rate,
                "baseline": {**_errors(plain), "impacts": _impacts(plain_run),
                             "checkouts": _checkouts(plain)},
                "strategies": {**_errors(guarded), "impacts": _impacts(guarded_run),
                               "checkouts": _checkouts(guarded)},
            }  # fmt: skip
            document["queue"] = _drained(services["protected"], console, wait_s=20)

            console.rule("5. the redline again, with the strategies")
            document["redline"]["strategies"] = _find(
                services["protected"], max(START_RATE, rate / 0.7), args.quick, console,
                services["pid"]["protected"],
            )  # fmt: skip
            console.rule("   where its time goes now, at its new redline")
            guarded_profile = _profile(
                services["protected"], services["pid"]["protected"],
                document["redline"]["strategies"], args.quick, console,
            )  # fmt: skip
            document["bottleneck"]["strategies"] = _bottleneck(guarded_profile)
            console.rule("   where checkout's time goes now")
            document["checkout_traces"]["strategies"] = _traced(
                services["protected"], services["otlp"], document["redline"]["strategies"],
                args.quick, console,
            )  # fmt: skip
            write["profile.html"] = html_report(
                guarded_profile.result, guarded_profile.verdicts,
                baseline=plain_profile.result, target=guarded_profile.target,
                baseline_target=plain_profile.target,
            )  # fmt: skip

            console.rule("6. did it help? the fault runs compared (bootstrap intervals)")
            comparison = compare_runs([plain], [guarded])
            console.print(render_comparison(comparison))
            document["comparison"] = comparison.to_dict()
            # As a canary: would the strategies pass a judgement against the shop as it is?
            judgement = judge(Side.of([plain], "total"), Side.of([guarded], "total"))
            console.print(judgement_table(judgement))
            console.print(
                f"as a canary (redline judge): score {judgement.score:.0f}/100, "
                f"{judgement.verdict.upper()}",
                style="green" if judgement.passed else "bold red",
                highlight=False,
            )
            document["judgement"] = judgement.to_dict()
            write["strategies-faults.html"] = html_report(
                guarded, guarded_verdicts, baseline=plain, comparison=comparison,
                target=guarded_run.target, baseline_target=plain_run.target,
            )  # fmt: skip

            console.rule("7. the shop's capacity plan, for a sale of 2,000 req/s")
            document["capacity"] = _capacity(document["redline"]["strategies"], console)
            if document["capacity"]:
                document["fleet"] = _fleet(document["capacity"], console, write)

            if not args.quick:
                console.rule(f"8. a noisy neighbour on the shop's core at {rate:.0f} req/s")
                document["neighbour"] = _neighbour(services, rate, console, write)
    except (RunError, PlanError, RuntimeError) as exc:
        error(f"the demo could not be carried out: {exc}")
        document["ended"] = f"failed: {exc}"
        _keep(args.out, document, write, started)  # what was measured is kept
        return _exit.NOT_CARRIED_OUT
    except KeyboardInterrupt:
        error(f"interrupted: the services are stopped; what was measured is in {args.out}")
        document["ended"] = "interrupted"
        _keep(args.out, document, write, started)
        return _exit.INTERRUPTED
    document["ended"] = "completed"
    if not _keep(args.out, document, write, started):
        return _exit.USAGE
    _summary(console, document, args.out)
    return _exit.OK


PEAK_RPS = 2000.0
"""The demo's forecast: the shop's next sale, in requests per second."""


def _neighbour(
    services: dict[str, Any], rate: float, console: Console, write: dict[str, str]
) -> dict[str, Any] | None:
    """The shop beside a CPU-hungry neighbour, unprotected and with cpu.weight 1000."""
    if os.geteuid() != 0:
        console.print("skipped: a neighbour in a cgroup of its own needs root", highlight=False)
        return None
    pid = services["pid"]["shop"]
    runs: dict[str, RunOutcome] = {}
    for kind, weight in (("unprotected", 100), ("protected", 1000)):
        schedule = [
            {"name": "qos", "at": "0s", "for": "60s",
             "cgroup": {"target": f"pid:{pid}", "cpu_weight": weight}},
            {"name": "neighbour", "at": "0s", "for": "60s",
             "neighbour": {"cpu": 1, "weight": 100, "target": f"pid:{pid}"}},
        ]  # fmt: skip
        plan = _plan(services["shop"], {"rate": f"{rate:.0f}/s"}, 8, quick=False,
                     faults={"schedule": schedule})  # fmt: skip
        try:
            runs[kind] = _outcome(plan, console)
        except PlanError as exc:  # no cgroups here: say so, the demo goes on
            console.print(f"skipped: {exc}", style="yellow", highlight=False)
            return None
    plain, guarded = runs["unprotected"].result, runs["protected"].result
    write["neighbour.html"] = html_report(
        guarded, runs["protected"].verdicts, baseline=plain,
        comparison=compare_runs([plain], [guarded]),
    )  # fmt: skip
    found: dict[str, Any] = {
        "rate": rate,
        "unprotected": _errors(plain),
        "protected": _errors(guarded),
    }
    console.print(
        f"beside a CPU-hungry neighbour: p99 {found['unprotected']['p99_ms']:,.0f} ms with "
        f"both at the default cpu.weight, {found['protected']['p99_ms']:,.0f} ms with the "
        "shop's cgroup at cpu.weight 1000",
        highlight=False,
    )
    return found


def _capacity(found: dict[str, Any], console: Console) -> dict[str, Any] | None:
    """Replicas of the shop (with the strategies) for the sale: one spare, three zones."""
    try:
        model = replica_model_from_find(found, source="the shop's redline")
        latency = [parse_objective(o["objective"]) for o in OBJECTIVES]
        bound = next((o.threshold for o in latency if o.metric == "percentile"), None)
        plan = size_fleet(
            model, PEAK_RPS, slo_p99_ms=bound, spare=1, zones=3, price_per_replica_hour=0.05
        )
    except (ValueError, RedlineError) as exc:
        console.print(f"no capacity plan: {exc}", style="yellow", highlight=False)
        return None
    console.print(
        f"{plan.replicas_for_slo} replica(s) hold the SLO at {PEAK_RPS:,.0f} req/s "
        f"(measured {plan.by_measurement}, queueing {plan.by_queueing or '-'}); "
        f"{plan.replicas} with a spare over 3 zones, "
        f"{plan.cost_per_month:,.0f} per month at 0.05 per replica-hour",
        highlight=False,
    )
    for note in plan.notes:
        console.print(f"note: {note}", style="dim", highlight=False)
    return plan.to_dict()


def _fleet(
    capacity: dict[str, Any], console: Console, write: dict[str, str]
) -> dict[str, Any] | None:
    """The everyday fleet placed, then the sale's ramp run through it.

    The shop beside payments and a low-priority reports job: who is preempted, and does
    the shop keep its p99.
    """
    replicas = int(capacity["replicas"])
    everyday = max(3, -(-replicas // 2))
    slo = f"p99 < {capacity['slo_p99_ms']:g}ms" if capacity.get("slo_p99_ms") else None
    services: list[dict[str, Any]] = [
        {"name": "shop", "cpu": 1, "memory": "512Mi", "cpu_limit": 1, "memory_limit": "512Mi",
         "replicas": everyday, "max_replicas": max(replicas, everyday), "priority": "high",
         "rps": PEAK_RPS / 2, "capacity_rps": capacity["replica"]["redline_rps"], "slo": slo,
         "startup_s": 10},
        {"name": "payments", "cpu": 0.5, "memory": "256Mi", "replicas": 2, "priority": "high"},
    ]  # fmt: skip
    node_types = [
        {"name": n, "cpu": c, "memory": f"{4 * c}Gi", "price_per_hour": 0.0475 * c,
         "zones": ["a", "b", "c"]} for n, c in (("std-4", 4), ("std-8", 8))
    ]  # fmt: skip
    traffic = [{"from": "shop", "to": "payments", "rps": PEAK_RPS / 20}]
    try:
        fleet = fleet_from_dict({"services": services, "node_types": node_types,
                                 "traffic": traffic}, source="the demo's fleet")  # fmt: skip
        plan = place(fleet, time_limit_s=2.0)
    except PlacementError as exc:
        console.print(f"no placement: {exc}", style="yellow", highlight=False, markup=False)
        return None
    placed = plan.to_dict()
    # the reports jobs (low priority, 1 CPU each) take every CPU the everyday fleet leaves
    nodes = [PlacedNode(n.name, n.type, n.zone, dict(n.pods)) for n in plan.placement.nodes]
    jobs = 0
    for node in nodes:
        idle = (node.type.cpu_milli - node.used(fleet)[0]) // 1000
        if idle > 0:
            node.pods["reports"] = idle
            jobs += idle
    reports = {"name": "reports", "cpu": 1, "memory": "1Gi", "replicas": max(jobs, 1),
               "priority": "low", "spread": "none", "grace_s": 20}  # fmt: skip
    fleet = fleet_from_dict({"services": [*services, reports], "node_types": node_types},
                            source="the demo's fleet")  # fmt: skip
    times = np.arange(0.0, 900.0, 15.0)  # the sale: half the peak, a 5-minute ramp to it
    ramp = np.interp(times, [0, 120, 420, 600, 900], [1.0, 1.0, 2.0, 2.0, 1.0])
    sale = DemandTrace(times, ramp, 15.0, "sale")
    spike = simulate_spike(fleet, nodes, sale)
    without = simulate_spike(fleet, nodes, sale, preemption=False)
    shop = next(s for s in spike.services if s["name"] == "shop")
    buy = ", ".join(f"{b['count']} x {b['type']} in {b['zone']}" for b in placed["node_types"])
    console.print(
        f"everyday fleet ({everyday} shops, 2 payments): {buy} at "
        f"{placed['cost_per_hour']:.2f}/h ({placed['baseline']['cost_per_hour']:.2f}/h "
        f"first-fit-decreasing), gap {placed['gap']:.0%}; {jobs} reports jobs take the idle "
        "CPUs; the sale's ramp: "
        f"{len(spike.preemptions)} reports pod(s) preempted, the shop at "
        f"{shop['peak_ready']} replicas kept its modelled {slo or 'SLO'}: "
        f"{'yes' if shop['kept_slo'] else 'no'}",
        highlight=False,
    )  # fmt: skip
    document = {"placement": placed, "spike": spike.to_dict(),
                "spike_without_preemption": without.to_dict()}  # fmt: skip
    write["fleet.html"] = fleet_html(placed, {"qos": [], "quotas": [], **document})
    return document


def _fleet_line(document: dict[str, Any]) -> str:
    fleet = document.get("fleet")
    if not fleet:
        return ""
    shop = next(s for s in fleet["spike"]["services"] if s["name"] == "shop")
    return (
        f"its fleet: {fleet['placement']['node_count']} nodes at "
        f"{fleet['placement']['cost_per_hour']:.2f}/h; in the sale's ramp "
        f"{len(fleet['spike']['preemptions'])} reports pod(s) preempted, the shop's SLO "
        f"{'kept' if shop['kept_slo'] else 'missed'}\n"
    )


def _keep(out: Path, document: dict[str, Any], write: dict[str, str], started: float) -> bool:
    """Write the reports made so far and ``demo.json``; whether it could."""
    document["reports"] = [str(out / name) for name in write]
    document["seconds"] = round(time.monotonic() - started, 1)
    try:
        for name, text in write.items():
            (out / name).write_text(text, encoding="utf-8")
        (out / "demo.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    except OSError as exc:
        error(f"--out: cannot write into {str(out)!r}: {exc.strerror}")
        return False
    return True


def _summary(console: Console, document: dict[str, Any], out: Path) -> None:
    redline = document["redline"]
    faults = document["faults"]
    console.rule("what the demo measured")
    console.print(
        f"redline: {_rate(redline['baseline'])} as it is, {_rate(redline['strategies'])} "
        f"with the strategies\nduring the faults at {faults['rate']:.0f} req/s: "
        f"{faults['baseline']['error_rate']:.1%} errors as it is, "
        f"{faults['strategies']['error_rate']:.1%} with the strategies\n"
        f"checkouts during the faults: {_kept(faults, document.get('queue'))}\n"
        f"bottleneck at the redline: {_said(document, 'baseline')} as it is, "
        f"{_said(document, 'strategies')} with the strategies\n"
        f"checkout's p99 goes to: {_p99(document, 'baseline')} as it is, "
        f"{_p99(document, 'strategies')} with the strategies\n"
        f"capacity for a sale of {PEAK_RPS:,.0f} req/s: {_replicas(document)}\n"
        f"{_fleet_line(document)}"
        f"{_neighbour_line(document)}"
        f"reports: {', '.join(document['reports'])}; every number: {out / 'demo.json'} "
        f"({document['seconds']:.0f} s)",
        highlight=False,
    )


def _neighbour_line(document: dict[str, Any]) -> str:
    found = document.get("neighbour")
    if not found:
        return ""
    return (
        f"beside a noisy neighbour: p99 {found['unprotected']['p99_ms']:,.0f} ms unprotected, "
        f"{found['protected']['p99_ms']:,.0f} ms with cpu.weight 1000\n"
    )


def _kept(faults: dict[str, Any], queue: dict[str, Any] | None) -> str:
    plain, guarded = faults["baseline"]["checkouts"], faults["strategies"]["checkouts"]
    later = ""
    if queue:
        later = (
            f" ({queue['completed']:,} of the queue's {queue['queued']:,} paid since, "
            f"p99 {_s(queue['p99_ms'])} after the order; {queue['dead_letters']} dead letters)"
        )
    return (
        f"{plain['paid']:,} paid and {plain['refused']:,} refused as it is; "
        f"{guarded['paid']:,} paid, {guarded['queued']:,} queued{later} and "
        f"{guarded['refused']:,} refused with the strategies"
    )


def _replicas(document: dict[str, Any]) -> str:
    plan = document.get("capacity")
    if not plan:
        return "no plan"
    return f"{plan['replicas']} replicas ({plan['replicas_for_slo']} for the SLO)"


def _p99(document: dict[str, Any], side: str) -> str:
    shares = (document.get("checkout_traces", {}).get(side) or {}).get("p99") or []
    if not shares:
        return "no traces"
    top = shares[0]
    return f"{top['share']:.0%} {top['service']} {top['span']}"


def _said(document: dict[str, Any], side: str) -> str:
    found = document.get("bottleneck", {}).get(side) or {}
    return str(found.get("bottleneck", "not watched"))


def _rate(found: dict[str, Any]) -> str:
    if found["rate"] is not None:
        return f"{found['rate']:,.0f} req/s"
    if found["at_least"] is not None:
        return f"at least {found['at_least']:,.0f} req/s ({found['outcome']})"
    return f"not found ({found['outcome']})"
