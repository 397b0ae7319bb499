"""The live dashboard: the report's page, served on loopback and redrawn every second.

``GET /`` is the page; ``GET /events`` a stream of server-sent events, one document (as
:func:`page_data` makes it, with a ``live`` part: state, elapsed time, active stage) each
time an interval completes; ``GET /data`` the latest document once. Documents are made
in the server's threads and only when someone is looking, so a dashboard nobody opened
costs the run nothing but keeping the intervals.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from redline.analysis import evaluate
from redline.core import (
    Closing,
    IntervalSnapshot,
    Objective,
    PlanSummary,
    RunOutcome,
    RunResult,
    ThreadedHTTP,
    Verdict,
    format_duration,
)

from ._html import dashboard_html, page_json
from ._page import StepCache, page_data

__all__ = ["Dashboard", "active_stage"]

_KEEPALIVE_S = 10.0


def active_stage(plan: PlanSummary | Mapping[str, Any], elapsed_s: float) -> str:
    """What the load is doing ``elapsed_s`` into the run: ``"stage 2 of 3: 200/s for 4s"``."""
    if not isinstance(plan, PlanSummary):
        plan = PlanSummary.from_dict(plan)
    if elapsed_s < plan.warmup_s:
        return "warm-up"
    load = plan.load
    measured = elapsed_s - plan.warmup_s
    if not load.stages:
        if load.rate is not None:
            return f"steady {load.rate:g}/s"
        if load.vus is not None:
            return f"steady {load.vus:g} users"
        return "measuring"
    start = 0.0
    for number, stage in enumerate(load.stages, 1):
        end = start + stage.duration
        if measured < end or number == len(load.stages):
            unit = "/s" if stage.rate is not None else " users"
            return (
                f"stage {number} of {len(load.stages)}: {stage.target:g}{unit} "
                f"for {format_duration(end - start)}"
            )
        start = end
    return "measuring"  # pragma: no cover - the loop returns at the last stage


class Dashboard(Closing):
    """A live page of one run, served at :attr:`url` until :meth:`close`.

    It is an observer: pass it in a run's ``observers`` (or call :meth:`finish` with a
    result and verdicts of your own).
    """

    def __init__(
        self,
        plan: PlanSummary | Mapping[str, Any],
        objectives: Sequence[Objective] = (),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Start serving at once (``port=0`` picks a free port) a page of a run of ``plan``.

        Raises:
            OSError: the address cannot be bound.
        """
        self.plan = plan if isinstance(plan, PlanSummary) else PlanSummary.from_dict(plan)
        self.objectives = tuple(objectives)
        self.meta = dict(meta or {})
        self.total_s = self.plan.total_s
        self._changed = threading.Condition()
        self._version = 0
        self._closed = False
        self._run: RunResult | None = None
        self._intervals: list[IntervalSnapshot] = []
        self._verdicts: list[Verdict] | None = None
        self._message = "waiting for the run to start"
        self._cache: tuple[int, str] | None = None
        self._making = threading.Lock()  # one document at a time, its steps cached
        self._steps = StepCache()
        self.controls: Callable[[str, dict[str, Any]], tuple[int, dict[str, Any]]] | None = None
        """Live control for the page's buttons (``ControlServer.act``); None: no buttons."""
        self.model = "open"
        self._http = ThreadedHTTP(_handler(self), host=host, port=port, name="redline-dashboard")
        self.host = host
        self.port = self._http.port

    @property
    def url(self) -> str:
        """The page's address."""
        return self._http.url

    def _bump(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def on_start(self, run: RunResult) -> None:
        """The run started (its id and start time; no intervals yet)."""
        with self._changed:
            self._run = run
            self._message = ""
        self._bump()

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """One more interval completed."""
        with self._changed:
            self._intervals.append(interval)
        self._bump()

    def on_finish(self, outcome: RunOutcome) -> None:
        """The run ended and was judged: show it."""
        self.finish(outcome.result, outcome.verdicts)

    def finish(self, result: RunResult, verdicts: Sequence[Verdict], *, message: str = "") -> None:
        """The run ended: show its final result and verdicts from now on."""
        with self._changed:
            self._run = result
            self._intervals = list(result.intervals)
            self._verdicts = list(verdicts)
            self._message = message
        self._bump()

    def document(self) -> tuple[int, str]:
        """The current document as JSON, and its version (made once per version)."""
        with self._making:
            return self._document()

    def _document(self) -> tuple[int, str]:
        with self._changed:
            version, run = self._version, self._run
            intervals, verdicts = list(self._intervals), self._verdicts
            message = self._message
            cached = self._cache
        if cached is not None and cached[0] == version:
            return cached
        if run is None:
            run = RunResult(id="-", plan=self.plan, started_at="", intervals=(), complete=False)
        finished = verdicts is not None
        if not finished:
            run = dataclasses.replace(run, intervals=tuple(intervals))
        elapsed = intervals[-1].start_s + intervals[-1].duration_s if intervals else 0.0
        live = {
            "state": "finished" if finished else "running",
            "elapsed_s": elapsed,
            "total_s": self.total_s,
            "stage": "done" if finished else active_stage(self.plan, elapsed),
            "message": message,
            "control": self.controls is not None,
            "model": self.model,
        }
        judged = verdicts if verdicts is not None else evaluate(run, self.objectives)
        document = page_data(run, judged, meta=self.meta, live=live, cache=self._steps)
        text = page_json(document)
        with self._changed:
            self._cache = (version, text)
        return version, text

    def wait_newer(self, version: int, timeout: float) -> bool:
        """Wait until the document is newer than ``version``; False on timeout or close."""
        with self._changed:
            self._changed.wait_for(lambda: self._version > version or self._closed, timeout)
            return self._version > version and not self._closed

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Stop serving (open event streams end)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._http.close()


def _handler(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the run's own output is what the terminal is for."""

        def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/":
                title = f"redline · {dashboard.plan.name} (live)"
                page = dashboard_html("/events", title=title).encode()
                self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
            elif path == "/data":
                _, text = dashboard.document()
                self._send(HTTPStatus.OK, text.encode(), "application/json")
            elif path == "/events":
                self._events()
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

        def do_POST(self) -> None:
            action = self.path.split("?", 1)[0].removeprefix("/control/")
            if dashboard.controls is None or not self.path.startswith("/control/"):
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(min(length, 4096)) or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict):
                self._send(HTTPStatus.BAD_REQUEST, b'{"error": "expected a JSON object"}',
                           "application/json")  # fmt: skip
                return
            status, answer = dashboard.controls(action, body)
            self._send(HTTPStatus(status), json.dumps(answer).encode(), "application/json")

        def _events(self) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            sent = -1
            try:
                while not dashboard.closed:
                    version, text = dashboard.document()
                    if version != sent:
                        self.wfile.write(f"data: {text}\n\n".encode())
                        sent = version
                    elif not dashboard.wait_newer(sent, _KEEPALIVE_S) and not dashboard.closed:
                        self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

    return Handler
