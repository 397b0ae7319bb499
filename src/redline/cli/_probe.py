"""``redline probe PLAN --every 30s``: synthetic monitoring, exported to Prometheus."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry, start_http_server

from redline.analysis import PrometheusSource, SloRuleError, period_seconds, slo_rules
from redline.core import PlanError, RunError, StoreError, parse_duration, parse_objective
from redline.engine import RunControl
from redline.http import parse_address
from redline.plan import load_plan
from redline.rollout import ProbeMetrics
from redline.runner import run_probes
from redline.store import open_store

from . import _exit
from ._console import error, stdout_console
from ._store import add_store_option

__all__ = ["add_probe_parser", "probe_rules"]


def add_probe_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline probe``."""
    parser = subparsers.add_parser(
        "probe",
        help="run a smoke plan on a schedule and export each run to Prometheus",
        description="Synthetic monitoring: run PLAN every --every, export redline_probe_* "
        "metrics at --listen, and (--rules-out) write alert rules: probe failing, probe "
        "stale, and burn-rate alerts on the probes' error ratio (docs/canary.md).",
    )
    parser.add_argument("plan", type=Path, help="the smoke plan")
    parser.add_argument("--every", default="1m", help="the period, start to start (1m)")
    parser.add_argument("--count", type=int, help="stop after this many runs (default: never)")
    parser.add_argument(
        "--listen", default="127.0.0.1:9464", help="host:port of /metrics (127.0.0.1:9464)"
    )
    parser.add_argument("--rules-out", type=Path, metavar="FILE", help="write alert rules here")
    parser.add_argument(
        "--objective", default="99%", help="the probes' success objective for burn alerts (99%%)"
    )
    parser.add_argument("--window", default="30d", help="the SLO period of those alerts (30d)")
    add_store_option(parser)
    parser.add_argument("--no-store", action="store_true", help="do not keep the probe runs")
    parser.set_defaults(handler=probe_command)


def probe_rules(name: str, *, every_s: float, objective: str, window: str) -> dict[str, Any]:
    """The alert-ready rule set of one probe: failing, stale, and burn-rate alerts.

    Raises:
        SloRuleError: an objective that leaves no budget or cannot burn.
        ValueError: a bad objective or window.
    """
    share = objective.strip().rstrip("%")
    fraction = float(share) / 100 if objective.strip().endswith("%") else float(share)
    slo = parse_objective(f"error_rate < {100 - fraction * 100:g}%", name=f"probe-{name}")
    source = PrometheusSource(
        requests="redline_probe_requests_total",
        errors=f'redline_probe_errors_total{{probe="{name}"}}',
        labels={"probe": name},
    )
    document = slo_rules([(slo, source)], period_s=period_seconds(window))
    stale = max(3 * every_s, 60)
    selector = f'{{probe="{name}"}}'
    document["groups"].append(
        {
            "name": f"redline-probe-{name}",
            "rules": [
                {
                    "alert": "RedlineProbeFailing",
                    "expr": f"redline_probe_success{selector} == 0",
                    "for": f"{round(2 * every_s)}s",
                    "labels": {"probe": name, "severity": "page"},
                    "annotations": {
                        "summary": f"probe {name} has failed for two periods running",
                    },
                },
                {
                    "alert": "RedlineProbeStale",
                    "expr": (
                        f"time() - redline_probe_last_run_timestamp_seconds{selector} > {stale:g}"
                        f" or absent(redline_probe_last_run_timestamp_seconds{selector})"
                    ),
                    "for": "1m",
                    "labels": {"probe": name, "severity": "ticket"},
                    "annotations": {
                        "summary": f"probe {name} has not run for {stale:g}s (is redline down?)",
                    },
                },
            ],
        }
    )
    return document


def probe_command(args: argparse.Namespace) -> int:
    """Carry out ``redline probe``."""
    console = stdout_console()
    try:
        plan = load_plan(args.plan)
        every_s = parse_duration(args.every)
        if every_s <= 0:
            raise ValueError(f"--every: expected a positive period, got {args.every!r}")
        if args.rules_out is not None:
            rules = probe_rules(
                plan.name, every_s=every_s, objective=args.objective, window=args.window
            )
            args.rules_out.write_text(yaml.safe_dump(rules, sort_keys=False, width=1000))
        host, port = parse_address(args.listen, default_host="127.0.0.1")
        store = None if args.no_store else open_store(args.store)
    except (PlanError, ValueError, SloRuleError, StoreError, OSError) as exc:
        error(str(exc))
        return _exit.USAGE
    metrics = ProbeMetrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        error(f"--listen {args.listen}: {exc.strerror}")
        return _exit.USAGE
    control = RunControl()
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: control.stop()) if main_thread else None
    console.print(
        f"probe {plan.name}: every {every_s:g}s, metrics at http://{host}:{server.server_port}/metrics",
        highlight=False,
    )

    def said(number: int, outcome: str) -> None:
        console.print(f"probe {plan.name} #{number}: {outcome}", highlight=False)

    try:
        with store if store is not None else contextlib.nullcontext():
            run_probes(
                plan,
                every_s=every_s,
                metrics=metrics,
                count=args.count,
                store=store,
                control=control,
                on_probe=said,
            )
    except KeyboardInterrupt:
        control.stop()
    except RunError as exc:
        error(str(exc))
        return _exit.NOT_CARRIED_OUT
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    return _exit.OK
