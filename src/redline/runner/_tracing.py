"""A plan's ``trace:`` made real: the OTLP receiver during the run, the join after it."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator

from redline.analysis import trace_report
from redline.core import RunResult, TraceReport
from redline.http import parse_address
from redline.observe import OtlpReceiver
from redline.plan import Plan

__all__ = ["receiving", "traced"]

logger = logging.getLogger("redline")


@contextlib.contextmanager
def receiving(plan: Plan) -> Iterator[OtlpReceiver | None]:
    """An OTLP receiver on the plan's ``trace.otlp`` address while the block runs.

    Raises:
        WatchError: the address cannot be listened on.
    """
    trace = plan.trace
    if not trace.enabled or trace.otlp is None:
        yield None
        return
    host, port = parse_address(trace.otlp, default_host="127.0.0.1")
    receiver = OtlpReceiver(host, port)
    with receiver.running():
        logger.info("receiving spans at %s (OTLP/HTTP)", receiver.endpoint)
        yield receiver


def _settle(receiver: OtlpReceiver, wait_s: float) -> None:
    """Wait for spans still on their way: until none came for a second, or ``wait_s``."""
    deadline = time.monotonic() + wait_s
    last = receiver.counts()["received"]
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = receiver.counts()["received"]
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= 1.0 and now:
            return


def traced(plan: Plan, result: RunResult, receiver: OtlpReceiver | None) -> TraceReport | None:
    """The run's traced requests joined with the spans received (``None``: not traced)."""
    if not plan.trace.enabled:
        return None
    if receiver is None:  # the target exports elsewhere: the trace ids are the join
        return trace_report(result, result.exemplars, {})
    _settle(receiver, plan.trace.wait_s)
    return trace_report(result, result.exemplars, receiver.spans(), counts=receiver.counts())
