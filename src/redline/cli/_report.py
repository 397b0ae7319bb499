"""``redline report RUN --html FILE``: the HTML report of a stored run (or a JSON file)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Sequence
from pathlib import Path

from redline.analysis import Comparison, compare_runs
from redline.core import RunResult, StoreError, TargetReport
from redline.report import html_report, write_text
from redline.store import RunStore, StoredRun

from . import _exit
from ._compare import load_runs, needs_store
from ._console import error
from ._store import add_store_option, reading_store

__all__ = ["add_report_parser", "write_html"]


def add_report_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline report``."""
    parser = subparsers.add_parser(
        "report",
        help="write the HTML report of a run",
        description="Write one self-contained HTML file with the charts, verdicts and tables "
        "of a run; with --baseline, overlays and the comparison too.",
    )
    parser.add_argument("run", help='a run id, a unique prefix of one, "latest", or a JSON file')
    parser.add_argument("--html", type=Path, metavar="FILE", required=True, help="write here")
    parser.add_argument(
        "--baseline",
        metavar="RUNS",
        help="overlay and compare with these runs: ids, JSON files or label:KEY=VALUE",
    )
    add_store_option(parser)
    parser.set_defaults(handler=report_command)


def write_html(
    path: Path,
    stored: StoredRun,
    baseline: Sequence[RunResult] = (),
    *,
    baseline_target: TargetReport | None = None,
) -> tuple[int, str | None]:
    """Write the report of ``stored`` (with ``baseline`` overlaid and compared) to ``path``.

    Returns:
        the exit code (OK, or USAGE when ``path`` cannot be written, said on stderr) and a
        note when the comparison could not be made.
    """
    comparison: Comparison | None = None
    note = None
    if baseline:
        try:
            comparison = compare_runs(baseline, [stored.result])
        except ValueError as exc:
            note = f"no comparison in the report: {exc}"
    text = html_report(
        stored.result,
        stored.verdicts,
        meta=stored.meta.to_dict(),
        baseline=baseline[0] if baseline else None,
        comparison=comparison,
        target=stored.target,
        baseline_target=baseline_target,
        traces=stored.traces,
    )
    try:
        write_text(text, path)
    except OSError as exc:
        error(f"--html: cannot write {str(path)!r}: {exc.strerror}")
        return _exit.USAGE, note
    return _exit.OK, note


def report_command(args: argparse.Namespace) -> int:
    """Carry out ``redline report``."""
    if not args.html.parent.resolve().is_dir():
        error(f"--html: directory {str(args.html.parent)!r} does not exist")
        return _exit.USAGE
    specs = [args.run, *([args.baseline] if args.baseline else [])]
    try:
        source: contextlib.AbstractContextManager[RunStore | None] = (
            reading_store(args.store) if needs_store(*specs) else contextlib.nullcontext()
        )
        with source as store:
            runs = load_runs(args.run, store)
            if len(runs) != 1:
                raise ValueError(f"a report is of one run; {args.run!r} names {len(runs)}")
            plan = runs[0].result.plan.name or None
            baseline = load_runs(args.baseline, store, plan=plan) if args.baseline else []
    except (StoreError, ValueError) as exc:
        error(str(exc))
        return _exit.USAGE
    code, note = write_html(
        args.html,
        runs[0],
        [b.result for b in baseline],
        baseline_target=baseline[0].target if baseline else None,
    )
    if note:
        error(note)
    if code == _exit.OK:
        print(f"report of run {runs[0].result.id} written to {args.html}")
    return code
