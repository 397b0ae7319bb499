"""Service level objectives and the verdicts judged on them.

An :class:`Objective` is parsed from one line of text such as ``p99 < 250ms``,
``error_rate < 0.1%``, ``rps >= 900``, ``checks >= 99%`` or the SRE form
``99% of requests under 250ms``; k6's ``p(99)<250`` (milliseconds) is accepted too. A
latency objective may name a request phase first: ``ttfb.p99 < 50ms``, ``connect.max <
100ms`` (see :data:`PHASE_NAMES`).
A :class:`Verdict` is what evaluating an objective on a run gives: a value, not an
exception.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._codec import from_data, to_data
from ._errors import PlanError
from ._units import parse_duration

__all__ = [
    "FAIL",
    "INCONCLUSIVE",
    "PASS",
    "PHASE_NAMES",
    "SCOPES",
    "Objective",
    "Outcome",
    "Verdict",
    "parse_objective",
]

Outcome = Literal["pass", "fail", "inconclusive"]
"""How a verdict came out: the objective held, was breached, or could not be told."""
PASS: Final = "pass"
"""A verdict's outcome: the objective held."""
FAIL: Final = "fail"
"""A verdict's outcome: the objective was breached."""
INCONCLUSIVE: Final = "inconclusive"
"""A verdict's outcome: too little data, or an interval that straddles the threshold."""
SCOPES = ("endpoint", "group", "scenario", "check", "metric")
"""What an objective can be scoped to besides the whole run."""
LATENCY = ("percentile", "mean", "min", "max")
PHASE_NAMES = {
    "dns": "dns",
    "connect": "connect",
    "connecting": "connect",
    "tls": "tls",
    "tls_handshaking": "tls",
    "send": "send",
    "sending": "send",
    "wait": "wait",
    "waiting": "wait",
    "ttfb": "wait",
    "receive": "receive",
    "receiving": "receive",
}
"""How an objective may name a request phase (k6's ``http_req_`` prefix may precede)."""
_OPS = ("<=", ">=", "<", ">")
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_SRE = re.compile(
    rf"^{_NUMBER}\s*%\s*(?:of\s+requests\s+)?(?:under|within|below|<=|<)\s*(.+)$", re.IGNORECASE
)
_COMPARISON = re.compile(r"^([A-Za-z_][\w.]*(?:\(\s*[\d.]+\s*\))?)\s*(<=|>=|<|>|==)\s*(.+)$")
# a custom metric named in the objective itself: "job_latency.p99 < 5s", "queue_depth.max < 1000"
_DOTTED = re.compile(r"^([A-Za-z_][\w-]*)\.([A-Za-z]\S*)\s*((?:<=|>=|<|>|==).+)$")
_DURATION = re.compile(r"^[\d.]+\s*(?:us|ms|s|m|h)$")
_PERCENTILE = re.compile(rf"^p{_NUMBER}$|^p\(\s*{_NUMBER}\s*\)$")
_K6 = re.compile(r"\(|^(avg|med|min|max)$")  # k6 spellings: unit-less values are ms
_METRICS = {
    "mean": "mean",
    "avg": "mean",
    "med": "percentile",
    "median": "percentile",
    "min": "min",
    "max": "max",
    "error_rate": "error_rate",
    "errors": "error_rate",
    "rps": "rps",
    "throughput": "rps",
    "checks": "check_rate",
    "check_rate": "check_rate",
}
_DIRECTION = {"error_rate": "<", "check_rate": ">", "rps": ">", "good_ratio": ">"}
_KNOWN = "p50, p(99), mean, avg, med, min, max, error_rate, rps, checks"


