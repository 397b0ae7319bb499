"""``redline ab PLAN --a URL --b URL``: two targets, interleaved rounds, one comparison."""

from __future__ import annotations

import argparse
import contextlib
import random

from rich.console import Console

from redline.core import PlanError, RunError, StoreError
from redline.plan import Plan, load_plan
from redline.runner import ab, interleaved_order
from redline.store import open_store, parse_labels

from . import _exit
from ._cluster import add_cluster_option
from ._compare import add_compare_options, compare, parse_critical, parse_floor
from ._compare import report_comparison as report
from ._console import error, stdout_console
from ._observe import ab_watch, add_ab_observe_options
from ._run import console_run
from ._store import add_store_option

__all__ = ["add_ab_parser"]


def add_ab_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline ab``."""
    parser = subparsers.add_parser(
        "ab",
        help="compare two targets with interleaved runs",
        description="Run PLAN against two targets in randomized interleaved rounds "
        "(A B, B A, ...), so drift on the machine hits both alike, then compare B with A.",
    )
    parser.add_argument("plan", help="a plan file")
    parser.add_argument("--a", required=True, metavar="URL", help="the baseline target")
    parser.add_argument("--b", required=True, metavar="URL", help="the candidate target")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of A and B (default 3)")
    parser.add_argument(
        "--duet", action="store_true", help="run A and B at the same time, at half rate each"
    )
    parser.add_argument("--duration", help="each run's duration (overrides the plan's)")
    parser.add_argument("--seed", type=int, help="seed of the round order (default: random)")
    parser.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="label the runs"
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    add_compare_options(parser)
    add_store_option(parser)
    parser.add_argument("--no-store", action="store_true", help="do not keep the runs")
    add_ab_observe_options(parser)
    add_cluster_option(parser)
    parser.set_defaults(handler=ab_command)


def ab_command(args: argparse.Namespace) -> int:
    """Carry out ``redline ab``."""
    # With --json, standard output carries the comparison alone: progress goes to stderr.
    console = Console(stderr=True) if args.json else stdout_console()
    try:
        parse_floor(args.floor)
        parse_critical(args.critical)
        labels = parse_labels(args.label)
        if args.rounds < 1:
            raise ValueError(f"--rounds: expected at least 1, got {args.rounds}")
        for url in (args.a, args.b):  # a bad plan costs no load
            load_plan(args.plan, overrides={"url": url, "duration": args.duration})
        watch = ab_watch(args)
    except (PlanError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    try:
        store = None if args.no_store else open_store(args.store)
    except StoreError as exc:
        error(f"{exc} (--no-store runs without keeping the runs)")
        return _exit.NOT_CARRIED_OUT

    def on_run(number: int, side: str, plan: Plan) -> None:
        if number == 1:
            console.print(f"order: {' '.join(done_order)}", highlight=False)
        shown = plan.redactor().url(plan.target)  # never a password
        console.rule(f"run {number} of {2 * args.rounds}: {side} ({shown})")

    done_order: list[str] = []
    # the order printed is the order run: one seed for both
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    with store if store is not None else contextlib.nullcontext():
        try:
            with console_run(console) as (control, observers):
                if args.duet:
                    console.rule(f"{args.rounds} round(s) of A and B together, at half load each")
                else:
                    done_order.extend(interleaved_order(args.rounds, random.Random(seed)))
                runs = ab(
                    args.plan,
                    a=args.a,
                    b=args.b,
                    rounds=args.rounds,
                    duet=args.duet,
                    seed=seed,
                    duration=args.duration,
                    store=store,
                    observers=observers,
                    labels=labels,
                    on_run=on_run,
                    control=control,
                    watch=watch,  # type: ignore[arg-type]
                )
        except PlanError as exc:
            error(str(exc))
            return _exit.USAGE
        except RunError as exc:
            error(f"the run could not be carried out: {exc}")
            return _exit.NOT_CARRIED_OUT
    stopped = runs.stopped
    if stopped is not None:
        side = "A" if stopped in runs.a else "B"
        error(f"run {stopped.result.id} ({side}) stopped: {stopped.result.stop_reason}")
        if stopped.result.stop_reason == "interrupted":
            return _exit.INTERRUPTED
        return _exit.NOT_CARRIED_OUT
    try:
        comparison = compare(runs.results("A"), runs.results("B"), args)
    except ValueError as exc:
        error(str(exc))
        return _exit.NOT_CARRIED_OUT
    limited = [o.result.id for o in (*runs.a, *runs.b) if o.result.generator().limited]
    if limited:
        error(f"generator-limited runs, their percentiles understate the truth: {limited}")
    code = report(args, comparison)
    for side, outcomes in (("A", runs.a), ("B", runs.b)):
        target = outcomes[-1].target if outcomes else None
        if target is not None and target.verdict is not None:
            console.print(
                f"{side}: bottleneck {target.verdict.bottleneck}: {target.verdict.evidence}",
                highlight=False,
            )
    return code if not limited else max(code, _exit.NOT_CARRIED_OUT)
