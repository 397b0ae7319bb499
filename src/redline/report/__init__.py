"""Renderers: terminal, HTML report, live dashboard, verdicts, comparisons, JUnit, Markdown."""

from ._capacity import replay_html as replay_html
from ._compare import comparison_junit as comparison_junit
from ._compare import comparison_markdown as comparison_markdown
from ._compare import render_comparison as render_comparison
from ._compare import render_phases as render_phases
from ._dashboard import Dashboard as Dashboard
from ._decisions import decisions_html as decisions_html
from ._experiment import experiment_html as experiment_html
from ._fleet import fleet_html as fleet_html
from ._html import html_report as html_report
from ._json import write_json as write_json
from ._json import write_text as write_text
from ._target import render_target as render_target
from ._target import use_cells as use_cells
from ._target_page import grown_functions as grown_functions
from ._terminal import LiveView as LiveView
from ._terminal import render_summary as render_summary
from ._traces import attribution_line as attribution_line
from ._traces import render_traces as render_traces
from ._verdicts import junit_xml as junit_xml
from ._verdicts import render_verdicts as render_verdicts
from ._verdicts import summary_markdown as summary_markdown

__all__ = [
    "Dashboard",
    "LiveView",
    "attribution_line",
    "comparison_junit",
    "comparison_markdown",
    "decisions_html",
    "experiment_html",
    "fleet_html",
    "grown_functions",
    "html_report",
    "junit_xml",
    "render_comparison",
    "render_phases",
    "render_summary",
    "render_target",
    "render_traces",
    "render_verdicts",
    "replay_html",
    "summary_markdown",
    "use_cells",
    "write_json",
    "write_text",
]
