"""``redline judge``: a canary against its baseline; exit 0 on pass, 1 on fail, 2 on usage.

Three sources of the two cohorts:

- stored runs or result files: ``--baseline RUN --canary RUN`` (as ``redline compare``
  names runs);
- a real Prometheus: ``--prometheus URL --baseline stable --canary canary`` (the values
  of ``--label``, default ``version``), over ``--since`` up to now, one interval a
  ``--step``;
- redline's own traffic split: ``--plan PLAN --baseline URL --canary URL``, both sides
  loaded at once at half the plan's rate each (``redline ab --duet``), each request to one
  cohort.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import yaml
from rich.table import Table

from redline.analysis import Side, period_seconds
from redline.core import PlanError, RunError, StoreError, parse_duration
from redline.plan import QuerySli, load_plan, load_slo_sources
from redline.rollout import (
    FAIL,
    PASS,
    BudgetGate,
    Judgement,
    JudgePolicy,
    MetricPolicy,
    PrometheusCohorts,
    PrometheusError,
    judge,
)
from redline.runner import ab
from redline.store import RunStore, StoredRun, open_store

from . import _exit
from ._compare import load_runs, needs_store
from ._console import error, stdout_console
from ._store import add_store_option, reading_store

__all__ = [
    "add_budget_options",
    "add_judge_parser",
    "add_prometheus_options",
    "budget_gate",
    "default_policy",
    "judgement_table",
    "prometheus_judge",
    "read_policy",
    "sli_of",
]

_STYLE = {"pass": "green", "high": "red", "low": "red", "nodata": "yellow"}


def add_judge_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``redline judge``."""
    parser = subparsers.add_parser(
        "judge",
        help="judge a canary against its baseline (exit 0 pass, 1 fail)",
        description="Judge a canary cohort against a baseline cohort, metric by metric, and "
        "score it as Kayenta does. Without --prometheus or --plan, BASELINE and CANARY name "
        "runs as redline compare does (ids, prefixes, latest, result files, label:K=V). "
        "No data, or a canary that got no requests, is a fail, never a pass.",
    )
    parser.add_argument(
        "--baseline", required=True, help="the baseline: runs, a label value, a URL"
    )
    parser.add_argument("--canary", required=True, help="the canary: runs, a label value, a URL")
    parser.add_argument("--policy", type=Path, metavar="FILE", help="metrics, weights, thresholds")
    parser.add_argument("--json", action="store_true", help="print the judgement as JSON")
    add_prometheus_options(parser, required=False)
    split = parser.add_argument_group("cohorts from redline's own traffic split")
    split.add_argument("--plan", type=Path, help="load both URLs at once with this plan")
    split.add_argument("--duration", help="how long (default: the plan's)")
    split.add_argument(
        "--cohort-header",
        metavar="NAME",
        help="one URL (the plan's), the cohorts told apart by this header: --baseline and "
        "--canary are its values (a feature flag's variant, say)",
    )
    add_store_option(parser)
    parser.set_defaults(handler=judge_command)


def add_prometheus_options(
    parser: argparse.ArgumentParser, *, required: bool, step: str = "1m"
) -> None:
    """Where the cohorts' metrics are in Prometheus (``judge``, ``hooks``, ``rollout``)."""
    prom = parser.add_argument_group("cohorts from Prometheus")
    prom.add_argument(
        "--prometheus", metavar="URL", required=required, help="read the cohorts from this server"
    )
    prom.add_argument("--label", default="version", help="the label naming a cohort (version)")
    prom.add_argument("--selector", default="", help='more matchers, e.g. job="shop"')
    prom.add_argument("--since", default="30m", help="the window, up to now (30m)")
    prom.add_argument(
        "--step", default=step, help=f"one interval of a cohort ({step or 'a tenth of one'})"
    )
    prom.add_argument("--requests", default="http_requests_total", help="the request counter")
    prom.add_argument("--errors", default='code=~"5.."', help="the matcher of an error")
    prom.add_argument(
        "--histogram", default="http_request_duration_seconds", help="the latency histogram"
    )
    prom.add_argument(
        "--slo",
        type=Path,
        metavar="FILE",
        help="an OpenSLO file whose indicator (Prometheus good/total or bad/total queries) "
        "gives the requests and errors, scoped to each cohort",
    )
    prom.add_argument("--slo-name", help="which objective of --slo (default: its first)")


