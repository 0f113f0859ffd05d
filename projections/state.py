"""Reading the temporal index: known-at resolution, company state, timeline, the company list
and an event's effective form. Each answer is an index range scan plus a fold."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import orjson

from events.envelope import RecordedEvent
from events.errors import PositionConflict
from events.store import EventStore, timestamp
from events.types import AMENDMENTS
from projections.fold import Fact, Status, fold, range_status
from projections.temporal import FACT_SELECT, FactRow, Summary

# The effective form of an event: the log entry with its fact's occurred, data and confidence.
EFFECTIVE_COLUMNS = (
    "e.id, e.type, e.company, COALESCE(f.occurred, e.occurred), f.lo, f.hi, "
    "COALESCE(f.data, e.data), e.source, f.confidence, e.position, e.version, e.recorded, e.hash"
)
LIVE_AT = "f.retracted = 0 AND f.sys_from <= ? AND (f.sys_to IS NULL OR f.sys_to > ?)"


# The last position recorded by time t. `recorded` never decreases along the log and
# positions are gapless, so a binary search over positions finds it in about log2(head)
# primary-key look-ups, with no index on `recorded` for every append to keep up.
RECORDED_BY = """
WITH RECURSIVE search(low, high) AS (
    SELECT 0, COALESCE((SELECT MAX(position) FROM events), 0)
    UNION ALL
    SELECT
        CASE WHEN (SELECT recorded FROM events WHERE position = (low + high + 1) / 2) <= ?
             THEN (low + high + 1) / 2 ELSE low END,
        CASE WHEN (SELECT recorded FROM events WHERE position = (low + high + 1) / 2) <= ?
             THEN high ELSE (low + high + 1) / 2 - 1 END
    FROM search WHERE low < high
)
SELECT e.position, e.recorded FROM search JOIN events e ON e.position = search.low
WHERE search.low = search.high
"""


@dataclass(frozen=True, slots=True)
class KnownAt:
    """A point of transaction time: the log position S and when it was recorded."""

    position: int
    recorded: str | None

    def as_json(self) -> dict[str, Any]:
        return {"position": self.position, "recorded": self.recorded}


async def resolve(store: EventStore, known_at: int | datetime | None) -> KnownAt:
    """known_at (a position, an aware time, or None for the head) → the position S it means.
    One query in every case that succeeds."""
    if known_at is None:
        head = await store.head()
        return KnownAt(head.position, head.recorded)
    if isinstance(known_at, datetime):
        if known_at > datetime.now(UTC):
            head = await store.head()
            raise PositionConflict(
                "known_at is in the future; nothing is known there yet", head=head.position
            )
        moment = timestamp(known_at)
        rows = await store.query(RECORDED_BY, (moment, moment))
        return KnownAt(*rows[0]) if rows else KnownAt(0, None)
    rows = await store.query(
        "SELECT position, recorded FROM events WHERE position = ?", (known_at,)
    )
    if rows:
        return KnownAt(*rows[0])
    if known_at == 0:
        return KnownAt(0, None)
    # Positions are gapless: a positive position not in the log lies past its head.
    head = await store.head()
    raise PositionConflict(
        f"position {known_at} is past the head of the log ({head.position})", head=head.position
    )


def _fact(row: tuple[Any, ...]) -> Fact:
    event_id, type_, company, occurred, data, confidence, position = row
    return Fact(
        event_id, type_, company, orjson.loads(occurred), orjson.loads(data), confidence, position
    )


async def company_version(store: EventStore, company: str, known: KnownAt) -> int:
    rows = await store.query(
        "SELECT version FROM events WHERE company = ? AND position <= ? "
        "ORDER BY version DESC LIMIT 1",
        (company, known.position),
    )
    return int(rows[0][0]) if rows else 0


async def company_state(
    store: EventStore, company: str, as_of: date, known: KnownAt, *, include_possible: bool
) -> dict[str, Any] | None:
    """GET /v1/companies/{company}; None when the company has no entry known at S."""
    version = await company_version(store, company, known)
    if version == 0:
        return None
    rows = await store.query(
        "SELECT e.id, f.type, f.company, COALESCE(f.occurred, e.occurred), "
        "COALESCE(f.data, e.data), f.confidence, f.position "
        "FROM facts f JOIN events e ON e.position = f.position "
        f"WHERE f.company = ? AND f.lo <= ? AND {LIVE_AT} "
        "ORDER BY f.lo, f.hi, f.position",
        (company, as_of.isoformat(), known.position, known.position),
    )
    state = fold(company, map(_fact, rows), as_of, include_possible=include_possible)
    head = {
        "company": company,
        "name": state.pop("name"),
        "aliases": state.pop("aliases"),
        "as_of": as_of.isoformat(),
        "known_at": known.as_json(),
        "version": version,
    }
    del state["company"]
    return head | state


async def timeline(
    store: EventStore, company: str, as_of: date, known: KnownAt
) -> list[tuple[RecordedEvent, Status]] | None:
    """GET /v1/companies/{company}/timeline: effective events begun by as_of, with status."""
    if await company_version(store, company, known) == 0:
        return None
    rows = await store.query(
        f"SELECT {EFFECTIVE_COLUMNS} FROM facts f JOIN events e ON e.position = f.position "
        f"WHERE f.company = ? AND f.lo <= ? AND {LIVE_AT} ORDER BY f.lo, f.hi, f.position",
        (company, as_of.isoformat(), known.position, known.position),
    )
    found = []
    for row in rows:
        event = RecordedEvent(*row)
        found.append((event, range_status(event.lo, event.hi, as_of) or "possible"))
    return found


async def companies(
    store: EventStore, known_at: int | datetime | None
) -> tuple[KnownAt, list[Any]]:
    """GET /v1/companies: from the summary kept at the head, or recounted for an older S."""
    rows = await store.query(
        "SELECT (SELECT position FROM events ORDER BY position DESC LIMIT 1), "
        "(SELECT recorded FROM events ORDER BY position DESC LIMIT 1), "
        "company, events, first_occurred, last_occurred, name FROM companies ORDER BY company"
    )
    head = KnownAt(rows[0][0], rows[0][1]) if rows else KnownAt(0, None)
    known = head if known_at is None else await resolve(store, known_at)
    if known.position == head.position:
        summaries = [
            {
                "company": company,
                "name": name or company,
                "events": events,
                "first": orjson.loads(first) if first else None,
                "last": orjson.loads(last) if last else None,
            }
            for _, _, company, events, first, last, name in rows
        ]
        return known, summaries
    return known, await _recount(store, known)


async def _recount(store: EventStore, known: KnownAt) -> list[dict[str, Any]]:
    names = await store.query(
        "SELECT DISTINCT company FROM events WHERE position <= ? ORDER BY company",
        (known.position,),
    )
    summaries = {name: Summary(name) for (name,) in names}
    live = await store.query(
        f"SELECT {FACT_SELECT} WHERE {LIVE_AT}", (known.position, known.position)
    )
    for row in live:
        summaries[row[1]].add(FactRow(*row))
    return [
        {
            "company": s.company,
            "name": s.name or s.company,
            "events": s.events,
            "first": orjson.loads(s.first[3]) if s.first else None,
            "last": orjson.loads(s.last[3]) if s.last else None,
        }
        for s in summaries.values()
    ]


async def event_detail(
    store: EventStore, event: RecordedEvent
) -> tuple[RecordedEvent | None, list[RecordedEvent]]:
    """An event's effective form at the head (None: retracted) and the amendments on it."""
    if event.type in AMENDMENTS:
        return None, []
    versions = [
        FactRow(*row)
        for row in await store.query(
            f"SELECT {FACT_SELECT} WHERE f.position = ? ORDER BY f.sys_from", (event.position,)
        )
    ]
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
