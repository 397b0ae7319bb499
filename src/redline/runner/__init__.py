"""Orchestration below the command line: a run, a search, an A/B session, an experiment.

Each composes the engine's load with observers (store, live view, dashboard, metrics,
abort rules, fault timeline, your own), judges the result and keeps it. Each has a
blocking form and an ``*_async`` form that does not block the event loop.
"""

from redline.core import Observer as Observer
from redline.core import Observers as Observers
from redline.engine import RunControl as RunControl

from ._ab import AbRuns as AbRuns
from ._ab import ab as ab
from ._ab import ab_async as ab_async
from ._ab import halved as halved
from ._ab import interleaved_order as interleaved_order
from ._control_api import ControlServer as ControlServer
from ._experiment import ExperimentStatus as ExperimentStatus
from ._experiment import Journal as Journal
from ._experiment import Probe as Probe
from ._experiment import experiment as experiment
from ._experiment import experiment_async as experiment_async
from ._observers import AbortRules as AbortRules
from ._observers import FaultTimeline as FaultTimeline
from ._probes import run_probes as run_probes
from ._replicas import ReplicaFollower as ReplicaFollower
from ._replicas import read_replicas as read_replicas
from ._run import as_plan as as_plan
from ._run import run as run
from ._run import run_async as run_async
from ._run import shape_analysis as shape_analysis
from ._run import write_document as write_document
from ._search import find as find
from ._search import find_async as find_async
from ._search import sweep as sweep
from ._search import sweep_async as sweep_async

__all__ = [
    "AbRuns",
    "AbortRules",
    "ControlServer",
    "ExperimentStatus",
    "FaultTimeline",
    "Journal",
    "Observer",
    "Observers",
    "Probe",
    "ReplicaFollower",
    "RunControl",
    "ab",
    "ab_async",
    "as_plan",
    "experiment",
    "experiment_async",
    "find",
    "find_async",
    "halved",
    "interleaved_order",
    "read_replicas",
    "run",
    "run_async",
    "run_probes",
    "shape_analysis",
    "sweep",
    "sweep_async",
    "write_document",
]
