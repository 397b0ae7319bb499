"""Change points in a metric's history: E-divisive means with a permutation test.

The statistic is Matteson and James's energy distance between the two sides of a
split (with absolute differences, so any change in distribution counts, not only in
mean), scaled by ``m*n/(m+n)``. The best split of a segment is kept when a permutation
test (the segment's values shuffled ``permutations`` times) says so at ``alpha``; then
both sides are searched again (binary segmentation). No segment is shorter than
``min_size``, so a single outlying run can never form a segment of its own: a step is
found once, where it happens, and a spike is not a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ChangePoint", "change_points"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A change in a series: from ``index`` on, values differ from those before it.

    Attributes:
        index: the first value after the change.
        before, after: the medians of the segments on either side.
        p_value: the permutation test's p-value for this split.
    """

    index: int
    before: float
    after: float
    p_value: float

    @property
    def change(self) -> float:
        """The relative change of the median (``after / before - 1``)."""
        return self.after / self.before - 1 if self.before else float("inf")


def change_points(
    values: Sequence[float],
    *,
    min_size: int = 3,
    alpha: float = 0.01,
    permutations: int = 199,
    seed: int | None = 0,
) -> list[ChangePoint]:
    """Find the points where ``values`` change, in order.

    Args:
        values: the series (one value per run, oldest first).
        min_size: the fewest values a segment may have.
        alpha: the permutation test's significance level for each split.
        permutations: shuffles per test.
        seed: the shuffles' seed (fixed by default: the same history, the same answer).

    Raises:
        ValueError: ``min_size`` below 2.
    """
    if min_size < 2:
        raise ValueError(f"min_size must be at least 2, got {min_size}")
    series = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    found: list[tuple[int, float]] = []
    pending = [(0, series.size)]
    while pending:
        start, end = pending.pop()
        segment = series[start:end]
        split, statistic = _best_split(segment, min_size)
        if split is None:
            continue
        exceed = sum(
            _best_split(rng.permutation(segment), min_size)[1] >= statistic
            for _ in range(permutations)
        )
        p_value = (exceed + 1) / (permutations + 1)
        if p_value >= alpha:
            continue
        found.append((start + split, p_value))
        pending += [(start, start + split), (start + split, end)]
    found.sort()
    bounds = [0, *(i for i, _ in found), series.size]
    return [
        ChangePoint(
            index=index,
            before=float(np.median(series[bounds[k] : index])),
            after=float(np.median(series[index : bounds[k + 2]])),
            p_value=p_value,
        )
        for k, (index, p_value) in enumerate(found)
    ]


def _best_split(segment: FloatArray, min_size: int) -> tuple[int | None, float]:
    """The split of ``segment`` with the largest scaled energy distance, and that value."""
    n = segment.size
    if n < 2 * min_size:
        return None, 0.0
    distances = np.abs(segment[:, None] - segment[None, :])
    # prefix[i, j]: the sum of distances[:i, :j], so any block sums in O(1).
    prefix = np.zeros((n + 1, n + 1))
    prefix[1:, 1:] = distances.cumsum(0).cumsum(1)

    def block(r0: int, r1: int, c0: int, c1: int) -> float:
        return float(prefix[r1, c1] - prefix[r0, c1] - prefix[r1, c0] + prefix[r0, c0])

    best, best_value = None, -np.inf
    for tau in range(min_size, n - min_size + 1):
        m, k = tau, n - tau
        between = block(0, tau, tau, n) * 2 / (m * k)
        within_left = block(0, tau, 0, tau) / (m * (m - 1))
        within_right = block(tau, n, tau, n) / (k * (k - 1))
        value = m * k / n * (between - within_left - within_right)
        if value > best_value:
            best, best_value = tau, value
    return best, float(best_value)
