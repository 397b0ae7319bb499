"""Scoping PromQL to a cohort: a matcher in every series selector, nothing else touched."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.rollout._promql import scoped

M = 'version="canary"'


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            'sum(rate(http_requests_total{code!~"5.."}[{{.window}}]))',
            f'sum(rate(http_requests_total{{{M},code!~"5.."}}[{{{{.window}}}}]))',
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(latency_bucket[5m])))",
            f"histogram_quantile(0.99, sum by (le) (rate(latency_bucket{{{M}}}[5m])))",
        ),
        (
            "sum(rate(x[5m] offset 1h)) / sum without (pod) (rate(y{}[5m]))",
            f"sum(rate(x{{{M}}}[5m] offset 1h)) / sum without (pod) (rate(y{{{M}}}[5m]))",
        ),
        (
            'sum(rate(errors_total{job="a"}[1m])) by (route) > 0.5 and on (route) up == 1',
            f'sum(rate(errors_total{{{M},job="a"}}[1m])) by (route) > 0.5 and on (route) '
            f"up{{{M}}} == 1",
        ),
        (  # the query's own matcher on the label wins
            'sum(rate(x{version="stable"}[5m]))',
            'sum(rate(x{version="stable"}[5m]))',
        ),
        (  # strings and subqueries are copied as they are
            'label_replace(x, "dst", "$1", "src", "(.*)") + max_over_time(y[30m:1m])',
            f'label_replace(x{{{M}}}, "dst", "$1", "src", "(.*)") + '
            f"max_over_time(y{{{M}}}[30m:1m])",
        ),
    ],
)
def test_every_selector_gets_the_cohort(query: str, expected: str) -> None:
    assert scoped(query, "version", "canary") == expected


RESERVED = {
    "by", "on", "or", "and", "sum", "min", "max", "avg", "count", "bool", "offset", "group",
    "unless", "without", "ignoring", "topk", "bottomk", "quantile", "stddev", "stdvar",
    "inf", "nan", "start", "end", "atan2", "limitk",
}  # fmt: skip


@given(
    name=st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda n: n not in RESERVED),
    window=st.sampled_from(["5m", "1h", "{{.window}}"]),
)
def test_a_rate_of_any_counter_is_scoped_once(name: str, window: str) -> None:
    out = scoped(f"sum(rate({name}[{window}]))", "v", 'a"b')
    assert out == f'sum(rate({name}{{v="a\\"b"}}[{window}]))'
    assert out.count("{v=") == 1
