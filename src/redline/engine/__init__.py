"""The load engine: schedules, workers, recorder, coordinator (one run, no verdicts)."""

from ._cluster import LazyCluster as LazyCluster
from ._cluster import connect_cluster as connect_cluster
from ._control import RunControl as RunControl
from ._coordinator import check_reachable as check_reachable
from ._coordinator import default_workers as default_workers
from ._coordinator import run_plan as run_plan
from ._fleet import Cluster as Cluster
from ._fleet import current_cluster as current_cluster
from ._fleet import using_cluster as using_cluster
from ._lingering import at_drain as at_drain
from ._session import Response as Response
from ._session import Session as Session

__all__ = [
    "Cluster",
    "LazyCluster",
    "Response",
    "RunControl",
    "Session",
    "at_drain",
    "check_reachable",
    "connect_cluster",
    "current_cluster",
    "default_workers",
    "run_plan",
    "using_cluster",
]
