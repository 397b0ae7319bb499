"""Prometheus rules for SLOs: multiwindow, multi-burn-rate alerts and error budgets.

For an SLO period of 30 days, the SRE workbook's alerts are: page when the error ratio
burns the budget 14.4 times too fast over 1 h (and over 5 m, so the alert stops soon
after the burn does) or 6 times over 6 h (and 30 m); open a ticket at 3 times over 1 d
(and 2 h) or once over 3 d (and 6 h). Each pair spends a fixed share of the period's
budget before it fires (2%, 5%, 10%, 10%). For another period the windows are scaled
with it, so the burn rates and the shares stay the same.

A burn rate can never be reached when it is at or above ``1 / budget``: the error ratio
cannot exceed 1. Such an alert would never fire, so it is refused.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from redline.core import Objective, RedlineError

__all__ = [
    "DEFAULT_BURN_RATES",
    "PrometheusSource",
    "RatioQuery",
    "SloRuleError",
    "burn_windows",
    "period_seconds",
    "slo_rules",
]

DEFAULT_BURN_RATES = (14.4, 6.0, 3.0, 1.0)
"""Page, page, ticket, ticket: the SRE workbook's burn rates for a 30-day SLO."""
_MONTH = 30 * 86400
# (long window, short window) in seconds for a 30-day period, and each alert's severity.
_WINDOWS_30D = ((3600, 300), (6 * 3600, 1800), (86400, 7200), (3 * 86400, 6 * 3600))
_SEVERITY = ("page", "page", "ticket", "ticket")


class SloRuleError(RedlineError, ValueError):
    """An objective cannot be turned into burn-rate rules (the message says why)."""


@dataclass(frozen=True, slots=True)
class PrometheusSource:
    """Where a service's own metrics say how it is doing.

    Attributes:
        requests: a counter of all requests (a metric name, optionally with matchers).
        errors: a counter of failed requests; by default ``requests`` with
            ``code=~"5.."``.
        latency: a histogram of request durations in seconds (its base name).
        labels: matchers added to every selector (``{"job": "shop"}``).
    """

    requests: str = "http_requests_total"
    errors: str | None = None
    latency: str = "http_request_duration_seconds"
    labels: Mapping[str, str] = field(default_factory=dict)

    def selector(self, metric: str, extra: Mapping[str, str] | None = None) -> str:
        """``metric`` with this source's labels (and ``extra`` exact matchers) added."""
        name, _, inner = metric.partition("{")
        matchers = [m.strip() for m in inner.rstrip("}").split(",") if m.strip()]
        matchers += [f'{k}="{v}"' for k, v in {**self.labels, **(extra or {})}.items()]
        return f"{name}{{{','.join(matchers)}}}" if matchers else name

    def error_selector(self) -> str:
        """The selector of failed requests."""
        if self.errors is not None:
            return self.selector(self.errors)
        name, _, inner = self.requests.partition("{")
        return self.selector(f'{name}{{{inner.rstrip("}")}{"," if inner else ""}code=~"5.."}}')


class RatioQuery(Protocol):
    """An objective whose error ratio is the service's own PromQL (an OpenSLO indicator)."""

    @property
    def name(self) -> str:
        """The objective's name."""

    @property
    def text(self) -> str:
        """What it says, for annotations."""

    @property
    def target(self) -> float:
        """The share of good events asked for."""

    def error_ratio(self, window: str) -> str:
        """The PromQL of the bad share of events over ``window``."""


def burn_windows(period_s: float) -> list[tuple[int, int]]:
    """The (long, short) alert windows, in whole seconds, for an SLO period."""
    scale = period_s / _MONTH
    return [
        (max(60, round(long * scale)), max(60, round(short * scale)))
        for long, short in _WINDOWS_30D
    ]


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _target(objective: Objective) -> float:
    """The share of good events the objective asks for."""
    if objective.phase:
        raise SloRuleError(
            f"{objective.name}: the {objective.phase} phase is timed by the load generator; "
            "a service's own metrics do not have it, so it has no rule"
        )
    if objective.metric == "error_rate":
        if objective.op not in ("<", "<="):
            raise SloRuleError(
                f"{objective.name}: an error rate objective must bound it from above"
            )
        return 1 - objective.threshold
    if objective.metric == "good_ratio":
        return objective.target
    if objective.metric == "percentile":
        if objective.op not in ("<", "<="):
            raise SloRuleError(f"{objective.name}: a latency objective must bound it from above")
        return objective.percentile / 100
    raise SloRuleError(
        f"{objective.name}: {objective.text!r} is not a ratio of good to all requests, so "
        "it has no error budget to burn (use an error rate, a percentile or the "
        '"99% of requests under 250ms" form)'
    )


