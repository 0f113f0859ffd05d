"""What only the SQLite backend does: checkpoints beside the writer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from events.envelope import validate_body
from events.sqlite import SQLiteEventStore
from projections.rebuild import projections
from tests.factories import event_in


async def test_the_wal_is_checkpointed_beside_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    store = await SQLiteEventStore.open(path, projections=projections(), checkpoint_seconds=0.05)
    try:
        empty = path.stat().st_size
        checkpointer = store._checkpointer
        assert checkpointer is not None
        for _ in range(5):
            batch = [event_in(company=f"c{n % 7}") for n in range(500)]
            await store.append(validate_body({"events": batch}))
        done = checkpointer.checkpoints
        async with asyncio.timeout(5):
            while checkpointer.checkpoints < done + 2:  # noqa: ASYNC110 (a counter, no event)
                await asyncio.sleep(0.01)
        # 2,500 events are far below the writer's own threshold (100,000 pages), yet they are
        # in the database file: only a checkpoint copies pages there.
        assert path.stat().st_size > empty + 500_000
        assert (await store.head()).position == 2500
    finally:
        await store.close()
