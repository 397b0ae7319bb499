"""What a shaped run (``--type``) adds to its summary: recovery, drift, a breakpoint."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from redline.analysis import drift, recovery
from redline.core import RunResult

__all__ = ["report_shape"]


def report_shape(console: Console, result: RunResult) -> dict[str, Any]:
    """Print what the run's test type reports and return it (for the JSON document)."""
    shape = result.plan.get("shape") or {}
    kind = shape.get("type")
    out: dict[str, Any] = {}
    if kind == "spike":
        found = recovery(result)
        if found is not None:
            out["recovery"] = found.to_dict()
            console.print(f"spike: {found.reason}", highlight=False)
    elif kind == "soak":
        trend = drift(result)
        if trend is not None:
            out["drift"] = trend.to_dict()
            style = "bold red" if trend.drifting else "default"
            console.print(f"soak: {trend.reason}", style=style, highlight=False)
    elif kind == "breakpoint" and result.stop_reason == "aborted" and result.measured:
        last = result.measured[-1]
        rate = last.generator.target_rps
        at = last.start_s + last.duration_s
        if rate is not None:
            out["breakpoint"] = {"rate": rate, "at_s": at}
            console.print(
                f"breakpoint: an objective broke at ~{rate:,.0f} req/s ({at:.0f} s in); "
                "redline find gives the rate with an interval",
                highlight=False,
            )
    return out
