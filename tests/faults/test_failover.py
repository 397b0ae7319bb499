"""Failover measured on a real Redis Sentinel cluster on loopback: a primary, a replica and
three sentinels started by the test (Debian's redis-server, run as sentinel too).

The primary is killed with redline's own process fault; the sentinels promote the replica;
the write checker's counts are verified against the new primary read directly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

redis = pytest.importorskip("redis")

from redline.faults import HostContext, Ledger, host_fault  # noqa: E402
from redline.faults._failover import (  # noqa: E402
    WriteChecker,
    WriteStore,
    measure_failover,
    redis_sentinel_store,
)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

SERVICE = "redline"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    primary: subprocess.Popen[bytes]
    replica: subprocess.Popen[bytes]
    ports: tuple[int, int]
    sentinels: list[tuple[str, int]]

    def client(self, port: int) -> redis.Redis:
        return redis.Redis("127.0.0.1", port, socket_timeout=2)


def wait_for(check, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass
        assert time.monotonic() < deadline, "the cluster did not come up"
        time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            ["redis-server", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        processes.append(process)
        return process

    p0, p1 = free_port(), free_port()
    common = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path))
    try:
        primary = start("--port", str(p0), *common)
        replica = start("--port", str(p1), *common, "--replicaof", "127.0.0.1", str(p0))
        wait_for(
            lambda: redis.Redis("127.0.0.1", p1).info("replication")["master_link_status"] == "up"
        )
        sentinels = []
        for number in range(3):
            port = free_port()
            conf = tmp_path / f"sentinel-{number}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {p0} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            start(str(conf), "--sentinel")
            sentinels.append(("127.0.0.1", port))
        for _, port in sentinels:  # every sentinel sees the replica and the other sentinels
            wait_for(
                lambda port=port: (
                    int(
                        redis.Redis("127.0.0.1", port).sentinel_master(SERVICE)[
                            "num-other-sentinels"
                        ]
                    )
                    == 2
                )
            )
        yield Cluster(primary, replica, (p0, p1), sentinels)
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_a_killed_primary_fails_over_and_the_lost_writes_are_counted_exactly(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDLINE_FAULTS_DIR", str(tmp_path / "ledger"))
    store = redis_sentinel_store(cluster.sentinels, SERVICE)
    kill = host_fault(
        "kill-primary", "process",
        {"target": f"pid:{cluster.primary.pid}", "action": "kill", "restart": False}, for_s=30,
    )  # fmt: skip
    context = HostContext(ledger=Ledger(tmp_path / "ledger"))
    kill.check(context)
    report = measure_failover(
        store, lambda: kill.apply(context), rate=50, before_s=2.0, after_s=12.0
    )
    kill.undo()
    assert cluster.primary.wait(timeout=5) == -9
    # the sentinels promoted the replica: it is a primary now
    new_primary = cluster.client(cluster.ports[1])
    assert new_primary.info("replication")["role"] == "master"
    assert report.detected_after_s is not None and report.detected_after_s < 3  # noqa: PT018
    assert report.failed_over_after_s is not None
    assert report.failed_over_after_s > report.detected_after_s
    assert report.errors > 0
    assert report.recovered_after_s is not None
    # the counts, checked independently: the new primary read directly, not through redline
    stored = [v.decode() for v in new_primary.lrange("redline:failover:writes", 0, -1)]
    acknowledged = {w.id for w in report.records if w.ok}
    assert report.writes["acknowledged"] == len(acknowledged)
    assert report.writes["writes"] == len(report.records)
    assert report.writes["lost"] == len(acknowledged - set(stored))
    assert report.writes["duplicated"] == len(stored) - len(set(stored))
    assert report.writes["acknowledged"] > 400  # writes went on before and after


def test_the_checker_counts_lost_duplicated_and_uncertain_writes_exactly(
    cluster: Cluster,
) -> None:
    client = cluster.client(cluster.ports[0])
    key = "redline:check"
    refuse = {"every": 7}

    def write(item: str) -> None:
        number = int(item.rsplit("-", 1)[1])
        client.rpush(key, item)
        if number % refuse["every"] == 0:
            raise ConnectionError("ack lost")  # stored, but the client was told it failed

    def read_all() -> dict[str, int]:
        counts: dict[str, int] = {}
        for value in client.lrange(key, 0, -1):
            counts[value.decode()] = counts.get(value.decode(), 0) + 1
        return counts

    checker = WriteChecker(WriteStore(write, read_all), rate=500, limit=140)
    checker.start()
    deadline = time.monotonic() + 10
    while len(checker.writes) < 140 and time.monotonic() < deadline:
        time.sleep(0.02)
    checker.stop()
    acked = [w.id for w in checker.writes if w.ok]
    # the store loses five acknowledged writes and duplicates three, behind the checker's back
    for lost in acked[:5]:
        client.lrem(key, 0, lost)
    for twice in acked[10:13]:
        client.rpush(key, twice)
    verdict = checker.verify()
    assert verdict["writes"] == 140
    assert verdict["failed"] == 20  # 0, 7, ..., 133
    assert verdict["acknowledged"] == 120
    assert verdict["lost"] == 5
    assert verdict["lost_ids"] == sorted(acked[:5])
    assert verdict["duplicated"] == 3
    assert verdict["uncertain_landed"] == 20
    client.delete(key)


PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)


@dataclass
class PgPair:
    ports: tuple[int, int]
    data: tuple[Path, Path]

    def postmaster_pid(self, index: int) -> int:
        return int((self.data[index] / "postmaster.pid").read_text().split()[0])

    def promote(self) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "promote", "-D", str(self.data[1]), "-w")


def as_postgres(*argv: str) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True)


@pytest.fixture
def pg_pair() -> Iterator[PgPair]:
    """A PostgreSQL primary and its streaming replica, made by the test in a folder of its own."""
    if PG_BIN is None or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL's server binaries and root to run them as postgres")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="redline-pg-"))
    shutil.chown(base, "postgres")
    primary, replica = base / "primary", base / "replica"
    ports = (free_port(), free_port())
    started: list[Path] = []
    try:
        as_postgres(str(PG_BIN / "initdb"), "-D", str(primary), "-A", "trust", "-U", "postgres")
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write(f"port = {ports[0]}\nlisten_addresses = '127.0.0.1'\nwal_level = replica\n"
                       f"unix_socket_directories = '{base}'\nfsync = off\n")  # fmt: skip
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(primary), "-w", "-l", str(base / "p.log"), "start"
        )
        started.append(primary)
        as_postgres(str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(ports[0]),
                    "-U", "postgres", "-D", str(replica), "-R", "-X", "stream")  # fmt: skip
        with open(replica / "postgresql.conf", "a") as conf:
            conf.write(f"port = {ports[1]}\n")
        as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(replica), "-w", "-l", str(base / "r.log"), "start"
        )
        started.append(replica)
        yield PgPair(ports, (primary, replica))
    finally:
        for data in started:
            stop = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
            subprocess.run(["runuser", "-u", "postgres", "--", *stop], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_a_postgres_primary_lost_and_its_replica_promoted_is_measured(
    pg_pair: PgPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import psycopg

    from redline.faults._failover import postgres_store

    monkeypatch.setenv("REDLINE_FAULTS_DIR", str(tmp_path / "ledger"))
    hosts = [("127.0.0.1", pg_pair.ports[0]), ("127.0.0.1", pg_pair.ports[1])]
    store = postgres_store(hosts)
    context = HostContext(ledger=Ledger(tmp_path / "ledger"))
    kill = host_fault(
        "kill-primary", "process",
        {"target": f"pid:{pg_pair.postmaster_pid(0)}", "action": "kill", "restart": False},
        for_s=30,
    )  # fmt: skip
    kill.check(context)

    def fail_and_promote() -> None:
        kill.apply(context)
        # the orchestrator's part (Patroni's, a pg_auto_failover monitor's): promote after 1 s
        timer = threading.Timer(1.0, pg_pair.promote)
        timer.start()

    report = measure_failover(store, fail_and_promote, rate=50, before_s=2.0, after_s=8.0)
    kill.undo()
    store.close()
    assert report.detected_after_s is not None
    assert report.failed_over_after_s is not None
    assert report.failed_over_after_s >= 1.0  # not before the promotion
    assert report.errors > 0
    with psycopg.connect(
        host="127.0.0.1", port=pg_pair.ports[1], user="postgres", dbname="postgres"
    ) as conn:
        rows = conn.execute("SELECT id FROM redline_failover_writes").fetchall()
    stored = [r[0] for r in rows]
    acknowledged = {w.id for w in report.records if w.ok}
    assert report.writes["lost"] == len(acknowledged - set(stored))
    assert report.writes["duplicated"] == len(stored) - len(set(stored))
    assert report.writes["acknowledged"] == len(acknowledged) > 300
