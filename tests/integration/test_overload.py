"""An overloaded service with and without the adaptive limit, served by uvicorn.

The app has a fixed capacity (two workers of 10 ms: 200 req/s) and queues what exceeds
it. redline's engine offers three times that. Without protection the queue, and the
latency, grow for as long as the overload lasts; with the AdaptiveLimiter middleware the
excess is shed at once (503, Retry-After) and the admitted requests keep a bounded
latency while the service still delivers about its capacity.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redline.core import RunResult
from redline.store import StoredRun

from .test_fault_runs import free_port

SERVICES = Path(__file__).resolve().parents[2] / "examples" / "services"
CAPACITY = 200  # req/s: two workers, 10 ms each (examples/services/overload_app.py)


def overload(tmp_path: Path, *, limited: bool) -> RunResult:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "overload_app:app", "--app-dir", str(SERVICES),
         "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log",
         "--log-level", "warning"],
        env={**os.environ, "LIMITED": "1" if limited else "0"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"name: overload\ntarget: http://127.0.0.1:{port}\nrequests: [{{name: get, path: /}}]\n"
        f"load: {{rate: {3 * CAPACITY}/s}}\nduration: 8s\nwarmup: 1s\nworkers: 1\n"
        "timeouts: {connect: 2s, read: 4s}\ngenerator: {late_tolerance: 0.9}\n"
    )
    out = tmp_path / f"run-{limited}.json"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until uvicorn listens
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        done = subprocess.run(
            [sys.executable, "-m", "redline", "run", str(plan), "--quiet", "--no-store",
             "--out", str(out)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode in (0, 3), done.stdout + done.stderr
    finally:
        server.terminate()
        server.communicate(timeout=10)
    return StoredRun.from_dict(json.loads(out.read_text())).result


@pytest.mark.timeout(240)
def test_the_adaptive_limit_keeps_goodput_and_latency_where_queueing_does_not(
    tmp_path: Path,
) -> None:
    protected = overload(tmp_path, limited=True)
    unprotected = overload(tmp_path, limited=False)

    def goodput(run: RunResult) -> float:
        return run.total().status.get(200, 0) / run.duration_s

    def p99s(run: RunResult) -> list[float]:
        return [i.total().latency.value_at_percentile(99) / 1000 for i in run.measured]

    assert protected.total().status.get(503, 0) > 0, "the limit never shed anything"
    assert 0.8 * CAPACITY <= goodput(protected) <= 1.2 * CAPACITY
    assert protected.total().latency_ms["p99"] < 500
    assert max(p99s(protected)) < 1000  # bounded in every second of the overload
    assert goodput(unprotected) < goodput(protected)  # queued work the client gave up on
    assert not protected.total().error_classes  # nothing timed out
    # unprotected, the queue grows for the whole overload, and so does the latency, until
    # requests start to time out (the client gives up after 4 s)
    late = [p for p in p99s(unprotected) if p > 0]
    # rising as a whole (a busy machine may put one second out of order): the fourth
    # second's p99 well above the first's, and the worst above twice the first
    assert late[3] > 1.5 * late[0], late
    assert max(late) > 2 * late[0], late
    assert unprotected.total().error_classes.get("read_timeout", 0) > 0
    assert unprotected.total().latency_ms["p99"] > 5 * protected.total().latency_ms["p99"]
