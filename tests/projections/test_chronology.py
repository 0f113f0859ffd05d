"""The chronology (projections/chronology.py) against the oracle, on logs whose ranges have
any width (tests/projections/raw_logs.py)."""

from __future__ import annotations

import random
from datetime import date, timedelta

from events.backends import open_store
from events.dates import ordinal
from events.store import EventStore
from projections import reference
from projections.chronology import Cursor, chronology
from projections.rebuild import projections, rebuild
from projections.state import LogPoint
from tests.databases import Database
from tests.projections.raw_logs import FIRST, LAST, raw_log


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
            LogPoint(known, None),
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


async def test_the_chronology_of_ranges_of_any_width_equals_the_oracle(
    database: Database,
) -> None:
    rng = random.Random(11)
    await raw_log(database, rng, 500)
    store = await open_store(database.url, projections=projections())
    try:
        await rebuild(store, projections())
        await _retract(store, rng, 0.05)
        log = await store.read(limit=100_000)
        days = [FIRST, LAST - timedelta(days=1), LAST, date(2019, 1, 1), date(2022, 1, 1)]
        days += [date(2018, 1, 1) + timedelta(days=rng.randrange(3000)) for _ in range(40)]
        # The edges of facts: a window beginning on a fact's last day, or on its end.
        for event in rng.sample(log, 40):
            last = ordinal(event.hi) - 1
            days += [date.fromisoformat(event.lo), date.fromordinal(last)]
            days += [date.fromordinal(min(last + 1, LAST.toordinal()))]
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
