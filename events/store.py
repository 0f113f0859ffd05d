"""The EventStore contract every backend fulfils, and the backend-neutral planning of an append."""

from __future__ import annotations

import concurrent.futures
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson

from events.envelope import (
    GENESIS,
    NewEvent,
    RecordedEvent,
    chain,
    chain_many,
    content,
    correct_against,
    parse_json,
    validate_body,
)
from events.errors import (
    IdConflict,
    PositionConflict,
    TimelineError,
    ValidationFailed,
    VersionConflict,
)
from events.types import AMENDMENTS

T = TypeVar("T")

TIMESTAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


@dataclass(frozen=True, slots=True)
class Head:
    """The last entry of the log: its position, chain value and record time."""

    position: int
    hash: str = GENESIS
    recorded: str | None = None


@dataclass(frozen=True, slots=True)
class Appended:
    """The answer to one batch: its stored events, and whether this call created them."""

    events: list[RecordedEvent]
    created: bool


class Transaction(Protocol):
    """SQL inside the store's open write transaction, with `?` placeholders, run on the
    writer's thread (synchronously: a whole transaction is one trip to that thread).
    Projections write their tables through this, never through a driver."""

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

    def events(self, after: int, limit: int, *, types: Sequence[str] = ()) -> list[RecordedEvent]:
        """Log entries with position > after (of these types, if given), in position order."""
        ...


class Projection(Protocol):
    """A read model kept in the log's database and written in the same transaction as the
    entries it folds, so no reader sees an entry whose projection is missing."""

    def schema(self) -> Sequence[str]:
        """Statements creating its tables (idempotent)."""
        ...

    def indexes(self) -> Sequence[str]:
        """Statements creating its indexes (idempotent)."""
        ...

    def drop(self) -> Sequence[str]:
        """Statements dropping its tables (for a rebuild)."""
        ...

    def apply(self, tx: Transaction, events: Sequence[RecordedEvent]) -> None:
        """Fold newly appended entries, given in position order."""
        ...

    def rebuild(self, tx: Transaction, progress: Callable[[int, int], None] | None) -> None:
        """Refill its freshly created, still index-less tables from the whole log (read
        through `tx`), then create its indexes; report (done, total) log entries."""
        ...


def timestamp(moment: datetime | None = None) -> str:
    """RFC 3339 UTC with microseconds, the one format of every time the server sets."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime(TIMESTAMP)


def is_timestamp(text: str) -> bool:
    """Whether `text` is a time in the one format `timestamp` writes."""
    if _TIMESTAMP.fullmatch(text) is None:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


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
    def start(
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
    async def restore(self, entries: Sequence[RecordedEvent]) -> int:
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
    ) -> list[RecordedEvent]:
        """Entries with after < position (≤ until), in position order, optionally filtered."""

    @abstractmethod
    async def get(self, event_id: str) -> RecordedEvent | None:
        """One entry by id."""

    @abstractmethod
    async def at(self, positions: Sequence[int]) -> list[RecordedEvent]:
        """The entries at these positions, in position order."""

    @abstractmethod
    async def head(self) -> Head:
        """The last entry, or position 0 on an empty log."""

    @abstractmethod
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """A read-only statement (`?` placeholders) on a consistent snapshot of the database."""

    @abstractmethod
    async def run(self, work: Callable[[Transaction], T]) -> T:
        """Run `work` in one exclusive write transaction on the writer's thread: committed
        when it returns, rolled back when it raises."""

    @abstractmethod
    async def add_token(self, digest: str, scope: str, label: str | None = None) -> None:
        """Store a token's SHA-256 with its scope (an existing digest keeps its first scope)."""

    @abstractmethod
    async def token_scope(self, digest: str) -> str | None:
        """The scope of the token with this SHA-256, if any."""

    @abstractmethod
    async def count_tokens(self) -> int:
        """How many tokens are stored."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections; pending writes are finished first."""

    async def verify(self, *, page: int = 5000) -> int | None:
        """Recompute the chain over the whole log: the first bad position, or None."""
        previous, expected = GENESIS, 1
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


