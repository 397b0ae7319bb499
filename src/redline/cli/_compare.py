"""``redline compare BASE CANDIDATE``: better, worse, or the same, with confidence."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from redline.analysis import METRICS, Comparison, compare_runs, slower_spans
from redline.core import RunResult, StoreError
from redline.report import (
    comparison_junit,
    comparison_markdown,
    grown_functions,
    html_report,
    render_comparison,
    render_phases,
    write_text,
)
from redline.store import RunStore, StoredRun

from . import _exit
from ._console import error, stdout_console
from ._store import add_store_option, reading_store

__all__ = [
    "add_compare_options",
    "add_compare_parser",
    "gate_code",
    "load_runs",
    "needs_store",
    "parse_critical",
    "parse_floor",
]


def add_compare_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``compare``, ``ab`` and ``run --baseline``."""
    parser.add_argument("--floor", default="5%", help="smallest change that matters (default 5%%)")
    parser.add_argument(
        "--critical",
        metavar="METRICS",
        help=f"metrics whose regression fails --gate, of {', '.join(METRICS)} "
        "(default: those the objectives bind, else p99,error_ratio)",
    )
    parser.add_argument(
        "--gate", action="store_true", help="exit 1 on a regression in a critical metric"
    )
    parser.add_argument(
        "--strict", action="store_true", help="with --gate, inconclusive critical metrics fail too"
    )
    parser.add_argument(
        "--compare-junit", type=Path, metavar="FILE", help="write the comparison as JUnit XML"
    )
    parser.add_argument(
        "--compare-md", type=Path, metavar="FILE", help="write the comparison as Markdown"
    )


