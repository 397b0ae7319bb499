"""The bottleneck, by the USE method: utilisation, saturation and errors of each resource.

Read off a run's :class:`~redline.core.TargetReport` over its measured intervals (warm-up
excluded), for the thing the verdict is about (the served process, else the first watched
process or cgroup; a cgroup with a CPU quota is read for the quota):

==============  =========================================================================
bottleneck      when (checked in this order; the first that holds is named)
==============  =========================================================================
``cpu-quota``   a cgroup's quota throttled it (throttled time > 0) while it used >= 80%
                of the quota
``cpu``         it used >= 80% of the cores it may use (a single Python process may use
                one, whatever the machine has: the GIL)
``memory``      the OOM killer ended a process, it held >= 90% of its memory limit, or
                tasks stalled on memory >= 10% of the time (PSI)
``io``          tasks stalled on I/O >= 20% of the time (PSI)
``network``     the host's accept queues overflowed (ListenOverflows, ListenDrops)
``pool``        a pool the target's metrics report (``X_in_use`` beside ``X_size``) was
                >= 90% in use (the median of the measured intervals)
``lock``        application threads waited on locks in >= 30% of the application's
                samples, and more than they ran (a profile is needed)
``pool``        likewise on a pool (a queue, a semaphore, a pool library's checkout)
``none``        none of those
==============  =========================================================================

The memory trend is a least-squares slope over 5-second means (to damp the correlation
of neighbouring seconds) with a 95% t interval; it is called growth only when the
interval excludes 0 and the growth over the run is material (at least 1 MiB and 2% of
the mean). Cost per request is CPU-seconds and GiB-seconds of memory over the measured
requests; with a price table, the price of a million requests.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import replace

from redline.core import (
    Bottleneck,
    MemoryGrowth,
    RunResult,
    TargetCost,
    TargetReport,
    TargetVerdict,
    UseRow,
    WatchedThing,
)

__all__ = ["cost_of", "judge_target", "memory_growth"]

CPU_BUSY = 0.80
QUOTA_BUSY = 0.80
MEMORY_FULL = 0.90
MEMORY_STALL_PCT = 10.0
IO_STALL_PCT = 20.0
WAIT_SHARE = 0.30
POOL_FULL = 0.90
GIB = 1024**3
MIB = 1024**2

# two-sided 95% t quantiles by degrees of freedom (beyond 30: the normal's 1.96 suffices)
_T95 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
    9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120,
    17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
    25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042,
}  # fmt: skip


def _values(report: TargetReport, thing: str, metric: str, indices: set[int]) -> list[float]:
    return [float(v) for i, v in report.series(thing, metric) if i in indices and v is not None]


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _capacity(thing: WatchedThing, report: TargetReport, indices: set[int]) -> float | None:
    cores = thing.cores
    if thing.kind == "process" and thing.python:
        processes = _values(report, thing.name, "processes", indices)
        if processes and max(processes) <= 1:
            cores = min(cores or 1.0, 1.0)  # one interpreter: one core at a time (the GIL)
    return cores


def _cores_text(cores: float | None) -> str:
    if cores is None:
        return "the machine's cores"
    if cores == 1:
        return "its one core"
    return f"its {cores:g} cores"


def _hottest(report: TargetReport, count: int = 2) -> str:
    profile = report.profile
    if profile is None or not profile.top:
        return ""
    frames = ", ".join(f"{f.function} ({f.self_pct:.0f}% self)" for f in profile.top[:count])
    return f": hottest frames {frames}"


def _use_rows(report: TargetReport, indices: set[int]) -> list[UseRow]:
    rows: list[UseRow] = []
    for thing in report.watched:
        name = thing.name
        cpu = _values(report, name, "cpu_cores", indices)
        if cpu:
            capacity = _capacity(thing, report, indices)
            used = _median(cpu)
            throttled = _values(report, name, "throttled_s", indices)
            stall = _values(report, name, "cpu_some_pct", indices)
            rows.append(
                UseRow(
                    resource="cpu",
                    thing=name,
                    utilisation_pct=(used / capacity * 100)
                    if used is not None and capacity
                    else None,
                    saturation=sum(throttled) if throttled else _median(stall),
                    saturation_unit="s throttled" if throttled else "% stalled (PSI)",
                )
            )
        memory = _values(report, name, "memory_bytes", indices) or _values(
            report, name, "rss_bytes", indices
        )
        if memory:
            limit = thing.memory_limit_bytes
            stall = _values(report, name, "memory_some_pct", indices)
            kills = _values(report, name, "oom_kills", indices)
            rows.append(
                UseRow(
                    resource="memory",
                    thing=name,
                    utilisation_pct=max(memory) / limit * 100 if limit else None,
                    saturation=_median(stall),
                    saturation_unit="% stalled (PSI)",
                    errors=sum(kills) if kills else None,
                    errors_unit="OOM kills",
                )
            )
        io_stall = _values(report, name, "io_some_pct", indices)
        if io_stall:
            rows.append(
                UseRow(
                    resource="io",
                    thing=name,
                    utilisation_pct=None,
                    saturation=_median(io_stall),
                    saturation_unit="% stalled (PSI)",
                )
            )
        overflows = _values(report, name, "listen_overflows", indices)
        if overflows:
            drops = _values(report, name, "listen_drops", indices)
            retransmits = _values(report, name, "tcp_retransmits", indices)
            rows.append(
                UseRow(
                    resource="network",
                    thing=name,
                    utilisation_pct=None,
                    saturation=sum(overflows) + sum(drops),
                    saturation_unit="accept-queue overflows",
                    errors=sum(retransmits) if retransmits else None,
                    errors_unit="TCP retransmits",
                )
            )
    rows.extend(_pool_rows(report, indices))
    profile = report.profile
    if profile is not None and (profile.waits or profile.samples):
        app = sum(profile.waits.values()) + profile.samples
        for kind in ("lock", "pool"):
            if profile.waits.get(kind):
                rows.append(
                    UseRow(
                        resource=kind,
                        thing=report.primary.name if report.primary else "",
                        utilisation_pct=None,
                        saturation=profile.waits[kind] / app * 100 if app else None,
                        saturation_unit="% of samples waiting",
                    )
                )
    return rows


_POOL_SIZES = ("_size", "_max", "_limit")


def _pool_rows(report: TargetReport, indices: set[int]) -> list[UseRow]:
    """The pools a metrics endpoint reports: ``X_in_use`` beside ``X_size``.

    ``X_max`` or ``X_limit`` serve as the size too; ``X_waiting`` is the saturation.
    """
    rows = []
    for thing in report.watched:
        if thing.kind != "prometheus":
            continue
        names = {k for s in report.samples.get(thing.name, ()) for k in s}
        for name in sorted(n for n in names if n.endswith("_in_use")):
            base = name[: -len("_in_use")]
            size_name = next((base + s for s in _POOL_SIZES if base + s in names), None)
            if size_name is None:
                continue
            used = dict(report.series(thing.name, name))
            sizes = dict(report.series(thing.name, size_name))
            shares = [
                used[i] / sizes[i] * 100  # type: ignore[operator]
                for i in indices
                if used.get(i) is not None and sizes.get(i)
            ]
            waiting = _values(report, thing.name, base + "_waiting", indices)
            rows.append(
                UseRow(
                    resource="pool",
                    thing=f"{thing.name} {base}",
                    utilisation_pct=_median(shares),
                    saturation=_median(waiting),
                    saturation_unit="waiting",
                )
            )
    return rows


def _verdict(report: TargetReport, rows: list[UseRow], indices: set[int]) -> TargetVerdict:
    primary = report.primary
    if primary is None:
        return TargetVerdict("none", "nothing of the target was watched")
    by = {(r.resource, r.thing): r for r in rows}
    for thing in report.watched:  # a quota first: the process's own figures hide it
        row = by.get(("cpu", thing.name))
        if thing.kind != "cgroup" or row is None or row.utilisation_pct is None:
            continue
        throttled = _values(report, thing.name, "throttled_s", indices)
        periods = _values(report, thing.name, "throttled_periods", indices)
        if sum(throttled) > 0 and row.utilisation_pct >= QUOTA_BUSY * 100:
            return TargetVerdict(
                "cpu-quota",
                f"CPU quota of {thing.name} ({thing.cores:g} cores): used "
                f"{row.utilisation_pct:.0f}% of it, throttled {sum(throttled):.1f} s in "
                f"{sum(periods):.0f} periods{_hottest(report)}",
            )
    cpu = [r for r in rows if r.resource == "cpu" and r.utilisation_pct is not None]
    ranked = sorted(cpu, key=lambda r: r.thing != primary.name)  # the primary's row first
    for row in ranked:
        busy = report.thing(row.thing)
        if busy is None or busy.kind == "host" or row.utilisation_pct is None:
            continue
        if row.utilisation_pct >= CPU_BUSY * 100:
            throttled_s = sum(_values(report, busy.name, "throttled_s", indices))
            return TargetVerdict(
                "cpu",
                f"CPU of {busy.name} ({row.utilisation_pct:.0f}% of "
                f"{_cores_text(_capacity(busy, report, indices))}, throttled "
                f"{throttled_s:.1f} s){_hottest(report)}",
            )
    for row in rows:
        if row.resource != "memory":
            continue
        if row.errors:
            return TargetVerdict(
                "memory",
                f"memory of {row.thing}: the OOM killer ended {row.errors:.0f} process(es)",
            )
        if row.utilisation_pct is not None and row.utilisation_pct >= MEMORY_FULL * 100:
            return TargetVerdict(
                "memory", f"memory of {row.thing}: {row.utilisation_pct:.0f}% of its limit"
            )
        if row.saturation is not None and row.saturation >= MEMORY_STALL_PCT:
            return TargetVerdict(
                "memory", f"memory of {row.thing}: tasks stalled {row.saturation:.0f}% of the time"
            )
    for row in rows:
        if row.resource == "io" and row.saturation is not None and row.saturation >= IO_STALL_PCT:
            return TargetVerdict(
                "io", f"I/O of {row.thing}: tasks stalled {row.saturation:.0f}% of the time"
            )
    for row in rows:
        if row.resource == "network" and row.saturation:
            return TargetVerdict(
                "network",
                f"network of {row.thing}: {row.saturation:.0f} connections overflowed the "
                "accept queue (the server did not accept them in time)",
            )
    for row in rows:
        if (
            row.resource == "pool"
            and row.utilisation_pct is not None
            and row.utilisation_pct >= POOL_FULL * 100
        ):
            queued = f", {row.saturation:.0f} waiting" if row.saturation else ""
            return TargetVerdict(
                "pool", f"pool {row.thing}: {row.utilisation_pct:.0f}% of it in use{queued}"
            )
    profile = report.profile
    if profile is not None and profile.waits:
        app = sum(profile.waits.values()) + profile.samples
        kind: Bottleneck = max(("lock", "pool"), key=lambda k: profile.waits.get(k, 0))
        waiting = profile.waits.get(kind, 0)
        if app and waiting / app >= WAIT_SHARE and waiting > profile.samples:
            site = profile.wait_sites.get(kind)
            where = f" at {site}" if site else ""
            capacity = _cores_text(_capacity(primary, report, indices))
            cpu_text = next(
                (
                    f"; CPU {r.utilisation_pct:.0f}% of {capacity}"
                    for r in ranked
                    if r.thing == primary.name and r.utilisation_pct is not None
                ),
                "",
            )
            return TargetVerdict(
                kind,
                f"threads of {primary.name} wait on a {kind}: {waiting / app:.0%} of the "
                f"application's samples{where}{cpu_text}",
            )
    busiest = next((r for r in ranked if r.thing == primary.name), None)
    text = (
        f"CPU {busiest.utilisation_pct:.0f}% of {_cores_text(_capacity(primary, report, indices))}"
        if busiest is not None and busiest.utilisation_pct is not None
        else "no CPU figures"
    )
    return TargetVerdict("none", f"no resource of {primary.name} saturated: {text}")


def memory_growth(
    report: TargetReport, result: RunResult, *, block_s: int = 5, min_blocks: int = 6
) -> MemoryGrowth | None:
    """The primary thing's memory trend, or ``None`` when the run is too short to read one.

    The slope is fitted to ``block_s``-second means (at least ``min_blocks`` of them).
    """
    primary = report.primary
    if primary is None:
        return None
    measured = [i for i in result.measured]
    metric = "memory_bytes" if primary.kind == "cgroup" else "rss_bytes"
    values = dict((i, v) for i, v in report.series(primary.name, metric) if v is not None)
    points = [(m.start_s, values[m.index]) for m in measured if m.index in values]
    blocks: list[tuple[float, float]] = []
    for first in range(0, len(points) - block_s + 1, block_s):
        chunk = points[first : first + block_s]
        blocks.append(
            (statistics.fmean(t for t, _ in chunk), statistics.fmean(v for _, v in chunk))
        )
    if len(blocks) < min_blocks:
        return None
    xs = [t for t, _ in blocks]
    ys = [v for _, v in blocks]
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - x_mean) ** 2 for x in xs)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True)) / sxx
    residuals = [y - (y_mean + slope * (x - x_mean)) for x, y in zip(xs, ys, strict=True)]
    dof = len(blocks) - 2
    spread = math.sqrt(sum(r * r for r in residuals) / dof / sxx)
    margin = _T95.get(dof, 1.96) * spread
    low, high = slope - margin, slope + margin
    span = xs[-1] - xs[0] + block_s
    growth = slope * span
    growing = low > 0 and growth >= max(MIB, 0.02 * y_mean)
    return MemoryGrowth(primary.name, slope, low, high, growing)


def cost_of(
    report: TargetReport,
    result: RunResult,
    *,
    vcpu_hour: float | None = None,
    gib_hour: float | None = None,
) -> TargetCost | None:
    """CPU-seconds and GiB-seconds per measured request of the primary thing.

    With a price table, also the price of a million requests.
    """
    primary = report.primary
    requests = result.total().requests
    if primary is None or primary.kind in ("prometheus", "host") or not requests:
        return None
    durations = {i.index: i.duration_s for i in result.measured}
    cpu = [(i, v) for i, v in report.series(primary.name, "cpu_cores") if i in durations]
    metric = "memory_bytes" if primary.kind == "cgroup" else "rss_bytes"
    memory = [(i, v) for i, v in report.series(primary.name, metric) if i in durations]
    cpu_known = [(i, v) for i, v in cpu if v is not None]
    memory_known = [(i, v) for i, v in memory if v is not None]
    cpu_s = sum(v * durations[i] for i, v in cpu_known) if cpu_known else None
    gib_s = sum(v / GIB * durations[i] for i, v in memory_known) if memory_known else None
    per_million = None
    if (vcpu_hour is not None or gib_hour is not None) and cpu_s is not None:
        price = cpu_s / 3600 * (vcpu_hour or 0.0) + (gib_s or 0.0) / 3600 * (gib_hour or 0.0)
        per_million = price / requests * 1e6
    return TargetCost(
        cpu_s_per_request=cpu_s / requests if cpu_s is not None else None,
        memory_gib_s_per_request=gib_s / requests if gib_s is not None else None,
        per_million=per_million,
        vcpu_hour=vcpu_hour,
        gib_hour=gib_hour,
    )


def judge_target(
    result: RunResult,
    report: TargetReport,
    *,
    vcpu_hour: float | None = None,
    gib_hour: float | None = None,
) -> TargetReport:
    """``report`` with its USE table, bottleneck, memory trend and cost filled in."""
    indices = {i.index for i in result.measured}
    rows = _use_rows(report, indices)
    return replace(
        report,
        use=tuple(rows),
        verdict=_verdict(report, rows, indices),
        memory_growth=memory_growth(report, result),
        cost=cost_of(report, result, vcpu_hour=vcpu_hour, gib_hour=gib_hour),
    )
