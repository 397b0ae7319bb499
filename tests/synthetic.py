"""Synthetic runs for tests that need many runs with known properties, fast."""

from __future__ import annotations

import numpy as np

from redline.core import (
    PHASES,
    EndpointInterval,
    GeneratorInterval,
    Histogram,
    IntervalSnapshot,
    RunResult,
    bucket_values,
)


def synthetic_run(
    seed: int,
    *,
    run_id: str | None = None,
    started_at: str = "2026-11-28T00:00:00.000Z",
    plan: str = "shop",
    scale: float = 1.0,
    intervals: int = 10,
    rate: int = 300,
    errors: float = 0.0,
    slo: list[dict[str, object]] | None = None,
    scheduled: int | None = None,
    open_model: bool = True,
    phases: bool = False,
) -> RunResult:
    """Intervals of lognormal latencies (median ~2 ms) at ``rate`` requests each.

    ``scheduled`` arrivals were due per interval (default ``rate``: all answered). With
    ``phases``, each request waited 90% of its latency for its first byte and spent the
    rest receiving; the set-up phases are zero (every connection reused).
    """
    rng = np.random.default_rng(seed)
    snapshots = []
    for index in range(intervals):
        latency = Histogram()
        latency.record_values((rng.lognormal(7.6, 0.5, rate) * scale).astype(np.int64) + 1)
        latency.compact()
        failed = int(rng.binomial(rate, errors))
        timed = {}
        if phases:
            values = latency.to_sparse()
            samples = np.repeat(bucket_values(values[0]), values[1])
            timed = {name: Histogram() for name in PHASES}
            timed["wait"].record_values(samples * 9 // 10)
            timed["receive"].record_values(samples - samples * 9 // 10)
            for name in ("dns", "connect", "tls", "send"):
                timed[name].record_values(np.zeros(len(samples), dtype=np.int64))
        snapshots.append(
            IntervalSnapshot(
                index=index,
                start_s=float(index),
                duration_s=1.0,
                endpoints={
                    "home": EndpointInterval(
                        requests=rate,
                        errors=failed,
                        latency=latency,
                        latency_actual=latency,
                        phases=timed,
                    )
                },
                generator=GeneratorInterval(scheduled=scheduled or rate, sent=rate),
            )
        )
    return RunResult(
        id=run_id or f"run-{seed}",
        plan={"name": plan, "slo": slo or []},
        started_at=started_at,
        open_model=open_model,
        intervals=tuple(snapshots),
    )