def sli_of(args: argparse.Namespace) -> tuple[str, str, str] | None:
    """The ``--slo`` file's indicator as ``(kind, counted, total)``, or None.

    Raises:
        ValueError: no such file or objective, or one that is not a good/bad over total
            Prometheus ratio.
        PlanError: the file is not valid.
    """
    if getattr(args, "slo", None) is None:
        return None
    found = [e for e in load_slo_sources(args.slo) if isinstance(e, QuerySli)]
    if args.slo_name:
        found = [q for q in found if q.name == args.slo_name]
    if not found:
        which = f" named {args.slo_name!r}" if args.slo_name else ""
        raise ValueError(f"{args.slo}: no objective{which} with a Prometheus ratio indicator")
    sli = found[0]
    if sli.total is None or sli.kind not in ("good", "bad"):
        raise ValueError(
            f"{args.slo}: {sli.name}: a raw ratio carries no counts to compare between "
            "cohorts; judge needs good/total or bad/total queries"
        )
    return sli.kind, sli.counted, sli.total


def default_policy(args: argparse.Namespace) -> JudgePolicy:
    """Without ``--policy``: the default, or with ``--slo`` its indicator alone (critical)."""
    if getattr(args, "slo", None) is not None:
        return JudgePolicy(metrics=(MetricPolicy("error_ratio", critical=True),))
    return JudgePolicy()


def prometheus_judge(
    args: argparse.Namespace, policy: JudgePolicy
) -> Callable[[str, str], Judgement]:
    """A judge of two cohorts (label values) over the last ``--since``, from ``--prometheus``.

    Raises:
        ValueError: a bad ``--step`` or ``--since``.
    """
    step_s, since_s = _seconds("--step", args.step), _seconds("--since", args.since)
    sli = sli_of(args)

    def judged(baseline: str, canary: str) -> Judgement:
        source = PrometheusCohorts(
            url=args.prometheus,
            label=args.label,
            baseline=baseline,
            canary=canary,
            selector=args.selector,
            requests=args.requests,
            errors=args.errors,
            histogram=args.histogram,
            step_s=step_s,
            sli=sli,
        )
        end = time.time()
        return judge(*source.cohorts(end - since_s, end), policy)

    return judged


def add_budget_options(parser: argparse.ArgumentParser) -> None:
    """The error-budget gate (``rollout`` and ``hooks``): the rules of ``slo rules``."""
    budget = parser.add_argument_group("the error-budget gate (rules of redline slo rules)")
    budget.add_argument("--budget-slo", metavar="NAME", help="the objective whose budget gates")
    budget.add_argument("--budget-objective", type=float, default=0.999, help="its target (0.999)")
    budget.add_argument("--budget-window", default="30d", help="its period (30d)")
    budget.add_argument(
        "--budget-floor", type=float, default=0.25, help="least budget share to keep (0.25)"
    )
    budget.add_argument("--budget-rate", default="1h", help="the error-ratio window read (1h)")


def budget_gate(args: argparse.Namespace) -> BudgetGate | None:
    """The gate the options name, or None without ``--budget-slo``.

    Raises:
        ValueError: a bad objective, floor or window.
    """
    if not args.budget_slo:
        return None
    return BudgetGate(
        url=args.prometheus,
        slo=args.budget_slo,
        objective=args.budget_objective,
        period_s=period_seconds(args.budget_window),
        floor=args.budget_floor,
        window=args.budget_rate,
    )


def read_policy(path: Path | None, default: JudgePolicy | None = None) -> JudgePolicy:
    """The policy in ``path`` (YAML or JSON), or ``default`` (the default policy).

    Raises:
        ValueError: the file cannot be read or holds a bad policy (named by its path).
    """
    if path is None:
        return default or JudgePolicy()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the policy: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of policy keys")
    return JudgePolicy.from_dict(data.get("judge", data), where=str(path))


