"""Decision records as a self-contained HTML page.

Each record: what changed, what was expected and measured, why, who decided, and the
judgement's metrics as evidence.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["decisions_html"]


def _pct(value: Any) -> str:
    return "-" if value is None else f"{float(value) - 1:+.1%}"


def _evidence(evidence: Mapping[str, Any] | None) -> str:
    judgement = (evidence or {}).get("judgement")
    if not judgement:
        error = (evidence or {}).get("error")
        return f"<p>{html.escape(str(error))}</p>" if error else ""
    rows = "".join(
        "<tr>"
        f"<td>{html.escape(str(m['metric']))}{' *' if m.get('critical') else ''}</td>"
        f"<td>{html.escape(str(m['classification']))}{' (fails)' if m.get('failed') else ''}</td>"
        f'<td class="num">{_pct(m.get("ratio"))}</td>'
        f'<td class="num">{_pct(m.get("low"))} .. {_pct(m.get("high"))}</td>'
        "</tr>"
        for m in judgement.get("metrics", [])
    )
    requests = judgement.get("requests", {})
    return (
        f"<p>judgement: <b>{html.escape(str(judgement.get('verdict')))}</b>, score "
        f"{float(judgement.get('score', 0)):.0f}/100; baseline {requests.get('baseline', 0):,} "
        f"requests, canary {requests.get('canary', 0):,}; intervals at "
        f"{float(judgement.get('level', 0.95)):.1%}</p>"
        "<table><tr><th>metric</th><th>class</th><th>change</th><th>interval</th></tr>"
        f"{rows}</table>"
    )


def decisions_html(records: Sequence[Mapping[str, Any]], *, title: str = "Decisions") -> str:
    """The page: one section per decision record, newest first as given."""
    sections = []
    for record in records:
        body = record.get("record", record)
        decision = str(record.get("decision", body.get("decision", "")))
        subject = str(record.get("subject", body.get("subject", "")))
        sections.append(
            f'<section class="{html.escape(decision)}">'
            f"<h2>{html.escape(decision)}: {html.escape(subject)}</h2>"
            f'<p class="at">{html.escape(str(record.get("at", "")))}</p><dl>'
            f"<dt>what changed</dt><dd>{html.escape(str(body.get('what_changed', '')))}</dd>"
            f"<dt>expected effect</dt><dd>{html.escape(str(body.get('expected_effect', '')))}</dd>"
            f"<dt>measured effect</dt><dd>{html.escape(str(body.get('measured_effect', '')))}</dd>"
            f"<dt>why</dt><dd>{html.escape(str(body.get('why', '')))}</dd>"
            f"<dt>decided by</dt><dd>{html.escape(str(body.get('decided_by', '')))}</dd></dl>"
            f"{_evidence(body.get('evidence'))}</section>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>redline: {html.escape(title)}</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; color: #222; max-width: 60em; }}
section {{ border-left: 4px solid #999; padding-left: 1em; margin-bottom: 2em; }}
section.rollback, section.hold {{ border-color: #c0392b; }}
section.promote, section.advance {{ border-color: #27ae60; }}
dt {{ font-weight: 600; }} dd {{ margin: 0 0 .4em 0; }} .at {{ color: #777; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 3px 8px; border-bottom: 1px solid #ddd; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{"".join(sections) or "<p>No decision records.</p>"}
</body></html>
"""
