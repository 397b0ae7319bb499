"""The observers the runner adds to every run: abort rules and the fault timeline."""

from __future__ import annotations

import contextlib
import logging

from redline.analysis import AbortMonitor, abort_window
from redline.core import IntervalSnapshot, Objective, PlanError, RunOutcome, RunResult, Verdict
from redline.engine import RunControl
from redline.faults import (
    FaultProxy,
    FaultSchedule,
    ProxyError,
    RemoteProxies,
    ScheduledFault,
    ToxicError,
)
from redline.plan import Plan

__all__ = ["AbortRules", "FaultTimeline"]

logger = logging.getLogger("redline")


class AbortRules:
    """Stops the run as soon as an objective marked ``abort: true`` is clearly breached.

    Add it after the observers that must see the breaching interval too: the runner
    does. The breach (objective, window verdict, time) is kept for the final verdicts.
    """

    def __init__(self, plan: Plan, control: RunControl) -> None:
        """Watch ``plan``'s abort rules over a tenth of its duration; stop ``control``."""
        self.monitor = AbortMonitor(plan.slos, window_s=abort_window(plan.duration))
        self.control = control

    @property
    def breach(self) -> tuple[Objective, Verdict, float] | None:
        """The first breach, if there was one."""
        return self.monitor.breach

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """Judge one interval; abort the run on a breach."""
        if not self.monitor.rules:
            return
        reason = self.monitor(interval)
        if reason is not None:
            self.control.abort(reason)


class FaultTimeline:
    """A plan's ``faults:``: its proxies started, its schedule applied from the load's start.

    Enter it to start the proxies (a bad toxic or a proxy that cannot start is a
    :class:`PlanError` naming the plan's path); leave it to undo every fault still on,
    however the run ended. :meth:`undo` does that early (before the verdicts are read).
    """

    def __init__(self, plan: Plan) -> None:
        """Prepare ``plan``'s faults; nothing happens before the block is entered."""
        self.plan = plan
        self.schedule: FaultSchedule | None = None
        self._stack = contextlib.ExitStack()

    @property
    def active(self) -> bool:
        """Whether the plan has any faults or proxies."""
        return bool(self.plan.faults.schedule or self.plan.faults.proxies)

    def __enter__(self) -> FaultTimeline:
        if not self.active:
            return self
        spec = self.plan.faults
        faults = []
        for index, fault in enumerate(spec.schedule):
            try:
                faults.append(ScheduledFault.of(fault.to_dict()))
            except ToxicError as exc:
                raise PlanError(
                    str(exc), source=self.plan.source, path=f"faults.schedule[{index}].toxic"
                ) from None
        with self._stack:
            target: FaultProxy | RemoteProxies
            if spec.api is not None:
                target = RemoteProxies(spec.api)
            else:
                target = self._stack.enter_context(FaultProxy(port=None).running())
                for index, proxy in enumerate(spec.proxies):
                    try:
                        made = target.call(
                            target.create(proxy.name, proxy.listen, proxy.upstream, http=proxy.http)
                        )
                    except ProxyError as exc:
                        raise PlanError(
                            str(exc), source=self.plan.source, path=f"faults.proxies[{index}]"
                        ) from None
                    logger.info("fault proxy %s on %s -> %s", made.name, made.listen, made.upstream)
            self.schedule = FaultSchedule(faults, target)
            self._stack = self._stack.pop_all()  # keep the proxies running past this block
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._stack:
            self.undo()

    def on_start(self, run: RunResult) -> None:
        """Start the schedule's clock with the load."""
        if self.schedule is not None:
            self.schedule.start(run)

    def on_finish(self, outcome: RunOutcome) -> None:
        """Undo what is still on (the runner has done so before judging, normally)."""
        self.undo()

    def undo(self) -> None:
        """Undo every fault still on and report what could not be done; idempotent."""
        if self.schedule is None:
            return
        schedule, self.schedule = self.schedule, None
        schedule.stop()
        for problem in schedule.errors:
            logger.warning("fault schedule: %s", problem)
