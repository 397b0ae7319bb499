"""Concurrency sweeps: one closed-model level per user count, checked by Little's law.

Little's law says that, in a steady state, the users in a closed loop equal throughput
times the time each spends per cycle: N = X * (R + Z), R the response time and Z the
think time. When the measured X * (R + Z) falls well short of N, users are spending time
neither waiting for the target nor thinking: in the client (a busy generator, a full
connection pool, a slow scenario). Throughput measured then is the client's limit, and
a scalability fit on it describes the wrong system.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LittleCheck", "SweepLevel", "little_check"]

_SHORTFALL = 0.85  # X * (R + Z) below this share of N: the client is a bottleneck


@dataclass(frozen=True)
class LittleCheck:
    """Little's law at one level: ``expected`` users against ``measured`` X * (R + Z)."""

    users: float
    measured: float
    ratio: float
    client_bound: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "users": self.users,
            "measured": self.measured,
            "ratio": self.ratio,
            "client_bound": self.client_bound,
            "reason": self.reason,
        }


def little_check(
    *, users: float, throughput: float, mean_latency_s: float, think_s: float = 0.0
) -> LittleCheck:
    """Compare ``users`` with throughput x (mean latency + mean think time)."""
    measured = throughput * (mean_latency_s + think_s)
    ratio = measured / users if users > 0 else 0.0
    bound = ratio < _SHORTFALL
    if bound:
        reason = (
            f"{users:g} users but X*(R+Z) = {measured:.2f}: users spend {1 - ratio:.0%} of "
            "the time outside requests and think time; the client or generator is the "
            "bottleneck at this level"
        )
    else:
        reason = f"X*(R+Z) = {measured:.2f} for {users:g} users: consistent"
    return LittleCheck(users, measured, ratio, bound, reason)


@dataclass(frozen=True)
class SweepLevel:
    """One level of a concurrency sweep."""

    users: int
    throughput: float
    p50_ms: float
    p99_ms: float
    error_rate: float
    in_flight: float
    little: LittleCheck
    run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "users": self.users,
            "throughput": self.throughput,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "error_rate": self.error_rate,
            "in_flight": self.in_flight,
            "little": self.little.to_dict(),
            "run_id": self.run_id,
        }
