"""The redline's 95% interval, calibrated: 200 searches of a simulated M/M/4 queue.

Ten-millisecond exponential service, p99 < 100 ms: the analytic redline is about 350
req/s. With the search's defaults (10 s steps, repeats of the final bracket three times
as long, the search's 2 s warm-up) the stated interval must cover the truth in at least
90% of the searches, and the estimate's median must be within 3% of it.
"""

from __future__ import annotations

import statistics

from mmc_sim import MmcTarget

from redline.analysis import search_redline
from redline.capacity import mmc_max_rate
from redline.core import parse_objective
from redline.runner._search import SEARCH_WARMUP_S


def test_the_interval_covers_the_truth_and_the_estimate_is_unbiased() -> None:
    truth = mmc_max_rate(4, 0.010, 0.100)
    objectives = (parse_objective("p99 < 100ms"),)
    found = [
        search_redline(MmcTarget(objectives, warmup_s=SEARCH_WARMUP_S, seed=seed), start=100)
        for seed in range(200)
    ]
    estimated = [f for f in found if f.rate is not None]
    assert len(estimated) == 200
    covered = sum(f.low <= truth <= f.high for f in estimated)  # type: ignore[operator]
    assert covered >= 180, f"the 95% interval covered the truth in {covered} of 200 searches"
    bias = statistics.median(f.rate for f in estimated) / truth - 1  # type: ignore[misc]
    assert abs(bias) <= 0.03, f"the estimate's median is off by {bias:+.1%}"
