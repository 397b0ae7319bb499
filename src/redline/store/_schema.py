"""The store's schema, as numbered migrations applied in order, once, in a transaction.

Both backends run the same statements; a :class:`Dialect` names the column types that
differ. ``redline_schema`` records which migrations a database has. A database written
by a newer redline (a migration this one does not know) is refused rather than guessed at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from redline.core import StoreError

__all__ = ["MIGRATIONS", "POSTGRES", "SQLITE", "Dialect", "Migration", "pending_migrations"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """Column types of one backend, substituted into migration statements."""

    name: str
    json: str
    real: str
    bigint: str
    boolean: str

    def render(self, statement: str) -> str:
        """``statement`` with ``{json}``, ``{real}``, ``{bigint}``, ``{bool}`` filled in."""
        return statement.format(
            json=self.json, real=self.real, bigint=self.bigint, bool=self.boolean
        )


SQLITE = Dialect("sqlite", json="TEXT", real="REAL", bigint="INTEGER", boolean="INTEGER")
# ``json`` (not ``jsonb``) keeps the text as written: key order and numbers come back as
# they went in, so a run reads back identically from either backend.
POSTGRES = Dialect(
    "postgresql", json="json", real="double precision", bigint="bigint", boolean="boolean"
)


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: a version, what it does, and its statements."""

    version: int
    description: str
    statements: tuple[str, ...]


SCHEMA_TABLE = """
CREATE TABLE IF NOT EXISTS redline_schema (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TEXT NOT NULL
)
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "runs, their labels and intervals",
        (
            """
            CREATE TABLE redline_runs (
                id TEXT PRIMARY KEY,
                plan_name TEXT NOT NULL,
                target TEXT NOT NULL,
                started_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                stop_reason TEXT NOT NULL,
                complete {bool} NOT NULL,
                workers INTEGER NOT NULL,
                late_tolerance {real} NOT NULL,
                open_model {bool} NOT NULL,
                plan {json} NOT NULL,
                meta {json} NOT NULL,
                notes {json} NOT NULL,
                tracebacks {json} NOT NULL,
                summary {json},
                verdicts {json},
                requests {bigint} NOT NULL DEFAULT 0,
                errors {bigint} NOT NULL DEFAULT 0,
                measured_s {real} NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX redline_runs_by_start ON redline_runs (started_at)",
            "CREATE INDEX redline_runs_by_plan ON redline_runs (plan_name, started_at)",
            """
            CREATE TABLE redline_run_labels (
                run_id TEXT NOT NULL REFERENCES redline_runs (id) ON DELETE CASCADE,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                PRIMARY KEY (run_id, key)
            )
            """,
            "CREATE INDEX redline_run_labels_by_value ON redline_run_labels (key, value)",
            """
            CREATE TABLE redline_intervals (
                run_id TEXT NOT NULL REFERENCES redline_runs (id) ON DELETE CASCADE,
                idx INTEGER NOT NULL,
                start_s {real} NOT NULL,
                warmup {bool} NOT NULL,
                data {json} NOT NULL,
                PRIMARY KEY (run_id, idx)
            )
            """,
        ),
    ),
    Migration(
        2,
        "what was read off a run and what was seen of its target",
        (
            "ALTER TABLE redline_runs ADD COLUMN analysis {json}",
            "ALTER TABLE redline_runs ADD COLUMN target_report {json}",
        ),
    ),
    Migration(
        3,
        "the traced requests of a run and what their spans say",
        ("ALTER TABLE redline_runs ADD COLUMN traces {json}",),
    ),
    Migration(
        4,
        "decision records: what changed, what was expected and measured, who decided",
        (
            """
            CREATE TABLE redline_decisions (
                id TEXT PRIMARY KEY,
                at TEXT NOT NULL,
                kind TEXT NOT NULL,
                subject TEXT NOT NULL,
                decision TEXT NOT NULL,
                record {json} NOT NULL
            )
            """,
            "CREATE INDEX redline_decisions_at ON redline_decisions (at)",
        ),
    ),
)
"""The store's schema, as migrations applied in order."""


def pending_migrations(
    applied: Sequence[int], migrations: Sequence[Migration], *, where: str
) -> list[Migration]:
    """The migrations still to apply to a database that has ``applied``.

    Raises:
        StoreError: the database has a migration this redline does not know (it was
            written by a newer redline), or ``migrations`` are not numbered 1, 2, 3...
    """
    known = [m.version for m in migrations]
    if known != list(range(1, len(known) + 1)):
        raise StoreError(f"migrations must be numbered 1, 2, 3..., got {known}")
    unknown = sorted(set(applied) - set(known))
    if unknown:
        raise StoreError(
            f"{where}: schema version {max(unknown)} was written by a newer redline "
            f"(this one knows up to version {len(known)}): upgrade redline to read it"
        )
    return [m for m in migrations if m.version not in set(applied)]


def now_text() -> str:
    """The current UTC time in the store's text format (ISO 8601, milliseconds, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
