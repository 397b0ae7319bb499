"""Outputs teams already collect: each interval streamed to a file or a metric store.

CSV, JSON lines, InfluxDB line protocol, Prometheus remote write or OTLP metrics:

    redline run plan.yaml --output csv=run.csv --output jsonl=run.jsonl
    redline run plan.yaml --output influxdb=http://127.0.0.1:8086/write?db=redline
    redline run plan.yaml --output prometheus=http://127.0.0.1:9090/api/v1/write
    redline run plan.yaml --output otlp=http://127.0.0.1:4318/v1/metrics

Each output is an observer that never holds up the run: :meth:`StreamOutput.on_interval`
puts the interval on a bounded queue and returns; a thread of its own formats and
writes. When the queue is full (a slow disk, an InfluxDB that does not answer) the
interval is dropped for that output and counted (:attr:`StreamOutput.dropped`); failed
writes are counted too (:attr:`StreamOutput.failed`). The run's own result is never
affected: these are copies for other tools.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import queue
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from redline.core import Closing, IntervalSnapshot, RunResult

from ._push import otlp_writer, remote_write_writer

__all__ = ["OUTPUT_KINDS", "StreamOutput", "output_for"]

_QUEUE = 1024
"""Intervals an output may fall behind by (17 minutes of a one-second run) before it drops."""

_PERCENTILES = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0), ("p999", 99.9))

CSV_COLUMNS = (
    "time", "run", "plan", "interval", "start_s", "duration_s", "warmup", "endpoint",
    "requests", "errors", "rps", *(f"{name}_ms" for name, _ in _PERCENTILES), "max_ms",
    "mean_ms", "bytes_in", "bytes_out", "target_rps", "sent", "late", "dropped", "missing",
)  # fmt: skip


def _rows(run: _Run, interval: IntervalSnapshot) -> Iterator[dict[str, Any]]:
    """One row per endpoint of the interval, then one for all of them (``endpoint`` "all")."""
    gen = interval.generator
    at = run.at(interval.start_s)
    seconds = interval.duration_s or 1.0
    parts = [*interval.endpoints.items(), ("all", interval.total())]
    for name, data in parts:
        latency = data.latency
        values = latency.values_at_percentiles([p for _, p in _PERCENTILES])
        count = latency.total_count
        yield {
            "time": at,
            "run": run.id,
            "plan": run.plan,
            "interval": interval.index,
            "start_s": interval.start_s,
            "duration_s": interval.duration_s,
            "warmup": interval.warmup,
            "endpoint": name,
            "requests": data.requests,
            "errors": data.errors,
            "rps": data.requests / seconds,
            **{
                f"{p}_ms": (v / 1000 if count else None)
                for (p, _), v in zip(_PERCENTILES, values, strict=True)
            },
            "max_ms": latency.max / 1000 if count else None,
            "mean_ms": latency.mean / 1000 if count else None,
            "bytes_in": data.bytes_in,
            "bytes_out": data.bytes_out,
            "target_rps": gen.target_rps,
            "sent": gen.sent,
            "late": gen.late,
            "dropped": gen.dropped,
            "missing": interval.missing,
        }


class _Run:
    """What every line says of its run: id, plan, and the wall time of an interval."""

    def __init__(self, run: RunResult) -> None:
        self.id = run.id
        self.plan = run.plan.name
        started = run.started_at.replace("Z", "+00:00")
        self.started = datetime.fromisoformat(started) if started else datetime.now().astimezone()

    def at(self, start_s: float) -> str:
        moment = self.started + timedelta(seconds=start_s)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def ns(self, start_s: float) -> int:
        return int((self.started.timestamp() + start_s) * 1e9)


def _csv(handle: IO[str]) -> Callable[[_Run, IntervalSnapshot], None]:
    writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()

    def write(run: _Run, interval: IntervalSnapshot) -> None:
        for row in _rows(run, interval):
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        handle.flush()

    return write


def _jsonl(handle: IO[str]) -> Callable[[_Run, IntervalSnapshot], None]:
    def write(run: _Run, interval: IntervalSnapshot) -> None:
        record = {
            "type": "interval",
            "run": run.id,
            "plan": run.plan,
            "time": run.at(interval.start_s),
            **interval.to_dict(late_tolerance=0.01),
        }
        handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        handle.flush()

    return write


def _escape_tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def line_protocol(run: _Run, interval: IntervalSnapshot) -> str:
    """InfluxDB line protocol for one interval: a point per endpoint and one for all."""
    lines = []
    stamp = run.ns(interval.start_s)
    for row in _rows(run, interval):
        tags = ",".join(
            f"{key}={_escape_tag(str(row[key]))}" for key in ("plan", "run", "endpoint")
        )
        fields = []
        for key in ("requests", "errors", "sent", "late", "dropped"):
            fields.append(f"{key}={int(row[key])}i")
        for key in ("rps", *(f"{p}_ms" for p, _ in _PERCENTILES), "max_ms", "mean_ms",
                    "target_rps", "missing"):  # fmt: skip
            if row[key] is not None:
                fields.append(f"{key}={float(row[key])!r}")
        fields.append(f"warmup={'true' if row['warmup'] else 'false'}")
        lines.append(f"redline_interval,{tags} {','.join(fields)} {stamp}")
    return "\n".join(lines) + "\n"


def _influx_file(handle: IO[str]) -> Callable[[_Run, IntervalSnapshot], None]:
    def write(run: _Run, interval: IntervalSnapshot) -> None:
        handle.write(line_protocol(run, interval))
        handle.flush()

    return write


def _influx_http(url: str) -> Callable[[_Run, IntervalSnapshot], None]:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query.setdefault("precision", "ns")
    path = parts.path if parts.path not in ("", "/") else "/write"
    target = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, path, urllib.parse.urlencode(query), "")
    )

    def write(run: _Run, interval: IntervalSnapshot) -> None:
        body = line_protocol(run, interval).encode()
        request = urllib.request.Request(target, data=body, method="POST")
        request.add_header("Content-Type", "text/plain; charset=utf-8")
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    return write


OUTPUT_KINDS = ("csv", "jsonl", "influxdb", "prometheus", "otlp")


class StreamOutput(Closing):
    """One output of a run: a bounded queue and a writer thread.

    Use as a context manager (or call :meth:`close`); pass it in a run's observers.
    """

    def __init__(
        self,
        name: str,
        write: Callable[[_Run, IntervalSnapshot], None],
        *,
        closing: Callable[[], None] = lambda: None,
        capacity: int = _QUEUE,
    ) -> None:
        """Start the writer (``write`` is called in its thread, one interval at a time)."""
        self.name = name
        self._write = write
        self._closing = closing
        self._queue: queue.Queue[tuple[_Run, IntervalSnapshot] | None] = queue.Queue(capacity)
        self._run: _Run | None = None
        self.written = 0
        self.dropped = 0
        """Intervals not written because the queue was full."""
        self.failed = 0
        """Intervals whose write failed (the error kept in :attr:`last_error`)."""
        self.last_error = ""
        self._closed = False
        # a daemon: an output nobody closed must not keep the process alive at its end
        # (every run's intervals are written by then: on_finish waits for them)
        self._thread = threading.Thread(
            target=self._drain, name=f"redline-output-{name}", daemon=True
        )
        self._thread.start()

    def on_start(self, run: RunResult) -> None:
        """Remember the run's id, plan and start time for every line."""
        self._run = _Run(run)

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """Queue the interval for writing; drop (and count) it when the queue is full."""
        if self._run is None or self._closed:
            return
        try:
            self._queue.put_nowait((self._run, interval))
        except queue.Full:
            self.dropped += 1

    def on_finish(self, outcome: object) -> None:
        """Write what is queued (the output stays open for a next run: find's steps)."""
        self.flush()

    def on_abandon(self, reason: str) -> None:
        """Write what is queued: every interval measured before the run was abandoned."""
        self.flush()

    def flush(self) -> None:
        """Wait until every queued interval is written (or failed)."""
        if not self._closed:
            self._queue.join()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._write(*item)
                self.written += 1
            except Exception as exc:  # noqa: BLE001  (a writer that dies would hang flush)
                self.failed += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._queue.task_done()

    def close(self) -> None:
        """Flush the queue, stop the thread, close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        with contextlib.suppress(OSError):
            self._closing()

    def summary(self) -> str:
        """One line for people: what was written, dropped and failed."""
        text = f"output {self.name}: {self.written} interval(s) written"
        if self.dropped:
            text += f", {self.dropped} dropped (it fell behind)"
        if self.failed:
            text += f", {self.failed} failed ({self.last_error})"
        return text


def output_for(spec: str) -> StreamOutput:
    """An output from ``KIND=TARGET``.

    ``csv=FILE``, ``jsonl=FILE``, ``influxdb=URL|FILE``, ``prometheus=URL`` (remote
    write) or ``otlp=URL`` (OTLP/HTTP metrics).

    Raises:
        ValueError: an unknown kind or a missing target, naming the accepted ones.
        OSError: the file cannot be opened.
    """
    kind, sep, target = spec.partition("=")
    kind = kind.strip().lower()
    if not sep or not target or kind not in OUTPUT_KINDS:
        raise ValueError(
            f"--output {spec!r}: expected KIND=TARGET with KIND one of "
            f"{', '.join(OUTPUT_KINDS)} (csv=run.csv, influxdb=http://127.0.0.1:8086/write?db=redline)"
        )
    if kind == "influxdb" and target.startswith(("http://", "https://")):
        return StreamOutput(f"{kind}={target}", _influx_http(target))
    if kind in ("prometheus", "otlp"):
        if not target.startswith(("http://", "https://")):
            raise ValueError(
                f"--output {spec!r}: {kind} takes a URL (prometheus=http://HOST:9090/api/v1/write, "
                "otlp=http://HOST:4318/v1/metrics)"
            )
        try:
            writer = remote_write_writer(target) if kind == "prometheus" else otlp_writer(target)
        except ImportError as exc:
            raise ValueError(
                f"--output {kind}= needs the outputs extra: pip install 'redline[outputs]' "
                f"({exc.name} is missing)"
            ) from None
        return StreamOutput(f"{kind}={target}", writer)
    handle = Path(target).open("w", encoding="utf-8", newline="")  # noqa: SIM115 (the output's)
    makers = {"csv": _csv, "jsonl": _jsonl, "influxdb": _influx_file}
    return StreamOutput(f"{kind}={target}", makers[kind](handle), closing=handle.close)


def csv_text(run: RunResult) -> str:
    """A finished run as the CSV output would have written it (a convenience)."""
    buffer = io.StringIO()
    write = _csv(buffer)
    meta = _Run(run)
    for interval in run.intervals:
        write(meta, interval)
    return buffer.getvalue()
