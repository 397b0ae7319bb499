"""``redline grafana-dashboard``: a Grafana dashboard for ``redline run --prometheus``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from redline.observe import grafana_dashboard

from ._console import emit

__all__ = ["add_grafana_parser"]


def add_grafana_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline grafana-dashboard``."""
    parser = subparsers.add_parser(
        "grafana-dashboard",
        help="write a Grafana dashboard for the --prometheus metrics",
        description="Write a Grafana dashboard (JSON, for Grafana's import) charting the "
        "live metrics that redline run --prometheus serves.",
    )
    parser.add_argument("--title", default="redline run", help="the dashboard's title")
    parser.add_argument("--out", type=Path, metavar="FILE", help="write here, not to stdout")
    parser.set_defaults(handler=grafana_command)


def grafana_command(args: argparse.Namespace) -> int:
    """Carry out ``redline grafana-dashboard``."""
    text = json.dumps(grafana_dashboard(title=args.title), indent=1) + "\n"
    return emit(text, args.out)
