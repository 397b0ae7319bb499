"""A plan's ``observe:`` made real: the served target, the samplers, the profile.

:func:`serving` starts the plan's ``--serve`` command (or nothing) and always stops it;
:func:`watcher_for` builds the observer that watches one run of it. ``find`` serves once
and watches every step; ``run`` does both for its one run.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil

from redline.analysis import judge_target
from redline.core import RunResult, TargetReport
from redline.faults import DnsServer, resolv_conf_argv
from redline.observe import (
    CgroupSampler,
    HostSampler,
    ProcessSampler,
    ProfileRequest,
    PrometheusSampler,
    Sampler,
    ServedTarget,
    TargetWatcher,
)
from redline.plan import Plan

__all__ = ["judged", "serving", "watcher_for"]


@contextlib.contextmanager
def serving(plan: Plan) -> Iterator[ServedTarget | None]:
    """Start the plan's served target and wait until its target answers; stop it after.

    Yields ``None`` when the plan serves nothing.

    Raises:
        WatchError: it exits at once or never answers (the message has its last output).
    """
    spec = plan.observe.serve
    if spec is None:
        yield None
        return
    with contextlib.ExitStack() as stack:
        argv = list(spec.argv)
        dns = None
        if plan.faults.dns is not None:
            # the target resolves through the run's DNS server, which its dns: faults switch
            dns = stack.enter_context(DnsServer(plan.faults.dns["records"]))
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="redline-")))
            argv = resolv_conf_argv(argv, dns, folder)
        served = ServedTarget(
            argv,
            command=spec.command,
            cpus=spec.cpu_list,
            cpu_limit=spec.cpu_limit,
            memory_limit=spec.memory_limit,
            grace_s=spec.grace_s,
        )
        served.dns = dns
        served.start()
        try:
            served.wait_ready(plan.target, timeout_s=spec.ready_timeout_s)
            yield served
        finally:
            served.stop()


def _sampler(kind: str, value: str) -> Sampler:
    if kind == "pid":
        return ProcessSampler(int(value))
    if kind == "cgroup":
        return CgroupSampler(value)
    if kind == "prometheus":
        return PrometheusSampler(value)
    return HostSampler()


def _python_pid(samplers: list[Sampler]) -> int | None:
    for sampler in samplers:
        if isinstance(sampler, ProcessSampler) and sampler.thing.python:
            return sampler.pid
        if isinstance(sampler, CgroupSampler):
            for pid in sampler.cgroup.pids():
                with contextlib.suppress(psutil.Error):
                    if psutil.Process(pid).name().startswith(("python", "uvicorn", "gunicorn")):
                        return pid
    return None


def watcher_for(plan: Plan, served: ServedTarget | None) -> TargetWatcher | None:
    """The observer that watches ``plan``'s target over one run, or ``None`` if nothing is.

    Raises:
        WatchError: a watched PID does not exist, or a cgroup path is not one.
    """
    observe = plan.observe
    if served is None and not observe.watch:
        return None
    samplers: list[Sampler] = []
    notes: list[str] = []
    if served is not None:
        samplers.append(ProcessSampler(served.pid, name="serve"))
        if served.sandbox is not None:
            samplers.append(CgroupSampler(served.sandbox.reader(), name="serve-cgroup"))
    for spec in observe.watch:
        samplers.append(_sampler(spec.kind, spec.value))
    profile = None
    if observe.profile is not None:
        pid = served.pid if served is not None else _python_pid(samplers)
        if pid is None:
            notes.append("no profile: no watched process is a Python one")
        else:
            profile = ProfileRequest(
                pid,
                rate_hz=observe.profile.rate_hz,
                idle=observe.profile.idle,
                gil=observe.profile.gil,
            )
    return TargetWatcher(
        samplers,
        profile=profile,
        served=served,
        warmup_s=plan.warmup,
        duration_s=plan.duration + plan.warmup,
        notes=notes,
    )


def judged(plan: Plan, result: RunResult, watcher: TargetWatcher) -> TargetReport:
    """What ``watcher`` saw of the run, with its bottleneck, memory trend and cost."""
    cost = plan.cost
    return judge_target(
        result,
        watcher.report(result),
        vcpu_hour=cost.vcpu_hour if cost is not None else None,
        gib_hour=cost.gib_hour if cost is not None else None,
    )
