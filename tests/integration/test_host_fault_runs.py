"""Runs whose plans schedule host faults on the target they serve (``target: serve``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from redline.core import RunResult

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="host faults need root")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(plan: Path, out: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDLINE_FAULTS_DIR": str(tmp_path / "ledger")}
    return subprocess.run(
        [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip


def plan_text(port: int, schedule: str) -> str:
    serve = f"{sys.executable} -m redline testserver --port {port} --latency 2ms"
    return f"""
name: host-faults
target: http://127.0.0.1:{port}
requests: [{{name: get, path: /}}]
load: {{rate: 50/s}}
duration: 10s
timeouts: {{connect: 500ms, read: 3s}}
generator: {{late_tolerance: 0.9}}
slo: [p99 < 200ms, error_rate < 1%]
observe: {{serve: "{serve}"}}
faults:
  schedule:
{schedule}
"""


@pytest.mark.timeout(150)
def test_a_paused_target_shows_in_latency_and_is_resumed(tmp_path: Path) -> None:
    port = free_port()
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        plan_text(
            port,
            "    - {name: freeze, at: 3s, for: 2s, process: {target: serve, action: pause}}",
        )
    )
    out, html = tmp_path / "run.json", tmp_path / "run.html"
    done = run(plan, out, tmp_path, "--html", str(html))
    assert done.returncode == 1, done.stdout + done.stderr  # the freeze broke p99
    assert "fault freeze: SIGSTOP, via signals to the group of pid" in done.stdout
    page = html.read_text()
    assert '"kind":"fault","label":"freeze"' in page  # the window shaded on the time charts
    assert '"faults":[{"name":"freeze","kind":"process:pause"' in page  # detection, recovery
    document = json.loads(out.read_text())
    (log,) = document["analysis"]["fault_log"]
    assert log["kind"] == "process"
    assert log["detail"] == "SIGSTOP"
    assert log["undone_at_s"] is not None
    (impact,) = document["analysis"]["faults"]
    assert impact["detected_after_s"] is not None
    assert impact["recovered_after_s"] is not None  # resumed: the target answered again
    result = RunResult.from_dict(document)
    worst_ms = [i.total().latency.max / 1000 for i in result.intervals if i.total().requests]
    assert max(worst_ms) > 1000  # requests held through the freeze of 2 s
    assert worst_ms[-1] < 200  # and fast again at the end
    assert document["plan"]["faults"][0]["host"] == {
        "process": {"target": "serve", "action": "pause"}
    }


@pytest.mark.timeout(150)
def test_a_killed_target_is_started_again_and_the_errors_counted(tmp_path: Path) -> None:
    port = free_port()
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        plan_text(
            port,
            "    - {name: crash, at: 3s, for: 3s, process: {target: serve, action: kill}}",
        )
    )
    out = tmp_path / "run.json"
    done = run(plan, out, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads(out.read_text())
    errors = [sum(e["errors"] for e in i["endpoints"].values()) for i in document["intervals"]]
    assert sum(errors[3:6]) > 50  # nothing answered while it was down
    assert errors[-1] == 0  # started again by redline at 6 s, and answering
    (impact,) = document["analysis"]["faults"]
    assert impact["recovered_after_s"] is not None


@pytest.mark.parametrize(
    ("entry", "path", "said"),
    [
        ("{at: 1s, for: 1s, process: {target: pid:1, action: pause}}",
         "faults.schedule[0].process.target", "never PID 1"),
        ("{at: 1s, for: 1s, process: {target: serve, action: freeze}}",
         "faults.schedule[0].process.action", "expected one of kill"),
        ("{at: 1s, for: 1s, network: {netns: no-such-ns, dev: veth0, down: true}}",
         "faults.schedule[0].network.netns", "no network namespace"),
        ("{at: 1s, for: 1s, network: {dev: eth0, down: true}}",
         "faults.schedule[0].network.netns", "host's own interfaces are left alone"),
        ("{at: 1s, for: 1s, disk: {path: /tmp, fill: true}}",
         "faults.schedule[0].disk.path", "root file system"),
        ("{at: 1s, for: 1s, volcano: {target: serve}}",
         "faults.schedule[0].volcano", "unknown key"),
    ],
)  # fmt: skip
def test_bad_host_faults_are_refused_before_any_load(
    tmp_path: Path, entry: str, path: str, said: str
) -> None:
    port = free_port()
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text(port, f"    - {entry}"))
    out = tmp_path / "run.json"
    done = run(plan, out, tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert path in done.stderr
    assert said in done.stderr
    assert not out.exists()  # no run was made
