"""The global chronology: every company's effective events in valid-time order, paged by an
opaque cursor that pins the log position, so pages never skip or repeat while events arrive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from events.dates import ordinal
from events.entries import LogEntry
from events.errors import BadRequest
from events.store import EventStore
from projections.cursors import fingerprint, opaque, refused, unwrap
from projections.state import LogPoint
from projections.temporal import reads


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the pinned position S, the last (lo, hi, position) returned, and
    the filters of the pages it continues (`filters`: their fingerprint)."""

    known_at: int
    lo: str
    hi: str
    position: int
    filters: str

    def encode(self) -> str:
        return opaque(2, [self.known_at, self.lo, self.hi, self.position, self.filters])

    @classmethod
    def decode(cls, text: str) -> Cursor:
        known_at, lo, hi, position, filters = unwrap(text, 2, (int, str, str, int, str))
        try:
            ordinal(lo), ordinal(hi)
        except ValueError:
            raise refused() from None
        return cls(known_at, lo, hi, position, filters)


def page_filters(
    start: date | None, end: date | None, companies: Sequence[str], types: Sequence[str]
) -> str:
    """The fingerprint of a page's filters, as its cursor carries them."""
    return fingerprint([str(start), str(end), sorted(set(companies)), sorted(set(types))])


async def chronology(
    store: EventStore,
    known: LogPoint,
    *,
    start: date | None = None,
    end: date | None = None,
    companies: Sequence[str] = (),
    types: Sequence[str] = (),
    limit: int = 100,
    after: Cursor | None = None,
) -> tuple[list[LogEntry], Cursor | None]:
    """One page of effective events meeting the days [start, end], in (lo, hi, position)
    order. A cursor continues only the pages of the filters it was made with."""
    filters = page_filters(start, end, companies, types)
    if after is not None and after.filters != filters:
        raise BadRequest(
            "the cursor continues pages of other filters (from, to, company, type) than these",
            errors=[{"loc": ["query", "cursor"], "msg": "made with other filters"}],
        )
    events = await reads.chronology_page(
        store,
        known.position,
        start=start,
        end=end,
        companies=companies,
        types=types,
        after=(after.lo, after.hi, after.position) if after is not None else None,
        limit=limit + 1,
    )
    if len(events) <= limit:
        return events, None
    last = events[limit - 1]
    return events[:limit], Cursor(known.position, last.lo, last.hi, last.position, filters)
