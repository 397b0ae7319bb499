"""``redline rollout`` end to end: HAProxy splits, Prometheus scrapes, redline judges.

A stable version and a canary (ASGI apps with redline's RuntimeMetrics) sit behind a
real HAProxy (Debian's) whose runtime API redline drives (``set weight``); a real
Prometheus scrapes both, labelled ``version``; redline's own traffic goes through
HAProxy's front for the whole rollout. A canary three times slower is rolled back at the
first or second step, with its decision record in the store; a good one reaches 100%.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from redline.cli._main import main
from redline.rollout import HAProxySplitter, SplitterError
from redline.store import open_store

from .test_judge_prometheus import free_port, prometheus_of, service  # noqa: F401 - fixture

Rig = Callable[[Any], dict[str, str]]


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[Callable[[str, str], tuple[str, str]]]:
    """``haproxy(stable_url, canary_url)``: a real HAProxy; its front URL and API socket."""
    binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if binary is None:
        pytest.fail("haproxy is needed: install Debian's haproxy package (.ci/run does)")
    processes: list[subprocess.Popen[bytes]] = []

    def start(stable: str, canary: str) -> tuple[str, str]:
        front = free_port()
        api = tmp_path / f"haproxy-{len(processes)}.sock"
        config = tmp_path / f"haproxy-{len(processes)}.cfg"
        config.write_text(
            "global\n"
            f"  stats socket {api} mode 600 level admin\n"
            "defaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n"
            "  timeout server 30s\n"
            f"frontend shop\n  bind 127.0.0.1:{front}\n  default_backend shop\n"
            "backend shop\n  balance roundrobin\n"
            f"  server stable {stable.removeprefix('http://')} weight 100\n"
            f"  server canary {canary.removeprefix('http://')} weight 0\n"
        )
        log = tmp_path / f"haproxy-{len(processes)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [binary, "-f", str(config), "-db"], stdout=sink, stderr=subprocess.STDOUT
            )
        processes.append(process)
        deadline = time.monotonic() + 10
        while not api.exists() or not _listening(front):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"haproxy did not start: {log.read_text()}")
            time.sleep(0.05)
        return f"http://127.0.0.1:{front}", str(api)

    try:
        yield start
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def rollout(
    tmp_path: Path,
    serve: Callable[..., str],
    prometheus_of: Callable[[dict[str, str]], str],  # noqa: F811
    haproxy: Callable[[str, str], tuple[str, str]],
    canary_median_s: float,
    capsys: pytest.CaptureFixture[str],
) -> tuple[int, dict[str, Any], HAProxySplitter]:
    apps = {"stable": service(0.008, 1), "canary": service(canary_median_s, 2)}
    try:
        urls = {version: serve(app) for version, app in apps.items()}
        prometheus = prometheus_of(urls)
        front, api = haproxy(urls["stable"], urls["canary"])
        plan = tmp_path / "traffic.yaml"
        plan.write_text(
            f"name: rollout-traffic\ntarget: {front}\nrequests: [{{name: home, path: /}}]\n"
            "load: {rate: 200/s}\nduration: 10s\nworkers: 1\n"
            "generator: {late_tolerance: 0.9}\n"
        )
        policy = tmp_path / "policy.yaml"
        policy.write_text(
            "judge:\n  min_requests: 50\n  metrics:\n"
            "    - {metric: p50, critical: true}\n"
            "    - {metric: p95}\n"
            "    - {metric: error_ratio, critical: true}\n"
        )
        code = main(
            ["rollout", "--haproxy", api, "--backend", "shop", "--prometheus", prometheus,
             "--weights", "20,50,100", "--interval", "12s", "--bake", "3s", "--step", "3s",
             "--policy", str(policy), "--traffic", str(plan), "--json"]
        )  # fmt: skip
        result = json.loads(capsys.readouterr().out)
        return code, result, HAProxySplitter(api, "shop", "stable", "canary")
    finally:
        for app in apps.values():
            app.close()


@pytest.mark.timeout(300)
def test_a_slower_canary_is_rolled_back_early_with_its_decision_record(
    tmp_path: Path,
    serve: Callable[..., str],
    prometheus_of: Callable[[dict[str, str]], str],  # noqa: F811
    haproxy: Callable[[str, str], tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, result, splitter = rollout(tmp_path, serve, prometheus_of, haproxy, 0.024, capsys)
    assert code == 1
    assert result["outcome"] == "rolled back"
    assert len(result["steps"]) <= 2  # at the first or second step
    failed = result["steps"][-1]
    assert not failed["passed"]
    assert failed["judgement"]["verdict"] == "fail"
    p50 = next(m for m in failed["judgement"]["metrics"] if m["metric"] == "p50")
    assert p50["classification"] == "high", failed["judgement"]
    # HAProxy was put back: the canary gets nothing.
    assert splitter.weight("canary") == 0
    assert splitter.weight("stable") == 100
    # The decision record, in the store: what changed, expected, measured, who decided.
    with open_store(None) as store:
        kept = store.decisions()
    assert kept[0].decision == "rollback"
    record = kept[0].record
    assert record["decided_by"] == "redline rollout (automatic)"
    assert "haproxy" in record["what_changed"]
    assert "failed: p50" in record["measured_effect"]
    assert record["expected_effect"]
    assert record["evidence"]["judgement"]["verdict"] == "fail"
    page = tmp_path / "decisions.html"
    assert main(["decisions", "--json", "--html", str(page)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["decision"] == "rollback"
    text = page.read_text()
    assert '<section class="rollback">' in text
    assert "redline rollout (automatic)" in text
    assert "p50 *</td><td>high (fails)</td>" in text  # the evidence, metric by metric


@pytest.mark.timeout(300)
def test_a_good_canary_reaches_all_the_traffic(
    tmp_path: Path,
    serve: Callable[..., str],
    prometheus_of: Callable[[dict[str, str]], str],  # noqa: F811
    haproxy: Callable[[str, str], tuple[str, str]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, result, splitter = rollout(tmp_path, serve, prometheus_of, haproxy, 0.008, capsys)
    assert code == 0, [s["judgement"] for s in result["steps"]]
    assert result["outcome"] == "promoted"
    assert [s["weight"] for s in result["steps"]] == [20.0, 50.0]  # 100: the promotion
    assert all(s["passed"] for s in result["steps"])
    assert splitter.weight("canary") == 100
    assert splitter.weight("stable") == 0
    assert [d["decision"] for d in result["decisions"]] == ["advance", "promote"]
    assert result["weight"] == 100


def test_an_unreachable_splitter_changes_nothing_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    splitter = HAProxySplitter(str(tmp_path / "nothing.sock"), "shop", "stable", "canary")
    with pytest.raises(SplitterError, match=r"nothing\.sock"):
        splitter.set_canary_weight(5)
    code = main(
        ["rollout", "--haproxy", str(tmp_path / "nothing.sock"), "--backend", "shop",
         "--prometheus", "http://127.0.0.1:1", "--weights", "5,100", "--interval", "1s"]
    )  # fmt: skip
    assert code == 3
    assert "cannot roll out" in capsys.readouterr().err
    for argv, message in (
        (["--webhook", "http://127.0.0.1:1", "--haproxy", "x"], "give one traffic splitter"),
        (["--haproxy", "x"], "--haproxy needs --backend"),
        (["--webhook", "http://127.0.0.1:1", "--weights", "50,5"], "weights: expected them rising"),
        (
            ["--webhook", "http://127.0.0.1:1", "--interval", "0s"],
            "--interval: expected a positive",
        ),
    ):
        assert main(["rollout", "--prometheus", "http://127.0.0.1:1", *argv]) == 2
        assert message in capsys.readouterr().err
