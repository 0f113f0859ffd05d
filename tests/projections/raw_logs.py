"""Logs whose ranges have any width (up to every day from 0001-01-01 to 9999-12-31), written
straight into the database: for the chronology and the span keys."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta

import orjson

from events.backends import open_store
from events.dates import after, hi_json
from projections.rebuild import projections
from tests.databases import Database

COMPANIES = ["baidu", "alibaba", "tencent"]
TYPES = ["model.launched", "team.formed"]
FIRST, LAST = date(1, 1, 1), date.max


def _row(position: int, version: int, company: str, type_: str, first: date, last: date) -> str:
    lo, hi = first.isoformat(), after(last)
    occurred = orjson.dumps(
        {"hi": hi_json(hi), "lo": lo, "precision": "day", "value": "range"}
    ).decode()
    data = '{"model":"M"}' if type_ != "team.formed" else '{"name":"T"}'
    return (
        f"({position}, '{uuid.uuid4()}', '{company}', {version}, '{type_}', '{occurred}', "
        f"'{lo}', '{hi}', '{data}', NULL, 'reported', "
        f"'2026-01-01T00:00:00.000000Z', '{'0' * 64}')"
    )


def _months_later(day: date, months: int) -> date:
    """The last day of `months` months from day's first (the calendar's last at the latest)."""
    index = day.year * 12 + day.month - 1 + months
    if index >= 10_000 * 12:
        return LAST
    return date(index // 12, index % 12 + 1, 1) - timedelta(days=1)


def ranges(rng: random.Random, count: int) -> list[tuple[date, date]]:
    """Ranges, each its first and last day, as the calendar makes them (many sharing a first
    and a last day) and of any width: single days, arbitrary spans, open starts, up to every
    day of the calendar."""
    found: list[tuple[date, date]] = []
    while len(found) < count:
        kind = rng.randrange(6)
        if kind == 0:  # a month, quarter, year, widened or not, a decade: on a first
            first = date(rng.choice([2019, 2020, 2021, 2022]), rng.choice([1, 4, 7, 10]), 1)
            last = _months_later(first, rng.choice([1, 3, 9, 12, 36, 120, 121, 500]))
        elif kind == 1:  # single days and short ranges
            first = date(2021, 1, 1) + timedelta(days=rng.randrange(900))
            last = first + timedelta(days=rng.choice([0, 0, 1, 2, 3, 4]))
        elif kind == 2:  # any number of days, around a power of two or not
            first = date(2018, 1, 1) + timedelta(days=rng.randrange(2000))
            days = rng.choice([2**k for k in range(14)] + [2**k + 1 for k in range(14)])
            last = first + timedelta(days=days + rng.choice([0, 0, 7, 100]) - 1)
        elif kind == 3:  # on or before a day: an open start
            first, last = FIRST, date(2019, 1, 1) + timedelta(days=rng.randrange(2000))
        elif kind == 4:  # the widest ranges, to the calendar's last day and near it
            first = rng.choice([FIRST, date(1000, 1, 1), date(2020, 1, 1), LAST])
            last = rng.choice([LAST, LAST, date(9998, 1, 1), date(3000, 6, 1)])
        else:  # a first of the month to a later one, at any distance
            first = date(rng.randrange(1, 2500), rng.randrange(1, 13), 1)
            last = _months_later(first, rng.randrange(1, 20_000))
        if first <= last:
            found.append((first, last))
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
