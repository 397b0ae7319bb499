"""``redline rollout``: step a canary up through a traffic splitter, judging every step.

Exit codes: 0 promoted (the canary has all the traffic), 1 rolled back (or held by the
budget gate), 2 bad usage, 3 the splitter could not be reached at the start (nothing
was changed).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redline.core import PlanError, StoreError, parse_duration
from redline.engine import RunControl
from redline.plan import load_plan
from redline.report import decisions_html, write_text
from redline.rollout import (
    PROMOTED,
    HAProxySplitter,
    Judgement,
    JudgePolicy,
    PrometheusCohorts,
    ProxySplitter,
    RolloutPlan,
    RolloutStep,
    Splitter,
    SplitterError,
    WebhookSplitter,
    judge,
    progressive_rollout,
)
from redline.runner import run
from redline.store import open_store

from . import _exit
from ._console import error, stdout_console
from ._judge import (
    add_budget_options,
    add_prometheus_options,
    budget_gate,
    default_policy,
    read_policy,
    sli_of,
)
from ._store import add_store_option

__all__ = ["add_rollout_parser"]


def add_rollout_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline rollout``."""
    parser = subparsers.add_parser(
        "rollout",
        help="step a canary up through HAProxy or a webhook, judging each step",
        description="Progressive rollout: set the canary's weight, bake, judge the interval "
        "from Prometheus, go on or roll back. Each decision is kept in the store with its "
        "evidence (redline decisions lists them). Exit 0 promoted, 1 rolled back.",
    )
    where = parser.add_argument_group("the traffic splitter (one of)")
    where.add_argument(
        "--haproxy", metavar="ADDR", help="HAProxy's runtime API (socket path or host:port)"
    )
    where.add_argument("--backend", help="the HAProxy backend holding both servers")
    where.add_argument(
        "--stable-server", default="stable", help="HAProxy server of the stable version"
    )
    where.add_argument("--canary-server", default="canary", help="HAProxy server of the canary")
    where.add_argument("--webhook", metavar="URL", help='POST {"canary": %%, "stable": %%} here')
    where.add_argument("--proxy", metavar="API", help="redline proxy's API (http://127.0.0.1:8474)")
    where.add_argument("--proxy-name", help="the proxy to split (its name in the API)")
    where.add_argument("--stable-upstream", metavar="HOST:PORT", help="the stable upstream")
    where.add_argument("--canary-upstream", metavar="HOST:PORT", help="the canary upstream")
    steps = parser.add_argument_group("the plan")
    steps.add_argument("--weights", default="1,5,25,50,100", help="canary %% per step")
    steps.add_argument("--interval", default="1m", help="the traffic one judgement reads (1m)")
    steps.add_argument("--bake", default="0s", help="wait after each change before judging")
    steps.add_argument("--judgements", type=int, default=1, help="judgements per step (1)")
    steps.add_argument("--max-failures", type=int, default=1, help="failed judgements to roll back")
    steps.add_argument("--policy", type=Path, metavar="FILE", help="metrics, weights, thresholds")
    parser.add_argument("--baseline", default="stable", help="the stable cohort's label value")
    parser.add_argument("--canary", default="canary", help="the canary cohort's label value")
    parser.add_argument(
        "--traffic",
        type=Path,
        metavar="PLAN",
        help="send this plan's load (at the splitter's front) for the whole rollout",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="write the decision records as an HTML page"
    )
    add_prometheus_options(parser, required=True, step="")
    add_budget_options(parser)
    add_store_option(parser)
    parser.set_defaults(handler=rollout_command)

    decisions = subparsers.add_parser(
        "decisions", help="list decision records (rollouts promoted or rolled back)"
    )
    decisions.add_argument("--subject", help="only this subject's")
    decisions.add_argument("--limit", type=int, default=20)
    decisions.add_argument("--json", action="store_true")
    decisions.add_argument("--html", type=Path, metavar="FILE", help="write them as an HTML page")
    add_store_option(decisions)
    decisions.set_defaults(handler=decisions_command)


def _splitter(args: argparse.Namespace) -> Splitter:
    if sum(bool(x) for x in (args.haproxy, args.webhook, args.proxy)) != 1:
        raise ValueError(
            "give one traffic splitter: --proxy API --proxy-name NAME, "
            "--haproxy ADDR --backend NAME, or --webhook URL"
        )
    if args.proxy:
        if not (args.proxy_name and args.stable_upstream and args.canary_upstream):
            raise ValueError("--proxy needs --proxy-name, --stable-upstream and --canary-upstream")
        return ProxySplitter(
            args.proxy, args.proxy_name, args.stable_upstream, args.canary_upstream
        )
    if args.haproxy:
        if not args.backend:
            raise ValueError("--haproxy needs --backend (the backend holding both servers)")
        return HAProxySplitter(args.haproxy, args.backend, args.stable_server, args.canary_server)
    return WebhookSplitter(args.webhook)


