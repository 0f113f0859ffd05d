"""Logs whose ranges have any width (0001-01-01 to 9999-12-31, as the dates to come will
give), written straight into the database: for the chronology and the span keys."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

import orjson

from events.backends import open_store
from projections.rebuild import projections
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


def ranges(rng: random.Random, count: int) -> list[tuple[date, date]]:
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


async def raw_log(database: Database, rng: random.Random, count: int) -> None:
    """A log written past the store (its entries are not hashed: no test of it verifies the
    chain), its projections left empty: a rebuild fills them, as a migration or `timeline
    rebuild` does."""
    store = await open_store(database.url, projections=projections())
    await store.close()
    versions = dict.fromkeys(COMPANIES, 0)
    rows = []
    for position, (lo, hi) in enumerate(ranges(rng, count), start=1):
        company = rng.choice(COMPANIES)
        versions[company] += 1
        rows.append(_row(position, versions[company], company, rng.choice(TYPES), lo, hi))
    for start in range(0, len(rows), 200):
        database.sql(f"INSERT INTO events VALUES {', '.join(rows[start : start + 200])}")
