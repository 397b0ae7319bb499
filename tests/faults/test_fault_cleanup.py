"""A redline killed mid-fault: its faults stay on record and are undone, by clean or watchdog.

A child process stands in for redline: it applies a pause and a cgroup quota to a process
of the test's, says so, and sleeps; the test SIGKILLs it (nothing of redline runs after
that) and checks the system before and after ``redline faults clean`` or the watchdog.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from redline.faults import CgroupHost, Ledger

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="host faults need root")

HOST = CgroupHost()
CONTROLLER = "" if HOST.v2 else "cpu"

APPLY = textwrap.dedent(
    """
    import sys, time
    from redline.faults import HostContext, host_fault
    pid = sys.argv[1]
    ctx = HostContext()
    for kind, spec in (("process", {"target": f"pid:{pid}", "action": "pause"}),
                       ("cgroup", {"target": f"pid:{pid}", "cpu_max": 0.3})):
        fault = host_fault(kind, kind, spec, for_s=float(sys.argv[2]))
        fault.check(ctx)
        fault.apply(ctx)
    print("applied", flush=True)
    time.sleep(600)
    """
)


def cgroup_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, where = line.split(":", 2)
        if (CONTROLLER == "" and names == "") or CONTROLLER in names.split(","):
            return where
    raise AssertionError(pid)


@pytest.fixture
def victim() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield process.pid
    process.kill()
    process.wait()


def crash_mid_fault(folder: Path, pid: int, *, watchdog: bool, for_s: float = 60) -> None:
    env = {**os.environ, "REDLINE_FAULTS_DIR": str(folder)}
    env["REDLINE_FAULTS_WATCHDOG"] = "1" if watchdog else "0"
    redline = subprocess.Popen(
        [sys.executable, "-c", APPLY, str(pid), str(for_s)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert redline.stdout is not None
    assert redline.stdout.readline().strip() == "applied"
    redline.kill()  # SIGKILL: no finally, no atexit, nothing of it runs
    redline.wait()
    redline.stdout.close()


def test_redline_faults_clean_undoes_what_a_killed_redline_left(
    victim: int, tmp_path: Path
) -> None:
    folder = tmp_path / "ledger"
    before = cgroup_of(victim)
    crash_mid_fault(folder, victim, watchdog=False)
    assert psutil.Process(victim).status() == psutil.STATUS_STOPPED  # left on by the crash
    assert "redline-target-" in cgroup_of(victim)
    listed = subprocess.run(
        [sys.executable, "-m", "redline", "faults", "list", "--dir", str(folder), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sorted(e["kind"] for e in json.loads(listed.stdout)) == ["cgroup", "process"]
    made = cgroup_of(victim)
    cleaned = subprocess.run(
        [sys.executable, "-m", "redline", "faults", "clean", "--dir", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert cleaned.stdout.count("undone:") == 2
    assert psutil.Process(victim).status() != psutil.STATUS_STOPPED
    assert cgroup_of(victim) == before
    tree = HOST.root if HOST.v2 else HOST.tree("cpu")
    assert not (tree / made.lstrip("/")).exists()  # the cgroup redline made is gone
    assert list(Ledger(folder).entries()) == []


def test_the_watchdog_undoes_the_faults_of_a_redline_that_died(victim: int, tmp_path: Path) -> None:
    folder = tmp_path / "ledger"
    before = cgroup_of(victim)
    crash_mid_fault(folder, victim, watchdog=True)
    deadline = time.monotonic() + 30
    while list(Ledger(folder).entries()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(Ledger(folder).entries()) == []
    assert psutil.Process(victim).status() != psutil.STATUS_STOPPED
    assert cgroup_of(victim) == before


def test_the_watchdog_undoes_a_fault_past_its_time_while_redline_hangs(
    victim: int, tmp_path: Path
) -> None:
    from redline.faults import HostContext, host_fault

    folder = tmp_path / "ledger"
    fault = host_fault("hang", "process", {"target": f"pid:{victim}", "action": "pause"}, for_s=0.5)
    fault.apply(HostContext(ledger=Ledger(folder)))
    assert psutil.Process(victim).status() == psutil.STATUS_STOPPED
    # this process stays alive and never undoes it: the watchdog must, after 0.5 s + grace
    deadline = time.monotonic() + 40
    while psutil.Process(victim).status() == psutil.STATUS_STOPPED:
        assert time.monotonic() < deadline, "the watchdog never undid the pause"
        time.sleep(0.2)
    assert list(Ledger(folder).entries()) == []