def _plan(args: argparse.Namespace) -> RolloutPlan:
    try:
        weights = tuple(float(w.strip().rstrip("%")) for w in args.weights.split(",") if w.strip())
    except ValueError:
        raise ValueError(
            f"--weights: expected numbers like 1,5,25,50,100, got {args.weights!r}"
        ) from None
    return RolloutPlan(
        weights=weights,
        interval_s=_seconds("--interval", args.interval, positive=True),
        bake_s=_seconds("--bake", args.bake, positive=False),
        judgements=args.judgements,
        max_failures=args.max_failures,
    )


def _seconds(option: str, text: str, *, positive: bool) -> float:
    try:
        value = parse_duration(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{option}: {exc}") from None
    if value < 0 or (positive and value == 0):
        raise ValueError(
            f"{option}: expected a {'positive' if positive else 'non-negative'} duration"
        )
    return value


def _judge(
    args: argparse.Namespace, plan: RolloutPlan, policy: JudgePolicy
) -> Callable[[float], Judgement]:
    # One interval in about ten steps unless --step says otherwise.
    step_s = _seconds("--step", args.step, positive=True) if args.step else plan.interval_s / 10
    source = PrometheusCohorts(
        url=args.prometheus,
        label=args.label,
        baseline=args.baseline,
        canary=args.canary,
        selector=args.selector,
        requests=args.requests,
        errors=args.errors,
        histogram=args.histogram,
        step_s=step_s,
        sli=sli_of(args),
    )

    def judged(window_s: float) -> Judgement:
        end = time.time()
        return judge(*source.cohorts(end - window_s, end), policy)

    return judged


@contextmanager
def _traffic(path: Path | None, plan: RolloutPlan) -> Iterator[None]:
    """The plan's load for the whole rollout (stopped when the rollout ends)."""
    if path is None:
        yield
        return
    longest = len(plan.weights) * (plan.bake_s + plan.interval_s * plan.judgements) + 60
    load = load_plan(path, overrides={"duration": f"{longest:.0f}s"})
    control = RunControl()
    thread = threading.Thread(
        target=run,
        args=(load,),
        kwargs={"control": control},
        name="redline-rollout-traffic",
        daemon=True,
    )
    thread.start()
    try:
        yield
    finally:
        control.stop()
        thread.join(timeout=30)


def rollout_command(args: argparse.Namespace) -> int:
    """Carry out ``redline rollout``."""
    console = stdout_console()
    try:
        splitter = _splitter(args)
        plan = _plan(args)
        policy = read_policy(args.policy, default_policy(args))
        judged = _judge(args, plan, policy)
        gate = budget_gate(args)
        store = open_store(args.store)
    except (ValueError, PlanError, StoreError) as exc:
        error(str(exc))
        return _exit.USAGE
    subject = f"{args.canary} ({splitter.describe()})"

    def on_step(step: RolloutStep) -> None:
        if args.json:
            return
        verdict = step.judgement.verdict if step.judgement else step.error
        score = f", score {step.judgement.score:.0f}" if step.judgement else ""
        console.print(f"rollout: {step.weight:g}% -> {verdict}{score}", highlight=False)

    def record(decision: str, entry: Mapping[str, Any]) -> None:
        store.add_decision("rollout", subject, decision, entry)

    try:
        with store, _traffic(args.traffic, plan):
            result = progressive_rollout(
                plan,
                splitter,
                judged,
                subject=subject,
                record=record,
                on_step=on_step,
                gate=gate.check if gate is not None else None,
            )
    except SplitterError as exc:
        error(f"cannot roll out: {exc}")
        return _exit.NOT_CARRIED_OUT
    except PlanError as exc:
        error(str(exc))
        return _exit.USAGE
    if args.html is not None:
        try:
            write_text(decisions_html(result.decisions, title=f"rollout of {subject}"), args.html)
        except OSError as exc:
            error(f"--html: cannot write {str(args.html)!r}: {exc.strerror}")
            return _exit.USAGE
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        last = result.decisions[-1]
        style = "green" if result.outcome == PROMOTED else "bold red"
        console.print(f"rollout {result.outcome}: {last['why']}", style=style, highlight=False)
        console.print(f"  measured: {last['measured_effect']}", highlight=False)
    return _exit.OK if result.outcome == PROMOTED else _exit.FAILED


def decisions_command(args: argparse.Namespace) -> int:
    """Carry out ``redline decisions``."""
    try:
        with open_store(args.store) as store:
            found = store.decisions(subject=args.subject, limit=args.limit)
    except StoreError as exc:
        error(str(exc))
        return _exit.USAGE
    if args.html is not None:
        try:
            write_text(decisions_html([d.to_dict() for d in found]), args.html)
        except OSError as exc:
            error(f"--html: cannot write {str(args.html)!r}: {exc.strerror}")
            return _exit.USAGE
    if args.json:
        print(json.dumps([d.to_dict() for d in found], indent=1))
        return _exit.OK
    console = stdout_console()
    for d in found:
        console.print(
            f"{d.at}  {d.kind}  {d.decision:<8}  {d.subject}: {d.record.get('why', '')}",
            highlight=False,
        )
    return _exit.OK
