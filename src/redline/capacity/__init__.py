"""Capacity: how many replicas, how big, and which autoscaling policy, from measurements.

Reads results, never live engine objects: a capacity plan can be rebuilt from stored runs.
"""

from ._contend import SpikeResult as SpikeResult
from ._contend import limit_ranges as limit_ranges
from ._contend import qos_class as qos_class
from ._contend import quota_check as quota_check
from ._contend import resource_quotas as resource_quotas
from ._contend import simulate_spike as simulate_spike
from ._demand import DemandTrace as DemandTrace
from ._demand import demand_from_prometheus as demand_from_prometheus
from ._demand import load_access_log as load_access_log
from ._demand import load_demand as load_demand
from ._events import ScalingEvent as ScalingEvent
from ._events import scaling_events as scaling_events
from ._fleet import DEFAULT_PRIORITY_CLASSES as DEFAULT_PRIORITY_CLASSES
from ._fleet import Fleet as Fleet
from ._fleet import FleetService as FleetService
from ._fleet import Link as Link
from ._fleet import NodeType as NodeType
from ._fleet import fleet_from_dict as fleet_from_dict
from ._fleet import load_fleet as load_fleet
from ._fleet import traffic_from_run as traffic_from_run
from ._hints import documents_yaml as documents_yaml
from ._hints import priority_classes as priority_classes
from ._hints import scheduling_manifests as scheduling_manifests
from ._hints import scheduling_yaml as scheduling_yaml
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
from ._place import FleetPlan as FleetPlan
from ._place import PlacedNode as PlacedNode
from ._place import Placement as Placement
from ._place import PlacementError as PlacementError
from ._place import cross_node_rps as cross_node_rps
from ._place import first_fit_decreasing as first_fit_decreasing
from ._place import place as place
from ._place import placement_from_dict as placement_from_dict
from ._place import placement_violations as placement_violations
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
    "DEFAULT_PRIORITY_CLASSES",
    "Behavior",
    "Candidate",
    "DemandTrace",
    "Fleet",
    "FleetModel",
    "FleetPlan",
    "FleetService",
    "Hpa",
    "HpaController",
    "HpaPolicy",
    "KedaPolicy",
    "Link",
    "MetricSpec",
    "NodeType",
    "PlacedNode",
    "Placement",
    "PlacementError",
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
    "SpikeResult",
    "Step",
    "StepPolicy",
    "View",
    "Workload",
    "cross_node_rps",
    "demand_from_prometheus",
    "documents_yaml",
    "erlang_c",
    "first_fit_decreasing",
    "fit_scaling",
    "fleet_from_dict",
    "hpa_of_policy",
    "limit_ranges",
    "load_access_log",
    "load_demand",
    "load_fleet",
    "load_policies",
    "manifests",
    "manifests_yaml",
    "mmc_max_rate",
    "mmc_response_quantile",
    "parse_quantity_milli",
    "place",
    "placement_from_dict",
    "placement_violations",
    "policy_from_manifest",
    "priority_classes",
    "qos_class",
    "quota_check",
    "recommend",
    "replay",
    "replica_model_from_find",
    "resource_quotas",
    "rightsize",
    "scaling_events",
    "scheduling_manifests",
    "scheduling_yaml",
    "simulate_spike",
    "size_fleet",
    "traffic_from_run",
]
