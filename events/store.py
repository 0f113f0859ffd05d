"""The EventStore contract every backend fulfils: the log's storage, its write transaction
and the read models kept beside it."""

from __future__ import annotations

import asyncio
import concurrent.futures
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from events.chain import GENESIS
from events.entries import LogEntry, NewEvent
from events.errors import TimelineError

T = TypeVar("T")
# A long task's progress: (done, total).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Head:
    """The last entry of the log: its position, chain value and record time."""

    position: int
    hash: str = GENESIS
    recorded: str | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    """The answer to one batch: its stored events, and whether this call created them."""

    events: list[LogEntry]
    created: bool


def marks(values: Sequence[object]) -> str:
    """`?, ?, ?`: one placeholder per value, for SQL a Transaction or `query` runs."""
    return ", ".join("?" * len(values))


def merged_scans(scans: Sequence[str], order: str, limited: bool) -> str:
    """The first rows (LIMIT ?) of the statements `scans`, each an ordered scan of one index
    in the order of the columns `order`, merged: one pass over each, reading no further than
    the page needs. SQLite merges a UNION ALL of the scans themselves under the outer ORDER
    BY; PostgreSQL merges only scans it plans on their own, for their first rows (`limited`:
    each a subquery with its own ORDER BY and LIMIT ?, whose value follows the scan's), where
    SQLite would read and sort each one's first rows in full."""
    if limited:
        scans = [
            f"SELECT * FROM ({scan} ORDER BY {order} LIMIT ?) AS s{n}"
            for n, scan in enumerate(scans)
        ]
    # In a query of its own: PostgreSQL merges only a UNION ALL it flattens.
    return f"SELECT * FROM ({' UNION ALL '.join(scans)}) AS scans ORDER BY {order} LIMIT ?"


class Transaction(Protocol):
    """SQL inside the store's open write transaction, run on the writer's thread
    (synchronously: a whole transaction is one trip to that thread). Statements are the SQL
    both backends speak, with `?` placeholders (a backend translates them). Projections write
    their tables through this, never through a driver."""

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        upsert_on: str | None = None,
    ) -> None:
        """Insert many rows at once (the backend picks the fastest way); with `upsert_on`,
        a row whose key already exists replaces the other columns."""
        ...

    def events(self, after: int, limit: int, *, types: Sequence[str] = ()) -> list[LogEntry]:
        """Log entries with position > after (of these types, if given), in position order."""
        ...


