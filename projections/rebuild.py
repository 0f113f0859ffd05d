"""Rebuild every projection from the log, in one transaction: readers see the old projections
until the new ones are complete."""

from __future__ import annotations

from collections.abc import Sequence

from events import schema
from events.store import EventStore, Progress, Projection, Transaction
from projections.temporal import reads
from projections.temporal.index import TemporalIndex


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

    def work(tx: Transaction) -> None:
        schema.rebuild_projections(tx, kept, progress)

    await store.write_transaction(work)
    return (await store.head()).position  # positions are gapless: the log's length


async def ensure_built(store: EventStore, kept: Sequence[Projection]) -> bool:
    """Build the projections of a log that has entries but no projection rows yet (a database
    from before a projection existed). Returns whether it had to."""
    if (await store.head()).position == 0:
        return False
    if await reads.is_built(store):
        return False
    await rebuild(store, kept)
    return True
