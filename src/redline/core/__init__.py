"""Frozen data types shared by every redline package: units, histograms, results, errors."""

from ._closing import Closing as Closing
from ._errors import BlockedError as BlockedError
from ._errors import ConnectError as ConnectError
from ._errors import ConnectTimeoutError as ConnectTimeoutError
from ._errors import DataExhaustedError as DataExhaustedError
from ._errors import PlanError as PlanError
from ._errors import ProtocolError as ProtocolError
from ._errors import ReadTimeoutError as ReadTimeoutError
from ._errors import RedlineError as RedlineError
from ._errors import ResponseTooLargeError as ResponseTooLargeError
from ._errors import RunError as RunError
from ._errors import StoreError as StoreError
from ._errors import TransportError as TransportError
from ._histogram import COUNTS_LEN as COUNTS_LEN
from ._histogram import HIGHEST_US as HIGHEST_US
from ._histogram import Histogram as Histogram
from ._histogram import bucket_indices as bucket_indices
from ._histogram import bucket_values as bucket_values
from ._interval import PHASES as PHASES
from ._metrics import METRIC_KINDS as METRIC_KINDS
from ._metrics import TREND_SCALE as TREND_SCALE
from ._metrics import Counter as Counter
from ._metrics import Gauge as Gauge
from ._metrics import Metric as Metric
from ._metrics import MetricInterval as MetricInterval
from ._metrics import Rate as Rate
from ._metrics import Trend as Trend
from ._metrics import take_metrics as take_metrics
from ._observer import AbandonReason as AbandonReason
from ._observer import Observer as Observer
from ._observer import Observers as Observers
from ._outcome import RunMeta as RunMeta
from ._outcome import RunOutcome as RunOutcome
from ._policy import AddressPolicy as AddressPolicy
from ._redact import DEFAULT_REDACTED as DEFAULT_REDACTED
from ._redact import REDACTED as REDACTED
from ._redact import Redactor as Redactor
from ._result import PERCENTILES as PERCENTILES
from ._result import SCHEMA_VERSION as SCHEMA_VERSION
from ._result import ControlEvent as ControlEvent
from ._result import EndpointInterval as EndpointInterval
from ._result import EndpointSummary as EndpointSummary
from ._result import GeneratorHost as GeneratorHost
from ._result import GeneratorInterval as GeneratorInterval
from ._result import GeneratorSummary as GeneratorSummary
from ._result import IntervalSnapshot as IntervalSnapshot
from ._result import RunResult as RunResult
from ._result import StepSummary as StepSummary
from ._result import StopReason as StopReason
from ._serving import ThreadedHTTP as ThreadedHTTP
from ._slo import FAIL as FAIL
from ._slo import INCONCLUSIVE as INCONCLUSIVE
from ._slo import PASS as PASS
from ._slo import SCOPES as SCOPES
from ._slo import Objective as Objective
from ._slo import Outcome as Outcome
from ._slo import Verdict as Verdict
from ._slo import parse_objective as parse_objective
from ._summary import FaultSummary as FaultSummary
from ._summary import LoadSummary as LoadSummary
from ._summary import PlanSummary as PlanSummary
from ._summary import ProxySummary as ProxySummary
from ._summary import RequestSummary as RequestSummary
from ._summary import ShapeSummary as ShapeSummary
from ._summary import StageSummary as StageSummary
from ._summary import WorkloadSummary as WorkloadSummary
from ._target import BOTTLENECKS as BOTTLENECKS
from ._target import Bottleneck as Bottleneck
from ._target import MemoryGrowth as MemoryGrowth
from ._target import ProfileFunction as ProfileFunction
from ._target import ServedProcess as ServedProcess
from ._target import TargetCost as TargetCost
from ._target import TargetProfile as TargetProfile
from ._target import TargetReport as TargetReport
from ._target import TargetVerdict as TargetVerdict
from ._target import UseRow as UseRow
from ._target import WatchedThing as WatchedThing
from ._traces import Exemplar as Exemplar
from ._traces import Span as Span
from ._traces import SpanShare as SpanShare
from ._traces import TraceReport as TraceReport
from ._traces import Waterfall as Waterfall
from ._units import format_duration as format_duration
from ._units import parse_duration as parse_duration
from ._units import parse_rate as parse_rate
from ._units import parse_size as parse_size

__all__ = [
    "BOTTLENECKS",
    "COUNTS_LEN",
    "DEFAULT_REDACTED",
    "FAIL",
    "HIGHEST_US",
    "INCONCLUSIVE",
    "METRIC_KINDS",
    "PASS",
    "PERCENTILES",
    "PHASES",
    "REDACTED",
    "SCHEMA_VERSION",
    "SCOPES",
    "TREND_SCALE",
    "AbandonReason",
    "AddressPolicy",
    "BlockedError",
    "Bottleneck",
    "Closing",
    "ConnectError",
    "ConnectTimeoutError",
    "ControlEvent",
    "Counter",
    "DataExhaustedError",
    "EndpointInterval",
    "EndpointSummary",
    "Exemplar",
    "FaultSummary",
    "Gauge",
    "GeneratorHost",
    "GeneratorInterval",
    "GeneratorSummary",
    "Histogram",
    "IntervalSnapshot",
    "LoadSummary",
    "MemoryGrowth",
    "Metric",
    "MetricInterval",
    "Objective",
    "Observer",
    "Observers",
    "Outcome",
    "PlanError",
    "PlanSummary",
    "ProfileFunction",
    "ProtocolError",
    "ProxySummary",
    "Rate",
    "ReadTimeoutError",
    "Redactor",
    "RedlineError",
    "RequestSummary",
    "ResponseTooLargeError",
    "RunError",
    "RunMeta",
    "RunOutcome",
    "RunResult",
    "ServedProcess",
    "ShapeSummary",
    "Span",
    "SpanShare",
    "StageSummary",
    "StepSummary",
    "StopReason",
    "StoreError",
    "TargetCost",
    "TargetProfile",
    "TargetReport",
    "TargetVerdict",
    "ThreadedHTTP",
    "TraceReport",
    "TransportError",
    "Trend",
    "UseRow",
    "Verdict",
    "WatchedThing",
    "Waterfall",
    "WorkloadSummary",
    "bucket_indices",
    "bucket_values",
    "format_duration",
    "parse_duration",
    "parse_objective",
    "parse_rate",
    "parse_size",
    "take_metrics",
]
