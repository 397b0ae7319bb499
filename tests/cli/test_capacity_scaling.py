"""``redline capacity scaling``: the redline of a served target at several sizes, fitted."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest

from redline.capacity import fit_scaling
from redline.cli._main import main


def test_more_workers_more_capacity_measured_and_fitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""
target: http://127.0.0.1:{port}
requests: [{{name: home, path: /}}]
load: {{rate: 20/s}}
duration: 1s
warmup: 300ms
generator: {{late_tolerance: 0.3}}
slo: [p99 < 250ms]
"""
    )
    serve = (
        f"{sys.executable} -m redline testserver --port {port} --workers {{size}} "
        "--latency 20ms --exponential"
    )
    out = tmp_path / "scaling.json"
    code = main([
        "capacity", "scaling", str(plan), "--serve", serve, "--sizes", "1,2,4",
        "--unit", "worker", "--step", "2s", "--factor", "2", "--repeats", "1",
        "--out", str(out),
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    fit = json.loads(out.read_text())
    capacity = [p["capacity_rps"] for p in fit["points"]]
    assert [p["size"] for p in fit["points"]] == [1, 2, 4]
    # an M/M/c of 20 ms: each worker serves up to 50 req/s; within a p99 the capacity grows
    # with the workers (pooling: at least in proportion, give or take the search's steps)
    assert capacity[0] < capacity[1] < capacity[2]
    assert capacity[2] > 2 * capacity[0]
    assert fit["sigma"] is not None
    assert "1 -> 2 workers" in printed


def test_the_fit_recovers_a_known_law() -> None:
    def law(n: float) -> float:
        return 100 * n / (1 + 0.05 * (n - 1) + 0.002 * n * (n - 1))

    fit = fit_scaling([(n, law(n)) for n in (1, 2, 4, 8, 16)], unit="replica")
    assert fit.sigma == pytest.approx(0.05, abs=1e-6)
    assert fit.kappa == pytest.approx(0.002, abs=1e-6)
    assert fit.efficiency[1] == pytest.approx(law(2) / 200)
    assert fit.predicted(32) == pytest.approx(law(32))
    assert fit.diminishing_at is not None
    assert law(fit.diminishing_at + 1) < 1.1 * law(fit.diminishing_at)
    with pytest.raises(ValueError, match="two sizes"):
        fit_scaling([(1, 100)])
    with pytest.raises(ValueError, match="above 0"):
        fit_scaling([(1, 100), (2, 0)])
