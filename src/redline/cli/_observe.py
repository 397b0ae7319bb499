"""The options that watch the target: ``--serve``, ``--observe``, ``--profile`` and kin."""

from __future__ import annotations

import argparse
import dataclasses

from redline.core import PlanError
from redline.http import parse_address
from redline.plan import (
    ObservePlan,
    Plan,
    ProfileSpec,
    ServeSpec,
    parse_cpus,
    parse_limit,
    parse_watch,
)

__all__ = ["ab_watch", "add_ab_observe_options", "add_observe_options", "with_observe_options"]


def add_observe_options(parser: argparse.ArgumentParser) -> None:
    """Register the options that watch the target (they add to the plan's ``observe:``)."""
    group = parser.add_argument_group("watching the target")
    group.add_argument(
        "--serve",
        metavar="CMD",
        help="start the target with this command, wait until it answers, watch it, stop it "
        'at the end (e.g. "uvicorn app:app --port 8000")',
    )
    group.add_argument("--serve-cpus", metavar="CPUS", help='pin the served target ("0", "0-1")')
    group.add_argument(
        "--serve-limit",
        metavar="LIMITS",
        help='run the served target in a cgroup of its own: "cpu=0.5,memory=256M"',
    )
    group.add_argument(
        "--observe",
        action="append",
        default=[],
        metavar="WHAT",
        help="also watch pid:1234, cgroup:/sys/fs/cgroup/..., prometheus:URL or host (repeatable)",
    )
    group.add_argument(
        "--profile",
        action="store_true",
        help="sample the watched Python process's stacks with py-spy over the steady state",
    )
    group.add_argument(
        "--profile-rate", type=float, metavar="HZ", help="samples per second (default 19)"
    )
    group.add_argument(
        "--idle",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also sample waiting threads, kept apart from on-CPU ones (default: on)",
    )
    group.add_argument(
        "--gil", action="store_true", help="count as on-CPU only the thread holding the GIL"
    )
    traces = parser.add_argument_group("tracing the requests")
    traces.add_argument(
        "--trace",
        action="store_true",
        help="send W3C trace context (traceparent) on every request and keep the slowest, "
        "failed and sampled ones",
    )
    traces.add_argument(
        "--trace-sample", type=float, metavar="SHARE", help="share kept whatever its latency"
    )
    traces.add_argument(
        "--otlp",
        metavar="HOST:PORT",
        help="receive the target's spans over OTLP/HTTP here during the run (e.g. "
        "127.0.0.1:4318) and say where each request's time went",
    )


def with_observe_options(plan: Plan, args: argparse.Namespace) -> Plan:
    """``plan`` with the command line's watching options added to its ``observe:``.

    Raises:
        PlanError: an option's value is malformed (the message names the option).
    """
    observe = plan.observe
    serve = observe.serve
    try:
        if args.serve:
            serve = ServeSpec(args.serve)
        if args.serve_cpus or args.serve_limit:
            if serve is None:
                raise ValueError("needs --serve (or observe.serve in the plan)")
            cpus = ",".join(map(str, parse_cpus(args.serve_cpus))) if args.serve_cpus else None
            cpu, memory = parse_limit(args.serve_limit) if args.serve_limit else (None, None)
            serve = dataclasses.replace(
                serve,
                cpus=cpus or serve.cpus,
                cpu_limit=cpu if cpu is not None else serve.cpu_limit,
                memory_limit=memory if memory is not None else serve.memory_limit,
            )
    except ValueError as exc:
        option = "--serve-limit" if args.serve_limit else "--serve-cpus"
        raise PlanError(str(exc), source="command line", path=option) from None
    watch = list(observe.watch)
    for item in args.observe:
        try:
            watch.append(parse_watch(item))
        except ValueError as exc:
            raise PlanError(str(exc), source="command line", path="--observe") from None
    profile = observe.profile
    if args.profile or args.profile_rate or args.gil or args.idle is not None:
        base = profile or ProfileSpec()
        profile = ProfileSpec(
            rate_hz=args.profile_rate or base.rate_hz,
            idle=base.idle if args.idle is None else args.idle,
            gil=args.gil or base.gil,
        )
    trace = plan.trace
    if args.trace or args.trace_sample is not None or args.otlp:
        try:
            if args.otlp:
                parse_address(args.otlp, default_host="127.0.0.1")
            if args.trace_sample is not None and not 0 <= args.trace_sample <= 1:
                raise ValueError(f"--trace-sample: expected 0 to 1, got {args.trace_sample}")
        except ValueError as exc:
            raise PlanError(str(exc), source="command line", path="--otlp") from None
        trace = dataclasses.replace(
            trace,
            enabled=True,
            sample=args.trace_sample if args.trace_sample is not None else trace.sample,
            otlp=args.otlp or trace.otlp,
        )
    plan = dataclasses.replace(plan, trace=trace)
    changed = ObservePlan(serve=serve, watch=tuple(watch), profile=profile)
    if changed.profile is not None and not changed.active:
        raise PlanError(
            "--profile needs something to watch: --serve CMD or --observe pid:PID",
            source="command line",
            path="--profile",
        )
    return dataclasses.replace(plan, observe=changed)


def add_ab_observe_options(parser: argparse.ArgumentParser) -> None:
    """Register ``redline ab``'s watching options: one set per side, one profile switch."""
    group = parser.add_argument_group("watching the targets")
    for side in ("a", "b"):
        group.add_argument(
            f"--serve-{side}",
            metavar="CMD",
            help=f"start {side.upper()}'s target with this command for each of its runs",
        )
        group.add_argument(
            f"--observe-{side}",
            action="append",
            default=[],
            metavar="WHAT",
            help=f"watch {side.upper()}'s pid:1234, cgroup:..., prometheus:URL or host",
        )
    group.add_argument(
        "--profile", action="store_true", help="profile each side's Python process (py-spy)"
    )


def ab_watch(args: argparse.Namespace) -> dict[str, ObservePlan]:
    """What ``redline ab`` watches of each side, from its options.

    Raises:
        PlanError: a malformed ``--observe-a`` or ``--observe-b``.
    """
    out: dict[str, ObservePlan] = {}
    for side in ("a", "b"):
        serve = getattr(args, f"serve_{side}")
        watch = []
        for item in getattr(args, f"observe_{side}"):
            try:
                watch.append(parse_watch(item))
            except ValueError as exc:
                raise PlanError(str(exc), source="command line", path=f"--observe-{side}") from None
        if serve or watch:
            out[side.upper()] = ObservePlan(
                serve=ServeSpec(serve) if serve else None,
                watch=tuple(watch),
                profile=ProfileSpec() if args.profile else None,
            )
    if args.profile and not out:
        raise PlanError(
            "--profile needs something to watch: --serve-a/--serve-b or --observe-a/--observe-b",
            source="command line",
            path="--profile",
        )
    return out
