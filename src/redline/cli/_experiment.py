"""``redline experiment FILE``: a chaos experiment, Chaos Toolkit style, judged by SLOs.

The steady-state hypothesis (objectives on a short probe run) is checked before the
method; if it does not hold then, there is nothing to learn and the method is not run.
The method's actions run in order (faults, load, pauses), the hypothesis is checked again
with the faults still on, and the rollbacks run last, always: after a failure, a crash
or Ctrl-C too. Exit code 0 when the hypothesis held afterwards, 1 when it did not (or did
not hold before), 2 for a bad file, 130 when interrupted (rollbacks done).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from redline.core import PlanError
from redline.faults import ProxyError
from redline.plan import load_experiment
from redline.report import experiment_html
from redline.runner import Probe, experiment

from . import _exit
from ._cluster import add_cluster_option
from ._console import emit, error, stdout_console
from ._run import console_run

__all__ = ["add_experiment_parser"]


def add_experiment_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline experiment``."""
    parser = subparsers.add_parser(
        "experiment",
        help="run a chaos experiment: hypothesis, method, rollbacks",
        description="Check a steady-state hypothesis (SLO objectives on a probe run), run "
        "a method of faults and load, check the hypothesis again, and always roll back.",
    )
    parser.add_argument("file", type=Path, help="the experiment (YAML)")
    parser.add_argument("--out", type=Path, help="write the journal (JSON) here")
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="write the experiment's report: the hypothesis before and after, the method "
        "on a timeline, the rollbacks",
    )
    parser.add_argument(
        "--allow-host-faults",
        action="store_true",
        help="let the method's network and disk faults act on the host's own interfaces "
        "and file systems (by default only on namespaces and file systems a test made)",
    )
    add_cluster_option(parser)
    parser.set_defaults(handler=experiment_command)


def experiment_command(args: argparse.Namespace) -> int:
    """Carry out ``redline experiment``."""
    console = stdout_console()
    try:
        spec = load_experiment(args.file)
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    console.print(f"experiment: {spec.title}", style="bold", highlight=False)

    def on_probe(probe: Probe) -> None:
        mark = "[green]holds[/]" if probe.holds else "[red]does not hold[/]"
        console.print(f"steady state {probe.when}: {mark}")
        for verdict in probe.verdicts:
            console.print(f"  {verdict.reason}", highlight=False)

    parts_seen: set[str] = set()

    def on_action(part: str, entry: dict[str, Any]) -> None:
        if part not in parts_seen:
            parts_seen.add(part)
            console.print(f"{part}:")
        mark = "" if entry["ok"] else f"  [red]failed: {entry['error']}[/]"
        console.print(f"  {entry['what']}{mark}", highlight=False)

    try:
        with console_run(console, quiet=True) as (control, _):
            journal = experiment(
                spec,
                on_probe=on_probe,
                on_action=on_action,
                control=control,
                allow_host_faults=args.allow_host_faults,
            )
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    except ProxyError as exc:
        error(f"{spec.source}: proxies: {exc}")
        return _exit.USAGE
    if journal.status == "aborted":
        error("the steady state did not hold before the method: nothing to learn")
    elif journal.status == "failed":
        error(f"the experiment could not be carried out: {journal.error}")
    console.print(f"experiment {journal.status}", style="bold", highlight=False)
    code = {
        "completed": _exit.OK,
        "interrupted": _exit.INTERRUPTED,
        "failed": _exit.NOT_CARRIED_OUT,
    }.get(journal.status, _exit.FAILED)
    if args.out is not None:
        written = emit(json.dumps(journal.to_dict(), indent=1) + "\n", args.out)
        code = code if written == _exit.OK else written
    if args.html is not None:
        written = emit(experiment_html(journal.to_dict()), args.html)
        code = code if written == _exit.OK else written
    return code
