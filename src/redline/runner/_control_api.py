"""The live-control API: pause, resume, change the rate or the virtual users of a run.

    POST /pause            POST /resume
    POST /rate  {"rate": 400}        (open model: the whole test's arrival rate, req/s)
    POST /vus   {"vus": 20}          (closed model: the whole test's virtual users)
    GET  /status

Served on loopback by default. Bound to any other address it needs a token: every
request carries ``Authorization: Bearer TOKEN`` (one is made when none is given, and
printed). Each accepted action is passed to the run's :class:`RunControl` and recorded in
the result's ``control`` timeline; a refused one answers 4xx with a reason.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.server import BaseHTTPRequestHandler
from typing import Any

from redline.core import Closing, ThreadedHTTP
from redline.engine import RunControl
from redline.http import is_loopback
from redline.plan import ClosedLoad, Plan

__all__ = ["ControlServer"]

_MAX_BODY = 4096


class ControlServer(Closing):
    """The control API of one run (or of a command's runs), in a thread of its own."""

    def __init__(
        self,
        control: RunControl,
        plan: Plan,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
    ) -> None:
        """Serve at once; off loopback a token is required (made here when not given).

        Raises:
            OSError: the address cannot be bound.
        """
        self.control = control
        self.closed_model = isinstance(plan.load, ClosedLoad)
        self.token = token if token or is_loopback(host) else secrets.token_urlsafe(18)
        self.actions: list[dict[str, Any]] = []
        self._http = ThreadedHTTP(_handler(self), host=host, port=port, name="redline-control")
        self.host = host
        self.port = self._http.port

    @property
    def url(self) -> str:
        """Where the API answers."""
        return self._http.url

    def act(self, action: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Carry out one action; the HTTP status and the answer."""
        control = self.control
        if action == "pause":
            control.pause()
        elif action == "resume":
            control.resume()
        elif action in ("rate", "vus"):
            value = body.get(action)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                return 400, {"error": f'expected {{"{action}": a number >= 0}}, got {body!r}'}
            if (action == "rate") == self.closed_model:
                model = "closed (virtual users)" if self.closed_model else "open (arrival rate)"
                other = "vus" if self.closed_model else "rate"
                return 409, {"error": f"the run's load model is {model}: set {other} instead"}
            if action == "rate":
                control.set_rate(float(value))
            else:
                control.set_vus(int(value))
        else:
            return 404, {"error": f"no action {action!r}: pause, resume, rate, vus, status"}
        self.actions.append({"action": action, **body})
        return 200, self.status()

    def status(self) -> dict[str, Any]:
        """The run's state as the API sees it."""
        return {
            "state": "stopped" if self.control.stopped else
                     "paused" if self.control.paused else "running",
            "model": "closed" if self.closed_model else "open",
            "actions": list(self.actions),
        }  # fmt: skip

    def close(self) -> None:
        """Stop serving."""
        self._http.close()


def _handler(api: ControlServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the run's terminal is not the place."""

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _allowed(self) -> bool:
            if api.token is None:
                return True
            given = self.headers.get("Authorization", "")
            if hmac.compare_digest(given.encode(), f"Bearer {api.token}".encode()):
                return True
            self._answer(401, {"error": "a token is needed: Authorization: Bearer TOKEN"})
            return False

        def do_GET(self) -> None:
            if not self._allowed():
                return
            if self.path.rstrip("/") in ("", "/status"):
                self._answer(200, api.status())
            else:
                self._answer(404, {"error": "GET /status; POST /pause, /resume, /rate, /vus"})

        def do_POST(self) -> None:
            if not self._allowed():
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > _MAX_BODY:
                self._answer(413, {"error": "body too large"})
                return
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                self._answer(400, {"error": "the body is not JSON"})
                return
            if not isinstance(body, dict):
                self._answer(400, {"error": "expected a JSON object"})
                return
            self._answer(*api.act(self.path.strip("/"), body))

    return Handler
