"""Chaos experiments: the hypothesis before and after, the method, and rollbacks that always run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from redline.cli._main import main
from redline.faults import FaultProxy
from redline.testing import Behaviour, TestServer

from .test_fault_runs import free_port

Server = Callable[..., TestServer]


def files(tmp_path: Path, target: str, method: str, *, proxies: str) -> Path:
    (tmp_path / "plan.yaml").write_text(
        f"name: shop\ntarget: {target}\nrequests: [{{name: get, path: /}}]\n"
        "load: {rate: 50/s}\nduration: 10s\ngenerator: {late_tolerance: 0.9}\n"
        "slo: [p99 < 100ms, error_rate < 1%]\n"
    )
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(
        f"title: slow network\n{proxies}\nsteady-state: {{plan: plan.yaml, duration: 2s}}\n"
        f"method:\n{method}\nrollbacks:\n  - reset\n"
    )
    return experiment


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("latency", "code", "status"), [(300, 1, "deviated"), (1, 0, "completed")])
def test_the_hypothesis_after_the_method_decides_the_exit_code(
    redline_server: Server, tmp_path: Path, latency: int, code: int, status: str
) -> None:
    target = redline_server(Behaviour(latency=0.002))
    port = free_port()
    experiment = files(
        tmp_path,
        f"http://127.0.0.1:{port}",
        f"  - toxic: {{proxy: shop, type: latency, attributes: {{latency: {latency}}}}}\n"
        "  - load: {plan: plan.yaml, duration: 2s}",
        proxies=f'proxies: [{{name: shop, listen: "127.0.0.1:{port}", '
        f'upstream: "127.0.0.1:{target.port}"}}]',
    )
    journal = tmp_path / "journal.json"
    assert main(["experiment", str(experiment), "--out", str(journal)]) == code
    document = json.loads(journal.read_text())
    assert document["status"] == status
    assert document["before"]["holds"] is True
    assert document["after"]["holds"] is (code == 0)
    assert [m["action"] for m in document["method"]] == ["toxic", "load"]
    assert all(m["ok"] for m in document["method"])
    assert document["method"][1]["requests"] > 0
    assert [r["action"] for r in document["rollbacks"]] == ["reset"]


@pytest.mark.timeout(120)
def test_rollbacks_run_after_ctrl_c(redline_server: Server, tmp_path: Path) -> None:
    target = redline_server()
    api = FaultProxy(port=0)
    with api.running():
        proxy = api.call(api.create("shop", "127.0.0.1:0", f"127.0.0.1:{target.port}"))
        experiment = files(
            tmp_path,
            f"http://{proxy.listen}",
            "  - toxic: {proxy: shop, type: latency, attributes: {latency: 5}}\n"
            "  - down: shop\n"
            "  - pause: 60s",
            proxies=f"api: {api.api_url}",
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "redline", "experiment", str(experiment)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            for _ in range(300):  # until the method has taken the proxy down
                if not api.get("shop").enabled:
                    break
                threading.Event().wait(0.1)
            assert not api.get("shop").enabled
            assert [t.name for t in api.get("shop").toxics] == ["latency_downstream"]
            process.send_signal(signal.SIGINT)
            stdout, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 130
        assert "experiment interrupted" in stdout
        assert api.get("shop").enabled  # the rollback brought it back...
        assert api.get("shop").toxics == []  # ...and removed the toxic


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("title: x\n", "steady-state: is required"),
        ("steady-state: {plan: none.yaml}\nmethod: [pause: 1s]\n", "steady-state.plan: no plan"),
        (
            "steady-state: {plan: plan.yaml}\nmethod: [{down: db}]\n",
            'method[0].down: no proxy named "db"',
        ),
        (
            "steady-state: {plan: plan.yaml}\nmethod: [{explode: db}]\n",
            "method[0].explode: unknown key",
        ),
    ],
)
def test_a_bad_experiment_exits_2_naming_the_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    (tmp_path / "plan.yaml").write_text(
        "name: p\ntarget: http://127.0.0.1:1\nrequests: [{name: g, path: /}]\n"
        "load: {rate: 1/s}\nduration: 1s\nslo: [p99 < 1s]\n"
    )
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(text)
    assert main(["experiment", str(experiment)]) == 2
    err = capsys.readouterr().err
    assert str(experiment) in err
    assert message in err


@pytest.mark.timeout(120)
@pytest.mark.skipif(os.geteuid() != 0, reason="host faults are applied as root here")
def test_a_host_fault_in_the_method_is_judged_and_undone_at_the_end(tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "redline", "testserver", "--port", str(port), "--latency", "2ms"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        experiment = files(
            tmp_path,
            f"http://127.0.0.1:{port}",
            f'  - {{name: freeze, for: 60s, process: {{target: "pid:{server.pid}", '
            "action: pause}}\n"
            "  - pause: 1s",
            proxies="proxies: []",
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # it answers before the hypothesis is probed
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            time.sleep(0.1)
        journal, page = tmp_path / "journal.json", tmp_path / "experiment.html"
        code = main(["experiment", str(experiment), "--out", str(journal), "--html", str(page)])
        document = json.loads(journal.read_text())
        assert code == 1, document
        assert document["status"] == "deviated"  # frozen during the probe after the method
        assert document["before"]["holds"] is True
        fault = document["method"][0]
        assert fault["action"] == "fault"
        assert fault["ok"] is True
        assert fault["detail"] == "SIGSTOP"
        assert psutil.Process(server.pid).status() != psutil.STATUS_STOPPED  # undone at the end
        report = page.read_text()
        assert "Steady state before the method: holds" in report
        assert "Steady state after the method: does not hold" in report
        assert re.search(r"process fault freeze for 60s: [0-9.]+ s \+ 60\.0 s", report)  # a bar
        assert 'class="status">deviated' in report
    finally:
        server.kill()
        server.wait()
