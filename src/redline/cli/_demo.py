"""``redline demo``: what redline is for, in about twenty seconds, with nothing installed.

For now it shows the first thing redline gets right: a service that stalls for 150 ms
every 2 s, measured by an open-model test (the stall shows in p99) and by a closed-model
test (the stall hides, as it does in Locust or hey).
"""

from __future__ import annotations

import argparse

from rich.table import Table

from redline.core import RunError, RunResult, parse_duration
from redline.plan import plan_from_dict
from redline.report import render_summary
from redline.testing import Behaviour, Latency, TestServer

from . import _exit
from ._console import error, stdout_console
from ._run import execute, exit_code

__all__ = ["add_demo_parser"]


def add_demo_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline demo``."""
    parser = subparsers.add_parser("demo", help="measure a built-in demo service")
    parser.add_argument("--duration", default="6s", help="duration of each of the two runs")
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    """Carry out ``redline demo``."""
    console = stdout_console()
    try:
        duration = parse_duration(args.duration)
    except ValueError as exc:
        error(f"--duration: {exc}")
        return _exit.USAGE
    server = TestServer(
        Behaviour(latency=Latency("lognormal", value=0.002, sigma=0.4)),
        stall_every=2.0,
        stall_for=0.15,
        seed=7,
    )
    results: dict[str, RunResult] = {}
    with server.running():
        console.rule("redline demo: a service that stalls for 150 ms every 2 s")
        console.print(f"service on {server.url}: ~2 ms per request, frozen 150 ms every 2 s\n")
        for label, load in (
            ("open model: 400 requests/s, whatever the service does", {"rate": "400/s"}),
            ("closed model: 1 virtual user in a loop (how hey and Locust measure)", {"vus": 1}),
        ):
            console.rule(label)
            plan = plan_from_dict(
                {
                    "name": "demo",
                    "target": server.url,
                    "requests": [{"name": "product", "path": "/products/${randint(1, 5000)}"}],
                    "load": load,
                    "duration": duration,
                    "workers": 1,
                },
                source="demo",
            )
            try:
                result, _ = execute(plan, console=console)
            except RunError as exc:
                error(f"demo run failed: {exc}")
                return _exit.NOT_CARRIED_OUT
            console.print(render_summary(result))
            results[label.split(":")[0]] = result
            if exit_code(result) != _exit.OK:
                return exit_code(result)
    table = Table(title="what each model saw of the same service", title_justify="left")
    for column in ("model", "requests", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for label, result in results.items():
        total = result.total()
        table.add_row(
            label,
            f"{total.requests:,}",
            f"{total.latency_ms['p50']:.2f}",
            f"{total.latency_ms['p99']:.2f}",
            f"{total.latency_ms['max']:.2f}",
        )
    console.print(table)
    console.print(
        "The open model keeps sending on schedule during a stall and measures each request "
        "from its intended start, so the stall is in its p99. The closed model stops sending "
        "while the service is frozen, so the stall touches one request in hundreds and its "
        "p99 looks healthy: coordinated omission.",
        highlight=False,
    )
    return _exit.OK
