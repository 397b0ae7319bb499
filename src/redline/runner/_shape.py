"""A Python plan's ``shape(elapsed_s)``: its load second by second, through live control.

Locust's LoadTestShape, for redline's Python plans:

    def shape(elapsed_s):
        if elapsed_s < 60:
            return 100          # req/s for an open-model plan, virtual users for a closed one
        if elapsed_s < 120:
            return 400
        return None             # the test ends here (a planned end: stop reason completed)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from redline.core import RunResult
from redline.engine import RunControl
from redline.plan import ClosedLoad, Plan, import_plan_module

__all__ = ["ShapeFollower"]


class ShapeFollower:
    """Calls the plan's ``shape`` every ``every_s`` and sets the rate or the VUs it says.

    An observer of the run: it starts with the load and stops with it. A shape that
    raises, or returns something that is not a number >= 0 or None, aborts the run with
    the reason.
    """

    def __init__(self, plan: Plan, control: RunControl, *, every_s: float = 0.25) -> None:
        """Follow ``plan``'s shape (the plan must have one: ``plan.has_shape``)."""
        assert plan.module is not None
        self.function: Callable[[float], object] = import_plan_module(plan.module).shape
        self.control = control
        self.closed = isinstance(plan.load, ClosedLoad)
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self._last: float | None = None

    def on_start(self, run: RunResult) -> None:
        """Apply ``shape(0)`` at once and follow it from the load's start."""
        started = run.started_at.replace("Z", "+00:00")
        self._started = datetime.fromisoformat(started).timestamp() if started else time.time()
        if self._step(0.0):
            self._thread = threading.Thread(target=self._follow, name="redline-shape", daemon=True)
            self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.every_s) and not self.control.stopped:
            if not self._step(max(0.0, time.time() - self._started)):
                return

    def _step(self, elapsed_s: float) -> bool:
        """Ask the shape once; False when the run is to end."""
        try:
            value = self.function(elapsed_s)
        except Exception as exc:  # noqa: BLE001  (the plan's own code)
            self.control.abort(f"shape({elapsed_s:.2f}) raised {type(exc).__name__}: {exc}")
            return False
        if value is None:
            self.control.end(f"the plan's shape() ended the run at {elapsed_s:.1f} s")
            return False
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.control.abort(
                f"shape({elapsed_s:.2f}) returned {value!r}: expected a number >= 0 or None"
            )
            return False
        if value != self._last:
            self._last = float(value)
            if self.closed:
                self.control.set_vus(round(value))
            else:
                self.control.set_rate(float(value))
        return True

    def on_finish(self, outcome: object) -> None:
        """The run ended: stop following."""
        self.close()

    def on_abandon(self, reason: str) -> None:
        """The run was abandoned: stop following."""
        self.close()

    def close(self) -> None:
        """Stop the thread (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
