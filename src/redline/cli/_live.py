"""Watching a run from outside: ``--prometheus`` metrics and the ``--dashboard`` page."""

from __future__ import annotations

import argparse
import contextlib
import threading

from rich.console import Console

from redline.core import PlanError, format_duration, parse_duration
from redline.http import parse_address
from redline.observe import MetricsServer, RunMetrics, StreamOutput, output_for
from redline.plan import Plan
from redline.report import Dashboard

__all__ = ["DASHBOARD_ADDRESS", "Watchers", "add_watch_options"]

DASHBOARD_ADDRESS = "127.0.0.1:5665"


def add_watch_options(parser: argparse.ArgumentParser) -> None:
    """``--prometheus``, ``--dashboard``, ``--linger`` and ``--no-linger``."""
    parser.add_argument(
        "--prometheus",
        metavar="[HOST:]PORT",
        help="serve live metrics of the run at http://HOST:PORT/metrics (host 127.0.0.1)",
    )
    parser.add_argument(
        "--dashboard",
        nargs="?",
        const=DASHBOARD_ADDRESS,
        metavar="[HOST:]PORT",
        help=f"serve a live dashboard of the run (default {DASHBOARD_ADDRESS}; port 0: any free)",
    )
    parser.add_argument(
        "--linger",
        default="3m",
        metavar="DURATION",
        help="keep the dashboard up this long after the run (default 3m; Ctrl-C leaves)",
    )
    parser.add_argument(
        "--no-linger", action="store_true", help="close the dashboard as soon as the run ends"
    )
    parser.add_argument(
        "--output",
        action="append",
        default=[],
        metavar="KIND=TARGET",
        help="stream each interval to csv=FILE, jsonl=FILE or influxdb=URL|FILE "
        "(repeatable; docs/outputs.md)",
    )


class Watchers(contextlib.ExitStack):
    """The servers a run is watched through, opened from the options, closed on exit."""

    def __init__(self) -> None:
        super().__init__()
        self.observers: list[object] = []
        """What watches the run: pass these in its ``observers``."""
        self.dashboard: Dashboard | None = None
        self.linger_s = 0.0
        self.outputs: list[StreamOutput] = []

    def open(self, args: argparse.Namespace, plan: Plan, console: Console) -> None:
        """Start what the options ask for and say where it is.

        Raises:
            ValueError: a bad address or duration, or an address that cannot be bound
                (the message names the option).
        """
        if args.prometheus:
            try:
                host, port = parse_address(args.prometheus, default_host="127.0.0.1")
                metrics = RunMetrics(plan.name, target=plan.summary().target)
                server = self.enter_context(MetricsServer(metrics, host=host, port=port))
            except (ValueError, OSError) as exc:
                raise ValueError(f"--prometheus: {exc}") from exc
            console.print(f"metrics at {server.url}", highlight=False)
            self.observers.append(metrics)
        if args.dashboard:
            try:
                self.linger_s = 0.0 if args.no_linger else parse_duration(args.linger)
            except (PlanError, ValueError) as exc:
                raise ValueError(f"--linger: {exc}") from exc
            try:
                host, port = parse_address(args.dashboard, default_host="127.0.0.1")
                self.dashboard = self.enter_context(
                    Dashboard(plan.summary(), plan.slos, host=host, port=port)
                )
            except (ValueError, OSError) as exc:
                raise ValueError(f"--dashboard: {exc}") from exc
            console.print(f"dashboard at {self.dashboard.url}", highlight=False)
            self.observers.append(self.dashboard)
        for spec in getattr(args, "output", ()):
            try:
                output = self.enter_context(output_for(spec))
            except OSError as exc:
                raise ValueError(f"--output {spec}: {exc}") from exc
            self.outputs.append(output)
            self.observers.append(output)
        if self.outputs:
            self.callback(self._account, console)

    def _account(self, console: Console) -> None:
        """Say what each output wrote (after it closed: the stack unwinds in reverse)."""
        for output in self.outputs:
            output.close()
            style = "yellow" if output.dropped or output.failed else None
            console.print(output.summary(), style=style, highlight=False)

    def linger(self, console: Console) -> None:
        """Keep the dashboard up for ``--linger`` (Ctrl-C ends the wait)."""
        if self.dashboard is None or self.linger_s <= 0:
            return
        console.print(
            f"dashboard stays at {self.dashboard.url} for {format_duration(self.linger_s)} "
            "(Ctrl-C to leave now, --no-linger not to wait)",
            highlight=False,
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait(self.linger_s)
