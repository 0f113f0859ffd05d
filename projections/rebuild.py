"""Rebuild every projection from the log, in one transaction: readers see the old projections
until the new ones are complete."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from events.envelope import RecordedEvent
from events.store import EventStore, Projection
from projections.temporal import TemporalIndex

Progress = Callable[[int, int], None]


def projections() -> list[Projection]:
    """The projections the service keeps."""
    return [TemporalIndex()]


async def rebuild(
    store: EventStore,
    kept: Sequence[Projection],
    *,
    page: int = 20_000,
    progress: Progress | None = None,
) -> int:
    """Drop and refill every projection; returns how many log entries were folded."""
    done = 0

    async def pages(head: int) -> AsyncIterator[Sequence[RecordedEvent]]:
        nonlocal done
        while events := await store.read(after=done, limit=page):
            yield events
            done = events[-1].position
            if progress is not None:
                progress(done, max(head, done))

    async with store.transaction() as tx:
        head = (await store.head()).position
        for projection in kept:
            done = 0
            for statement in (*projection.drop(), *projection.schema()):
                await tx.execute(statement)
            await projection.rebuild(tx, pages(head))
    return done


async def ensure_built(store: EventStore, kept: Sequence[Projection]) -> bool:
    """Build the projections of a log that has entries but no projection rows yet (a database
    from before a projection existed). Returns whether it had to."""
    if (await store.head()).position == 0:
        return False
    if await store.query("SELECT 1 FROM facts LIMIT 1"):
        return False
    await rebuild(store, kept)
    return True
