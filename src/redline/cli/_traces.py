"""``redline traces import FILE [RUN]``: join an OTLP JSON file's spans to a stored run."""

from __future__ import annotations

import argparse

from redline.analysis import trace_report
from redline.core import RedlineError, Span, StoreError
from redline.observe import load_otlp_json
from redline.report import render_traces

from . import _exit
from ._console import error, stdout_console
from ._store import add_store_option, reading_store

__all__ = ["add_traces_parser"]


def add_traces_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline traces``."""
    parser = subparsers.add_parser("traces", help="spans of a run's traced requests")
    commands = parser.add_subparsers(dest="traces_command", required=True)
    imported = commands.add_parser(
        "import",
        help="join the spans of an OTLP JSON file to a stored run's traced requests",
        description="Read spans from an OTLP JSON file (one export request, or one per "
        "line, as the OpenTelemetry Collector's file exporter writes them), join them to "
        "the run's traced requests by trace id, print where each endpoint's time went, "
        "and keep the result with the run.",
    )
    imported.add_argument("file", help="an OTLP JSON file")
    imported.add_argument(
        "run",
        nargs="?",
        default="latest",
        help='a run id, a unique prefix of one, or "latest" (the default)',
    )
    add_store_option(imported)
    imported.set_defaults(handler=import_command)


def import_command(args: argparse.Namespace) -> int:
    """Carry out ``redline traces import``."""
    try:
        spans = load_otlp_json(args.file)
        with reading_store(args.store) as store:
            stored = store.load(args.run)
            if stored.traces is None or not stored.traces.exemplars:
                error(f"run {stored.result.id} traced no requests (run it with --trace)")
                return _exit.USAGE
            by_trace: dict[str, list[Span]] = {}
            for span in spans:
                by_trace.setdefault(span.trace_id, []).append(span)
            counts = {"received": len(spans), "dropped": 0}
            traces = trace_report(stored.result, stored.traces.exemplars, by_trace, counts=counts)
            store.save(
                stored.result,
                stored.meta,
                stored.verdicts,
                analysis=stored.analysis,
                target=stored.target,
                traces=traces,
            )
    except (StoreError, RedlineError) as exc:
        error(str(exc))
        return _exit.USAGE
    stdout_console().print(render_traces(traces))
    return _exit.OK
