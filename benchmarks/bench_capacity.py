"""How fast a replay is: a 24-hour trace at 10-second resolution against 20 policies.

    python benchmarks/bench_capacity.py [--repeat 3]

Twenty policies (HPAs on CPU and on requests per replica with several targets and
windows, KEDA, step and predictive) replay one synthetic diurnal day with a flash sale.
Target: under 10 s for all twenty (the median of the repeats). Runs in one process; no
peer exists to compare with (Kubernetes has no HPA dry-run: kubernetes#106765).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import median, table
from redline.capacity import (
    Behavior,
    DemandTrace,
    FleetModel,
    Hpa,
    HpaPolicy,
    KedaPolicy,
    MetricSpec,
    Policy,
    PredictivePolicy,
    ScalingRules,
    Step,
    StepPolicy,
    replay,
)
from redline.capacity._hpa import DEFAULT_SCALE_DOWN


def day(step_s: float = 10.0) -> DemandTrace:
    t = np.arange(0, 86400, step_s)
    rate = 200 + 800 * (0.5 - 0.5 * np.cos(2 * np.pi * t / 86400))
    rate = np.where((t >= 45000) & (t < 45900), rate + 3000, rate)
    return DemandTrace.of(t.tolist(), rate.tolist(), source="synthetic day")


def policies() -> list[Policy]:
    out: list[Policy] = []
    for target in (50, 60, 70, 80):
        for window in (60, 300):
            down = ScalingRules(window, DEFAULT_SCALE_DOWN.policies)
            cpu = MetricSpec("Resource", "cpu", "Utilization", target)
            rps = MetricSpec("Pods", "requests_per_second", "AverageValue", target * 1000)
            out.append(
                HpaPolicy(Hpa(f"cpu {target}% {window}s", 2, 60, (cpu,), Behavior(scale_down=down)))
            )
            out.append(
                HpaPolicy(Hpa(f"rps {target} {window}s", 2, 60, (rps,), Behavior(scale_down=down)))
            )
    out.append(
        HpaPolicy(Hpa("cpu 70% legacy", 2, 60, (MetricSpec("Resource", "cpu", "Utilization", 70),)))
    )
    out.append(KedaPolicy("rate", 70, max_replicas=60))
    out.append(
        StepPolicy(
            (Step(2, lower=85), Step(1, lower=70, upper=85), Step(-1, upper=40)),
            100,
            max_replicas=60,
        )
    )
    out.append(PredictivePolicy(target_rps=70, lead_s=120, min_replicas=2, max_replicas=60))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    trace = day()
    model = FleetModel(capacity_rps=100, startup_s=60)
    chosen = policies()
    assert len(chosen) == 20
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        results = [replay(trace, p, model) for p in chosen]
        times.append(time.perf_counter() - start)
    took = median(times)
    ticks = len(results[0].t)
    print(table(
        [["20 policies, 24 h at 10 s", f"{ticks:,} ticks each", f"{took:.2f} s",
          f"{took / 20 * 1000:.0f} ms", "< 10 s: " + ("met" if took < 10 else "MISSED")]],
        ["replay", "simulation", "median wall", "per policy", "target"],
    ))  # fmt: skip


if __name__ == "__main__":
    main()