@dataclass(frozen=True)
class Objective:
    """One objective of an SLO, ready to evaluate.

    Attributes:
        name: the objective's name (given, or its text).
        text: the objective as written.
        metric: ``percentile``, ``mean``, ``min``, ``max`` (latency in ms),
            ``error_rate``, ``check_rate`` (fractions), ``rps`` (requests per second) or
            ``good_ratio`` (the SRE form: the fraction of requests that succeed within
            ``threshold`` ms must reach ``target``).
        op: ``<``, ``<=``, ``>`` or ``>=``: the value must compare so to ``threshold``.
        threshold: milliseconds for latency, a fraction for rates, req/s for ``rps``.
        percentile: 0-100, for ``percentile``.
        target: the required fraction of good requests, for ``good_ratio``.
        scope: ``total`` (all traffic), ``endpoint``, ``group``, ``scenario``, ``check``,
            ``tags`` (the endpoints whose tags match ``tags``, k6's sub-metrics) or
            ``metric`` (a custom metric; ``metric`` is then its statistic: ``count``,
            ``rate``, ``value``, ``min``, ``max``, ``mean`` or ``percentile``).
        scope_name: the endpoint, group, scenario, check or metric named by ``scope``.
        phase: for a latency metric, the request phase it is judged on (``wait`` for
            ``ttfb.p99``); empty for the whole request.
        abort: stop the run early when the objective is breached.
        abort_after: seconds of data before the abort rule may fire.
        burn_rate: for ratio objectives, the burn rate over a window of the run above
            which the objective fails even when the whole run's value passes.
        source: the file the objective came from (for messages).
        path: where in that file (``slo[2]``).
    """

    name: str
    text: str = field(metadata={"key": "objective"})
    metric: str
    op: str
    threshold: float
    percentile: float = 0.0
    target: float = 0.0
    scope: str = "total"
    scope_name: str = ""
    abort: bool = False
    abort_after: float = 0.0
    burn_rate: float = 2.0
    phase: str = field(default="", metadata={"omit_default": True})
    tags: tuple[tuple[str, str], ...] = field(default=(), metadata={"omit_default": True})
    """A sub-metric's tag filter (``p99{kind:search}``): scope ``tags``."""
    endpoints: tuple[str, ...] = field(default=(), metadata={"omit_default": True})
    """The endpoints the tag filter selects, resolved against the plan's requests."""
    # where it came from, for messages: not what the objective is, nor part of a result
    source: str = field(default="", compare=False, metadata={"skip": True})
    path: str = field(default="", compare=False, metadata={"skip": True})

    @property
    def is_ratio(self) -> bool:
        """True for objectives on a ratio of good to all events (they have a budget)."""
        return self.scope != "metric" and self.metric in ("error_rate", "check_rate", "good_ratio")

    @property
    def budget(self) -> float:
        """For ratio objectives, the fraction of events allowed to be bad."""
        if self.metric == "error_rate":
            return self.threshold
        if self.metric == "check_rate":
            return 1.0 - self.threshold
        if self.metric == "good_ratio":
            return 1.0 - self.target
        return math.nan

    @property
    def where(self) -> str:
        """``all traffic`` or ``endpoint "checkout"``, for messages."""
        return "all traffic" if self.scope == "total" else f'{self.scope} "{self.scope_name}"'

    @property
    def bound(self) -> float:
        """What the value is compared with: ``target`` for ``good_ratio``, else ``threshold``."""
        return self.target if self.metric == "good_ratio" else self.threshold

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the objective."""
        bound = self.bound
        if self.op == "<":
            return value < bound
        if self.op == "<=":
            return value <= bound
        if self.op == ">":
            return value > bound
        return value >= bound

    def format(self, value: float | None) -> str:
        """``value`` in the objective's unit: ``"12.345 ms"``, ``"0.52%"``, ``"950.0 req/s"``."""
        if value is None:
            return "-"
        if self.scope == "metric":  # a custom metric's own numbers
            return f"{value:.4g}"
        if self.is_ratio:
            return f"{value * 100:.3g}%"
        if self.metric == "rps":
            return f"{value:,.1f} req/s"
        return f"{value:.3f} ms"

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as stored and exported (``text`` as ``objective``)."""
        data: dict[str, Any] = to_data(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Objective:
        """Rebuild an objective from :meth:`to_dict` output (a plan's ``slo`` entry).

        Raises:
            ValueError: ``data`` is not an objective's JSON form (the message names the
                path inside it).
        """
        return from_data(cls, data, path="$.objective")


@dataclass(frozen=True)
class Verdict:
    """The judgement of one objective on one run.

    Attributes:
        objective: what was judged.
        outcome: ``pass``, ``fail`` or ``inconclusive``.
        value: the measured value (ms, fraction or req/s as the objective's threshold),
            None when nothing was measured.
        low, high: the 95% confidence interval of ``value`` where one is estimated.
        margin: how far the value is inside the threshold, relative to it (negative when
            outside).
        samples: the number of events the value rests on.
        reason: one sentence saying why.
        budget_spent: for ratio objectives, the fraction of the run's error budget used.
        burn_rates: for ratio objectives, the burn rate over the whole run and the worst
            long and short windows (``run``, ``long``, ``short``).
        window: ``(start_s, end_s)`` of the worst window, for ratio objectives.
    """

    objective: Objective
    outcome: Outcome
    value: float | None
    reason: str
    samples: int = 0
    low: float | None = None
    high: float | None = None
    margin: float | None = None
    budget_spent: float | None = None
    burn_rates: Mapping[str, float] = field(default_factory=dict)
    window: tuple[float, float] | None = None

    @property
    def passed(self) -> bool:
        """True when the outcome is ``pass``."""
        return self.outcome == PASS

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as stored and exported."""
        data: dict[str, Any] = to_data(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`to_dict` output.

        Raises:
            ValueError: ``data`` is not a verdict's JSON form.
        """
        return from_data(cls, data, path="$.verdict")


_TAGGED = re.compile(r"^([^{<>=\s]+)\s*\{([^}]*)\}(.*)$")


def _tag_filter(text: str, fail: Any) -> tuple[tuple[str, str], ...]:
    """``scenario:checkout,status:200`` (k6's ``p(99){tag:value}``) as sorted pairs."""
    pairs = []
    for item in text.split(","):
        key, sep, value = item.partition(":")
        key, value = key.strip(), value.strip().strip("\"'")
        if not sep or not key or not value:
            raise fail(f"expected tags like {{kind:search,method:GET}}, got {{{text}}}")
        pairs.append((key, value))
    return tuple(sorted(pairs))


def parse_objective(
    text: object,
    *,
    name: str = "",
    scope: str = "total",
    scope_name: str = "",
    abort: bool = False,
    abort_after: float = 0.0,
    burn_rate: float = 2.0,
    source: str = "<slo>",
    path: str = "",
) -> Objective:
    """Parse one objective's text.

    Raises:
        PlanError: the text is not an objective redline can evaluate; the message names
            ``source``, ``path`` and what was expected.
    """
    at = f"{path}.objective" if path else "objective"

    def fail(message: str) -> PlanError:
        return PlanError(message, source=source, path=at)

    if not isinstance(text, str) or not text.strip():
        raise fail(f'expected an objective such as "p99 < 250ms", got {text!r}')
    clean = " ".join(text.split())
    tags: tuple[tuple[str, str], ...] = ()
    if tagged := _TAGGED.match(clean):
        if scope != "total":
            raise fail(f"give a tag filter or a {scope}, not both: {clean!r}")
        tags = _tag_filter(tagged.group(2), fail)
        scope, scope_name = "tags", ",".join(f"{k}:{v}" for k, v in tags)
        clean_metric = tagged.group(1) + tagged.group(3)
    else:
        clean_metric = clean
    common: dict[str, Any] = {
        "name": name or clean,
        "text": clean,
        "scope": scope,
        "scope_name": scope_name,
        "abort": abort,
        "abort_after": abort_after,
        "burn_rate": burn_rate,
        "source": source,
        "path": path,
        "tags": tags,
    }
    clean = clean_metric
    dotted = _DOTTED.match(clean) if scope == "total" else None
    if (
        dotted
        and dotted.group(1).lower() not in _METRICS
        and dotted.group(1).lower() not in PHASE_NAMES
        and not dotted.group(1).lower().startswith("http_req_")
    ):  # a custom metric, not a request phase (``ttfb.p99 < 50ms``)
        common.update(scope="metric", scope_name=dotted.group(1))
        scope, clean = "metric", f"{dotted.group(2)} {dotted.group(3)}"
    if scope == "metric":
        return _metric_objective(clean, common, fail)
    sre = _SRE.match(clean)
    if sre:
        target = _fraction(sre.group(1) + "%", fail)
        if not 0 < target < 1:
            raise fail(f"the share of good requests must be between 0% and 100%, got {clean!r}")
        bound = _latency_ms(sre.group(2), k6=False, fail=fail)
        return Objective(metric="good_ratio", op=">=", threshold=bound, target=target, **common)
    match = _COMPARISON.match(clean)
    if not match:
        raise fail(
            f'expected "<metric> <op> <value>" (e.g. "p99 < 250ms", "error_rate < 1%") or '
            f'"99% of requests under 250ms", got {clean!r}'
        )
    word, op, value = match.group(1), match.group(2), match.group(3).strip()
    if op == "==":
        raise fail("an objective needs <, <=, > or >=, not ==")
    key = word.replace(" ", "").lower()
    phase = ""
    if re.match(r"^[a-z_]+\.", key):  # a phase first, not the decimals of p99.9
        named, key = key.split(".", 1)
        phase = PHASE_NAMES.get(named.removeprefix("http_req_"), "")
        if not phase:
            raise fail(
                f"unknown request phase {named!r} in {word!r}; expected one of "
                f"{', '.join(PHASE_NAMES)} (e.g. ttfb.p99 < 50ms)"
            )
        common["phase"] = phase
    percentile = 0.0
    percentile_match = _PERCENTILE.match(key)
    if percentile_match:
        metric = "percentile"
        percentile = float(percentile_match.group(1) or percentile_match.group(2))
        if not 0 < percentile <= 100:
            raise fail(f"a percentile must be above 0 and at most 100, got {word}")
    elif key in _METRICS:
        metric = _METRICS[key]
        percentile = 50.0 if key in ("med", "median") else 0.0
    else:
        raise fail(f"unknown metric {word!r}; expected one of {_KNOWN}")
    if phase and metric not in LATENCY:
        raise fail(f"a request phase takes a latency metric (p99, mean, max...), not {key!r}")
    direction = _DIRECTION.get(metric, "<")
    if op[0] != direction and metric != "rps":  # rps: a floor, or a ceiling (a guard)
        hint = "at most" if direction == "<" else "at least"
        raise fail(
            f"{word} can only be required to be {hint} a value ({direction} or {direction}=)"
        )
    if metric in LATENCY:
        threshold = _latency_ms(value, k6=bool(_K6.search(key)), fail=fail)
        if threshold <= 0:
            raise fail(f"a latency objective needs a bound above 0, got {value!r}")
    elif metric == "rps":
        threshold = _number(value.removesuffix("/s").strip(), fail, what="requests per second")
        if threshold <= 0 and op == ">=":
            raise fail("rps >= 0 always holds; give a rate above 0")
        if threshold <= 0 and op[0] == "<":
            raise fail(f"{word} {op} {value} can never hold; give a ceiling above 0")
    else:
        threshold = _fraction(value, fail)
        if metric == "error_rate" and threshold >= 1:
            raise fail(f"error_rate must be below 100% to mean anything, got {value!r}")
        if metric == "error_rate" and threshold == 0 and op == "<":
            raise fail("error_rate < 0 can never hold; use error_rate <= 0")
        if metric == "check_rate" and threshold == 1 and op == ">":
            raise fail("checks > 100% can never hold; use checks >= 100%")
    return Objective(metric=metric, op=op, threshold=threshold, percentile=percentile, **common)


_STATISTIC = {
    "count": "count", "rate": "rate", "value": "value", "min": "min", "max": "max",
    "avg": "mean", "mean": "mean", "med": "percentile", "median": "percentile",
}  # fmt: skip


def _metric_objective(text: str, common: dict[str, Any], fail: Any) -> Objective:
    """A custom metric's objective: ``count > 10``, ``rate >= 95%``, ``p(95) < 200``.

    Values are the metric's own numbers; a rate's may be a percentage, and a duration
    (``5s``, ``250ms``) is in milliseconds, the unit of a trend that times things
    (``job_latency``).
    """
    match = _COMPARISON.match(text)
    if not match or match.group(2) == "==":
        raise fail(
            'expected "<statistic> <op> <number>" for a custom metric, e.g. "count > 10", '
            f'"rate >= 95%", "p(95) < 200", got {text!r}'
        )
    word, op, value = match.group(1), match.group(2), match.group(3).strip()
    key = word.replace(" ", "").lower()
    percentile = 50.0 if key in ("med", "median") else 0.0
    if found := _PERCENTILE.match(key):
        statistic, percentile = "percentile", float(found.group(1) or found.group(2))
        if not 0 < percentile <= 100:
            raise fail(f"a percentile must be above 0 and at most 100, got {word}")
    elif key in _STATISTIC:
        statistic = _STATISTIC[key]
    else:
        raise fail(
            f"unknown statistic {word!r} of a custom metric; expected count, rate, value, "
            "min, max, avg, med or a percentile like p(95)"
        )
    if value.endswith("%"):
        threshold = _fraction(value, fail)
    elif _DURATION.match(value):  # a trend that times things keeps milliseconds
        threshold = _latency_ms(value, k6=False, fail=fail)
    else:
        threshold = _number(value, fail, what="number")
    return Objective(metric=statistic, op=op, threshold=threshold, percentile=percentile,
                     **common)  # fmt: skip


def _latency_ms(value: str, *, k6: bool, fail: Any) -> float:
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if not k6:
            raise fail(
                f'a latency needs a unit, e.g. "{text}ms" or "{text}s" (k6 style p(99)<{text} '
                "means milliseconds)"
            )
        return number
    try:
        # Rounded so that "122805us" is exactly 122.805 ms, not a float's neighbour.
        return round(parse_duration(text) * 1000, 9)
    except ValueError:
        raise fail(f'expected a duration such as "250ms" or "1.5s", got {text!r}') from None


def _fraction(value: str, fail: Any) -> float:
    text = value.strip()
    if text.endswith("%"):
        number = _number(text[:-1].strip(), fail, what="percentage") / 100
    else:
        number = _number(text, fail, what="fraction or percentage")
        if number > 1:
            raise fail(f'a fraction must be at most 1; for a percentage write "{text}%"')
    if not 0 <= number <= 1:
        raise fail(f"expected a share between 0% and 100%, got {text!r}")
    return number


def _number(text: str, fail: Any, *, what: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise fail(f"expected a {what}, got {text!r}") from None
    if not math.isfinite(number) or number < 0:
        raise fail(f"expected a {what} of at least 0, got {text!r}")
    return number
