"""One event shape for every strategy, and the listeners that turn events into metrics.

Every strategy has an ``events`` stream (:class:`Events`) named by the kind of strategy
and the instance (``"breaker"``, ``"payments"``). What they emit, by ``type``:

- ``call``: a call through the strategy ended; ``outcome`` is ``success``, ``failure``,
  ``timeout``, ``fallback`` or ``ignored``; ``seconds`` is its duration where the
  strategy timed it (the breaker times calls once someone listens).
- ``attempt``: a retry or a hedge; ``outcome`` is ``retry``, ``exhausted`` (no attempt
  left), ``budget_exhausted``, ``hedge`` or ``hedge_won``; ``value`` is the attempt
  number and ``seconds`` the backoff before it.
- ``rejection``: the strategy refused a call; ``outcome`` is the reason (``open``,
  ``forced_open``, ``full``, ``rate_limited``, ``limit``, ``throttled``, ``shed``).
- ``state``: the strategy changed state; ``outcome`` is the new one, ``previous`` the old
  (``peer`` is true when the change was adopted from another process).
- ``limit``: a limit moved; ``value`` is the new one.
- ``queue``: an offload worker looked at its queue; ``outcome`` names the gauge
  (``depth``, ``lag``, ``in_flight``, ``oldest_age_seconds``, ``dead_letters``) and
  ``value`` is its reading.
- ``job``: an offloaded job completed; ``seconds`` is the time from its enqueue.

A listener is a plain callable taking an :class:`Event`. With no listener attached an
emit costs one truth test, so a strategy nobody watches pays nothing for being watchable.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Event", "Events", "Listener", "listen", "unlisten"]


@dataclass(slots=True)
class Event:
    """Something a strategy did (see the module for the types and outcomes)."""

    strategy: str
    name: str
    type: str
    outcome: str
    seconds: float | None = None
    value: float | None = None
    previous: str | None = None
    peer: bool = False
    at: float = field(default_factory=time.time)


Listener = Callable[[Event], None]

_EVERYWHERE: list[Listener] = []  # listeners of every strategy, now and later
_STREAMS: weakref.WeakSet[Events] = weakref.WeakSet()


class Events:
    """A strategy's stream of events (``strategy.events``)."""

    __slots__ = ("__weakref__", "listeners", "name", "strategy")

    def __init__(self, strategy: str, name: str) -> None:
        """A stream for the instance ``name`` of a ``strategy``."""
        self.strategy = strategy
        self.name = name
        # one list, shared with the strategy's hot path: ``if listeners:`` is the cost
        self.listeners: list[Listener] = list(_EVERYWHERE)
        _STREAMS.add(self)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with each event of this strategy."""
        if listener not in self.listeners:
            self.listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        """Stop calling ``listener``."""
        if listener in self.listeners:
            self.listeners.remove(listener)

    def emit(
        self,
        type: str,
        outcome: str,
        *,
        seconds: float | None = None,
        value: float | None = None,
        previous: str | None = None,
        peer: bool = False,
    ) -> None:
        """Send an event to every listener (a listener's error is its own: not raised)."""
        if not self.listeners:
            return
        event = Event(self.strategy, self.name, type, outcome, seconds, value, previous, peer)
        for listener in tuple(self.listeners):
            try:
                listener(event)
            except Exception:  # a metrics bug must not fail the call it watches
                logging.getLogger(__name__).exception("listener %r failed on %s", listener, event)


def listen(listener: Listener) -> None:
    """Call ``listener`` with the events of every strategy, those made later included."""
    if listener in _EVERYWHERE:
        return
    _EVERYWHERE.append(listener)
    for stream in list(_STREAMS):
        stream.subscribe(listener)


def unlisten(listener: Listener) -> None:
    """Undo :func:`listen`."""
    if listener in _EVERYWHERE:
        _EVERYWHERE.remove(listener)
    for stream in list(_STREAMS):
        stream.unsubscribe(listener)
