"""The EventStore contract, run against every backend (tests/databases.py: PostgreSQL joins
when TIMELINE_TEST_PG_DSN is set) through the `store` fixture of tests/conftest.py."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from events.appender import MAX_POSITION, MAX_SCANS
from events.backends import open_store
from events.canonical import canonical
from events.chain import GENESIS, chain
from events.dates import END
from events.entries import LogEntry
from events.errors import (
    IdConflict,
    NotFound,
    PositionConflict,
    StoreError,
    TimelineError,
    ValidationFailed,
    VersionConflict,
)
from events.store import EventStore
from events.types import AMENDMENTS, EVENT_TYPES
from events.writer import GroupWriter
from projections.rebuild import projections, rebuild
from tests.databases import Database, fresh, needs_postgres
from tests.events import mixed
from tests.events.mixed import filtered, mixed_log
from tests.factories import batch, event_in, history, new


@dataclass
class Backend:
    """How the suite reaches one backend: open a store (several may share one database),
    run SQL past the store, change a byte of a stored entry behind its back, and make the
    database itself fail inserts for one company."""

    database: Database

    async def open(self) -> EventStore:
        return await open_store(self.database.url, projections=projections())

    def raw_sql(self, sql: str) -> None:
        self.database.sql(sql)

    def tamper(self, position: int) -> None:
        """Change one byte of the entry's data where the database keeps it."""
        if self.database.path is None:
            # Past the append-only triggers, as a superuser (or the disk) could.
            self.raw_sql(
                "DO $$ BEGIN SET LOCAL session_replication_role = replica; "
                "UPDATE events SET data = overlay(data placing chr(ascii(substr(data, "
                'strpos(data, \'"model":"\') + 9, 1)) # 1) '
                'from strpos(data, \'"model":"\') + 9 for 1) '
                f"WHERE position = {position}; END $$"
            )
            return
        path = self.database.path
        with sqlite3.connect(path) as db:
            hi, data = db.execute(
                "SELECT hi, data FROM events WHERE position = ?", (position,)
            ).fetchone()
        raw = path.read_bytes()
        # A record stores its values back to back: `hi` then `data` happens only in the log's
        # row (the projection keeps a copy of the data elsewhere, after other columns).
        needle = (hi + data).encode()
        assert raw.count(needle) == 1, "the entry must be found once in the file"
        offset = raw.index(needle) + needle.index(b'"model":"') + len(b'"model":"')
        flipped = bytes([raw[offset] ^ 0x01])
        path.write_bytes(raw[:offset] + flipped + raw[offset + 1 :])

    def poison(self, company: str) -> None:
        """From now on, the database refuses to insert an entry of `company`."""
        if self.database.path is not None:
            self.raw_sql(
                f"CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.company = '{company}' "
                "BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
            )
            return
        self.raw_sql(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.company = '{company}' THEN RAISE EXCEPTION 'poisoned'; END IF; "
            "RETURN NEW; END $$"
        )
        self.raw_sql(
            "CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison()"
        )


@pytest.fixture
def backend(database: Database) -> Backend:
    return Backend(database)


@pytest.fixture
async def empty(backend_name: str, tmp_path: Path) -> AsyncIterator[EventStore]:
    """A second store of the same backend, on an empty database of its own."""
    with fresh(backend_name, tmp_path) as other:
        opened = await Backend(other).open()
        yield opened
        await opened.close()


async def test_empty_log(store: EventStore) -> None:
    head = await store.head()
    assert (head.position, head.hash, head.recorded) == (0, "0" * 64, None)
    assert await store.read() == []
    assert await store.verify() is None


async def test_append_assigns_positions_versions_and_chain(store: EventStore) -> None:
    first = await store.append([new(company="baidu"), new(company="alibaba")])
    second = await store.append([new(company="baidu")])
    events = first.events + second.events
    assert [e.position for e in events] == [1, 2, 3]
    assert [(e.company, e.version) for e in events] == [("baidu", 1), ("alibaba", 1), ("baidu", 2)]
    assert first.created and second.created
    recorded = [e.recorded for e in events]
    assert recorded == sorted(recorded)
    head = await store.head()
    assert (head.position, head.hash) == (3, events[-1].hash)
    assert await store.read() == events
    assert await store.get(events[1].id) == events[1]
    assert await store.verify() is None


