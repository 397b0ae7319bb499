"""Comparisons for people and for CI: a terminal table, JUnit XML and Markdown."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rich.table import Table

from redline.analysis import (
    IMPROVEMENT,
    INCONCLUSIVE_CHANGE,
    NO_CHANGE,
    REGRESSION,
    Comparison,
    MetricComparison,
)

__all__ = ["comparison_junit", "comparison_markdown", "render_comparison", "render_phases"]

_STYLE = {
    IMPROVEMENT: "green",
    REGRESSION: "bold red",
    NO_CHANGE: "default",
    INCONCLUSIVE_CHANGE: "yellow",
}
_UNIT = {"p50": " ms", "p95": " ms", "p99": " ms", "error_ratio": "", "throughput": "/s"}


def _value(metric: MetricComparison, value: float | None) -> str:
    if value is None:
        return "-"
    if metric.metric == "error_ratio":
        return f"{value:.3%}"
    return (
        f"{value:,.3g}{_UNIT[metric.metric]}"
        if value < 100
        else f"{value:,.0f}{_UNIT[metric.metric]}"
    )


def _change(metric: MetricComparison) -> str:
    if metric.ratio is None:
        return "-"
    return f"{metric.ratio - 1:+.1%}"


def _interval(metric: MetricComparison) -> str:
    if metric.low is None or metric.high is None:
        return "-"
    return f"{metric.low - 1:+.1%} .. {metric.high - 1:+.1%}"


def _mde(metric: MetricComparison) -> str:
    return f"{metric.mde:+.1%}" if metric.mde is not None else "-"


def _ci(comparison: Comparison) -> str:
    """The intervals' heading: their level, which the number of metrics sets."""
    return f"{comparison.level:.1%} CI"


def render_comparison(comparison: Comparison) -> Table:
    """Every compared metric, one row each: values, change, interval, MDE, outcome."""
    table = Table(
        title=f"candidate {', '.join(comparison.candidate)} vs base "
        f"{', '.join(comparison.base)} (floor {comparison.floor:.0%})",
        title_justify="left",
    )
    for header in ("metric", "base", "candidate", "change", _ci(comparison), "MDE", "outcome"):
        table.add_column(header, no_wrap=header != "metric", overflow="fold")
    table.add_column("why", overflow="fold")
    for m in comparison.metrics:
        outcome = f"[{_STYLE[m.outcome]}]{m.outcome}[/]" + (" *" if m.critical else "")
        table.add_row(
            m.name,
            _value(m, m.base),
            _value(m, m.candidate),
            _change(m),
            _interval(m),
            _mde(m),
            outcome,
            "" if m.outcome == NO_CHANGE else m.reason,
        )
    table.caption = "* critical: a regression here fails --gate"
    return table


def _phase_change(before: float, after: float) -> str:
    if before <= 0:
        return "-" if after <= 0 else "new"
    return f"{after / before - 1:+.0%}"


def render_phases(comparison: Comparison) -> Table | None:
    """Where a change in latency went: each request phase, p50 and p99 of either side."""
    if not comparison.phases:
        return None
    table = Table(title="request phases, all traffic (shown, not judged)", title_justify="left")
    for header in ("phase", "base p50", "candidate p50", "base p99", "candidate p99", "p99"):
        table.add_column(header, justify="left" if header == "phase" else "right")
    for p in comparison.phases:
        table.add_row(
            p.phase,
            f"{p.base_p50:.3f} ms",
            f"{p.candidate_p50:.3f} ms",
            f"{p.base_p99:.3f} ms",
            f"{p.candidate_p99:.3f} ms",
            _phase_change(p.base_p99, p.candidate_p99),
        )
    return table


def comparison_junit(comparison: Comparison) -> str:
    """One JUnit test case per compared metric.

    Critical regressions are failures, other regressions and inconclusive critical
    metrics are skipped with their reason, the rest pass.
    """
    metrics = comparison.metrics
    failures = [m for m in metrics if m.outcome == REGRESSION and m.critical]
    skipped = [
        m for m in metrics if m not in failures and m.outcome in (REGRESSION, INCONCLUSIVE_CHANGE)
    ]
    suite = ET.Element(
        "testsuite",
        name="redline compare",
        tests=str(len(metrics)),
        failures=str(len(failures)),
        skipped=str(len(skipped)),
        errors="0",
    )
    properties = ET.SubElement(suite, "properties")
    for name, values in (("base", comparison.base), ("candidate", comparison.candidate)):
        ET.SubElement(properties, "property", name=name, value=",".join(values))
    for m in metrics:
        case = ET.SubElement(suite, "testcase", classname=f"compare.{m.scope}", name=m.metric)
        message = f"{m.name}: {_change(m)} ({m.outcome})"
        if m in failures:
            ET.SubElement(case, "failure", message=message, type="regression").text = m.reason
        elif m in skipped:
            ET.SubElement(case, "skipped", message=f"{message}: {m.reason}")
        else:
            ET.SubElement(case, "system-out").text = m.reason
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def comparison_markdown(comparison: Comparison) -> str:
    """A Markdown summary of a comparison, fit for a pull-request comment."""
    regressions = comparison.regressions(critical_only=False)
    critical = [m for m in regressions if m.critical]
    unsure = comparison.inconclusive()
    if critical:
        headline = f"**{len(critical)} critical regression(s)**"
    elif regressions:
        headline = f"{len(regressions)} regression(s), none critical"
    elif unsure:
        headline = f"no regression found; {len(unsure)} critical metric(s) inconclusive"
    else:
        headline = "no regression"
    lines = [
        f"### redline compare: {headline}",
        "",
        f"Candidate `{', '.join(comparison.candidate)}` against base "
        f"`{', '.join(comparison.base)}`; practical floor {comparison.floor:.0%}, "
        f"significance {comparison.alpha:g} after Benjamini-Hochberg correction; each "
        "verdict is read from its interval (false-coverage-rate adjusted).",
        "",
        f"| metric | base | candidate | change | {_ci(comparison)} | MDE | outcome |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for m in comparison.metrics:
        outcome = f"**{m.outcome}**" if m.outcome == REGRESSION else m.outcome
        lines.append(
            f"| {m.name}{' (critical)' if m.critical else ''} | {_value(m, m.base)} | "
            f"{_value(m, m.candidate)} | {_change(m)} | {_interval(m)} | {_mde(m)} | {outcome} |"
        )
    notes = [m for m in comparison.metrics if m.outcome in (REGRESSION, INCONCLUSIVE_CHANGE)]
    if notes or comparison.notes:
        lines.append("")
    for m in notes:
        lines.append(f"- {m.name}: {m.reason}")
    for note in comparison.notes:
        lines.append(f"- {note}")
    if comparison.phases:
        lines += [
            "",
            "| phase (all traffic) | base p50 | candidate p50 | base p99 | candidate p99 |",
        ]
        lines.append("|---|---:|---:|---:|---:|")
        for p in comparison.phases:
            lines.append(
                f"| {p.phase} | {p.base_p50:.3f} ms | {p.candidate_p50:.3f} ms | "
                f"{p.base_p99:.3f} ms | {p.candidate_p99:.3f} ms |"
            )
    return "\n".join(lines) + "\n"
