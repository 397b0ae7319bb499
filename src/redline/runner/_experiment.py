"""A chaos experiment, Chaos Toolkit style, judged by SLOs: hypothesis, method, rollbacks.

The steady-state hypothesis (objectives on a short probe run) is checked before the
method; if it does not hold then, there is nothing to learn and the method is not run.
The method's actions run in order (faults, load, pauses), the hypothesis is checked again
with the faults still on, and the rollbacks run last, always: after a failure, a crash
or Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from redline.analysis import evaluate, step_holds
from redline.core import Objective, PlanError, RunError, Verdict
from redline.engine import RunControl
from redline.faults import (
    FaultError,
    FaultProxy,
    HostContext,
    HostFault,
    LocalProxies,
    ProxyControl,
    RemoteProxies,
    host_fault,
)
from redline.plan import Action, Experiment, load_experiment, load_plan

from ._run import async_form, run

__all__ = ["ExperimentStatus", "Journal", "Probe", "experiment", "experiment_async"]

logger = logging.getLogger("redline")

ExperimentStatus = Literal["running", "completed", "deviated", "aborted", "interrupted", "failed"]
"""How an experiment ended: ``completed`` (the hypothesis held after the method),
``deviated`` (it did not), ``aborted`` (it did not hold before: the method never ran),
``interrupted`` (Ctrl-C), ``failed`` (a run could not be carried out)."""


@dataclass(frozen=True)
class Probe:
    """One check of the steady-state hypothesis: its run and verdicts."""

    when: Literal["before", "after"]
    holds: bool
    run: str
    verdicts: tuple[Verdict, ...]

    def to_dict(self) -> dict[str, Any]:
        """The journal's JSON form."""
        return {
            "holds": self.holds,
            "run": self.run,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


@dataclass
class Journal:
    """What an experiment did, as it happens (the ``--out`` document is :meth:`to_dict`)."""

    title: str
    started_at: str
    status: ExperimentStatus = "running"
    before: Probe | None = None
    after: Probe | None = None
    method: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def held(self) -> bool:
        """Whether the hypothesis held after the method."""
        return self.status == "completed"

    def to_dict(self) -> dict[str, Any]:
        """The JSON journal."""
        out: dict[str, Any] = {
            "title": self.title,
            "started_at": self.started_at,
            "method": self.method,
            "rollbacks": self.rollbacks,
            "status": self.status,
        }
        if self.before is not None:
            out["before"] = self.before.to_dict()
        if self.after is not None:
            out["after"] = self.after.to_dict()
        if self.error is not None:
            out["error"] = self.error
        return out


@contextlib.contextmanager
def _proxies(spec: Experiment) -> Iterator[ProxyControl]:
    if spec.api is not None:
        yield RemoteProxies(spec.api)
        return
    faults = FaultProxy(port=None)
    with faults.running():
        for proxy in spec.proxies:
            made = faults.call(
                faults.create(proxy.name, proxy.listen, proxy.upstream, http=proxy.http)
            )
            logger.info("proxy %s on %s -> %s", made.name, made.listen, made.upstream)
        yield LocalProxies(faults)


class _Steps:
    """Probes and actions of one experiment."""

    def __init__(self, spec: Experiment, control: RunControl) -> None:
        self.spec = spec
        self.control = control
        plan = load_plan(spec.plan)
        objectives: Sequence[Objective] = spec.objectives or plan.slos
        if not objectives:
            raise PlanError(
                "the steady-state hypothesis needs objectives: give steady-state.slo or a "
                "plan with an slo: section",
                source=spec.source,
                path="steady-state",
            )
        self.objectives = tuple(objectives)
        self.host_faults: list[tuple[HostFault, threading.Timer]] = []
        self.started = time.monotonic()
        self.allow_host = False
        self._lock = threading.Lock()

    def probe(self, when: Literal["before", "after"]) -> Probe:
        plan = load_plan(self.spec.plan, overrides={"duration": f"{self.spec.probe_s}s"})
        outcome = run(plan, control=self.control.child())
        # the hypothesis' own objectives, which may differ from the plan's
        verdicts = tuple(evaluate(outcome.result, self.objectives))
        return Probe(when, step_holds(verdicts), outcome.result.id, verdicts)

    def act(self, control: ProxyControl, action: Action) -> dict[str, Any]:
        started = time.monotonic()
        entry: dict[str, Any] = {
            "action": action.kind,
            "what": action.describe(),
            "at_s": round(started - self.started, 3),
        }
        try:
            if action.kind == "toxic":
                control.add_toxic(action.proxy, action.toxic)
            elif action.kind == "remove":
                control.remove_toxic(action.proxy, action.name)
            elif action.kind in ("down", "up"):
                control.set_enabled(action.proxy, action.kind == "up")
            elif action.kind == "reset":
                control.reset()
            elif action.kind == "pause":
                self.control.wait(action.seconds)  # a stop (Ctrl-C) ends the pause
            elif action.kind == "fault":
                entry.update(self._fault(control, action))
            else:
                assert action.plan is not None
                plan = load_plan(action.plan, overrides={"duration": f"{action.seconds}s"})
                result = run(plan, control=self.control.child()).result
                entry["run"] = result.id
                entry["requests"] = result.total().requests
                entry["error_rate"] = result.total().error_rate
            entry["ok"] = True
        except (FaultError, RunError, PlanError, ValueError, OSError) as exc:
            entry["ok"] = False
            entry["error"] = str(exc)
        entry["seconds"] = round(time.monotonic() - started, 3)
        return entry

    def _fault(self, control: ProxyControl, action: Action) -> dict[str, Any]:
        """Apply a host fault now (or ``delay`` from now); undo it ``seconds`` later."""
        fault = host_fault(
            action.name, action.host_kind, action.host, for_s=action.seconds + action.delay
        )
        context = HostContext(proxies=control, allow_host=self.allow_host)
        fault.check(context)  # its target and permissions, before anything is done
        if action.delay:
            self.control.wait(action.delay)
        fault.apply(context)
        timer = threading.Timer(action.seconds, self._undo, args=(fault,))
        timer.daemon = True
        with self._lock:
            self.host_faults.append((fault, timer))
        timer.start()
        return {"via": fault.via, "detail": fault.detail, "for_s": action.seconds}

    def _undo(self, fault: HostFault) -> None:
        for problem in fault.undo():
            logger.warning("experiment: %s", problem)

    def undo_faults(self) -> None:
        """Undo every host fault still on (the end of the experiment, whatever happened)."""
        with self._lock:
            pending, self.host_faults = self.host_faults, []
        for fault, timer in pending:
            timer.cancel()
            self._undo(fault)


def experiment(
    spec: Experiment | str | Path,
    *,
    on_probe: Callable[[Probe], None] | None = None,
    on_action: Callable[[str, dict[str, Any]], None] | None = None,
    control: RunControl | None = None,
    allow_host_faults: bool = False,
) -> Journal:
    """Run a chaos experiment and return its journal; the rollbacks always run.

    Args:
        spec: the experiment, or its file.
        on_probe: called with each check of the hypothesis as it ends.
        on_action: called with ``"method"`` or ``"rollbacks"`` and each action's journal
            entry as it ends.
        control: stop the experiment (the current run stops; the rollbacks still run).
        allow_host_faults: let network and disk faults act on the host's own interfaces
            and root file system (``--allow-host-faults``).

    Returns:
        the journal; its ``status`` says how the experiment ended.

    Raises:
        PlanError: the experiment or its plan is not valid.
        ProxyError: its proxies could not be started or reached.
        KeyboardInterrupt: a second Ctrl-C (the rollbacks ran first).
    """
    if not isinstance(spec, Experiment):
        spec = load_experiment(spec)
    control = control or RunControl()
    steps = _Steps(spec, control)
    steps.allow_host = allow_host_faults
    journal = Journal(spec.title, datetime.now(UTC).isoformat(timespec="seconds"))

    def probe(when: Literal["before", "after"]) -> Probe:
        found = steps.probe(when)
        if on_probe is not None:
            on_probe(found)
        return found

    def act(part: Literal["method", "rollbacks"], proxies: ProxyControl, action: Action) -> None:
        entry = steps.act(proxies, action)
        getattr(journal, part).append(entry)
        if on_action is not None:
            on_action(part, entry)

    with _proxies(spec) as proxies:
        try:
            journal.before = probe("before")
            if not control.stopped and not journal.before.holds:
                journal.status = "aborted"
            else:
                for action in spec.method:
                    if control.stopped:
                        break
                    act("method", proxies, action)
                if not control.stopped:
                    journal.after = probe("after")
                    journal.status = "completed" if journal.after.holds else "deviated"
            if control.stopped:
                journal.status = "interrupted"
        except KeyboardInterrupt:
            journal.status = "interrupted"
        except RunError as exc:
            journal.status = "failed"
            journal.error = str(exc)
        finally:
            steps.undo_faults()
            for action in spec.rollbacks:
                act("rollbacks", proxies, action)
            steps.undo_faults()  # a rollback may have made one too
    return journal


experiment_async = async_form(experiment)
