"""Load-test plans: YAML or dict, validated into a frozen :class:`Plan`."""

from ._experiment import ACTIONS as ACTIONS
from ._experiment import Action as Action
from ._experiment import Experiment as Experiment
from ._experiment import load_experiment as load_experiment
from ._faults import FaultPlan as FaultPlan
from ._faults import FaultProxySpec as FaultProxySpec
from ._faults import FaultSpec as FaultSpec
from ._grpc import GrpcCall as GrpcCall
from ._grpc import decode_messages as decode_messages
from ._grpc import encode_message as encode_message
from ._grpc import find_call as find_call
from ._importers import dump_plan as dump_plan
from ._importers import plan_from_access_log as plan_from_access_log
from ._importers import plan_from_har as plan_from_har
from ._importers import plan_from_openapi as plan_from_openapi
from ._observe import CostSpec as CostSpec
from ._observe import ObservePlan as ObservePlan
from ._observe import ProfileSpec as ProfileSpec
from ._observe import ServeSpec as ServeSpec
from ._observe import WatchSpec as WatchSpec
from ._observe import parse_cpus as parse_cpus
from ._observe import parse_limit as parse_limit
from ._observe import parse_watch as parse_watch
from ._parse import load_plan as load_plan
from ._parse import plan_from_dict as plan_from_dict
from ._parse import quick_plan as quick_plan
from ._presets import TEST_TYPES as TEST_TYPES
from ._presets import shape_load as shape_load
from ._python import import_plan_module as import_plan_module
from ._python import scenario as scenario
from ._slo import QuerySli as QuerySli
from ._slo import check_slos as check_slos
from ._slo import load_slo_sources as load_slo_sources
from ._slo import load_slos as load_slos
from ._slo import slos_from_data as slos_from_data
from ._spec import ClosedLoad as ClosedLoad
from ._spec import CompressionSpec as CompressionSpec
from ._spec import Extraction as Extraction
from ._spec import FilePart as FilePart
from ._spec import FlowCheck as FlowCheck
from ._spec import OpenLoad as OpenLoad
from ._spec import Plan as Plan
from ._spec import RequestSpec as RequestSpec
from ._spec import ScenarioSpec as ScenarioSpec
from ._spec import Stage as Stage
from ._spec import ThinkStep as ThinkStep
from ._spec import WebSocketSpec as WebSocketSpec
from ._spec import Workload as Workload
from ._template import DataSource as DataSource
from ._template import MissingVariableError as MissingVariableError
from ._template import RenderContext as RenderContext
from ._template import Template as Template
from ._template import compile_template as compile_template
from ._template import text_of as text_of
from ._trace import TracePlan as TracePlan

__all__ = [
    "ACTIONS",
    "TEST_TYPES",
    "Action",
    "ClosedLoad",
    "CompressionSpec",
    "CostSpec",
    "DataSource",
    "Experiment",
    "Extraction",
    "FaultPlan",
    "FaultProxySpec",
    "FaultSpec",
    "FilePart",
    "FlowCheck",
    "GrpcCall",
    "MissingVariableError",
    "ObservePlan",
    "OpenLoad",
    "Plan",
    "ProfileSpec",
    "QuerySli",
    "RenderContext",
    "RequestSpec",
    "ScenarioSpec",
    "ServeSpec",
    "Stage",
    "Template",
    "ThinkStep",
    "TracePlan",
    "WatchSpec",
    "WebSocketSpec",
    "Workload",
    "check_slos",
    "compile_template",
    "decode_messages",
    "dump_plan",
    "encode_message",
    "find_call",
    "import_plan_module",
    "load_experiment",
    "load_plan",
    "load_slo_sources",
    "load_slos",
    "parse_cpus",
    "parse_limit",
    "parse_watch",
    "plan_from_access_log",
    "plan_from_dict",
    "plan_from_har",
    "plan_from_openapi",
    "quick_plan",
    "scenario",
    "shape_load",
    "slos_from_data",
    "text_of",
]
