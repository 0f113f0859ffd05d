"""The databases tests run against: a fresh SQLite file, or a fresh schema of the PostgreSQL
database that TIMELINE_TEST_PG_DSN names, dropped afterwards. Without that variable the
PostgreSQL cases are skipped, except under CI, where they fail: CI must never skip them."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

PG_DSN = os.environ.get("TIMELINE_TEST_PG_DSN")
BACKENDS = ("sqlite", "postgres")


def backend_params() -> list[object]:
    """One pytest param per backend, PostgreSQL skipped (or failed, in CI) without a DSN."""
    return [pytest.param("sqlite"), pytest.param("postgres", marks=needs_postgres)]


def _pg_dsn() -> str:
    if PG_DSN is None:
        raise RuntimeError("CI runs the PostgreSQL tests: set TIMELINE_TEST_PG_DSN")
    return PG_DSN


def pg_url(dsn: str, schema: str) -> str:
    """The DSN with `schema` first on its search_path."""
    options = quote(f"-csearch_path={schema}")
    return f"{dsn}{'&' if '?' in dsn else '?'}options={options}"


@dataclass(frozen=True)
class Database:
    """A database of one backend, fresh for one test: its URL, and SQL past the store."""

    backend: str
    url: str
    path: Path | None = None  # the SQLite file
    schema: str | None = None  # the PostgreSQL schema

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        """Run one statement in its own transaction, outside any store; returns its rows."""
        if self.path is not None:
            import sqlite3

            with sqlite3.connect(self.path) as db:
                return db.execute(statement).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as db:
            cursor = db.execute(statement.encode())
            return cursor.fetchall() if cursor.description else []


@contextmanager
def fresh(backend: str, directory: Path | None = None) -> Iterator[Database]:
    """A fresh database of `backend`, dropped (PostgreSQL) when the block ends."""
    if backend == "sqlite":
        if directory is not None:
            path = directory / f"log-{secrets.token_hex(4)}.db"
            yield Database("sqlite", f"sqlite:///{path}", path=path)
            return
        with tempfile.TemporaryDirectory() as temporary:
            path = Path(temporary) / "log.db"
            yield Database("sqlite", f"sqlite:///{path}", path=path)
        return
    import psycopg

    dsn = _pg_dsn()
    schema = f"test_{secrets.token_hex(6)}"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield Database("postgres", pg_url(dsn, schema), schema=schema)
    finally:
        _drop(dsn, schema)


# Sessions holding a lock on anything in a schema: what a DROP of it would wait for.
HOLDERS = """
SELECT DISTINCT a.pid, a.application_name, a.state, left(a.query, 200)
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_stat_activity a ON a.pid = l.pid
WHERE n.nspname = %s AND l.granted AND a.pid <> pg_backend_pid()
"""


def _drop(dsn: str, schema: str) -> None:
    """Drop the schema; a session still holding a lock in it (a connection the test leaked) is
    ended, named in the error, and the schema dropped anyway: a leak fails, never hangs."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(b"SET lock_timeout = '20s'")
        try:
            db.execute(f"DROP SCHEMA {schema} CASCADE".encode())
            return
        except psycopg.errors.LockNotAvailable:
            holders = db.execute(HOLDERS.encode(), (schema,)).fetchall()
            for pid, *_ in holders:
                db.execute(b"SELECT pg_terminate_backend(%s)", (pid,))
            db.execute(b"SET lock_timeout = 0")
            db.execute(f"DROP SCHEMA {schema} CASCADE".encode())
        raise RuntimeError(f"sessions still held locks in {schema} at its drop: {holders}")


needs_postgres = pytest.mark.skipif(
    PG_DSN is None and os.environ.get("CI") != "true", reason="TIMELINE_TEST_PG_DSN is not set"
)
