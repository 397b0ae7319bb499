"""Judging runs: SLO verdicts, error budgets and burn rates (more analyses to come)."""

from ._abort import AbortMonitor as AbortMonitor
from ._abort import abort_window as abort_window
from ._evaluate import evaluate as evaluate
from ._evaluate import evaluate_window as evaluate_window
from ._evaluate import wilson as wilson
from ._evaluate import window_lengths as window_lengths

__all__ = [
    "AbortMonitor",
    "abort_window",
    "evaluate",
    "evaluate_window",
    "wilson",
    "window_lengths",
]
