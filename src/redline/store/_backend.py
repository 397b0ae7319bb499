"""The two databases a store can live in, behind one small interface.

Statements are written once with ``?`` placeholders; the PostgreSQL backend turns them
into psycopg's ``%s``. Every database error leaves as a :class:`StoreError` that names
the store (with any password in its URL redacted).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from redline.core import Redactor, StoreError

from ._schema import POSTGRES, SQLITE, Dialect

__all__ = ["Backend", "open_backend"]

_CONNECT_TIMEOUT = 10
_BUSY_TIMEOUT = 30.0
Row = tuple[Any, ...]


class Backend(Protocol):
    """A connection to the store's database."""

    dialect: Dialect
    where: str

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement and return its rows."""
        ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each of ``rows``."""
        ...

    def transaction(self, *, lock: bool = False) -> contextlib.AbstractContextManager[None]:
        """Group statements: all or none. ``lock`` serialises with other writers."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


def open_backend(location: str, *, create: bool = True) -> Backend:
    """Connect to ``location``: a ``postgresql://`` URL, else a SQLite file path.

    ``create=False`` refuses to create a SQLite file that does not exist yet.

    Raises:
        StoreError: the database cannot be opened (or psycopg is not installed).
    """
    if location.startswith(("postgresql://", "postgres://")):
        return _Postgres(location)
    path = location.removeprefix("sqlite://") if location.startswith("sqlite://") else location
    if not create and not Path(path).exists():
        raise StoreError(f"{path}: no run store here yet (`redline run` creates it)")
    return _Sqlite(Path(path))


class _Sqlite:
    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        if path.is_dir():
            raise StoreError(f"{path}: is a directory, expected a SQLite file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create its directory: {exc.strerror}") from exc
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            # WAL: readers (``redline runs`` in another terminal) never block the run
            # that is writing; NORMAL sync is durable across a killed process.
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: cannot open the store: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock, self._errors():
            return list(self._conn.execute(sql, tuple(params)).fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock, self._errors():
            self._conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock, self._errors():
            self._conn.executemany(sql, [tuple(r) for r in rows])

    @contextlib.contextmanager
    def transaction(self, *, lock: bool = False) -> Iterator[None]:
        # Every write transaction takes the write lock at its start (IMMEDIATE), so two
        # writers queue on the busy timeout instead of failing half-way.
        del lock
        with self._lock:
            with self._errors():
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            with self._errors():
                self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{self.where}: {exc}") from exc


class _Postgres:
    dialect = POSTGRES

    def __init__(self, url: str) -> None:
        self.where = Redactor().url(url)
        try:
            import psycopg  # optional: the postgres extra
        except ImportError:
            raise StoreError(
                f"{self.where}: PostgreSQL stores need psycopg: pip install 'redline[postgres]'"
            ) from None
        self._psycopg = psycopg
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise StoreError(f"{self.where}: cannot connect: {_first_line(exc)}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock, self._errors():
            return list(self._conn.execute(_pg(sql), tuple(params)).fetchall())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._lock, self._errors():
            self._conn.execute(_pg(sql), tuple(params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self._lock, self._errors(), self._conn.cursor() as cursor:
            cursor.executemany(_pg(sql), [tuple(r) for r in rows])

    @contextlib.contextmanager
    def transaction(self, *, lock: bool = False) -> Iterator[None]:
        with self._lock, self._errors(), self._conn.transaction():
            if lock:
                # One migrating process at a time; others wait, then find nothing to do.
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('redline_schema'))")
            yield

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._psycopg.Error as exc:
            raise StoreError(f"{self.where}: {_first_line(exc)}") from exc


def _pg(sql: str) -> str:
    """The statement in psycopg's placeholders: ``?`` to ``%s``, a literal ``%`` doubled."""
    return sql.replace("%", "%%").replace("?", "%s")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
