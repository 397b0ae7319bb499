"""Cgroup knobs on both layouts, written into a folder shaped like each.

This machine mounts cgroup v1 controllers (hybrid mode), where the real writes are tested
(test_host_faults.py); a v2 host cannot be had here, so its file names and formats are
checked on a folder laid out as a v2 mount is (``cgroup.controllers`` at the root), and
the v1 ones on a v1-shaped folder too, so both mappings are pinned the same way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redline.faults import CgroupHost, ControlGroup, FaultError, HostFaultError, Ledger, host_fault
from redline.faults._ledger import undo_step

V2_FILES = {
    "cpu.max": "max 100000\n",
    "cpu.weight": "100\n",
    "memory.high": "max\n",
    "memory.low": "0\n",
    "io.max": "",
    "io.weight": "default 100\n",
    "cgroup.procs": "",
}
V1_FILES = {
    "cpu": {"cpu.cfs_quota_us": "-1\n", "cpu.cfs_period_us": "100000\n", "cpu.shares": "1024\n"},
    "memory": {"memory.limit_in_bytes": "9223372036854771712\n"},
    "blkio": {
        "blkio.throttle.read_bps_device": "",
        "blkio.throttle.write_bps_device": "",
        "blkio.throttle.read_iops_device": "",
        "blkio.throttle.write_iops_device": "",
    },
}


def v2_group(root: Path) -> ControlGroup:
    root.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpu io memory pids\n")
    folder = root / "app"
    folder.mkdir()
    for name, text in V2_FILES.items():
        (folder / name).write_text(text)
    return ControlGroup.at("app", host=CgroupHost(root))


def v1_group(root: Path) -> ControlGroup:
    for controller, files in V1_FILES.items():
        folder = root / controller / "app"
        folder.mkdir(parents=True)
        (folder / "cgroup.procs").write_text("")
        for name, text in files.items():
            (folder / name).write_text(text)
    return ControlGroup.at("app", host=CgroupHost(root))


def snapshot(root: Path) -> dict[str, str]:
    """Every file's text, without the kernel's trailing newline (redline writes none)."""
    return {str(p.relative_to(root)): p.read_text().strip() for p in root.rglob("*") if p.is_file()}


def undo_all(ledger: Ledger) -> None:
    for entry in ledger.entries():
        assert ledger.undo(entry) == []


def test_v2_knobs_have_v2_names_and_formats(tmp_path: Path) -> None:
    group = v2_group(tmp_path / "cg")
    ledger = Ledger(tmp_path / "ledger")
    entry = ledger.open("x", "cgroup", max_s=10)
    group.set(ledger, entry, "cpu_max", 0.25)
    group.set(ledger, entry, "cpu_weight", 500)
    group.set(ledger, entry, "memory_high", 64 << 20)
    group.set(ledger, entry, "memory_low", 32 << 20)
    group.set(ledger, entry, "io_weight", 300)
    group.set(ledger, entry, "io_max", {"device": "8:0", "wbps": 1048576, "riops": 50})
    app = tmp_path / "cg" / "app"
    assert (app / "cpu.max").read_text() == "25000 100000"
    assert (app / "cpu.weight").read_text() == "500"
    assert (app / "memory.high").read_text() == str(64 << 20)
    assert (app / "memory.low").read_text() == str(32 << 20)
    assert (app / "io.weight").read_text() == "default 300"
    assert (app / "io.max").read_text() == "8:0 wbps=1048576 riops=50"
    undo_all(ledger)
    assert (app / "cpu.max").read_text() == "max 100000"
    assert (app / "io.max").read_text() == "8:0 rbps=max wbps=max riops=max wiops=max"
    assert (app / "memory.high").read_text() == "max"


def test_v1_knobs_map_to_their_v1_files(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    group = v1_group(root)
    before = snapshot(root)
    ledger = Ledger(tmp_path / "ledger")
    entry = ledger.open("x", "cgroup", max_s=10)
    group.set(ledger, entry, "cpu_max", 0.5)
    group.set(ledger, entry, "cpu_weight", 200)
    group.set(ledger, entry, "memory_high", 128 << 20)
    group.set(ledger, entry, "io_max", {"device": "7:0", "wbps": 4096, "wiops": 10})
    assert (root / "cpu/app/cpu.cfs_quota_us").read_text() == "50000"
    assert (root / "cpu/app/cpu.shares").read_text() == "2048"
    assert (root / "memory/app/memory.limit_in_bytes").read_text() == str(128 << 20)
    assert (root / "blkio/app/blkio.throttle.write_bps_device").read_text() == "7:0 4096"
    assert (root / "blkio/app/blkio.throttle.write_iops_device").read_text() == "7:0 10"
    with pytest.raises(FaultError, match=r"v1 has no memory\.low"):
        group.set(ledger, entry, "memory_low", 1)
    undo_all(ledger)
    after = snapshot(root)
    # a v1 throttle rule is removed by writing 0 for its device; every other file is as it was
    assert after.pop("blkio/app/blkio.throttle.write_bps_device") == "7:0 0"
    assert after.pop("blkio/app/blkio.throttle.write_iops_device") == "7:0 0"
    before.pop("blkio/app/blkio.throttle.write_bps_device")
    before.pop("blkio/app/blkio.throttle.write_iops_device")
    assert after == before


@given(
    cores=st.floats(min_value=0.01, max_value=64),
    weight=st.integers(min_value=1, max_value=10000),
)
def test_any_knobs_written_are_restored_on_both_layouts(
    tmp_path_factory: pytest.TempPathFactory, cores: float, weight: int
) -> None:
    for make in (v1_group, v2_group):
        base = tmp_path_factory.mktemp("layout")
        group = make(base / "cg")
        before = snapshot(base / "cg")
        ledger = Ledger(base / "ledger")
        entry = ledger.open("x", "cgroup", max_s=10)
        group.set(ledger, entry, "cpu_max", cores)
        group.set(ledger, entry, "cpu_weight", weight)
        undo_all(ledger)
        assert snapshot(base / "cg") == before


def test_unknown_steps_and_knobs_are_reported_not_ignored(tmp_path: Path) -> None:
    assert undo_step({"op": "teleport"}) == "unknown undo step 'teleport'"
    with pytest.raises(HostFaultError, match="unknown key") as caught:
        host_fault("x", "cgroup", {"target": "serve", "cpu_quota": 1}, for_s=1)
    assert caught.value.key == "cpu_quota"
