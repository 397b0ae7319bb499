"""Cohorts from a real Prometheus: range queries per cohort label, step by step.

Each step of ``step_s`` seconds becomes one interval of the cohort, as a run's interval
is: its requests and errors from a request counter, its latency from a Prometheus
histogram's buckets (``increase`` over the step, per ``le``). A bucket's count is spread
evenly over the bucket, the assumption ``histogram_quantile`` makes too; the ``+Inf``
bucket is placed at twice the highest finite bound (a value beyond it is all that is
known). The defaults read what :class:`redline.observe.asgi.RuntimeMetrics` exports
(``http_requests_total``, ``http_request_duration_seconds``); a cohort is a label
matcher (``version="canary"``, a feature flag's variant, a header's value).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from redline.analysis import Side
from redline.core import EndpointInterval, Histogram, RedlineError

from ._judge import cohort_of
from ._promql import scoped

__all__ = ["PrometheusCohorts", "PrometheusError"]

_WINDOW = "{{.window}}"
# Points a bucket's count is spread over (more would only cost time).
_SPREAD = 16


class PrometheusError(RedlineError, RuntimeError):
    """Prometheus could not be reached, refused a query, or answered nonsense."""


@dataclass(frozen=True)
class PrometheusCohorts:
    """Where the cohorts' metrics are, and how a cohort is told apart.

    Attributes:
        url: the Prometheus server (``http://127.0.0.1:9090``).
        label: the label that names a cohort (``version``; a flag's ``variant``).
        baseline, canary: its value for each cohort.
        selector: more matchers for both (``job="shop",route="/checkout"``).
        requests: the request counter (``http_requests_total``).
        errors: the matcher that makes a request an error (``code=~"5.."``).
        histogram: the latency histogram's name, in seconds, without ``_bucket``.
        step_s: the length of one interval.
    """

    url: str
    label: str = "version"
    baseline: str = "stable"
    canary: str = "canary"
    selector: str = ""
    requests: str = "http_requests_total"
    errors: str = 'code=~"5.."'
    histogram: str = "http_request_duration_seconds"
    step_s: float = 60.0
    timeout_s: float = 10.0
    sli: tuple[str, str, str] | None = None
    """An OpenSLO indicator in place of ``requests``/``errors``: ``(kind, counted, total)``
    with kind ``good`` or ``bad`` and PromQL with Sloth's ``{{.window}}`` (rates, turned
    into counts per step) or bare counter selectors; each scoped to the cohort."""

    def matcher(self, cohort: str) -> str:
        """The label matchers of one cohort (``cohort`` is ``baseline`` or ``canary``)."""
        value = self.baseline if cohort == "baseline" else self.canary
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        parts = [p for p in (self.selector.strip(), f'{self.label}="{escaped}"') if p]
        return ",".join(parts)

    def queries(self, cohort: str) -> dict[str, str]:
        """The range queries of one cohort (counts per step)."""
        m = self.matcher(cohort)
        window = f"[{self.step_s:g}s]"
        out = {
            "requests": f"sum(increase({self.requests}{{{m}}}{window}))",
            "errors": f"sum(increase({self.requests}{{{m},{self.errors}}}{window}))",
            "buckets": f"sum by (le) (increase({self.histogram}_bucket{{{m}}}{window}))",
        }
        if self.sli is not None:
            kind, counted, total = self.sli
            value = self.baseline if cohort == "baseline" else self.canary
            counts = [self._counts(scoped(q, self.label, value)) for q in (counted, total)]
            out["requests"] = counts[1]
            out["errors"] = counts[0] if kind == "bad" else f"({counts[1]}) - ({counts[0]})"
        return out

    def _counts(self, query: str) -> str:
        """An SLI query as events per step: a rate times the step, or a counter's increase."""
        if _WINDOW in query:
            return f"({query.replace(_WINDOW, f'{self.step_s:g}s')}) * {self.step_s:g}"
        return f"sum(increase({query}[{self.step_s:g}s]))"

    def cohorts(self, start: float, end: float) -> tuple[Side, Side]:
        """The baseline's and the canary's intervals over ``[start, end]`` (Unix seconds).

        Raises:
            PrometheusError: Prometheus cannot be reached or refuses a query.
        """
        if end - start < self.step_s:
            raise ValueError(
                f"the window ({end - start:g}s) is shorter than one step ({self.step_s:g}s)"
            )
        # The first step ends one step after start: each step's increase covers its own
        # window, and consecutive steps do not overlap.
        first = start + self.step_s
        steps = np.arange(first, end + 1e-9, self.step_s)
        sides = []
        for cohort in ("baseline", "canary"):
            results = {
                name: self._range(query, first, float(steps[-1]))
                for name, query in self.queries(cohort).items()
            }
            sides.append(_cohort(results, steps, self.step_s))
        return sides[0], sides[1]

    def _range(self, query: str, start: float, end: float) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode(
            {
                "query": query,
                "start": f"{start:.3f}",
                "end": f"{end:.3f}",
                "step": f"{self.step_s:g}",
            }
        )
        address = f"{self.url.rstrip('/')}/api/v1/query_range?{params}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout_s) as answer:  # user's URL
                body = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise PrometheusError(
                f"{self.url}: Prometheus refused {query!r} ({exc.code}): {detail}"
            ) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"{self.url}: cannot reach Prometheus: {reason}") from None
        except json.JSONDecodeError:
            raise PrometheusError(f"{self.url}: the answer to {query!r} is not JSON") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{self.url}: {query!r} failed: {body.get('error', body)}")
        result = body.get("data", {}).get("result", [])
        return list(result) if isinstance(result, list) else []


