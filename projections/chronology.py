"""The global chronology: every company's effective events in valid-time order, paged by an
opaque cursor that pins the log position, so pages never skip or repeat while events arrive."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import orjson

from events.envelope import RecordedEvent
from events.errors import BadRequest
from events.store import EventStore
from projections.state import EFFECTIVE_COLUMNS, LIVE_AT, KnownAt
from projections.temporal import MAX_SPAN_DAYS


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the pinned position S and the last (lo, hi, position) returned."""

    known_at: int
    lo: str
    hi: str
    position: int

    def encode(self) -> str:
        raw = orjson.dumps([1, self.known_at, self.lo, self.hi, self.position])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            version, known_at, lo, hi, position = orjson.loads(raw)
            date.fromisoformat(lo), date.fromisoformat(hi)
            if version != 1 or not all(isinstance(n, int) for n in (known_at, position)):
                raise ValueError(text)
            return cls(known_at, lo, hi, position)
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise BadRequest(
                "the cursor is not one this server issued",
                errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}],
            ) from None


async def chronology(
    store: EventStore,
    known: KnownAt,
    *,
    start: date | None = None,
    end: date | None = None,
    companies: Sequence[str] = (),
    types: Sequence[str] = (),
    limit: int = 100,
    after: Cursor | None = None,
) -> tuple[list[RecordedEvent], Cursor | None]:
    """One page of effective events meeting the days [start, end], in (lo, hi, position) order."""
    where = [LIVE_AT]
    params: list[object] = [known.position, known.position]
    if end is not None:
        where.append("f.lo <= ?")
        params.append(end.isoformat())
    if start is not None:
        # hi > start is what counts; the bound on lo lets the index skip older ranges.
        where.append("f.hi > ? AND f.lo > ?")
        params += [start.isoformat(), (start - timedelta(days=MAX_SPAN_DAYS)).isoformat()]
    if after is not None:
        where.append("(f.lo, f.hi, f.position) > (?, ?, ?)")
        params += [after.lo, after.hi, after.position]
    if companies:
        where.append(f"f.company IN ({', '.join('?' * len(companies))})")
        params += companies
    if types:
        where.append(f"f.type IN ({', '.join('?' * len(types))})")
        params += types
    params.append(limit + 1)
    rows = await store.query(
        f"SELECT {EFFECTIVE_COLUMNS} FROM facts f JOIN events e ON e.position = f.position "
        f"WHERE {' AND '.join(where)} ORDER BY f.lo, f.hi, f.position LIMIT ?",
        params,
    )
    events = [RecordedEvent(*row) for row in rows[:limit]]
    if len(rows) <= limit:
        return events, None
    last = events[-1]
    return events, Cursor(known.position, last.lo, last.hi, last.position)
