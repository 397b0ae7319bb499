"""Hooks for the tools that step a rollout: Argo Rollouts' web provider, Flagger's webhooks.

One small HTTP server (``redline hooks``) judges on request, with whatever source of
cohorts it was given (a Prometheus server, usually):

``GET /judge?baseline=stable&canary=canary`` (or ``POST /judge`` with a JSON object of the
same keys): the judgement as JSON, always HTTP 200 when it was carried out, so Argo
Rollouts' ``web`` metric provider reads it with ``jsonPath: "{$.passed}"`` and
``successCondition: result == true`` (or ``{$.score}`` and ``result >= 95``). A
judgement that could not be carried out (the source is down) answers 503 with the
reason: Argo counts it as an error, never a success.

``POST /flagger/<type>`` with Flagger's webhook payload (``name``, ``namespace``,
``phase``, ``metadata``): the canary's cohorts are ``metadata.baseline`` and
``metadata.canary`` when given, else ``<name>-primary`` and ``<name>`` (Flagger's own
naming of the two deployments). By type:

- ``rollout``, ``confirm-traffic-increase``, ``confirm-promotion``: judge; 200 on pass
  (advance), 403 with the judgement otherwise (halt: Flagger counts a failed check).
- ``rollback``: judge; 200 when the judgement *fails* (Flagger then rolls back), 403
  when it passes (nothing to roll back).
- ``confirm-rollout``, ``pre-rollout``: the gate before any canary traffic: 200 when the
  budget gate (if one was given) allows a rollout, 403 when it does not.
- ``post-rollout``, ``event``: recorded, 200.

Every judgement and hook call is kept (the last 200) and listed at ``GET /judgements``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from redline.core import Closing, ThreadedHTTP

from ._judge import Judgement

__all__ = ["FLAGGER_HOOKS", "HookServer", "JudgeFn"]

JudgeFn = Callable[[str, str], Judgement]
"""Judges cohort ``canary`` against cohort ``baseline`` (label values); may raise."""
GateFn = Callable[[], tuple[bool, str]]
"""Whether a rollout may start now, and why (an error-budget gate)."""

FLAGGER_HOOKS = (
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
)
"""Flagger's webhook types, each answered at ``POST /flagger/<type>``."""
_JUDGED = ("rollout", "confirm-traffic-increase", "confirm-promotion", "rollback")
_GATES = ("confirm-rollout", "pre-rollout")
_KEPT = 200


class HookServer(Closing):
    """Answers Argo Rollouts' web provider and Flagger's webhooks with judgements."""

    def __init__(
        self,
        judge: JudgeFn,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        gate: GateFn | None = None,
        errors: tuple[type[BaseException], ...] = (OSError, RuntimeError, ValueError),
    ) -> None:
        """Serve at ``host:port`` (0: a free port) from the moment it is made.

        Args:
            judge: how a judgement is made.
            host: the address to answer on (loopback by default).
            port: the port (0: a free one).
            gate: the gate of ``confirm-rollout`` and ``pre-rollout`` (default: open).
            errors: what ``judge`` raises when it cannot judge (answered 503).
        """
        self.judge = judge
        self.gate = gate
        self.errors = errors
        self.history: deque[dict[str, Any]] = deque(maxlen=_KEPT)
        self._lock = threading.Lock()
        self._http = ThreadedHTTP(_handler(self), host=host, port=port, name="redline-hooks")

    @property
    def url(self) -> str:
        """Where it answers."""
        return self._http.url

    def close(self) -> None:
        """Stop answering."""
        self._http.close()

    def record(self, entry: dict[str, Any]) -> None:
        """Keep one call and its answer."""
        with self._lock:
            self.history.append({"at": time.time(), **entry})

    def judged(self, baseline: str, canary: str) -> tuple[int, dict[str, Any]]:
        """Judge; (200, the judgement) or (503, the reason it could not be made)."""
        try:
            judgement = self.judge(baseline, canary)
        except self.errors as exc:
            return 503, {"error": f"cannot judge: {exc}", "baseline": baseline, "canary": canary}
        return 200, {"baseline": baseline, "canary": canary, **judgement.to_dict()}

    def flagger(self, hook: str, payload: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Answer one Flagger webhook (see the module's docstring)."""
        name = str(payload.get("name", ""))
        metadata = payload.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            return 400, {"error": "metadata: expected an object of strings"}
        baseline = str(metadata.get("baseline") or f"{name}-primary")
        canary = str(metadata.get("canary") or name)
        if hook in _JUDGED:
            if not name and "canary" not in metadata:
                return 400, {"error": "name: Flagger's payload names the canary"}
            status, body = self.judged(baseline, canary)
            if status != 200:
                return status, body
            passed = bool(body["passed"])
            if hook == "rollback":  # 200 asks Flagger to roll back
                return (200 if not passed else 403), {**body, "rollback": not passed}
            return (200 if passed else 403), body
        if hook in _GATES:
            allowed, why = self.gate() if self.gate is not None else (True, "no gate configured")
            return (200 if allowed else 403), {"allowed": allowed, "reason": why}
        return 200, {"recorded": hook, "phase": payload.get("phase")}


def _handler(server: HookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: every call is in the history instead

        def _answer(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _payload(self) -> dict[str, Any] | None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            try:
                data = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                return None
            return data if isinstance(data, dict) else None

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/judgements":
                with server._lock:
                    self._answer(200, {"judgements": list(server.history)})
                return
            if url.path == "/judge":
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                self._judge(query)
                return
            self._answer(404, {"error": f"no such path: {url.path}"})

        def do_POST(self) -> None:
            url = urlparse(self.path)
            payload = self._payload()
            if payload is None:
                self._answer(400, {"error": "the body is not a JSON object"})
                return
            if url.path == "/judge":
                self._judge(payload)
                return
            hook = url.path.removeprefix("/flagger/")
            if url.path.startswith("/flagger/") and hook in FLAGGER_HOOKS:
                status, body = server.flagger(hook, payload)
                server.record({"hook": hook, "payload": payload, "status": status, "answer": body})
                self._answer(status, body)
                return
            self._answer(404, {"error": f"no such path: {url.path}"})

        def _judge(self, query: Mapping[str, Any]) -> None:
            baseline, canary = query.get("baseline"), query.get("canary")
            if not baseline or not canary:
                self._answer(400, {"error": "baseline and canary are required"})
                return
            status, body = server.judged(str(baseline), str(canary))
            server.record({"hook": "judge", "status": status, "answer": body})
            self._answer(status, body)

    return Handler
