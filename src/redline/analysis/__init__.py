"""Judging runs: verdicts, budgets, comparisons, the redline, scalability, spikes, soaks."""

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
from ._compare import Measured as Measured
from ._compare import MetricComparison as MetricComparison
from ._compare import PhaseChange as PhaseChange
from ._compare import compare_runs as compare_runs
from ._compare import decide as decide
from ._compare import measure_sides as measure_sides
from ._critical import BANDS as BANDS
from ._critical import attribute as attribute
from ._critical import critical_path as critical_path
from ._critical import slower_spans as slower_spans
from ._critical import trace_report as trace_report
from ._evaluate import evaluate as evaluate
from ._evaluate import tail_counts as tail_counts
from ._faults import FaultImpact as FaultImpact
from ._faults import burn_rate as burn_rate
from ._faults import fault_impacts as fault_impacts
from ._redline import Redline as Redline
from ._redline import Step as Step
from ._redline import redline_of as redline_of
from ._redline import search_redline as search_redline
from ._redline import step_holds as step_holds
from ._resample import Side as Side
from ._rules import DEFAULT_BURN_RATES as DEFAULT_BURN_RATES
from ._rules import PrometheusSource as PrometheusSource
from ._rules import RatioQuery as RatioQuery
from ._rules import SloRuleError as SloRuleError
from ._rules import period_seconds as period_seconds
from ._rules import slo_rules as slo_rules
from ._shapes import Drift as Drift
from ._shapes import Recovery as Recovery
from ._shapes import drift as drift
from ._shapes import recovery as recovery
from ._sweep import LittleCheck as LittleCheck
from ._sweep import SweepLevel as SweepLevel
from ._sweep import little_check as little_check
from ._use import cost_of as cost_of
from ._use import judge_target as judge_target
from ._use import memory_growth as memory_growth
from ._usl import MIN_USL_POINTS as MIN_USL_POINTS
from ._usl import UslFit as UslFit
from ._usl import UslPoint as UslPoint
from ._usl import fit_usl as fit_usl

__all__ = [
    "BANDS",
    "DEFAULT_BURN_RATES",
    "IMPROVEMENT",
    "INCONCLUSIVE_CHANGE",
    "METRICS",
    "MIN_USL_POINTS",
    "NO_CHANGE",
    "REGRESSION",
    "AbortMonitor",
    "ChangePoint",
    "Comparison",
    "Drift",
    "FaultImpact",
    "LittleCheck",
    "Measured",
    "MetricComparison",
    "PhaseChange",
    "PrometheusSource",
    "RatioQuery",
    "Recovery",
    "Redline",
    "Side",
    "SloRuleError",
    "Step",
    "SweepLevel",
    "UslFit",
    "UslPoint",
    "abort_window",
    "attribute",
    "burn_rate",
    "change_points",
    "compare_runs",
    "cost_of",
    "critical_path",
    "decide",
    "drift",
    "evaluate",
    "fault_impacts",
    "fit_usl",
    "judge_target",
    "little_check",
    "measure_sides",
    "memory_growth",
    "period_seconds",
    "recovery",
    "redline_of",
    "search_redline",
    "slo_rules",
    "slower_spans",
    "step_holds",
    "tail_counts",
    "trace_report",
]
