"""Cgroups: one made and removed for real (this machine's layout), and v2's files read.

This machine has the v1 (hybrid) layout: the v1 test makes a real cgroup. A v2 tree with
the cpu and memory controllers cannot be mounted here, so v2 reading is checked on a
directory holding the files as the kernel writes them (a fixture, for that reason only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redline.observe import Cgroup, CgroupSampler, CgroupSandbox, WatchError
from redline.observe._cgroup import pressure
from redline.observe._samplers import figures

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a cgroup needs root")


@needs_root
def test_a_sandbox_limits_throttles_and_is_removed_even_with_processes_inside() -> None:
    sandbox = CgroupSandbox(cpu=0.2, memory=64 * 1024 * 1024)
    dirs = list(sandbox.dirs)
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", "while True: pass"], preexec_fn=lambda: sandbox.join(os.getpid())
        )
        cgroup = sandbox.reader()
        assert process.pid in cgroup.pids()
        assert cgroup.cpu_quota() == pytest.approx(0.2)
        assert cgroup.memory_limit() == 64 * 1024 * 1024
        sampler = CgroupSampler(cgroup)
        before = sampler.read()
        time.sleep(1.0)
        after = sampler.read()
        values = figures(before, after, sampler.thing.cores)
        assert values["cpu_cores"] is not None
        assert values["cpu_cores"] < 0.3  # the quota holds a busy loop to 0.2 cores
        assert (values["throttled_periods"] or 0) > 0
        assert (values["throttled_s"] or 0) > 0
        assert values["memory_bytes"] is not None
        assert values["memory_bytes"] > 0
    finally:
        sandbox.remove()
    assert all(not d.exists() for d in dirs)
    assert process.wait(timeout=5) != 0  # killed with the cgroup


def test_a_path_that_is_not_a_cgroup_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WatchError, match="not a cgroup"):
        Cgroup(tmp_path)


def test_v2_files_are_read_as_the_kernel_writes_them(tmp_path: Path) -> None:
    files = {
        "cgroup.procs": "12\n34\n",
        "cgroup.controllers": "cpu io memory pids\n",
        "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
        "nr_periods 40\nnr_throttled 7\nthrottled_usec 350000\n",
        "cpu.max": "50000 100000\n",
        "memory.current": "104857600\n",
        "memory.max": "268435456\n",
        "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        "cpu.pressure": "some avg10=1.00 avg60=0.50 avg300=0.10 total=123456\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=789\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    cgroup = Cgroup(tmp_path)
    assert cgroup.layout == "v2"
    assert cgroup.pids() == [12, 34]
    assert cgroup.cpu_usage_s() == pytest.approx(2.5)
    assert cgroup.cpu_split_s() == (pytest.approx(2.0), pytest.approx(0.5))
    assert cgroup.throttling() == (7, pytest.approx(0.35))
    assert cgroup.cpu_quota() == pytest.approx(0.5)
    assert cgroup.memory_bytes() == 104857600
    assert cgroup.memory_limit() == 268435456
    assert cgroup.oom_kills() == 1
    assert cgroup.pressure("cpu") == {"some": 123456, "full": 789}
    (tmp_path / "cpu.max").write_text("max 100000\n")
    (tmp_path / "memory.max").write_text("max\n")
    assert cgroup.cpu_quota() is None
    assert cgroup.memory_limit() is None


def test_the_hosts_pressure_files_parse_when_the_kernel_has_them() -> None:
    if not Path("/proc/pressure/cpu").exists():
        pytest.skip("this kernel has no PSI")
    totals = pressure(Path("/proc/pressure/cpu"))
    assert "some" in totals
    assert totals["some"] >= 0
