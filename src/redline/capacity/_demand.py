"""Demand traces for a replay: a CSV of ``time_s,rate``, an access log, or Prometheus.

A trace is a rate (requests per second) sampled at a regular step (its resolution, the
most common step between its rows). A longer step between two rows is a *gap*: the
demand there is unknown, scores leave it out, and the autoscaler sees no metric (it holds
its replica count, as the controller does). Bad rows are refused with the file and the
line: non-numeric or negative rates, times that go backwards or repeat.
"""

from __future__ import annotations

import csv
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from redline.core import PlanError

__all__ = ["DemandTrace", "demand_from_prometheus", "load_access_log", "load_demand"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class DemandTrace:
    """A demand over time.

    Attributes:
        times_s: sample times, seconds from the trace's start (increasing).
        rates: requests per second at each time, held until the next sample (NaN in a
            gap: unknown).
        resolution_s: the regular step between samples.
        source: where it came from (for messages and the report).
        gaps: ``(start_s, end_s)`` of each stretch without data.
    """

    times_s: FloatArray
    rates: FloatArray
    resolution_s: float
    source: str = ""
    gaps: tuple[tuple[float, float], ...] = field(default=())

    @property
    def duration_s(self) -> float:
        """From the first sample to the end of the last one's step."""
        return float(self.times_s[-1] - self.times_s[0] + self.resolution_s)

    @property
    def peak(self) -> float:
        """The highest known rate."""
        known = self.rates[~np.isnan(self.rates)]
        return float(known.max()) if known.size else 0.0

    def at(self, times_s: FloatArray) -> FloatArray:
        """The rate at each of ``times_s`` (the sample at or before it; NaN in gaps)."""
        index = np.searchsorted(self.times_s, times_s, side="right") - 1
        out = np.full(len(times_s), np.nan)
        inside = (index >= 0) & (times_s < self.times_s[-1] + self.resolution_s)
        out[inside] = self.rates[index[inside]]
        return out

    @classmethod
    def of(cls, times_s: list[float], rates: list[float], *, source: str) -> DemandTrace:
        """A trace from sorted samples: resolution and gaps found, gaps filled with NaN."""
        if len(times_s) < 2:
            raise PlanError("a demand trace needs at least two samples", source=source)
        t = np.asarray(times_s, dtype=np.float64)
        r = np.asarray(rates, dtype=np.float64)
        steps = np.diff(t)
        resolution = Counter(np.round(steps, 6).tolist()).most_common(1)[0][0]
        gaps = []
        filled_t, filled_r = [t[0]], [r[0]]
        for i, step in enumerate(steps):
            if step > 1.5 * resolution:
                gaps.append((float(t[i] + resolution), float(t[i + 1])))
                filled_t.append(float(t[i] + resolution))
                filled_r.append(math.nan)
            filled_t.append(float(t[i + 1]))
            filled_r.append(float(r[i + 1]))
        start = filled_t[0]
        return cls(
            times_s=np.asarray(filled_t) - start,
            rates=np.asarray(filled_r),
            resolution_s=float(resolution),
            source=source,
            gaps=tuple((a - start, b - start) for a, b in gaps),
        )


def load_demand(path: str | Path) -> DemandTrace:
    """A trace from a CSV file with a header row naming ``time_s`` and ``rate``.

    Raises:
        PlanError: the file is missing, has no such columns, or a bad row (its line).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError(f"cannot read the demand trace: {exc.strerror}", source=source) from None
    rows = csv.reader(text.splitlines())
    header = [h.strip() for h in next(rows, [])]
    if "time_s" not in header or "rate" not in header:
        raise PlanError(
            f"expected a header with the columns time_s and rate, got {header}",
            source=source,
            path="line 1",
        )
    at_time, at_rate = header.index("time_s"), header.index("rate")
    times: list[float] = []
    rates: list[float] = []
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        where = f"line {line}"
        t = _number(row, at_time, "time_s: expected a number of seconds", source, where)
        rate = _number(row, at_rate, "rate: expected requests per second", source, where)
        if not math.isfinite(t) or not math.isfinite(rate):
            raise PlanError("expected finite numbers", source=source, path=where)
        if rate < 0:
            raise PlanError(
                f"rate: a rate cannot be negative, got {rate:g}", source=source, path=where
            )
        if times and t <= times[-1]:
            raise PlanError(
                f"time_s: {t:g} does not follow {times[-1]:g}: the rows must be in time order, "
                "each time once",
                source=source,
                path=where,
            )
        times.append(t)
        rates.append(rate)
    return DemandTrace.of(times, rates, source=source)


def _number(row: list[str], index: int, expected: str, source: str, where: str) -> float:
    """The number in ``row[index]``, or an error naming the line and what was expected."""
    try:
        return float(row[index])
    except (ValueError, IndexError):
        cell = row[index] if index < len(row) else ""
        raise PlanError(f"{expected}, got {cell!r}", source=source, path=where) from None


_CLF_TIME = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]")


def load_access_log(path: str | Path, *, step_s: float = 10.0) -> DemandTrace:
    """A trace from an access log: requests counted per ``step_s``, as a rate.

    The common or combined format, as nginx and Apache write it.

    Raises:
        PlanError: the file is missing or has no line with a timestamp.
    """
    source = str(path)
    stamps: list[float] = []
    try:
        with Path(path).open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                found = _CLF_TIME.search(line)
                if found:
                    moment = datetime.strptime(found.group(1), "%d/%b/%Y:%H:%M:%S %z")
                    stamps.append(moment.timestamp())
    except OSError as exc:
        raise PlanError(f"cannot read the access log: {exc.strerror}", source=source) from None
    if not stamps:
        raise PlanError(
            "no line with a [day/month/year:hh:mm:ss zone] timestamp (common log format)",
            source=source,
        )
    start = min(stamps)
    buckets = np.floor((np.asarray(stamps) - start) / step_s).astype(np.int64)
    counts = np.bincount(buckets)
    times = (np.arange(len(counts)) * step_s).tolist()
    rates = (counts / step_s).tolist()
    if len(times) < 2:
        times, rates = [0.0, step_s], [rates[0], rates[0]]
    return DemandTrace.of(times, rates, source=source)


def demand_from_prometheus(
    url: str, query: str, *, start: float, end: float, step_s: float = 10.0, timeout: float = 10.0
) -> DemandTrace:
    """A trace from a Prometheus range query (``/api/v1/query_range``): its first series.

    Raises:
        PlanError: Prometheus cannot be reached, refuses the query, or returns no series.
    """
    source = f"{url.rstrip('/')} ({query})"
    params = urllib.parse.urlencode(
        {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}"}
    )
    address = f"{url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(address, timeout=timeout) as response:  # the user's URL
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise PlanError(
            f"Prometheus refused the query ({exc.code}): {detail}", source=source
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise PlanError(f"cannot reach Prometheus: {reason}", source=source) from None
    except json.JSONDecodeError:
        raise PlanError("Prometheus answered something that is not JSON", source=source) from None
    result = body.get("data", {}).get("result", [])
    if body.get("status") != "success" or not result:
        raise PlanError(
            f"the query returned no series (status {body.get('status')!r})", source=source
        )
    values = result[0]["values"]
    times = [float(t) for t, _ in values]
    rates = [
        max(0.0, float(v)) if v not in ("NaN", "+Inf", "-Inf") else math.nan for _, v in values
    ]
    return DemandTrace.of(times, rates, source=source)
