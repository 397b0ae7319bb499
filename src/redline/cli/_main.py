"""The ``redline`` command: parse arguments, dispatch, return an exit code."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from redline import __version__
from redline.core import RunError

from . import _exit
from ._ab import add_ab_parser
from ._capacity import add_capacity_parser
from ._cluster import cluster_for
from ._compare import add_compare_parser
from ._console import error
from ._control import add_control_parser
from ._demo import add_demo_parser
from ._experiment import add_experiment_parser
from ._faults import add_faults_parser
from ._find import add_find_parser
from ._grafana import add_grafana_parser
from ._history import add_history_parser
from ._hooks import add_hooks_parser
from ._import import add_import_parser
from ._judge import add_judge_parser
from ._probe import add_probe_parser
from ._proxy import add_proxy_parser
from ._report import add_report_parser
from ._rollout import add_rollout_parser
from ._run import add_run_parser
from ._slo import add_slo_parser
from ._store import add_store_parsers
from ._testserver import add_testserver_parser
from ._traces import add_traces_parser

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="redline",
        description="Performance engineering as code: honest load tests and what to do next.",
        epilog="Exit codes: 0 ok, 1 an objective failed, 2 bad plan or usage, "
        "3 run not carried out, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"redline {__version__}")
    subparsers = parser.add_subparsers(metavar="COMMAND")
    add_run_parser(subparsers)
    add_store_parsers(subparsers)
    add_find_parser(subparsers)
    add_report_parser(subparsers)
    add_compare_parser(subparsers)
    add_ab_parser(subparsers)
    add_judge_parser(subparsers)
    add_hooks_parser(subparsers)
    add_rollout_parser(subparsers)
    add_probe_parser(subparsers)
    add_history_parser(subparsers)
    add_slo_parser(subparsers)
    add_grafana_parser(subparsers)
    add_proxy_parser(subparsers)
    add_experiment_parser(subparsers)
    add_faults_parser(subparsers)
    add_demo_parser(subparsers)
    add_testserver_parser(subparsers)
    add_import_parser(subparsers)
    add_traces_parser(subparsers)
    add_capacity_parser(subparsers)
    add_control_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``redline`` command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        with cluster_for(args):
            code: int = handler(args)
    except RunError as exc:  # --cluster: the scheduler cannot be reached, so nothing ran
        error(f"the run could not be carried out: {exc}")
        return _exit.NOT_CARRIED_OUT
    except KeyboardInterrupt:
        # a second Ctrl-C while a command shuts down: what was measured is kept by then
        error("interrupted")
        return _exit.INTERRUPTED
    return code
