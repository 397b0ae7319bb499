"""Overload at three times capacity, with and without the adaptive limit: the figure in
docs/resilience.md.

examples/services/overload_app.py (two workers of 10 ms: 200 req/s) is served by uvicorn on one
core; redline offers it 600 req/s for ``--seconds`` from the other. Printed per second:
p99 latency (of every answer, 503s included) and goodput (200s a second); drawn into
``--svg`` (docs/images/overload.svg by default).

    python benchmarks/bench_overload.py [--seconds 8] [--svg docs/images/overload.svg]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import TARGET_CORE, free_port, run_pinned, table, wait_for_port
from redline.core import RunResult
from redline.store import StoredRun

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "examples" / "services"
CAPACITY = 200


def overload(limited: bool, seconds: int, tmp: Path) -> RunResult:
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", TARGET_CORE, sys.executable, "-m", "uvicorn", "overload_app:app",
         "--app-dir", str(SERVICES), "--host", "127.0.0.1", "--port", str(port),
         "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
        env={**os.environ, "LIMITED": "1" if limited else "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    plan = tmp / "plan.yaml"
    plan.write_text(
        f"name: overload\ntarget: http://127.0.0.1:{port}\nrequests: [{{name: get, path: /}}]\n"
        f"load: {{rate: {3 * CAPACITY}/s}}\nduration: {seconds}s\nwarmup: 1s\nworkers: 1\n"
        "timeouts: {connect: 2s, read: 4s}\n"
    )
    out = tmp / f"run-{limited}.json"
    try:
        wait_for_port(port)
        run_pinned([sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
                    "--out", str(out)])  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=10)
    return StoredRun.from_dict(json.loads(out.read_text())).result


def per_second(run: RunResult) -> tuple[list[float | None], list[float]]:
    """p99 (ms) of every answer (None: nothing answered) and goodput, each measured second."""
    p99: list[float | None] = []
    goodput = []
    for interval in run.measured:
        total = interval.total()
        answered = sum(total.status.values())  # responses, not timeouts
        p99.append(total.latency.value_at_percentile(99) / 1000 if answered else None)
        goodput.append(total.status.get(200, 0) / max(interval.duration_s, 1e-9))
    return p99, goodput


Series = tuple[list[float | None], list[float]]


def svg(limited: Series, plain: Series) -> str:
    """Two small line charts side by side: p99 and goodput per second, both runs."""
    width, height, pad = 360, 220, 44
    colours = {"with AdmissionMiddleware": "#1f77b4", "without": "#d62728"}

    def chart(x0: int, title: str, series: dict[str, list[float | None]], unit: str,
              guide: float | None) -> list[str]:  # fmt: skip
        top = max(max((x for x in v if x is not None), default=0) for v in series.values())
        top = max(top, guide or 0) * 1.1 or 1
        n = max(len(v) for v in series.values())

        def x(i: int) -> float:
            return x0 + pad + (width - pad - 10) * i / max(n - 1, 1)

        def y(v: float) -> float:
            return 30 + (height - 60) * (1 - v / top)

        out = [
            f'<text x="{x0 + width / 2}" y="18" text-anchor="middle" '
            f'font-weight="bold">{title}</text>',
            f'<line x1="{x0 + pad}" y1="{y(0)}" x2="{x0 + width - 10}" y2="{y(0)}" stroke="#888"/>',
            f'<line x1="{x0 + pad}" y1="30" x2="{x0 + pad}" y2="{y(0)}" stroke="#888"/>',
        ]
        for tick in (0, top / 2, top / 1.1):
            out.append(
                f'<text x="{x0 + pad - 4}" y="{y(tick) + 4}" text-anchor="end">{tick:,.0f}</text>'
            )
        out.append(f'<text x="{x0 + pad - 4}" y="{y(0) + 18}" text-anchor="end">{unit}</text>')
        out.append(
            f'<text x="{x0 + width - 10}" y="{y(0) + 18}" text-anchor="end">'
            "second of the overload</text>"
        )
        if guide is not None:
            out.append(
                f'<line x1="{x0 + pad}" y1="{y(guide)}" x2="{x0 + width - 10}" '
                f'y2="{y(guide)}" stroke="#2ca02c" stroke-dasharray="4 3"/>'
                f'<text x="{x0 + width - 12}" y="{y(guide) - 4}" text-anchor="end" '
                'fill="#2ca02c">capacity</text>'
            )
        for label, values in series.items():
            runs: list[list[str]] = [[]]  # a gap where nothing was answered
            for i, v in enumerate(values):
                if v is None:
                    runs.append([])
                else:
                    runs[-1].append(f"{x(i):.1f},{y(v):.1f}")
            for run in runs:
                if run:
                    out.append(
                        f'<polyline fill="none" stroke-width="2" stroke="{colours[label]}" '
                        f'points="{" ".join(run)}"/>'
                    )
        return out  # fmt: skip

    body = chart(0, "p99 latency (all answers)", {"with AdmissionMiddleware": limited[0],
                 "without": plain[0]}, "ms", None)  # fmt: skip
    goodput: dict[str, list[float | None]] = {"with AdmissionMiddleware": list(limited[1]),
                                              "without": list(plain[1])}  # fmt: skip
    body += chart(width + 20, "goodput (200s a second)", goodput, "req/s", CAPACITY)
    legend = []
    for i, (label, colour) in enumerate(colours.items()):
        left = 60 + i * 230
        legend.append(f'<rect x="{left}" y="{height + 2}" width="14" height="4" fill="{colour}"/>'
                      f'<text x="{left + 20}" y="{height + 8}">{label}</text>')  # fmt: skip
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * width + 20}" height="{height + 20}" '
        'font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>'
        + "".join(body + legend)
        + "</svg>\n"
    )


def ms(value: float | None) -> str:
    return "no answer" if value is None else f"{value:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--svg", type=Path, default=ROOT / "docs" / "images" / "overload.svg")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        limited = per_second(overload(True, args.seconds, Path(tmp)))
        plain = per_second(overload(False, args.seconds, Path(tmp)))
    rows = [
        (i + 1, ms(limited[0][i]), f"{limited[1][i]:.0f}", ms(plain[0][i]), f"{plain[1][i]:.0f}")
        for i in range(min(len(limited[0]), len(plain[0])))
    ]  # fmt: skip
    print(f"offered {3 * CAPACITY} req/s to a service of {CAPACITY} req/s")
    print(table(rows, ["second", "with: p99", "with: goodput", "without: p99",
                       "without: goodput"]))  # fmt: skip
    args.svg.write_text(svg(limited, plain))
    print(f"figure: {args.svg}")


if __name__ == "__main__":
    main()
