"""The error-budget gate: a rollout step proceeds only while the budget can afford it.

It reads what ``redline slo rules`` records in Prometheus for an objective:
``redline:slo_error_budget_remaining:<slo>`` (the share of the period's budget left) and
``redline:slo_error_ratio:<slo>:rate<window>`` (the error ratio now, canary included).
The burn rate is that ratio over the budget (``1 - objective``); the budget projected to
the end of the rollout is what remains minus what burning at that rate for the rest of
the rollout would spend (``burn * rest / period``). The gate is open while the projection
stays at or above the floor the policy names; a budget that cannot be read closes it.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from ._prometheus import PrometheusError

__all__ = ["BudgetGate", "BudgetReading"]


@dataclass(frozen=True)
class BudgetReading:
    """What the gate read and concluded."""

    remaining: float
    burn_rate: float
    projected: float
    floor: float

    @property
    def allowed(self) -> bool:
        """Whether the projected budget stays at or above the floor."""
        return self.projected >= self.floor

    def why(self) -> str:
        """One sentence: the numbers and the conclusion."""
        verb = "stays above" if self.allowed else "falls below"
        return (
            f"error budget {self.remaining:.1%} left, burning at {self.burn_rate:.2f}x; "
            f"projected {self.projected:.1%} at the end of the rollout, which {verb} "
            f"the floor of {self.floor:.0%}"
        )


@dataclass(frozen=True)
class BudgetGate:
    """Reads one objective's budget from Prometheus (rules of ``redline slo rules``).

    Attributes:
        url: the Prometheus server.
        slo: the objective's name as the rules name it (``checkout-availability``).
        objective: its target (0.999), for the burn rate.
        period_s: its window (30 days).
        floor: the least budget share the projection may reach (0.25).
        window: the error-ratio window read as "now" (``1h``).
    """

    url: str
    slo: str
    objective: float
    period_s: float = 30 * 86400
    floor: float = 0.25
    window: str = "1h"
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 0 < self.objective < 1:
            raise ValueError(f"objective: expected a fraction like 0.999, got {self.objective}")
        if not 0 <= self.floor < 1:
            raise ValueError(f"floor: expected a fraction of the budget, got {self.floor}")

    @property
    def slug(self) -> str:
        """The objective's name as it appears in the rules' metric names."""
        return re.sub(r"[^a-zA-Z0-9_]+", "_", self.slo).strip("_").lower() or "slo"

    def read(self, rest_s: float) -> BudgetReading:
        """The budget now and projected ``rest_s`` seconds on.

        Raises:
            PrometheusError: Prometheus cannot be reached or has no such series.
        """
        remaining = self._instant(f"redline:slo_error_budget_remaining:{self.slug}")
        ratio = self._instant(f"redline:slo_error_ratio:{self.slug}:rate{self.window}")
        burn = ratio / (1 - self.objective)
        projected = remaining - burn * max(rest_s, 0.0) / self.period_s
        return BudgetReading(remaining, burn, projected, self.floor)

    def check(self, rest_s: float = 0.0) -> tuple[bool, str]:
        """Open or closed, and why (closed when the budget cannot be read)."""
        try:
            reading = self.read(rest_s)
        except PrometheusError as exc:
            return False, f"the error budget cannot be read: {exc}"
        return reading.allowed, reading.why()

    def _instant(self, query: str) -> float:
        address = f"{self.url.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        try:
            with urllib.request.urlopen(address, timeout=self.timeout_s) as answer:  # user's URL
                body = json.loads(answer.read())
        except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
            raise PrometheusError(f"{self.url}: {query}: {getattr(exc, 'reason', exc)}") from None
        result = body.get("data", {}).get("result", []) if body.get("status") == "success" else []
        if not result:
            raise PrometheusError(
                f"{self.url}: no series {query} (are the rules of redline slo rules loaded?)"
            )
        return float(result[0]["value"][1])
