"""The named reads of the temporal index: the only queries of `facts` and `companies` outside
the projection. Company state and timeline, the chronology's pages, the summaries, an
event's versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from events.dates import after as after_day
from events.entries import LogEntry
from events.store import EventStore, marks, merged_scans
from projections.temporal.spans import FIRST, FROM_FIRST_DAY, earliest
from projections.temporal.tables import (
    EFFECTIVE,
    FACT_SELECT,
    LIVE_AT,
    SUMMARY_COLUMNS,
    VERSIONS,
    effective,
)
from projections.temporal.versions import CompanyTally, FactVersion, summarize


async def live_items(
    store: EventStore, company: str, as_of: str, known_at: int
) -> list[tuple[str, str, str, str]]:
    """The company's facts in effect at position `known_at` that begin by `as_of`, as the
    state renders them: for each, in (lo, hi, position) order, its id, type, hi and the rest
    of its item's JSON text (ITEM_SQL). From the facts alone: no log entry is read."""
    rows = await store.query(
        "SELECT f.id, f.type, f.hi, f.item FROM facts f "
        f"WHERE f.company = ? AND f.lo <= ? AND {LIVE_AT} ORDER BY f.lo, f.hi, f.position",
        (company, as_of, known_at, known_at),
    )
    return rows


async def timeline_rows(
    store: EventStore, company: str, as_of: str, known_at: int
) -> list[LogEntry]:
    """The company's events in their effective form at `known_at`, begun by `as_of`."""
    rows = await store.query(
        f"{EFFECTIVE} WHERE f.company = ? AND f.lo <= ? AND {LIVE_AT} "
        "ORDER BY f.lo, f.hi, f.position",
        (company, as_of, known_at, known_at),
    )
    return [effective(row) for row in rows]


# Bounds no day reaches, in the byte order of ISO days: "" sorts before every one, "~" after.
_BEFORE_ANY, _AFTER_ANY = "", "~"
_PAST_FIRST = (FIRST, _AFTER_ANY, 0)  # past every fact beginning on the first day
# A fact's columns in a page, before its log entry is joined.
_PAGE = "f.lo, f.hi, f.position, f.occurred, f.data, f.confidence"
_PAGE_EFFECTIVE = (
    "SELECT e.id, e.type, e.company, COALESCE(page.occurred, e.occurred), page.lo, page.hi, "
    "COALESCE(page.data, e.data), e.source, page.confidence, e.position, e.version, "
    "e.recorded, e.hash FROM ({}) AS page JOIN events e ON e.position = page.position "
    "ORDER BY page.lo, page.hi, page.position"
)
_MEETS = "f.lo <= ? AND f.hi > ?"
# Where a scan begins: past its bound in (lo, hi, position) order (each its own index range).
_PAST = "(f.lo, f.hi, f.position) > (?, ?, ?)"
_PAST_FIRST_DAY = "f.lo = ? AND (f.hi, f.position) > (?, ?)"
# The span keys in use: one look-up of `facts_span` per key, each for the next one. In
# passing, whether the database has a boolean type (only PostgreSQL: SQLite answers 1 = 1
# with 1), which tells how to have it merge the scans of the keys (see merged_scans).
_KEYS = (
    "WITH RECURSIVE used(span) AS (SELECT MIN(span) FROM facts UNION ALL "
    "SELECT (SELECT MIN(f.span) FROM facts f WHERE f.span > used.span) FROM used "
    "WHERE used.span IS NOT NULL) SELECT span, 1 = 1 FROM used WHERE span IS NOT NULL"
)


def _lower_bound(
    start: date | None, key: int, after: tuple[str, str, int] | None
) -> tuple[str, str, int]:
    """Where a scan of (lo, hi, position) begins: past `after`, and past the facts of span
    key `key` that cannot be in effect at `start`."""
    bound = after if after is not None else (_BEFORE_ANY, _BEFORE_ANY, 0)
    if start is None:
        return bound
    if key == FROM_FIRST_DAY:  # all begin on the first day: those ending after `start`
        return max(bound, (FIRST, after_day(start), 0))
    first = earliest(key, start)
    if first is None:
        return bound
    return max(bound, (first.isoformat(), _AFTER_ANY, 0))  # lo > first


