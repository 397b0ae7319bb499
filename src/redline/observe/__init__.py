"""Observing runs and their targets.

Live metrics of a run, a Grafana dashboard, and the target watched from inside:
processes, cgroups, the host, its own metrics, py-spy profiles.
"""

from ._cgroup import Cgroup as Cgroup
from ._cgroup import CgroupSandbox as CgroupSandbox
from ._errors import WatchError as WatchError
from ._grafana import grafana_dashboard as grafana_dashboard
from ._otlp import OtlpReceiver as OtlpReceiver
from ._otlp import decode_otlp as decode_otlp
from ._otlp import load_otlp_json as load_otlp_json
from ._outputs import StreamOutput as StreamOutput
from ._outputs import output_for as output_for
from ._profile import Profiler as Profiler
from ._profile import find_py_spy as find_py_spy
from ._prometheus import BUCKETS as BUCKETS
from ._prometheus import MetricsServer as MetricsServer
from ._prometheus import RunMetrics as RunMetrics
from ._samplers import CgroupSampler as CgroupSampler
from ._samplers import HostSampler as HostSampler
from ._samplers import ProcessSampler as ProcessSampler
from ._samplers import PrometheusSampler as PrometheusSampler
from ._samplers import Sampler as Sampler
from ._serve import ServedTarget as ServedTarget
from ._spans import SpanContext as SpanContext
from ._spans import SpanExporter as SpanExporter
from ._spans import parse_traceparent as parse_traceparent
from ._spans import trace_headers as trace_headers
from ._watch import ProfileRequest as ProfileRequest
from ._watch import TargetWatcher as TargetWatcher

__all__ = [
    "BUCKETS",
    "Cgroup",
    "CgroupSampler",
    "CgroupSandbox",
    "HostSampler",
    "MetricsServer",
    "OtlpReceiver",
    "ProcessSampler",
    "ProfileRequest",
    "Profiler",
    "PrometheusSampler",
    "RunMetrics",
    "Sampler",
    "ServedTarget",
    "SpanContext",
    "SpanExporter",
    "StreamOutput",
    "TargetWatcher",
    "WatchError",
    "decode_otlp",
    "find_py_spy",
    "grafana_dashboard",
    "load_otlp_json",
    "output_for",
    "parse_traceparent",
    "trace_headers",
]
