"""LogStore: everything about the log that does not depend on the engine, written once.

An append: `submit_appends` looks up what the group needs (ids, targets, company versions)
inside the backend's write transaction, plans it (events.plan), inserts the new entries with
the backend's bulk insert, folds them into every projection and commits, all in one trip to
the writer's thread. A backend supplies only that transaction (`_transaction`: serialized,
so positions are gapless and commit-ordered; driver errors translated), its reads (`query`),
its `close`, its driver's error class (`DRIVER_ERROR`) and the SQL of an amendment's target
(`TARGET_ID`). The log's SQL lives here, in the subset both backends speak, with `?`
placeholders that a backend translates in one place.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import operator
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from events.chain import GENESIS, chain
from events.entries import LogEntry, NewEvent
from events.errors import StoreError, TimelineError
from events.plan import GroupPlan, revalidated
from events.store import Appended, Head, Projection, Transaction, marks, merged_scans
from events.tokens import TokenStore
from events.types import AMENDMENTS
from events.values import timestamp

T = TypeVar("T")

# Columns in the order of LogEntry's fields, so a row unpacks straight into one.
COLUMNS = ", ".join(name.removesuffix("_json") for name in LogEntry.__slots__)
INSERT_COLUMNS = COLUMNS.split(", ")
HEAD = "SELECT position, hash, recorded FROM events ORDER BY position DESC LIMIT 1"
# Values bound in one IN (...) list at most.
MAX_VARIABLES = 900
# Ordered scans a filtered read merges at most (see _Filters.scans): PostgreSQL's planning of
# the merge grows faster than its scans (about 1 ms for 16, 16 ms for 50, 170 ms for 200).
MAX_SCANS = 16
# Positions are 64-bit integers in both backends: a larger one a client asks for lies past the
# head of any log, and is never handed to a driver (which would overflow).
MAX_POSITION = 2**63 - 1
# Companies whose version the writer remembers between transactions (see _plan).
MAX_CACHED_VERSIONS = 100_000

# The last position recorded by time t. `recorded` never decreases along the log and
# positions are gapless, so a binary search over positions finds it in about log2(head)
# primary-key look-ups, with no index on `recorded` for every append to keep up.
RECORDED_BY = """
WITH RECURSIVE search(low, high) AS (
    SELECT CAST(0 AS BIGINT), COALESCE((SELECT MAX(position) FROM events), 0)
    UNION ALL
    SELECT
        CASE WHEN (SELECT recorded FROM events WHERE position = (low + high + 1) / 2) <= ?
             THEN (low + high + 1) / 2 ELSE low END,
        CASE WHEN (SELECT recorded FROM events WHERE position = (low + high + 1) / 2) <= ?
             THEN high ELSE (low + high + 1) / 2 - 1 END
    FROM search WHERE low < high
)
SELECT e.position, e.hash, e.recorded FROM search JOIN events e ON e.position = search.low
WHERE search.low = search.high
"""

_AMENDMENTS = sorted(AMENDMENTS)

_row = operator.attrgetter(*LogEntry.__slots__)


def _merged(
    scans: Sequence[tuple[str, list[Any]]], limit: int, limited: bool
) -> tuple[str, list[Any]]:
    """The first `limit` rows of ordered scans (statement, parameters) of `events`, merged in
    position order (store.merged_scans), with their parameters."""
    if len(scans) == 1:
        sql, values = scans[0]
        return f"{sql} ORDER BY position LIMIT ?", [*values, limit]
    params: list[Any] = []
    for _, scan in scans:
        params += [*scan, limit] if limited else scan
    return merged_scans([sql for sql, _ in scans], "position", limited), [*params, limit]


@dataclass(frozen=True, slots=True)
class _Filters:
    """A filtered read of the range `bounds` (SQL, with the values `between`), in SQL: the
    companies and types it keeps, and whether amendments follow their targets' types (found
    with `target_id`, the backend's TARGET_ID)."""

    bounds: str
    between: list[Any]
    companies: Sequence[str]
    types: Sequence[str]
    amendments_follow: bool
    target_id: str

    def scans(self) -> list[tuple[str, list[Any]]]:
        """The read as ordered scans (statement, values), one per value of the filter that
        drives it, each walking an index of the log in position order: with types, one per
        type on `events_type` (the companies a condition), and with `amendments_follow` one
        per other amendment type, keeping those whose target is of one of the types; with
        companies alone, one per company on `events_company`. No two scans meet the same
        entry."""
        companies, types = sorted(set(self.companies)), sorted(set(self.types))
        select, bounds, between = f"SELECT {COLUMNS} FROM events WHERE", self.bounds, self.between
        if not types:
            return [(f"{select} company = ? AND {bounds}", [c, *between]) for c in companies]
        among = f" AND company IN ({marks(companies)})" if companies else ""
        scans = [
            (f"{select} type = ? AND {bounds}{among}", [t, *between, *companies]) for t in types
        ]
        # An amendment's target is never an amendment, and has the amendment's company.
        followed = [kind for kind in types if kind not in AMENDMENTS]
        if self.amendments_follow and followed:
            target = f" AND {self._target_of(followed)}"
            scans += [
                (
                    f"{select} type = ? AND {bounds}{among}{target}",
                    [kind, *between, *companies, *followed],
                )
                for kind in _AMENDMENTS
                if kind not in types
            ]
        return scans

    def _target_of(self, types: Sequence[str]) -> str:
        """An amendment's target is of one of `types` (their values follow)."""
        return (
            f"EXISTS (SELECT 1 FROM events target WHERE target.id = {self.target_id} "
            f"AND target.type IN ({marks(types)}))"
        )

    def one_statement(self) -> tuple[str, list[Any]]:
        """The read as one scan (statement, values), for filters that make too
        many scans, or too many values to bind once per scan: more companies than MAX_SCANS,
        or many companies with several types. Its planner may read every entry of the range,
        or sort every match of the companies."""
        where, params = [self.bounds], list(self.between)
        companies, types = self.companies, self.types
        if companies:
            where.append(f"company IN ({marks(companies)})")
            params.extend(companies)
        if types and self.amendments_follow:
            where.append(
                f"(type IN ({marks(types)}) OR (type IN ({marks(_AMENDMENTS)}) "
                f"AND {self._target_of(types)}))"
            )
            params.extend([*types, *_AMENDMENTS, *types])
        elif types:
            where.append(f"type IN ({marks(types)})")
            params.extend(types)
        return f"SELECT {COLUMNS} FROM events WHERE {' AND '.join(where)}", params


