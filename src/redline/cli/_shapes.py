"""What a run's analysis adds to its summary: recovery, drift, a breakpoint, fault impacts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console

__all__ = ["report_analysis"]


def report_analysis(console: Console, analysis: Mapping[str, Any]) -> None:
    """Print what was read off the run's shape (``--type``) and its faults."""
    if "recovery" in analysis:
        console.print(f"spike: {analysis['recovery']['reason']}", highlight=False)
    if "drift" in analysis:
        trend = analysis["drift"]
        style = "bold red" if trend["drifting"] else "default"
        console.print(f"soak: {trend['reason']}", style=style, highlight=False)
    if "breakpoint" in analysis:
        found = analysis["breakpoint"]
        console.print(
            f"breakpoint: an objective broke at ~{found['rate']:,.0f} req/s "
            f"({found['at_s']:.0f} s in); redline find gives the rate with an interval",
            highlight=False,
        )
    for impact in analysis.get("faults", ()):
        console.print(impact["reason"], highlight=False)
    for entry in analysis.get("fault_log", ()):
        if entry.get("via") or entry.get("errors"):
            how = f"fault {entry['name']}: {entry.get('detail') or entry.get('kind', '')}"
            if entry.get("via"):
                how += f", via {entry['via']}"
            for problem in entry.get("errors", ()):
                how += f"; {problem}"
            console.print(how, highlight=False)
