"""The run store: every run kept, interval by interval, in SQLite or PostgreSQL."""

from __future__ import annotations

import json
import os
import secrets
import socket
import typing
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

from redline.core import (
    Closing,
    ControlEvent,
    GeneratorHost,
    IntervalSnapshot,
    PlanSummary,
    RunMeta,
    RunResult,
    StopReason,
    StoreError,
    TargetReport,
    TraceReport,
    Verdict,
)

from ._backend import Backend, open_backend
from ._recorder import RunRecorder
from ._records import Decision, RunInfo, StoredRun
from ._schema import MIGRATIONS, SCHEMA_TABLE, Migration, now_text, pending_migrations

__all__ = [
    "DEFAULT_STORE",
    "LOST",
    "RUNNING",
    "STORE_ENV",
    "RunStore",
    "open_store",
    "store_location",
]

DEFAULT_STORE = ".redline/runs.db"
"""Where the run store lives without ``--store`` or :data:`STORE_ENV`."""
STORE_ENV = "REDLINE_STORE"
"""The environment variable that names the store (a file or a ``postgresql://`` URL)."""
LOST: Final = "lost"
"""The stop reason shown for a run whose recording process is gone without finishing it."""
RUNNING: Final = "running"
"""The stop reason of a run that is still being recorded."""
_STOP_REASONS = frozenset(typing.get_args(StopReason))
# A run not updated for this long, by a process on another host, is presumed lost.
_STALE_S = 300.0
_RUN_COLUMNS = (
    "id, plan_name, target, started_at, updated_at, stop_reason, complete, workers, "
    "late_tolerance, open_model, plan, meta, notes, tracebacks, summary, verdicts, "
    "requests, errors, measured_s, analysis, target_report, traces"
)


