"""PostgresEventStore: the log on PostgreSQL, through psycopg 3.

Writes run on one thread of their own with a sync connection, as on SQLite: a whole group
commit (BEGIN, the log's lock, lookups, planning, COPY, projections, COMMIT) is one call to that
thread. Reads go through a pool of async connections.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from events import schema
from events.appender import LogStore, LogTransaction, Planner
from events.errors import StoreError
from events.store import Lease, Projection, Transaction
from events.waits import set_within

# SQLite's julianday() of an ISO day, so that the SQL both backends speak counts days (a
# fact's span key is written with the fact). STABLE, as the cast of text to a date is:
# PostgreSQL then inlines it, and the subtraction of two is hi::date - lo::date.
JULIANDAY = """CREATE OR REPLACE FUNCTION julianday(day TEXT) RETURNS double precision
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$ SELECT (day::date - DATE '2000-01-01') + 2451544.5::double precision $$"""

# The log's own tables at schema.VERSION. Text that is compared or ordered is COLLATE "C"
# (byte order, as SQLite's BINARY), whatever the database's default collation is.
SCHEMA = (
    """CREATE TABLE events (
    position   BIGINT PRIMARY KEY,
    id         TEXT COLLATE "C" NOT NULL UNIQUE,
    company    TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    type       TEXT COLLATE "C" NOT NULL,
    occurred   TEXT NOT NULL,
    lo         TEXT COLLATE "C" NOT NULL,
    hi         TEXT COLLATE "C" NOT NULL,
    data       TEXT NOT NULL,
    source     TEXT,
    confidence TEXT NOT NULL,
    recorded   TEXT COLLATE "C" NOT NULL,
    hash       TEXT NOT NULL,
    UNIQUE (company, version)
)""",
    """CREATE FUNCTION timeline_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'the event log is append-only: ' || TG_OP || ' refused';
END
$$""",
    """CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION timeline_append_only()""",
    """CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
