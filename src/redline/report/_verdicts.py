"""Verdicts for people and for CI: a terminal table, JUnit XML and a Markdown summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from rich.table import Table

from redline.core import FAIL, INCONCLUSIVE, PASS, RunResult, Verdict

__all__ = ["junit_xml", "render_verdicts", "summary_markdown"]

_STYLE = {PASS: "green", FAIL: "bold red", INCONCLUSIVE: "yellow"}
_MARK = {PASS: "pass", FAIL: "FAIL", INCONCLUSIVE: "inconclusive"}


def budget_text(verdict: Verdict) -> str:
    if verdict.budget_spent is None:
        return ""
    worst = max(verdict.burn_rates.get("long", 0.0), verdict.burn_rates.get("short", 0.0))
    text = f"{verdict.budget_spent * 100:.0f}% spent"
    return f"{text}, worst window {worst:.1f}x" if worst else text


def interval_text(verdict: Verdict) -> str:
    o = verdict.objective
    if verdict.low is None:
        return ""
    if verdict.high is None:  # too few samples to bound it from above
        return f">= {o.format(verdict.low)}"
    return f"{o.format(verdict.low)} - {o.format(verdict.high)}"


def render_verdicts(verdicts: Sequence[Verdict]) -> Table:
    """The objectives of a run, one row each, with outcome, value and budget."""
    table = Table(title="objectives", title_justify="left")
    for header in ("objective", "scope", "outcome", "value", "95% CI", "budget", "why"):
        table.add_column(header, overflow="fold")
    for v in verdicts:
        o = v.objective
        table.add_row(
            o.name if o.name == o.text else f"{o.name}: {o.text}",
            o.where,
            f"[{_STYLE[v.outcome]}]{_MARK[v.outcome]}[/]",
            o.format(v.value),
            interval_text(v),
            budget_text(v),
            "" if v.outcome == PASS else v.reason,  # a pass says it all in its columns
        )
    return table


def junit_xml(result: RunResult, verdicts: Sequence[Verdict]) -> str:
    """One JUnit test case per objective, in a suite named after the plan.

    Failed objectives are failures, inconclusive ones are skipped.
    """
    suite = ET.Element(
        "testsuite",
        name=f"redline {result.plan.name or 'plan'}",
        tests=str(len(verdicts)),
        failures=str(sum(v.outcome == FAIL for v in verdicts)),
        skipped=str(sum(v.outcome == INCONCLUSIVE for v in verdicts)),
        errors="0",
        time=f"{result.duration_s:.3f}",
        timestamp=result.started_at,
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (("run", result.id), ("stop_reason", result.stop_reason)):
        ET.SubElement(properties, "property", name=name, value=value)
    for v in verdicts:
        o = v.objective
        case = ET.SubElement(suite, "testcase", classname=f"slo.{o.scope}", name=o.name, time="0")
        message = f"{o.text} on {o.where}: {o.format(v.value)}"
        if v.outcome == FAIL:
            ET.SubElement(case, "failure", message=message, type="objective").text = v.reason
        elif v.outcome == INCONCLUSIVE:
            ET.SubElement(case, "skipped", message=v.reason)
        else:
            ET.SubElement(case, "system-out").text = v.reason
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def summary_markdown(result: RunResult, verdicts: Sequence[Verdict]) -> str:
    """A Markdown summary fit for a pull-request comment."""
    failed = sum(v.outcome == FAIL for v in verdicts)
    unsure = sum(v.outcome == INCONCLUSIVE for v in verdicts)
    if failed:
        headline = f"**{failed} of {len(verdicts)} objectives failed**"
    elif unsure:
        headline = f"no objective failed; {unsure} inconclusive"
    elif verdicts:
        headline = f"all {len(verdicts)} objectives passed"
    else:
        headline = "no objectives were set"
    total = result.total()
    lines = [
        f"### redline: {result.plan.name or 'plan'}, {headline}",
        "",
        f"Run `{result.id}` against {result.plan.target or '?'}: "
        f"{total.requests:,} requests over {result.duration_s:.1f} s ({total.rps:,.1f} req/s), "
        f"errors {total.error_rate * 100:.2f}%, p50 {total.latency_ms.get('p50', 0):.2f} ms, "
        f"p99 {total.latency_ms.get('p99', 0):.2f} ms.",
    ]
    if result.stop_reason != "completed":
        lines.append(f"Stopped early: {result.stop_reason}.")
    if verdicts:
        lines += ["", "| | objective | scope | value | budget | why |", "|---|---|---|---|---|---|"]
        icon = {PASS: "pass", FAIL: "**FAIL**", INCONCLUSIVE: "inconclusive"}
        for v in verdicts:
            o = v.objective
            reason = v.reason.replace("|", "\\|")
            lines.append(
                f"| {icon[v.outcome]} | `{o.text}` | {o.where} | {o.format(v.value)} | "
                f"{budget_text(v)} | {reason} |"
            )
    return "\n".join(lines) + "\n"
