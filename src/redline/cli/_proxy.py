"""``redline proxy``: fault proxies behind Toxiproxy's API, until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from pathlib import Path
from typing import Any

from redline.faults import FaultProxy, ProxyError

from . import _exit
from ._console import error

__all__ = ["add_proxy_parser"]


def add_proxy_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline proxy``."""
    parser = subparsers.add_parser(
        "proxy",
        help="serve fault proxies with Toxiproxy's API",
        description="Serve TCP fault proxies and Toxiproxy's HTTP API (Toxiproxy's clients "
        "and the Chaos Toolkit driver work unchanged). Ctrl-C stops.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port (default 8474)")
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="proxies to create at start: a JSON list of {name, listen, upstream} (as "
        "toxiproxy-server -config)",
    )
    parser.add_argument("--seed", type=int, help="make toxicity rolls and jitter reproducible")
    parser.set_defaults(handler=proxy_command)


def _config(path: Path) -> list[dict[str, Any]]:
    """The proxies of a config file.

    Raises:
        ValueError: the file cannot be read or is not a list of proxies (message names it).
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of proxies, got {type(data).__name__}")
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not {"name", "listen", "upstream"} <= set(item):
            raise ValueError(f"{path}: [{index}]: expected name, listen and upstream")
    return data


def proxy_command(args: argparse.Namespace) -> int:
    """Carry out ``redline proxy``."""
    try:
        proxies = _config(args.config) if args.config is not None else []
    except ValueError as exc:
        error(f"--config: {exc}")
        return _exit.USAGE
    faults = FaultProxy(host=args.host, port=args.port, seed=args.seed)
    try:
        with faults.running():
            try:
                made = faults.call(faults.populate(proxies))
            except ProxyError as exc:
                error(f"--config: {exc}")
                return _exit.USAGE
            print(f"Toxiproxy API at {faults.api_url}/", flush=True)
            for proxy in made:
                print(f"proxy {proxy.name} on {proxy.listen} -> {proxy.upstream}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    except (OSError, RuntimeError) as exc:
        error(f"cannot serve the API on {args.host}:{args.port}: {exc}")
        return _exit.USAGE
    return _exit.OK