FOR EACH STATEMENT EXECUTE FUNCTION timeline_append_only()""",
    """CREATE TABLE tokens (
    digest  TEXT COLLATE "C" PRIMARY KEY,
    scope   TEXT NOT NULL,
    label   TEXT,
    created TEXT NOT NULL,
    last_used TEXT,
    revoked TEXT
)""",
)
MIGRATIONS = schema.Migrations(
    create=(*SCHEMA, *schema.LOG_INDEXES, JULIANDAY),
    steps={3: schema.TOKEN_STEPS, 4: (JULIANDAY,), 5: schema.LOG_INDEXES},
)

# Appends are serialized by this lock, taken first in every write transaction: an entry's
# position is head + 1 when its transaction plans it, so positions are gapless, and with the
# lock held to the commit, commit order is position order (a reader never sees position n + 1
# committed before n). Readers take no lock. An advisory lock, not LOCK TABLE: EXCLUSIVE mode
# needs the UPDATE or DELETE privilege on the log, which the service's role has not. One key
# per schema: logs in two schemas of one database do not wait for each other.
LOCK = "SELECT pg_advisory_xact_lock(7400211, hashtext(current_schema()))"
# After each commit that appended, a wake-up on this channel, naming the schema (never the
# entries: they are read from the log by position). Every process LISTENs.
CHANNEL = "timeline"
NOTIFY = f"SELECT pg_notify('{CHANNEL}', current_schema())"
# A lease (a session advisory lock) per name and schema: held while its connection lives.
LEASE = "SELECT pg_try_advisory_lock(hashtext(current_schema()), hashtext(%s))"
HEARTBEAT_SECONDS = 1.0
# The schema is created or migrated under this one (the log's table may not exist yet).
SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(7400210, hashtext(current_schema()))"
TABLES = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
COLUMNS = (
    "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = 'events'"
)
# PostgreSQL binds at most 65535 parameters per statement.
MAX_PARAMETERS = 65_000
READERS = 8
READ_WAIT_SECONDS = 5.0
T = TypeVar("T")
log = logging.getLogger(__name__)

_TEXT_COLUMN = re.compile(r"\bTEXT\b(?!\s+COLLATE)", re.IGNORECASE)
# A string literal ('' inside is a quote), each found from the left: the text between two
# literals is not one.
_LITERAL = re.compile(r"'(?:[^']|'')*'")


@functools.lru_cache(maxsize=4096)
def _postgres_sql(sql: str) -> str:
    """The one place where the SQL both backends speak becomes PostgreSQL's: `?` placeholders
    become psycopg's `%s` (a literal `%` is doubled), and the text columns of a table created
    compare in byte order (COLLATE "C"), so that every ordering is SQLite's. Values travel
    as parameters, never as literals: a literal holding `?` or `%` is refused, not rewritten."""
    if any("?" in literal or "%" in literal for literal in _LITERAL.findall(sql)):
        raise ValueError(f"a literal holds ? or %; pass the value as a parameter: {sql[:80]!r}")
    sql = sql.replace("%", "%%").replace("?", "%s")
    if re.match(r"\s*(CREATE\s+TABLE|ALTER\s+TABLE)", sql, re.IGNORECASE):
        sql = _TEXT_COLUMN.sub('TEXT COLLATE "C"', sql)
    return sql


class _Planner(Planner):
    LIMITED_SCANS = True


class _Tx(_Planner, LogTransaction):
    """A Transaction on the writer's own connection, on the writer's thread."""

    def __init__(self, db: psycopg.Connection[Any]) -> None:
        self._cursor = db.cursor()

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(_postgres_sql(sql), params)
        return self._cursor.fetchall()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor.execute(_postgres_sql(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(_postgres_sql(sql), list(rows))

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        upsert_on: str | None = None,
    ) -> None:
        if not rows:
            return
        names = ", ".join(columns)
        if upsert_on is not None:
            # An upsert as a delete of the keys and a COPY, not INSERT ... ON CONFLICT of many
            # rows: batches of 1000 events x2.38 (1000 companies each), x1.21 (40), paired.
            key = columns.index(upsert_on)
            self._cursor.execute(
                f"DELETE FROM {table} WHERE {upsert_on} = ANY(%s)", ([row[key] for row in rows],)
            )
        # COPY streams the rows in one statement: no parameters to bind, no plan per row.
        with self._cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


# What a connection gets unless the URL says otherwise: a name pg_stat_activity shows, a bound
# on connecting, and keepalives, so that a peer gone silent is noticed in about a minute
# instead of when TCP gives up.
CONNECTION_DEFAULTS = {
    "application_name": "timeline",
    "connect_timeout": "10",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}
# The writer's session, as on SQLite: an append waits at most 10 s for the log's lock (behind
# a rebuild, say) before it fails with 503; a transaction left open by a frozen process is
# ended by the server, releasing the lock. READ COMMITTED, whatever the server's default:
# the head read after the lock must see every commit before it.
WRITER_SESSION = (
    "SET lock_timeout = '10s'",
    "SET idle_in_transaction_session_timeout = '60s'",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
)


def _conninfo(url: str) -> str:
    given = conninfo_to_dict(url)
    missing = {key: value for key, value in CONNECTION_DEFAULTS.items() if key not in given}
    return make_conninfo(url, **missing) if missing else url


def _connect(url: str) -> psycopg.Connection[Any]:
    db = psycopg.connect(_conninfo(url), autocommit=True)
    for statement in WRITER_SESSION:
        db.execute(statement.encode())
    return db


def _create(url: str, projections: Sequence[Projection], create: bool) -> psycopg.Connection[Any]:
    db = _connect(url)
    try:
        with db.transaction():
            tx = _Tx(db)
            tx.execute(SCHEMA_LOCK)
            tables = {name for (name,) in tx.fetch(TABLES)}
            columns = {name for (name,) in tx.fetch(COLUMNS)}
            found, _ = schema.migrate(tx, MIGRATIONS, schema.Found(tables, columns), create=create)
            now = {name for (name,) in tx.fetch(TABLES)}
            schema.create_projections(tx, projections, now, found=found)
    except BaseException:
        db.close()
        raise
    return db


class _SessionLease(Lease):
    """A lease as a session advisory lock on a connection of its own: the server releases it
    when the connection ends (the process died, or the network between). The holder checks
    its connection every `HEARTBEAT_SECONDS`, so it notices a loss about as soon as another
    process can take the lease."""

    def __init__(self, db: psycopg.AsyncConnection[Any]) -> None:
        self._db = db
        self._released = asyncio.Event()

    async def lost(self) -> None:
        while not self._released.is_set():
            if await set_within(self._released, HEARTBEAT_SECONDS):
                return
            try:
                await self._db.execute(b"SELECT 1")
            except psycopg.Error:
                log.warning("a lease's connection was lost: the lease with it")
                await self.release()

    async def release(self) -> None:
        self._released.set()
        await self._db.close()


class PostgresEventStore(_Planner, LogStore):
    """The log in a PostgreSQL database (the schema first on the URL's search_path).

    Many stores, in many processes, may share one database: each write transaction takes the
    log's lock first, so they append one at a time, and what a store remembers between
    groups is checked against the head it finds (see LogStore)."""

    # Not `data::json ->> 'target'`: that decodes every string of the entry, and one holding
    # \u0000 (which a JSON text may) fails it. In the canonical JSON of an amendment's data,
    # `target` is the last key at the top ("confidence", "data", "occurred", "reason" sort
    # before it) and its value a UUID of 36 characters, so the text ends `"target":"<id>"}`
    # (the log keeps only canonical texts: see GroupPlan.restore). Cut out, not matched: a
    # filtered read following amendments passes over every one in its range, and a scan over
    # 1,000 of them took 231 ms with a regular expression, 17 ms with the cut.
    TARGET_ID = "substr(events.data, length(events.data) - 37, 36)"
    DRIVER_ERROR = psycopg.Error

    @classmethod
    def _refused(cls, exc: Exception) -> StoreError:
        if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
            # No server answered (host, port, authentication): the driver's reason, which
            # names no password, is what the operator needs.
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return StoreError(f"cannot reach PostgreSQL: {reason}")
        return super()._refused(exc)

    def __init__(
        self,
        url: str,
        writer: psycopg.Connection[Any],
        thread: ThreadPoolExecutor,
        readers: AsyncConnectionPool,
        projections: Sequence[Projection],
    ) -> None:
        super().__init__(projections)
        self._url = url
        self._writer = writer
        self._thread = thread
        self._readers = readers

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        projections: Sequence[Projection] = (),
        readers: int = READERS,
        create: bool = True,
    ) -> PostgresEventStore:
        """Open the log in the database at `url`, creating its tables (unless `create` is
        false) or migrating them."""
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="timeline-writer")
        loop = asyncio.get_running_loop()
        try:
            async with cls._translated():
                writer = await loop.run_in_executor(thread, _create, url, projections, create)
                pool = AsyncConnectionPool(
                    _conninfo(url),
                    # A connection the server dropped (a restart) is replaced, not handed out.
                    check=AsyncConnectionPool.check_connection,
                    min_size=1,
                    max_size=readers,
                    kwargs={"autocommit": True},
                    open=False,
                    name="timeline-readers",
                    # A read waits this long for a connection, then fails with 503: with the
                    # server away, a request is answered in seconds, not left hanging.
                    timeout=READ_WAIT_SECONDS,
                )
                try:
                    await pool.open(wait=True, timeout=10)
                except BaseException:
                    await pool.close()
                    await loop.run_in_executor(thread, writer.close)
                    raise
        except BaseException:
            thread.shutdown(wait=False)
            raise
        return cls(url, writer, thread, pool, projections)

    async def close(self) -> None:
        await self._readers.close()
        await asyncio.get_running_loop().run_in_executor(self._thread, self._writer.close)
        self._thread.shutdown(wait=True)

    def _transaction(self, work: Callable[[Transaction], T]) -> concurrent.futures.Future[T]:
        return self._thread.submit(self._in_transaction, work)

    def _in_transaction(self, work: Callable[[Transaction], T]) -> T:
        try:
            return self._attempt(work, retry=True)
        except psycopg.Error as exc:
            raise self._refused(exc) from exc

    def _attempt(self, work: Callable[[Transaction], T], *, retry: bool) -> T:
        if self._writer.broken or self._writer.closed:
            self._writer.close()
            self._writer = _connect(self._url)
        db, locked = self._writer, False
        try:
            with db.transaction():
                tx = _Tx(db)
                tx.execute(LOCK)
                locked = True
                return work(tx)
        except psycopg.OperationalError:
            if retry and not locked and db.broken:
                # The connection died since the last write (a server restart): nothing of this
                # one ran, so it is safe to begin again on a new connection.
                return self._attempt(work, retry=False)
            self._rolled_back()
            raise
        except BaseException:
            self._rolled_back()
            raise

    def _appended(self, tx: Transaction) -> None:
        # Delivered at the commit, and only if it commits. Under the log's lock already, so
        # NOTIFY's own queue lock costs no concurrency.
        tx.execute(NOTIFY)

    async def notifications(self) -> AsyncIterator[None]:
        while True:
            try:
                db = await psycopg.AsyncConnection.connect(_conninfo(self._url), autocommit=True)
            except psycopg.OperationalError:
                log.warning("cannot LISTEN for other processes' commits; retrying in 1 s")
                await asyncio.sleep(1)
                continue
            try:
                async with db:
                    (schema_name,) = await (
                        await db.execute(b"SELECT current_schema()")
                    ).fetchone() or ("",)
                    await db.execute(f"LISTEN {CHANNEL}".encode())
                    yield  # (re)connected: whatever came before is for a catch-up
                    async for notice in db.notifies():
                        if notice.payload == schema_name:
                            yield
            except psycopg.OperationalError:
                log.warning("the LISTEN connection was lost; reconnecting")
                await asyncio.sleep(0.1)

    async def lease(self, name: str) -> Lease | None:
        async with self._translated():
            db = await psycopg.AsyncConnection.connect(_conninfo(self._url), autocommit=True)
            try:
                cursor = await db.execute(LEASE, (name,))
                row = await cursor.fetchone()
            except BaseException:
                await db.close()
                raise
        if row is None or not row[0]:
            await db.close()
            return None
        return _SessionLease(db)

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._fetch(sql, params, None)

    async def _query_planned(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        # Never as a prepared statement: after five runs of one, PostgreSQL may keep a plan
        # made for any values, which for a scan of one type walks the range by position
        # (130 ms for an amendment type absent from 100,000 entries, against 2 ms planned).
        return await self._fetch(sql, params, False)

    async def _fetch(
        self, sql: str, params: Sequence[Any], prepare: bool | None
    ) -> list[tuple[Any, ...]]:
        async with self._translated(), self._readers.connection() as db:
            cursor = await db.execute(_postgres_sql(sql), params, prepare=prepare)
            return await cursor.fetchall()
