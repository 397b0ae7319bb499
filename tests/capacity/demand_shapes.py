"""Synthetic demand for the capacity tests."""

from __future__ import annotations

import numpy as np

from redline.capacity import DemandTrace


def diurnal(
    days: int = 2,
    *,
    step_s: float = 10.0,
    base: float = 200.0,
    peak: float = 1000.0,
    spike_at_s: float = 12.5 * 3600,
    spike: float = 3000.0,
    spike_s: float = 900.0,
) -> DemandTrace:
    """A day that swings from ``base`` to ``peak`` req/s, with a flash sale every day."""
    t = np.arange(0, days * 86400, step_s, dtype=float)
    day = t % 86400
    rate = base + (peak - base) * (0.5 - 0.5 * np.cos(2 * np.pi * day / 86400))
    rate = np.where((day >= spike_at_s) & (day < spike_at_s + spike_s), rate + spike, rate)
    return DemandTrace.of(t.tolist(), rate.tolist(), source="synthetic diurnal")
