"""Change points: a step is found once, where it is; a spike is not a step."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redline.analysis import change_points


def noisy(seed: int, size: int = 30) -> np.ndarray:
    return np.random.default_rng(seed).normal(10.0, 0.3, size)


@pytest.mark.parametrize("seed", range(5))
def test_a_step_is_found_once_at_the_right_run(seed: int) -> None:
    series = noisy(seed)
    series[19:] *= 1.2
    (found,) = change_points(series)
    assert found.index == 19
    assert found.change == pytest.approx(0.2, abs=0.05)
    assert found.p_value < 0.01


@pytest.mark.parametrize("seed", range(5))
def test_a_single_outlier_is_not_a_step(seed: int) -> None:
    series = noisy(100 + seed)
    series[14] *= 3
    assert change_points(series) == []


def test_two_steps_are_both_found() -> None:
    series = noisy(7, 45)
    series[15:] += 2.0
    series[30:] -= 4.0
    assert [c.index for c in change_points(series)] == [15, 30]


def test_short_series_and_flat_series_have_no_change_points() -> None:
    assert change_points([1.0, 5.0, 1.0, 5.0, 1.0]) == []  # too short for two segments of 3
    assert change_points([4.2] * 20) == []
    with pytest.raises(ValueError, match="min_size"):
        change_points([1.0, 2.0], min_size=1)


@settings(max_examples=25)
@given(
    st.lists(st.integers(0, 1000), min_size=6, max_size=25),
    st.integers(-1000, 1000),
)
def test_shifting_every_value_changes_nothing(values: list[int], shift: int) -> None:
    # Whole numbers: the shifted distances are exactly the same, ties included.
    before = [c.index for c in change_points([float(v) for v in values], permutations=49)]
    after = [c.index for c in change_points([float(v + shift) for v in values], permutations=49)]
    assert before == after
    assert all(3 <= i <= len(values) - 3 for i in before)
