"""The per-worker recorder: samples into preallocated buffers, bucketed in bulk.

Per request the hot path stores a few integers into typed arrays; when an interval is
taken (or a buffer fills) the buffers are bucketed into histograms with numpy. No
Python object is kept per request. Every sample carries its completion time, so an
interval holds exactly what completed before its boundary even when the timer that
closes it fires late.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Hashable, Sequence
from typing import Protocol

import numpy as np

from redline.core import PHASES, EndpointInterval, Histogram
from redline.http import REUSED

__all__ = ["EXPECTED", "UNEXPECTED", "Recorder", "Timed"]


class Timed(Protocol):
    """Where a response's phases come from: a client connection's stamps (monotonic ns).

    ``setup`` holds DNS, connect and TLS time of a new connection; the request was sent
    at ``sent_ns``, its write returned at ``written_ns`` and the first byte of the
    response arrived at ``first_ns`` (at most 0: not timed; the recorder sets -1 once it
    has read a timed one).
    """

    setup: tuple[int, int, int]
    sent_ns: int
    written_ns: int
    first_ns: int

    def first_exchange_done(self) -> None:
        """The connection's first response is recorded (its set-up with it)."""


# Status codes below 100 never come from HTTP; they stand for transport error classes.
_MAX_ERROR_CLASSES = 99
EXPECTED = 0x4000
"""Or-ed into a status: the caller expected it, so it is no error whatever its value."""
UNEXPECTED = 0x8000
"""Or-ed into a status: the caller did not expect it; an error of class unexpected_status."""
_STATUS_MASK = 0x3FFF


