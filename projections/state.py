"""Reading the temporal index: known-at resolution, company state, timeline, the company list
and an event's effective form. Each answer is an index range scan plus a fold."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import orjson

from events.dates import after
from events.entries import LogEntry
from events.errors import PositionConflict
from events.store import EventStore
from events.types import AMENDMENTS
from events.values import timestamp
from projections.fold import APPOINTED, DEPARTED, LISTS, STATE_LISTS, Status, Tenures, range_status
from projections.temporal import reads
from projections.temporal.versions import CompanyTally


@dataclass(frozen=True, slots=True)
class LogPoint:
    """A point of transaction time: the log position S and when it was recorded."""

    position: int
    recorded: str | None

    def as_json(self) -> dict[str, Any]:
        return {"position": self.position, "recorded": self.recorded}


async def resolve(store: EventStore, known_at: int | datetime | None) -> LogPoint:
    """known_at (a position, an aware time, or None for the head) → the position S it means.
    One query in every case that succeeds."""
    if known_at is None:
        head = await store.head()
        return LogPoint(head.position, head.recorded)
    if isinstance(known_at, datetime):
        if known_at > datetime.now(UTC):
            head = await store.head()
            raise PositionConflict(
                "known_at is in the future; nothing is known there yet", head=head.position
            )
        found = await store.last_recorded_by(timestamp(known_at))
        return LogPoint(found.position, found.recorded)
    if known_at == 0:
        return LogPoint(0, None)
    entries = await store.at([known_at])
    if entries:
        return LogPoint(known_at, entries[0].recorded)
    # Positions are gapless: a positive position not in the log lies past its head.
    raise PositionConflict.past_head(known_at, (await store.head()).position)


async def company_state(
    store: EventStore, company: str, as_of: date, known: LogPoint, *, include_possible: bool
) -> str | None:
    """GET /v1/companies/{company}, as JSON text; None when the company has no entry known
    at S. The fold of projections.fold, over the items' JSON texts as the facts keep them: a
    fact costs a comparison and a concatenation, never a decoding."""
    version = await store.version_at(company, known.position)
    if version == 0:
        return None
    rows = await reads.live_items(store, company, as_of.isoformat(), known.position)
    # Facts begin by as_of (the query's); definite when they are over by its end.
    end = after(as_of)
    name: str = company
    aliases: list[str] = []
    lists: dict[str, list[str]] = {listed: [] for listed in STATE_LISTS}
    possible: list[str] = []
    tenures = Tenures[str, str]()
    for event_id, type_, hi, rest in rows:
        definite = hi <= end
        if type_ == DEPARTED:
            departed = orjson.loads("{" + rest)
            marker = (
                f'{{"id":"{event_id}","occurred":{_text(departed["occurred"])},'
                f'"confidence":"{departed["confidence"]}"}}'
            )
            tenures.depart(departed["person"], departed["role"], definite, marker)
        if not definite:
            possible.append(f'{{"id":"{event_id}","type":"{type_}",{rest}')
            if not include_possible:
                continue
        if type_ == "company.registered":
            if definite:  # its item holds its data's fields: name, aliases
                registered = orjson.loads("{" + rest)
                name, aliases = registered["name"], list(registered.get("aliases", []))
        elif (listed := LISTS.get(type_)) is not None:
            lists[listed].append(f'{{"id":"{event_id}",{rest}')
        elif type_ == APPOINTED:
            appointed = orjson.loads("{" + rest)
            tenures.appoint(appointed["person"], appointed["role"], f'{{"id":"{event_id}",{rest}')
    lists["executives"] = [
        item if departure is None else f'{item[:-1]},"departure":{departure}}}'
        for item, departure in tenures.items()
    ]
    parts = [
        f'{{"company":"{company}","name":{_text(name)},"aliases":{_text(aliases)},'
        f'"as_of":"{as_of.isoformat()}","known_at":{_text(known.as_json())},"version":{version}'
    ]
    parts += [f',"{listed}":[{",".join(items)}]' for listed, items in lists.items()]
    parts.append(f',"possible":[{",".join(possible)}]}}')
    return "".join(parts)


def _text(value: Any) -> str:
    return orjson.dumps(value).decode()


async def timeline(
    store: EventStore, company: str, as_of: date, known: LogPoint
) -> list[tuple[LogEntry, Status]] | None:
    """GET /v1/companies/{company}/timeline: effective events begun by as_of, with status."""
    if await store.version_at(company, known.position) == 0:
        return None
    rows = await reads.timeline_rows(store, company, as_of.isoformat(), known.position)
    return [(event, range_status(event.lo, event.hi, as_of) or "possible") for event in rows]


async def companies(
    store: EventStore, known_at: int | datetime | None
) -> tuple[LogPoint, list[Any]]:
    """GET /v1/companies: from the summary kept at the head, or recounted for an older S."""
    position, recorded, summaries = await reads.summaries_at_head(store)
    head = LogPoint(position, recorded)
    known = head if known_at is None else await resolve(store, known_at)
    if known.position != head.position:
        summaries = await reads.summaries_at(store, known.position)
    return known, [_listed(summary) for summary in summaries]


def _listed(summary: CompanyTally) -> dict[str, Any]:
    return {
        "company": summary.company,
        "name": summary.name or summary.company,
        "events": summary.events,
        "first": orjson.loads(summary.first[3]) if summary.first else None,
        "last": orjson.loads(summary.last[3]) if summary.last else None,
    }


async def event_detail(
    store: EventStore, event: LogEntry
) -> tuple[LogEntry | None, list[LogEntry]]:
    """An event's effective form at the head (None: retracted) and the amendments on it."""
    if event.type in AMENDMENTS:
        return None, []
    versions = await reads.fact_versions(store, event.position)
    amendments = await store.at([version.sys_from for version in versions[1:]])
    now = versions[-1]
    if now.retracted:
        return None, amendments
    effective = replace(
        event,
        occurred_json=now.occurred,
        lo=now.lo,
        hi=now.hi,
        data_json=now.data,
        confidence=now.confidence,
    )
    return effective, amendments
