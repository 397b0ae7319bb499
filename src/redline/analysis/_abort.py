"""Abort rules judged live: stop a run as soon as an objective is clearly breached."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from redline.core import FAIL, IntervalSnapshot, Objective, Verdict

from ._evaluate import evaluate_window

__all__ = ["AbortMonitor", "abort_window"]


def abort_window(planned_s: float) -> int:
    """Seconds of the live window for a run planned to last ``planned_s``.

    A tenth of the run, at least 1 s: the length of the final verdict's long window.
    """
    return max(1, round(planned_s / 10))


class AbortMonitor:
    """Watches merged intervals and reports the first breach of an abort rule.

    Each objective with ``abort: true`` is judged on the last :func:`abort_window`
    seconds of measured intervals once ``abort_after`` seconds were measured; it is
    breached when that window's verdict is ``fail`` (for percentiles and ratios: the
    window's whole 95% confidence interval is beyond the threshold, so noise alone
    does not stop a run). Call it with each interval; it returns the reason to stop.

    Attributes:
        breach: ``(objective, window verdict, end of the window in seconds)`` once breached.
    """

    def __init__(self, objectives: Sequence[Objective], *, window_s: int) -> None:
        """Watch the abort rules among ``objectives`` over windows of ``window_s``."""
        self.rules = [o for o in objectives if o.abort]
        self.window: deque[IntervalSnapshot] = deque(maxlen=max(1, window_s))
        self.measured_s = 0.0
        self.breach: tuple[Objective, Verdict, float] | None = None

    def __call__(self, interval: IntervalSnapshot) -> str | None:
        """Take one interval; return why the run must stop, or None."""
        if interval.warmup or not self.rules or self.breach is not None:
            return None
        self.window.append(interval)
        self.measured_s += interval.duration_s
        end = interval.start_s + interval.duration_s
        for objective in self.rules:
            if self.measured_s + 1e-9 < max(objective.abort_after, float(self.window.maxlen or 1)):
                continue
            verdict = evaluate_window(objective, list(self.window))
            if verdict.outcome == FAIL:
                self.breach = (objective, verdict, end)
                return f"{objective.name} breached at {end:g} s: {verdict.reason}"
        return None
