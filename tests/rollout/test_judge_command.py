"""``redline judge`` on real runs: exit 0 on pass, 1 on fail, 2 on a usage error."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import redline
from redline.cli._main import main
from redline.plan import plan_from_dict
from redline.testing import Behaviour, Latency, TestServer

Server = Callable[..., TestServer]
LATENCY = Latency("lognormal", value=0.008, sigma=0.25)


def plan_file(tmp_path: Path, url: str, *, rate: int = 300, duration: str = "8s") -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"name: canary\ntarget: {url}\nrequests: [{{name: home, path: /}}]\n"
        f"load: {{rate: {rate}/s}}\nduration: {duration}\nworkers: 1\n"
        "generator: {late_tolerance: 0.9}\n"
    )
    return plan


def record(tmp_path: Path, url: str, name: str, capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / f"{name}.json"
    code = main(["run", str(plan_file(tmp_path, url)), "--quiet", "--out", str(out)])
    capsys.readouterr()
    assert code in (0, 1), code  # measured (no objectives set: 0)
    return out


@pytest.mark.timeout(300)
def test_two_stored_runs_a_slower_canary_fails_and_the_same_run_passes(
    redline_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stable = redline_server(Behaviour(latency=LATENCY), seed=1)
    slower = redline_server(
        Behaviour(latency=Latency("lognormal", value=0.008 * 1.5, sigma=0.25)), seed=2
    )
    base = record(tmp_path, stable.url, "stable", capsys)
    canary = record(tmp_path, slower.url, "canary", capsys)
    code = main(["judge", "--baseline", str(base), "--canary", str(canary)])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAIL" in out
    assert "critical metric p99 failed" in out
    assert main(["judge", "--baseline", str(base), "--canary", str(canary), "--json"]) == 1
    judgement = json.loads(capsys.readouterr().out)
    p99 = next(m for m in judgement["metrics"] if m["metric"] == "p99")
    assert p99["classification"] == "high"
    assert p99["failed"]
    assert p99["low"] > 1  # the interval the classification was read from
    assert judgement["verdict"] == "fail"
    assert judgement["requests"]["canary"] == 2400
    # These runs did not watch their target: no saturation metric (and no nodata for it).
    assert [m["metric"] for m in judgement["metrics"]] == ["p50", "p95", "p99", "error_ratio"]
    # The baseline judged against itself: nothing differs, so it passes with 100.
    assert main(["judge", "--baseline", str(base), "--canary", str(base), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert (same["verdict"], same["score"]) == ("pass", 100.0)


@pytest.mark.timeout(300)
def test_redlines_own_split_sends_each_cohort_its_share_and_judges_it(
    redline_server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stable = redline_server(Behaviour(latency=LATENCY), seed=3)
    broken = redline_server(Behaviour(latency=LATENCY, error_rate=0.05), seed=4)
    plan = plan_file(tmp_path, stable.url, rate=300, duration="8s")
    argv = ["judge", "--plan", str(plan), "--baseline", stable.url, "--canary", broken.url]
    code = main([*argv, "--json"])
    judgement = json.loads(capsys.readouterr().out)
    assert code == 1
    errors = next(m for m in judgement["metrics"] if m["metric"] == "error_ratio")
    assert errors["classification"] == "high"
    assert errors["canary"] == pytest.approx(0.05, abs=0.02)
    # Each request went to one cohort, half the plan's rate each.
    assert stable.requests_total == broken.requests_total == 150 * 8


def test_a_canary_run_with_no_requests_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], redline_server: Server
) -> None:
    stable = redline_server(Behaviour(latency=LATENCY), seed=5)
    base = record(tmp_path, stable.url, "stable", capsys)
    data = json.loads(base.read_text())
    for interval in data["result"]["intervals"] if "result" in data else data["intervals"]:
        interval["endpoints"] = {}
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(data))
    code = main(["judge", "--baseline", str(base), "--canary", str(empty)])
    out = capsys.readouterr().out
    assert code == 1
    assert "canary cohort has 0 requests" in out


def test_usage_errors_exit_2_and_name_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["judge", "--baseline", str(tmp_path / "a.json"), "--canary", "b.json"]) == 2
    assert "b.json: cannot read a run result" in capsys.readouterr().err
    policy = tmp_path / "policy.yaml"
    policy.write_text("judge:\n  metrics:\n    - {metric: p99, weight: -1}\n")
    argv = ["judge", "--baseline", "x.json", "--canary", "y.json", "--policy", str(policy)]
    assert main(argv) == 2
    assert f"{policy}.metrics[0]: weight: expected a positive number" in capsys.readouterr().err
    both = ["--prometheus", "http://127.0.0.1:1", "--plan", "p.yaml"]
    assert main(["judge", "--baseline", "a", "--canary", "b", *both]) == 2
    assert "give one" in capsys.readouterr().err
    bad_step = ["--prometheus", "http://127.0.0.1:1", "--step", "soon"]
    assert main(["judge", "--baseline", "a", "--canary", "b", *bad_step]) == 2
    assert "--step" in capsys.readouterr().err
    # Prometheus not answering is not a usage error: the judgement was not carried out.
    down = ["--prometheus", "http://127.0.0.1:1", "--since", "2m", "--step", "30s"]
    assert main(["judge", "--baseline", "a", "--canary", "b", *down]) == 3
    assert "cannot reach Prometheus" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_a_feature_flag_cohort_is_judged_by_its_header_at_one_url(
    serve: Callable[..., str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, int] = {}

    async def app(scope: dict[str, object], receive: object, send: Callable[..., object]) -> None:
        headers = dict(scope["headers"])  # type: ignore[call-overload]
        variant = headers.get(b"x-variant", b"none").decode()
        seen[variant] = seen.get(variant, 0) + 1
        await asyncio.sleep(0.016 if variant == "on" else 0.008)  # the flag's slow path
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    url = serve(app)
    plan = plan_file(tmp_path, url, rate=200, duration="6s")
    argv = ["judge", "--plan", str(plan), "--cohort-header", "X-Variant",
            "--baseline", "off", "--canary", "on", "--json"]  # fmt: skip
    code = main(argv)
    judgement = json.loads(capsys.readouterr().out)
    assert code == 1
    p50 = next(m for m in judgement["metrics"] if m["metric"] == "p50")
    assert p50["classification"] == "high"
    assert p50["ratio"] > 1.5
    # Each request carried one cohort's value, half the plan's rate each.
    assert seen == {"off": 100 * 6, "on": 100 * 6}


PLANTED = Path(__file__).parents[1] / "observe" / "planted.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(300)
def test_stored_runs_that_watched_their_target_are_judged_on_its_cpu_per_request_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = []
    for name, path in (("stable", "/flat"), ("canary", "/scan")):
        port = free_port()
        plan = {
            "name": "saturation",
            "target": f"http://127.0.0.1:{port}",
            "requests": [{"name": "work", "path": path}],
            "load": {"rate": "20/s"},
            "duration": "5s",
            "workers": 1,
            "observe": {"serve": {"command": f"{sys.executable} {PLANTED} {port}"}},
        }
        out = tmp_path / f"{name}.json"
        redline.run(plan_from_dict(plan, source="test"), out=out)
        files.append(out)
    capsys.readouterr()
    code = main(["judge", "--baseline", str(files[0]), "--canary", str(files[1]), "--json"])
    judgement = json.loads(capsys.readouterr().out)
    assert code == 1
    cpu = next(m for m in judgement["metrics"] if m["metric"] == "cpu_per_request")
    assert cpu["classification"] == "high"  # the linear scan burns CPU on every request
    assert cpu["canary"] > 3 * cpu["baseline"] > 0
