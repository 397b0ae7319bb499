"""Capacity: how many replicas, how big, and which autoscaling policy, from measurements.

Reads results, never live engine objects: a capacity plan can be rebuilt from stored runs.
"""

from ._demand import DemandTrace as DemandTrace
from ._demand import demand_from_prometheus as demand_from_prometheus
from ._demand import load_access_log as load_access_log
from ._demand import load_demand as load_demand
from ._events import ScalingEvent as ScalingEvent
from ._events import scaling_events as scaling_events
from ._hpa import Behavior as Behavior
from ._hpa import Hpa as Hpa
from ._hpa import HpaController as HpaController
from ._hpa import MetricSpec as MetricSpec
from ._hpa import ScalingPolicy as ScalingPolicy
from ._hpa import ScalingRules as ScalingRules
from ._k8s import Workload as Workload
from ._k8s import manifests as manifests
from ._k8s import manifests_yaml as manifests_yaml
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
from ._rightsize import Rightsize as Rightsize
from ._rightsize import rightsize as rightsize
from ._scaling import ScalingFit as ScalingFit
from ._scaling import fit_scaling as fit_scaling
from ._size import ReplicaModel as ReplicaModel
from ._size import SizePlan as SizePlan
from ._size import erlang_c as erlang_c
from ._size import mmc_max_rate as mmc_max_rate
from ._size import mmc_response_quantile as mmc_response_quantile
from ._size import replica_model_from_find as replica_model_from_find
from ._size import size_fleet as size_fleet

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
    "ReplicaModel",
    "Rightsize",
    "ScalingEvent",
    "ScalingFit",
    "ScalingPolicy",
    "ScalingRules",
    "SizePlan",
    "Step",
    "StepPolicy",
    "View",
    "Workload",
    "demand_from_prometheus",
    "erlang_c",
    "fit_scaling",
    "hpa_of_policy",
    "load_access_log",
    "load_demand",
    "load_policies",
    "manifests",
    "manifests_yaml",
    "mmc_max_rate",
    "mmc_response_quantile",
    "parse_quantity_milli",
    "policy_from_manifest",
    "recommend",
    "replay",
    "replica_model_from_find",
    "rightsize",
    "scaling_events",
    "size_fleet",
]