def _chunks(values: Iterable[str]) -> list[list[str]]:
    items = sorted(values)
    return [items[i : i + MAX_VARIABLES] for i in range(0, len(items), MAX_VARIABLES)]


class Planner:
    """What the SQL of a backend's store and transactions needs to know of its planner."""

    # Whether it merges ordered scans only when each is limited on its own (merged_scans).
    LIMITED_SCANS = False


class LogTransaction(Planner):
    """The part of a Transaction every backend shares: reading the log's entries. A backend's
    transaction adds `fetch`, `execute`, `executemany` and its bulk `insert`."""

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def events(self, after: int, limit: int, *, types: Sequence[str] = ()) -> list[LogEntry]:
        # Of some types: one ordered scan of `events_type` per type, merged (SQLite would walk
        # that index for all of them at once, and sort every such entry after `after`, page
        # after page).
        scans = [
            (f"SELECT {COLUMNS} FROM events WHERE type = ? AND position > ?", [kind, after])
            for kind in sorted(set(types))
        ] or [(f"SELECT {COLUMNS} FROM events WHERE position > ?", [after])]
        return [LogEntry(*row) for row in self.fetch(*_merged(scans, limit, self.LIMITED_SCANS))]


class LogStore(TokenStore, Planner):
    """The backend-neutral EventStore: appends, restores, reads and tokens over the log's
    tables, through a backend's write transaction and reads."""

    def __init__(self, projections: Sequence[Projection]) -> None:
        self._projections = list(projections)
        # The companies' versions as of the head `_versions_at`, kept by the writer thread
        # from one transaction to the next, so a group asks the database only for companies
        # it has not seen. Trusted only while the head is still that one: a write by anything
        # else (another process, a failed transaction) moves or keeps the head elsewhere.
        self._versions_at: Head | None = None
        self._known_versions: dict[str, int] = {}

    # What a backend supplies.

    # SQL giving an amendment's target id from its row's `data` (JSON text).
    TARGET_ID: str
    # The driver's errors, which become domain errors (StoreError) here and only here.
    DRIVER_ERROR: type[Exception]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("TARGET_ID", "DRIVER_ERROR"):
            if not hasattr(cls, name):
                raise TypeError(f"{cls.__name__} must set {name}")

    @classmethod
    def _refused(cls, exc: Exception) -> StoreError:
        """The StoreError a driver error becomes."""
        return StoreError(f"the database refused the operation ({type(exc).__name__})")

    @classmethod
    @asynccontextmanager
    async def _translated(cls) -> AsyncIterator[None]:
        try:
            yield
        except cls.DRIVER_ERROR as exc:
            raise cls._refused(exc) from exc

    @abstractmethod
    def _transaction(self, work: Callable[[Transaction], T]) -> concurrent.futures.Future[T]:
        """Queue `work` as one write transaction on the writer's thread and return at once.
        Write transactions run one at a time, each beginning with whatever makes positions
        gapless and commit-ordered; committed when `work` returns, rolled back when it (or
        the commit) raises, calling `_rolled_back` then. Driver errors reach the future as
        StoreError. The future's done callbacks run on the writer's thread."""

    def _appended(self, tx: Transaction) -> None:
        """Called in a write transaction that appended entries, before its commit: a backend
        whose other processes should hear of it says so here."""

    def _rolled_back(self) -> None:
        """A write transaction failed: forget what was planned or folded in it."""
        self._versions_at = None
        for projection in self._projections:
            projection.rolled_back()

    # The contract, written once.

    async def write_transaction(self, work: Callable[[Transaction], T]) -> T:
        return await asyncio.wrap_future(self._transaction(work))

    async def append_many(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> list[Appended | TimelineError]:
        return await asyncio.wrap_future(self.submit_appends(batches))

    def submit_appends(
        self, batches: Sequence[Sequence[NewEvent]]
    ) -> concurrent.futures.Future[list[Appended | TimelineError]]:
        ids, companies = GroupPlan.lookups(batches)

        def work(tx: Transaction) -> list[Appended | TimelineError]:
            plan = self._plan(tx, ids, companies)
            results = [plan.add(batch) for batch in batches]
            self._write(tx, plan.rows)
            self._remember(plan)
            return results

        return self._transaction(work)

    async def restore(self, entries: Sequence[LogEntry]) -> int:
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

        return await self.write_transaction(work)

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
            head=head, stored=self._lookup(tx, ids), versions=versions, now=timestamp()
        )

    def _remember(self, plan: GroupPlan) -> None:
        """Keep the versions a transaction planned with, valid once it commits (a failure
        forgets them: see _rolled_back)."""
        self._known_versions.update(plan.versions)
        self._versions_at = plan.head

    def _write(self, tx: Transaction, rows: Sequence[LogEntry]) -> None:
        """Insert new log entries and fold them into every projection, in the caller's
        transaction."""
        if rows:
            tx.insert("events", INSERT_COLUMNS, [_row(event) for event in rows])
            for projection in self._projections:
                projection.apply(tx, rows)
            self._appended(tx)

    @staticmethod
    def _lookup(tx: Transaction, ids: Iterable[str]) -> dict[str, LogEntry]:
        found: dict[str, LogEntry] = {}
        for chunk in _chunks(ids):
            rows = tx.fetch(f"SELECT {COLUMNS} FROM events WHERE id IN ({marks(chunk)})", chunk)
            for row in rows:
                event = LogEntry(*row)
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

    async def last_recorded_by(self, moment: str) -> Head:
        rows = await self.query(RECORDED_BY, (moment, moment))
        return Head(*rows[0]) if rows else Head(0)

    async def version_at(self, company: str, position: int) -> int:
        rows = await self.query(
            "SELECT version FROM events WHERE company = ? AND position <= ? "
            "ORDER BY version DESC LIMIT 1",
            (company, position),
        )
        return int(rows[0][0]) if rows else 0

    async def companies_at(self, position: int) -> list[str]:
        rows = await self.query(
            "SELECT DISTINCT company FROM events WHERE position <= ? ORDER BY company",
            (position,),
        )
        return [str(company) for (company,) in rows]

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
        if after >= MAX_POSITION:
            return []
        bounds, between = "position > ?", [after]
        if until is not None:
            bounds += " AND position <= ?"
            between.append(min(until, MAX_POSITION))
        if not companies and not types:
            every = [(f"SELECT {COLUMNS} FROM events WHERE {bounds}", between)]
            sql, params = _merged(every, limit, self.LIMITED_SCANS)
            return [LogEntry(*row) for row in await self.query(sql, params)]
        filters = _Filters(bounds, between, companies, types, amendments_follow, self.TARGET_ID)
        scans = filters.scans()
        binds = sum(len(params) + self.LIMITED_SCANS for _, params in scans) + 1
        if len(scans) > MAX_SCANS or binds > MAX_VARIABLES:
            scans = [filters.one_statement()]
        sql, params = _merged(scans, limit, self.LIMITED_SCANS)
        return [LogEntry(*row) for row in await self._query_planned(sql, params)]

    async def _query_planned(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """`query`, for a statement whose best plan turns on its values (which type or
        company a scan walks): a backend that may keep a plan made for any values (prepared
        statements) plans this one for its own every time."""
        return await self.query(sql, params)

    async def at(self, positions: Sequence[int]) -> list[LogEntry]:
        found: list[LogEntry] = []
        wanted = sorted({position for position in positions if 0 < position <= MAX_POSITION})
        for start in range(0, len(wanted), MAX_VARIABLES):
            chunk = wanted[start : start + MAX_VARIABLES]
            rows = await self.query(
                f"SELECT {COLUMNS} FROM events WHERE position IN ({marks(chunk)}) "
                "ORDER BY position",
                chunk,
            )
            found.extend(LogEntry(*row) for row in rows)
        return found

    async def get(self, event_id: str) -> LogEntry | None:
        rows = await self.query(f"SELECT {COLUMNS} FROM events WHERE id = ?", (event_id,))
        return LogEntry(*rows[0]) if rows else None

    async def schema_version(self) -> int:
        rows = await self.query("SELECT MAX(version) FROM schema_version")
        return int(rows[0][0])

    async def verify(self, *, page: int = 5000, last: int | None = None) -> int | None:
        """Recompute the chain over the whole log, or over its `last` entries (the first of
        them chained to the stored hash of the one before): the first bad position, or None.
        Positions must follow each other from 1 (or from the first of the `last`)."""
        previous, expected = GENESIS, 1
        head = (await self.head()).position
        if last is not None and head > last:
            expected = head - last + 1
            before = await self.at([expected - 1])
            if not before:
                return expected - 1
            previous = before[0].hash
        while True:
            events = await self.read(after=expected - 1, limit=page)
            if not events:
                return None
            for event in events:
                if event.position != expected:
                    return expected
                if chain(previous, event.hashed_json()) != event.hash:
                    return event.position
                previous, expected = event.hash, expected + 1
