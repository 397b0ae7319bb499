"""Events into metrics, one naming scheme for every strategy and every backend.

=========================================  =========  ===================================
metric (Prometheus name)                   kind       labels
=========================================  =========  ===================================
redline_resilience_calls_total             counter    strategy, name, outcome
redline_resilience_call_duration_seconds   histogram  strategy, name
redline_resilience_attempts_total          counter    strategy, name, outcome
redline_resilience_backoff_seconds         histogram  strategy, name
redline_resilience_rejections_total        counter    strategy, name, reason
redline_resilience_transitions_total       counter    strategy, name, from_state, to_state
redline_resilience_state                   gauge      strategy, name, state (1: current)
redline_resilience_limit                   gauge      strategy, name
redline_resilience_batch_size              histogram  strategy, name
redline_resilience_queue_depth             gauge      strategy, name (jobs not yet done)
redline_resilience_queue_lag               gauge      strategy, name (not yet delivered)
redline_resilience_queue_in_flight         gauge      strategy, name (delivered, unacked)
redline_resilience_queue_oldest_age_seconds gauge     strategy, name
redline_resilience_queue_dead_letters      gauge      strategy, name
redline_resilience_job_latency_seconds     histogram  strategy, name (enqueued to done)
=========================================  =========  ===================================

The queue gauges come from an offload worker's periodic look at its queue (a ``queue``
event per gauge); ``queue_lag`` or ``queue_depth`` is what a KEDA Prometheus scaler
scales consumers on.

The duration of a call through the pipeline is the pipeline's ``call_duration``; the
duration of each attempt is that of the strategy inside the retry (the breaker's, in a
pipeline of retry then breaker). The backends (:mod:`redline.resilience.prometheus`,
:mod:`redline.resilience.otel`) subclass :class:`MetricsListener`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ._events import Event, Events, listen

__all__ = ["FAMILIES", "MetricsListener"]

# family: (kind, help, label names beyond strategy and name)
FAMILIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "calls": ("counter", "Calls through a strategy, by outcome", ("outcome",)),
    "call_duration_seconds": ("histogram", "Duration of calls through a strategy", ()),
    "attempts": ("counter", "Retries and hedges, by outcome", ("outcome",)),
    "backoff_seconds": ("histogram", "Wait before a retry or a hedge", ()),
    "rejections": ("counter", "Calls a strategy refused, by reason", ("reason",)),
    "transitions": ("counter", "State changes", ("from_state", "to_state")),
    "state": ("gauge", "1 for the state a strategy is in, 0 for the others", ("state",)),
    "limit": ("gauge", "A strategy's current limit (calls in flight, or a rate)", ()),
    "batch_size": ("histogram", "Items per batch a batcher flushed", ()),
    "queue_depth": ("gauge", "Jobs enqueued and not yet done (ready, delayed, in flight)", ()),
    "queue_lag": ("gauge", "Jobs enqueued and not yet delivered to a consumer", ()),
    "queue_in_flight": ("gauge", "Jobs delivered to a consumer and not yet acknowledged", ()),
    "queue_oldest_age_seconds": ("gauge", "Age of the oldest job not yet done", ()),
    "queue_dead_letters": ("gauge", "Jobs in the dead-letter queue", ()),
    "job_latency_seconds": ("histogram", "From a job's enqueue to its completion", ()),
}

_QUEUE_GAUGES = frozenset(
    ("queue_depth", "queue_lag", "queue_in_flight", "queue_oldest_age_seconds",
     "queue_dead_letters")
)  # fmt: skip


class MetricsListener(ABC):
    """An event listener that keeps the metrics above (a backend fills in three methods).

    Labels travel as a tuple of values in the order of the family's label names
    (``strategy``, ``name``, then the family's own), so a backend can keep each labelled
    child in a dict: an event costs a few dict lookups, not a label validation.
    """

    @abstractmethod
    def _add(self, family: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """Add to a counter."""

    @abstractmethod
    def _observe(self, family: str, labels: tuple[str, ...], value: float) -> None:
        """Record a value in a histogram."""

    @abstractmethod
    def _set(self, family: str, labels: tuple[str, ...], value: float) -> None:
        """Set a gauge."""

    def __call__(self, event: Event) -> None:
        """Turn one event into metrics."""
        strategy, name, kind = event.strategy, event.name, event.type
        if kind == "call":
            self._add("calls", (strategy, name, event.outcome))
            if event.seconds is not None:
                self._observe("call_duration_seconds", (strategy, name), event.seconds)
        elif kind == "attempt":
            self._add("attempts", (strategy, name, event.outcome))
            if event.seconds is not None:
                self._observe("backoff_seconds", (strategy, name), event.seconds)
        elif kind == "rejection":
            self._add("rejections", (strategy, name, event.outcome))
        elif kind == "state":
            if event.previous is not None:
                self._set("state", (strategy, name, event.previous), 0)
                self._add("transitions", (strategy, name, event.previous, event.outcome))
            self._set("state", (strategy, name, event.outcome), 1)
        elif kind == "limit" and event.value is not None:
            self._set("limit", (strategy, name), event.value)
        elif kind == "queue" and event.value is not None:
            family = "queue_" + event.outcome
            if family in _QUEUE_GAUGES:
                self._set(family, (strategy, name), event.value)
        elif kind == "job" and event.seconds is not None:
            self._observe("job_latency_seconds", (strategy, name), event.seconds)
        if kind == "call" and strategy == "batcher" and event.value is not None:
            self._observe("batch_size", (strategy, name), event.value)

    def watch(self, *strategies: object) -> None:
        """Keep metrics for ``strategies`` (none given: every strategy, now and later).

        Each one's state and limit are recorded at once, not only at their next change.
        """
        if not strategies:
            listen(self)
            return
        for strategy in strategies:
            events = getattr(strategy, "events", None)
            if not isinstance(events, Events):
                raise TypeError(f"{strategy!r} is not a redline.resilience strategy")
            events.subscribe(self)
            who = (events.strategy, events.name)
            state = _state_of(strategy)
            if state is not None:
                self._set("state", (*who, state), 1)
            limit = _limit_of(strategy)
            if limit is not None:
                self._set("limit", who, limit)


def _state_of(strategy: object) -> str | None:
    state = getattr(strategy, "state", None)
    if isinstance(state, str):
        return state
    overloaded = getattr(strategy, "overloaded", None)
    if isinstance(overloaded, bool):
        return "overloaded" if overloaded else "normal"
    return None


def _limit_of(strategy: object) -> float | None:
    for attribute in ("current", "max_concurrent", "rate"):
        value = getattr(strategy, attribute, None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None