async def chronology_page(
    store: EventStore,
    known_at: int,
    *,
    start: date | None,
    end: date | None,
    companies: Sequence[str],
    types: Sequence[str],
    after: tuple[str, str, int] | None,
    limit: int,
) -> list[LogEntry]:
    """Up to `limit` effective events at `known_at` meeting the days [start, end], after the
    (lo, hi, position) `after`, in that order.

    Without a company, one ordered scan of `facts_span` per span key in use, merged: each
    begins at the first fact of its key that could still be in effect at `start` (see
    MONTHS), so that it passes over few that are not, however wide the widest range. A
    company's facts are few: two scans of `facts_company` serve, merged: of the facts
    beginning on the calendar's first day, from their bound, and of the others, from the
    bound of the widest key in use."""
    meets = [end.isoformat() if end is not None else _AFTER_ANY]
    meets.append(start.isoformat() if start is not None else _BEFORE_ANY)
    filters, chosen = "", list[object]()
    if companies:
        filters += f" AND f.company IN ({marks(companies)})"
        chosen += companies
    if types:
        filters += f" AND f.type IN ({marks(types)})"
        chosen += types
    where = f"{_MEETS} AND {LIVE_AT}{filters}"
    used = await store.query(_KEYS)
    if not used:
        return []
    keys = [key for key, _ in used]
    # Each scan: where it begins, and its values (see _lower_bound). Each begins at an index
    # range of its own: `facts_span` by key, or `facts_company` for a company's page.
    scans: list[tuple[str, list[object]]] = []
    others = [key for key in keys if key != FROM_FIRST_DAY]
    if not companies:
        for key in others:
            scans.append((f"f.span = ? AND {_PAST}", [key, *_lower_bound(start, key, after)]))
    elif others:
        # From the bound of the widest key, past the facts of the first day (all before it).
        bound = max(min(_lower_bound(start, key, after) for key in others), _PAST_FIRST)
        scans.append((_PAST, [*bound]))
    lo, hi, position = _lower_bound(start, FROM_FIRST_DAY, after)
    if FROM_FIRST_DAY in keys and lo <= FIRST:  # else the page began past all of them
        hi, position = (hi, position) if lo == FIRST else (_BEFORE_ANY, 0)
        begin, values = _PAST_FIRST_DAY, [FIRST, hi, position]
        if not companies:
            begin, values = f"f.span = ? AND {begin}", [FROM_FIRST_DAY, *values]
        scans.append((begin, values))
    if not scans:
        return []
    limited = isinstance(used[0][1], bool)
    sql = merged_scans(
        [f"SELECT {_PAGE} FROM facts f WHERE {begin} AND {where}" for begin, _ in scans],
        "lo, hi, position",
        limited,
    )
    params: list[object] = []
    for _, values in scans:
        params += [*values, *meets, known_at, known_at, *chosen]
        params += [limit] if limited else []
    params.append(limit)
    rows = await store.query(_PAGE_EFFECTIVE.format(sql), params)
    return [effective(row) for row in rows]


async def summaries_at_head(store: EventStore) -> tuple[int, str | None, list[CompanyTally]]:
    """The summaries kept at the head, read with the head they are of (one statement)."""
    rows = await store.query(
        "SELECT (SELECT position FROM events ORDER BY position DESC LIMIT 1), "
        "(SELECT recorded FROM events ORDER BY position DESC LIMIT 1), "
        f"{SUMMARY_COLUMNS} FROM companies ORDER BY company"
    )
    if not rows:
        return 0, None, []
    return rows[0][0], rows[0][1], [CompanyTally.from_row(row[2:]) for row in rows]


async def summaries_at(store: EventStore, known_at: int) -> list[CompanyTally]:
    """The summaries as they stood at `known_at`, recounted from the facts in effect then."""
    companies = await store.companies_at(known_at)
    live = await store.query(f"SELECT {FACT_SELECT} WHERE {LIVE_AT}", (known_at, known_at))
    return list(summarize(companies, live).values())


async def fact_versions(store: EventStore, position: int) -> list[FactVersion]:
    """Every version of the event at `position`, oldest first (none for an amendment)."""
    rows = await store.query(
        f"SELECT {FACT_SELECT} WHERE f.position = ? ORDER BY f.sys_from", (position,)
    )
    return [FactVersion(*row) for row in rows]


async def is_built(store: EventStore) -> bool:
    """Whether the projection holds any row (a log from before it existed has none)."""
    return bool(await store.query("SELECT 1 FROM facts LIMIT 1"))


async def versions_of(
    store: EventStore, ids: Sequence[str], first: int, last: int
) -> dict[str, list[tuple[int, int | None, bool, LogEntry]]]:
    """The versions of the events `ids` in effect at some position of [first, last] (the
    one an amendment there closes, the one it opens), oldest first: (sys_from, sys_to,
    retracted, the event in that effective form)."""
    wanted = sorted(set(ids))
    found: dict[str, list[tuple[int, int | None, bool, LogEntry]]] = {key: [] for key in wanted}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = await store.query(
            f"{VERSIONS} WHERE e.id IN ({marks(chunk)}) AND f.sys_from <= ? "
            "AND (f.sys_to IS NULL OR f.sys_to >= ?) ORDER BY f.position, f.sys_from",
            [*chunk, last, first],
        )
        for sys_from, sys_to, retracted, *entry in rows:
            version = effective(entry)
            found[version.id].append((sys_from, sys_to, bool(retracted), version))
    return found
