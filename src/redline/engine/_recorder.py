"""The per-worker recorder: latencies into preallocated buffers, bucketed in bulk.

Per request the hot path stores four integers into typed arrays; once per interval (or
when a buffer fills) the buffers are bucketed into histograms with numpy. No Python
object is kept per request.
"""

from __future__ import annotations

from array import array
from collections import Counter

import numpy as np

from redline.core import EndpointInterval, Histogram

__all__ = ["Recorder"]


class Recorder:
    """Accumulates one interval of measurements for every endpoint of one worker."""

    __slots__ = (
        "_actual",
        "_bytes_in",
        "_bytes_out",
        "_capacity",
        "_endpoint",
        "_error_classes",
        "_hist",
        "_hist_actual",
        "_latency",
        "_names",
        "_size",
        "_status",
        "_status_counts",
        "_transport_errors",
    )

    def __init__(self, endpoints: list[str], *, capacity: int = 1 << 16) -> None:
        """Create a recorder for ``endpoints`` (indexed by position)."""
        self._names = list(endpoints)
        self._capacity = capacity
        self._endpoint = array("H", bytes(2 * capacity))
        self._status = array("H", bytes(2 * capacity))
        self._latency = array("q", bytes(8 * capacity))
        self._actual = array("q", bytes(8 * capacity))
        self._size = 0
        n = len(endpoints)
        self._bytes_in = [0] * n
        self._bytes_out = [0] * n
        self._error_classes: list[Counter[str]] = [Counter() for _ in range(n)]
        self._transport_errors = [0] * n
        self._status_counts: list[Counter[int]] = [Counter() for _ in range(n)]
        self._hist = [Histogram() for _ in range(n)]
        self._hist_actual = [Histogram() for _ in range(n)]

    def record(
        self, endpoint: int, latency_ns: int, actual_ns: int, status: int, nbytes_in: int
    ) -> None:
        """Record one response (hot path).

        Args:
            endpoint: index of the endpoint.
            latency_ns: from the intended start to the end of the response.
            actual_ns: from the actual send to the end of the response.
            status: the HTTP status code.
            nbytes_in: bytes received for the response.
        """
        i = self._size
        self._endpoint[i] = endpoint
        self._status[i] = status
        self._latency[i] = latency_ns
        self._actual[i] = actual_ns
        self._bytes_in[endpoint] += nbytes_in
        self._size = i + 1
        if i + 1 == self._capacity:
            self.flush()

    def record_sent(self, endpoint: int, nbytes_out: int) -> None:
        """Count bytes written for a request."""
        self._bytes_out[endpoint] += nbytes_out

    def record_error(self, endpoint: int, error_class: str) -> None:
        """Record a request that failed below HTTP (no latency is recorded for it)."""
        self._transport_errors[endpoint] += 1
        self._error_classes[endpoint][error_class] += 1

    def flush(self) -> None:
        """Bucket the buffered samples into the interval's histograms."""
        n = self._size
        if n == 0:
            return
        endpoints = np.frombuffer(self._endpoint, dtype=np.uint16, count=n)
        statuses = np.frombuffer(self._status, dtype=np.uint16, count=n)
        latency_us = np.frombuffer(self._latency, dtype=np.int64, count=n) // 1000
        actual_us = np.frombuffer(self._actual, dtype=np.int64, count=n) // 1000
        for index in np.unique(endpoints).tolist():
            mask = endpoints == index
            self._hist[index].record_values(latency_us[mask])
            self._hist_actual[index].record_values(actual_us[mask])
            codes, counts = np.unique(statuses[mask], return_counts=True)
            self._status_counts[index].update(
                dict(zip(codes.tolist(), counts.tolist(), strict=True))
            )
        self._size = 0

    def take(self) -> dict[str, EndpointInterval]:
        """Return the interval's data per endpoint (only those with activity) and reset."""
        self.flush()
        out: dict[str, EndpointInterval] = {}
        for index, name in enumerate(self._names):
            status = self._status_counts[index]
            transport_errors = self._transport_errors[index]
            responses = sum(status.values())
            if not responses and not transport_errors and not self._bytes_out[index]:
                continue
            http_errors = sum(n for code, n in status.items() if code >= 400)
            out[name] = EndpointInterval(
                requests=responses + transport_errors,
                errors=http_errors + transport_errors,
                status=dict(sorted(status.items())),
                error_classes=dict(sorted(self._error_classes[index].items())),
                bytes_in=self._bytes_in[index],
                bytes_out=self._bytes_out[index],
                latency=self._hist[index].copy(),
                latency_actual=self._hist_actual[index].copy(),
            )
            self._hist[index].reset()
            self._hist_actual[index].reset()
            status.clear()
            self._error_classes[index].clear()
            self._transport_errors[index] = 0
            self._bytes_in[index] = 0
            self._bytes_out[index] = 0
        return out
