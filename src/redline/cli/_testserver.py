"""``redline testserver``: the programmable test server, for benchmarks and experiments."""

from __future__ import annotations

import argparse

from redline.core import parse_duration, parse_size
from redline.testing import Behaviour, Latency, TestServer

from . import _exit
from ._console import error

__all__ = ["add_testserver_parser"]


def add_testserver_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline testserver``."""
    parser = subparsers.add_parser("testserver", help="serve the programmable test server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--latency", default="0s", help='fixed response time, e.g. "1ms"')
    parser.add_argument(
        "--exponential",
        action="store_true",
        help="draw response times from an exponential distribution of mean --latency",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="serve this many requests at once, queueing the rest (an M/M/c queue with "
        "--exponential and Poisson arrivals)",
    )
    parser.add_argument("--stall-every", default="0s", help="freeze the server this often...")
    parser.add_argument("--stall-for", default="0s", help="...for this long")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--body-size", default="2", help='response body size, e.g. "1KiB"')
    parser.set_defaults(handler=testserver_command)


def testserver_command(args: argparse.Namespace) -> int:
    """Carry out ``redline testserver`` (until Ctrl-C)."""
    try:
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {args.workers}")
        mean = parse_duration(args.latency)
        behaviour = Behaviour(
            latency=Latency("exponential", mean) if args.exponential else mean,
            workers=args.workers,
            status=args.status,
            error_rate=args.error_rate,
            body_size=parse_size(args.body_size),
        )
        server = TestServer(
            behaviour,
            host=args.host,
            port=args.port,
            stall_every=parse_duration(args.stall_every),
            stall_for=parse_duration(args.stall_for),
        )
    except ValueError as exc:
        error(f"testserver: {exc}")
        return _exit.USAGE

    def ready(serving: TestServer) -> None:
        print(f"test server on {serving.url} (Ctrl-C stops)", flush=True)

    try:
        server.serve_forever(on_ready=ready)
    except OSError as exc:
        error(f"testserver: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return _exit.USAGE
    return _exit.OK
