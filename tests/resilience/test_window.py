"""Sliding windows: the running totals always equal a recount of what is in the window."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from redline.resilience._window import CountWindow, TimeWindow

OUTCOMES = st.lists(st.tuples(st.booleans(), st.booleans()), max_size=300)


@given(st.integers(1, 20), OUTCOMES)
def test_a_count_window_totals_the_last_n_calls(
    size: int, outcomes: list[tuple[bool, bool]]
) -> None:
    window = CountWindow(size)
    for index, (failed, slow) in enumerate(outcomes):
        totals = window.add(failed, slow)
        last = outcomes[max(0, index + 1 - size) : index + 1]
        assert totals.calls == len(last)
        assert totals.failures == sum(f for f, _ in last)
        assert totals.slow == sum(s for _, s in last)


@given(st.integers(1, 10), st.lists(st.tuples(st.booleans(), st.booleans(), st.floats(0, 4))))
def test_a_time_window_totals_the_last_seconds(
    size: int, steps: list[tuple[bool, bool, float]]
) -> None:
    now = [100.0]
    window = TimeWindow(size, lambda: now[0])
    seen: list[tuple[int, bool, bool]] = []
    for failed, slow, wait in steps:
        now[0] += wait
        totals = window.add(failed, slow)
        second = int(now[0])
        seen.append((second, failed, slow))
        inside = [(f, s) for t, f, s in seen if t > second - size]
        assert totals.calls == len(inside)
        assert totals.failures == sum(f for f, _ in inside)
        assert totals.slow == sum(s for _, s in inside)
