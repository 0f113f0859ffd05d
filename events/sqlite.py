"""SQLiteEventStore: the embedded default. WAL mode, one writer connection, one reader."""

from __future__ import annotations

import asyncio
import operator
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from events.envelope import NewEvent, RecordedEvent
from events.errors import StoreError, TimelineError
from events.store import (
    Appended,
    EventStore,
    GroupPlan,
    Head,
    Projection,
    Transaction,
    timestamp,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position   INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    company    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    type       TEXT NOT NULL,
    occurred   TEXT NOT NULL,
    lo         TEXT NOT NULL,
    hi         TEXT NOT NULL,
    data       TEXT NOT NULL,
    source     TEXT,
    confidence TEXT NOT NULL,
    recorded   TEXT NOT NULL,
    hash       TEXT NOT NULL,
    UNIQUE (company, version)
);
CREATE INDEX IF NOT EXISTS events_recorded ON events (recorded);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: DELETE refused'); END;
CREATE TABLE IF NOT EXISTS tokens (
    digest  TEXT PRIMARY KEY,
    scope   TEXT NOT NULL,
    label   TEXT,
    created TEXT NOT NULL
) WITHOUT ROWID;
"""

# The default page cache (2 MB) is far too small once indexes pass a few hundred thousand rows.
TUNING = """
PRAGMA cache_size = -65536;
PRAGMA mmap_size = 268435456;
PRAGMA temp_store = MEMORY;
"""

# Columns in the order of RecordedEvent's fields, so a row unpacks straight into one.
COLUMNS = ", ".join(name.removesuffix("_json") for name in RecordedEvent.__slots__)
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES ({', '.join('?' * 13)})"
MAX_VARIABLES = 900

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]


_row = operator.attrgetter(*RecordedEvent.__slots__)


def _chunks(values: Iterable[str]) -> list[list[str]]:
    items = sorted(values)
    return [items[i : i + MAX_VARIABLES] for i in range(0, len(items), MAX_VARIABLES)]


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    # Driver errors become domain errors here and only here.
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"the database refused the operation ({type(exc).__name__})") from exc


class _Tx:
    """A Transaction on an aiosqlite connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._db.execute_fetchall(sql, params)]

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._db.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._db.executemany(sql, rows)


class SQLiteEventStore(EventStore):
    """The log in one SQLite file: a writer connection that serializes appends with
    BEGIN IMMEDIATE (so other processes on the same file queue behind it) and a reader."""

    def __init__(
        self,
        writer: aiosqlite.Connection,
        reader: aiosqlite.Connection,
        projections: Sequence[Projection],
    ) -> None:
        self._writer = writer
        self._reader = reader
        self._projections = list(projections)
        # One transaction at a time on the writer connection, whoever calls.
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        projections: Sequence[Projection] = (),
    ) -> SQLiteEventStore:
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(target, isolation_level=None)
        async with _translated():
            await writer.execute("PRAGMA busy_timeout = 10000")
            await writer.executescript(TUNING)
            await writer.execute("PRAGMA journal_mode = WAL")
            await writer.execute(f"PRAGMA synchronous = {synchronous}")
            await writer.executescript(SCHEMA)
            for projection in projections:
                statements = [*projection.schema(), *projection.indexes()]
                await writer.executescript(";\n".join(statements))
            reader = await aiosqlite.connect(target, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout = 10000")
            await reader.executescript(TUNING)
            await reader.execute("PRAGMA query_only = 1")
        return cls(writer, reader, projections)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        db = self._writer
        async with self._write_lock, _translated():
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(db)
                await db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with _translated():
            return [tuple(row) for row in await self._reader.execute_fetchall(sql, params)]

    async def append_many(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> list[Appended | TimelineError]:
        db = self._writer
        ids, companies = GroupPlan.lookups(batches)
        async with self.transaction() as tx:
            plan = GroupPlan(
                head=await self._head(db),
                known=await self._lookup(db, ids),
                versions=await self._versions(db, companies),
                now=timestamp(),
            )
            results = [plan.add(batch) for batch in batches]
            if plan.rows:
                await db.executemany(INSERT, [_row(event) for event in plan.rows])
                for projection in self._projections:
                    await projection.apply(tx, plan.rows)
        return results

    async def _lookup(
        self, db: aiosqlite.Connection, ids: Iterable[str]
    ) -> dict[str, RecordedEvent]:
        found: dict[str, RecordedEvent] = {}
        for chunk in _chunks(ids):
            rows = await db.execute_fetchall(
                f"SELECT {COLUMNS} FROM events WHERE id IN ({_marks(chunk)})", chunk
            )
            for row in rows:
                event = RecordedEvent(*row)
                found[event.id] = event
        return found

    async def _versions(self, db: aiosqlite.Connection, companies: Iterable[str]) -> dict[str, int]:
        versions: dict[str, int] = {}
        for chunk in _chunks(companies):
            rows = await db.execute_fetchall(
                "SELECT company, MAX(version) FROM events "
                f"WHERE company IN ({_marks(chunk)}) GROUP BY company",
                chunk,
            )
            versions.update((company, version) for company, version in rows)
        return versions

    @staticmethod
    async def _head(db: aiosqlite.Connection) -> Head:
        rows = list(
            await db.execute_fetchall(
                "SELECT position, hash, recorded FROM events ORDER BY position DESC LIMIT 1"
            )
        )
        return Head(*rows[0]) if rows else Head(0)

    async def head(self) -> Head:
        async with _translated():
            return await self._head(self._reader)

    async def read(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        companies: Sequence[str] = (),
        types: Sequence[str] = (),
    ) -> list[RecordedEvent]:
        where = ["position > ?"]
        params: list[Any] = [after]
        if companies:
            where.append(f"company IN ({_marks(companies)})")
            params.extend(companies)
        if types:
            where.append(f"type IN ({_marks(types)})")
            params.extend(types)
        params.append(limit)
        sql = f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY position LIMIT ?"
        async with _translated():
            rows = await self._reader.execute_fetchall(sql, params)
        return [RecordedEvent(*row) for row in rows]

    async def at(self, positions: Sequence[int]) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        wanted = sorted(set(positions))
        async with _translated():
            for start in range(0, len(wanted), MAX_VARIABLES):
                chunk = wanted[start : start + MAX_VARIABLES]
                rows = await self._reader.execute_fetchall(
                    f"SELECT {COLUMNS} FROM events WHERE position IN ({_marks(chunk)}) "
                    "ORDER BY position",
                    chunk,
                )
                found.extend(RecordedEvent(*row) for row in rows)
        return found

    async def get(self, event_id: str) -> RecordedEvent | None:
        async with _translated():
            rows = list(
                await self._reader.execute_fetchall(
                    f"SELECT {COLUMNS} FROM events WHERE id = ?", (event_id,)
                )
            )
        return RecordedEvent(*rows[0]) if rows else None

    async def add_token(self, digest: str, scope: str, label: str | None = None) -> None:
        async with self._write_lock, _translated():
            await self._writer.execute(
                "INSERT OR IGNORE INTO tokens (digest, scope, label, created) VALUES (?, ?, ?, ?)",
                (digest, scope, label, timestamp()),
            )

    async def token_scope(self, digest: str) -> str | None:
        async with _translated():
            rows = list(
                await self._reader.execute_fetchall(
                    "SELECT scope FROM tokens WHERE digest = ?", (digest,)
                )
            )
        return str(rows[0][0]) if rows else None

    async def count_tokens(self) -> int:
        async with _translated():
            rows = list(await self._reader.execute_fetchall("SELECT COUNT(*) FROM tokens"))
        return int(rows[0][0])
