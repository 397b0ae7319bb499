"""Strategies for services: breakers, retry budgets, deadlines, limits, batching, offload.

Usable in any asyncio service without the rest of redline: the package imports only the
standard library; its optional modules import their library (``prometheus``:
prometheus-client, ``otel``: opentelemetry-api, ``redis``: redis-py, ``httpx``: httpx)::

    from redline.resilience import CircuitBreaker, Retry, RetryBudget, deadline

    payments = CircuitBreaker(name="payments", failure_rate=0.5, minimum_calls=20)
    retry = Retry(attempts=3, budget=RetryBudget())

    async with deadline(2.0):
        receipt = await retry.call(payments.call, charge, order)
"""

from ._adaptive import ALGORITHMS as ALGORITHMS
from ._adaptive import AdaptiveLimiter as AdaptiveLimiter
from ._adaptive import LimitExceeded as LimitExceeded
from ._adaptive import LimitExceededError as LimitExceededError
from ._adaptive import Permit as Permit
from ._asgi import AdmissionMiddleware as AdmissionMiddleware
from ._asgi import KeyedLimiter as KeyedLimiter
from ._asgi import client_key as client_key
from ._asgi import header_key as header_key
from ._batch import Batcher as Batcher
from ._batch import BatcherFull as BatcherFull
from ._batch import BatcherFullError as BatcherFullError
from ._batch import BatchError as BatchError
from ._batch import Loader as Loader
from ._breaker import CLOSED as CLOSED
from ._breaker import DISABLED as DISABLED
from ._breaker import FORCED_OPEN as FORCED_OPEN
from ._breaker import HALF_OPEN as HALF_OPEN
from ._breaker import METRICS_ONLY as METRICS_ONLY
from ._breaker import OPEN as OPEN
from ._breaker import BreakerOpen as BreakerOpen
from ._breaker import CircuitBreaker as CircuitBreaker
from ._breaker import CircuitOpenError as CircuitOpenError
from ._deadline import DEADLINE_HEADER as DEADLINE_HEADER
from ._deadline import DeadlineExceeded as DeadlineExceeded
from ._deadline import DeadlineExceededError as DeadlineExceededError
from ._deadline import deadline as deadline
from ._deadline import deadline_from_headers as deadline_from_headers
from ._deadline import headers as headers
from ._deadline import remaining as remaining
from ._deadline import within_deadline as within_deadline
from ._errors import ResilienceError as ResilienceError
from ._events import Event as Event
from ._events import Events as Events
from ._events import listen as listen
from ._events import unlisten as unlisten
from ._hedge import Hedge as Hedge
from ._limits import Bulkhead as Bulkhead
from ._limits import BulkheadFull as BulkheadFull
from ._limits import BulkheadFullError as BulkheadFullError
from ._limits import RateLimited as RateLimited
from ._limits import RateLimitedError as RateLimitedError
from ._limits import RateLimiter as RateLimiter
from ._metrics import MetricsListener as MetricsListener
from ._offload import DeadJob as DeadJob
from ._offload import Delivery as Delivery
from ._offload import Idempotency as Idempotency
from ._offload import Job as Job
from ._offload import MemoryIdempotency as MemoryIdempotency
from ._offload import MemoryQueue as MemoryQueue
from ._offload import Offload as Offload
from ._offload import OffloadWorker as OffloadWorker
from ._offload import QueueBackend as QueueBackend
from ._offload import QueueStats as QueueStats
from ._offload import QueueUnavailableError as QueueUnavailableError
from ._pipeline import Fallback as Fallback
from ._pipeline import Pipeline as Pipeline
from ._pipeline import Strategy as Strategy
from ._pipeline import Timeout as Timeout
from ._retry import AdaptiveThrottle as AdaptiveThrottle
from ._retry import Retry as Retry
from ._retry import RetryBudget as RetryBudget
from ._retry import Throttled as Throttled
from ._retry import ThrottledError as ThrottledError
from ._retry import retry_after as retry_after
from ._shedder import LoadShedder as LoadShedder
from ._shedder import Shed as Shed
from ._shedder import ShedderStatistics as ShedderStatistics
from ._shedder import ShedError as ShedError

__all__ = [
    "ALGORITHMS",
    "CLOSED",
    "DEADLINE_HEADER",
    "DISABLED",
    "FORCED_OPEN",
    "HALF_OPEN",
    "METRICS_ONLY",
    "OPEN",
    "AdaptiveLimiter",
    "AdaptiveThrottle",
    "AdmissionMiddleware",
    "BatchError",
    "Batcher",
    "BatcherFull",
    "BatcherFullError",
    "BreakerOpen",
    "Bulkhead",
    "BulkheadFull",
    "BulkheadFullError",
    "CircuitBreaker",
    "CircuitOpenError",
    "DeadJob",
    "DeadlineExceeded",
    "DeadlineExceededError",
    "Delivery",
    "Event",
    "Events",
    "Fallback",
    "Hedge",
    "Idempotency",
    "Job",
    "KeyedLimiter",
    "LimitExceeded",
    "LimitExceededError",
    "LoadShedder",
    "Loader",
    "MemoryIdempotency",
    "MemoryQueue",
    "MetricsListener",
    "Offload",
    "OffloadWorker",
    "Permit",
    "Pipeline",
    "QueueBackend",
    "QueueStats",
    "QueueUnavailableError",
    "RateLimited",
    "RateLimitedError",
    "RateLimiter",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "Shed",
    "ShedError",
    "ShedderStatistics",
    "Strategy",
    "Throttled",
    "ThrottledError",
    "Timeout",
    "client_key",
    "deadline",
    "deadline_from_headers",
    "header_key",
    "headers",
    "listen",
    "remaining",
    "retry_after",
    "unlisten",
    "within_deadline",
]
