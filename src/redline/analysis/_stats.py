"""The tests behind a comparison: Student's t, bootstrap p-values, Mann-Whitney, BH."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = [
    "benjamini_hochberg",
    "bootstrap_p",
    "incomplete_beta",
    "mann_whitney",
    "smallest_mann_whitney",
    "student_t_cdf",
    "student_t_quantile",
    "welch_df",
]


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


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _continued_fraction(a, b, x) / a
    return 1 - front * _continued_fraction(b, a, 1 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom (df may be fractional)."""
    if math.isinf(df):
        return 0.5 * math.erfc(-t / math.sqrt(2))
    tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (bisection)."""
    if not 0 < p < 1:
        raise ValueError(f"a quantile needs 0 < p < 1, got {p}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_quantile(1 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, high * 2
    for _ in range(200):
        middle = (low + high) / 2
        if student_t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


def welch_df(variances: Sequence[float], units: Sequence[int]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance estimates.

    ``variances[i]`` was estimated from ``units[i]`` independent units; infinite when a
    side's variance is zero everywhere (nothing to estimate).
    """
    top = sum(variances) ** 2
    bottom = sum(v * v / (n - 1) for v, n in zip(variances, units, strict=True) if n > 1)
    return top / bottom if bottom > 0 else math.inf
