"""Host faults applied and undone for real: processes, cgroups (this host's layout), neighbours.

Each test starts the processes and makes the cgroups it acts on, reads the system's state
before, during and after, and leaves nothing behind (the ledger goes to a folder of the
test's own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from redline.faults import (
    CgroupHost,
    FaultSchedule,
    HostContext,
    HostFaultError,
    Ledger,
    ScheduledFault,
    host_fault,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="host faults need root")

HOST = CgroupHost()


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    monkeypatch.setenv("REDLINE_FAULTS_DIR", str(tmp_path / "ledger"))
    return Ledger(tmp_path / "ledger")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    marker = f"redline-test-{os.getpid()}-{time.monotonic_ns()}"
    process = subprocess.Popen(
        [sys.executable, "-c", "import time, sys; time.sleep(600)", marker],
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while state(process.pid) != psutil.STATUS_SLEEPING and time.monotonic() < deadline:
        time.sleep(0.01)  # started and asleep
    yield process
    for found in psutil.process_iter(["cmdline"]):
        if marker in (found.info["cmdline"] or []):
            found.kill()
    process.kill()
    process.wait()


def state(pid: int) -> str:
    return psutil.Process(pid).status()


def cgroup_of(pid: int, controller: str) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, where = line.split(":", 2)
        if controller in names.split(","):
            return where
    raise AssertionError(f"no {controller} cgroup for {pid}")


def apply(kind: str, spec: dict[str, object], ledger: Ledger, **context: object) -> object:
    fault = host_fault("f", kind, spec, for_s=30)
    ctx = HostContext(ledger=ledger, **context)  # type: ignore[arg-type]
    fault.check(ctx)
    fault.apply(ctx)
    return fault


def test_pause_stops_the_process_and_undo_resumes_it(
    sleeper: subprocess.Popen[bytes], ledger: Ledger
) -> None:
    assert state(sleeper.pid) == psutil.STATUS_SLEEPING
    fault = apply("process", {"target": f"pid:{sleeper.pid}", "action": "pause"}, ledger)
    assert state(sleeper.pid) == psutil.STATUS_STOPPED
    assert len(list(ledger.entries())) == 1  # recorded while on
    assert fault.undo() == []  # type: ignore[attr-defined]
    assert state(sleeper.pid) == psutil.STATUS_SLEEPING
    assert list(ledger.entries()) == []


def test_kill_is_undone_by_starting_the_same_command_again(
    sleeper: subprocess.Popen[bytes], ledger: Ledger
) -> None:
    command = psutil.Process(sleeper.pid).cmdline()
    fault = apply("process", {"target": f"pid:{sleeper.pid}", "action": "kill"}, ledger)
    sleeper.wait(timeout=5)
    assert sleeper.returncode == -9
    fault.undo()  # type: ignore[attr-defined]
    again = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == command]
    assert len(again) == 1 and again[0].pid != sleeper.pid  # noqa: PT018


def test_pid_1_and_redline_itself_are_refused(ledger: Ledger) -> None:
    for pid in (1, os.getpid()):
        fault = host_fault("f", "process", {"target": f"pid:{pid}", "action": "pause"}, for_s=1)
        with pytest.raises(HostFaultError, match="never PID 1") as caught:
            fault.check(HostContext(ledger=ledger))
        assert caught.value.key == "target"


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"target": "serve", "action": "freeze"}, "action"),
        ({"target": "pid:x", "action": "pause"}, "target"),
        ({"action": "pause"}, "target"),
        ({"target": "serve", "action": "restart", "delay": "soon"}, "delay"),
    ],
)
def test_bad_process_faults_name_the_key(spec: dict[str, object], key: str) -> None:
    with pytest.raises(HostFaultError) as caught:
        host_fault("f", "process", spec, for_s=1).check(HostContext())
    assert caught.value.key == key


def test_a_cpu_quota_on_a_process_moves_it_and_moves_it_back(
    sleeper: subprocess.Popen[bytes], ledger: Ledger
) -> None:
    controller = "" if HOST.v2 else "cpu"
    before = cgroup_of(sleeper.pid, controller)
    fault = apply("cgroup", {"target": f"pid:{sleeper.pid}", "cpu_max": 0.2}, ledger)
    inside = cgroup_of(sleeper.pid, controller)
    assert inside != before
    assert "redline-target-" in inside
    folder = (HOST.root if HOST.v2 else HOST.tree("cpu")) / inside.lstrip("/")
    if HOST.v2:
        assert (folder / "cpu.max").read_text().split() == ["20000", "100000"]
    else:
        assert (folder / "cpu.cfs_quota_us").read_text().strip() == "20000"
    assert fault.undo() == []  # type: ignore[attr-defined]
    assert cgroup_of(sleeper.pid, controller) == before
    assert not folder.exists()


def test_the_quota_really_throttles_a_busy_process(ledger: Ledger) -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    try:
        fault = apply("cgroup", {"target": f"pid:{busy.pid}", "cpu_max": 0.1}, ledger)
        watched = psutil.Process(busy.pid)
        watched.cpu_percent()
        time.sleep(1.5)
        limited = watched.cpu_percent()
        fault.undo()  # type: ignore[attr-defined]
        watched.cpu_percent()
        time.sleep(1.5)
        free = watched.cpu_percent()
    finally:
        busy.kill()
        busy.wait()
    assert limited < 20  # 10% of a core, with room for accounting
    assert free > 3 * limited


@pytest.fixture
def own_cgroup() -> Iterator[str]:
    """A cgroup of the test's own, in this host's layout, removed after."""
    name = f"redline-test-{os.getpid()}"
    folders = (
        [HOST.root / name] if HOST.v2 else [HOST.tree(c) / name for c in ("cpu", "memory", "blkio")]
    )
    for folder in folders:
        folder.mkdir()
    yield name
    for folder in folders:
        folder.rmdir()


def test_knobs_of_a_named_cgroup_are_written_and_restored_exactly(
    own_cgroup: str, ledger: Ledger
) -> None:
    files = (
        ["cpu.max", "cpu.weight", "memory.high"]
        if HOST.v2
        else ["cpu/cpu.cfs_quota_us", "cpu/cpu.shares", "memory/memory.limit_in_bytes"]
    )

    def read() -> list[str]:
        base = HOST.root / own_cgroup if HOST.v2 else HOST.root
        return [
            (base / (f if HOST.v2 else f.replace("/", f"/{own_cgroup}/", 1))).read_text().strip()
            for f in files
        ]

    before = read()
    fault = apply(
        "cgroup",
        {"target": f"cgroup:{own_cgroup}", "cpu_max": 0.5, "cpu_weight": 50, "memory_high": "64Mi"},
        ledger,
    )
    during = read()
    assert during != before
    assert during[1] == ("50" if HOST.v2 else "512")  # cpu.shares = weight x 1024 / 100
    assert during[2] == str(64 * 1024 * 1024)
    fault.undo()  # type: ignore[attr-defined]
    assert read() == before


def test_a_cpu_neighbour_runs_in_its_own_cgroup_and_leaves_nothing(ledger: Ledger) -> None:
    fault = apply("neighbour", {"cpu": 1, "weight": 20, "cpus": "0"}, ledger)
    process = fault._process  # type: ignore[attr-defined]
    where = cgroup_of(process.pid, "" if HOST.v2 else "cpu")
    assert "redline-neighbour-" in where
    folder = (HOST.root if HOST.v2 else HOST.tree("cpu")) / where.lstrip("/")
    shares = (folder / ("cpu.weight" if HOST.v2 else "cpu.shares")).read_text().strip()
    assert shares == ("20" if HOST.v2 else "205")
    time.sleep(1.0)
    burning = [psutil.Process(int(p)) for p in (folder / "cgroup.procs").read_text().split()]
    assert sum(p.cpu_times().user for p in burning) > 0.3  # it really burns CPU
    assert all(p.cpu_affinity() == [0] for p in burning)
    fault.undo()  # type: ignore[attr-defined]
    assert not folder.exists()
    assert not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() == "zombie"


def pausing(pid: int, ledger: Ledger, *, at_s: float, for_s: float) -> FaultSchedule:
    """A schedule of one fault: ``pid`` paused from ``at_s`` for ``for_s``."""
    pause = ScheduledFault.of(
        {"name": "freeze", "proxy": "", "at_s": at_s, "for_s": for_s,
         "host": {"process": {"target": f"pid:{pid}", "action": "pause"}}}
    )  # fmt: skip
    return FaultSchedule([pause], None, host=HostContext(ledger=ledger))


def test_a_schedule_applies_and_undoes_host_faults_on_time(
    sleeper: subprocess.Popen[bytes], ledger: Ledger
) -> None:
    schedule = pausing(sleeper.pid, ledger, at_s=0.3, for_s=0.6)
    seen = []
    schedule.start()
    for _ in range(15):
        seen.append(state(sleeper.pid))
        time.sleep(0.1)
    schedule.stop()
    assert psutil.STATUS_STOPPED in seen
    assert seen[0] != psutil.STATUS_STOPPED
    assert seen[-1] != psutil.STATUS_STOPPED
    (log,) = schedule.log()
    assert log["applied_at_s"] >= 0.29  # not before its time
    assert log["undone_at_s"] - log["applied_at_s"] >= 0.55  # on for its whole length
    assert "signals" in log["via"]


def test_a_schedule_stopped_early_undoes_what_is_on(
    sleeper: subprocess.Popen[bytes], ledger: Ledger
) -> None:
    schedule = pausing(sleeper.pid, ledger, at_s=0.0, for_s=60)
    schedule.start()
    deadline = time.monotonic() + 5
    while state(sleeper.pid) != psutil.STATUS_STOPPED and time.monotonic() < deadline:
        time.sleep(0.02)
    schedule.stop()
    assert state(sleeper.pid) != psutil.STATUS_STOPPED
    assert list(ledger.entries()) == []
