"""``redline run``: one load test, from a plan file or from options alone."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from rich.console import Console

from redline.core import PlanError, RunError, RunResult
from redline.engine import run_plan
from redline.plan import Plan, load_plan, quick_plan
from redline.report import LiveView, render_summary, write_json

from . import _exit
from ._console import error, stdout_console

__all__ = ["add_run_parser", "execute", "run_command"]


def add_run_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline run``."""
    parser = subparsers.add_parser(
        "run",
        help="run a load test",
        description="Run a load test from a plan file, or from --url alone.",
    )
    parser.add_argument("plan", nargs="?", help="a YAML plan file")
    parser.add_argument("--url", help="target URL (overrides the plan's target)")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--rate", help='open model: constant arrival rate, e.g. "1000/s"')
    model.add_argument("--vus", type=int, help="closed model: number of virtual users")
    parser.add_argument("--duration", help='measured duration, e.g. "30s" (default 10s)')
    parser.add_argument("--method", default="GET", help="HTTP method (without a plan)")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="request header (repeatable)",
    )
    parser.add_argument("--body", help="request body (without a plan)")
    parser.add_argument("--workers", type=int, help="worker processes (default: as the load needs)")
    parser.add_argument(
        "--insecure", action="store_true", help="accept any TLS certificate (https targets)"
    )
    parser.add_argument("--out", type=Path, help="write the whole result as JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no live view")
    parser.set_defaults(handler=run_command)


def _plan_from_args(args: argparse.Namespace) -> Plan:
    if args.plan:
        if args.method != "GET" or args.header or args.body is not None:
            raise PlanError(
                "--method, --header and --body apply only without a plan", source="command line"
            )
        overrides = {
            "url": args.url,
            "rate": args.rate,
            "vus": args.vus,
            "duration": args.duration,
            "insecure": args.insecure,
        }
        return load_plan(args.plan, overrides=overrides)
    if not args.url:
        raise PlanError("give a plan file or --url", source="command line")
    if not args.rate and not args.vus:
        raise PlanError('give --rate (like "100/s") or --vus (like 10)', source="command line")
    headers = {}
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise PlanError(
                f'expected "Name: value", got {item!r}', source="command line", path="--header"
            )
        headers[name.strip()] = value.strip()
    return quick_plan(
        args.url,
        method=args.method,
        headers=headers,
        body=args.body,
        rate=args.rate,
        vus=args.vus,
        duration=args.duration or "10s",
        verify_tls=not args.insecure,
    )


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, console: Console) -> Iterator[None]:
    """First Ctrl-C or SIGTERM stops the run gracefully; a second Ctrl-C aborts."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            signal.default_int_handler(signum, frame)
        stop.set()
        console.print(
            "stopping: finishing in-flight requests (Ctrl-C again to abort)", style="yellow"
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def execute(
    plan: Plan, *, console: Console, workers: int | None = None, quiet: bool = False
) -> RunResult:
    """Run ``plan`` with the live view and signal handling of the command line.

    Raises:
        RunError: the run could not be carried out.
    """
    stop = threading.Event()
    with _stop_on_signals(stop, console):
        if quiet:
            return run_plan(plan, workers=workers, stop=stop)
        with LiveView(console, total=plan.warmup + plan.duration, warmup=plan.warmup) as view:
            return run_plan(plan, workers=workers, on_interval=view.update, stop=stop)


def exit_code(result: RunResult) -> int:
    """Map a finished run to the documented exit code."""
    if result.stop_reason == "interrupted":
        return _exit.INTERRUPTED
    if not result.complete or result.generator().limited:
        return _exit.NOT_CARRIED_OUT
    return _exit.OK


def run_command(args: argparse.Namespace) -> int:
    """Carry out ``redline run``."""
    console = stdout_console()
    try:
        plan = _plan_from_args(args)
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    if args.out is not None and not args.out.parent.resolve().is_dir():
        error(f"--out: directory {str(args.out.parent)!r} does not exist")
        return _exit.USAGE
    try:
        result = execute(plan, console=console, workers=args.workers, quiet=args.quiet)
    except RunError as exc:
        error(f"the run could not be carried out: {exc}")
        return _exit.NOT_CARRIED_OUT
    console.print(render_summary(result))
    if args.out is not None:
        try:
            write_json(result, args.out)
        except OSError as exc:
            error(f"--out: cannot write {str(args.out)!r}: {exc.strerror}")
            return _exit.USAGE
        console.print(f"result written to {args.out}", highlight=False)
    return exit_code(result)
