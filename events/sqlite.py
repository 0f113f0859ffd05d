"""SQLiteEventStore: the embedded default. WAL mode, one writer thread, one reader."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import aiosqlite

from events import schema
from events.appender import LogStore, LogTransaction
from events.store import Lease, Projection, Transaction

# The log's own tables at schema.VERSION.
SCHEMA = (
    """CREATE TABLE events (
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
)""",
    """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only: DELETE refused'); END""",
    """CREATE TABLE tokens (
    digest  TEXT PRIMARY KEY,
    scope   TEXT NOT NULL,
    label   TEXT,
    created TEXT NOT NULL,
    last_used TEXT,
    revoked TEXT
) WITHOUT ROWID""",
    *schema.LOG_INDEXES,
)
MIGRATIONS = schema.Migrations(
    create=SCHEMA,
    # Version 1 kept an index on `recorded` (a binary search over positions replaced it) and
    # created the webhooks table when serving.
    steps={
        2: ("DROP INDEX IF EXISTS events_recorded",),
        3: schema.TOKEN_STEPS,
        5: schema.LOG_INDEXES,
    },
    legacy=True,
)

# The default page cache (2 MB) is far too small once indexes pass a few hundred thousand rows.
TUNING = """
PRAGMA cache_size = -65536;
PRAGMA mmap_size = 1073741824;
PRAGMA temp_store = MEMORY;
"""

# SQLite takes 32766 variables per statement since 3.32.
MAX_INSERT_VARIABLES = 32_000 if sqlite3.sqlite_version_info >= (3, 32) else 999

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
T = TypeVar("T")
CHECKPOINT_SECONDS = 1.0
BACKSTOP_CHECKPOINT_PAGES = 100_000
# A WAL longer than this after a checkpoint is finished by the writer (see _Checkpointer).
WAL_RESTART_PAGES = 4096
# When the WAL starts over, a file grown longer than this is cut back to it.
WAL_SIZE_LIMIT = 64 * 1024 * 1024
CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"
log = logging.getLogger(__name__)


class _Tx(LogTransaction):
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


def _connect(
    path: str, synchronous: Synchronous, projections: Sequence[Projection], create: bool
) -> Any:
    # Multi-row INSERTs have one statement per row count: keep them all prepared.
    db = sqlite3.connect(path, isolation_level=None, cached_statements=1024)
    try:
        db.execute("PRAGMA busy_timeout = 10000")
        db.executescript(TUNING)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        # Checkpoints run beside the writer (see _Checkpointer), not inside its COMMITs; this
        # threshold (about 400 MB of WAL) is only the backstop should they fall behind.
        db.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_CHECKPOINT_PAGES}")
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        db.execute("BEGIN IMMEDIATE")
        tx = _Tx(db)
        tables = {
            name for (name,) in tx.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        columns = {row[1] for row in tx.fetch("PRAGMA table_info(events)")}
        found, _ = schema.migrate(tx, MIGRATIONS, schema.Found(tables, columns), create=create)
        schema.create_projections(tx, projections, tables, found=found)
        db.execute("COMMIT")
    except BaseException:
        db.close()
        raise
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


class _FileLease(Lease):
    """A lease as an exclusive lock on a file beside the database: the kernel releases it
    when its process dies."""

    def __init__(self, handle: IO[bytes] | None) -> None:
        self._handle = handle
        self._released = asyncio.Event()

    async def lost(self) -> None:
        await self._released.wait()

    async def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None
        self._released.set()


class SQLiteEventStore(LogStore):
    """The log in one SQLite file in WAL mode.

    Writes run on one thread of their own with a plain sqlite3 connection: a whole group
    commit (BEGIN IMMEDIATE, lookups, planning, inserts, projections, COMMIT) is one call to
    that thread, where aiosqlite would make one thread round trip per statement. BEGIN
    IMMEDIATE also queues other processes on the same file behind it: with one writer at a
    time, positions are gapless and in commit order. Reads go through an aiosqlite connection
    of their own, which WAL lets run beside the writer."""

    TARGET_ID = "json_extract(events.data, '$.target')"
    DRIVER_ERROR = sqlite3.Error

    def __init__(
        self,
        writer: sqlite3.Connection,
        thread: ThreadPoolExecutor,
        reader: aiosqlite.Connection,
        projections: Sequence[Projection],
        checkpointer: _Checkpointer | None = None,
        path: str = ":memory:",
    ) -> None:
        super().__init__(projections)
        self._path = path
        self._writer = writer
        self._thread = thread
        self._reader = reader
        self._checkpointer = checkpointer
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
        create: bool = True,
    ) -> SQLiteEventStore:
        """Open the log at `path`, creating it (unless `create` is false) or migrating its
        schema."""
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeline-writer")
        loop = asyncio.get_running_loop()
        try:
            async with cls._translated():
                writer = await loop.run_in_executor(
                    thread, _connect, target, synchronous, projections, create
                )
                reader = await aiosqlite.connect(target, isolation_level=None)
                await reader.execute("PRAGMA busy_timeout = 10000")
                await reader.executescript(TUNING)
                await reader.execute("PRAGMA query_only = 1")
        except BaseException:
            thread.shutdown(wait=False)
            raise
        checkpointer = _Checkpointer(target, checkpoint_seconds) if target != ":memory:" else None
        return cls(writer, thread, reader, projections, checkpointer, target)

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

    def _transaction(self, work: Callable[[Transaction], T]) -> concurrent.futures.Future[T]:
        return self._thread.submit(self._in_transaction, work)

    def _in_transaction(self, work: Callable[[Transaction], T]) -> T:
        db = self._writer
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(_Tx(db))
                db.execute("COMMIT")
            except BaseException:
                self._rolled_back()
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._refused(exc) from exc
        return result

    async def lease(self, name: str) -> Lease | None:
        if self._path == ":memory:":
            return _FileLease(None)  # a database no other process can open
        handle = open(f"{self._path}-{name}.lease", "ab")  # noqa: ASYNC230, SIM115 (held open)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return _FileLease(handle)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._translated():
            return [tuple(row) for row in await self._reader.execute_fetchall(sql, params)]