async def test_read_filters_and_pages(store: EventStore) -> None:
    await store.append(
        [
            new(company="baidu"),
            new(company="tencent", type="team.formed", data={"name": "Hunyuan"}),
            new(company="baidu", type="team.formed", data={"name": "ERNIE"}),
            new(company="alibaba"),
        ]
    )
    assert [e.position for e in await store.read(after=1, limit=2)] == [2, 3]
    assert [e.position for e in await store.read(companies=["baidu"])] == [1, 3]
    assert [e.position for e in await store.read(types=["team.formed"])] == [2, 3]
    both = await store.read(companies=["baidu", "alibaba"], types=["model.launched"])
    assert [e.position for e in both] == [1, 4]
    assert await store.get("00000000-0000-0000-0000-000000000000") is None


async def test_filtered_reads_agree_with_a_plain_filter_of_the_log(store: EventStore) -> None:
    log = await mixed_log(store)
    head = len(log)
    rng = random.Random(11)
    companies = [*mixed.COMPANIES, "nobody"]
    types = [*mixed.TYPES, *sorted(AMENDMENTS), "no.such-type"]
    afters = [0, 1, 2, head // 3, head // 2, head - 2, head - 1, head, head + 5, MAX_POSITION]
    untils = [None, None, 0, 1, head // 3, head // 2 + 1, head - 1, head, head + 5, MAX_POSITION]
    for _ in range(200):
        query: dict[str, Any] = {
            "after": rng.choice(afters),
            "until": rng.choice(untils),
            "limit": rng.choice([1, 2, 7, 50, 1000]),
            "companies": rng.sample(companies, rng.choice([0, 0, 1, 1, 2, 3])),
            "types": rng.sample(types, rng.choice([0, 1, 1, 2, 3])),
            "amendments_follow": rng.random() < 0.5,
        }
        assert await store.read(**query) == filtered(log, query), query


@pytest.mark.parametrize("follow", [False, True])
@pytest.mark.parametrize(
    ("companies", "types"),
    [
        ((), ("ceo.letter",)),  # the rare type
        ((), ("model.launched", "ceo.letter")),
        ((), ("event.retracted",)),  # an amendment type itself: passes every one
        ((), ("event.corrected", "team.formed")),
        ((), tuple(sorted(EVENT_TYPES))),
        (("baidu",), ()),
        (("baidu", "tencent", "nobody"), ()),
        (("baidu",), ("ceo.letter",)),
        (("alibaba", "tencent"), ("team.formed", "statement.made")),
        (("baidu", "baidu"), ("ceo.letter", "ceo.letter")),  # repeated values
        # More companies than a read merges scans of, and more values than it binds per scan.
        ((*mixed.COMPANIES, *(f"co-{n}" for n in range(MAX_SCANS))), ()),
        ((*mixed.COMPANIES, *(f"co-{n}" for n in range(300))), ("ceo.letter", "team.formed")),
    ],
)
async def test_filtered_pages_follow_each_other_over_the_log(
    store: EventStore, companies: tuple[str, ...], types: tuple[str, ...], follow: bool
) -> None:
    """Page after page (each from the last one's last position), and with `until` at every
    tenth position, a filtered read gives what the filter passes, in position order."""
    log = await mixed_log(store)
    wanted = {"companies": companies, "types": types, "amendments_follow": follow}
    for until in [None, *range(0, len(log) + 1, 10)]:
        pages, after = [], 0
        while page := await store.read(after=after, limit=7, until=until, **wanted):
            pages += page
            after = page[-1].position
        assert pages == filtered(log, {**wanted, "until": until, "limit": len(log)}), until


async def test_a_transaction_reads_the_entries_of_some_types_in_order(store: EventStore) -> None:
    log = await mixed_log(store)
    for types in [(), ("event.corrected",), tuple(sorted(AMENDMENTS)), ("ceo.letter", "nope")]:
        for after, limit in [(0, 1000), (0, 3), (len(log) // 2, 5), (len(log), 10)]:
            read = await store.write_transaction(
                lambda tx, a=after, n=limit, t=types: tx.events(a, n, types=t)
            )
            assert read == filtered(log, {"after": after, "limit": limit, "types": types}), (
                types,
                after,
            )


async def test_gapless_positions_under_concurrent_appenders(backend: Backend) -> None:
    # Two stores on one database stand for two processes; each runs a group writer.
    stores = [await backend.open(), await backend.open()]
    writers = [GroupWriter(s) for s in stores]
    for writer in writers:
        writer.start()
    companies = ["alibaba", "baidu", "tencent", "huawei", "kuaishou"]

    async def appender(n: int) -> None:
        rng = random.Random(n)
        for _ in range(15):
            size = rng.randint(1, 3)
            events = [event_in(company=rng.choice(companies)) for _ in range(size)]
            target = writers[n % 2] if n % 3 else stores[n % 2]
            await target.append(batch(*events))

    await asyncio.gather(*(appender(n) for n in range(24)))
    for writer in writers:
        await writer.stop()
    log = await stores[0].read(limit=10_000)
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    for company in companies:
        versions = [e.version for e in log if e.company == company]
        assert versions == list(range(1, len(versions) + 1))
    assert len({e.id for e in log}) == len(log)
    assert await stores[1].verify() is None
    for s in stores:
        await s.close()


async def test_a_bad_event_in_a_batch_stores_nothing(store: EventStore) -> None:
    await store.append([new(company="baidu")])
    before = await store.head()
    good = [event_in(company="baidu"), event_in(company="alibaba")]
    bad_target = event_in(
        company="baidu",
        type="event.retracted",
        data={"target": "11111111-1111-1111-1111-111111111111", "reason": "denied"},
    )
    with pytest.raises(ValidationFailed) as caught:
        await store.append(batch(*good, bad_target))
    assert caught.value.errors == [
        {"loc": ["body", "events", 2, "data", "target"], "msg": caught.value.detail}
    ]
    stale = event_in(company="alibaba", expected_version=5)
    with pytest.raises(VersionConflict):
        await store.append(batch(*good, stale))
    assert await store.head() == before
    for body in good:
        assert await store.get(body["id"]) is None


async def test_each_batch_of_a_group_stands_alone(store: EventStore) -> None:
    ok_1, ok_2 = [new(company="baidu")], [new(company="baidu")]
    conflict = [new(company="baidu", expected_version=0)]
    results = await store.append_many([ok_1, conflict, ok_2])
    assert isinstance(results[1], VersionConflict)
    assert results[1].extra == {"company": "baidu", "current_version": 1, "id": conflict[0].id}
    assert [e.position for e in await store.read()] == [1, 2]
    assert [e.id for e in await store.read()] == [ok_1[0].id, ok_2[0].id]


async def test_expected_version_counts_earlier_events_of_the_batch(store: EventStore) -> None:
    await store.append(
        batch(
            event_in(company="baidu", expected_version=0),
            event_in(company="alibaba", expected_version=0),
            event_in(company="baidu", expected_version=1),
        )
    )
    second = event_in(company="baidu", expected_version=2)
    with pytest.raises(VersionConflict) as caught:
        await store.append(batch(event_in(company="baidu", expected_version=2), second))
    # The second event expected 2 too, but the first made it 3: that one is named.
    assert caught.value.extra == {"company": "baidu", "current_version": 3, "id": second["id"]}
    assert (await store.head()).position == 3


@pytest.mark.parametrize("through", ["writer", "store"])
async def test_fifty_concurrent_writers_one_winner_per_version(
    store: EventStore, through: str
) -> None:
    writer = GroupWriter(store)
    writer.start()
    target = writer if through == "writer" else store
    for version in range(6):

        async def attempt(version: int = version) -> int | None:
            event = new(company="pinduoduo", expected_version=version)
            try:
                await target.append([event])
            except VersionConflict as conflict:
                assert conflict.extra == {
                    "company": "pinduoduo",
                    "current_version": version + 1,
                    "id": event.id,
                }
                return None
            return version

        outcomes = await asyncio.gather(*(attempt() for _ in range(50)))
        assert [o for o in outcomes if o is not None] == [version]
    await writer.stop()
    log = await store.read()
    assert [e.version for e in log] == [1, 2, 3, 4, 5, 6]


async def test_idempotent_retry_returns_the_original_events(store: EventStore) -> None:
    bodies = [event_in(company="baidu", expected_version=0), event_in(company="tencent")]
    first = await store.append(batch(*bodies))
    await store.append([new(company="baidu")])
    again = await store.append(batch(*bodies))  # its expected_version is stale now: still a retry
    assert not again.created
    assert again.events == first.events
    assert (await store.head()).position == 3


async def test_same_id_other_content_is_a_conflict(store: EventStore) -> None:
    body = event_in(company="baidu")
    await store.append(batch(body))
    with pytest.raises(IdConflict):
        await store.append(batch({**body, "occurred": "2023-05"}))
    with pytest.raises(IdConflict):
        await store.append(batch({**body, "confidence": "rumored"}))
    fresh = event_in(company="baidu")
    with pytest.raises(IdConflict):
        await store.append(batch(body, fresh))
    assert await store.get(fresh["id"]) is None
    assert (await store.head()).position == 1


async def test_retry_inside_one_group_is_a_replay(store: EventStore) -> None:
    event = new(company="baidu")
    first, second = await store.append_many([[event], [event]])
    assert not isinstance(first, Exception) and not isinstance(second, Exception)
    assert first.created and not second.created
    assert first.events == second.events


async def test_amendment_targets(store: EventStore) -> None:
    original = new(company="alibaba", data={"model": "Tongyi", "stage": "announced"})
    await store.append([original])

    def amend(kind: str, company: str = "alibaba", **data: object) -> dict[str, object]:
        return event_in(company=company, type=kind, data={"target": original.id, **data})

    cases = [
        amend("event.retracted", company="baidu", reason="wrong company"),
        amend("event.corrected", data={"model": "Tongyi", "stage": "launched"}),
        amend("event.corrected", data={"nonsense": 1}),
    ]
    for body in cases:
        with pytest.raises(ValidationFailed):
            await store.append(batch(body))
    fix = amend("event.corrected", data={"model": "Tongyi Qianwen", "stage": "public"})
    retraction = amend("event.retracted", reason="denied")
    stored = await store.append(batch(fix, retraction))
    assert [e.type for e in stored.events] == ["event.corrected", "event.retracted"]
    on_amendment = event_in(
        company="alibaba",
        type="event.reinstated",
        data={"target": retraction["id"]},
    )
    with pytest.raises(ValidationFailed):
        await store.append(batch(on_amendment))
    # A target earlier in the same batch is fine.
    launch = event_in(company="baidu", data={"model": "ERNIE Bot"})
    pulled = event_in(
        company="baidu", type="event.retracted", data={"target": launch["id"], "reason": "x"}
    )
    assert (await store.append(batch(launch, pulled))).created


async def test_correction_data_is_normalized_and_retry_is_idempotent(store: EventStore) -> None:
    original = new(
        company="tencent",
        type="financial.report",
        data={"period": "2023-Q3", "metrics": [{"name": "ad revenue", "value": 25.7}]},
    )
    await store.append([original])
    body = event_in(
        company="tencent",
        type="event.corrected",
        data={
            "target": original.id,
            "data": {"period": "2023-Q3", "metrics": [{"name": "ad revenue", "value": 26.0}]},
        },
    )
    (stored,) = (await store.append(batch(body))).events
    assert stored.data["data"]["metrics"][0]["value"] == 26
    assert '"value":26}' in stored.data_json
    again = await store.append(batch(body))
    assert not again.created and again.events == [stored]


async def test_update_and_delete_are_refused_by_the_database(
    store: EventStore, backend: Backend
) -> None:
    await store.append([new(company="baidu")])
    for sql in ("UPDATE events SET company = 'x'", "DELETE FROM events"):
        with pytest.raises(Exception, match="append-only"):
            backend.raw_sql(sql)
    assert [e.company for e in await store.read()] == ["baidu"]


async def test_verify_finds_a_byte_changed_in_the_database(backend: Backend) -> None:
    store = await backend.open()
    await store.append([new(company="baidu", data={"model": f"M{i}"}) for i in range(5)])
    assert await store.verify() is None
    await store.close()
    backend.tamper(4)
    reopened = await backend.open()
    assert await reopened.verify() == 4
    # The check of the last entries (serve's, at start) sees it when it is among them ...
    assert await reopened.verify(last=2) == 4
    assert await reopened.verify(last=500) == 4
    # ... and not when it lies before them: the first of them chains to its stored hash.
    assert await reopened.verify(last=1) is None
    await reopened.close()


async def test_a_failed_commit_leaves_nothing_behind(store: EventStore, backend: Backend) -> None:
    await store.append([new(company="baidu")])
    before = await store.head()
    backend.poison("meituan")
    with pytest.raises(StoreError):
        await store.append([new(company="baidu"), new(company="meituan")])
    writer = GroupWriter(store)
    writer.start()
    # The first append goes out alone (the writer was idle); the two behind it queue meanwhile
    # and go out together, as one group.
    leader, innocent, poisoned = (new(company=c) for c in ("meituan", "baidu", "meituan"))
    outcomes = await asyncio.gather(
        writer.append([leader]),
        writer.append([innocent]),
        writer.append([poisoned]),
        return_exceptions=True,
    )
    await writer.stop()
    # A database failure fails the whole group: nobody is told "stored" for a rolled-back write.
    assert all(isinstance(outcome, StoreError) for outcome in outcomes)
    assert await store.head() == before
    assert await store.get(innocent.id) is None
    assert await store.query("SELECT COUNT(*) FROM facts") == [(1,)]  # nor any projection row
    after = await store.append([new(company="baidu")])
    assert after.events[0].position == 2


async def test_what_a_store_remembers_between_groups_follows_other_writers(
    backend: Backend,
) -> None:
    # A store may keep versions and company summaries from its last group; two stores on one
    # database stand for two processes, whose writes (and failures) must not be missed.
    a, b = await backend.open(), await backend.open()
    await a.append([new(company="baidu"), new(company="alibaba")])
    await a.append([new(company="baidu", occurred="2022")])
    registered = new(company="baidu", type="company.registered", data={"name": "Baidu"})
    await b.append([registered, new(company="alibaba", occurred="2019")])
    third = await a.append([new(company="baidu", expected_version=3)])
    assert (third.events[0].position, third.events[0].version) == (6, 4)
    with pytest.raises(VersionConflict) as caught:
        await b.append([new(company="baidu", expected_version=3)])
    assert caught.value.extra["current_version"] == 4
    backend.poison("meituan")
    with pytest.raises(StoreError):  # planned and folded, then rolled back
        await a.append([new(company="baidu"), new(company="meituan")])
    after = await a.append([new(company="baidu", expected_version=4)])
    assert (after.events[0].position, after.events[0].version) == (7, 5)
    await b.append(
        [
            new(
                company="alibaba",
                type="event.retracted",
                data={
                    "target": (await b.read(companies=["alibaba"], limit=1))[0].id,
                    "reason": "wrong",
                },
            )
        ]
    )
    await a.append([new(company="alibaba")])
    # The summaries kept group by group are those a rebuild computes from the whole log.
    kept = await _projections(a)
    await rebuild(a, projections())
    assert await _projections(a) == kept
    summaries = await a.query("SELECT company, events, name FROM companies ORDER BY company")
    assert summaries == [("alibaba", 2, None), ("baidu", 5, "Baidu")]
    for opened in (a, b):
        await opened.close()


async def test_events_without_an_id_get_ids_made_for_them(store: EventStore) -> None:
    body = event_in(company="baidu", id=None, data={"model": "ERNIE"})
    made = batch(body, body)  # the same content twice: two events, as the client sent them
    result = await store.append(made)
    ids = [event.id for event in result.events]
    assert len(set(ids)) == 2
    assert all(uuid.UUID(event_id).version == 7 for event_id in ids)
    assert [event.id for event in await store.read()] == ids
    again = await store.append(batch(body))  # no id: nothing to be idempotent about
    assert again.created and again.events[0].position == 3


async def _projections(store: EventStore) -> list[object]:
    return [
        await store.query("SELECT * FROM facts ORDER BY position, sys_from"),
        await store.query("SELECT * FROM companies ORDER BY company"),
    ]


def _rehashed(entries: Sequence[LogEntry]) -> list[LogEntry]:
    """The entries with their chain recomputed: forged, but consistent."""
    previous, chained = GENESIS, []
    for entry in entries:
        previous = chain(previous, entry.hashed_json())
        chained.append(replace(entry, hash=previous))
    return chained


async def test_restore_reproduces_the_log_and_its_projections(
    store: EventStore, empty: EventStore
) -> None:
    log = await history(store)
    assert await empty.restore(log[:3]) == 3
    assert await empty.restore(log[3:]) == len(log) - 3
    assert await empty.head() == await store.head()
    assert await empty.read(limit=1000) == log
    assert await empty.verify() is None
    assert await _projections(empty) == await _projections(store)
    # Restoring again, from the start or from any stored position on, stores nothing.
    assert await empty.restore(log) == 0
    assert await empty.restore(log[4:]) == 0
    assert await empty.restore([]) == 0
    # The restored log goes on like the original.
    (after,) = (await empty.append([new(company="baidu")])).events
    assert (after.position, after.version) == (len(log) + 1, 6)
    assert after.recorded >= log[-1].recorded
    assert await empty.verify() is None


async def test_entries_cut_at_the_calendars_end_by_versions_before_5_restore_and_retry(
    store: EventStore, empty: EventStore
) -> None:
    """Before schema version 5 a range reaching 9999-12-31 was stored cut to end on that day
    (hi 9999-12-31, in the column and the hashed JSON). Such entries stay valid: a log of
    them restores (copy, import), and retrying their appends is idempotent."""
    events = [
        new(company="baidu", occurred=text) for text in ("9999", "2023-05", "[2020..9999-12]")
    ]
    log = await store.append(events)
    cut = []
    for entry in log.events:
        if entry.hi == END:
            occurred = {**orjson.loads(entry.occurred_json), "hi": "9999-12-31"}
            entry = replace(entry, occurred_json=canonical(occurred), hi="9999-12-31")
        cut.append(entry)
    legacy = _rehashed(cut)
    assert [entry.hi for entry in legacy] == ["9999-12-31", "2023-06-01", "9999-12-31"]
    # That form, and no other: a range cut anywhere else is refused, and so is a cut form
    # of a date those versions refused (the day 9999-12-31 as a range's last point).
    day_early = {**orjson.loads(cut[0].occurred_json), "hi": "9999-12-30"}
    altered = [replace(cut[0], occurred_json=canonical(day_early), hi="9999-12-30"), *cut[1:]]
    with pytest.raises(ValidationFailed, match="position 1 is not in the form"):
        await empty.restore(_rehashed(altered))
    (refused,) = (
        await store.append([new(company="tencent", occurred="[2020..9999-12-31]")])
    ).events
    never = {**orjson.loads(refused.occurred_json), "hi": "9999-12-31"}
    forged = replace(
        refused, position=1, version=1, occurred_json=canonical(never), hi="9999-12-31"
    )
    with pytest.raises(ValidationFailed, match="position 1 is not in the form"):
        await empty.restore(_rehashed([forged]))
    assert await empty.restore(legacy) == 3
    assert await empty.read(limit=10) == legacy
    assert await empty.verify() is None
    retried = await empty.append(events)
    assert (retried.created, retried.events) == (False, legacy)


async def test_restore_refuses_an_altered_entry_and_stores_nothing(
    store: EventStore, empty: EventStore
) -> None:
    log = await history(store)
    at = next(i for i, entry in enumerate(log) if entry.type == "event.retracted")
    altered = replace(log[at], data_json=log[at].data_json.replace("denied", "denies"))
    with pytest.raises(ValidationFailed, match=f"hash of position {at + 1}") as caught:
        await empty.restore([*log[:at], altered, *log[at + 1 :]])
    assert caught.value.extra["position"] == at + 1
    with pytest.raises(ValidationFailed, match="hash of position 1"):
        await empty.restore([replace(log[0], hash=log[1].hash)])
    # Nothing of the call is stored, not even the sound entries before the altered one.
    assert (await empty.head()).position == 0
    assert await _projections(empty) == [[], []]


async def test_restore_refuses_entries_that_do_not_continue_the_log(
    store: EventStore, empty: EventStore
) -> None:
    log = await history(store)
    with pytest.raises(PositionConflict) as caught:
        await empty.restore(log[2:])
    assert caught.value.extra == {"position": 3, "head": 0}
    assert await empty.restore(log[:2]) == 2
    with pytest.raises(PositionConflict, match="position 5 does not continue"):
        await empty.restore([log[2], log[4]])
    # Here position 3 holds another event, soundly chained: the export is not of this log.
    other = replace(log[2], data_json='{"name":"Baidu, Inc."}')
    assert await empty.restore(_rehashed([*log[:2], other])) == 1
    with pytest.raises(PositionConflict, match="position 3 is stored with other content"):
        await empty.restore(log)
    # Position 4 is next, but its hash chains onto the original position 3, not this one.
    with pytest.raises(ValidationFailed, match="hash of position 4"):
        await empty.restore(log[3:])
    assert (await empty.head()).position == 3


async def test_restore_checks_each_entry_as_an_append_would(
    store: EventStore, empty: EventStore
) -> None:
    log = await history(store)
    retraction = next(i for i, entry in enumerate(log) if entry.type == "event.retracted")
    unknown_target = log[retraction].data_json.replace(log[0].id, "0" * 8 + log[0].id[8:])
    broken: list[tuple[int, dict[str, object], type[TimelineError], str]] = [
        (3, {"recorded": "2000-01-01T00:00:00.000000Z"}, ValidationFailed, "never decreases"),
        (3, {"recorded": "yesterday"}, ValidationFailed, "not a time"),
        (2, {"version": 1}, ValidationFailed, "version 1, but it is entry 2"),
        (retraction, {"data_json": unknown_target}, ValidationFailed, "not a stored event"),
        (0, {"data_json": '{"stage":"public"}'}, ValidationFailed, "data.model: Field required"),
        (0, {"lo": "2023-03-17"}, ValidationFailed, "not in the form"),
        (0, {"occurred_json": log[0].occurred_json.replace('"lo"', '"low"')}, ValidationFailed,
         "not in the form"),
        (1, {"data_json": log[1].data_json.replace("154.6", "1.546e2")}, ValidationFailed,
         "not in the form"),
        (3, {"id": log[0].id}, IdConflict, "already stored at position 1"),
    ]  # fmt: skip
    for index, change, error, message in broken:
        entries = _rehashed([*log[:index], replace(log[index], **change), *log[index + 1 :]])
        with pytest.raises(error, match=message) as caught:
            await empty.restore(entries)
        assert caught.value.extra["position"] == index + 1
    assert (await empty.head()).position == 0


@needs_postgres
async def test_the_store_goes_on_after_the_database_drops_its_connections() -> None:
    with fresh("postgres") as database:
        await _dropped_connections(database)


async def _dropped_connections(database: Database) -> None:
    name = f"test-{uuid.uuid4().hex[:12]}"
    url = f"{database.url}&application_name={name}"
    store = await open_store(url, projections=projections())
    try:
        await store.append([new(company="baidu")])
        assert len(await store.read()) == 1
        database.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE application_name = '{name}'"
        )
        # Until the server has dropped them all.
        while database.sql(f"SELECT 1 FROM pg_stat_activity WHERE application_name = '{name}'"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        for _ in range(10):  # every pooled connection was dropped: none is handed out
            assert [e.position for e in await store.read()] == [1]
        # Nothing of the next write had run on the dropped connection: it begins on a new one.
        (second,) = (await store.append([new(company="baidu")])).events
        assert second.position == 2
        assert [e.position for e in await store.read()] == [1, 2]
        assert await store.verify() is None
    finally:
        await store.close()


@needs_postgres
async def test_positions_stay_gapless_whatever_the_server_s_default_isolation() -> None:
    with fresh("postgres") as database:
        url = database.url + "%20-cdefault_transaction_isolation%3Drepeatable%5C%20read"
        assert database.sql("SHOW default_transaction_isolation") == [("read committed",)]
        stores = [await open_store(url, projections=projections()) for _ in range(2)]
        try:
            check = await stores[0].query("SHOW default_transaction_isolation")
            assert check == [("repeatable read",)]  # the readers' sessions: the URL's default

            async def appender(n: int) -> None:
                for _ in range(10):
                    await stores[n % 2].append([new(company="baidu"), new(company="tencent")])

            await asyncio.gather(*(appender(n) for n in range(8)))
            log = await stores[1].read(limit=1000)
            assert [e.position for e in log] == list(range(1, 161))
            assert await stores[0].verify() is None
        finally:
            for opened in stores:
                await opened.close()


@needs_postgres
async def test_what_is_folded_in_a_group_that_fails_at_commit_is_forgotten() -> None:
    # The fold runs, then COMMIT fails (a deferred constraint), then another writer brings the
    # log to the position the failed group would have reached: the summaries kept in memory
    # must not be trusted.
    with fresh("postgres") as database:
        a = await open_store(database.url, projections=projections())
        b = await open_store(database.url, projections=projections())
        try:
            await a.append([new(company="baidu")])
            database.sql(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF NEW.company = 'meituan' THEN RAISE EXCEPTION 'poisoned'; END IF; "
                "RETURN NEW; END $$"
            )
            database.sql(
                "CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON events DEFERRABLE "
                "INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poison()"
            )
            with pytest.raises(StoreError):
                await a.append([new(company="baidu"), new(company="meituan")])
            database.sql("DROP TRIGGER poison ON events")
            await b.append([new(company="alibaba"), new(company="alibaba")])
            await a.append([new(company="baidu")])
            kept = await _projections(a)
            await rebuild(a, projections())
            assert await _projections(a) == kept
        finally:
            await a.close()
            await b.close()


async def test_a_table_named_events_that_is_not_a_log_is_refused(database: Database) -> None:
    database.sql("CREATE TABLE events (what TEXT)")
    with pytest.raises(NotFound, match="not a Timeline log"):
        await open_store(database.url, projections=projections())


@needs_postgres
async def test_every_text_column_orders_by_bytes_whatever_the_database_s_collation() -> None:
    with fresh("postgres") as database:
        store = await open_store(database.url, projections=projections())
        await store.close()
        columns = database.sql(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns "
            f"WHERE table_schema = '{database.schema}' AND data_type = 'text'"
        )
        assert {table for table, _, _ in columns} >= {"events", "facts", "companies", "webhooks"}
        assert [(t, c) for t, c, collation in columns if collation != "C"] == []


async def test_a_lease_is_held_by_one_store_at_a_time(backend: Backend) -> None:
    a, b = await backend.open(), await backend.open()
    try:
        held = await a.lease("webhooks")
        assert held is not None
        assert await b.lease("webhooks") is None
        other = await b.lease("something-else")  # names do not collide
        assert other is not None
        await other.release()
        await held.release()
        await asyncio.wait_for(held.lost(), 5)  # released: lost() returns at once
        taken = await b.lease("webhooks")
        assert taken is not None
        assert await a.lease("webhooks") is None
        await taken.release()
    finally:
        await a.close()
        await b.close()
