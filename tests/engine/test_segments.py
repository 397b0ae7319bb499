from __future__ import annotations

import itertools
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.engine._segments import Segment, block_of, split


@given(st.integers(1, 64), st.integers(0, 10_000))
def test_equal_segments_scale_to_exactly_the_whole(workers: int, count: int) -> None:
    segments = split(workers)
    assert sum(s.share for s in segments) == 1
    assert sum(s.scale(count) for s in segments) == count


@given(st.lists(st.integers(1, 12), min_size=1, max_size=6))
def test_uneven_segments_own_every_arrival_exactly_once(weights: list[int]) -> None:
    total = sum(weights)
    bounds = [Fraction(sum(weights[:i]), total) for i in range(len(weights) + 1)]
    segments = [Segment(a, b) for a, b in itertools.pairwise(bounds)]
    block = block_of(segments)
    owners = []
    for k in range(3 * total):
        owners.append([i for i, s in enumerate(segments) if k % block in s.positions(block)])
    assert all(len(o) == 1 for o in owners)
    for i, weight in enumerate(weights):
        assert sum(o == [i] for o in owners) == 3 * weight


def test_a_block_that_does_not_fit_the_segment_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        Segment(Fraction(0), Fraction(1, 4)).positions(2)


def test_invalid_segments_are_rejected() -> None:
    with pytest.raises(ValueError, match="start < end"):
        Segment(Fraction(1, 2), Fraction(1, 2))
    with pytest.raises(ValueError, match="at least one"):
        split(0)
