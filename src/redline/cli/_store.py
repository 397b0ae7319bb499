"""``redline runs``, ``redline show RUN``, ``redline export RUN``: reading the run store."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from redline.core import StoreError, format_duration
from redline.report import render_summary, render_target, render_verdicts
from redline.store import RunInfo, RunStore, StoredRun, open_store, parse_labels, parse_time

from . import _exit
from ._console import emit, error, stdout_console

__all__ = ["add_store_option", "add_store_parsers", "reading_store"]


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """``--store``: where runs are kept (shared by every command that touches the store)."""
    parser.add_argument(
        "--store",
        metavar="PATH|URL",
        help="run store: a SQLite file or a postgresql:// URL "
        "(default: $REDLINE_STORE, else .redline/runs.db)",
    )


def add_store_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline runs``, ``redline show`` and ``redline export``."""
    runs = subparsers.add_parser(
        "runs", help="list stored runs", description="List stored runs, newest first."
    )
    runs.add_argument("--plan", help="only runs of the plan with this name")
    runs.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="only runs with it"
    )
    runs.add_argument(
        "--since", metavar="WHEN", help='started at or after: "2026-11-28", "12h", "7d"'
    )
    runs.add_argument("--until", metavar="WHEN", help="started before this time")
    runs.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    runs.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    add_store_option(runs)
    runs.set_defaults(handler=runs_command)

    show = subparsers.add_parser(
        "show", help="print one stored run", description="Print one stored run."
    )
    show.add_argument("run", help='a run id, a unique prefix of one, or "latest"')
    add_store_option(show)
    show.set_defaults(handler=show_command)

    export = subparsers.add_parser(
        "export",
        help="write one stored run as JSON",
        description="Write one stored run as JSON (the result document plus meta and verdicts).",
    )
    export.add_argument("run", help='a run id, a unique prefix of one, or "latest"')
    export.add_argument("--out", type=Path, metavar="FILE", help="write here, not to stdout")
    add_store_option(export)
    export.set_defaults(handler=export_command)


@contextlib.contextmanager
def reading_store(location: str | None) -> Iterator[RunStore]:
    """Open an existing store for reading; :class:`StoreError` if there is none."""
    store = open_store(location, create=False)
    try:
        yield store
    finally:
        store.close()


def runs_command(args: argparse.Namespace) -> int:
    """Carry out ``redline runs``."""
    try:
        labels = parse_labels(args.label)
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        error(str(exc))
        return _exit.USAGE
    if args.limit < 1:
        error(f"--limit: expected a positive number, got {args.limit}")
        return _exit.USAGE
    try:
        with reading_store(args.store) as store:
            infos = store.runs(
                plan=args.plan, labels=labels, since=since, until=until, limit=args.limit
            )
            where = store.where
    except StoreError as exc:
        error(str(exc))
        return _exit.USAGE
    if args.json:
        for info in infos:
            print(json.dumps(info.to_dict()))
        return _exit.OK
    console = stdout_console()
    if not infos:
        console.print(f"no runs match in {where}", highlight=False)
    else:
        console.print(_runs_table(infos, where))
    return _exit.OK


def _runs_table(infos: list[RunInfo], where: str) -> Table:
    # A run's id starts with its UTC start time, so it doubles as the "started" column.
    table = Table(title=f"runs in {where} (newest first)", title_justify="left", padding=(0, 1))
    table.add_column("run (started, UTC)", no_wrap=True)
    for column in ("plan", "labels", "state"):
        table.add_column(column, overflow="fold")
    for column in ("measured", "req/s", "errors", "p99 ms", "objectives"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("commit", no_wrap=True)
    for info in infos:
        commit = (info.git_commit or "")[:8] + ("*" if info.git_dirty else "")
        table.add_row(
            info.id,
            info.plan,
            " ".join(f"{k}={v}" for k, v in info.labels.items()),
            Text(info.stop_reason, style="green" if info.complete else "yellow"),
            format_duration(info.measured_s) if info.measured_s > 0 else "-",
            f"{info.rps:,.1f}",
            f"{info.error_rate:.2%}",
            f"{info.p99_ms:,.2f}" if info.p99_ms is not None else "-",
            _outcomes(info),
            commit,
        )
    return table


def _outcomes(info: RunInfo) -> Text:
    if not info.verdicts:
        return Text("-")
    text = Text()
    for outcome, style in (("pass", "green"), ("fail", "red"), ("inconclusive", "yellow")):
        if info.verdicts.get(outcome):
            text.append(f"{info.verdicts[outcome]} {outcome} ", style=style)
    text.rstrip()
    return text


def show_command(args: argparse.Namespace) -> int:
    """Carry out ``redline show RUN``."""
    stored = _load(args)
    if stored is None:
        return _exit.USAGE
    console = stdout_console()
    print_stored(console, stored)
    return _exit.OK


def print_stored(console: Console, stored: StoredRun) -> None:
    """Where a run came from, its summary and its verdicts."""
    result, meta = stored.result, stored.meta
    plan = result.plan
    lines = [
        f"run {result.id}: plan {plan.name or '?'} against {plan.target or '?'}",
        f"started {result.started_at}, measured {result.duration_s:,.1f}s, "
        f"{result.stop_reason}{'' if result.complete else ' (incomplete)'}",
    ]
    if meta.labels:
        lines.append("labels " + " ".join(f"{k}={v}" for k, v in meta.labels.items()))
    origin = f"redline {meta.version or '?'} on {meta.host or '?'}"
    if meta.git_commit:
        origin += f", commit {meta.git_commit[:12]}{' (dirty)' if meta.git_dirty else ''}"
    lines.append(origin)
    for line in lines:
        console.print(line, highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", style="yellow", highlight=False)
    console.print(render_summary(result))
    if stored.verdicts:
        console.print(render_verdicts(stored.verdicts))
    if stored.target is not None:
        console.print(render_target(stored.target))


def export_command(args: argparse.Namespace) -> int:
    """Carry out ``redline export RUN``."""
    stored = _load(args)
    if stored is None:
        return _exit.USAGE
    code = emit(json.dumps(stored.to_dict(), indent=1) + "\n", args.out)
    if code == _exit.OK and args.out is not None:
        print(f"run {stored.result.id} written to {args.out}", file=sys.stderr)
    return code


def _load(args: argparse.Namespace) -> StoredRun | None:
    try:
        with reading_store(args.store) as store:
            return store.load(args.run)
    except StoreError as exc:
        error(str(exc))
        return None