def add_compare_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline compare``."""
    parser = subparsers.add_parser(
        "compare",
        help="compare a candidate run with a baseline",
        description="Compare runs metric by metric, with confidence intervals. BASE and "
        "CANDIDATE are each one or more comma-separated run ids (or prefixes, or latest), "
        "result JSON files, or label:KEY=VALUE (the latest --runs runs with that label).",
    )
    parser.add_argument("base", help="the baseline")
    parser.add_argument("candidate", help="the run(s) to judge")
    parser.add_argument(
        "--runs", type=int, default=1, help="runs taken for a label:... side (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write the candidate's report with the baseline overlaid, the comparison, and a "
        "differential flamegraph when both were profiled",
    )
    add_compare_options(parser)
    add_store_option(parser)
    parser.set_defaults(handler=compare_command)


def parse_floor(text: str) -> float:
    """``"5%"`` or ``"0.05"`` as a fraction.

    Raises:
        ValueError: not a fraction between 0 and 1.
    """
    value = text.strip()
    try:
        floor = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        floor = -1.0
    if not 0 < floor < 1:
        raise ValueError(f'--floor: expected a fraction like "5%" or 0.05, got {text!r}')
    return floor


def parse_critical(text: str | None) -> set[tuple[str, str]] | None:
    """``--critical p99,error_ratio`` as ``(scope, metric)`` pairs for all traffic.

    Raises:
        ValueError: an unknown metric.
    """
    if text is None:
        return None
    out: set[tuple[str, str]] = set()
    for item in (part.strip() for part in text.split(",") if part.strip()):
        scope, _, metric = item.rpartition(":")
        if metric not in METRICS:
            raise ValueError(
                f"--critical: unknown metric {metric!r} (expected {', '.join(METRICS)}, "
                'optionally after an endpoint: "checkout:p99")'
            )
        out.add((scope or "total", metric))
    return out


def load_runs(
    spec: str, store: RunStore | None, *, runs: int = 1, plan: str | None = None
) -> list[StoredRun]:
    """The runs ``spec`` names: comma-separated ids, JSON files or ``label:KEY=VALUE``.

    Raises:
        StoreError: a run that is not in the store, or a label no run has.
        ValueError: a JSON file that is not a redline run.
    """
    out: list[StoredRun] = []
    for ref in (part.strip() for part in spec.split(",") if part.strip()):
        path = Path(ref)
        if ref.endswith(".json") or path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise ValueError(f"{ref}: cannot read a run result: {exc}") from exc
            try:
                out.append(StoredRun.from_dict(data))
            except ValueError as exc:
                raise ValueError(f"{ref}: {exc}") from exc
            continue
        if store is None:
            raise StoreError(f"{ref}: no run store to look it up in")
        if ref.startswith("label:"):
            key, sep, value = ref.removeprefix("label:").partition("=")
            labels = {key: value} if sep else None
            infos = store.runs(plan=plan, labels=labels, limit=None if not sep else runs)
            if not sep:  # label:main matches any label with that value
                infos = [i for i in infos if key in i.labels.values()][:runs]
            if not infos:
                where = f" of plan {plan!r}" if plan else ""
                raise StoreError(f"{store.where}: no run{where} labelled {ref[6:]!r}")
            out.extend(store.load(info.id) for info in infos)
            continue
        out.append(store.load(ref))
    if not out:
        raise ValueError(f"no runs in {spec!r}")
    return out


def gate_code(comparison: Comparison, *, gate: bool, strict: bool) -> int:
    """The exit code of a gate: 1 on a critical regression (or, strict, inconclusive)."""
    if not gate:
        return _exit.OK
    if comparison.regressions():
        return _exit.FAILED
    if strict and comparison.inconclusive():
        return _exit.FAILED
    return _exit.OK


def report_comparison(args: argparse.Namespace, comparison: Comparison) -> int:
    """Print ``comparison``, write its files, and return the gate's exit code.

    With ``--json`` the comparison goes to stdout as JSON and the gate line to stderr.
    """
    console = stdout_console()
    if getattr(args, "json", False):
        print(json.dumps(comparison.to_dict(), indent=1))
        console = Console(stderr=True)
    else:
        console.print(render_comparison(comparison))
        phases = render_phases(comparison)
        if phases is not None:
            console.print(phases)
        for note in comparison.notes:
            console.print(f"note: {note}", style="yellow", highlight=False)
    for option, path, text in (
        ("--compare-junit", args.compare_junit, comparison_junit),
        ("--compare-md", args.compare_md, comparison_markdown),
    ):
        if path is None:
            continue
        try:
            write_text(text(comparison), path)
        except OSError as exc:
            error(f"{option}: cannot write {str(path)!r}: {exc.strerror}")
            return _exit.USAGE
    code = gate_code(comparison, gate=args.gate, strict=args.strict)
    if args.gate:
        failed = comparison.regressions() or (args.strict and comparison.inconclusive())
        unsure = len(comparison.inconclusive())
        verdict = "gate: FAILED" if failed else "gate: passed"
        if unsure and not failed:
            verdict += f" ({unsure} critical metric(s) inconclusive: --strict fails on that)"
        console.print(verdict, style="bold red" if failed else "green", highlight=False)
    return code


def compare(
    base: Sequence[RunResult], candidate: Sequence[RunResult], args: argparse.Namespace
) -> Comparison:
    """Run the comparison with the options of the command line.

    Raises:
        ValueError: bad options, or nothing in common to compare.
    """
    return compare_runs(
        base, candidate, floor=parse_floor(args.floor), critical=parse_critical(args.critical)
    )


def compare_command(args: argparse.Namespace) -> int:
    """Carry out ``redline compare``."""
    try:
        parse_floor(args.floor)
        parse_critical(args.critical)
        source: contextlib.AbstractContextManager[RunStore | None] = (
            reading_store(args.store)
            if needs_store(args.base, args.candidate)
            else contextlib.nullcontext()
        )
        with source as store:
            candidate = load_runs(args.candidate, store, runs=args.runs)
            plan = candidate[0].result.plan.name if candidate else None
            base = load_runs(args.base, store, runs=args.runs, plan=plan)
        comparison = compare([b.result for b in base], [c.result for c in candidate], args)
    except (StoreError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    code = report_comparison(args, comparison)
    if not args.json:
        _report_profiles(stdout_console(), base[0], candidate[-1])
        _report_traces(stdout_console(), base[0], candidate[-1])
        _report_costs(stdout_console(), base[0], candidate[-1])
    if args.html is not None:
        try:
            write_text(
                html_report(
                    candidate[-1].result,
                    candidate[-1].verdicts,
                    meta=candidate[-1].meta.to_dict(),
                    baseline=base[0].result,
                    comparison=comparison,
                    target=candidate[-1].target,
                    baseline_target=base[0].target,
                ),
                args.html,
            )
        except OSError as exc:
            error(f"--html: cannot write {str(args.html)!r}: {exc.strerror}")
            return _exit.USAGE
    return code


def _report_traces(console: Console, base: StoredRun, candidate: StoredRun) -> None:
    """Which span got slower at p99, per endpoint, when both runs were traced."""
    if base.traces is None or candidate.traces is None:
        return
    for endpoint, span, before, after in slower_spans(base.traces, candidate.traces):
        console.print(
            f"traces: p99 of {endpoint}: {span} got slower, {before:.1f} -> {after:.1f} ms "
            "per request",
            highlight=False,
        )


def _report_costs(console: Console, base: StoredRun, candidate: StoredRun) -> None:
    """What a request cost the target in either run, when both watched it."""
    before = base.target.cost if base.target is not None else None
    after = candidate.target.cost if candidate.target is not None else None
    if before is None or after is None:
        return
    for what, unit, scale, old, new in (
        ("CPU", "CPU-ms", 1e3, before.cpu_s_per_request, after.cpu_s_per_request),
        ("memory", "GiB-ms", 1e3, before.memory_gib_s_per_request, after.memory_gib_s_per_request),
        ("price", "per million", 1.0, before.per_million, after.per_million),
    ):
        if old is None or new is None:
            continue
        change = f" ({new / old - 1:+.1%})" if old else ""
        console.print(
            f"cost per request, {what}: {old * scale:.4g} -> {new * scale:.4g} {unit}{change}",
            highlight=False,
        )


def _report_profiles(console: Console, base: StoredRun, candidate: StoredRun) -> None:
    """The functions whose share of the target's CPU grew most, when both were profiled."""
    before = base.target.profile if base.target is not None else None
    after = candidate.target.profile if candidate.target is not None else None
    if before is None or after is None or not before.samples or not after.samples:
        return
    grown = grown_functions(after, before)
    if not grown:
        console.print("profile: no function's share of on-CPU samples grew", highlight=False)
        return
    table = Table(title="functions whose share of on-CPU samples grew most", title_justify="left")
    for column in ("function", "where", "now", "baseline", "change"):
        table.add_column(column, justify="left" if column in ("function", "where") else "right")
    for row in grown:
        table.add_row(
            row["function"],
            f"{row['file']}:{row['line']}",
            f"{row['total_pct']:.1f}%",
            f"{row['baseline_total_pct']:.1f}%",
            f"+{row['change_pct']:.1f} pts",
        )
    console.print(table)


def needs_store(*specs: str) -> bool:
    """Whether any run named in ``specs`` must be looked up in the store (not a file)."""
    refs = [r.strip() for spec in specs for r in spec.split(",") if r.strip()]
    return any(not (r.endswith(".json") or Path(r).is_file()) for r in refs)
