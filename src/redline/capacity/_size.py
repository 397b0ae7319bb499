"""``capacity size``: replicas that hold the SLO at a peak, with headroom, and their cost.

Three views of one replica, from a ``redline find`` result:

- **measured**: the redline (the highest rate at which one replica held its SLO), its
  95% interval, and the saturation throughput (the most it served when overloaded);
- **queueing**: each replica as an M/M/c queue (Erlang C) with ``c`` workers of mean
  service time ``S`` (the latency at the search's lightest step; ``c = saturation x S``),
  fed ``peak / N`` by the balancer; the response-time tail is exact for exponential
  service, and for another variability (``service_cv``) the waiting part is scaled by
  ``(1 + cv^2) / 2`` (Allen-Cunneen). It predicts the p99 at the peak;
- **scaling**: the fleet's throughput ``N X1 / (1 + sigma (N - 1) + kappa N (N - 1))``
  (the universal scalability law over replicas; ``sigma = kappa = 0``, linear, unless a
  measured fit is given).

Replicas for the SLO are the most of what the measured redline (its lower bound, by
default), the queueing model and the scaling law ask for; then ``spare`` more for losing
replicas, and enough that losing the largest of ``zones`` zones (replicas spread evenly)
still leaves that many.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ReplicaModel",
    "SizePlan",
    "erlang_c",
    "mmc_max_rate",
    "mmc_response_quantile",
    "replica_model_from_find",
    "size_fleet",
]


def erlang_c(servers: int, load: float) -> float:
    """The probability an arrival waits in an M/M/c queue (``load = lambda / mu``).

    Computed through the Erlang B recursion (stable for thousands of servers); 1.0 when
    the queue is unstable (``load >= servers``).
    """
    if load <= 0:
        return 0.0
    if load >= servers:
        return 1.0
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return servers * blocking / (servers - load * (1 - blocking))


def mmc_response_quantile(
    servers: int, arrival_rate: float, service_s: float, quantile: float, *, cv: float = 1.0
) -> float:
    """The ``quantile`` of the response time (wait and service) of an M/M/c queue, s.

    ``inf`` when the queue is unstable. With ``cv`` other than 1 the waiting time's
    decay rate is divided by ``(1 + cv^2) / 2`` (Allen-Cunneen).
    """
    mu = 1.0 / service_s
    if arrival_rate >= servers * mu:
        return math.inf
    wait = erlang_c(servers, arrival_rate / mu)
    delta = (servers * mu - arrival_rate) / ((1 + cv * cv) / 2)

    def tail(t: float) -> float:  # P(T > t): W (atom at 0, exp tail) plus S ~ Exp(mu)
        if abs(delta - mu) < 1e-12 * mu:
            return math.exp(-mu * t) * (1 + wait * mu * t)
        return math.exp(-mu * t) + wait * mu / (delta - mu) * (
            math.exp(-mu * t) - math.exp(-delta * t)
        )

    target = 1.0 - quantile
    low, high = 0.0, service_s
    while tail(high) > target:
        high *= 2
    for _ in range(100):
        mid = (low + high) / 2
        if tail(mid) > target:
            low = mid
        else:
            high = mid
    return high


@dataclass(frozen=True)
class ReplicaModel:
    """What one replica does, measured.

    Attributes:
        redline_rps: the highest rate one replica held its SLO at.
        low_rps, high_rps: its 95% interval (``low_rps`` is what sizing uses).
        saturation_rps: the most one replica served (None: never saturated).
        service_s: mean service time (latency at the lightest load).
        workers: concurrent requests one replica serves (``saturation x service``).
        lower_bound: the search never broke the replica: the capacity is at least this.
        source: where it came from.
    """

    redline_rps: float
    low_rps: float
    high_rps: float
    saturation_rps: float | None
    service_s: float
    workers: int
    lower_bound: bool = False
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "redline_rps": self.redline_rps,
            "low_rps": self.low_rps,
            "high_rps": self.high_rps,
            "saturation_rps": self.saturation_rps,
            "service_ms": self.service_s * 1000,
            "workers": self.workers,
            "lower_bound": self.lower_bound,
            "source": self.source,
        }


def replica_model_from_find(document: Mapping[str, Any], *, source: str = "") -> ReplicaModel:
    """One replica from ``redline find --out``'s JSON.

    Raises:
        ValueError: the document has no step, or no rate that held (the message says what).
    """
    steps = [s for s in document.get("steps", []) if not s.get("limited")]
    if not steps:
        raise ValueError(f"{source}: no step measured: not a redline find result")
    lower_bound = False
    rate = document.get("rate")
    low, high = document.get("low"), document.get("high")
    if rate is None:
        held = [s["achieved"] for s in steps if _held(s)]
        if not held:
            raise ValueError(f"{source}: no rate held the SLO: the replica has no capacity to size")
        rate = max(held)
        lower_bound = True  # no bracket: the replica held at every rate that held
    lightest = min(steps, key=lambda s: s["rate"])
    service_s = max(lightest["p50_ms"], 0.001) / 1000
    saturation = document.get("saturation")
    peak_served = saturation or max(s["achieved"] for s in steps)
    workers = max(1, round(peak_served * service_s))
    return ReplicaModel(
        redline_rps=float(rate),
        low_rps=float(low if low is not None else rate),
        high_rps=float(high if high is not None else rate),
        saturation_rps=float(saturation) if saturation is not None else None,
        service_s=service_s,
        workers=workers,
        lower_bound=lower_bound or document.get("outcome") == "held at max",
        source=source,
    )


def mmc_max_rate(
    servers: int, service_s: float, bound_s: float, quantile: float = 0.99, *, cv: float = 1.0
) -> float:
    """The highest arrival rate keeping the response time's ``quantile`` within ``bound_s``.

    0 when even an idle server's service misses it.
    """
    if mmc_response_quantile(servers, 0.0, service_s, quantile, cv=cv) > bound_s:
        return 0.0
    low, high = 0.0, servers / service_s
    for _ in range(60):
        mid = (low + high) / 2
        if mmc_response_quantile(servers, mid, service_s, quantile, cv=cv) <= bound_s:
            low = mid
        else:
            high = mid
    return low


def _held(step: Mapping[str, Any]) -> bool:
    return all(v.get("outcome") != "fail" for v in step.get("verdicts", []))


@dataclass(frozen=True)
class SizePlan:
    """How many replicas, why, and what they cost."""

    peak_rps: float
    replicas_for_slo: int
    replicas: int
    by_measurement: int
    by_queueing: int | None
    by_scaling: int
    spare: int
    zones: int
    utilisation: float
    p99_ms: float | None
    p99_zone_lost_ms: float | None
    slo_ms: float | None
    cost_per_month: float
    model: ReplicaModel
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``redline capacity size --out``)."""
        return {
            "peak_rps": self.peak_rps,
            "replicas": self.replicas,
            "replicas_for_slo": self.replicas_for_slo,
            "by": {
                "measurement": self.by_measurement,
                "queueing": self.by_queueing,
                "scaling": self.by_scaling,
            },
            "spare": self.spare,
            "zones": self.zones,
            "utilisation": self.utilisation,
            "predicted_p99_ms": self.p99_ms,
            "predicted_p99_zone_lost_ms": self.p99_zone_lost_ms,
            "slo_p99_ms": self.slo_ms,
            "cost_per_month": self.cost_per_month,
            "replica": self.model.to_dict(),
            "notes": list(self.notes),
        }


