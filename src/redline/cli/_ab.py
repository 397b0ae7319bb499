"""``redline ab PLAN --a URL --b URL``: two targets, interleaved rounds, one comparison."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import random
import secrets
import threading

from rich.console import Console

from redline.analysis import evaluate
from redline.core import PlanError, RunError, RunResult, StoreError
from redline.engine import run_plan
from redline.plan import ClosedLoad, OpenLoad, Plan, Stage, load_plan
from redline.store import RunRecorder, RunStore, collect_meta, open_store, parse_labels

from . import _exit
from ._compare import add_compare_options, compare, parse_critical, parse_floor
from ._compare import report_comparison as report
from ._console import error, stdout_console
from ._run import execute
from ._store import add_store_option

__all__ = ["add_ab_parser", "interleaved_order"]


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
    parser.set_defaults(handler=ab_command)


def interleaved_order(rounds: int, rng: random.Random) -> list[str]:
    """``rounds`` pairs of ``"A"`` and ``"B"``, each pair in a random order."""
    order: list[str] = []
    for _ in range(rounds):
        pair = ["A", "B"]
        rng.shuffle(pair)
        order.extend(pair)
    return order


def _halved(plan: Plan) -> Plan:
    """``plan`` at half its load (for a duet: two plans share the machine)."""
    load = plan.load
    if isinstance(load, OpenLoad):
        load = dataclasses.replace(
            load,
            rate=load.rate / 2 if load.rate is not None else None,
            start_rate=load.start_rate / 2,
            stages=tuple(Stage(s.duration, s.target / 2) for s in load.stages),
        )
    elif isinstance(load, ClosedLoad):
        load = dataclasses.replace(
            load,
            vus=max(1, load.vus // 2) if load.vus is not None else None,
            start_vus=load.start_vus // 2,
            stages=tuple(Stage(s.duration, max(1.0, s.target // 2)) for s in load.stages),
        )
    return dataclasses.replace(plan, load=load)


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
        plans = {
            side: load_plan(args.plan, overrides={"url": url, "duration": args.duration})
            for side, url in (("A", args.a), ("B", args.b))
        }
    except (PlanError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    session = secrets.token_hex(3)
    results: dict[str, list[RunResult]] = {"A": [], "B": []}
    try:
        store = None if args.no_store else open_store(args.store)
    except StoreError as exc:
        error(f"{exc} (--no-store runs without keeping the runs)")
        return _exit.NOT_CARRIED_OUT
    with store if store is not None else contextlib.nullcontext():
        try:
            if args.duet:
                for number in range(args.rounds):
                    console.rule(f"round {number + 1} of {args.rounds}: A and B together")
                    for side, result in _duet(plans, store, labels, session).items():
                        results[side].append(result)
            else:
                order = interleaved_order(args.rounds, random.Random(args.seed))
                console.print(f"order: {' '.join(order)}", highlight=False)
                for number, side in enumerate(order, start=1):
                    shown = plans[side].redactor().url(plans[side].target)  # no password
                    console.rule(f"run {number} of {len(order)}: {side} ({shown})")
                    recorder = _recorder(store, labels, session, side)
                    result, _ = execute(plans[side], console=console, recorder=recorder)
                    results[side].append(result)
                    if result.stop_reason != "completed":
                        error(f"run {result.id} ({side}) stopped: {result.stop_reason}")
                        if result.stop_reason == "interrupted":
                            return _exit.INTERRUPTED
                        return _exit.NOT_CARRIED_OUT
        except RunError as exc:
            error(f"the run could not be carried out: {exc}")
            return _exit.NOT_CARRIED_OUT
    try:
        comparison = compare(results["A"], results["B"], args)
    except ValueError as exc:
        error(str(exc))
        return _exit.NOT_CARRIED_OUT
    limited = [r.id for side in results.values() for r in side if r.generator().limited]
    if limited:
        error(f"generator-limited runs, their percentiles understate the truth: {limited}")
    code = report(args, comparison)
    return code if not limited else max(code, _exit.NOT_CARRIED_OUT)


def _recorder(
    store: RunStore | None, labels: dict[str, str], session: str, side: str
) -> RunRecorder | None:
    if store is None:
        return None
    return store.recorder(collect_meta(labels={**labels, "ab": side, "ab_session": session}))


def _duet(
    plans: dict[str, Plan], store: RunStore | None, labels: dict[str, str], session: str
) -> dict[str, RunResult]:
    """Both sides at once, each at half load, in two threads; Ctrl-C stops both."""
    stop = threading.Event()
    results: dict[str, RunResult] = {}
    failures: list[BaseException] = []
    recorders = {side: _recorder(store, labels, session, side) for side in plans}

    def one(side: str) -> None:
        recorder = recorders[side]
        try:
            results[side] = run_plan(
                _halved(plans[side]),
                stop=stop,
                on_start=recorder.start if recorder else None,
                on_interval=recorder.interval if recorder else None,
            )
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=one, args=(side,), name=f"ab-{side}") for side in plans]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join()
    if failures:
        raise failures[0]
    for side, result in results.items():
        recorder = recorders[side]
        if recorder is not None:
            recorder.finish(result, evaluate(result, plans[side].slos))
    return results