@dataclass
class GroupPlan:
    """Plans the batches of one transaction against the log as it stands: idempotency,
    amendment targets and expected versions, then positions, versions and the chain; or
    checks restored entries against it. `known` holds the stored events among the ids and
    targets the group mentions."""

    head: Head
    known: dict[str, RecordedEvent]
    versions: dict[str, int]
    now: str = field(default_factory=timestamp)
    rows: list[RecordedEvent] = field(default_factory=list)

    @staticmethod
    def lookups(
        batches: Iterable[Sequence[NewEvent | RecordedEvent]],
    ) -> tuple[set[str], set[str]]:
        """The ids (events and amendment targets) and companies a group needs looked up."""
        ids: set[str] = set()
        companies: set[str] = set()
        for batch in batches:
            for event in batch:
                if not (isinstance(event, NewEvent) and event.fresh):
                    ids.add(event.id)
                companies.add(event.company)
                target = event.target
                if target is not None:
                    ids.add(target)
        return ids, companies

    def add(self, batch: Sequence[NewEvent]) -> Appended | TimelineError:
        try:
            return self._add(batch)
        except TimelineError as error:
            return error

    def _add(self, batch: Sequence[NewEvent]) -> Appended:
        stored = [self.known.get(event.id) for event in batch]
        if any(entry is not None for entry in stored):
            return self._replay(batch, stored)
        batch = self._check_targets(batch)
        self._check_versions(batch)
        return Appended(self._assign(batch), created=True)

    def _replay(self, batch: Sequence[NewEvent], stored: list[RecordedEvent | None]) -> Appended:
        found = [entry for entry in stored if entry is not None]
        if len(found) < len(batch):
            raise IdConflict(
                "the batch mixes ids already stored with new ones; nothing was stored",
                ids=[entry.id for entry in found],
            )
        for event, entry in zip(batch, found, strict=True):
            if content(self._normalized(event)) != content(entry):
                raise IdConflict(
                    f"event id {event.id} is already stored with other content",
                    id=event.id,
                    position=entry.position,
                )
        return Appended(found, created=False)

    def _normalized(self, event: NewEvent) -> NewEvent:
        target_id = event.target if event.type == "event.corrected" else None
        target = self.known.get(target_id) if target_id is not None else None
        if target is None:
            return event
        try:
            return correct_against(event, target.type)
        except ValidationFailed:
            return event

    def _check_targets(self, batch: Sequence[NewEvent]) -> list[NewEvent]:
        checked: list[NewEvent] = []
        earlier: dict[str, NewEvent] = {}
        for event in batch:
            if event.type in AMENDMENTS:
                event = self._check_target(event, earlier)
            earlier[event.id] = event
            checked.append(event)
        return checked

    def _check_target(self, event: NewEvent, earlier: dict[str, NewEvent]) -> NewEvent:
        target_id = event.target
        assert target_id is not None
        target: NewEvent | RecordedEvent | None = earlier.get(target_id) or self.known.get(
            target_id
        )
        loc = [*event.loc, "data", "target"]
        if target is None:
            problem = f"target {target_id} is not a stored event nor an earlier one in the batch"
        elif target.type in AMENDMENTS:
            problem = f"target {target_id} is an amendment; amend the original event instead"
        elif target.company != event.company:
            problem = f"target {target_id} belongs to company {target.company!r}, not this one"
        else:
            return correct_against(event, target.type) if event.type == "event.corrected" else event
        raise ValidationFailed(problem, errors=[{"loc": loc, "msg": problem}])

    def _check_versions(self, batch: Sequence[NewEvent]) -> None:
        running: dict[str, int] = {}
        for event in batch:
            current = running.get(event.company, self.versions.get(event.company, 0))
            if event.expected_version is not None and event.expected_version != current:
                raise VersionConflict(
                    f"company {event.company!r} is at version {current}, "
                    f"not {event.expected_version}; nothing was stored",
                    company=event.company,
                    current_version=current,
                    id=event.id,
                )
            running[event.company] = current + 1

    def _assign(self, batch: Sequence[NewEvent]) -> list[RecordedEvent]:
        head = self.head
        recorded = max(self.now, head.recorded or "")
        position = head.position
        versions, known = self.versions, self.known
        created: list[RecordedEvent] = []
        for event in batch:
            position += 1
            version = versions.get(event.company, 0) + 1
            entry = event.recorded_as(position, version, recorded)
            versions[event.company] = version
            known[event.id] = entry
            created.append(entry)
        self.head = Head(position, chain_many(head.hash, created), recorded)
        self.rows.extend(created)
        return created

    def restore(
        self,
        entries: Sequence[RecordedEvent],
        validated: Sequence[NewEvent | ValidationFailed],
        stored: Sequence[RecordedEvent],
    ) -> list[RecordedEvent]:
        """Check entries for `EventStore.restore`, given what `revalidated` made of each (it
        needs no transaction, so a backend may run it before); `stored` holds the log's
        entries at the positions among them that are not past the head. Returns the new
        entries."""
        existing = {entry.position: entry for entry in stored}
        created: list[RecordedEvent] = []
        for entry, event in zip(entries, validated, strict=True):
            try:
                if entry.position <= self.head.position and not created:
                    self._check_stored(entry, existing.get(entry.position))
                else:
                    created.append(self._restored(entry, event))
            except TimelineError as error:
                error.extra.setdefault("position", entry.position)
                raise
        self.rows.extend(created)
        return created

    @staticmethod
    def _check_stored(entry: RecordedEvent, stored: RecordedEvent | None) -> None:
        if stored is None:
            raise PositionConflict(f"position {entry.position} is not a position of a log")
        if stored.to_json() != entry.to_json():
            raise PositionConflict(
                f"position {entry.position} is stored with other content: "
                "these entries are not of this log"
            )

    def _restored(self, entry: RecordedEvent, event: NewEvent | ValidationFailed) -> RecordedEvent:
        head, position = self.head, entry.position
        if position != head.position + 1:
            raise PositionConflict(
                f"position {position} does not continue the log, whose head is {head.position}",
                head=head.position,
            )
        if entry.id in self.known:
            raise IdConflict(
                f"event id {entry.id} is already stored at position "
                f"{self.known[entry.id].position}",
                id=entry.id,
            )
        if isinstance(event, ValidationFailed):
            raise event
        if event.type in AMENDMENTS:
            event = self._check_target(event, {})
        version = self.versions.get(event.company, 0) + 1
        if entry.version != version:
            raise ValidationFailed(
                f"position {position} has version {entry.version}, but it is entry {version} "
                f"of company {event.company!r}"
            )
        if not is_timestamp(entry.recorded):
            raise ValidationFailed(
                f"position {position} has `recorded` {entry.recorded!r}, not a time in the "
                "log's format (YYYY-MM-DDTHH:MM:SS.ffffffZ)"
            )
        if entry.recorded < (head.recorded or ""):
            raise ValidationFailed(
                f"position {position} was recorded at {entry.recorded}, before position "
                f"{head.position} ({head.recorded}): `recorded` never decreases"
            )
        restored = event.recorded_as(position, version, entry.recorded)
        hashed = restored.hashed_json()
        if hashed != entry.hashed_json() or (restored.lo, restored.hi) != (entry.lo, entry.hi):
            raise ValidationFailed(
                f"position {position} is not in the form the log stores its event in "
                "(each field as validated, canonical JSON)"
            )
        restored.hash = chain(head.hash, hashed)
        if restored.hash != entry.hash:
            raise ValidationFailed(
                f"the hash of position {position} is not the chain's: the entry was altered, "
                "or it does not follow the one before it"
            )
        self.versions[event.company] = version
        self.known[event.id] = restored
        self.head = Head(position, restored.hash, restored.recorded)
        return restored


def revalidated(entry: RecordedEvent) -> NewEvent | ValidationFailed:
    """A stored entry's EventIn fields through the validation an append runs, or why not."""
    body = {
        "id": entry.id,
        "type": entry.type,
        "company": entry.company,
        "occurred": entry.occurred.get("value"),
        # Not `entry.data`: orjson reads integers beyond 64 bits as floats.
        "data": parse_json(entry.data_json),
        "confidence": entry.confidence,
    }
    if entry.source_json is not None:
        body["source"] = orjson.loads(entry.source_json)
    try:
        (event,) = validate_body(body)
    except ValidationFailed as error:
        errors = [
            {"loc": list(problem["loc"][1:]), "msg": problem["msg"]}
            for problem in error.errors or []
        ]
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else "event"
        reason = errors[0]["msg"] if errors else error.detail
        return ValidationFailed(
            f"position {entry.position} is not a valid event: {where}: {reason}",
            errors=errors,
        )
    return event
