"""The critical path: parallel children counted once, self time, skew clamped, attribution."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from redline.analysis._critical import attribute, critical_path
from redline.core import Span

MS = 1_000_000
TRACE = "ab" * 16


def span(
    span_id: str,
    parent: str | None,
    name: str,
    start_ms: float,
    end_ms: float,
    service: str = "svc",
) -> Span:
    return Span(TRACE, span_id, parent, service, name, int(start_ms * MS), int(end_ms * MS))


def by_name(segments: list[tuple[Span, int]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for s, ns in segments:
        out[s.name] = out.get(s.name, 0.0) + ns / MS
    return out


def test_a_chain_of_calls_is_the_path_with_each_spans_own_time() -> None:
    spans = [
        span("01" * 8, None, "gateway", 0, 100, "gateway"),
        span("02" * 8, "01" * 8, "orders", 10, 90, "orders"),
        span("03" * 8, "02" * 8, "charge", 20, 60, "payments"),
    ]
    segments, orphans, clamped = critical_path(spans)
    assert by_name(segments) == {"gateway": 20.0, "orders": 40.0, "charge": 40.0}
    assert sum(ns for _, ns in segments) == 100 * MS  # the path covers the whole request
    assert (orphans, clamped) == (0, 0)


def test_parallel_children_are_counted_once_the_last_to_finish_decides() -> None:
    spans = [
        span("01" * 8, None, "root", 0, 50),
        span("02" * 8, "01" * 8, "fast", 5, 20),
        span("03" * 8, "01" * 8, "slow", 5, 45),  # runs alongside "fast"
    ]
    segments, _, _ = critical_path(spans)
    assert by_name(segments) == {"root": 10.0, "slow": 40.0}


def test_sequential_children_all_lie_on_the_path() -> None:
    spans = [span("01" * 8, None, "root", 0, 100)] + [
        span(f"{i + 2:016x}", "01" * 8, "db.query", 10 * i, 10 * i + 8) for i in range(10)
    ]
    segments, _, _ = critical_path(spans)
    assert by_name(segments) == {"root": 20.0, "db.query": 80.0}


def test_a_child_outside_its_parent_is_clamped_and_counted() -> None:
    spans = [
        span("01" * 8, None, "root", 10, 50),
        span("02" * 8, "01" * 8, "early", 5, 30),  # starts before its parent: skew
    ]
    segments, orphans, clamped = critical_path(spans)
    assert (orphans, clamped) == (0, 1)
    assert by_name(segments) == {"root": 20.0, "early": 20.0}


def test_a_span_whose_parent_never_came_is_an_orphan_not_a_crash() -> None:
    spans = [span("01" * 8, None, "root", 0, 10), span("02" * 8, "ff" * 8, "lost", 2, 4)]
    segments, orphans, _ = critical_path(spans)
    assert orphans == 1
    assert by_name(segments) == {"root": 10.0}


def test_attribution_shares_add_up_and_name_the_service() -> None:
    shares, _, _ = attribute(
        [
            [
                span("01" * 8, None, "POST /checkout", 0, 100, "gateway"),
                span("02" * 8, "01" * 8, "charge", 10, 81, "payments"),
            ]
        ]
        * 3
    )
    assert [(s.service, s.span) for s in shares] == [
        ("payments", "charge"),
        ("gateway", "POST /checkout"),
    ]
    assert abs(sum(s.share for s in shares) - 1.0) < 1e-9
    assert abs(shares[0].ms - 71.0) < 1e-6


@st.composite
def trees(draw: st.DrawFn) -> list[Span]:
    count = draw(st.integers(min_value=1, max_value=12))
    spans = [span(f"{1:016x}", None, "root", 0, 1000)]
    for i in range(2, count + 1):
        parent = draw(st.sampled_from(spans))
        start = draw(st.floats(min_value=-50, max_value=1050))
        length = draw(st.floats(min_value=0, max_value=600))
        spans.append(span(f"{i:016x}", parent.span_id, f"s{i}", start, start + length))
    return spans


@given(trees())
def test_the_path_never_exceeds_the_root_and_never_overlaps(spans: list[Span]) -> None:
    segments, _, _ = critical_path(spans)
    assert all(ns > 0 for _, ns in segments)
    assert sum(ns for _, ns in segments) == 1000 * MS  # exactly the root's duration


def test_the_span_that_got_slower_is_named_per_endpoint() -> None:
    from redline.analysis import slower_spans
    from redline.core import SpanShare, TraceReport

    base = TraceReport(
        attribution={
            "checkout": {
                "p99": (
                    SpanShare("payments", "charge", 0.5, 20.0),
                    SpanShare("orders", "db.query", 0.5, 20.0),
                )
            }
        }
    )
    candidate = TraceReport(
        attribution={
            "checkout": {
                "p99": (
                    SpanShare("payments", "charge", 0.4, 22.0),
                    SpanShare("orders", "db.query", 0.6, 33.0),
                )
            },
            "fast": {"p99": (SpanShare("api", "GET", 1.0, 1.0),)},
        }
    )
    assert slower_spans(base, candidate) == [("checkout", "orders db.query", 20.0, 33.0)]
    assert slower_spans(candidate, base) == []  # nothing grew the other way round


def test_calls_per_request_are_the_mean_over_the_sampled_requests() -> None:
    from redline.analysis._critical import trace_report
    from redline.core import Exemplar, TraceReport
    from synthetic import synthetic_run

    def request(n: int, calls: list[str], kept: str) -> tuple[Exemplar, list[Span]]:
        trace = f"{n:032x}"
        spans = [Span(trace, f"{n:08x}aaaaaaaa", None, "gateway", "GET /", 0, 10_000_000)]
        spans += [
            Span(trace, f"{n:08x}{i + 1:08x}", spans[0].span_id, callee, "call", 0, 1_000_000)
            for i, callee in enumerate(calls)
        ]
        spans.append(
            Span(trace, f"{n:08x}ffffffff", spans[0].span_id, "gateway", "render", 0, 1)
        )  # inside one service: not a call between services
        return Exemplar(trace, "home", 5.0 + n, 200, 0, kept), spans  # type: ignore[arg-type]

    made = [request(n, ["cache"] if n % 2 else ["db", "db"], "sampled") for n in range(10)]
    made.append(request(99, ["payments"] * 5, "slowest"))  # a slow path, not in the mean
    exemplars = [e for e, _ in made]
    spans = {e.trace_id: s for e, s in made}
    report = trace_report(synthetic_run(1, intervals=3), exemplars, spans)
    assert report.calls_per_request == {"home": {"gateway -> cache": 0.5, "gateway -> db": 1.0}}
    back = TraceReport.from_dict(report.to_dict())
    assert back.calls_per_request == report.calls_per_request
    # with no sampled request, the mean is over what was kept (here: the slow one)
    slow_only = trace_report(synthetic_run(1, intervals=3), exemplars[-1:], spans)
    assert slow_only.calls_per_request == {"home": {"gateway -> payments": 5.0}}
    # a document from before the field was kept still reads
    older = {k: v for k, v in report.to_dict().items() if k != "calls_per_request"}
    assert TraceReport.from_dict(older).calls_per_request == {}
