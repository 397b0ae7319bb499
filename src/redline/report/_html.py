"""The HTML page of a run: one self-contained file, or the live dashboard's page.

The page carries its own stylesheet, script and data; its Content-Security-Policy forbids
every request (the dashboard's allows one: its own event stream), so a report opened
offline, or mailed, or kept as a CI artifact, draws the same and reaches nowhere.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any

from redline.analysis import Comparison
from redline.core import RunResult, TargetReport, TraceReport, Verdict

from ._page import page_data

__all__ = ["dashboard_html", "html_report", "page_json", "report_html"]

_REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
_DASHBOARD_POLICY = _REPORT_POLICY + "; connect-src 'self'"


@cache
def _asset(name: str) -> str:
    return files("redline.report").joinpath("assets", name).read_text(encoding="utf-8")


def _plain(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def page_json(data: Mapping[str, Any]) -> str:
    """``data`` as compact JSON that is safe inside a ``<script>`` element."""
    text = json.dumps(_plain(data), separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(*, title: str, data: str, policy: str, body_attrs: str = "") -> str:
    return Template(_asset("page.html")).substitute(
        title=html.escape(title),
        policy=policy,
        css=_asset("page.css"),
        js="\n".join(_asset(name) for name in ("charts.js", "target.js", "traces.js", "page.js")),
        data=data,
        body_attrs=body_attrs,
    )


def report_html(data: Mapping[str, Any]) -> str:
    """The report of a run: ``data`` is :func:`page_data`'s document."""
    run = data.get("run") or {}
    title = f"redline · {run.get('plan', '')} · {run.get('id', '')}"
    return _page(title=title, data=page_json(data), policy=_REPORT_POLICY)


def dashboard_html(events: str, *, title: str) -> str:
    """The live dashboard's page: it draws each document the ``events`` stream sends."""
    return _page(
        title=title,
        data="null",
        policy=_DASHBOARD_POLICY,
        body_attrs=f' data-events="{html.escape(events, quote=True)}"',
    )


def html_report(
    result: RunResult,
    verdicts: Sequence[Verdict] = (),
    *,
    meta: Mapping[str, Any] | None = None,
    baseline: RunResult | None = None,
    comparison: Comparison | None = None,
    search: Mapping[str, Any] | None = None,
    target: TargetReport | None = None,
    baseline_target: TargetReport | None = None,
    traces: TraceReport | None = None,
) -> str:
    """The self-contained HTML report of ``result`` (see :func:`page_data` for the args)."""
    data = page_data(
        result,
        verdicts,
        meta=meta,
        baseline=baseline,
        comparison=comparison,
        search=search,
        target=target,
        baseline_target=baseline_target,
        traces=traces,
    )
    return report_html(data)
