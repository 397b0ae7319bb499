"""Small, reversible changes: canary judgement, progressive rollout, hooks and probes.

Reads results (stored runs, or a Prometheus server's range queries) and judges a canary
against its baseline with the comparison's own inference (``redline.analysis``).
"""

from ._budget import BudgetGate as BudgetGate
from ._budget import BudgetReading as BudgetReading
from ._hooks import FLAGGER_HOOKS as FLAGGER_HOOKS
from ._hooks import HookServer as HookServer
from ._judge import FAIL as FAIL
from ._judge import HIGH as HIGH
from ._judge import LOW as LOW
from ._judge import MARGINAL as MARGINAL
from ._judge import NODATA as NODATA
from ._judge import PASS as PASS
from ._judge import Judgement as Judgement
from ._judge import JudgePolicy as JudgePolicy
from ._judge import MetricJudgement as MetricJudgement
from ._judge import MetricPolicy as MetricPolicy
from ._judge import cohort_of as cohort_of
from ._judge import judge as judge
from ._probe import PROBE_BUCKETS as PROBE_BUCKETS
from ._probe import ProbeMetrics as ProbeMetrics
from ._prometheus import PrometheusCohorts as PrometheusCohorts
from ._prometheus import PrometheusError as PrometheusError
from ._rollout import HELD as HELD
from ._rollout import PROMOTED as PROMOTED
from ._rollout import ROLLED_BACK as ROLLED_BACK
from ._rollout import HAProxySplitter as HAProxySplitter
from ._rollout import ProxySplitter as ProxySplitter
from ._rollout import RolloutPlan as RolloutPlan
from ._rollout import RolloutResult as RolloutResult
from ._rollout import RolloutStep as RolloutStep
from ._rollout import Splitter as Splitter
from ._rollout import SplitterError as SplitterError
from ._rollout import WebhookSplitter as WebhookSplitter
from ._rollout import progressive_rollout as progressive_rollout

__all__ = [
    "FAIL",
    "FLAGGER_HOOKS",
    "HELD",
    "HIGH",
    "LOW",
    "MARGINAL",
    "NODATA",
    "PASS",
    "PROBE_BUCKETS",
    "PROMOTED",
    "ROLLED_BACK",
    "BudgetGate",
    "BudgetReading",
    "HAProxySplitter",
    "HookServer",
    "JudgePolicy",
    "Judgement",
    "MetricJudgement",
    "MetricPolicy",
    "ProbeMetrics",
    "PrometheusCohorts",
    "PrometheusError",
    "ProxySplitter",
    "RolloutPlan",
    "RolloutResult",
    "RolloutStep",
    "Splitter",
    "SplitterError",
    "WebhookSplitter",
    "cohort_of",
    "judge",
    "progressive_rollout",
]
