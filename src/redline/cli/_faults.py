"""``redline faults list`` and ``redline faults clean``: host faults left by a crash, undone."""

from __future__ import annotations

import argparse
import datetime
import json
import sys

from redline.faults import Ledger

from . import _exit
from ._console import error

__all__ = ["add_faults_parser"]


def add_faults_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline faults``."""
    parser = subparsers.add_parser(
        "faults",
        help="list or undo host faults a crashed redline left applied",
        description="Host faults (processes, cgroups, neighbours, network, disks) are "
        "recorded before they are made. A watchdog undoes them when their time is up or "
        "their redline is gone; these commands show and undo them at once.",
    )
    inner = parser.add_subparsers(metavar="ACTION")
    listing = inner.add_parser("list", help="show the faults on record")
    clean = inner.add_parser("clean", help="undo them at once")
    clean.add_argument("ids", nargs="*", metavar="ID", help="only these (default: all)")
    for name, sub in (("list", listing), ("clean", clean)):
        sub.add_argument(
            "--dir",
            metavar="DIR",
            help="the record's folder (default $REDLINE_FAULTS_DIR or /run/redline/faults)",
        )
        sub.add_argument("--json", action="store_true", help="JSON on stdout")
        sub.set_defaults(handler=faults_command, action=name)

    def usage(_: argparse.Namespace) -> int:
        parser.print_help()
        return _exit.USAGE

    parser.set_defaults(handler=usage)


def faults_command(args: argparse.Namespace) -> int:
    """List or clean the ledger; exit 1 when something could not be undone."""
    ledger = Ledger(args.dir)
    if args.action == "list":
        entries = list(ledger.entries())
        if args.json:
            json.dump([e.to_dict() for e in entries], sys.stdout, indent=2)
            print()
            return _exit.OK
        if not entries:
            print(f"no host faults on record in {ledger.folder}")
        for entry in entries:
            deadline = datetime.datetime.fromtimestamp(entry.deadline).isoformat(timespec="seconds")
            state = "owner gone" if entry.orphaned else f"owner pid {entry.owner}"
            print(f"{entry.id}  {entry.kind:<9} {entry.name}  ({state}, undo by {deadline})")
        return _exit.OK
    done, problems = ledger.clean(only=tuple(args.ids))
    if args.json:
        json.dump(
            {"undone": [e.to_dict() for e in done], "problems": problems}, sys.stdout, indent=2
        )
        print()
    else:
        for entry in done:
            print(f"undone: {entry.id}  {entry.kind} {entry.name}")
        if not done:
            print(f"nothing to undo in {ledger.folder}")
    for problem in problems:
        error(problem)
    return _exit.FAILED if problems else _exit.OK
