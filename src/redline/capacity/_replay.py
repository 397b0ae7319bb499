"""Replaying a demand trace against autoscaling policies, and scoring each.

The fleet is simulated in steps of ``dt`` seconds (the largest step that divides the
trace's resolution, the controllers' periods and the metric resolution):

- each replica serves up to ``saturation_rps`` (the rest waits in a backlog, served first
  when there is room); a replica holds the SLO up to ``capacity_rps``, the capacity
  measured by ``redline find`` (its redline);
- a new replica serves ``startup_s`` after it was asked for (scheduling, image, start-up
  and readiness together); until then it is pending: it costs, it serves nothing and
  has no metrics; scaling in removes pending replicas first, then the newest;
- metrics are scraped every ``metric_resolution_s`` as the average over the last
  ``metric_window_s``; a replica is counted in them once a full window has passed since
  it turned ready (until then it is *missing*, or for CPU *unready*, to the HPA); in a
  gap of the trace there are no metrics, and autoscalers hold (as the controller does);
- CPU per replica is ``idle_cpu_milli`` plus ``cpu_per_request_s`` per request served.

Scores, over the known part of the trace (gaps left out):

- ``violation_minutes``: time during which the demand exceeded what the ready replicas
  hold within the SLO (``ready * capacity_rps``) or a backlog was waiting;
- the SPEC Research Group's elasticity metrics (Herbst et al., "Quantifying Cloud
  Performance and Dependability", ACM TOMPECS 3(4), 2018), in the variant normalised by
  the demand, with demand ``d = ceil(rate / capacity_rps)`` replicas and supply ``s`` the
  ready replicas: under- and over-provisioning accuracy (mean of ``(d - s)+ / d`` and
  ``(s - d)+ / d``, in percent), under- and over-provisioning timeshare (percent of time
  with ``s < d`` or ``s > d``), and instability (percent of steps in which supply and
  demand move in different directions);
- ``scale_events`` (changes of the replica count asked for), ``replica_hours`` (replicas
  running or starting) and ``cost`` (at ``price_per_replica_hour``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._demand import DemandTrace, FloatArray
from ._policies import Policy, View

__all__ = ["FleetModel", "Replay", "ReplayScores", "replay"]


@dataclass(frozen=True)
class FleetModel:
    """What one replica does, measured, and how the platform behaves (seconds)."""

    capacity_rps: float
    saturation_rps: float | None = None
    cpu_per_request_s: float | None = None
    cpu_request_milli: int = 1000
    idle_cpu_milli: int = 0
    startup_s: float = 30.0
    metric_window_s: float = 30.0
    metric_resolution_s: float = 15.0
    price_per_replica_hour: float = 0.0
    initial_replicas: int | None = None

    @property
    def saturation(self) -> float:
        """The most a replica serves (default: its capacity within the SLO)."""
        return self.saturation_rps or self.capacity_rps

    @property
    def cpu_per_request(self) -> float:
        """CPU seconds per request (default: the request's CPU is spent at capacity)."""
        if self.cpu_per_request_s is not None:
            return self.cpu_per_request_s
        return (self.cpu_request_milli - self.idle_cpu_milli) / 1000 / self.capacity_rps

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for replay.json."""
        return {
            "capacity_rps": self.capacity_rps,
            "saturation_rps": self.saturation,
            "cpu_per_request_s": self.cpu_per_request,
            "cpu_request_milli": self.cpu_request_milli,
            "idle_cpu_milli": self.idle_cpu_milli,
            "startup_s": self.startup_s,
            "metric_window_s": self.metric_window_s,
            "metric_resolution_s": self.metric_resolution_s,
            "price_per_replica_hour": self.price_per_replica_hour,
        }


@dataclass(frozen=True)
class ReplayScores:
    """How a policy fared over a trace (see the module's documentation)."""

    violation_minutes: float
    under_accuracy: float
    over_accuracy: float
    under_timeshare: float
    over_timeshare: float
    instability: float
    scale_events: int
    replica_hours: float
    cost: float
    max_replicas: int
    gap_s: float

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``scores`` in replay.json)."""
        return {
            "violation_minutes": self.violation_minutes,
            "elasticity": {
                "variant": "SPEC RG (Herbst et al. 2018), normalised by demand",
                "under_accuracy_pct": self.under_accuracy,
                "over_accuracy_pct": self.over_accuracy,
                "under_timeshare_pct": self.under_timeshare,
                "over_timeshare_pct": self.over_timeshare,
                "instability_pct": self.instability,
            },
            "scale_events": self.scale_events,
            "replica_hours": self.replica_hours,
            "cost": self.cost,
            "max_replicas": self.max_replicas,
            "gap_s": self.gap_s,
        }


@dataclass(frozen=True)
class Replay:
    """One policy over one trace: the ticks and the scores."""

    policy: str
    dt: float
    t: FloatArray
    demand: FloatArray
    desired: np.ndarray
    replicas: np.ndarray
    ready: np.ndarray
    violated: np.ndarray
    scores: ReplayScores
    notes: tuple[str, ...] = field(default=())

    def ticks(self) -> list[dict[str, Any]]:
        """``{t, demand, desired, replicas, ready}`` per tick (demand null in a gap)."""
        return [
            {
                "t": float(t),
                "demand": None if math.isnan(d) else float(d),
                "desired": int(w),
                "replicas": int(r),
                "ready": int(k),
            }
            for t, d, w, r, k in zip(
                self.t, self.demand, self.desired, self.replicas, self.ready, strict=True
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the policy's name, ticks and scores."""
        return {
            "name": self.policy,
            "ticks": self.ticks(),
            "scores": self.scores.to_dict(),
            "notes": list(self.notes),
        }

    def csv(self) -> str:
        """The ticks as CSV (``t,demand,desired,replicas,ready,violated``)."""
        lines = ["t,demand,desired,replicas,ready,violated"]
        for t, d, w, r, k, v in zip(
            self.t, self.demand, self.desired, self.replicas, self.ready, self.violated,
            strict=True,
        ):  # fmt: skip
            demand = "" if math.isnan(d) else f"{d:g}"
            lines.append(f"{t:g},{demand},{w},{r},{k},{int(v)}")
        return "\n".join(lines) + "\n"


def _step(*periods: float) -> float:
    """The largest step (whole seconds, at least 1) dividing every period."""
    whole = [max(1, round(p)) for p in periods if p > 0]
    return float(math.gcd(*whole)) if whole else 1.0


def replay(trace: DemandTrace, policy: Policy, model: FleetModel) -> Replay:
    """Simulate ``policy`` scaling a fleet of ``model`` replicas through ``trace``."""
    policy = policy.fresh_copy()
    dt = _step(trace.resolution_s, policy.period_s, model.metric_resolution_s)
    n = max(1, math.ceil(trace.duration_s / dt))
    t: FloatArray = np.arange(n, dtype=np.float64) * dt
    demand = trace.at(t)
    saturation, capacity = model.saturation, model.capacity_rps
    cpu_per_request = model.cpu_per_request
    window = max(1, round(model.metric_window_s / dt))
    scrape_every = max(1, round(model.metric_resolution_s / dt))
    decide_every = max(1, round(policy.period_s / dt))
    startup = model.startup_s

    first = demand[~np.isnan(demand)]
    initial = model.initial_replicas
    if initial is None:
        initial = max(1, math.ceil((first[0] if first.size else 0.0) / capacity))
    # replicas as the times they turn ready (sorted); the first ones are ready already
    ready_at: list[float] = [-startup - model.metric_window_s] * initial
    desired = np.zeros(n, dtype=np.int64)
    replicas = np.zeros(n, dtype=np.int64)
    ready_count = np.zeros(n, dtype=np.int64)
    violated = np.zeros(n, dtype=bool)
    served_per_pod = np.zeros(n)
    known = np.zeros(n, dtype=bool)
    backlog = 0.0
    view = View(cpu_request_milli=model.cpu_request_milli)
    wanted = initial
    scraped_rps = scraped_demand = math.nan
    for i in range(n):
        now = float(t[i])
        rate = float(demand[i])
        ready = sum(1 for at in ready_at if at <= now)
        if rate == rate:  # not a gap
            known[i] = True
            offered = rate + backlog / dt
            served = min(offered, ready * saturation)
            backlog = max(0.0, backlog + (rate - served) * dt)
            served_per_pod[i] = served / ready if ready else 0.0
            violated[i] = rate > ready * capacity or backlog > 0.5
        if i % scrape_every == 0:
            lo = max(0, i - window + 1)
            if known[lo : i + 1].all():
                scraped_rps = float(served_per_pod[lo : i + 1].mean())
                scraped_demand = float(np.nanmean(demand[lo : i + 1]))
            else:
                scraped_rps = scraped_demand = math.nan
        if i % decide_every == 0:
            view.now = now
            view.replicas = len(ready_at)
            view.ready = ready
            view.fresh = sum(1 for at in ready_at if at + model.metric_window_s <= now)
            view.pod_rps = scraped_rps
            view.pod_cpu_milli = model.idle_cpu_milli + scraped_rps * cpu_per_request * 1000
            view.demand_rps = scraped_demand
            view.queue = backlog
            wanted = max(0, int(policy.decide(view)))
            if wanted > len(ready_at):
                ready_at.extend([now + startup] * (wanted - len(ready_at)))
            elif wanted < len(ready_at):
                ready_at.sort()
                del ready_at[wanted:]  # pending ones (latest ready time) go first
                ready = min(ready, wanted)
        desired[i] = wanted
        replicas[i] = len(ready_at)
        ready_count[i] = ready
    scores = _score(dt, demand, desired, replicas, ready_count, violated, known, model)
    notes = []
    if trace.gaps:
        gap = sum(b - a for a, b in trace.gaps)
        notes.append(
            f"{len(trace.gaps)} gap(s) in the trace ({gap:g} s): no metrics there, the "
            "policy held its replicas, and the scores leave them out"
        )
    return Replay(
        policy.name, dt, t, demand, desired, replicas, ready_count, violated, scores, tuple(notes)
    )


def _score(
    dt: float,
    demand: FloatArray,
    desired: np.ndarray,
    replicas: np.ndarray,
    ready: np.ndarray,
    violated: np.ndarray,
    known: np.ndarray,
    model: FleetModel,
) -> ReplayScores:
    seconds = float(known.sum()) * dt
    if seconds == 0:
        raise ValueError("the trace has no known demand to score")
    rate = np.where(known, demand, 0.0)
    need = np.ceil(rate / model.capacity_rps)
    supply = ready.astype(np.float64)
    base = np.maximum(need, 1.0)
    under = np.where(known, np.maximum(need - supply, 0) / base, 0.0)
    over = np.where(known, np.maximum(supply - need, 0) / base, 0.0)
    moves = known[1:] & known[:-1]
    unstable = (np.sign(np.diff(supply)) != np.sign(np.diff(need))) & moves
    steps = max(1, int(moves.sum()))
    replica_hours = float(replicas.sum()) * dt / 3600
    return ReplayScores(
        violation_minutes=float((violated & known).sum()) * dt / 60,
        under_accuracy=100 * float(under.sum()) * dt / seconds,
        over_accuracy=100 * float(over.sum()) * dt / seconds,
        under_timeshare=100 * float(((need > supply) & known).sum()) * dt / seconds,
        over_timeshare=100 * float(((supply > need) & known).sum()) * dt / seconds,
        instability=100 * float(unstable.sum()) / steps,
        scale_events=int(np.count_nonzero(np.diff(desired))),
        replica_hours=replica_hours,
        cost=replica_hours * model.price_per_replica_hour,
        max_replicas=int(replicas.max()),
        gap_s=float((~known).sum()) * dt,
    )


def replay_all(trace: DemandTrace, policies: Sequence[Policy], model: FleetModel) -> list[Replay]:
    """Each policy replayed over the same trace."""
    return [replay(trace, policy, model) for policy in policies]
