"""``redline experiment FILE``: a chaos experiment, Chaos Toolkit style, judged by SLOs.

The steady-state hypothesis (objectives on a short probe run) is checked before the
method; if it does not hold then, there is nothing to learn and the method is not run.
The method's actions run in order (faults, load, pauses), the hypothesis is checked again
with the faults still on, and the rollbacks run last, always: after a failure, a crash
or Ctrl-C too. Exit code 0 when the hypothesis held afterwards, 1 when it did not (or did
not hold before), 2 for a bad file, 130 when interrupted (rollbacks done).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from redline.analysis import evaluate, step_holds
from redline.core import Objective, PlanError, RunError
from redline.engine import run_plan
from redline.faults import FaultProxy, LocalProxies, ProxyControl, ProxyError, RemoteProxies
from redline.plan import Action, Experiment, load_experiment, load_plan

from . import _exit
from ._console import emit, error, stdout_console

__all__ = ["add_experiment_parser"]


def add_experiment_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline experiment``."""
    parser = subparsers.add_parser(
        "experiment",
        help="run a chaos experiment: hypothesis, method, rollbacks",
        description="Check a steady-state hypothesis (SLO objectives on a probe run), run "
        "a method of faults and load, check the hypothesis again, and always roll back.",
    )
    parser.add_argument("file", type=Path, help="the experiment (YAML)")
    parser.add_argument("--out", type=Path, help="write the journal (JSON) here")
    parser.set_defaults(handler=experiment_command)


@contextlib.contextmanager
def _proxies(experiment: Experiment, console: Console) -> Iterator[ProxyControl]:
    if experiment.api is not None:
        yield RemoteProxies(experiment.api)
        return
    faults = FaultProxy(port=None)
    with faults.running():
        for spec in experiment.proxies:
            made = faults.call(faults.create(spec.name, spec.listen, spec.upstream, http=spec.http))
            console.print(f"proxy {made.name} on {made.listen} -> {made.upstream}", highlight=False)
        yield LocalProxies(faults)


class _Runner:
    def __init__(self, experiment: Experiment, console: Console) -> None:
        self.experiment = experiment
        self.console = console
        self.plan = load_plan(experiment.plan)
        objectives: Sequence[Objective] = experiment.objectives or self.plan.slos
        if not objectives:
            raise PlanError(
                "the steady-state hypothesis needs objectives: give steady-state.slo or a "
                "plan with an slo: section",
                source=experiment.source,
                path="steady-state",
            )
        self.objectives = tuple(objectives)

    def probe(self, when: str) -> dict[str, Any]:
        plan = load_plan(
            self.experiment.plan, overrides={"duration": f"{self.experiment.probe_s}s"}
        )
        result = run_plan(plan)
        verdicts = evaluate(result, self.objectives)
        holds = step_holds(verdicts)
        mark = "[green]holds[/]" if holds else "[red]does not hold[/]"
        self.console.print(f"steady state {when}: {mark}")
        for verdict in verdicts:
            self.console.print(f"  {verdict.reason}", highlight=False)
        return {"holds": holds, "run": result.id, "verdicts": [v.to_dict() for v in verdicts]}

    def act(self, control: ProxyControl, action: Action) -> dict[str, Any]:
        started = time.monotonic()
        entry: dict[str, Any] = {"action": action.kind, "what": action.describe()}
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
                time.sleep(action.seconds)
            else:
                assert action.plan is not None
                plan = load_plan(action.plan, overrides={"duration": f"{action.seconds}s"})
                result = run_plan(plan)
                entry["run"] = result.id
                entry["requests"] = result.total().requests
                entry["error_rate"] = result.total().error_rate
            entry["ok"] = True
        except (ProxyError, RunError, PlanError, ValueError) as exc:
            entry["ok"] = False
            entry["error"] = str(exc)
        entry["seconds"] = round(time.monotonic() - started, 3)
        mark = "" if entry["ok"] else f"  [red]failed: {entry['error']}[/]"
        self.console.print(f"  {action.describe()}{mark}", highlight=False)
        return entry


def experiment_command(args: argparse.Namespace) -> int:
    """Carry out ``redline experiment``."""
    console = stdout_console()
    try:
        experiment = load_experiment(args.file)
        runner = _Runner(experiment, console)
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    journal: dict[str, Any] = {
        "title": experiment.title,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": [],
        "rollbacks": [],
    }
    console.print(f"experiment: {experiment.title}", style="bold", highlight=False)
    code = _exit.OK
    try:
        with _proxies(experiment, console) as control:
            try:
                journal["before"] = runner.probe("before")
                if not journal["before"]["holds"]:
                    journal["status"] = "aborted"
                    error("the steady state did not hold before the method: nothing to learn")
                    code = _exit.FAILED
                else:
                    console.print("method:")
                    for action in experiment.method:
                        journal["method"].append(runner.act(control, action))
                    journal["after"] = runner.probe("after")
                    holds = journal["after"]["holds"]
                    journal["status"] = "completed" if holds else "deviated"
                    code = _exit.OK if holds else _exit.FAILED
            except KeyboardInterrupt:
                journal["status"] = "interrupted"
                code = _exit.INTERRUPTED
            except RunError as exc:
                journal["status"] = "failed"
                error(f"the experiment could not be carried out: {exc}")
                code = _exit.NOT_CARRIED_OUT
            finally:
                console.print("rollbacks:")
                for action in experiment.rollbacks:
                    journal["rollbacks"].append(runner.act(control, action))
    except ProxyError as exc:
        error(f"{experiment.source}: proxies: {exc}")
        return _exit.USAGE
    console.print(f"experiment {journal['status']}", style="bold", highlight=False)
    if args.out is not None:
        written = emit(json.dumps(journal, indent=1) + "\n", args.out)
        code = code if written == _exit.OK else written
    return code
