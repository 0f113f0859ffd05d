"""SQLiteEventStore: the embedded default. WAL mode, one writer thread, one reader."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import operator
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

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
    revalidated,
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
-- Earlier versions kept an index on `recorded`; a binary search over positions replaced it.
DROP INDEX IF EXISTS events_recorded;
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
PRAGMA mmap_size = 1073741824;
PRAGMA temp_store = MEMORY;
"""

# Columns in the order of RecordedEvent's fields, so a row unpacks straight into one.
COLUMNS = ", ".join(name.removesuffix("_json") for name in RecordedEvent.__slots__)
INSERT_COLUMNS = COLUMNS.split(", ")
# SQLite takes 32766 variables per statement since 3.32.
MAX_INSERT_VARIABLES = 32_000 if sqlite3.sqlite_version_info >= (3, 32) else 999
HEAD = "SELECT position, hash, recorded FROM events ORDER BY position DESC LIMIT 1"
MAX_VARIABLES = 900

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
T = TypeVar("T")
CHECKPOINT_SECONDS = 1.0
BACKSTOP_CHECKPOINT_PAGES = 100_000
# A WAL longer than this after a checkpoint is finished by the writer (see _Checkpointer).
WAL_RESTART_PAGES = 4096
# When the WAL starts over, a file grown longer than this is cut back to it.
WAL_SIZE_LIMIT = 64 * 1024 * 1024
CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"
# Companies whose version the writer remembers between transactions (see _plan).
MAX_CACHED_VERSIONS = 100_000
log = logging.getLogger(__name__)


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
    """A Transaction on the writer's own sqlite3 connection, on the writer's thread."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        upsert_on: str | None = None,
    ) -> None:
        # Multi-row VALUES: one statement step per chunk, where executemany would step (and
        # release and retake the GIL) once per row.
        width = len(columns)
        per_statement = max(1, MAX_INSERT_VARIABLES // width)
        tail = ""
        if upsert_on is not None:
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != upsert_on)
            tail = f" ON CONFLICT ({upsert_on}) DO UPDATE SET {updates}"
        one = "(" + ", ".join("?" * width) + ")"
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params = [value for row in chunk for value in row]
            self._db.execute(head + ", ".join([one] * len(chunk)) + tail, params)

    def events(self, after: int, limit: int, *, types: Sequence[str] = ()) -> list[RecordedEvent]:
        only = f"AND type IN ({_marks(types)}) " if types else ""
        rows = self._db.execute(
            f"SELECT {COLUMNS} FROM events WHERE position > ? {only}ORDER BY position LIMIT ?",
            (after, *types, limit),
        )
        return [RecordedEvent(*row) for row in rows]


def _connect(path: str, synchronous: Synchronous, projections: Sequence[Projection]) -> Any:
    # Multi-row INSERTs have one statement per row count: keep them all prepared.
    db = sqlite3.connect(path, isolation_level=None, cached_statements=1024)
    db.execute("PRAGMA busy_timeout = 10000")
    db.executescript(TUNING)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    # Checkpoints run beside the writer (see _Checkpointer), not inside its COMMITs; this
    # threshold (about 400 MB of WAL) is only the backstop should they fall behind.
    db.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_CHECKPOINT_PAGES}")
    db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    db.executescript(SCHEMA)
    for projection in projections:
        db.executescript(";\n".join([*projection.schema(), *projection.indexes()]))
    return db


class _Checkpointer:
    """Copies the WAL back into the database file every `interval` seconds, on a connection and
    thread of its own. SQLite's automatic checkpoint runs inside the COMMIT that crosses its
    threshold, so one append in a few thousand would wait tens of milliseconds for it; a
    PASSIVE checkpoint here takes no lock a writer or reader needs and waits for none.

    Under steady appends such a checkpoint never catches up: whatever was appended while it
    copied is still to copy when the next transaction starts, so the WAL never starts over and
    grows to the backstop. After a checkpoint of a long WAL (`WAL_RESTART_PAGES`), `finish`
    (the store's) copies the rest on the writer's own thread between two groups; the next
    transaction then writes the WAL from its start, and a WAL file grown past
    `WAL_SIZE_LIMIT` is cut back."""

    def __init__(self, path: str, interval: float = CHECKPOINT_SECONDS) -> None:
        self._path, self._interval = path, interval
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeline-checkpoint")
        self._db: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.finish: Callable[[], Awaitable[None]] | None = None
        self.checkpoints = 0
        self.finished = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="timeline-checkpoint")

    def _checkpoint(self) -> int:
        """A PASSIVE checkpoint; returns the WAL's length in pages when it began."""
        if self._db is None:
            self._db = sqlite3.connect(self._path, isolation_level=None)
        ((_, wal_pages, _),) = self._db.execute(CHECKPOINT).fetchall()
        self.checkpoints += 1
        return int(wal_pages)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            try:
                wal_pages = await loop.run_in_executor(self._thread, self._checkpoint)
                # Whatever was appended while it copied is past `wal_pages`: the writer copies
                # that, so that nothing is left when its next transaction starts.
                if wal_pages >= WAL_RESTART_PAGES and self.finish is not None:
                    await self.finish()
                    self.finished += 1
            except sqlite3.Error:  # the writer's backstop checkpoint still bounds the WAL
                log.exception("a WAL checkpoint failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._db is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        self._thread.shutdown(wait=True)


class SQLiteEventStore(EventStore):
    """The log in one SQLite file in WAL mode.

    Writes run on one thread of their own with a plain sqlite3 connection: a whole group
    commit (BEGIN IMMEDIATE, lookups, planning, inserts, projections, COMMIT) is one call to
    that thread, where aiosqlite would make one thread round trip per statement. BEGIN
    IMMEDIATE also queues other processes on the same file behind it. Reads go through an
    aiosqlite connection of their own, which WAL lets run beside the writer."""

    def __init__(
        self,
        writer: sqlite3.Connection,
        thread: ThreadPoolExecutor,
        reader: aiosqlite.Connection,
        projections: Sequence[Projection],
        checkpointer: _Checkpointer | None = None,
    ) -> None:
        self._writer = writer
        self._thread = thread
        self._reader = reader
        self._projections = list(projections)
        self._checkpointer = checkpointer
        # The companies' versions as of the head `_versions_at`, kept by the writer thread
        # from one transaction to the next, so a group asks the database only for companies
        # it has not seen. Trusted only while the head is still that one: a write by anything
        # else (another process, a failed transaction) moves or keeps the head elsewhere.
        self._versions_at: Head | None = None
        self._known_versions: dict[str, int] = {}
        if checkpointer is not None:
            checkpointer.finish = self._finish_checkpoint
            checkpointer.start()

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        synchronous: Synchronous = "FULL",
        projections: Sequence[Projection] = (),
        checkpoint_seconds: float = CHECKPOINT_SECONDS,
    ) -> SQLiteEventStore:
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeline-writer")
        loop = asyncio.get_running_loop()
        try:
            async with _translated():
                writer = await loop.run_in_executor(
                    thread, _connect, target, synchronous, projections
                )
                reader = await aiosqlite.connect(target, isolation_level=None)
                await reader.execute("PRAGMA busy_timeout = 10000")
                await reader.executescript(TUNING)
                await reader.execute("PRAGMA query_only = 1")
        except BaseException:
            thread.shutdown(wait=False)
            raise
        checkpointer = _Checkpointer(target, checkpoint_seconds) if target != ":memory:" else None
        return cls(writer, thread, reader, projections, checkpointer)

    async def _finish_checkpoint(self) -> None:
        """Copy the rest of the WAL on the writer's thread, queued between two groups: no
        group appends meanwhile. A reader still on an older snapshot can hold back the copy or
        the WAL's restart; the next checkpoint then tries again (and the backstop remains)."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._checkpoint_here)

    def _checkpoint_here(self) -> None:
        self._writer.execute(CHECKPOINT).fetchall()

    async def close(self) -> None:
        if self._checkpointer is not None:
            await self._checkpointer.close()
        await self._reader.close()
        await asyncio.get_running_loop().run_in_executor(self._thread, self._writer.close)
        self._thread.shutdown(wait=True)

    def _in_transaction(self, work: Callable[[_Tx], T]) -> T:
        db = self._writer
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(_Tx(db))
            db.execute("COMMIT")
        except BaseException:
            self._versions_at = None
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    async def run(self, work: Callable[[Transaction], T]) -> T:
        loop = asyncio.get_running_loop()
        async with _translated():
            return await loop.run_in_executor(self._thread, self._in_transaction, work)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with _translated():
            return [tuple(row) for row in await self._reader.execute_fetchall(sql, params)]

    async def append_many(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> list[Appended | TimelineError]:
        return await asyncio.wrap_future(self.start(batches))

    def start(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> concurrent.futures.Future[list[Appended | TimelineError]]:
        ids, companies = GroupPlan.lookups(batches)

        def work(tx: Transaction) -> list[Appended | TimelineError]:
            plan = self._plan(tx, ids, companies)
            results = [plan.add(batch) for batch in batches]
            self._write(tx, plan.rows)
            self._remember(plan)
            return results

        return self._thread.submit(self._translated_transaction, work)

    def _translated_transaction(self, work: Callable[[_Tx], T]) -> T:
        try:
            return self._in_transaction(work)
        except sqlite3.Error as exc:
            raise StoreError(f"the database refused the operation ({type(exc).__name__})") from exc

    async def restore(self, entries: Sequence[RecordedEvent]) -> int:
        if not entries:
            return 0
        ids, companies = GroupPlan.lookups([entries])
        first = entries[0].position
        # Validation needs no transaction: outside it, appends wait less for the write lock.
        validated = [revalidated(entry) for entry in entries]

        def work(tx: Transaction) -> int:
            plan = self._plan(tx, ids, companies)
            already = min(len(entries), plan.head.position - first + 1)
            stored = tx.events(first - 1, already) if already > 0 else []
            created = plan.restore(entries, validated, stored)
            self._write(tx, created)
            self._remember(plan)
            return len(created)

        return await self.run(work)

    def _plan(self, tx: Transaction, ids: Iterable[str], companies: Iterable[str]) -> GroupPlan:
        head = self._head(tx)
        if self._versions_at != head or len(self._known_versions) > MAX_CACHED_VERSIONS:
            self._known_versions = {}
        cached = self._known_versions
        versions = {company: cached[company] for company in companies if company in cached}
        unseen = [company for company in companies if company not in cached]
        if unseen:
            found = self._versions(tx, unseen)
            versions.update((company, found.get(company, 0)) for company in unseen)
        return GroupPlan(
            head=head,
            known=self._lookup(tx, ids),
            versions=versions,
            now=timestamp(),
        )

    def _remember(self, plan: GroupPlan) -> None:
        """Keep the versions a transaction planned with, valid once it commits (a failure
        forgets them: see _in_transaction)."""
        self._known_versions.update(plan.versions)
        self._versions_at = plan.head

    def _write(self, tx: Transaction, rows: Sequence[RecordedEvent]) -> None:
        """Insert new log entries and fold them into every projection, in the caller's
        transaction."""
        if rows:
            tx.insert("events", INSERT_COLUMNS, [_row(event) for event in rows])
            for projection in self._projections:
                projection.apply(tx, rows)

    @staticmethod
    def _lookup(tx: Transaction, ids: Iterable[str]) -> dict[str, RecordedEvent]:
        found: dict[str, RecordedEvent] = {}
        for chunk in _chunks(ids):
            rows = tx.fetch(f"SELECT {COLUMNS} FROM events WHERE id IN ({_marks(chunk)})", chunk)
            for row in rows:
                event = RecordedEvent(*row)
                found[event.id] = event
        return found

    @staticmethod
    def _versions(tx: Transaction, companies: Iterable[str]) -> dict[str, int]:
        versions: dict[str, int] = {}
        for chunk in _chunks(companies):
            # One MAX per company walks the (company, version) index straight to its end;
            # a GROUP BY would read every entry of every company.
            values = ", ".join(["(?)"] * len(chunk))
            rows = tx.fetch(
                f"WITH wanted(company) AS (VALUES {values}) "
                "SELECT company, (SELECT MAX(version) FROM events e "
                "WHERE e.company = wanted.company) FROM wanted",
                chunk,
            )
            versions.update((company, version) for company, version in rows if version)
        return versions

    @staticmethod
    def _head(tx: Transaction) -> Head:
        rows = tx.fetch(HEAD)
        return Head(*rows[0]) if rows else Head(0)

    async def head(self) -> Head:
        rows = await self.query(HEAD)
        return Head(*rows[0]) if rows else Head(0)

    async def read(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        companies: Sequence[str] = (),
        types: Sequence[str] = (),
        until: int | None = None,
    ) -> list[RecordedEvent]:
        where = ["position > ?"]
        params: list[Any] = [after]
        if until is not None:
            where.append("position <= ?")
            params.append(until)
        if companies:
            where.append(f"company IN ({_marks(companies)})")
            params.extend(companies)
        if types:
            where.append(f"type IN ({_marks(types)})")
            params.extend(types)
        params.append(limit)
        sql = f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where)} ORDER BY position LIMIT ?"
        return [RecordedEvent(*row) for row in await self.query(sql, params)]

    async def at(self, positions: Sequence[int]) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        wanted = sorted(set(positions))
        for start in range(0, len(wanted), MAX_VARIABLES):
            chunk = wanted[start : start + MAX_VARIABLES]
            rows = await self.query(
                f"SELECT {COLUMNS} FROM events WHERE position IN ({_marks(chunk)}) "
                "ORDER BY position",
                chunk,
            )
            found.extend(RecordedEvent(*row) for row in rows)
        return found

    async def get(self, event_id: str) -> RecordedEvent | None:
        rows = await self.query(f"SELECT {COLUMNS} FROM events WHERE id = ?", (event_id,))
        return RecordedEvent(*rows[0]) if rows else None

    async def add_token(self, digest: str, scope: str, label: str | None = None) -> None:
        def work(tx: Transaction) -> None:
            tx.execute(
                "INSERT OR IGNORE INTO tokens (digest, scope, label, created) VALUES (?, ?, ?, ?)",
                (digest, scope, label, timestamp()),
            )

        await self.run(work)

    async def token_scope(self, digest: str) -> str | None:
        rows = await self.query("SELECT scope FROM tokens WHERE digest = ?", (digest,))
        return str(rows[0][0]) if rows else None

    async def count_tokens(self) -> int:
        rows = await self.query("SELECT COUNT(*) FROM tokens")
        return int(rows[0][0])