class Recorder:
    """Accumulates measurements for every endpoint of one worker, interval by interval.

    Endpoints are identified by keys (request names, or anything hashable) and indexed by
    position; :meth:`index` registers new ones as they appear.
    """

    __slots__ = (
        "_actual",
        "_bytes",
        "_capacity",
        "_class_codes",
        "_class_names",
        "_done",
        "_endpoint",
        "_first",
        "_keys",
        "_latency",
        "_pending",
        "_positions",
        "_setups",
        "_size",
        "_status",
        "_written",
        "bytes_out",
        "lag",
        "split_status",
    )

    def __init__(self, endpoints: Sequence[Hashable], *, capacity: int = 1 << 16) -> None:
        """Create a recorder for ``endpoints`` (indexed by position)."""
        self._keys = list(endpoints)
        self._positions = {key: i for i, key in enumerate(self._keys)}
        self._capacity = capacity
        self._endpoint = array("H", bytes(2 * capacity))
        self._status = array("H", bytes(2 * capacity))
        self._latency = array("q", bytes(8 * capacity))
        self._actual = array("q", bytes(8 * capacity))
        self._done = array("q", bytes(8 * capacity))
        self._bytes = array("q", bytes(8 * capacity))
        # per response: when its write returned and its first byte came (0: not timed,
        # the buffer is zeroed as it is consumed); send, wait and receive follow from
        # these, the actual send and the completion
        self._written = array("q", bytes(8 * capacity))
        self._first = array("q", bytes(8 * capacity))
        # the few responses that opened their connection: (done, endpoint, dns, connect, tls)
        self._setups: list[tuple[int, int, int, int, int]] = []
        self._size = 0
        self.bytes_out = [0] * len(self._keys)
        """Bytes written per endpoint this interval (the engine adds to it directly)."""
        self._class_codes: dict[str, int] = {}
        self._class_names: list[str] = []
        self._pending: _Accumulator | None = None
        self.split_status = False
        self.lag = Histogram()
        """The lateness of the interval last taken (see :meth:`take`), us."""
        """Keep latency per status code too (an objective like ``p99{status:200}``)."""

    @property
    def keys(self) -> list[Hashable]:
        """Every endpoint key, by index."""
        return self._keys

    def index(self, key: Hashable) -> int:
        """The index of endpoint ``key``, registering it on first use."""
        position = self._positions.get(key)
        if position is None:
            position = len(self._keys)
            self._keys.append(key)
            self._positions[key] = position
            self.bytes_out.append(0)
        return position

    def record(
        self,
        endpoint: int,
        latency_ns: int,
        actual_ns: int,
        status: int,
        nbytes_in: int,
        done_ns: int,
        timed: Timed | None = None,
    ) -> None:
        """Record one response (hot path).

        Args:
            endpoint: index of the endpoint.
            latency_ns: from the intended start to the end of the response.
            actual_ns: from the actual send to the end of the response.
            status: the HTTP status code, optionally or-ed with :data:`EXPECTED` or
                :data:`UNEXPECTED`.
            nbytes_in: bytes received for the response.
            done_ns: when the response completed (monotonic ns).
            timed: the connection that carried it, for its phases (none for what is not
                an HTTP exchange, such as an iteration).
        """
        i = self._size
        if timed is not None:
            first = timed.first_ns
            if first > 0:  # a timed exchange (0: no byte stamped, -1: an untimed one)
                self._written[i] = timed.written_ns
                self._first[i] = first
                timed.first_ns = -1  # read: the connection's untimed requests stamp nothing
                setup = timed.setup
                if setup is not REUSED:  # the connection's first response: rare
                    self._setups.append((done_ns, endpoint, *setup))
                    timed.first_exchange_done()
        self._endpoint[i] = endpoint
        self._status[i] = status
        self._latency[i] = latency_ns
        self._actual[i] = actual_ns
        self._bytes[i] = nbytes_in
        self._done[i] = done_ns
        self._size = i + 1
        if i + 1 == self._capacity:
            self._spill()

    def record_error(self, endpoint: int, error_class: str, done_ns: int) -> None:
        """Record a request that failed below HTTP (it has no latency)."""
        code = self._class_codes.get(error_class)
        if code is None:
            if len(self._class_names) >= _MAX_ERROR_CLASSES:
                error_class, code = "other", self._class_codes.get("other", 0)
            if not code:
                self._class_names.append(error_class)
                code = len(self._class_names)
                self._class_codes[error_class] = code
        self.record(endpoint, 0, 0, code, 0, done_ns)

    def record_sent(self, endpoint: int, nbytes_out: int) -> None:
        """Count bytes written for a request."""
        self.bytes_out[endpoint] += nbytes_out

    def _spill(self) -> None:
        """The buffer is full: bucket all of it into the current interval now.

        Only at more than ``capacity`` responses per second can a spill happen in the
        millisecond between a boundary and the late timer that closes the interval, and
        then a few samples land one interval early; their latencies are unaffected.
        """
        self.fold()

    def _accumulator(self) -> _Accumulator:
        if self._pending is None:
            self._pending = _Accumulator()
        return self._pending

    def fold(self, boundary_ns: int | None = None) -> None:
        """Bucket buffered samples that completed before ``boundary_ns`` (all when None).

        Folding a little at a time (the worker does it every 100 ms) keeps each pause of
        the event loop short; samples after the boundary stay buffered.
        """
        n = self._size
        keep = 0
        if boundary_ns is not None and n:
            done = np.frombuffer(self._done, dtype=np.int64, count=n)
            before = int(np.searchsorted(done, boundary_ns, side="left"))
            if not np.all(done[:before] < boundary_ns) or not np.all(done[before:] >= boundary_ns):
                mask = done < boundary_ns  # completions out of order: rare
                before = int(np.count_nonzero(mask))
                self._partition(mask)
            keep = n - before
            n = before
        if n:
            setups = self._setups
            if setups:
                if boundary_ns is None:
                    self._setups, taken = [], setups
                else:
                    taken = [s for s in setups if s[0] < boundary_ns]
                    self._setups = [s for s in setups if s[0] >= boundary_ns]
            else:
                taken = setups
            self._accumulator().add(self, n, ["", *self._class_names], taken)
            if keep:
                # Same-length slice copies: the buffers never resize (numpy views forbid it).
                for buffer in self._buffers():
                    buffer[0:keep] = buffer[n : n + keep]
            # untimed rows do not write this column: it must read 0 where they land
            np.frombuffer(self._first, dtype=np.int64, count=n + keep)[keep:] = 0
            self._size = keep

    def _buffers(self) -> tuple[array[int], ...]:
        return (
            self._endpoint,
            self._status,
            self._latency,
            self._actual,
            self._bytes,
            self._done,
            self._written,
            self._first,
        )

    def take(self, boundary_ns: int | None = None) -> dict[Hashable, EndpointInterval]:
        """Return what completed before ``boundary_ns`` (everything when None), per endpoint.

        Samples after the boundary stay buffered for the next interval.
        """
        self.fold(boundary_ns)
        accumulator = self._accumulator()
        self._pending = None
        self.lag = accumulator.lag.compact()
        return accumulator.result(self._keys, self.bytes_out)

    def _partition(self, mask: np.ndarray) -> None:
        order = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
        n = self._size
        for buffer in self._buffers():
            view = np.frombuffer(
                buffer, dtype=np.uint16 if buffer.typecode == "H" else np.int64, count=n
            )
            view[:] = view[order]


