"""``redline hooks``: answer Argo Rollouts' web provider and Flagger's webhooks."""

from __future__ import annotations

import argparse
import contextlib
import threading
from pathlib import Path

from redline.core import PlanError
from redline.http import parse_address
from redline.rollout import HookServer, PrometheusError

from . import _exit
from ._console import error, stdout_console
from ._judge import (
    add_budget_options,
    add_prometheus_options,
    budget_gate,
    default_policy,
    prometheus_judge,
    read_policy,
)

__all__ = ["add_hooks_parser"]


def add_hooks_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline hooks``."""
    parser = subparsers.add_parser(
        "hooks",
        help="serve canary judgements to Argo Rollouts and Flagger",
        description="Serve judgements over HTTP: GET /judge?baseline=B&canary=C for Argo "
        "Rollouts' web metric provider, POST /flagger/<hook> for Flagger's webhooks "
        "(docs/canary.md). The cohorts are read from Prometheus.",
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:8089", help="host:port to answer on (127.0.0.1:8089)"
    )
    parser.add_argument("--policy", type=Path, metavar="FILE", help="metrics, weights, thresholds")
    add_prometheus_options(parser, required=True)
    add_budget_options(parser)
    parser.set_defaults(handler=hooks_command)


def hooks_command(args: argparse.Namespace, *, stop: threading.Event | None = None) -> int:
    """Carry out ``redline hooks`` until Ctrl-C (or ``stop``)."""
    try:
        policy = read_policy(args.policy, default_policy(args))
        judged = prometheus_judge(args, policy)
        host, port = parse_address(args.listen, default_host="127.0.0.1")
        budget = budget_gate(args)
        server = HookServer(
            judged,
            host=host,
            port=port,
            gate=budget.check if budget is not None else None,
            errors=(PrometheusError, ValueError),
        )
    except (ValueError, OSError, PlanError) as exc:
        error(str(exc))
        return _exit.USAGE
    with server:
        stdout_console().print(
            f"hooks: answering at {server.url} (judge, flagger/<hook>, judgements)",
            highlight=False,
        )
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
    return _exit.OK
