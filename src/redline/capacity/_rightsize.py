"""``capacity rightsize``: CPU and memory requests and limits from what a target used.

The Vertical Pod Autoscaler's recommender, applied to the samples redline took of the
target during one or more runs (``--serve``/``--observe``, one sample per second):

- **CPU request**: the ``cpu_percentile`` (90th) of the cores used, plus ``margin``
  (15%), at least ``min_cpu_milli`` (25m); **CPU limit**: the 99th percentile plus the
  margin (a quota below what the service bursts to throttles it: it costs latency);
- **memory request and limit** (equal: memory cannot be taken back without a kill): the
  peak plus the margin, never below the largest sample, at least ``min_memory_bytes``
  (250 MiB); an OOM kill during the runs bumps it to ``max(x 1.2, + 100 MiB)``.

Resident memory is the process tree's (``rss_bytes``), or a cgroup's ``memory_bytes``.
With the current requests and prices it says what the change saves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from redline.core import TargetReport

__all__ = ["Rightsize", "rightsize"]

_MIB = 1 << 20


@dataclass(frozen=True)
class Rightsize:
    """Requests and limits for one container, and what they change."""

    cpu_request_milli: int
    cpu_limit_milli: int
    memory_request_bytes: int
    memory_limit_bytes: int
    samples: int
    cpu_used_p50_milli: float
    cpu_used_max_milli: float
    memory_max_bytes: float
    oom_kills: int
    current_cpu_milli: int | None = None
    current_memory_bytes: int | None = None
    saving_per_month: float | None = None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``redline capacity rightsize --out``)."""
        return {
            "requests": {
                "cpu": f"{self.cpu_request_milli}m",
                "memory": f"{math.ceil(self.memory_request_bytes / _MIB)}Mi",
            },
            "limits": {
                "cpu": f"{self.cpu_limit_milli}m",
                "memory": f"{math.ceil(self.memory_limit_bytes / _MIB)}Mi",
            },
            "samples": self.samples,
            "observed": {
                "cpu_p50_milli": self.cpu_used_p50_milli,
                "cpu_max_milli": self.cpu_used_max_milli,
                "memory_max_bytes": self.memory_max_bytes,
                "oom_kills": self.oom_kills,
            },
            "current": {
                "cpu_milli": self.current_cpu_milli,
                "memory_bytes": self.current_memory_bytes,
            },
            "saving_per_month": self.saving_per_month,
            "notes": list(self.notes),
        }


def rightsize(
    reports: Sequence[TargetReport],
    *,
    cpu_percentile: float = 90.0,
    margin: float = 0.15,
    min_cpu_milli: int = 25,
    min_memory_bytes: int = 250 * _MIB,
    oom_bump_ratio: float = 1.2,
    oom_min_bump_bytes: int = 100 * _MIB,
    current_cpu_milli: int | None = None,
    current_memory_bytes: int | None = None,
    replicas: int = 1,
    price_vcpu_hour: float = 0.0,
    price_gib_hour: float = 0.0,
) -> Rightsize:
    """Requests and limits from every sample of ``reports`` (see the module's notes).

    Raises:
        ValueError: no sample has CPU and memory figures (the runs watched nothing).
    """
    cpu: list[float] = []
    memory: list[float] = []
    ooms = 0
    for report in reports:
        for samples in report.samples.values():
            for sample in samples:
                used = sample.get("cpu_cores")
                resident = sample.get("memory_bytes") or sample.get("rss_bytes")
                if used is not None:
                    cpu.append(float(used))
                if resident is not None:
                    memory.append(float(resident))
                ooms += int(sample.get("oom_kills") or 0)
    if not cpu or not memory:
        raise ValueError(
            "no CPU and memory samples in these runs: run them with --serve or --observe"
        )
    cores = np.asarray(cpu) * 1000
    request_cpu = max(min_cpu_milli, math.ceil(np.percentile(cores, cpu_percentile) * (1 + margin)))
    limit_cpu = max(request_cpu, math.ceil(np.percentile(cores, 99) * (1 + margin)))
    peak = max(memory)
    request_memory = max(min_memory_bytes, math.ceil(peak * (1 + margin)), math.ceil(peak))
    notes = []
    if ooms:
        request_memory = max(
            math.ceil(request_memory * oom_bump_ratio), request_memory + oom_min_bump_bytes
        )
        notes.append(f"{ooms} OOM kill(s) during the runs: memory bumped as VPA does")
    if len(cpu) < 60:
        notes.append(
            f"only {len(cpu)} samples: a percentile of so few seconds is a rough guide; "
            "size from longer runs (a soak) that cover the traffic's busy hour"
        )
    saving = None
    if current_cpu_milli is not None and current_memory_bytes is not None:
        cpu_saved = (current_cpu_milli - request_cpu) / 1000
        gib_saved = (current_memory_bytes - request_memory) / (1 << 30)
        saving = replicas * 730 * (cpu_saved * price_vcpu_hour + gib_saved * price_gib_hour)
    return Rightsize(
        cpu_request_milli=request_cpu,
        cpu_limit_milli=limit_cpu,
        memory_request_bytes=request_memory,
        memory_limit_bytes=request_memory,
        samples=len(cpu),
        cpu_used_p50_milli=float(np.percentile(cores, 50)),
        cpu_used_max_milli=float(cores.max()),
        memory_max_bytes=peak,
        oom_kills=ooms,
        current_cpu_milli=current_cpu_milli,
        current_memory_bytes=current_memory_bytes,
        saving_per_month=saving,
        notes=tuple(notes),
    )