class _Accumulator:
    """One interval's histograms and counters, filled in bulk from the buffers."""

    def __init__(self) -> None:
        self.hist: dict[int, Histogram] = {}
        self.actual: dict[int, Histogram] = {}
        self.status: dict[int, Counter[int]] = {}
        self.classes: dict[int, Counter[str]] = {}
        self.errors: Counter[int] = Counter()
        self.bytes_in: Counter[int] = Counter()
        self.phases: dict[int, dict[str, Histogram]] = {}
        self.by_status: dict[int, dict[int, Histogram]] = {}
        self.lag = Histogram()
        """Lateness of every answered request (actual send minus intended start), us."""

    def add(
        self,
        recorder: Recorder,
        n: int,
        class_names: list[str],
        setups: list[tuple[int, int, int, int, int]],
    ) -> None:
        if n == 0:
            return
        endpoints = np.frombuffer(recorder._endpoint, dtype=np.uint16, count=n)
        statuses = np.frombuffer(recorder._status, dtype=np.uint16, count=n)
        latency_ns = np.frombuffer(recorder._latency, dtype=np.int64, count=n)
        latency_us = latency_ns // 1000
        actual_ns = np.frombuffer(recorder._actual, dtype=np.int64, count=n)
        actual_us = actual_ns // 1000
        codes_of = statuses & _STATUS_MASK
        answered = codes_of >= 100
        self.lag.record_values(np.maximum(latency_ns[answered] - actual_ns[answered], 0) // 1000)
        nbytes = np.frombuffer(recorder._bytes, dtype=np.int64, count=n)
        first = np.frombuffer(recorder._first, dtype=np.int64, count=n)
        timed = first > 0
        if timed.any():
            written = np.frombuffer(recorder._written, dtype=np.int64, count=n)
            done = np.frombuffer(recorder._done, dtype=np.int64, count=n)
            spans = (  # send, wait, receive in ns: the write, to the first byte, the rest
                written - (done - actual_ns),
                first - written,
                done - first,
            )
        for index in np.unique(endpoints).tolist():
            mine = endpoints == index
            status = self.status.setdefault(index, Counter())
            classes = self.classes.setdefault(index, Counter())
            codes, counts = np.unique(statuses[mine], return_counts=True)
            answers: list[int] = []  # the status codes answered in this batch
            for raw, count in zip(codes.tolist(), counts.tolist(), strict=True):
                code = raw & _STATUS_MASK
                if code < 100:
                    classes[class_names[code]] += count
                    self.errors[index] += count
                    continue
                status[code] += count
                answers.append(code)
                if raw & UNEXPECTED:
                    classes["unexpected_status"] += count
                    self.errors[index] += count
                elif code >= 400 and not raw & EXPECTED:
                    self.errors[index] += count
            responses = mine & answered
            self.hist.setdefault(index, Histogram()).record_values(latency_us[responses])
            if recorder.split_status:
                split = self.by_status.setdefault(index, {})
                for code in dict.fromkeys(answers):  # expected or not, one histogram a code
                    picked = latency_us[mine & (codes_of == code)]
                    split.setdefault(code, Histogram()).record_values(picked)
            self.actual.setdefault(index, Histogram()).record_values(actual_us[responses])
            self.bytes_in[index] += int(nbytes[mine].sum())
            with_phases = responses & timed
            count = int(np.count_nonzero(with_phases))
            if count:
                self._phases(index, count, [span[with_phases] for span in spans], setups)

    def _phases(
        self,
        index: int,
        count: int,
        spans: list[np.ndarray],
        setups: list[tuple[int, int, int, int, int]],
    ) -> None:
        mine = self.phases.get(index)
        if mine is None:
            mine = self.phases[index] = {name: Histogram() for name in PHASES}
        opened = [s[2:] for s in setups if s[1] == index]
        for position, name in enumerate(("dns", "connect", "tls")):
            paid = [s[position] // 1000 for s in opened]
            histogram = mine[name]
            histogram.record(0, count - len(paid))  # reused connections: none of it
            if paid:
                histogram.record_values(np.asarray(paid, dtype=np.int64))
        for name, span in zip(("send", "wait", "receive"), spans, strict=True):
            microseconds = span // 1000
            if microseconds.size and microseconds.min() < 0:
                microseconds = np.maximum(microseconds, 0)  # never: the stamps are ordered
            mine[name].record_values(microseconds)

    def result(
        self, keys: list[Hashable], bytes_out: list[int]
    ) -> dict[Hashable, EndpointInterval]:
        out: dict[Hashable, EndpointInterval] = {}
        for index, key in enumerate(keys):
            status = self.status.get(index, Counter())
            classes = self.classes.get(index, Counter())
            transport_errors = sum(n for name, n in classes.items() if name != "unexpected_status")
            responses = sum(status.values())
            if not responses and not transport_errors and not bytes_out[index]:
                continue
            out[key] = EndpointInterval(
                requests=responses + transport_errors,
                errors=self.errors[index],
                status=dict(sorted(status.items())),
                error_classes=dict(sorted(classes.items())),
                bytes_in=self.bytes_in[index],
                bytes_out=bytes_out[index],
                latency=self.hist.get(index, Histogram()).compact(),
                latency_actual=self.actual.get(index, Histogram()).compact(),
                phases={
                    name: histogram.compact()
                    for name, histogram in self.phases.get(index, {}).items()
                },
                latency_by_status={
                    code: histogram.compact()
                    for code, histogram in sorted(self.by_status.get(index, {}).items())
                },
            )
            bytes_out[index] = 0
        return out
