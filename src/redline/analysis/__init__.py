"""Judging runs: SLO verdicts, error budgets, burn rates, and comparisons with a baseline."""

from ._abort import AbortMonitor as AbortMonitor
from ._abort import abort_window as abort_window
from ._changepoint import ChangePoint as ChangePoint
from ._changepoint import change_points as change_points
from ._compare import IMPROVEMENT as IMPROVEMENT
from ._compare import INCONCLUSIVE_CHANGE as INCONCLUSIVE_CHANGE
from ._compare import METRICS as METRICS
from ._compare import NO_CHANGE as NO_CHANGE
from ._compare import REGRESSION as REGRESSION
from ._compare import Comparison as Comparison
from ._compare import MetricComparison as MetricComparison
from ._compare import benjamini_hochberg as benjamini_hochberg
from ._compare import compare_runs as compare_runs
from ._compare import critical_metrics as critical_metrics
from ._compare import mann_whitney as mann_whitney
from ._evaluate import evaluate as evaluate
from ._evaluate import evaluate_window as evaluate_window
from ._evaluate import wilson as wilson
from ._evaluate import window_lengths as window_lengths

__all__ = [
    "IMPROVEMENT",
    "INCONCLUSIVE_CHANGE",
    "METRICS",
    "NO_CHANGE",
    "REGRESSION",
    "AbortMonitor",
    "ChangePoint",
    "Comparison",
    "MetricComparison",
    "abort_window",
    "benjamini_hochberg",
    "change_points",
    "compare_runs",
    "critical_metrics",
    "evaluate",
    "evaluate_window",
    "mann_whitney",
    "wilson",
    "window_lengths",
]
