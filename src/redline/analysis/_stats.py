"""The tests behind a comparison: bootstrap p-values, Mann-Whitney U, Benjamini-Hochberg."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["benjamini_hochberg", "bootstrap_p", "mann_whitney", "smallest_mann_whitney"]


def bootstrap_p(log_ratios: npt.NDArray[np.float64]) -> float:
    """Two-sided p-value of "no change": how often resampled log ratios fall beyond 0."""
    if not log_ratios.size:
        return 1.0
    n = log_ratios.size
    below = (np.count_nonzero(log_ratios <= 0) + 1) / (n + 1)
    above = (np.count_nonzero(log_ratios >= 0) + 1) / (n + 1)
    return min(1.0, 2 * min(below, above))


def mann_whitney(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Two-sided p-value of the Mann-Whitney U test; 1.0 when there is nothing to rank.

    Normal approximation with tie and continuity corrections.
    """
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(y, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n1, n2 = a.size, b.size
    if not n1 or not n2:
        return 1.0
    pooled = np.concatenate((a, b))
    _, inverse, ties = np.unique(pooled, return_inverse=True, return_counts=True)
    ranks_of_unique = np.cumsum(ties) - (ties - 1) / 2
    ranks = ranks_of_unique[inverse]
    u = float(ranks[:n1].sum()) - n1 * (n1 + 1) / 2
    n = n1 + n2
    tie_term = float((ties**3 - ties).sum()) / (n * (n - 1)) if n > 1 else 0.0
    variance = n1 * n2 / 12 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0
    mean = n1 * n2 / 2
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)
    return min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2)))


def smallest_mann_whitney(n1: int, n2: int) -> float:
    """The smallest p-value :func:`mann_whitney` can give for samples of these sizes."""
    if not n1 or not n2:
        return 1.0
    n = n1 + n2
    z = (n1 * n2 / 2 - 0.5) / math.sqrt(n1 * n2 * (n + 1) / 12)
    return math.erfc(z / math.sqrt(2))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (same order as given)."""
    m = len(p_values)
    if not m:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = min(running, 1.0)
    return adjusted
