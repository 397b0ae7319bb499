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
from ._compare import compare_runs as compare_runs
from ._compare import critical_metrics as critical_metrics
from ._evaluate import evaluate as evaluate
from ._evaluate import evaluate_window as evaluate_window
from ._evaluate import wilson as wilson
from ._evaluate import window_lengths as window_lengths
from ._rules import DEFAULT_BURN_RATES as DEFAULT_BURN_RATES
from ._rules import PrometheusSource as PrometheusSource
from ._rules import SloRuleError as SloRuleError
from ._rules import burn_windows as burn_windows
from ._rules import period_seconds as period_seconds
from ._rules import slo_rules as slo_rules
from ._stats import benjamini_hochberg as benjamini_hochberg
from ._stats import mann_whitney as mann_whitney

__all__ = [
    "DEFAULT_BURN_RATES",
    "IMPROVEMENT",
    "INCONCLUSIVE_CHANGE",
    "METRICS",
    "NO_CHANGE",
    "REGRESSION",
    "AbortMonitor",
    "ChangePoint",
    "Comparison",
    "MetricComparison",
    "PrometheusSource",
    "SloRuleError",
    "abort_window",
    "benjamini_hochberg",
    "burn_windows",
    "change_points",
    "compare_runs",
    "critical_metrics",
    "evaluate",
    "evaluate_window",
    "mann_whitney",
    "period_seconds",
    "slo_rules",
    "wilson",
    "window_lengths",
]
