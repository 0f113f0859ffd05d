"""Rebuild every projection from the log, in one transaction: readers see the old projections
until the new ones are complete."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from events.store import EventStore, Projection, Transaction
from projections.temporal import TemporalIndex

Progress = Callable[[int, int], None]


def projections() -> list[Projection]:
    """The projections the service keeps."""
    return [TemporalIndex()]


async def rebuild(
    store: EventStore,
    kept: Sequence[Projection],
    *,
    progress: Progress | None = None,
) -> int:
    """Drop and refill every projection; returns how many log entries were folded."""

    def work(tx: Transaction) -> int:
        for projection in kept:
            for statement in (*projection.drop(), *projection.schema()):
                tx.execute(statement)
            projection.rebuild(tx, progress)
        return int(tx.fetch("SELECT COUNT(*) FROM events")[0][0])

    return await store.run(work)


async def ensure_built(store: EventStore, kept: Sequence[Projection]) -> bool:
    """Build the projections of a log that has entries but no projection rows yet (a database
    from before a projection existed). Returns whether it had to."""
    if (await store.head()).position == 0:
        return False
    if await store.query("SELECT 1 FROM facts LIMIT 1"):
        return False
    await rebuild(store, kept)
    return True
