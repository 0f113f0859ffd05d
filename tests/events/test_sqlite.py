"""What only the SQLite backend does: checkpoints beside the writer, and a WAL that starts
over under steady appends."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from events import sqlite
from events.sqlite import SQLiteEventStore
from events.validation import validate_body
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


async def test_under_steady_appends_the_wal_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Appends back to back, a checkpoint every 20 ms: a checkpoint never finds the WAL copied to
    # its end when the next transaction starts, so only the writer finishing the copy lets the
    # WAL start over. A WAL that starts over is cut back to the size limit (0 here).
    monkeypatch.setattr(sqlite, "WAL_RESTART_PAGES", 64)
    monkeypatch.setattr(sqlite, "WAL_SIZE_LIMIT", 0)
    path = tmp_path / "log.db"
    store = await SQLiteEventStore.open(path, projections=projections(), checkpoint_seconds=0.02)
    wal = path.with_name("log.db-wal")
    try:
        checkpointer = store._checkpointer
        assert checkpointer is not None
        sizes = []
        for _ in range(40):
            batch = [event_in(company=f"c{n % 7}") for n in range(100)]
            await store.append(validate_body({"events": batch}))
            sizes.append(wal.stat().st_size)
        assert checkpointer.finished >= 3
        restarts = sum(1 for before, after in itertools.pairwise(sizes) if after < before)
        assert restarts >= 3, sizes
        assert (await store.head()).position == 4000
        assert await store.verify() is None
    finally:
        await store.close()
