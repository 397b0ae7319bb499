"""``capacity scaling``: how capacity grows with size, measured, and what that advises.

Sizes are replicas, workers or CPU quotas: whatever a number in the serve command (or the
quota of its cgroup) stands for. From the capacity measured at each size:

- the **efficiency** of each size against the smallest: its capacity over the smallest's
  times the size ratio (1: perfectly linear);
- with three sizes or more, the **universal scalability law** over size, fitted with the
  smallest size's capacity per unit fixed (Gunther's linearisation:
  ``N X1 / X(N) - 1 = sigma (N - 1) + kappa N (N - 1)``, least squares through the
  origin), and where it stops paying: the size past which one more unit adds under 10%.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ScalingFit", "fit_scaling"]


@dataclass(frozen=True)
class ScalingFit:
    """Capacity against size, and the advice."""

    sizes: tuple[float, ...]
    capacity: tuple[float, ...]
    efficiency: tuple[float, ...]
    sigma: float | None = None
    kappa: float | None = None
    diminishing_at: float | None = None
    advice: tuple[str, ...] = field(default=())

    def predicted(self, size: float) -> float | None:
        """The law's capacity at ``size`` (None without a fit)."""
        if self.sigma is None or self.kappa is None:
            return None
        n = size / self.sizes[0]
        return n * self.capacity[0] / (1 + self.sigma * (n - 1) + self.kappa * n * (n - 1))

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "points": [
                {"size": s, "capacity_rps": c, "efficiency": e}
                for s, c, e in zip(self.sizes, self.capacity, self.efficiency, strict=True)
            ],
            "sigma": self.sigma,
            "kappa": self.kappa,
            "diminishing_at": self.diminishing_at,
            "advice": list(self.advice),
        }


def fit_scaling(points: Sequence[tuple[float, float]], *, unit: str = "unit") -> ScalingFit:
    """Fit ``(size, capacity)`` points (two or more, sizes above 0).

    Raises:
        ValueError: fewer than two sizes, or a size or capacity that is not positive.
    """
    ordered = sorted(points)
    if len({s for s, _ in ordered}) < 2:
        raise ValueError("capacity scaling needs at least two sizes")
    if any(s <= 0 or c <= 0 for s, c in ordered):
        raise ValueError("every size and capacity must be above 0 (a size that held nothing?)")
    sizes = tuple(float(s) for s, _ in ordered)
    capacity = tuple(float(c) for _, c in ordered)
    base_size, base = sizes[0], capacity[0]
    efficiency = tuple((c / base) / (s / base_size) for s, c in zip(sizes, capacity, strict=True))
    advice = [
        f"{s0:g} -> {s1:g} {unit}s: x{c1 / c0:.2f} capacity, {(c1 / c0) / (s1 / s0):.2f} efficiency"
        for (s0, c0), (s1, c1) in itertools.pairwise(ordered)
    ]
    sigma = kappa = diminishing = None
    if len(sizes) >= 3:
        n = np.asarray(sizes) / base_size
        x = np.asarray(capacity)
        y = n * base / x - 1
        design = np.column_stack([n - 1, n * (n - 1)])
        solution, *_ = np.linalg.lstsq(design, y, rcond=None)
        sigma, kappa = (max(0.0, float(v)) for v in solution)
        diminishing = _diminishing(sigma, kappa) * base_size
        if math.isfinite(diminishing):
            advice.append(
                f"past {diminishing:.3g} {unit}s one more adds under 10% "
                f"(contention sigma {sigma:.3f}, coherency kappa {kappa:.4f})"
            )
        else:
            advice.append(f"no limit in sight: sigma {sigma:.3f}, kappa {kappa:.4f}")
            diminishing = None
    return ScalingFit(sizes, capacity, efficiency, sigma, kappa, diminishing, tuple(advice))


def _diminishing(sigma: float, kappa: float) -> float:
    """The size (in units of the smallest) past which one more adds under 10%."""
    if sigma == 0 and kappa == 0:
        return math.inf

    def x(n: float) -> float:
        return n / (1 + sigma * (n - 1) + kappa * n * (n - 1))

    n = 1.0
    while n < 10_000:
        if x(n + 1) < 1.1 * x(n):
            return n
        n += 1
    return math.inf
