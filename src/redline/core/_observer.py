"""The observer protocol: how anything watches a run without the run knowing it.

An observer is any object with some of ``on_start``, ``on_interval``, ``on_finish`` and
``on_abandon``. The store recorder, the live view, the dashboard, the Prometheus exporter,
the abort rules and the fault timeline are observers, and so is anything a user writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Literal, Protocol

from ._result import IntervalSnapshot, RunResult

if TYPE_CHECKING:
    from ._outcome import RunOutcome

__all__ = ["AbandonReason", "Observer", "Observers"]

AbandonReason = Literal["interrupted", "crashed"]
"""Why a run ended without a result: a second Ctrl-C, or a crash."""


class Observer(Protocol):
    """What a run tells the objects that watch it; every method is optional.

    Methods are called in the thread that runs the load, in the order the observers were
    given; an interval reaches every observer before the next one is merged, so an
    observer must be quick (a second of load per interval is the budget of them all).
    An exception raised by an observer ends the run (it is a bug, not a measurement).
    """

    def on_start(self, run: RunResult) -> None:
        """The load has started: ``run`` has its id and start time, no intervals yet."""

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """One interval (a second, merged over every worker) has completed."""

    def on_finish(self, outcome: RunOutcome) -> None:
        """The run has ended with a result and has been judged."""

    def on_abandon(self, reason: AbandonReason) -> None:
        """The run ended without a result (a second Ctrl-C, a crash)."""


class Observers:
    """Several observers seen as one: each call goes to those that have the method."""

    def __init__(self, observers: Iterable[object] = ()) -> None:
        """Fan out to ``observers``, in their order."""
        self._observers = list(observers)

    def add(self, observer: object, *, first: bool = False) -> None:
        """Watch with ``observer`` too (``first``: before the others)."""
        if first:
            self._observers.insert(0, observer)
        else:
            self._observers.append(observer)

    def __iter__(self) -> Iterator[object]:
        return iter(self._observers)

    def __len__(self) -> int:
        return len(self._observers)

    def _methods(self, name: str) -> list[Callable[..., object]]:
        return [m for o in self._observers if callable(m := getattr(o, name, None))]

    def on_start(self, run: RunResult) -> None:
        """Tell each observer that the load has started."""
        for method in self._methods("on_start"):
            method(run)

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """Hand each observer an interval."""
        for method in self._methods("on_interval"):
            method(interval)

    def on_finish(self, outcome: RunOutcome) -> None:
        """Hand each observer the judged outcome."""
        for method in self._methods("on_finish"):
            method(outcome)

    def on_abandon(self, reason: AbandonReason) -> None:
        """Tell each observer that the run ended without a result."""
        for method in self._methods("on_abandon"):
            method(reason)
