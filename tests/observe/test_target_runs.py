"""Runs that serve and watch a target with planted causes, and name each cause.

The target (planted.py) is started by the run itself (``observe.serve``), pinned to CPU 0;
the test pins itself (and so the load's workers) to CPU 1, so the target's CPU is its own.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import redline
from redline.core import RunOutcome, TargetReport
from redline.observe import WatchError
from redline.plan import plan_from_dict

PLANTED = Path(__file__).with_name("planted.py")
CPUS = sorted(os.sched_getaffinity(0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def _load_on_its_own_cpu() -> Iterator[None]:
    before = os.sched_getaffinity(0)
    if len(CPUS) > 1:
        os.sched_setaffinity(0, {CPUS[-1]})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def watched_run(
    path: str, *, limit: str | None = None, profile: bool = True, **changes: Any
) -> RunOutcome:
    port = free_port()
    serve: dict[str, Any] = {
        "command": f"{sys.executable} {PLANTED} {port}",
        "cpus": str(CPUS[0]),
    }
    if limit:
        serve["limit"] = limit
    data: dict[str, Any] = {
        "name": "planted",
        "target": f"http://127.0.0.1:{port}",
        "requests": [{"name": path.strip("/"), "path": path}],
        "load": {"vus": 8},
        "duration": "6s",
        "warmup": "1s",
        "workers": 1,
        "observe": {"serve": serve, "profile": profile},
    }
    data.update(changes)
    return redline.run(plan_from_dict(data, source="test"))


def target_of(outcome: RunOutcome) -> TargetReport:
    assert outcome.target is not None
    return outcome.target


def test_an_o_n_scan_is_the_hottest_frame_and_the_bottleneck_is_cpu() -> None:
    target = target_of(watched_run("/scan"))
    assert target.profile is not None
    assert target.profile.note is None
    assert target.profile.top[0].function == "scan_catalogue_linearly_for_sku"
    assert target.verdict is not None
    assert target.verdict.bottleneck == "cpu", target.verdict.evidence
    assert "scan_catalogue_linearly_for_sku" in target.verdict.evidence


@pytest.mark.parametrize(("path", "cause"), [("/locked", "lock"), ("/pooled", "pool")])
def test_waiting_on_a_lock_or_a_pool_is_named_so_not_cpu(path: str, cause: str) -> None:
    target = target_of(watched_run(path))
    assert target.verdict is not None
    assert target.verdict.bottleneck == cause, target.verdict.evidence
    assert target.profile is not None
    assert target.profile.waits.get(cause, 0) > target.profile.samples  # waiting, not running
    cpu = next(r for r in target.use if r.resource == "cpu" and r.thing == "serve")
    assert cpu.utilisation_pct is not None
    assert cpu.utilisation_pct < 50


@pytest.mark.skipif(os.geteuid() != 0, reason="making a cgroup needs root")
def test_a_cpu_quota_is_named_with_its_throttled_time() -> None:
    target = target_of(watched_run("/scan", limit="cpu=0.5"))
    assert target.verdict is not None
    assert target.verdict.bottleneck == "cpu-quota", target.verdict.evidence
    throttled = [v for _, v in target.series("serve-cgroup", "throttled_s") if v is not None]
    assert sum(throttled) > 0
    assert target.served is not None
    assert target.served.cgroup is not None
    assert not Path(target.served.cgroup).exists()  # removed after the run


def test_samples_line_up_with_the_load_intervals() -> None:
    # the target burns CPU from 5 s to 10 s after the first request, which comes at the
    # load's start: those intervals, and only those, are busy
    outcome = watched_run(
        "/tick",
        load={"rate": "20/s"},
        duration="14s",
        warmup="0s",
        profile=False,
    )
    target = target_of(outcome)
    cpu = dict(target.series("serve", "cpu_cores"))
    busy = [i for i, v in cpu.items() if v is not None and v > 0.5]
    assert busy, cpu
    assert set(busy) <= set(range(4, 11))  # the edges may be partly busy
    assert {6, 7, 8} <= set(busy)
    assert [i.index for i in outcome.result.intervals] == sorted(cpu)


def test_a_target_that_exits_mid_run_keeps_the_load_results_and_says_when() -> None:
    port = free_port()
    script = (
        "import sys, threading, os, time\n"
        "from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler\n"
        "class H(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.send_header('Content-Length', '0')\n"
        "        self.end_headers()\n"
        "    def log_message(self, *a): pass\n"
        "threading.Timer(3.0, lambda: os._exit(3)).start()\n"
        f"ThreadingHTTPServer(('127.0.0.1', {port}), H).serve_forever()\n"
    )
    data = {
        "target": f"http://127.0.0.1:{port}",
        "requests": [{"path": "/"}],
        "load": {"rate": "20/s"},
        "duration": "6s",
        "workers": 1,
        "observe": {"serve": _script(script)},
    }
    outcome = redline.run(plan_from_dict(data, source="test"))
    target = target_of(outcome)
    assert outcome.result.total().requests > 0
    assert outcome.result.total().errors > 0  # refused after it exited
    assert target.served is not None
    assert target.served.exit_status == 3
    assert target.served.exited_at_s is not None
    assert 1.5 < target.served.exited_at_s < 6
    late = [v for i, v in target.series("serve", "cpu_cores") if i >= 5]
    assert late
    assert all(v is None for v in late)  # missing, never zero
    assert any("exited" in note for note in target.notes)


def _script(text: str) -> str:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"redline-exits-{os.getpid()}.py"
    path.write_text(text)
    return f"{sys.executable} {path}"


def test_a_served_command_that_exits_at_once_is_a_clear_error() -> None:
    data = {
        "target": f"http://127.0.0.1:{free_port()}",
        "requests": [{"path": "/"}],
        "load": {"rate": "5/s"},
        "duration": "2s",
        "observe": {
            "serve": f"{sys.executable} -c \"import sys; sys.exit('no config file here')\""
        },
    }
    with pytest.raises(
        WatchError, match=r"(?s)exited with status 1 before .*answered:\n.*no config file here"
    ):
        redline.run(plan_from_dict(data, source="test"))


def test_a_served_command_that_never_answers_is_stopped_and_named() -> None:
    data = {
        "target": f"http://127.0.0.1:{free_port()}",
        "requests": [{"path": "/"}],
        "load": {"rate": "5/s"},
        "duration": "2s",
        "observe": {
            "serve": {
                "command": f"{sys.executable} -c \"import time; print('up'); time.sleep(60)\"",
                "ready_timeout": "1s",
                "grace": "1s",
            }
        },
    }
    with pytest.raises(WatchError, match="did not answer within 1s"):
        redline.run(plan_from_dict(data, source="test"))
