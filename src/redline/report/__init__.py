"""Renderers of run results: terminal summary and live view, verdicts, JUnit, Markdown, JSON."""

from ._json import write_json as write_json
from ._json import write_text as write_text
from ._terminal import LiveView as LiveView
from ._terminal import render_summary as render_summary
from ._verdicts import junit_xml as junit_xml
from ._verdicts import render_verdicts as render_verdicts
from ._verdicts import summary_markdown as summary_markdown

__all__ = [
    "LiveView",
    "junit_xml",
    "render_summary",
    "render_verdicts",
    "summary_markdown",
    "write_json",
    "write_text",
]
