"""GroupWriter's grouping: which appends share a commit, and which never wait. On each backend,
through the `store` fixture the EventStore contract runs on (tests/conftest.py).

The first append of each test is held at the log's write lock, which another connection holds
(as another process would: SQLite's BEGIN IMMEDIATE, PostgreSQL's advisory lock of the log),
so the appends behind it queue while its group is in flight.

Where the outcome depends on how long the writer lingers, its clock (`time.monotonic`, as
events.writer reads it) is the test's, and stands still until the test moves it: a writer
that waited when it should not would never commit (the test's PATIENCE runs out instead of
its appends completing), and the second group can go only once the test has queued all that
must be in it. Nothing depends on how fast the machine is."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

import events.writer
from events.entries import LogEntry, NewEvent
from events.errors import StoreError, TimelineError
from events.postgres import LOCK
from events.store import Appended, EventStore
from events.writer import GroupWriter
from tests.databases import Database
from tests.factories import new

# Seconds: far more than any commit here; what a test waits for its appends at most.
PATIENCE = 10.0
FOREVER = 60.0


class Clock:
    """The `time` module as events.writer sees it, with a monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(events.writer, "time", fake)
    return fake


@contextmanager
def write_lock(database: Database) -> Iterator[None]:
    """Hold the log's write lock; the store's next write transaction waits for it."""
    if database.path is not None:
        other = sqlite3.connect(database.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("COMMIT")
            other.close()
        return
    with psycopg.connect(database.url) as holder:  # a transaction, until the block ends
        holder.execute(LOCK.encode())
        yield


async def _pending(writer: GroupWriter, events: int) -> None:
    """Until the appends just started have reached the writer (the first one, finding it idle,
    sent to the store at once; the others queued behind it)."""
    while writer.pending_events < events:  # noqa: ASYNC110 (a counter: no event to wait on)
        await asyncio.sleep(0)


Appending = asyncio.Future[Appended]


async def _moving_the_clock(clock: Clock, appends: list[Appending]) -> list[Appended]:
    """Move the writer's clock on, a second at a time, until `appends` are answered: a linger
    ends at the first move after the writer began it (which the test cannot see)."""
    answered = asyncio.gather(*appends)
    async with asyncio.timeout(PATIENCE):
        while not answered.done():
            clock.now += 1.0
            await asyncio.wait([answered], timeout=0.01)
    return answered.result()


async def held_up(
    writer: GroupWriter, database: Database, *behind: str
) -> tuple[Appending, list[Appending]]:
    """Start the writer; while another connection holds the write lock, append one event (it
    goes out alone and waits for the lock), then one event for each company in `behind`
    (they queue); then let go of the lock. Gives the leader's append and those behind it."""
    writer.start()
    with write_lock(database):
        leader = asyncio.ensure_future(writer.append([new(company="leader")]))
        await _pending(writer, 1)
        queued = [asyncio.ensure_future(writer.append([new(company=c)])) for c in behind]
        await _pending(writer, 1 + len(behind))
    return leader, queued


def _groups(events: list[LogEntry]) -> list[str]:
    return sorted({event.recorded for event in events})


async def test_appends_arriving_while_it_lingers_share_one_commit(
    store: EventStore, database: Database, clock: Clock
) -> None:
    # The quiet gap is longer than the linger: the writer lingers until its clock has passed
    # the linger, and an append made after the first group was answered joins the second.
    writer = GroupWriter(store, linger_seconds=0.05, quiet_seconds=FOREVER)
    leader, early = await held_up(writer, database, "a", "b")
    first = await asyncio.wait_for(leader, PATIENCE)
    late = asyncio.ensure_future(writer.append([new(company="c")]))
    await _pending(writer, 3)
    assert writer.groups == 1  # the second group waits for the linger to end
    second = await _moving_the_clock(clock, [*early, late])
    await writer.stop()
    assert writer.groups == 2
    events = [event for appended in second for event in appended.events]
    assert [event.position for event in events] == [2, 3, 4]
    assert len(_groups(events)) == 1  # one commit: one transaction time
    assert _groups(first.events) != _groups(events)


async def test_an_append_to_an_idle_writer_goes_at_once(store: EventStore) -> None:
    writer = GroupWriter(store, linger_seconds=FOREVER, quiet_seconds=FOREVER)
    writer.start()
    for n in range(3):
        appended = await asyncio.wait_for(writer.append([new(company="baidu")]), PATIENCE)
        assert appended.events[0].position == n + 1
    await writer.stop()
    assert writer.groups == 3


async def test_a_queue_gone_quiet_is_committed_without_waiting_out_the_linger(
    store: EventStore, database: Database, clock: Clock
) -> None:
    # Once the quiet gap has passed on the writer's clock, the group goes: the linger's end,
    # a minute later on that clock, never comes.
    writer = GroupWriter(store, linger_seconds=FOREVER, quiet_seconds=0.05)
    leader, behind = await held_up(writer, database, "alibaba")
    await asyncio.wait_for(leader, PATIENCE)
    assert writer.groups == 1
    clock.now += 1.0
    await asyncio.wait_for(asyncio.gather(*behind), PATIENCE)
    await writer.stop()
    assert writer.groups == 2


async def test_a_full_group_goes_at_once(store: EventStore, database: Database) -> None:
    writer = GroupWriter(store, max_group_events=3, linger_seconds=FOREVER, quiet_seconds=FOREVER)
    leader, full = await held_up(writer, database, "a", "b", "c")
    await asyncio.wait_for(asyncio.gather(leader, *full), PATIENCE)
    await writer.stop()
    assert writer.groups == 2


async def test_stopping_ends_the_linger_and_commits_what_is_queued(
    store: EventStore, database: Database
) -> None:
    writer = GroupWriter(store, linger_seconds=FOREVER, quiet_seconds=FOREVER)
    leader, behind = await held_up(writer, database, "alibaba")
    await asyncio.wait_for(leader, PATIENCE)
    await asyncio.wait_for(writer.stop(), PATIENCE)
    assert (await behind[0]).events[0].position == 2
    assert (await store.head()).position == 2


async def test_a_trickle_of_appends_is_not_held(
    store: EventStore, database: Database, clock: Clock
) -> None:
    # Appends further apart than the quiet gap: the last group's commit finds one queued, but
    # the next is not expected soon, so the writer does not wait the quiet gap out. (Its clock
    # stands still: waiting it out, it would never commit.)
    writer = GroupWriter(store, linger_seconds=FOREVER, quiet_seconds=1.0)
    writer.start()
    with write_lock(database):
        leader = asyncio.ensure_future(writer.append([new(company="leader")]))
        await _pending(writer, 1)
        first = asyncio.ensure_future(writer.append([new(company="a")]))
        await _pending(writer, 2)
        clock.now += 1.5
        second = asyncio.ensure_future(writer.append([new(company="b")]))
        await _pending(writer, 3)
    await asyncio.wait_for(asyncio.gather(leader, first, second), PATIENCE)
    await writer.stop()
    assert writer.groups == 2


def _refusing_second_group(store: EventStore) -> None:
    """From now on the real store cannot start a second group (as a store whose thread is
    gone cannot)."""
    submit = store.submit_appends
    started = 0

    def submit_appends(
        batches: Sequence[Sequence[NewEvent]],
    ) -> Future[list[Appended | TimelineError]]:
        nonlocal started
        started += 1
        if started == 2:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return submit(batches)

    store.submit_appends = submit_appends  # type: ignore[method-assign]


async def test_a_group_that_cannot_start_fails_alone_and_stop_still_returns(
    store: EventStore, database: Database
) -> None:
    _refusing_second_group(store)
    writer = GroupWriter(store, linger_seconds=FOREVER, quiet_seconds=0.05)
    leader, behind = await held_up(writer, database, "alibaba")
    assert (await asyncio.wait_for(leader, PATIENCE)).events[0].position == 1
    with pytest.raises(StoreError):
        await asyncio.wait_for(behind[0], PATIENCE)
    await asyncio.wait_for(writer.stop(), PATIENCE)
    assert (await store.head()).position == 1
