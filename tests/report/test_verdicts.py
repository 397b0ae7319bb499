"""The verdict renderers read back as structures: JUnit XML parsed, Markdown tables split,
the terminal table's cells; not substrings."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from rich.console import Console

from redline.analysis import evaluate
from redline.core import Verdict, parse_objective
from redline.report import junit_xml, render_summary, render_verdicts, summary_markdown
from synthetic import synthetic_run

OBJECTIVES = [
    parse_objective("p99 < 1s"),  # lognormal around 2 ms: passes
    parse_objective("p50 < 0.5ms"),  # fails
    parse_objective("p99.999 < 1s"),  # too few samples to bound: inconclusive
]


def judged() -> tuple[object, list[Verdict]]:
    run = synthetic_run(5, intervals=10, rate=1000, errors=0.0)
    verdicts = evaluate(run, OBJECTIVES)
    assert [v.outcome for v in verdicts] == ["pass", "fail", "inconclusive"]
    return run, verdicts


def test_junit_has_one_case_per_objective_with_failures_and_skips_counted() -> None:
    run, verdicts = judged()
    suite = ET.fromstring(junit_xml(run, verdicts).split("?>", 1)[1])  # type: ignore[arg-type]
    assert suite.tag == "testsuite"
    assert suite.attrib["name"] == "redline shop"
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["skipped"]) == (
        "3", "1", "1",
    )  # fmt: skip
    assert float(suite.attrib["time"]) == run.duration_s  # type: ignore[attr-defined]
    properties = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert properties == {"run": run.id, "stop_reason": "completed"}  # type: ignore[attr-defined]
    cases = suite.findall("testcase")
    assert [c.attrib["name"] for c in cases] == [o.name for o in OBJECTIVES]
    passed, failed, skipped = cases
    assert passed.find("failure") is None
    assert passed.find("skipped") is None
    failure = failed.find("failure")
    assert failure is not None
    assert failure.attrib["message"] == f"p50 < 0.5ms on all traffic: {verdicts[1].value:.3f} ms"
    assert failure.text == verdicts[1].reason
    assert skipped.find("skipped") is not None


def test_markdown_has_a_headline_and_a_row_per_objective() -> None:
    run, verdicts = judged()
    text = summary_markdown(run, verdicts)  # type: ignore[arg-type]
    lines = text.splitlines()
    assert lines[0] == "### redline: shop, **1 of 3 objectives failed**"
    table = [line for line in lines if line.startswith("|")]
    header, rule, *rows = table
    assert [c.strip() for c in header.strip("|").split("|")] == [
        "", "objective", "scope", "value", "budget", "why",
    ]  # fmt: skip
    assert set(rule.replace("|", "")) == {"-"}
    cells = [[c.strip() for c in row.strip("|").split(" | ")] for row in rows]
    assert [c[0] for c in cells] == ["pass", "**FAIL**", "inconclusive"]
    assert [c[1] for c in cells] == ["`p99 < 1s`", "`p50 < 0.5ms`", "`p99.999 < 1s`"]


def test_a_pipe_in_a_reason_does_not_break_the_markdown_table() -> None:
    run, verdicts = judged()
    odd = [Verdict(verdicts[1].objective, "fail", 1.0, "a | b")]
    rows = [r for r in summary_markdown(run, odd).splitlines() if r.startswith("| **FAIL**")]  # type: ignore[arg-type]
    assert rows[0].count(" | ") == 5  # six cells, the pipe escaped
    assert rows[0].endswith("a \\| b |")


def test_the_terminal_tables_hold_the_numbers() -> None:
    run, verdicts = judged()
    console = Console(record=True, width=200)
    console.print(render_verdicts(verdicts))
    console.print(render_summary(run))  # type: ignore[arg-type]
    text = console.export_text()
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "pass" in rows["p99 < 1s"]
    assert "FAIL" in rows["p50 < 0.5ms"]
    assert "inconclusive" in rows["p99.999 < 1s"]
    home = [c.strip() for c in rows["home"].split("│")[1:-1]]
    assert home[1] == f"{run.total().requests:,}"  # type: ignore[attr-defined]