def _seconds(option: str, text: str) -> float:
    try:
        value = parse_duration(text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{option}: {exc}") from None
    if value <= 0:
        raise ValueError(f"{option}: expected a positive duration, got {text!r}")
    return value


def _run_cohorts(args: argparse.Namespace) -> tuple[Side, Side]:
    source: contextlib.AbstractContextManager[RunStore | None] = (
        reading_store(args.store)
        if needs_store(args.baseline, args.canary)
        else contextlib.nullcontext()
    )
    with source as store:
        canary = load_runs(args.canary, store)
        plan = canary[0].result.plan.name if canary else None
        baseline = load_runs(args.baseline, store, plan=plan)
    return _side(baseline), _side(canary)


def _side(runs: list[StoredRun]) -> Side:
    """A cohort of stored runs, with the target's CPU-seconds when every run watched it."""
    cpu = [_cpu_seconds(run) for run in runs]
    watched = all(c is not None for c in cpu)
    return Side.of(
        [r.result for r in runs],
        "total",
        cpu=[c for c in cpu if c is not None] if watched else None,
    )


def _cpu_seconds(run: StoredRun) -> dict[int, float] | None:
    """CPU-seconds of the run's primary watched thing, by interval index."""
    target = run.target
    thing = target.primary if target is not None else None
    if target is None or thing is None:
        return None
    lengths = {i.index: i.duration_s for i in run.result.intervals}
    out = {
        index: value * lengths[index]
        for index, value in target.series(thing.name, "cpu_cores")
        if value is not None and index in lengths
    }
    return out or None


def with_saturation(policy: JudgePolicy, baseline: Side, canary: Side) -> JudgePolicy:
    """The default policy plus the target's CPU per request, when both cohorts have it."""
    if not (baseline.watched and canary.watched):
        return policy
    if any(m.metric == "cpu_per_request" for m in policy.metrics):
        return policy
    return dataclasses.replace(policy, metrics=(*policy.metrics, MetricPolicy("cpu_per_request")))


def _split_cohorts(args: argparse.Namespace) -> tuple[Side, Side]:
    urls: tuple[str, str] = (args.baseline, args.canary)
    headers: dict[Literal["A", "B"], dict[str, str]] | None = None
    if args.cohort_header:
        target = load_plan(args.plan).target
        urls = (target, target)
        headers = {"A": {args.cohort_header: args.baseline}, "B": {args.cohort_header: args.canary}}
    with open_store(args.store) as store:
        runs = ab(
            args.plan,
            a=urls[0],
            b=urls[1],
            rounds=1,
            duet=True,
            duration=args.duration,
            store=store,
            labels={"judge": "duet"},
            headers=headers,
        )
    return (
        Side.of([o.result for o in runs.a], "total"),
        Side.of([o.result for o in runs.b], "total"),
    )


def judge_command(args: argparse.Namespace) -> int:
    """Carry out ``redline judge``."""
    if args.prometheus and args.plan:
        error("--prometheus and --plan are two sources of the cohorts: give one")
        return _exit.USAGE
    try:
        policy = read_policy(args.policy, default_policy(args))
        if args.slo is not None and not args.prometheus:
            raise ValueError("--slo: its queries are read from --prometheus")
        if args.prometheus:
            judgement = prometheus_judge(args, policy)(args.baseline, args.canary)
        else:
            cohorts = _split_cohorts(args) if args.plan else _run_cohorts(args)
            if args.policy is None:  # saturation joins the default where it was watched
                policy = with_saturation(policy, *cohorts)
            judgement = judge(*cohorts, policy)
    except (StoreError, ValueError, PlanError) as exc:
        error(str(exc))
        return _exit.USAGE
    except (PrometheusError, RunError) as exc:
        error(f"cannot judge: {exc}")
        return _exit.NOT_CARRIED_OUT
    if args.json:
        print(json.dumps(judgement.to_dict(), indent=1))
    else:
        report_judgement(judgement)
    return _exit.OK if judgement.verdict == PASS else _exit.FAILED


def report_judgement(judgement: Judgement) -> None:
    """Print the table, the score and the verdict with its reasons."""
    console = stdout_console()
    console.print(judgement_table(judgement))
    style = (
        "green"
        if judgement.verdict == PASS
        else "bold red"
        if judgement.verdict == FAIL
        else "yellow"
    )
    console.print(
        f"score {judgement.score:.0f}/100: {judgement.verdict.upper()}",
        style=style,
        highlight=False,
    )
    for reason in judgement.reasons:
        console.print(f"  {reason}", highlight=False)


def judgement_table(judgement: Judgement) -> Table:
    """One row per metric: both cohorts, the change, its interval and the classification."""
    requests = judgement.requests
    table = Table(
        title=f"canary ({requests['canary']:,} requests) vs baseline "
        f"({requests['baseline']:,} requests)",
        title_justify="left",
    )
    for header in ("metric", "baseline", "canary", "change", f"{judgement.level:.1%} CI"):
        table.add_column(header, justify="left" if header == "metric" else "right")
    for header in ("class", "weight", "no data because"):
        table.add_column(header, overflow="fold")
    for m in judgement.metrics:
        name = m.metric + (" *" if m.critical else "")
        table.add_row(
            name,
            _value(m.metric, m.baseline),
            _value(m.metric, m.canary),
            "-" if m.ratio is None else f"{m.ratio - 1:+.1%}",
            "-" if m.low is None or m.high is None else f"{m.low - 1:+.1%} .. {m.high - 1:+.1%}",
            f"[{_STYLE.get(m.classification, 'white')}]{m.classification}[/]"
            + (" (fails)" if m.failed else ""),
            f"{m.weight:g}",
            m.reason if m.classification == "nodata" else "",
        )
    table.caption = "* critical: its failure fails the judgement; bad direction fails"
    return table


def _value(metric: str, value: Any) -> str:
    if value is None:
        return "-"
    if metric == "error_ratio":
        return f"{value:.3%}"
    if metric == "throughput":
        return f"{value:,.1f}/s"
    if metric == "cpu_per_request":
        return f"{value * 1000:.3f} CPU-ms"
    return f"{value:.2f} ms"
