"""The load engine: schedules, workers, recorder, coordinator (one run, no verdicts)."""

from ._control import RunControl as RunControl
from ._coordinator import check_reachable as check_reachable
from ._coordinator import default_workers as default_workers
from ._coordinator import run_plan as run_plan
from ._session import Response as Response
from ._session import Session as Session

__all__ = [
    "Response",
    "RunControl",
    "Session",
    "check_reachable",
    "default_workers",
    "run_plan",
]