def _ratio_expression(objective: Objective, source: PrometheusSource, window: str) -> str:
    if objective.metric == "error_rate":
        return (
            f"sum(rate({source.error_selector()}[{window}])) / "
            f"sum(rate({source.selector(source.requests)}[{window}]))"
        )
    seconds = objective.threshold / 1000  # the threshold is in ms, the histogram in s
    # Clients write a whole-second bound as "1" (Go) or "1.0" (Python): match both.
    le = f'le=~"{seconds:g}([.]0+)?"' if seconds == int(seconds) else f'le="{seconds:g}"'
    bucket = source.selector(f"{source.latency}_bucket{{{le}}}")
    count = source.selector(f"{source.latency}_count")
    return f"1 - (sum(rate({bucket}[{window}])) / sum(rate({count}[{window}])))"


def _slug(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]+", "_", name).strip("_").lower() or "slo"


def slo_rules(
    objectives: Sequence[tuple[Objective, PrometheusSource] | RatioQuery],
    *,
    period_s: float = _MONTH,
    burn_rates: Sequence[float] = DEFAULT_BURN_RATES,
    service: str = "",
) -> dict[str, Any]:
    """A Prometheus rule file (as data, ready for YAML) for ``objectives``.

    For each objective: recording rules of the error ratio over every alert window and
    the whole period, the error budget remaining, and two alerts (page and ticket).

    Raises:
        SloRuleError: an objective is not a ratio SLO, or a burn rate could never fire.
    """
    if len(burn_rates) != 4 or any(b <= 0 for b in burn_rates):
        raise SloRuleError(
            "expected four positive burn rates (page, page, ticket, ticket), "
            f"got {list(burn_rates)}"
        )
    windows = burn_windows(period_s)
    groups = []
    for entry in objectives:
        ratio: Callable[[str], str]
        if isinstance(entry, tuple):
            objective, source = entry
            target = _target(objective)
            name, text = objective.name, objective.text
            ratio = functools.partial(_ratio_expression, objective, source)
        else:
            target, name, text, ratio = entry.target, entry.name, entry.text, entry.error_ratio
        budget = 1 - target
        if not 0 < budget < 1:
            raise SloRuleError(f"{name}: objective {target:.6g} leaves no error budget")
        for rate, severity in zip(burn_rates, _SEVERITY, strict=True):
            if rate >= 1 / budget:
                raise SloRuleError(
                    f"{name}: a {rate:g}x burn ({severity}) can never fire: with an "
                    f"objective of {target:.6g} the budget is {budget:.6g}, so the error ratio "
                    f"would have to reach {rate * budget:.4g}, and it cannot exceed 1 "
                    f"(burn rates must stay below 1/(1 - objective) = {1 / budget:.4g}); "
                    "choose a stricter objective or lower --burn-rates"
                )
        slug = _slug(name)
        labels = {"slo": name, **({"service": service} if service else {})}
        spans = sorted({w for pair in windows for w in pair} | {round(period_s)})
        record = f"redline:slo_error_ratio:{slug}"
        rules: list[dict[str, Any]] = [
            {
                "record": f"{record}:rate{_duration(span)}",
                "expr": ratio(_duration(span)),
                "labels": dict(labels),
            }
            for span in spans
        ]
        period = _duration(round(period_s))
        rules.append(
            {
                "record": f"redline:slo_error_budget_remaining:{slug}",
                "expr": f"1 - {record}:rate{period} / {budget:.12g}",
                "labels": dict(labels),
            }
        )
        for severity in ("page", "ticket"):
            pairs = [
                (rate, long, short)
                for rate, (long, short), sev in zip(burn_rates, windows, _SEVERITY, strict=True)
                if sev == severity
            ]
            expr = " or ".join(
                f"({record}:rate{_duration(long)} >= {rate * budget:.12g} and "
                f"{record}:rate{_duration(short)} >= {rate * budget:.12g})"
                for rate, long, short in pairs
            )
            burns = " or ".join(
                f"{rate:g}x over {_duration(long)}/{_duration(short)}"
                for rate, long, short in pairs
            )
            rules.append(
                {
                    "alert": f"{_camel(name)}ErrorBudgetBurn{severity.title()}",
                    "expr": expr,
                    "labels": {**labels, "severity": severity},
                    "annotations": {
                        "summary": f"SLO {name} is burning its error budget ({burns})",
                        "description": (
                            f"{text}: over both windows of a pair, the error ratio "
                            f"is at or above the burn rate times the budget ({budget:.6g})."
                        ),
                    },
                }
            )
        groups.append({"name": f"redline-slo-{slug}", "rules": rules})
    return {"groups": groups}


def _camel(name: str) -> str:
    words = re.split(r"[^a-zA-Z0-9]+", name)
    return "".join(w[:1].upper() + w[1:] for w in words if w) or "Slo"


def period_seconds(text: str) -> float:
    """``"30d"``, ``"28d"``, ``"7d"`` or ``"1w"`` as seconds.

    Raises:
        ValueError: not a whole number of days or weeks.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([dw])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(f'expected an SLO window like "30d" or "4w", got {text!r}')
    return int(match.group(1)) * (7 if match.group(2) == "w" else 1) * 86400.0
