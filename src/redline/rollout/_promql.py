"""Scoping a PromQL query to one cohort: a label matcher added to every series selector.

``sum(rate(http_requests_total{code!~"5.."}[{{.window}}]))`` for ``version="canary"``
becomes ``sum(rate(http_requests_total{version="canary",code!~"5.."}[{{.window}}]))``.
Function names, aggregation keywords and the label lists of ``by``/``without``/``on``/
``ignoring``/``group_left``/``group_right`` are left alone, as are strings, label matchers
already there and range or subquery brackets. A matcher on the same label already in a
selector is left as the query wrote it (the query's own scope wins).
"""

from __future__ import annotations

import re

__all__ = ["scoped"]

_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "atan2", "inf", "nan", "start", "end",
    # aggregation operators (``sum by (le) (...)``: followed by a keyword, not a bracket)
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


def scoped(query: str, label: str, value: str) -> str:
    """``query`` with ``label="value"`` in every series selector."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    matcher = f'{label}="{escaped}"'
    out: list[str] = []
    i, n = 0, len(query)
    skip_list = False  # inside by (...) and the like
    while i < n:
        c = query[i]
        if c in "\"'`":  # a string: copy as is
            end = i + 1
            while end < n and query[end] != c:
                end += 2 if query[end] == "\\" and c != "`" else 1
            out.append(query[i : end + 1])
            i = end + 1
            continue
        if c == "[":  # a range or a subquery: copy to its end
            end = query.find("]", i)
            end = n - 1 if end < 0 else end
            out.append(query[i : end + 1])
            i = end + 1
            continue
        if c == ")" and skip_list:
            skip_list = False
        if c.isdigit() or (c == "." and i + 1 < n and query[i + 1].isdigit()):
            match = re.match(r"[0-9.eE+-]*[a-zA-Z]*", query[i:])  # a number or a duration
            token = match.group(0) if match and match.group(0) else c
            out.append(token)
            i += len(token)
            continue
        match = _IDENT.match(query, i)
        if match is None or (i > 0 and (query[i - 1].isalnum() or query[i - 1] == "_")):
            out.append(c)
            i += 1
            continue
        name = match.group(0)
        end = match.end()
        rest = query[end:].lstrip()
        if name.lower() in _LISTS and rest.startswith("("):
            skip_list = True
            out.append(name)
            i = end
            continue
        if skip_list or name.lower() in _KEYWORDS or rest.startswith("("):
            out.append(name)  # a label of a list, a keyword, or a function
            i = end
            continue
        out.append(name)
        i = end
        spaces = len(query[end:]) - len(rest)
        if rest.startswith("{"):
            close = query.index("}", end)
            inner = query[end + spaces + 1 : close]
            has = re.search(rf"(^|,)\s*{re.escape(label)}\s*(=|!=|=~|!~)", inner)
            joined = inner if has else (matcher if not inner.strip() else f"{matcher},{inner}")
            out.append(query[end : end + spaces] + "{" + joined + "}")
            i = close + 1
        else:
            out.append("{" + matcher + "}")
    return "".join(out)
