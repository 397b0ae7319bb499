"""``redline find PLAN``: the redline (open model) or a concurrency sweep and USL fit."""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from redline.analysis import MIN_USL_POINTS, Redline, Step, SweepLevel, UslFit, fit_usl
from redline.core import PlanError, RunError, RunResult, StoreError, parse_duration, parse_rate
from redline.plan import Plan, load_plan
from redline.report import html_report, write_text
from redline.runner import RunControl, find, sweep
from redline.store import RunStore, open_store

from . import _exit
from ._cluster import add_cluster_option
from ._console import emit, error, stdout_console
from ._observe import add_observe_options, with_observe_options
from ._run import stop_on_signals
from ._store import add_store_option

__all__ = ["add_find_parser"]


def add_find_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline find``."""
    parser = subparsers.add_parser(
        "find",
        help="find the redline: the highest rate at which every objective holds",
        description="Step the arrival rate up until an objective breaks, bisect, repeat the "
        "bracket for an interval; with --closed, sweep virtual users and fit the USL.",
    )
    parser.add_argument("plan", help="a YAML plan file with objectives (slo:)")
    parser.add_argument("--url", help="target URL (overrides the plan's target)")
    parser.add_argument("--start", help='the first rate tried, e.g. "100/s" (default: the plan\'s)')
    parser.add_argument("--factor", type=float, default=1.5, help="step-up factor (default 1.5)")
    parser.add_argument("--step", default="10s", help="measured time per step (default 10s)")
    parser.add_argument("--refine-step", help="time per bisection step (default: half of --step)")
    parser.add_argument("--max-rate", help="never offer more than this rate")
    parser.add_argument(
        "--tolerance", type=float, default=0.05, help="bisect to this relative width (0.05)"
    )
    parser.add_argument(
        "--repeats", type=int, default=4, help="runs of the final bracket, for the interval (4)"
    )
    parser.add_argument(
        "--repeat-step", help="time per repeat of the final bracket (default: 3 x --step)"
    )
    parser.add_argument(
        "--closed", action="store_true", help="sweep virtual users instead and fit the USL"
    )
    parser.add_argument(
        "--levels",
        default="1,2,4,8,16,32",
        help="virtual users of each --closed level (default 1,2,4,8,16,32)",
    )
    parser.add_argument("--workers", type=int, help="worker processes per step")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    parser.add_argument("--out", type=Path, help="write the outcome as JSON to this file")
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write the report: the latency-throughput curve and the last good step's run",
    )
    add_store_option(parser)
    parser.add_argument("--no-store", action="store_true", help="do not keep the steps' runs")
    add_observe_options(parser)
    add_cluster_option(parser)
    parser.set_defaults(handler=find_command)


def _option(parse: Callable[[str], float], text: str | None, option: str) -> float | None:
    """``text`` parsed (a rate or a duration), or None; a bad value names its option."""
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise PlanError(str(exc), source="command line", path=option) from exc


def find_command(args: argparse.Namespace) -> int:
    """Carry out ``redline find``."""
    console = Console(stderr=True) if args.json else stdout_console()
    try:
        plan = with_observe_options(load_plan(args.plan, overrides={"url": args.url}), args)
        start = _option(parse_rate, args.start, "--start")
        max_rate = _option(parse_rate, args.max_rate, "--max-rate")
        step_s = _option(parse_duration, args.step, "--step") or 10.0
        refine_s = _option(parse_duration, args.refine_step, "--refine-step")
        levels = [int(v) for v in args.levels.split(",") if v.strip()]
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    except ValueError:
        error(f"--levels: expected user counts like 1,2,4,8, got {args.levels!r}")
        return _exit.USAGE
    for option, path in (("--out", args.out), ("--html", args.html)):
        if path is not None and not path.parent.resolve().is_dir():
            error(f"{option}: directory {str(path.parent)!r} does not exist")
            return _exit.USAGE
    if args.html is not None and args.closed:
        error("--html draws the rate search's curve; with --closed use --out")
        return _exit.USAGE
    search = f"find-{secrets.token_hex(3)}"
    with contextlib.ExitStack() as cleanup:
        store: RunStore | None = None
        if not args.no_store:
            try:
                store = cleanup.enter_context(open_store(args.store))
            except StoreError as exc:
                error(f"{exc} (--no-store searches without keeping the steps)")
                return _exit.NOT_CARRIED_OUT
        runs: dict[str, RunResult] = {}

        def on_step(step: Step, result: RunResult) -> None:
            runs[result.id] = result
            _print_step(console, step)

        control = RunControl()
        try:
            cleanup.enter_context(stop_on_signals(control, console))
            if args.closed:
                return _sweep(args, plan, levels, step_s, console, store, search, control)
            found = find(
                plan,
                start=start,
                factor=args.factor,
                step_s=step_s,
                refine_s=refine_s,
                max_rate=max_rate or 1_000_000.0,
                tolerance=args.tolerance,
                repeats=args.repeats,
                repeat_s=_option(parse_duration, args.repeat_step, "--repeat-step"),
                workers=args.workers,
                on_step=on_step,
                store=store,
                search_id=search,
                control=control,
            )
        except PlanError as exc:
            error(str(exc))
            return _exit.USAGE
        except RunError as exc:
            error(f"the search could not be carried out: {exc}")
            return _exit.NOT_CARRIED_OUT
        except KeyboardInterrupt:
            error("interrupted: the steps run so far are stored")
            return _exit.INTERRUPTED
    _print_redline(console, found, search if store is not None else None)
    document = {"search": search, **found.to_dict()}
    code = _write(args, document)
    if code == _exit.OK and args.html is not None:
        code = _write_html(args.html, found, runs, console)
    if code != _exit.OK:
        return code
    if control.stopped:
        error("interrupted: the search stopped early")
        return _exit.INTERRUPTED
    if found.outcome in ("found", "held at max"):  # Redline.outcome's values
        return _exit.OK
    return _exit.NOT_CARRIED_OUT if found.outcome == "generator limited" else _exit.FAILED


def _write_html(path: Path, found: Redline, runs: dict[str, RunResult], console: Console) -> int:
    """The report: the curve, and the run of the last step that held (else the first)."""
    held = [s for s in found.steps if s.holds and s.run_id in runs]
    chosen = held[-1] if held else found.steps[0]
    result = runs[chosen.run_id]
    text = html_report(result, chosen.verdicts, search=found.to_dict())
    try:
        write_text(text, path)
    except OSError as exc:
        error(f"--html: cannot write {str(path)!r}: {exc.strerror}")
        return _exit.USAGE
    console.print(f"html written to {path}", highlight=False)
    return _exit.OK


def _print_step(console: Console, step: Step) -> None:
    mark = "[green]holds[/]" if step.holds else "[red]breaks[/]"
    if step.limited:
        mark = "[yellow]generator limited[/]"
    broken = [v.objective.text for v in step.verdicts if not v.passed and v.value is not None]
    why = f" ({', '.join(broken)})" if broken and not step.holds else ""
    console.print(
        f"{step.phase:>7} {step.rate:>10,.1f}/s  achieved {step.achieved:>10,.1f}/s  "
        f"p50 {step.p50_ms:8.2f} ms  p99 {step.p99_ms:8.2f} ms  errors {step.error_rate:6.2%}  "
        f"{mark}{why}" + (f"  [bold]{step.bottleneck}[/]" if step.bottleneck else "")
    )


def _print_redline(console: Console, found: Redline, search: str | None) -> None:
    style = "bold green" if found.outcome == "found" else "bold yellow"
    console.print(found.summary(), style=style, highlight=False)
    console.print(found.reason, highlight=False)
    if found.knee is not None:
        console.print(
            f"knee of the latency-throughput curve (Kneedle) at ~{found.knee:,.0f} req/s",
            highlight=False,
        )
    first = found.first_saturated
    if first is not None:
        console.print(
            f"first to saturate on the way up: {first.bottleneck} at {first.rate:,.0f} req/s "
            f"({first.evidence})",
            highlight=False,
        )
    if search is not None:
        console.print(f"steps stored with label find={search}", highlight=False)


def _sweep(
    args: argparse.Namespace,
    plan: Plan,
    levels: list[int],
    step_s: float,
    console: Console,
    store: RunStore | None,
    search: str,
    control: RunControl,
) -> int:
    def on_level(level: SweepLevel, result: RunResult) -> None:
        flag = "  [yellow]client-bound[/]" if level.little.client_bound else ""
        console.print(
            f"{level.users:>5} users  {level.throughput:>10,.1f}/s  p50 {level.p50_ms:8.2f} ms  "
            f"p99 {level.p99_ms:8.2f} ms  X*(R+Z) {level.little.measured:7.2f}{flag}"
        )

    done = sweep(
        plan,
        levels=levels,
        step_s=step_s,
        workers=args.workers,
        on_level=on_level,
        store=store,
        search_id=search,
        control=control,
    )
    document: dict[str, Any] = {"levels": [level.to_dict() for level in done]}
    code = _exit.OK
    fit: UslFit | None = None
    try:
        fit = fit_usl([(lv.users, lv.throughput) for lv in done if lv.throughput > 0])
    except ValueError as exc:
        error(f"no USL fit: {exc} (give at least {MIN_USL_POINTS} --levels)")
        code = _exit.NOT_CARRIED_OUT
    if fit is not None:
        document["usl"] = fit.to_dict()
        peak = "none (kappa 0: no retrograde region)"
        if fit.peak_low is not None and fit.peak_high is not None:
            peak = f"{fit.peak:,.1f} users (95% CI {fit.peak_low:,.1f}-{fit.peak_high:,.1f})"
        console.print(
            f"USL: sigma {fit.sigma:.4f} ± {fit.sigma_se:.4f}, kappa {fit.kappa:.5f} ± "
            f"{fit.kappa_se:.5f}, lambda {fit.lam:,.1f} ± {fit.lam_se:,.1f} req/s; "
            f"R² {fit.r_squared:.3f}\npeak concurrency N* {peak}, at most "
            f"~{fit.peak_throughput:,.0f} req/s",
            highlight=False,
        )
    bound = [lv.users for lv in done if lv.little.client_bound]
    if bound:
        console.print(
            f"Little's law: at {', '.join(map(str, bound))} users the client, not the target, "
            "limited throughput: the fit describes the generator there",
            style="yellow",
            highlight=False,
        )
    written = _write(args, document)
    return written if written != _exit.OK else code


def _write(args: argparse.Namespace, document: dict[str, Any]) -> int:
    text = json.dumps(document, indent=1) + "\n"
    if args.json:
        print(text, end="")
    if args.out is not None:
        return emit(text, args.out)
    return _exit.OK
