"""Runs with faults on schedule: proxies started by the run, or driven through an API."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from redline.faults import FaultProxy, FaultSchedule, RemoteProxies, ScheduledFault
from redline.testing import Behaviour, TestServer

Server = Callable[..., TestServer]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)
def test_a_scheduled_outage_reports_detection_and_recovery_within_two_intervals(
    redline_server: Server, tmp_path: Path
) -> None:
    target = redline_server(Behaviour(latency=0.002))
    port = free_port()
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""
name: outage
target: http://127.0.0.1:{port}
requests: [{{name: get, path: /}}]
load: {{rate: 100/s}}
duration: 12s
timeouts: {{connect: 500ms, read: 2s}}
generator: {{late_tolerance: 0.9}}
slo: [error_rate < 1%]
faults:
  proxies:
    - {{name: svc, listen: "127.0.0.1:{port}", upstream: "127.0.0.1:{target.port}"}}
  schedule:
    - {{name: outage, at: 3s, for: 3s, proxy: svc, down: true}}
"""
    )
    out, html = tmp_path / "run.json", tmp_path / "run.html"
    done = subprocess.run(
        [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
         "--out", str(out), "--html", str(html)],
        capture_output=True, text=True, timeout=100, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr  # the outage broke the objective
    assert "fault outage (down, 3s-6s): detected after" in done.stdout
    document = json.loads(out.read_text())
    (impact,) = document["analysis"]["faults"]
    # truth: requests fail from 3 s and succeed again from 6 s, when the proxy is back
    assert impact["detected_after_s"] is not None
    assert impact["detected_after_s"] <= 2.0
    assert impact["recovered_after_s"] is not None
    assert impact["recovered_after_s"] <= 2.0
    assert impact["budget_consumed"]["error_rate < 1%"] > 1.0  # more than the whole budget
    errors = [sum(e["errors"] for e in i["endpoints"].values()) for i in document["intervals"]]
    assert errors[0] == 0 and errors[-1] == 0  # noqa: PT018 - before and after, clean
    assert sum(errors[3:6]) > 200  # and the outage really happened
    assert '"kind":"fault"' in html.read_text()  # the report shades the window


def test_a_schedule_drives_an_external_proxy_through_its_api(redline_server: Server) -> None:
    target = redline_server()
    api = FaultProxy(port=0)
    with api.running():
        proxy = api.call(api.create("svc", "127.0.0.1:0", f"127.0.0.1:{target.port}"))
        latency = {"type": "latency", "attributes": {"latency": 50}}
        when = {"proxy": "svc", "at_s": 0.0, "for_s": 30.0}
        fault = ScheduledFault.of({"name": "slow", **when, "toxic": latency})
        down = ScheduledFault.of({"name": "gone", **when})
        schedule = FaultSchedule([fault, down], RemoteProxies(api.api_url))
        schedule.start()
        try:
            for _ in range(50):  # both are due at once; wait for the clock's thread
                if len(schedule.applied) == 2:
                    break
                threading.Event().wait(0.1)
            assert [t.name for t in proxy.toxics] == ["redline-slow"]
            assert api.get("svc").enabled is False
        finally:
            schedule.stop()  # undoes both at once, long before their time is up
        assert api.get("svc").toxics == []
        assert api.get("svc").enabled is True
        assert schedule.errors == []
