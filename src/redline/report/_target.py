"""The target seen from inside, for the terminal: the bottleneck, the USE table, hot code."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from redline.core import TargetReport, UseRow

__all__ = ["render_target", "use_cells"]

_STYLE = {"none": "green"}


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.0f}%"
    text = f"{value:,.2f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    return f"{text} {unit}".strip()


def use_cells(row: UseRow) -> list[str]:
    """One USE row as text cells: resource, thing, utilisation, saturation, errors."""
    return [
        row.resource,
        row.thing,
        _number(row.utilisation_pct, "%"),
        _number(row.saturation, row.saturation_unit) if row.saturation is not None else "-",
        _number(row.errors, row.errors_unit) if row.errors is not None else "-",
    ]


def render_target(target: TargetReport, *, top: int = 5) -> RenderableType:
    """The bottleneck line, the USE table, the hottest functions, the cost and the notes."""
    parts: list[RenderableType] = []
    if target.verdict is not None:
        line = Text("bottleneck: ", style="bold")
        line.append(target.verdict.bottleneck, style=_STYLE.get(target.verdict.bottleneck, "red"))
        line.append(f"  {target.verdict.evidence}")
        parts.append(line)
    if target.use:
        table = Table(title="USE: utilisation, saturation, errors", title_justify="left")
        for header in ("resource", "watched", "utilisation", "saturation", "errors"):
            table.add_column(
                header, justify="left" if header in ("resource", "watched") else "right"
            )
        for row in target.use:
            table.add_row(*use_cells(row))
        parts.append(table)
    profile = target.profile
    if profile is not None and profile.top:
        table = Table(
            title=f"on-CPU, {profile.samples:,} samples (self, total)", title_justify="left"
        )
        table.add_column("function")
        table.add_column("where")
        table.add_column("self", justify="right")
        table.add_column("total", justify="right")
        for function in profile.top[:top]:
            table.add_row(
                function.function,
                f"{function.file}:{function.line}",
                f"{function.self_pct:.1f}%",
                f"{function.total_pct:.1f}%",
            )
        parts.append(table)
    if profile is not None and profile.waits:
        waits = ", ".join(f"{kind} {count:,}" for kind, count in sorted(profile.waits.items()))
        parts.append(Text(f"waiting samples of application code: {waits}"))
    if profile is not None and profile.note:
        parts.append(Text(profile.note, style="yellow"))
    growth = target.memory_growth
    if growth is not None:
        mib = 1024 * 1024
        verdict = "growing" if growth.growing else "no growth shown"
        parts.append(
            Text(
                f"memory of {growth.thing}: {growth.slope_bytes_per_s * 60 / mib:+.2f} MiB/min "
                f"(95% CI {growth.low * 60 / mib:+.2f} to {growth.high * 60 / mib:+.2f}): {verdict}"
            )
        )
    cost = target.cost
    if cost is not None and cost.cpu_s_per_request is not None:
        text = f"cost per request: {cost.cpu_s_per_request * 1000:.3f} CPU-ms"
        if cost.memory_gib_s_per_request is not None:
            text += f", {cost.memory_gib_s_per_request * 1000:.4f} GiB-ms of memory"
        if cost.per_million is not None:
            text += f"; {cost.per_million:.4f} per million requests"
        parts.append(Text(text))
    if target.served is not None and target.served.exit_status is not None:
        parts.append(
            Text(
                f"the served target exited with status {target.served.exit_status} "
                f"{target.served.exited_at_s or 0:.1f}s into the run",
                style="red",
            )
        )
    for note in target.notes:
        parts.append(Text(note, style="yellow"))
    return Group(*parts)
