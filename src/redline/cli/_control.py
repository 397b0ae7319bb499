"""``redline control URL ACTION [VALUE]``: steer a running test through its control API."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request

from . import _exit
from ._console import error

__all__ = ["add_control_parser"]

_ACTIONS = ("status", "pause", "resume", "rate", "vus")


def add_control_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline control``."""
    parser = subparsers.add_parser(
        "control",
        help="pause, resume or change the load of a running test (redline run --control)",
        description="Talk to the control API a run serves with --control: status, pause, "
        "resume, rate N (open model, req/s) or vus N (closed model).",
    )
    parser.add_argument("url", help="the control API, as the run printed it")
    parser.add_argument("action", choices=_ACTIONS)
    parser.add_argument("value", nargs="?", type=float, help="the rate or the VUs")
    parser.add_argument("--token", help="the token the API asks for (off loopback)")
    parser.set_defaults(handler=control_command)


def control_command(args: argparse.Namespace) -> int:
    """Carry out ``redline control``."""
    if args.action in ("rate", "vus") and args.value is None:
        error(f"control {args.action}: give the new value, e.g. `{args.action} 200`")
        return _exit.USAGE
    base = args.url if args.url.endswith("/") else args.url + "/"
    body = None
    if args.action != "status":
        value = {} if args.value is None else {args.action: args.value}
        body = json.dumps(value).encode()
    request = urllib.request.Request(
        base + args.action, data=body, method="GET" if body is None else "POST"
    )
    request.add_header("Content-Type", "application/json")
    if args.token:
        request.add_header("Authorization", f"Bearer {args.token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(json.dumps(json.loads(response.read()), indent=2))
            return _exit.OK
    except urllib.error.HTTPError as exc:
        try:
            reason = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            reason = exc.reason
        error(f"control {args.action}: {reason}")
        return _exit.USAGE
    except (urllib.error.URLError, OSError) as exc:
        error(f"control: cannot reach {args.url}: {getattr(exc, 'reason', exc)}")
        return _exit.NOT_CARRIED_OUT
