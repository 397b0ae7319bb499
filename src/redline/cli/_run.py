"""``redline run``: one load test, from a plan file or from options alone."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from redline.analysis import Comparison
from redline.capacity import FleetModel, load_policies, scaling_events
from redline.core import (
    FAIL,
    PlanError,
    RedlineError,
    RunError,
    RunOutcome,
    RunResult,
    StoreError,
    Verdict,
    parse_duration,
    parse_rate,
)
from redline.http import is_loopback, parse_address
from redline.plan import TEST_TYPES, Plan, check_slos, load_plan, load_slos, quick_plan
from redline.report import (
    LiveView,
    html_report,
    junit_xml,
    render_summary,
    render_target,
    render_traces,
    render_verdicts,
    summary_markdown,
    write_text,
)
from redline.runner import ControlServer, ReplicaFollower, RunControl, run, write_document
from redline.store import open_store, parse_labels

from . import _exit
from ._cluster import add_cluster_option
from ._compare import (
    add_compare_options,
    compare,
    load_runs,
    needs_store,
    parse_critical,
    parse_floor,
)
from ._compare import report_comparison as report
from ._console import error, runner_messages, stdout_console
from ._live import Watchers, add_watch_options
from ._observe import add_observe_options, with_observe_options
from ._shapes import report_analysis
from ._store import add_store_option, reading_store

__all__ = [
    "add_run_parser",
    "console_run",
    "exit_code",
    "print_outcome",
    "run_command",
    "stop_on_signals",
]


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
    parser.add_argument(
        "--type",
        choices=TEST_TYPES,
        help="shape the load as this test type around the rate or user count (docs/find.md)",
    )
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
    parser.add_argument(
        "--compress",
        metavar="ENCODINGS",
        help="ask for compressed responses (e.g. gzip,br,zstd), decode them and say what "
        "they saved; overrides the plan's compression.accept",
    )
    parser.add_argument(
        "--protocol",
        choices=("http1", "h2", "h2c"),
        help="HTTP/1.1, HTTP/2 over TLS (ALPN) or h2c (HTTP/2 over plain TCP); "
        "overrides the plan's protocol:",
    )
    parser.add_argument(
        "--slo", type=Path, metavar="FILE", help="objectives from this file (replace the plan's)"
    )
    parser.add_argument("--out", type=Path, help="write the whole result as JSON to this file")
    parser.add_argument(
        "--allow-host-faults",
        action="store_true",
        help="let the plan's network and disk faults act on the host's own interfaces and "
        "file systems (by default only on namespaces and file systems a test made)",
    )
    parser.add_argument(
        "--junit", type=Path, metavar="FILE", help="write one JUnit test case per objective"
    )
    parser.add_argument(
        "--summary-md", type=Path, metavar="FILE", help="write a Markdown summary (for a PR)"
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write the HTML report (self-contained; with --baseline, compared)",
    )
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="label the stored run, e.g. branch=main (repeatable)",
    )
    parser.add_argument(
        "--control",
        metavar="[HOST:]PORT",
        help="serve the live-control API (pause, resume, rate, vus) at HOST:PORT "
        "(host 127.0.0.1; elsewhere a token is required; docs/cli.md)",
    )
    parser.add_argument(
        "--control-token", metavar="TOKEN", help="the token the control API asks for"
    )
    for flag, what in (("--allow", "allowed"), ("--block", "blocked")):
        parser.add_argument(
            flag,
            action="append",
            default=[],
            metavar="HOST|CIDR",
            help=f"a host, *.domain or network where load is {what} (repeatable; adds to the "
            f"plan's {flag[2:]}: list; docs/plans.md)",
        )
    parser.add_argument(
        "--redact",
        action="append",
        default=[],
        metavar="NAME",
        help="a header or field whose values are secret (repeatable; Authorization and "
        "cookies always are)",
    )
    add_store_option(parser)
    parser.add_argument("--no-store", action="store_true", help="do not keep this run")
    parser.add_argument(
        "--baseline",
        metavar="RUNS",
        help="compare with these runs afterwards: ids, JSON files or label:KEY=VALUE "
        "(resolved before the run starts)",
    )
    add_compare_options(parser)
    add_watch_options(parser)
    parser.add_argument("--quiet", action="store_true", help="no live view")
    add_observe_options(parser)
    scaling = parser.add_argument_group("the target's scaling during the run")
    scaling.add_argument(
        "--replicas-from",
        metavar="SOURCE",
        help="follow the replica count: command:CMD (it prints the count) or prometheus:URL",
    )
    scaling.add_argument(
        "--replicas-query",
        default="sum(kube_deployment_status_ready_replicas)",
        help="the Prometheus query of a prometheus: source",
    )
    scaling.add_argument(
        "--replicas-policy", type=Path,
        help="an autoscaling policy to replay on the run's own demand, to compare",
    )  # fmt: skip
    scaling.add_argument("--capacity", help="one replica's capacity, for --replicas-policy")
    scaling.add_argument(
        "--startup", default="30s", help="a replica's start-up, for --replicas-policy"
    )
    add_cluster_option(parser)
    parser.set_defaults(handler=run_command)


def _plan_from_args(args: argparse.Namespace) -> Plan:
    plan = with_observe_options(_load(args), args)
    if getattr(args, "allow_host_faults", False):
        plan = dataclasses.replace(plan, faults=dataclasses.replace(plan.faults, allow_host=True))
    if args.slo is not None:
        objectives = check_slos(plan, load_slos(args.slo))
        plan = dataclasses.replace(plan, slos=objectives)
    return plan


def _load(args: argparse.Namespace) -> Plan:
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
            "protocol": getattr(args, "protocol", None),
            "compress": getattr(args, "compress", None),
            "redact": args.redact,
            "type": args.type,
            "allow": args.allow,
            "block": args.block,
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
        duration=args.duration,
        verify_tls=not args.insecure,
        redact=args.redact,
        test_type=args.type,
        allow=args.allow,
        block=args.block,
        protocol=getattr(args, "protocol", None),
        compress=getattr(args, "compress", None),
    )


@contextlib.contextmanager
def _control_api(
    args: argparse.Namespace,
    control: RunControl,
    plan: Plan,
    console: Console,
    watchers: Watchers,
) -> Iterator[None]:
    """``--control``: serve the live-control API for the run's life.

    A dashboard on loopback gets buttons that act through it (off loopback it does not:
    its page would bypass the API's token).
    """
    if not args.control:
        yield
        return
    try:
        host, port = parse_address(args.control, default_host="127.0.0.1")
        api = ControlServer(control, plan, host=host, port=port, token=args.control_token)
    except (ValueError, OSError) as exc:
        raise RunError(f"--control {args.control}: {exc}") from exc
    dashboard = watchers.dashboard
    if dashboard is not None and is_loopback(dashboard.host):
        dashboard.controls = api.act
        dashboard.model = "open" if plan.load.model == "open" else "closed"
    with api:
        token = f" (token {api.token})" if api.token and not args.control_token else ""
        console.print(f"control at {api.url}{token}", highlight=False)
        yield


@contextlib.contextmanager
def stop_on_signals(control: RunControl, console: Console) -> Iterator[None]:
    """First Ctrl-C or SIGTERM stops the run gracefully; a second Ctrl-C aborts."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if control.stopped:
            signal.default_int_handler(signum, frame)
        control.stop()
        console.print(
            "stopping: finishing in-flight requests (Ctrl-C again to abort)", style="yellow"
        )

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def console_run(
    console: Console, *, quiet: bool = False
) -> Iterator[tuple[RunControl, list[object]]]:
    """What a run on the command line has around it.

    Ctrl-C handling (through the control it yields), the runner's messages on the
    console, and (unless ``quiet``) the live view in the observers it yields.
    """
    control = RunControl()
    with contextlib.ExitStack() as stack:
        stack.enter_context(stop_on_signals(control, console))
        stack.enter_context(runner_messages(console))
        observers: list[object] = []
        if not quiet:
            observers.append(stack.enter_context(LiveView(console)))
        yield control, observers


def print_outcome(console: Console, outcome: RunOutcome) -> None:
    """The summary, the verdicts, and what was read off the run's shape and faults."""
    console.print(render_summary(outcome.result))
    if outcome.verdicts:
        console.print(render_verdicts(outcome.verdicts))
    report_analysis(console, outcome.analysis)
    if outcome.target is not None:
        console.print(render_target(outcome.target))
    if outcome.traces is not None:
        console.print(render_traces(outcome.traces))


def exit_code(result: RunResult, verdicts: Sequence[Verdict] = ()) -> int:
    """Map a finished run and its verdicts to the documented exit code."""
    if result.stop_reason == "interrupted":
        return _exit.INTERRUPTED
    if result.stop_reason == "aborted":
        return _exit.FAILED
    if not result.complete or result.generator().limited:
        return _exit.NOT_CARRIED_OUT
    if any(v.outcome == FAIL for v in verdicts):
        return _exit.FAILED
    return _exit.OK


def _follower(args: argparse.Namespace) -> ReplicaFollower | None:
    """The replica follower ``--replicas-from`` asks for (its source read once now).

    Raises:
        ValueError: a bad source, or one that cannot be read (the message says which).
    """
    if not args.replicas_from:
        if args.replicas_policy is not None:
            raise ValueError("--replicas-policy compares with --replicas-from: give both")
        return None
    if args.replicas_policy is not None and not args.capacity:
        raise ValueError("--replicas-policy needs --capacity (one replica's, e.g. 100/s)")
    try:
        return ReplicaFollower(args.replicas_from, args.replicas_query)
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise ValueError(f"--replicas-from: {exc}") from exc


def _scaling(
    args: argparse.Namespace,
    follower: ReplicaFollower | None,
    outcome: RunOutcome,
    plan: Plan,
    console: Console,
) -> dict[str, Any] | None:
    """Print and return the scaling events seen during the run."""
    if follower is None:
        return None
    follower.close()
    policy = model = None
    if args.replicas_policy is not None:
        try:
            model = FleetModel(
                capacity_rps=parse_rate(args.capacity), startup_s=parse_duration(args.startup)
            )
            (policy, *_) = load_policies(
                args.replicas_policy, capacity_rps=model.capacity_rps, startup_s=model.startup_s
            )
        except (RedlineError, ValueError) as exc:
            error(f"--replicas-policy: {exc}")
    events = scaling_events(
        outcome.result, follower.readings, plan.slos, policy=policy, model=model
    )
    for event in events:
        burn = ", ".join(
            f"{name} burn {rate:.1f}x" for name, rate in event.burn.items() if rate is not None
        )
        after = "" if event.delay_s is None else f" {event.delay_s:.0f} s after the load step"
        replayed = ""
        if policy is not None:
            replayed = (
                f"; {event.replayed_difference_s:+.0f} s against the replayed policy"
                if event.replayed_difference_s is not None
                else "; the replayed policy had not got there by the end of the run"
            )
        console.print(
            f"scaling at {event.at_s:.0f} s: {event.before} -> {event.after} replicas{after}"
            f"{'; ' + burn if burn else ''}{replayed}",
            highlight=False,
        )
    if not events:
        console.print(
            f"scaling: the replica count did not change ({len(follower.readings)} readings, "
            f"{follower.failures} failed)",
            highlight=False,
        )
    return {
        "readings": [list(r) for r in follower.readings],
        "failures": follower.failures,
        "events": [e.to_dict() for e in events],
    }


def run_command(args: argparse.Namespace) -> int:
    """Carry out ``redline run``."""
    console = stdout_console()
    try:
        plan = _plan_from_args(args)
        labels = parse_labels(args.label)
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    except ValueError as exc:
        error(f"--label: {exc}")
        return _exit.USAGE
    outputs = {
        "--out": args.out,
        "--junit": args.junit,
        "--summary-md": args.summary_md,
        "--html": args.html,
    }
    for option, path in outputs.items():
        if path is not None and not path.parent.resolve().is_dir():
            error(f"{option}: directory {str(path.parent)!r} does not exist")
            return _exit.USAGE
    try:
        baseline = _baseline(args, plan)
    except (StoreError, ValueError) as exc:
        error(f"--baseline: {exc}")
        return _exit.USAGE
    with contextlib.ExitStack() as cleanup:
        store = None
        if not args.no_store:
            try:
                store = cleanup.enter_context(open_store(args.store))
            except StoreError as exc:
                error(f"{exc} (--no-store runs without keeping the run)")
                return _exit.NOT_CARRIED_OUT
        watchers = cleanup.enter_context(Watchers())
        try:
            watchers.open(args, plan, console)
            follower = _follower(args)
        except ValueError as exc:
            error(str(exc))
            return _exit.USAGE
        if follower is not None:
            cleanup.callback(follower.close)
            watchers.observers.append(follower)
        try:
            with (
                console_run(console, quiet=args.quiet) as (control, observers),
                _control_api(args, control, plan, console, watchers),
            ):
                outcome = run(
                    plan,
                    observers=[*observers, *watchers.observers],
                    store=store,
                    labels=labels,
                    workers=args.workers,
                    control=control,
                )
        except PlanError as exc:
            error(str(exc))
            return _exit.USAGE
        except RunError as exc:
            error(f"the run could not be carried out: {exc}")
            return _exit.NOT_CARRIED_OUT
        result, verdicts = outcome.result, outcome.verdicts
        print_outcome(console, outcome)
        scaling = _scaling(args, follower, outcome, plan, console)
        comparison: Comparison | str | None = None
        if baseline:
            try:
                comparison = compare(baseline, [result], args)
            except ValueError as exc:
                comparison = str(exc)
        writers = {
            "--out": lambda path: write_document(
                {**outcome.to_dict(), **({"scaling": scaling} if scaling else {})}, path
            ),
            "--junit": lambda path: write_text(junit_xml(result, verdicts), path),
            "--summary-md": lambda path: write_text(summary_markdown(result, verdicts), path),
            "--html": lambda path: write_text(
                html_report(
                    result,
                    verdicts,
                    meta=outcome.meta.to_dict(),
                    baseline=baseline[0] if baseline else None,
                    comparison=comparison if isinstance(comparison, Comparison) else None,
                    target=outcome.target,
                    traces=outcome.traces,
                ),
                path,
            ),
        }
        for option, path in outputs.items():
            if path is None:
                continue
            try:
                writers[option](path)
            except OSError as exc:
                error(f"{option}: cannot write {str(path)!r}: {exc.strerror}")
                return _exit.USAGE
            console.print(f"{option.lstrip('-')} written to {path}", highlight=False)
        code = exit_code(result, verdicts)
        if isinstance(comparison, str):
            error(f"--baseline: {comparison}")
            code = max(code, _exit.NOT_CARRIED_OUT)
        elif comparison is not None:
            code = max(code, report(args, comparison))
        watchers.linger(console)
    return code


def _baseline(args: argparse.Namespace, plan: Plan) -> list[RunResult]:
    """The runs named by ``--baseline``, looked up before the run starts.

    So a label never finds the run being made, and a bad baseline costs no load.

    Raises:
        StoreError, ValueError: the baseline cannot be found, or an option is wrong.
    """
    parse_floor(args.floor)
    parse_critical(args.critical)
    if args.baseline is None:
        if args.gate:
            raise ValueError("--gate needs a --baseline to compare with")
        return []
    if not needs_store(args.baseline):
        return [s.result for s in load_runs(args.baseline, None)]
    with reading_store(args.store) as store:
        return [s.result for s in load_runs(args.baseline, store, plan=plan.name)]
