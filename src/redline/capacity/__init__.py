"""Capacity: how many replicas, how big, and which autoscaling policy, from measurements.

Reads results, never live engine objects: a capacity plan can be rebuilt from stored runs.
"""

from ._demand import DemandTrace as DemandTrace
from ._demand import demand_from_prometheus as demand_from_prometheus
from ._demand import load_access_log as load_access_log
from ._demand import load_demand as load_demand
from ._hpa import Behavior as Behavior
from ._hpa import Hpa as Hpa
from ._hpa import HpaController as HpaController
from ._hpa import MetricSpec as MetricSpec
from ._hpa import ScalingPolicy as ScalingPolicy
from ._hpa import ScalingRules as ScalingRules
from ._manifests import hpa_of_policy as hpa_of_policy
from ._manifests import load_policies as load_policies
from ._manifests import parse_quantity_milli as parse_quantity_milli
from ._manifests import policy_from_manifest as policy_from_manifest
from ._policies import HpaPolicy as HpaPolicy
from ._policies import KedaPolicy as KedaPolicy
from ._policies import Policy as Policy
from ._policies import PredictivePolicy as PredictivePolicy
from ._policies import Step as Step
from ._policies import StepPolicy as StepPolicy
from ._policies import View as View
from ._recommend import Candidate as Candidate
from ._recommend import Recommendation as Recommendation
from ._recommend import recommend as recommend
from ._replay import FleetModel as FleetModel
from ._replay import Replay as Replay
from ._replay import ReplayScores as ReplayScores
from ._replay import replay as replay

__all__ = [
    "Behavior",
    "Candidate",
    "DemandTrace",
    "FleetModel",
    "Hpa",
    "HpaController",
    "HpaPolicy",
    "KedaPolicy",
    "MetricSpec",
    "Policy",
    "PredictivePolicy",
    "Recommendation",
    "Replay",
    "ReplayScores",
    "ScalingPolicy",
    "ScalingRules",
    "Step",
    "StepPolicy",
    "View",
    "demand_from_prometheus",
    "hpa_of_policy",
    "load_access_log",
    "load_demand",
    "load_policies",
    "parse_quantity_milli",
    "policy_from_manifest",
    "recommend",
    "replay",
]
