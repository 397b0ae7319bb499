"""The load engine: schedules, workers, recorder, coordinator (one run, no verdicts)."""

from ._control import RunControl as RunControl
from ._coordinator import check_reachable as check_reachable
from ._coordinator import default_workers as default_workers
from ._coordinator import run_plan as run_plan
from ._recorder import Recorder as Recorder
from ._requests import weighted_cycle as weighted_cycle
from ._schedule import ArrivalSchedule as ArrivalSchedule
from ._segments import Segment as Segment
from ._segments import block_of as block_of
from ._segments import split as split
from ._session import Response as Response
from ._session import Session as Session

__all__ = [
    "ArrivalSchedule",
    "Recorder",
    "Response",
    "RunControl",
    "Segment",
    "Session",
    "block_of",
    "check_reachable",
    "default_workers",
    "run_plan",
    "split",
    "weighted_cycle",
]
