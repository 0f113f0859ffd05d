"""GroupPlan: the backend-neutral planning of one write transaction against the log as it
stands (idempotency, amendment targets, expected versions, positions, versions, the chain),
and the checks of restored entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from events.canonical import parse_json
from events.chain import chain, chain_many
from events.entries import LogEntry, NewEvent, content
from events.errors import (
    IdConflict,
    PositionConflict,
    TimelineError,
    ValidationFailed,
    VersionConflict,
)
from events.store import Appended, Head
from events.types import AMENDMENTS
from events.validation import correct_against, validate_body
from events.values import is_timestamp, timestamp


@dataclass
class GroupPlan:
    """Plans the batches of one transaction against the log as it stands: idempotency,
    amendment targets and expected versions, then positions, versions and the chain; or
    checks restored entries against it. `stored` holds the stored events among the ids and
    targets the group mentions, and the entries this plan has assigned or restored so far."""

    head: Head
    stored: dict[str, LogEntry]
    versions: dict[str, int]
    now: str = field(default_factory=timestamp)
    rows: list[LogEntry] = field(default_factory=list)

    @staticmethod
    def lookups(
        batches: Iterable[Sequence[NewEvent | LogEntry]],
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
        stored = [self.stored.get(event.id) for event in batch]
        if any(entry is not None for entry in stored):
            return self._replay(batch, stored)
        batch = self._check_targets(batch)
        self._check_versions(batch)
        return Appended(self._assign(batch), created=True)

    def _replay(self, batch: Sequence[NewEvent], stored: list[LogEntry | None]) -> Appended:
        found = [entry for entry in stored if entry is not None]
        if len(found) < len(batch):
            raise IdConflict(
                "the batch mixes ids already stored with new ones; nothing was stored",
                ids=[entry.id for entry in found],
            )
        for event, entry in zip(batch, found, strict=True):
            if content(entry) not in [content(form) for form in self._normalized(event).forms()]:
                raise IdConflict(
                    f"event id {event.id} is already stored with other content",
                    id=event.id,
                    position=entry.position,
                )
        return Appended(found, created=False)

    def _normalized(self, event: NewEvent) -> NewEvent:
        target_id = event.target if event.type == "event.corrected" else None
        target = self.stored.get(target_id) if target_id is not None else None
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
        target: NewEvent | LogEntry | None = earlier.get(target_id) or self.stored.get(target_id)
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

    def _assign(self, batch: Sequence[NewEvent]) -> list[LogEntry]:
        head = self.head
        recorded = max(self.now, head.recorded or "")
        position = head.position
        versions, stored = self.versions, self.stored
        created: list[LogEntry] = []
        for event in batch:
            position += 1
            version = versions.get(event.company, 0) + 1
            entry = event.recorded_as(position, version, recorded)
            versions[event.company] = version
            stored[event.id] = entry
            created.append(entry)
        self.head = Head(position, chain_many(head.hash, created), recorded)
        self.rows.extend(created)
        return created

    def restore(
        self,
        entries: Sequence[LogEntry],
        validated: Sequence[NewEvent | ValidationFailed],
        stored: Sequence[LogEntry],
    ) -> list[LogEntry]:
        """Check entries for `EventStore.restore`, given what `revalidated` made of each (it
        needs no transaction, so a backend may run it before); `stored` holds the log's
        entries at the positions among them that are not past the head. Returns the new
        entries."""
        existing = {entry.position: entry for entry in stored}
        created: list[LogEntry] = []
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
    def _check_stored(entry: LogEntry, stored: LogEntry | None) -> None:
        if stored is None:
            raise PositionConflict(f"position {entry.position} is not a position of a log")
        if stored.to_json() != entry.to_json():
            raise PositionConflict(
                f"position {entry.position} is stored with other content: "
                "these entries are not of this log"
            )

    def _restored(self, entry: LogEntry, event: NewEvent | ValidationFailed) -> LogEntry:
        head, position = self.head, entry.position
        if position != head.position + 1:
            raise PositionConflict(
                f"position {position} does not continue the log, whose head is {head.position}",
                head=head.position,
            )
        if entry.id in self.stored:
            raise IdConflict(
                f"event id {entry.id} is already stored at position "
                f"{self.stored[entry.id].position}",
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
        hashed, bounds = entry.hashed_json(), (entry.lo, entry.hi)
        for form in event.forms():
            restored = form.recorded_as(position, version, entry.recorded)
            if restored.hashed_json() == hashed and (restored.lo, restored.hi) == bounds:
                break
        else:
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
        self.stored[event.id] = restored
        self.head = Head(position, restored.hash, restored.recorded)
        return restored


def revalidated(entry: LogEntry) -> NewEvent | ValidationFailed:
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