def store_location(location: str | Path | None = None) -> str:
    """Where runs are kept: ``location``, else ``$REDLINE_STORE``, else ``.redline/runs.db``."""
    if location:
        return str(location)
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def open_store(
    location: str | Path | None = None,
    *,
    create: bool = True,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> RunStore:
    """Open (creating and migrating as needed) the store at ``location``.

    Args:
        location: a SQLite file path or a ``postgresql://`` URL; by default
            ``$REDLINE_STORE`` or ``.redline/runs.db`` under the working directory.
        create: create a SQLite store that does not exist yet (readers pass False).
        migrations: the schema steps to apply (the default is redline's own).

    Raises:
        StoreError: the store cannot be opened or was written by a newer redline.
    """
    backend = open_backend(store_location(location), create=create)
    try:
        return RunStore(backend, migrations=migrations)
    except BaseException:
        backend.close()
        raise


class RunStore(Closing):
    """Runs kept in a database. Open one with :func:`open_store`; close it when done.

    Writing: :meth:`recorder` for a run in progress (every interval is written as it
    completes, so a killed run is still there), or :meth:`save` for a finished one.
    Reading: :meth:`runs` lists, :meth:`load` reads one back whole.
    """

    def __init__(self, backend: Backend, *, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        """Use ``backend``, bringing its schema up to date first."""
        self._db = backend
        self._migrate(migrations)

    @property
    def where(self) -> str:
        """The store's file path or URL (password redacted), for messages."""
        return self._db.where

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def schema_version(self) -> int:
        """The highest migration applied to this store."""
        rows = self._db.query("SELECT MAX(version) FROM redline_schema")
        return int(rows[0][0] or 0)

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        self._db.execute(SCHEMA_TABLE)
        with self._db.transaction(lock=True):
            applied = [r[0] for r in self._db.query("SELECT version FROM redline_schema")]
            for migration in pending_migrations(applied, migrations, where=self.where):
                for statement in migration.statements:
                    self._db.execute(self._db.dialect.render(statement))
                self._db.execute(
                    "INSERT INTO redline_schema (version, description, applied_at) "
                    "VALUES (?, ?, ?)",
                    (migration.version, migration.description, now_text()),
                )

    # -- writing -------------------------------------------------------------------------
    def recorder(self, meta: RunMeta) -> RunRecorder:
        """A recorder that writes one run as it happens (see :class:`RunRecorder`)."""
        return RunRecorder(self, meta)

    def begin(self, run: RunResult, meta: RunMeta) -> None:
        """Record a run that has just started (marked ``running``, not complete).

        Raises:
            StoreError: the write failed.
        """
        with self._db.transaction():
            self._insert_run(run, meta)

    def add_interval(
        self, run_id: str, interval: IntervalSnapshot, *, late_tolerance: float
    ) -> None:
        """Record one more interval of a run in progress.

        Raises:
            StoreError: the write failed.
        """
        data = interval.to_dict(late_tolerance=late_tolerance)
        # Counts only: summing them costs nothing, merging the histograms would.
        parts = interval.endpoints.values()
        measured = 0.0 if interval.warmup else interval.duration_s
        counted = (
            (0, 0)
            if interval.warmup
            else (sum(p.requests for p in parts), sum(p.errors for p in parts))
        )
        with self._db.transaction():
            self._insert_intervals(run_id, [data])
            self._db.execute(
                "UPDATE redline_runs SET requests = requests + ?, errors = errors + ?, "
                "measured_s = measured_s + ?, updated_at = ? WHERE id = ?",
                (*counted, measured, now_text(), run_id),
            )

    def save(
        self,
        result: RunResult,
        meta: RunMeta,
        verdicts: Sequence[Verdict] = (),
        *,
        analysis: Mapping[str, Any] | None = None,
        target: TargetReport | None = None,
        traces: TraceReport | None = None,
    ) -> None:
        """Record a finished run whole, or finish one recorded since :meth:`begin`.

        Intervals already recorded are kept; the rest are added. The run's summary,
        verdicts, notes, stop reason, ``analysis`` and ``target`` (what was seen of the
        target from inside) are written last, in the same transaction.

        Raises:
            StoreError: the write failed.
        """
        data = result.to_dict(intervals=False)
        total = data["summary"]["total"]
        summary = {k: data[k] for k in ("duration_s", "generator", "summary")}
        if "control" in data:
            summary["control"] = data["control"]
        with self._db.transaction():
            exists = self._db.query("SELECT id FROM redline_runs WHERE id = ?", (result.id,))
            if not exists:
                self._insert_run(result, meta)
            have = {
                r[0]
                for r in self._db.query(
                    "SELECT idx FROM redline_intervals WHERE run_id = ?", (result.id,)
                )
            }
            self._insert_intervals(
                result.id,
                [
                    i.to_dict(late_tolerance=result.late_tolerance)
                    for i in result.intervals
                    if i.index not in have
                ],
            )
            self._db.execute(
                "UPDATE redline_runs SET stop_reason = ?, complete = ?, workers = ?, "
                "late_tolerance = ?, open_model = ?, plan = ?, notes = ?, tracebacks = ?, "
                "summary = ?, verdicts = ?, requests = ?, errors = ?, measured_s = ?, "
                "analysis = ?, target_report = ?, traces = ?, updated_at = ? WHERE id = ?",
                (
                    result.stop_reason,
                    result.complete,
                    result.workers,
                    result.late_tolerance,
                    result.open_model,
                    _dump(result.plan.to_dict()),
                    _dump(list(result.notes)),
                    _dump(list(result.tracebacks)),
                    _dump(summary),
                    _dump([v.to_dict() for v in verdicts]),
                    total["requests"],
                    total["errors"],
                    result.duration_s,
                    _dump(dict(analysis)) if analysis else None,
                    _dump(target.to_dict()) if target is not None else None,
                    _dump(traces.to_dict()) if traces is not None else None,
                    now_text(),
                    result.id,
                ),
            )

    def add_decision(
        self, kind: str, subject: str, decision: str, record: Mapping[str, Any]
    ) -> str:
        """Keep a decision record (a rollout step promoted or rolled back, and why); its id.

        Raises:
            StoreError: the write failed.
        """
        stamp = now_text()
        # Microseconds in the id: records made within one millisecond still sort in order.
        decision_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}Z-{secrets.token_hex(3)}"
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO redline_decisions (id, at, kind, subject, decision, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (decision_id, stamp, kind, subject, decision, _dump(dict(record))),
            )
        return decision_id

    def decisions(self, *, subject: str | None = None, limit: int | None = 50) -> list[Decision]:
        """Decision records, newest first (of one ``subject`` when given)."""
        sql = "SELECT id, at, kind, subject, decision, record FROM redline_decisions"
        params: tuple[Any, ...] = ()
        if subject is not None:
            sql += " WHERE subject = ?"
            params = (subject,)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [
            Decision(
                id=str(row[0]),
                at=str(row[1]),
                kind=str(row[2]),
                subject=str(row[3]),
                decision=str(row[4]),
                record=_load(row[5]),
            )
            for row in self._db.query(sql, params)
        ]

    def mark_stopped(self, run_id: str, stop_reason: str) -> None:
        """Mark a run that is still ``running`` as stopped for ``stop_reason``.

        For a run that ends without a result (a crash, a second Ctrl-C): what it
        recorded stays, marked incomplete.

        Raises:
            StoreError: the write failed.
        """
        with self._db.transaction():
            self._db.execute(
                "UPDATE redline_runs SET stop_reason = ?, updated_at = ? "
                "WHERE id = ? AND stop_reason = ?",
                (stop_reason, now_text(), run_id, RUNNING),
            )

    def _insert_run(self, run: RunResult, meta: RunMeta) -> None:
        stamp = now_text()
        self._db.execute(
            f"INSERT INTO redline_runs ({_RUN_COLUMNS}) "
            f"VALUES ({', '.join('?' * len(_RUN_COLUMNS.split(',')))})",
            (
                run.id,
                run.plan.name,
                run.plan.target,
                run.started_at,
                stamp,
                run.stop_reason,
                run.complete,
                run.workers,
                run.late_tolerance,
                run.open_model,
                _dump(run.plan.to_dict()),
                _dump(meta.to_dict()),
                _dump(list(run.notes)),
                _dump(list(run.tracebacks)),
                None,
                None,
                0,
                0,
                0.0,
                None,
                None,
                None,
            ),
        )
        self._db.executemany(
            "INSERT INTO redline_run_labels (run_id, key, value) VALUES (?, ?, ?)",
            [(run.id, k, v) for k, v in meta.labels.items()],
        )

    def _insert_intervals(self, run_id: str, intervals: Sequence[Mapping[str, Any]]) -> None:
        if intervals:
            self._db.executemany(
                "INSERT INTO redline_intervals (run_id, idx, start_s, warmup, data) "
                "VALUES (?, ?, ?, ?, ?)",
                [(run_id, i["index"], i["start_s"], i["warmup"], _dump(i)) for i in intervals],
            )

    # -- reading -------------------------------------------------------------------------
    def runs(
        self,
        *,
        plan: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> list[RunInfo]:
        """Stored runs, newest first.

        Args:
            plan: only runs of the plan with this name.
            labels: only runs with all of these labels.
            since: only runs started at or after this time (the store's ISO 8601 form,
                see :func:`parse_time`).
            until: only runs started before this time.
            limit: at most this many.

        Raises:
            StoreError: the read failed.
        """
        where: list[str] = []
        params: list[Any] = []
        if plan is not None:
            where.append("plan_name = ?")
            params.append(plan)
        for key, value in (labels or {}).items():
            where.append(
                "EXISTS (SELECT 1 FROM redline_run_labels l "
                "WHERE l.run_id = redline_runs.id AND l.key = ? AND l.value = ?)"
            )
            params.extend((key, value))
        if since is not None:
            where.append("started_at >= ?")
            params.append(since)
        if until is not None:
            where.append("started_at < ?")
            params.append(until)
        sql = f"SELECT {_RUN_COLUMNS} FROM redline_runs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._db.query(sql, params)
        labels_of = self._labels([r[0] for r in rows])
        return [_info(_RunRow(*r), labels_of.get(r[0], {})) for r in rows]

    def resolve(self, ref: str) -> str:
        """The id of the run ``ref`` names: an id, a unique prefix of one, or ``latest``.

        Raises:
            StoreError: no run, or more than one, matches.
        """
        if ref in ("latest", "last"):
            rows = self._db.query(
                "SELECT id FROM redline_runs ORDER BY started_at DESC, id DESC LIMIT 1"
            )
            if not rows:
                raise StoreError(f"{self.where}: no runs stored yet")
            return str(rows[0][0])
        rows = self._db.query(
            "SELECT id FROM redline_runs WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT 6",
            (len(ref), ref),
        )
        ids = [str(r[0]) for r in rows]
        if ref in ids:
            return ref
        if not ids:
            raise StoreError(f"{self.where}: no run {ref!r} (see `redline runs`)")
        if len(ids) > 1:
            shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise StoreError(f"{self.where}: {ref!r} matches several runs: {shown}")
        return ids[0]

    def load(self, ref: str) -> StoredRun:
        """Read one run back whole (see :meth:`resolve` for ``ref``).

        A run whose recording process is gone without finishing it comes back
        incomplete, with stop reason ``"lost"`` and every interval it recorded.

        Raises:
            StoreError: no such run, or the read failed.
        """
        run_id = self.resolve(ref)
        rows = self._db.query(f"SELECT {_RUN_COLUMNS} FROM redline_runs WHERE id = ?", (run_id,))
        row = _RunRow(*rows[0])
        data = self._db.query(
            "SELECT data FROM redline_intervals WHERE run_id = ? ORDER BY idx", (run_id,)
        )
        try:
            intervals = tuple(IntervalSnapshot.from_dict(_load(r[0])) for r in data)
            verdicts = tuple(Verdict.from_dict(v) for v in _load(row.verdicts or "[]"))
            plan = PlanSummary.from_dict(_load(row.plan))
            analysis = dict(_load(row.analysis)) if row.analysis else {}
            target = TargetReport.from_dict(_load(row.target_report)) if row.target_report else None
            traces = TraceReport.from_dict(_load(row.traces)) if row.traces else None
            summary = _load(row.summary) if row.summary else {}
            hosts = tuple(
                GeneratorHost.from_dict(h) for h in summary.get("generator", {}).get("hosts", ())
            )
            control = tuple(ControlEvent(**event) for event in summary.get("control", ()))
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{self.where}: run {run_id} is damaged: {exc}") from exc
        meta = RunMeta.from_dict(_load(row.meta))
        result = RunResult(
            id=row.id,
            plan=plan,
            started_at=row.started_at,
            intervals=intervals,
            workers=row.workers,
            complete=bool(row.complete),
            stop_reason=_stop_reason(row, meta),
            late_tolerance=row.late_tolerance,
            open_model=bool(row.open_model),
            notes=tuple(_load(row.notes)),
            tracebacks=tuple(_load(row.tracebacks)),
            hosts=hosts,
            control=control,
        )
        return StoredRun(result, meta, verdicts, analysis, target, traces)

    def _labels(self, ids: Sequence[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for run_id, key, value in self._db.query(
                "SELECT run_id, key, value FROM redline_run_labels "
                f"WHERE run_id IN ({marks}) ORDER BY run_id, key",
                chunk,
            ):
                out.setdefault(run_id, {})[key] = value
        return out


class _RunRow(NamedTuple):
    """A row of ``redline_runs`` in :data:`_RUN_COLUMNS` order."""

    id: str
    plan_name: str
    target: str
    started_at: str
    updated_at: str
    stop_reason: str
    complete: bool
    workers: int
    late_tolerance: float
    open_model: bool
    plan: Any
    meta: Any
    notes: Any
    tracebacks: Any
    summary: Any
    verdicts: Any
    requests: int
    errors: int
    measured_s: float
    analysis: Any
    target_report: Any
    traces: Any


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _load(value: Any) -> Any:
    """A JSON column's value: SQLite gives text, psycopg has parsed it already."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _stop_reason(row: _RunRow, meta: RunMeta) -> StopReason:
    if row.stop_reason != RUNNING:
        if row.stop_reason not in _STOP_REASONS:
            return LOST  # a reason this version does not know: not a run to trust
        return row.stop_reason  # type: ignore[return-value]
    if meta.host == socket.gethostname() and meta.pid is not None:
        if meta.pid == os.getpid():
            return RUNNING
        try:
            os.kill(meta.pid, 0)
        except ProcessLookupError:
            return LOST
        except PermissionError:
            return RUNNING  # alive, owned by someone else
        return RUNNING
    updated = datetime.fromisoformat(row.updated_at.replace("Z", "+00:00"))
    stale = (datetime.now(UTC) - updated).total_seconds() > _STALE_S
    return LOST if stale else RUNNING


def _info(row: _RunRow, labels: Mapping[str, str]) -> RunInfo:
    meta = RunMeta.from_dict(_load(row.meta))
    summary = _load(row.summary) if row.summary is not None else None
    p99 = summary["summary"]["total"]["latency_ms"]["p99"] if summary else None
    verdicts = Counter(v["outcome"] for v in _load(row.verdicts or "[]"))
    return RunInfo(
        id=row.id,
        plan=row.plan_name,
        target=row.target,
        started_at=row.started_at,
        stop_reason=_stop_reason(row, meta),
        complete=bool(row.complete),
        labels=labels,
        requests=int(row.requests),
        errors=int(row.errors),
        measured_s=float(row.measured_s),
        p99_ms=p99,
        verdicts=dict(verdicts),
        git_commit=meta.git_commit,
        git_dirty=meta.git_dirty,
        summary=summary,
    )
