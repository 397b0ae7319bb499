"""A discrete-event M/M/c queue that a redline search can measure instead of a server.

Poisson arrivals at the offered rate, ``servers`` servers with exponential service of
mean ``service_s``, first come first served; the latency of each request is from its
arrival (its intended start) to its completion, bucketed by completion second as the
engine's recorder does, then judged by the same ``evaluate`` a real step is.
"""

from __future__ import annotations

import heapq
import random

import numpy as np

from redline.analysis import Step, evaluate, tail_counts
from redline.core import (
    EndpointInterval,
    GeneratorInterval,
    Histogram,
    IntervalSnapshot,
    Objective,
    RunResult,
)


class MmcTarget:
    """Measure steps of a search against a simulated M/M/c queue."""

    def __init__(
        self,
        objectives: tuple[Objective, ...],
        *,
        servers: int = 4,
        service_s: float = 0.010,
        warmup_s: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.objectives = objectives
        self.servers = servers
        self.service_s = service_s
        self.warmup_s = warmup_s
        self.rng = random.Random(seed)

    def __call__(self, rate: float, seconds: float, phase: str) -> Step:
        rng = self.rng
        total = self.warmup_s + seconds
        free = [0.0] * self.servers  # when each server is next free
        done_at: list[float] = []
        latency: list[float] = []
        t = rng.expovariate(rate)
        while t < total:
            start = max(t, heapq.heappop(free))
            end = start + rng.expovariate(1.0 / self.service_s)
            heapq.heappush(free, end)
            done_at.append(end)
            latency.append(end - t)
            t += rng.expovariate(rate)
        done = np.asarray(done_at)
        micros = (np.asarray(latency) * 1e6).astype(np.int64)
        second = np.floor(done).astype(np.int64)
        intervals = []
        last = max(int(np.ceil(total)), int(second.max()) + 1 if second.size else 1)
        for index in range(last):
            mine = second == index
            histogram = Histogram()
            histogram.record_values(micros[mine])
            count = int(mine.sum())
            intervals.append(
                IntervalSnapshot(
                    index=index,
                    start_s=float(index),
                    duration_s=1.0,
                    endpoints={
                        "q": EndpointInterval(
                            requests=count,
                            status={200: count} if count else {},
                            latency=histogram,
                            latency_actual=histogram,
                        )
                    },
                    generator=GeneratorInterval(scheduled=count, sent=count),
                    warmup=index < self.warmup_s,
                )
            )
        run = RunResult(
            id="sim",
            plan={"name": "mmc", "target": "sim"},
            started_at="",
            intervals=tuple(intervals),
        )
        verdicts = tuple(evaluate(run, self.objectives))
        summary = run.total()
        return Step(
            rate=rate,
            achieved=summary.rps,
            p50_ms=summary.latency_ms.get("p50", 0.0),
            p99_ms=summary.latency_ms.get("p99", 0.0),
            error_rate=0.0,
            verdicts=verdicts,
            phase=phase,
            tails={
                o.text: tuple(tail_counts(run, o))
                for o in self.objectives
                if o.metric == "percentile"
            },
        )
