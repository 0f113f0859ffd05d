"""known_at given as a time: the last position recorded by then, found by a binary search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from events.backends import open_store
from projections.rebuild import projections
from projections.state import KnownAt, resolve
from tests.databases import Database
from tests.factories import batch, event_in


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_time_resolves_to_the_last_position_recorded_by_then(database: Database) -> None:
    store = await open_store(database.url, projections=projections())
    try:
        assert await resolve(store, datetime(2001, 1, 1, tzinfo=UTC)) == KnownAt(0, None)
        # Groups of 1 to 7 entries: the entries of one group share their `recorded` time.
        for size in (3, 1, 7, 2, 5, 1, 4):
            await store.append(batch(*(event_in(company="baidu") for _ in range(size))))
        log = await store.read(limit=1000)
        for entry in log:
            last = max(e.position for e in log if e.recorded <= entry.recorded)
            assert await resolve(store, _time(entry.recorded)) == KnownAt(last, entry.recorded)
            just_before = _time(entry.recorded) - timedelta(microseconds=1)
            earlier = [e for e in log if e.recorded < entry.recorded]
            expected = KnownAt(earlier[-1].position, earlier[-1].recorded) if earlier else None
            assert await resolve(store, just_before) == (expected or KnownAt(0, None))
        head = await resolve(store, datetime.now(UTC))
        assert head == KnownAt(log[-1].position, log[-1].recorded)
    finally:
        await store.close()