def _with_zones(replicas: int, zones: int) -> int:
    """The fewest replicas that still leave ``replicas`` when the largest zone is lost."""
    if zones <= 1:
        return replicas
    total = replicas
    while total - math.ceil(total / zones) < replicas:
        total += 1
    return total


def size_fleet(
    model: ReplicaModel,
    peak_rps: float,
    *,
    slo_p99_ms: float | None = None,
    quantile: float = 0.99,
    spare: int = 0,
    zones: int = 1,
    sigma: float = 0.0,
    kappa: float = 0.0,
    service_cv: float = 1.0,
    conservative: bool = True,
    price_per_replica_hour: float = 0.0,
    max_replicas: int = 10_000,
) -> SizePlan:
    """Replicas that hold the SLO at ``peak_rps`` (see the module's documentation)."""
    if peak_rps <= 0:
        raise ValueError(f"the peak must be above 0 req/s, got {peak_rps:g}")
    per_replica = model.low_rps if conservative else model.redline_rps
    by_measurement = max(1, math.ceil(peak_rps / per_replica))
    notes = []
    if model.lower_bound:
        notes.append(
            f"the search never broke one replica: {per_replica:,.0f} req/s is a lower bound "
            "of its capacity, so these replicas are an upper bound"
        )

    def p99_at(replicas: int) -> float:
        return 1000 * mmc_response_quantile(
            model.workers, peak_rps / replicas, model.service_s, quantile, cv=service_cv
        )

    by_queueing = None
    if slo_p99_ms is not None:
        for n in range(1, max_replicas + 1):
            if p99_at(n) <= slo_p99_ms:
                by_queueing = n
                break
        else:
            notes.append(f"no fleet of up to {max_replicas} replicas meets the SLO in the model")
    single = model.saturation_rps or model.high_rps
    by_scaling = 1
    while by_scaling < max_replicas:
        fleet = (
            by_scaling
            * per_replica
            / (1 + sigma * (by_scaling - 1) + kappa * by_scaling * (by_scaling - 1))
        )
        if fleet >= peak_rps:
            break
        by_scaling += 1
    if sigma == 0 and kappa == 0:
        notes.append("scaling across replicas taken as linear (give --sigma/--kappa from a fit)")
    needed = max(by_measurement, by_queueing or 0, by_scaling)
    total = _with_zones(needed + spare, zones)
    p99 = p99_at(total)
    lost = total - math.ceil(total / zones) if zones > 1 else total - spare
    p99_lost = p99_at(lost) if lost > 0 else math.inf
    return SizePlan(
        peak_rps=peak_rps,
        replicas_for_slo=needed,
        replicas=total,
        by_measurement=by_measurement,
        by_queueing=by_queueing,
        by_scaling=by_scaling,
        spare=spare,
        zones=zones,
        utilisation=peak_rps / (total * single),
        p99_ms=p99,
        p99_zone_lost_ms=p99_lost if zones > 1 or spare else None,
        slo_ms=slo_p99_ms,
        cost_per_month=total * price_per_replica_hour * 730,
        model=model,
        notes=tuple(notes),
    )
