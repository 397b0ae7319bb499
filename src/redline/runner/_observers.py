"""The observers the runner adds to every run: abort rules and the fault timeline."""

from __future__ import annotations

import contextlib
import logging

from redline.analysis import AbortMonitor, abort_window
from redline.core import IntervalSnapshot, Objective, PlanError, RunOutcome, RunResult, Verdict
from redline.engine import RunControl
from redline.faults import (
    DnsServer,
    FaultError,
    FaultProxy,
    FaultSchedule,
    HostContext,
    HostFaultError,
    ProxyError,
    RemoteProxies,
    ScheduledFault,
    Served,
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

    Enter it to start the proxies and check the host faults (a bad toxic, a proxy that
    cannot start, a host fault whose target is not ours or that lacks a permission is a
    :class:`PlanError` naming the plan's path, before any load); leave it to undo every
    fault still on, however the run ended. :meth:`undo` does that early (before the
    verdicts are read); :attr:`log` then says what each fault did.
    """

    def __init__(self, plan: Plan, *, served: Served | None = None) -> None:
        """Prepare ``plan``'s faults (``served``: the target of ``target: serve``)."""
        self.plan = plan
        self.served = served
        self.schedule: FaultSchedule | None = None
        self.log: list[dict[str, object]] = []
        self._stack = contextlib.ExitStack()

    @property
    def active(self) -> bool:
        """Whether the plan has any faults, proxies or a DNS server."""
        faults = self.plan.faults
        return bool(faults.schedule or faults.proxies or faults.dns)

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
            except HostFaultError as exc:
                raise self._host_error(index, fault.host_kind, exc) from None
        with self._stack:
            target: FaultProxy | RemoteProxies | None = None
            if spec.api is not None:
                target = RemoteProxies(spec.api)
            elif spec.proxies or any(f.host is None for f in faults):
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
            dns = getattr(self.served, "dns", None)
            if dns is None and spec.dns is not None:  # nothing served: a server of its own
                dns = self._stack.enter_context(DnsServer(spec.dns["records"]))
            self.schedule.host = HostContext(
                served=self.served,
                proxies=self.schedule.target,
                allow_host=spec.allow_host,
                dns=dns,
            )
            for index, (fault, scheduled) in enumerate(zip(spec.schedule, faults, strict=True)):
                if scheduled.host is not None:
                    try:
                        scheduled.host.check(self.schedule.host)
                    except HostFaultError as exc:
                        raise self._host_error(index, fault.host_kind, exc) from None
                    except FaultError as exc:
                        raise PlanError(
                            str(exc), source=self.plan.source, path=f"faults.schedule[{index}]"
                        ) from None
            self._stack = self._stack.pop_all()  # keep the proxies running past this block
        return self

    def _host_error(self, index: int, kind: str, exc: HostFaultError) -> PlanError:
        where = f"faults.schedule[{index}].{kind}" + (f".{exc.key}" if exc.key else "")
        return PlanError(str(exc), source=self.plan.source, path=where)

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
        self.log = schedule.log()
        for problem in schedule.errors:
            logger.warning("fault schedule: %s", problem)
