"""``redline slo rules FILE``: Prometheus recording and alerting rules for the SLOs."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from redline.analysis import (
    DEFAULT_BURN_RATES,
    PrometheusSource,
    SloRuleError,
    period_seconds,
    slo_rules,
)
from redline.core import PlanError
from redline.plan import load_slo_sources

from . import _exit
from ._console import emit, error

__all__ = ["add_slo_parser"]


def add_slo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline slo rules``."""
    slo = subparsers.add_parser("slo", help="work with SLO files")
    commands = slo.add_subparsers(metavar="COMMAND")
    rules = commands.add_parser(
        "rules",
        help="write Prometheus rules for the SLOs",
        description="Write Prometheus recording and multiwindow multi-burn-rate alerting "
        "rules for the objectives of an SLO file (docs/compare.md).",
    )
    rules.add_argument("file", type=Path, help="an SLO file (slo: list or OpenSLO)")
    rules.add_argument("--window", default="30d", help="the SLO period (default 30d)")
    rules.add_argument(
        "--burn-rates",
        default=",".join(f"{b:g}" for b in DEFAULT_BURN_RATES),
        help="page, page, ticket, ticket burn rates (default 14.4,6,3,1)",
    )
    rules.add_argument("--service", default="", help="a service label for every rule")
    rules.add_argument("--out", type=Path, metavar="FILE", help="write here, not to stdout")
    rules.set_defaults(handler=rules_command)

    def usage(args: argparse.Namespace) -> int:
        slo.print_help()
        return _exit.USAGE

    slo.set_defaults(handler=usage)


def rules_command(args: argparse.Namespace) -> int:
    """Carry out ``redline slo rules``."""
    try:
        period = period_seconds(args.window)
        burn_rates = [float(b) for b in args.burn_rates.split(",")]
        entries = load_slo_sources(args.file)
        document = slo_rules(
            [
                entry if not isinstance(entry, tuple) else (entry[0], PrometheusSource(**entry[1]))
                for entry in entries
            ],
            period_s=period,
            burn_rates=burn_rates,
            service=args.service,
        )
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    except (SloRuleError, ValueError) as exc:
        error(f"{args.file}: {exc}")
        return _exit.USAGE
    text = yaml.safe_dump(document, sort_keys=False, width=1000)
    return emit(text, args.out)
