"""Terminal output: the live view during a run and the final summary."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from redline.core import EndpointSummary, IntervalSnapshot, RunResult, format_duration

__all__ = ["LiveView", "compression_line", "render_summary"]

_NON_TTY_EVERY = 5  # intervals between progress lines when output is not a terminal


def compression_line(metrics: Mapping[str, Any], seconds: float) -> str:
    """What compression bought: bytes on the wire against decoded, and the decode cost."""
    wire = metrics["compression.wire_bytes"].total
    decoded = metrics["compression.decoded_bytes"].total
    chosen = ", ".join(
        f"{name.rsplit('.', 1)[1]} {record.total:,.0f}"
        for name, record in sorted(metrics.items())
        if name.startswith("compression.responses.") and record.total
    )
    text = f"compression {chosen}: {wire:,.0f} body bytes on the wire, {decoded:,.0f} decoded"
    if wire and decoded > wire:
        text += f" ({decoded / wire:.1f}x, {1 - wire / decoded:.0%} saved)"
    trend = metrics.get("compression.decode_ms")
    if trend is not None and trend.count:
        shown = trend.summary(seconds=seconds)
        text += f"; decode p50 {shown['p50']:.3f} / p99 {shown['p99']:.3f} ms per body"
    return text


def _ms(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.2f}s"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def _with_unit(value_ms: float) -> str:
    """A latency with its unit: ``"12.3 ms"``, or ``"1.68 s"`` past a second."""
    if value_ms >= 1000:
        return f"{value_ms / 1000:.2f} s"
    return f"{_ms(value_ms)} ms"


def _count(value: float) -> str:
    return f"{value:,.0f}"


class LiveView:
    """Shows elapsed time, achieved vs target rate, last-interval latency and errors.

    On a terminal it redraws in place; elsewhere (CI logs) it prints a line every few
    seconds. It is an observer (pass it in a run's ``observers``): it shows from each
    run's start to its end, so one view serves several runs. Use it as a context
    manager too, so that a run that never finishes still leaves the terminal clean.
    """

    def __init__(
        self, console: Console, *, total: float | None = None, warmup: float = 0.0
    ) -> None:
        """Prepare a view of runs; ``total``: seconds (warm-up included), else each run's."""
        self.console = console
        self._fixed_total = total
        self.total = total or 0.0
        self.warmup = warmup
        self._live: Live | None = None
        self._started = time.monotonic()
        self._errors = 0
        self._requests = 0

    def __enter__(self) -> LiveView:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._live is not None:
            live, self._live = self._live, None
            live.__exit__(None, None, None)

    def on_start(self, run: RunResult) -> None:
        """Start showing a run (its duration is the view's ``total``)."""
        self._close()
        self._errors = self._requests = 0
        if self._fixed_total is None:
            self.total = run.plan.total_s
        if self.console.is_terminal:
            self._live = Live(Text("starting..."), console=self.console, transient=True)
            self._live.__enter__()
        self._started = time.monotonic()

    def on_interval(self, interval: IntervalSnapshot) -> None:
        """Show one more completed interval."""
        self.update(interval)

    def on_finish(self, outcome: object) -> None:
        """Stop showing the run."""
        self._close()

    def on_abandon(self, reason: str) -> None:
        """Stop showing the run."""
        self._close()

    def update(self, interval: IntervalSnapshot) -> None:
        """Show one more completed interval."""
        total = interval.total()
        gen = interval.generator
        self._requests += total.requests
        self._errors += total.errors
        elapsed = interval.start_s + interval.duration_s
        p50, p99 = total.latency.values_at_percentiles([50, 99])
        target = f"{gen.target_rps:,.0f}" if gen.target_rps is not None else "closed"
        rate = total.requests / interval.duration_s if interval.duration_s else 0.0
        phase = " warm-up" if interval.warmup else ""
        flags = "".join(
            f"  {name} {count:,}"
            for name, count in (("late", gen.late), ("dropped", gen.dropped))
            if count
        )
        line = (
            f"{format_duration(elapsed):>6} / {format_duration(self.total)}{phase}  "
            f"rate {rate:,.0f}/s (target {target})  p50 {_with_unit(p50 / 1000)}  "
            f"p99 {_with_unit(p99 / 1000)}  errors {self._errors:,} of {self._requests:,}  "
            f"in flight {gen.in_flight:,}{flags}"
        )
        if interval.missing:
            line += f"  SHORT {interval.missing:.0%} (host lost)"
        if interval.hosts:  # a cluster run: the slowest host shows an overloaded generator
            name, worst = max(interval.hosts.items(), key=lambda kv: kv[1].max_lag_ms)
            line += f"  hosts {len(interval.hosts)}, worst lag {worst.max_lag_ms:.1f} ms ({name})"
        if self._live is not None:
            self._live.update(Text(line))
        elif interval.index % _NON_TTY_EVERY == _NON_TTY_EVERY - 1:
            self.console.print(line, highlight=False)


def _endpoint_row(name: str, summary: EndpointSummary) -> list[str]:
    lat = summary.latency_ms
    return [
        name,
        _count(summary.requests),
        f"{summary.rps:,.1f}",
        f"{summary.error_rate:.2%}" if summary.requests else "-",
        *(_ms(lat[k]) for k in ("p50", "p90", "p95", "p99", "p999", "max")),
    ]


def _workload_table(result: RunResult) -> Table:
    """The plan's scenarios (k6's), each on its own: executor, window, iterations, latency."""
    table = Table(title="scenarios (latency in ms)", title_justify="left")
    table.add_column("scenario", overflow="fold", min_width=8)
    table.add_column("executor")
    for column in ("window s", "iterations", "requests", "errors", "p50", "p95", "p99"):
        table.add_column(column, justify="right", no_wrap=True)
    measured = result.workloads()
    for workload in result.plan.workloads:
        summary, iterations = measured[workload.name]
        lat = summary.latency_ms
        end = workload.start_time_s + workload.duration_s
        table.add_row(
            workload.name,
            workload.executor,
            f"{workload.start_time_s:g}-{end:g}",
            _count(iterations),
            _count(summary.requests),
            f"{summary.error_rate:.2%}" if summary.requests else "-",
            *(_ms(lat[k]) if summary.requests else "-" for k in ("p50", "p95", "p99")),
        )
    return table


def render_summary(result: RunResult) -> Group:
    """Build the final summary of a run as a rich renderable."""
    table = Table(
        title=f"run {result.id} (latency in ms, from intended start)"
        if result.open_model
        else f"run {result.id} (latency in ms)",
        title_justify="left",
        expand=False,
        padding=(0, 1),
    )
    table.add_column("endpoint", overflow="fold", min_width=8)
    for column in ("requests", "req/s", "errors", "p50", "p90", "p95", "p99", "p99.9", "max"):
        table.add_column(column, justify="right", no_wrap=True)
    names = result.endpoint_names()
    for name in names:
        table.add_row(*_endpoint_row(name, result.endpoint(name)))
    total = result.total()
    if len(names) > 1:
        table.add_row(*_endpoint_row("total", total), style="bold")
    lines: list[Text | Table] = [table]
    if result.plan.workloads:
        lines.append(_workload_table(result))
    steps = [("scenario", result.scenarios()), ("group", result.groups())]
    if any(summaries for _, summaries in steps):
        step_table = Table(title="scenarios and groups (latency in ms)", title_justify="left")
        step_table.add_column("name", overflow="fold", min_width=8)
        for column in ("count", "per s", "failed", "p50", "p95", "p99", "max"):
            step_table.add_column(column, justify="right", no_wrap=True)
        for kind, summaries in steps:
            for name, step in summaries.items():
                lat = step.latency_ms
                step_table.add_row(
                    f"{kind} {name}",
                    _count(step.count),
                    f"{step.rate:,.1f}",
                    _count(step.failures),
                    *(
                        _ms(lat[k]) if step.count > step.failures else "-"
                        for k in ("p50", "p95", "p99", "max")
                    ),
                )
        lines.append(step_table)
    for name, (passes, fails) in result.checks().items():
        total_checks = passes + fails
        style = "red" if fails else "green"
        lines.append(
            Text(f"check       {name}: {passes:,} of {total_checks:,} passed", style=style)
        )
    metrics = result.metrics()
    if "compression.wire_bytes" in metrics:
        lines.append(Text(compression_line(metrics, result.duration_s)))
    for name, record in metrics.items():
        if name.startswith("compression."):
            continue  # said once, above
        shown = record.summary(seconds=result.duration_s)
        kind = shown.pop("kind")
        values = ", ".join(
            f"{key} {value:,.4g}" if isinstance(value, float) else f"{key} {value:,}"
            for key, value in shown.items()
        )
        lines.append(Text(f"metric      {name} ({kind}): {values}"))
    for scenario, types in result.exceptions().items():
        kinds = ", ".join(f"{kind}: {n:,}" for kind, n in types.items())
        lines.append(Text(f"exceptions  scenario {scenario}: {kinds}", style="red"))
    if result.tracebacks:
        lines.append(Text(f"first traceback of {len(result.tracebacks)} kept:", style="dim"))
        lines.append(Text(result.tracebacks[0].rstrip(), style="dim"))
    if total.phases_ms:
        parts = ", ".join(
            f"{name} {_ms(values['p50'])} / {_ms(values['p99'])}"
            for name, values in total.phases_ms.items()
        )
        lines.append(Text(f"phases      p50 / p99 ms: {parts}"))
    if total.status:
        codes = ", ".join(f"{code}: {n:,}" for code, n in total.status.items())
        lines.append(Text(f"status      {codes}"))
    if total.error_classes:
        classes = ", ".join(f"{name}: {n:,}" for name, n in total.error_classes.items())
        lines.append(Text(f"failures    {classes}", style="red"))
    lines.append(
        Text(
            f"bytes       {total.bytes_in:,} in, {total.bytes_out:,} out "
            f"over {format_duration(result.duration_s)}"
        )
    )
    gen = result.generator()
    target = (
        f"{gen.target_rps:,.1f} req/s target, " if gen.target_rps is not None else "closed model, "
    )
    lateness = ""
    if result.open_model and gen.lag_ms is not None:
        lateness = (
            f"; send lateness p50 {gen.lag_ms['p50']:.3f} / p99 {gen.lag_ms['p99']:.3f} / "
            f"max {gen.lag_ms['max']:.3f} ms"
        )
    lines.append(
        Text(
            f"generator   {target}{gen.achieved_rps:,.1f} req/s sent by {gen.workers} worker(s); "
            f"late {gen.late:,}, dropped {gen.dropped:,}, max lag {gen.max_lag_ms:.2f} ms"
            f"{lateness}"
        )
    )
    for host in gen.hosts:
        lost = f"; LOST at interval {host['lost_at']}" if host["lost_at"] is not None else ""
        lines.append(
            Text(
                f"  host {host['name']:<12} {host['share']:>6.1%} of the load, "
                f"{host['achieved_rps']:,.1f} req/s, max lag {host['max_lag_ms']:.2f} ms, "
                f"CPU {host['max_cpu_percent']:.0f}%, clock {host['clock_offset_ms']:+.2f} ms"
                f"{lost}",
                style="red" if lost else "",
            )
        )
    short = [i.index for i in result.intervals if i.missing]
    if short:
        lines.append(
            Text(
                f"SHORT: intervals {short[0]}-{short[-1]} miss up to "
                f"{max(i.missing for i in result.intervals):.0%} of the load (a lost host)",
                style="bold red",
            )
        )
    if gen.limited:
        lines.append(
            Text(
                f"GENERATOR-LIMITED: {gen.limited_intervals} interval(s) could not carry the "
                "intended load; their percentiles understate the truth. "
                "Add workers or lower the rate.",
                style="bold red",
            )
        )
    if not result.open_model:
        lines.append(
            Text(
                "note: closed model; latency is measured from each actual send, so a stalled "
                "target slows the senders and hides the stall (use an arrival rate to see it).",
                style="dim",
            )
        )
    if not result.complete:
        lines.append(
            Text(
                f"INCOMPLETE run ({result.stop_reason}): the intervals measured are kept.",
                style="bold yellow",
            )
        )
    for note in result.notes:
        lines.append(Text(note, style="red"))
    return Group(*lines)