class Projection(Protocol):
    """A read model kept in the log's database and written in the same transaction as the
    entries it folds, so no reader sees an entry whose projection is missing.

    Its SQL names its own tables, and of the others only the log's `events` (position, id,
    type, company, occurred, lo, hi, data, source, confidence, version, recorded, hash), where
    the entries `apply` is given already are: a projection may copy from it in SQL."""

    def tables(self) -> Sequence[str]:
        """The tables it keeps: a store creates them (`schema`, `indexes`) when one is
        missing."""
        ...

    def schema(self) -> Sequence[str]:
        """Statements creating its tables (idempotent)."""
        ...

    def indexes(self) -> Sequence[str]:
        """Statements creating its indexes (idempotent)."""
        ...

    def drop(self) -> Sequence[str]:
        """Statements dropping its tables (for a rebuild)."""
        ...

    def apply(self, tx: Transaction, events: Sequence[LogEntry]) -> None:
        """Fold newly appended entries, given in position order."""
        ...

    def rolled_back(self) -> None:
        """The write transaction of the last `apply` (or `rebuild`) failed, at its commit
        perhaps: forget whatever was kept in memory from it."""
        ...

    def rebuild(self, tx: Transaction, progress: Progress | None) -> None:
        """Refill its freshly created, still index-less tables from the whole log (read
        through `tx`), then create its indexes; report (done, total) log entries."""
        ...


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What is stored of a token: never its secret, only its SHA-256."""

    digest: str
    scope: str
    label: str | None
    created: str
    last_used: str | None
    revoked: str | None

    @property
    def id(self) -> str:
        """How a person names it: the first 12 hex digits of its digest."""
        return self.digest[:TOKEN_ID_LENGTH]


TOKEN_ID_LENGTH = 12


class Lease(ABC):
    """A named lease held by one process among all those on a database until it is released
    or lost (the holder died, its connection dropped): work that must run once, not once per
    process, runs while it is held."""

    @abstractmethod
    async def lost(self) -> None:
        """Return once the lease is no longer held (released, or lost)."""

    @abstractmethod
    async def release(self) -> None:
        """Give the lease up."""


class EventStore(ABC):
    """The log's storage. Positions are gapless and commit-ordered; versions count a company's
    entries; entries are never updated or deleted. A backend joins the contract suite in
    tests/events/test_store_contract.py with one fixture line."""

    @abstractmethod
    async def append_many(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> list[Appended | TimelineError]:
        """Append several batches in one transaction, each all-or-nothing on its own: a batch
        that fails gets its error in the result list and stores nothing."""

    @abstractmethod
    def submit_appends(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> concurrent.futures.Future[list[Appended | TimelineError]]:
        """`append_many`, started now, callable from any thread; the returned future holds
        its result. A backend whose writes run on a thread of its own queues the transaction
        there without waiting, and the future's done callbacks run on that thread as soon as
        it commits: events.writer starts the next group from there, with no trip through the
        event loop. (A backend on the event loop hands `append_many` to it with
        `asyncio.run_coroutine_threadsafe`.)"""

    async def append(self, batch: Sequence[NewEvent]) -> Appended:
        """Append one batch atomically, raising its error."""
        (result,) = await self.append_many([batch])
        if isinstance(result, TimelineError):
            raise result
        return result

    @abstractmethod
    async def restore(self, entries: Sequence[LogEntry]) -> int:
        """Store entries of another log (an export) exactly as they are, hash included, in one
        transaction, all or nothing; projections are written as for an append. Entries at
        positions already stored must be identical to them and are skipped, so restoring twice
        is a no-op. The others must continue the log: consecutive positions from head + 1,
        valid events with valid amendment targets, the next version of their company, a
        `recorded` not before the head's, and the hash the chain gives them. An error names
        the offending entry's `position`. Returns how many entries were new."""

    @abstractmethod
    async def read(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        companies: Sequence[str] = (),
        types: Sequence[str] = (),
        until: int | None = None,
        amendments_follow: bool = False,
    ) -> list[LogEntry]:
        """Entries with after < position (≤ until), in position order, optionally filtered.
        With `amendments_follow`, the `types` filter also passes every amendment whose target
        is of one of those types (a consumer that filters by type sees its facts retracted
        and corrected); without it, the filter is on each entry's own type."""

    @abstractmethod
    async def get(self, event_id: str) -> LogEntry | None:
        """One entry by id."""

    @abstractmethod
    async def at(self, positions: Sequence[int]) -> list[LogEntry]:
        """The entries at these positions, in position order."""

    @abstractmethod
    async def head(self) -> Head:
        """The last entry, or position 0 on an empty log."""

    @abstractmethod
    async def last_recorded_by(self, moment: str) -> Head:
        """The last entry recorded at or before `moment` (a `timestamp`), or position 0."""

    @abstractmethod
    async def version_at(self, company: str, position: int) -> int:
        """The company's version after the entries up to `position` (0: none yet)."""

    @abstractmethod
    async def companies_at(self, position: int) -> list[str]:
        """The companies with an entry at or before `position`, in name order."""

    @abstractmethod
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only statement (`?` placeholders) on a consistent snapshot of the database.
        For the projections' own named queries, which know their tables."""

    @abstractmethod
    async def write_transaction(self, work: Callable[[Transaction], T]) -> T:
        """Run `work` in one exclusive write transaction on the writer's thread: committed
        when it returns, rolled back when it raises."""

    @abstractmethod
    async def add_token(self, digest: str, scope: str, label: str | None = None) -> None:
        """Store a token's SHA-256 with its scope (an existing digest keeps its first scope)."""

    @abstractmethod
    async def token_scope(self, digest: str) -> str | None:
        """The scope of the token with this SHA-256, if any and not revoked."""

    @abstractmethod
    async def tokens(self) -> list[TokenRecord]:
        """Every token stored, revoked ones too, oldest first."""

    @abstractmethod
    async def revoke_token(self, token_id: str) -> TokenRecord | None:
        """Revoke the token whose id (its digest's first 12 hex digits) or digest this is;
        returns it (revoked already or now), None if no token has it."""

    @abstractmethod
    async def token_used(self, digest: str, moment: str) -> None:
        """Record that the token was used at `moment` (a timestamp)."""

    @abstractmethod
    async def count_tokens(self) -> int:
        """How many tokens are stored."""

    async def notifications(self) -> AsyncIterator[None]:
        """Yields whenever another process may have committed to this log (and once at each
        (re)connection, when some may have been missed). A backend that cannot hear other
        processes never yields: its readers poll."""
        await asyncio.Future()  # never resolves
        yield

    @abstractmethod
    async def lease(self, name: str) -> Lease | None:
        """The lease `name` if no other process holds it now, else None (ask again later)."""

    @abstractmethod
    async def schema_version(self) -> int:
        """The version of the schema the database is at (opening migrated it to the code's)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; pending writes are finished first."""

    @abstractmethod
    async def verify(self, *, page: int = 5000, last: int | None = None) -> int | None:
        """Recompute the chain over the whole log, or over its `last` entries (the first of
        them chained to the stored hash of the one before): the first bad position, or None.
        Positions must follow each other from 1 (or from the first of the `last`)."""
