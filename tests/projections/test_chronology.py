"""The chronology against the oracle on logs whose ranges have any width (0001-01-01 to
9999-12-31, as the dates to come will give), and the span keys the database writes against
the ones the code computes."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

import orjson

from events.backends import open_store
from events.store import EventStore
from projections import reference
from projections.chronology import Cursor, chronology
from projections.rebuild import projections, rebuild
from projections.state import KnownAt
from projections.temporal.spans import MONTHS, earliest, span_key
from tests.databases import Database

COMPANIES = ["baidu", "alibaba", "tencent"]
TYPES = ["model.launched", "team.formed"]
FIRST, LAST = date(1, 1, 1), date.max


def _row(position: int, version: int, company: str, type_: str, lo: date, hi: date) -> str:
    occurred = orjson.dumps(
        {"hi": hi.isoformat(), "lo": lo.isoformat(), "precision": "day", "value": "range"}
    ).decode()
    data = '{"model":"M"}' if type_ != "team.formed" else '{"name":"T"}'
    return (
        f"({position}, '{uuid.uuid4()}', '{company}', {version}, '{type_}', '{occurred}', "
        f"'{lo.isoformat()}', '{hi.isoformat()}', '{data}', NULL, 'reported', "
        f"'2026-01-01T00:00:00.000000Z', '{'0' * 64}')"
    )


def _months_later(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _ranges(rng: random.Random, count: int) -> list[tuple[date, date]]:
    """Ranges as the calendar makes them (many sharing a first and a last day) and of any
    width: single days, arbitrary spans, open starts, up to the whole span of dates."""
    found: list[tuple[date, date]] = []
    while len(found) < count:
        kind = rng.randrange(6)
        if kind == 0:  # a month, quarter, year, widened or not, a decade: on a first
            lo = date(rng.choice([2019, 2020, 2021, 2022]), rng.choice([1, 4, 7, 10]), 1)
            hi = _months_later(lo, rng.choice([1, 3, 9, 12, 36, 120, 121, 500]))
        elif kind == 1:  # single days and short ranges
            lo = date(2021, 1, 1) + timedelta(days=rng.randrange(900))
            hi = lo + timedelta(days=rng.choice([1, 1, 2, 3, 4, 5]))
        elif kind == 2:  # any number of days, around a power of two or not
            lo = date(2018, 1, 1) + timedelta(days=rng.randrange(2000))
            days = rng.choice([2**k for k in range(14)] + [2**k + 1 for k in range(14)])
            hi = min(LAST, lo + timedelta(days=days + rng.choice([0, 0, 7, 100])))
        elif kind == 3:  # on or before a day: an open start
            lo, hi = FIRST, date(2019, 1, 1) + timedelta(days=rng.randrange(2000))
        elif kind == 4:  # the widest ranges
            lo = rng.choice([FIRST, date(1000, 1, 1), date(2020, 1, 1)])
            hi = rng.choice([LAST, date(9998, 1, 1), date(3000, 6, 1)])
        else:  # a first of the month to a later one, at any distance
            lo = date(rng.randrange(1, 2500), rng.randrange(1, 13), 1)
            hi = _months_later(lo, rng.randrange(1, 20_000))
        if lo < hi <= LAST:
            found.append((lo, hi))
    return found


async def _raw_log(database: Database, rng: random.Random, count: int) -> None:
    """A log written past the store (its entries are not hashed: no test here verifies the
    chain), then its projections rebuilt from it, as a migration or `timeline rebuild` does."""
    store = await open_store(database.url, projections=projections())
    await store.close()
    versions = dict.fromkeys(COMPANIES, 0)
    rows = []
    for position, (lo, hi) in enumerate(_ranges(rng, count), start=1):
        company = rng.choice(COMPANIES)
        versions[company] += 1
        rows.append(_row(position, versions[company], company, rng.choice(TYPES), lo, hi))
    for start in range(0, len(rows), 200):
        database.sql(f"INSERT INTO events VALUES {', '.join(rows[start : start + 200])}")


async def _retract(store: EventStore, rng: random.Random, share: float) -> None:
    """Retract a share of the events, through the store (the projection's own path)."""
    from tests.factories import batch, event_in

    log = await store.read(limit=100_000)
    chosen = [e for e in log if rng.random() < share]
    bodies = [
        event_in(company=e.company, type="event.retracted", data={"target": e.id, "reason": "x"})
        for e in chosen
    ]
    if bodies:
        await store.append(batch(*bodies))


async def _pages(
    store: EventStore,
    known: int,
    start: date | None,
    end: date | None,
    companies: list[str],
    types: list[str],
    limit: int,
) -> list[str]:
    seen: list[str] = []
    cursor: Cursor | None = None
    while True:
        events, cursor = await chronology(
            store,
            KnownAt(known, None),
            start=start,
            end=end,
            companies=companies,
            types=types,
            limit=limit,
            after=cursor,
        )
        seen += [event.id for event in events]
        if cursor is None:
            return seen


async def test_the_span_keys_the_database_writes_are_the_codes(database: Database) -> None:
    rng = random.Random(4)
    await _raw_log(database, rng, 400)
    store = await open_store(database.url, projections=projections())
    try:
        assert await rebuild(store, projections()) == 400
        rows = await store.query("SELECT lo, hi, span FROM facts ORDER BY position")
        assert len(rows) == 400
        assert [span for _, _, span in rows] == [span_key(lo, hi) for lo, hi, _ in rows]
        # Every fact in effect on a day begins after the earliest day of its key.
        for lo, hi, span in rows:
            for day in (date.fromisoformat(lo), date.fromisoformat(hi) - timedelta(days=1)):
                first = earliest(span, day)
                assert first is None or first.isoformat() < lo
    finally:
        await store.close()


def test_span_keys_at_the_bounds_of_their_classes() -> None:
    assert span_key("2023-05-17", "2023-05-18") == 0
    assert span_key("2023-05-17", "2023-05-19") == 1
    assert span_key("2023-05-16", "2023-05-19") == 2  # a widened day
    assert span_key("2023-05-16", "2023-05-20") == 2
    assert span_key("2023-05-16", "2023-05-21") == 3
    assert span_key("2023-05-01", "2023-06-01") == MONTHS + 1  # a month
    assert span_key("2023-04-01", "2023-07-01") == MONTHS + 3  # a widened month, a quarter
    assert span_key("2022-01-01", "2025-01-01") == MONTHS + 36  # a widened year
    assert span_key("2023-05-01", "2023-05-31") == 5  # 30 days, not from a first to a first
    assert span_key("0001-01-01", "9999-12-31") == 22
    assert span_key("0001-01-01", "9999-12-01") == 300 + 17
    assert earliest(MONTHS + 12, date(2023, 1, 1)) == date(2022, 1, 1)
    assert earliest(MONTHS + 12, date(2023, 1, 31)) == date(2022, 1, 1)
    assert earliest(0, date(2023, 1, 1)) == date(2022, 12, 31)
    assert earliest(22, date(2023, 1, 1)) is None
    assert earliest(300 + 17, date(2023, 1, 1)) is None


async def test_the_chronology_of_ranges_of_any_width_equals_the_oracle(
    database: Database,
) -> None:
    rng = random.Random(11)
    await _raw_log(database, rng, 500)
    store = await open_store(database.url, projections=projections())
    try:
        await rebuild(store, projections())
        await _retract(store, rng, 0.05)
        log = await store.read(limit=100_000)
        days = [FIRST, LAST - timedelta(days=1), date(2019, 1, 1), date(2022, 1, 1)]
        days += [date(2018, 1, 1) + timedelta(days=rng.randrange(3000)) for _ in range(40)]
        # The edges of facts: a window beginning on a fact's last day, or on its end.
        for event in rng.sample(log, 40):
            hi = date.fromisoformat(event.hi)
            days += [date.fromisoformat(event.lo), hi - timedelta(days=1), min(hi, LAST)]
        for _ in range(80):
            start, end = rng.choice([None, *days]), rng.choice([None, *days])
            if start is not None and end is not None and start > end:
                start, end = end, start
            companies = rng.choice([[], [], [], ["baidu"], ["alibaba", "tencent"]])
            types = rng.choice([[], [], ["team.formed"]])
            known = rng.choice([len(log), len(log), rng.randrange(1, len(log) + 1)])
            expected = reference.chronology(
                log, known, start=start, end=end, companies=companies, types=types
            )
            found = await _pages(store, known, start, end, companies, types, rng.randrange(1, 40))
            assert found == [fact.id for fact in expected], (start, end, companies, types, known)
    finally:
        await store.close()