def _series(result: list[dict[str, Any]], steps: np.ndarray) -> np.ndarray:
    """The first series' values at ``steps`` (0 where a step has no sample)."""
    out = np.zeros(steps.size)
    if not result:
        return out
    for stamp, value in result[0].get("values", []):
        index = int(np.argmin(np.abs(steps - float(stamp))))
        number = float(value)
        out[index] = number if math.isfinite(number) and number > 0 else 0.0
    return out


def _cohort(results: Mapping[str, list[dict[str, Any]]], steps: np.ndarray, step_s: float) -> Side:
    requests = np.rint(_series(results["requests"], steps)).astype(np.int64)
    errors = np.minimum(np.rint(_series(results["errors"], steps)).astype(np.int64), requests)
    bounds: list[float] = []
    columns: list[np.ndarray] = []
    for series in results["buckets"]:
        le = series.get("metric", {}).get("le")
        if le is None:
            continue
        bounds.append(math.inf if le == "+Inf" else float(le))
        columns.append(_series([series], steps))
    order = np.argsort(bounds)
    edges = np.array(bounds)[order] if bounds else np.zeros(0)
    cumulative = np.array(columns)[order] if columns else np.zeros((0, steps.size))
    intervals = []
    for index in range(steps.size):
        latency = _histogram(edges, cumulative[:, index]) if edges.size else Histogram()
        intervals.append(
            EndpointInterval(
                requests=int(requests[index]),
                errors=int(errors[index]),
                latency=latency,
            )
        )
    # Steps where the cohort got nothing at all are kept: no traffic is a finding.
    return cohort_of(intervals, [step_s] * steps.size)


def _histogram(edges: np.ndarray, cumulative: np.ndarray) -> Histogram:
    """A histogram (microseconds) from one step's cumulative bucket counts (seconds)."""
    counts = np.diff(np.concatenate(([0.0], np.maximum.accumulate(cumulative))))
    counts = np.rint(np.maximum(counts, 0)).astype(np.int64)
    finite = edges[np.isfinite(edges)]
    top = float(finite[-1]) * 2 if finite.size else 1.0
    lowers = np.concatenate(([0.0], edges[:-1]))
    out = Histogram()
    for low, high, count in zip(lowers, edges, counts, strict=True):
        if count <= 0:
            continue
        high = top if not math.isfinite(high) else float(high)
        low = min(float(low), high)
        points = min(int(count), _SPREAD)
        # Midpoints of ``points`` equal slices of (low, high]; the count shared out evenly.
        values = low + (high - low) * (np.arange(points) + 0.5) / points
        shares = np.full(points, count // points, dtype=np.int64)
        shares[: count % points] += 1
        for value, share in zip(values, shares, strict=True):
            out.record(max(1, round(value * 1e6)), int(share))
    return out.compact()
