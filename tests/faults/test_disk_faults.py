"""Disk faults on file systems the test makes: a tmpfs filled up, a loop-mounted ext4 throttled."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from redline.faults import HostContext, HostFaultError, Ledger, host_fault

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")

# a target that times fsyncs of 4 KiB writes, asked over stdin
WRITER = """
import os, statistics, sys, time
path = os.path.join(sys.argv[1], "data")
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
print("ready", flush=True)
for line in sys.stdin:
    times = []
    for i in range(int(line)):
        started = time.monotonic()
        os.pwrite(fd, os.urandom(4096), i * 4096)
        os.fsync(fd)
        times.append(time.monotonic() - started)
    print(statistics.median(times), flush=True)
"""


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    monkeypatch.setenv("REDLINE_FAULTS_DIR", str(tmp_path / "ledger"))
    return Ledger(tmp_path / "ledger")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "tmpfs"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def loop_disk(tmp_path: Path) -> Iterator[Path]:
    image, where = tmp_path / "disk.img", tmp_path / "disk"
    where.mkdir()
    with open(image, "wb") as handle:
        handle.truncate(64 << 20)
    device = subprocess.run(
        ["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        subprocess.run(["mkfs.ext4", "-q", device], check=True)
        subprocess.run(["mount", device, str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        subprocess.run(["losetup", "-d", device], check=False)


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def test_a_full_disk_refuses_writes_until_it_is_undone(tmpfs: Path, ledger: Ledger) -> None:
    before = free_bytes(tmpfs)
    fault = host_fault("full", "disk", {"path": str(tmpfs), "fill": True}, for_s=30)
    ctx = HostContext(ledger=ledger)
    fault.check(ctx)
    fault.apply(ctx)
    assert free_bytes(tmpfs) < 64 * 1024
    with pytest.raises(OSError, match="No space left"):
        (tmpfs / "more").write_bytes(b"x" * (1 << 20))
    fault.undo()
    (tmpfs / "more").unlink(missing_ok=True)
    assert free_bytes(tmpfs) == before


def test_the_hosts_root_file_system_is_never_filled(ledger: Ledger) -> None:
    fault = host_fault("full", "disk", {"path": "/tmp", "fill": True}, for_s=30)
    with pytest.raises(HostFaultError, match="root file system") as caught:
        fault.check(HostContext(ledger=ledger))
    assert caught.value.key == "path"


def test_io_limits_need_a_block_device(tmpfs: Path, ledger: Ledger) -> None:
    fault = host_fault(
        "slow", "disk", {"path": str(tmpfs), "target": "serve", "wbps": "1M"}, for_s=30
    )
    with pytest.raises(HostFaultError, match="not on a block device") as caught:
        fault.check(HostContext(ledger=ledger))
    assert caught.value.key == "path"


def test_fsync_latency_rises_under_a_write_iops_cap_and_falls_after(
    loop_disk: Path, ledger: Ledger
) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(loop_disk)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdin is not None and writer.stdout is not None  # noqa: PT018
    try:
        assert writer.stdout.readline().strip() == "ready"

        def median_fsync(count: int) -> float:
            assert writer.stdin is not None and writer.stdout is not None  # noqa: PT018
            writer.stdin.write(f"{count}\n")
            writer.stdin.flush()
            return float(writer.stdout.readline())

        before = median_fsync(20)
        spec = {"path": str(loop_disk), "target": f"pid:{writer.pid}", "fsync_ms": 100}
        fault = host_fault("slow", "disk", spec, for_s=30)
        ctx = HostContext(ledger=ledger)
        fault.check(ctx)
        fault.apply(ctx)
        during = median_fsync(6)
        fault.undo()
        after = median_fsync(20)
    finally:
        writer.kill()
        writer.wait()
        writer.stdin.close()
        writer.stdout.close()
    assert "wiops=10" in fault.detail
    assert during > 0.05  # at most 10 writes a second reach the device
    assert during > 5 * before
    assert after < during / 5
