"""``redline import har|access-log|openapi FILE``: write a plan from existing traffic."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from redline.core import PlanError
from redline.plan import (
    dump_plan,
    plan_from_access_log,
    plan_from_dict,
    plan_from_har,
    plan_from_openapi,
)

from . import _exit
from ._console import error

__all__ = ["add_import_parser"]


def add_import_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline import``."""
    parser = subparsers.add_parser(
        "import", help="write a plan from a HAR recording, an access log or an OpenAPI spec"
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    har = kinds.add_parser("har", help="a browser recording: one flow, in order, with think times")
    har.add_argument("file", type=Path)
    har.add_argument("--keep-assets", action="store_true", help="keep CSS, JS, images, fonts")
    har.add_argument("--rate", default="1/s", help="arrival rate of journeys (default 1/s)")
    log = kinds.add_parser("access-log", help="an nginx/Apache combined log: its request mix")
    log.add_argument("file", type=Path)
    log.add_argument("--target", required=True, help="base URL to replay against")
    pace = log.add_mutually_exclusive_group()
    pace.add_argument("--rate", help="replay the mix at this arrival rate")
    pace.add_argument("--pace", type=float, help="replay the log's own pace, times this factor")
    spec = kinds.add_parser("openapi", help="an OpenAPI 3 spec: one request per operation")
    spec.add_argument("file", type=Path)
    spec.add_argument("--target", help="base URL (default: the spec's first server)")
    for sub in (har, log, spec):
        sub.add_argument("--out", type=Path, help="the plan file to write (default: stdout)")
        sub.set_defaults(handler=import_command)


def import_command(args: argparse.Namespace) -> int:
    """Carry out ``redline import``."""
    try:
        plan: dict[str, Any]
        if args.kind == "har":
            plan = plan_from_har(args.file, keep_assets=args.keep_assets, rate=args.rate)
        elif args.kind == "access-log":
            plan = plan_from_access_log(
                args.file, target=args.target, rate=args.rate, pace=args.pace
            )
        else:
            plan = plan_from_openapi(args.file, target=args.target)
        plan_from_dict(plan, source=str(args.file))  # what is written must be a valid plan
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    text = dump_plan(plan)
    if args.out is None:
        sys.stdout.write(text)
        return _exit.OK
    try:
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        error(f"--out: cannot write {str(args.out)!r}: {exc.strerror}")
        return _exit.USAGE
    print(f"plan written to {args.out}", file=sys.stderr)
    return _exit.OK
