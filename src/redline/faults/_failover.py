"""Failover measured from the client's side: detection, failover, recovery, lost writes.

A :class:`WriteChecker` appends unique ids through a store's client at a steady rate,
keeping each write's outcome (acknowledged or not, and when). After the fault the ids are
read back from the store: an acknowledged id that is missing is a **lost** write, an id
stored more than once a **duplicated** one (a retried write whose first try landed), an
unacknowledged id that is there an **uncertain** one that landed anyway. Jepsen's register
checks, reduced to what a load tool can count exactly.

:func:`measure_failover` puts it around a fault (killing a primary) and reads off:

- time to detect: from the fault to the first failed write;
- time to fail over: from the fault to the first acknowledged write after the failures;
- time to recover: from the fault until write latency is back under the steady state's
  p99 (times a margin) for ``settle`` writes in a row;
- errors during the event, and the writes lost or duplicated.

Adapters: :func:`redis_sentinel_store` (redis-py's Sentinel client, which follows the
primary) and :func:`postgres_store` (psycopg with several hosts and
``target_session_attrs=read-write``, which finds the promoted one).
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import FaultError

__all__ = [
    "FailoverReport",
    "Write",
    "WriteChecker",
    "WriteStore",
    "measure_failover",
    "postgres_store",
    "redis_sentinel_store",
]


@dataclass(frozen=True)
class WriteStore:
    """How to write one id and how to count the stored ids (``{id: times stored}``)."""

    write: Callable[[str], None]
    read_all: Callable[[], Mapping[str, int]]
    name: str = "store"
    close: Callable[[], None] = field(default=lambda: None)


@dataclass(frozen=True)
class Write:
    """One write: its id, when it started and ended (s from the checker's start), and outcome."""

    id: str
    start_s: float
    end_s: float
    ok: bool
    error: str | None = None


class WriteChecker:
    """Appends unique ids through ``store`` at ``rate`` a second until stopped (or ``limit``).

    The writes are made one after another from one thread (a client's view); a write that
    takes longer than its slot delays the next, as a client's would.
    """

    def __init__(self, store: WriteStore, *, rate: float = 50.0, limit: int = 100_000) -> None:
        """Prepare; :meth:`start` starts writing."""
        self.store = store
        self.rate = rate
        self.limit = limit
        self.writes: list[Write] = []
        self.prefix = uuid.uuid4().hex[:8]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = 0.0

    def start(self) -> None:
        """Start writing in a thread."""
        self.started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="redline-writes", daemon=True)
        self._thread.start()

    def now(self) -> float:
        """Seconds since :meth:`start`."""
        return time.monotonic() - self.started

    def _run(self) -> None:
        period = 1.0 / self.rate
        for number in range(self.limit):
            due = self.started + number * period
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            key = f"{self.prefix}-{number}"
            began = self.now()
            try:
                self.store.write(key)
            except Exception as exc:  # noqa: BLE001 - any client error is an outcome to record
                self.writes.append(Write(key, began, self.now(), False, type(exc).__name__))
            else:
                self.writes.append(Write(key, began, self.now(), True))

    def stop(self) -> None:
        """Stop writing (the write in flight finishes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def verify(self, stored: Mapping[str, int] | None = None) -> dict[str, Any]:
        """Read the store back (or take ``stored``) and count lost, duplicated, uncertain."""
        counts = dict(stored if stored is not None else self.store.read_all())
        ours = {k: v for k, v in counts.items() if k.startswith(self.prefix + "-")}
        acked = [w.id for w in self.writes if w.ok]
        failed = [w.id for w in self.writes if not w.ok]
        lost = sorted(k for k in acked if ours.get(k, 0) == 0)
        return {
            "writes": len(self.writes),
            "acknowledged": len(acked),
            "failed": len(failed),
            "lost": len(lost),
            "lost_ids": lost[:100],
            "duplicated": sum(1 for v in ours.values() if v > 1),
            "uncertain_landed": sum(1 for k in failed if ours.get(k, 0) > 0),
        }


@dataclass(frozen=True)
class FailoverReport:
    """What a failover cost, as the client saw it (seconds from the fault).

    ``records`` holds every write (not in the JSON form), for checks of one's own.
    """

    fault_at_s: float
    detected_after_s: float | None
    failed_over_after_s: float | None
    recovered_after_s: float | None
    errors: int
    error_classes: Mapping[str, int]
    steady_p99_s: float
    worst_write_s: float
    writes: Mapping[str, Any]
    records: tuple[Write, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "fault_at_s": round(self.fault_at_s, 3),
            "detected_after_s": _round(self.detected_after_s),
            "failed_over_after_s": _round(self.failed_over_after_s),
            "recovered_after_s": _round(self.recovered_after_s),
            "errors": self.errors,
            "error_classes": dict(self.error_classes),
            "steady_p99_s": round(self.steady_p99_s, 6),
            "worst_write_s": round(self.worst_write_s, 6),
            "writes": dict(self.writes),
        }

    @property
    def reason(self) -> str:
        """One paragraph for people."""

        def show(value: float | None, what: str) -> str:
            return f"{what} {value:.2f} s" if value is not None else f"not {what.split()[0]}"

        writes = self.writes
        return (
            f"{show(self.detected_after_s, 'detected after')}, "
            f"{show(self.failed_over_after_s, 'failed over after')}, "
            f"{show(self.recovered_after_s, 'recovered after')}; {self.errors} failed writes; "
            f"{writes['acknowledged']} acknowledged, {writes['lost']} lost, "
            f"{writes['duplicated']} duplicated"
        )


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


def _p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0


def measure_failover(
    store: WriteStore,
    fault: Callable[[], None],
    *,
    rate: float = 50.0,
    before_s: float = 3.0,
    after_s: float = 15.0,
    margin: float = 3.0,
    settle: int = 20,
) -> FailoverReport:
    """Write through ``store``, call ``fault`` after ``before_s``, keep writing ``after_s``.

    Args:
        store: the store's client (:func:`redis_sentinel_store`, :func:`postgres_store`).
        fault: what breaks it (kill the primary); it returns once applied.
        rate: writes a second.
        before_s: steady state before the fault (its p99 is the recovery's yardstick).
        after_s: how long to keep writing after it.
        margin: recovered means write latency under ``margin`` x the steady p99...
        settle: ...for this many writes in a row.

    Raises:
        FaultError: no write succeeded before the fault (nothing to measure against).
    """
    checker = WriteChecker(store, rate=rate)
    checker.start()
    try:
        time.sleep(before_s)
        fault_at = checker.now()
        fault()
        time.sleep(after_s)
    finally:
        checker.stop()
    steady = [w.end_s - w.start_s for w in checker.writes if w.ok and w.end_s <= fault_at]
    if not steady:
        raise FaultError(f"{store.name}: no write succeeded before the fault")
    p99 = _p99(steady)
    after = [w for w in checker.writes if w.start_s >= fault_at or w.end_s > fault_at]
    failures = [w for w in after if not w.ok]
    detected = failures[0].end_s - fault_at if failures else None
    failed_over = None
    if failures:
        first_fail = failures[0].start_s
        back = next((w for w in after if w.ok and w.start_s > first_fail), None)
        failed_over = back.end_s - fault_at if back is not None else None
    recovered = None
    run = 0
    for write in after:
        good = write.ok and write.end_s - write.start_s <= margin * p99
        run = run + 1 if good else 0
        if run == settle:
            index = after.index(write) - settle + 1
            recovered = max(0.0, after[index].start_s - fault_at)
            break
    classes = collections.Counter(w.error or "" for w in failures)
    return FailoverReport(
        fault_at_s=fault_at,
        detected_after_s=detected,
        failed_over_after_s=failed_over,
        recovered_after_s=recovered,
        errors=len(failures),
        error_classes=dict(classes),
        steady_p99_s=p99,
        worst_write_s=max((w.end_s - w.start_s for w in after), default=0.0),
        writes=checker.verify(),
        records=tuple(checker.writes),
    )


def redis_sentinel_store(
    sentinels: Sequence[tuple[str, int]],
    service: str,
    *,
    key: str = "redline:failover:writes",
    timeout_s: float = 0.5,
) -> WriteStore:
    """Writes as ``RPUSH key id`` to the primary redis-py's Sentinel client finds.

    A write that fails is not retried by the client (each attempt is a record of its own).
    """
    try:
        from redis.sentinel import Sentinel
    except ImportError as exc:  # pragma: no cover - the redis extra
        raise FaultError("redis failover needs redis-py: pip install 'redline[redis]'") from exc
    sentinel = Sentinel(list(sentinels), socket_timeout=timeout_s)
    primary = sentinel.master_for(service, socket_timeout=timeout_s, retry_on_timeout=False)

    def write(item: str) -> None:
        primary.rpush(key, item)

    def read_all() -> Mapping[str, int]:
        values = primary.lrange(key, 0, -1)
        return collections.Counter(v.decode() if isinstance(v, bytes) else str(v) for v in values)

    return WriteStore(write, read_all, name=f"redis sentinel {service}", close=primary.close)


def postgres_store(
    hosts: Sequence[tuple[str, int]],
    *,
    dbname: str = "postgres",
    user: str = "postgres",
    table: str = "redline_failover_writes",
    timeout_s: float = 1.0,
) -> WriteStore:
    """Writes as ``INSERT`` into ``table`` on whichever of ``hosts`` accepts writes.

    A connection is made with every host listed and ``target_session_attrs=read-write``,
    so after a promotion the next connection finds the new primary; a failed write drops
    the connection (the next write reconnects).
    """
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the postgres extra
        raise FaultError("postgres failover needs psycopg: pip install psycopg") from exc
    conninfo = (
        f"host={','.join(h for h, _ in hosts)} port={','.join(str(p) for _, p in hosts)} "
        f"dbname={dbname} user={user} target_session_attrs=read-write "
        f"connect_timeout={max(1, round(timeout_s))}"
    )
    state: dict[str, Any] = {"conn": None}

    def connection() -> Any:
        if state["conn"] is None or state["conn"].closed:
            state["conn"] = psycopg.connect(conninfo, autocommit=True)
            state["conn"].execute(
                f"SET statement_timeout = {round(timeout_s * 1000)}"  # a hung write fails
            )
            state["conn"].execute(f"CREATE TABLE IF NOT EXISTS {table} (id text)")
        return state["conn"]

    def write(item: str) -> None:
        try:
            connection().execute(f"INSERT INTO {table} (id) VALUES (%s)", (item,))
        except Exception:
            close()
            raise

    def read_all() -> Mapping[str, int]:
        rows = connection().execute(f"SELECT id, count(*) FROM {table} GROUP BY id").fetchall()
        return {str(k): int(v) for k, v in rows}

    def close() -> None:
        if state["conn"] is not None:
            state["conn"].close()
            state["conn"] = None

    return WriteStore(write, read_all, name="postgres", close=close)
