"""Stopping a run from outside its loop: Ctrl-C, an abort rule, a caller's own thread."""

from __future__ import annotations

import threading
import time
from collections import deque

__all__ = ["RunControl"]


class RunControl:
    """Asks a running load to stop, once, and remembers why.

    Safe to call from any thread, a signal handler or an observer. The run finishes the
    requests in flight, keeps every interval measured and ends with stop reason
    ``"interrupted"`` after :meth:`stop`, or ``"aborted"`` (the reason in its notes)
    after :meth:`abort`.
    """

    def __init__(self, *, parent: RunControl | None = None) -> None:
        """A control of its own; with ``parent``, also stopped whenever that one is."""
        self._event = threading.Event()
        self._parent = parent
        self.abort_reason: str | None = None
        """Why :meth:`abort` was called, if it was (the first reason wins)."""
        self.end_reason: str | None = None
        """Why :meth:`end` was called: the run ended as planned, early (a shape's end)."""
        self._commands: deque[tuple[str, float | None]] = deque()
        self.paused = False
        """Whether the load is paused (live control)."""

    @property
    def stopped(self) -> bool:
        """Whether a stop (or an abort) was asked for."""
        return self._event.is_set() or (self._parent is not None and self._parent.stopped)

    def child(self) -> RunControl:
        """A control for one run of several (a search's step).

        Stopping this control stops the child; the child's own abort ends its run only.
        """
        return RunControl(parent=self)

    def stop(self) -> None:
        """Ask the run to stop early (it is then marked ``"interrupted"``)."""
        self._event.set()

    def end(self, reason: str) -> None:
        """End the run now as a planned end (``completed``), ``reason`` in its notes."""
        if not self.stopped:
            self.end_reason = reason
        self._event.set()

    def abort(self, reason: str) -> None:
        """Ask the run to stop because it failed a rule (marked ``"aborted"``)."""
        if not self.stopped:
            self.abort_reason = reason
        self._event.set()

    # -- live control ----------------------------------------------------------------------
    def pause(self) -> None:
        """Send nothing new until :meth:`resume` (requests in flight finish)."""
        self.paused = True
        self._commands.append(("pause", None))

    def resume(self) -> None:
        """Carry on after :meth:`pause`."""
        self.paused = False
        self._commands.append(("resume", None))

    def set_rate(self, rate: float) -> None:
        """Open model: the arrival rate from now on (the whole test's, req/s)."""
        self._commands.append(("rate", float(rate)))

    def set_vus(self, vus: int) -> None:
        """Closed model: the number of virtual users from now on (the whole test's)."""
        self._commands.append(("vus", float(vus)))

    def take_commands(self) -> list[tuple[str, float | None]]:
        """The live-control actions asked for since the last call, in order."""
        out = []
        while self._commands:
            out.append(self._commands.popleft())
        return out

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is asked for, or ``timeout`` passes; return whether it was.

        A child wakes at once for its own stop; for its parent's, within 0.1 s.
        """
        if self._parent is None:
            return self._event.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.stopped:
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return False
            self._event.wait(left)
        return True
