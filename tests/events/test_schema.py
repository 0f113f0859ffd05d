"""Schema versions: an older database migrates at open and serves; a newer one is refused."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from events import schema
from events.backends import open_store
from events.entries import LogEntry
from events.errors import SchemaMismatch, StoreError
from events.store import EventStore
from projections.rebuild import projections
from projections.temporal.reads import chronology_page
from projections.temporal.spans import FROM_FIRST_DAY
from tests.api import AiohttpClient, make_api
from tests.databases import Database
from tests.events.mixed import filtered, mixed_log
from tests.factories import event_in, history, new

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Version 5 indexed the log by type and by company: a database of an earlier one has neither.
_LOG_INDEXES_DROPPED = ("DROP INDEX events_type", "DROP INDEX events_company")


async def test_a_log_of_the_last_release_migrates_and_serves(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    path = tmp_path / "release.db"
    with sqlite3.connect(path) as db:
        db.executescript((FIXTURES / "schema-1.sql").read_text())
        assert "schema_version" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    url = f"sqlite:///{path}"
    store = await open_store(url, projections=projections())
    try:
        assert await store.verify() is None
        assert (await store.head()).position == 12
        versions = await store.query("SELECT version FROM schema_version ORDER BY version")
        assert versions == [(v,) for v in range(2, schema.VERSION + 1)]  # one row per step
    finally:
        await store.close()
    api = await make_api(aiohttp_client, url)
    response = await api.client.get("/v1/companies/baidu")
    assert response.status == 200, await response.text()
    assert (await response.json())["version"] > 0
    (event,) = await api.append({"events": [event_in(company="baidu")]})
    assert event["position"] == 13
    listing = await api.client.get("/v1/events")
    assert [e["position"] for e in (await listing.json())["events"]] == list(range(1, 14))


async def test_opening_a_current_database_again_migrates_nothing(database: Database) -> None:
    for _ in range(2):
        store = await open_store(database.url, projections=projections())
        await store.append([new(company="baidu")])
        await store.close()
    assert database.sql("SELECT version FROM schema_version") == [(schema.VERSION,)]


async def test_a_newer_schema_is_refused_naming_both_versions(database: Database) -> None:
    store = await open_store(database.url, projections=projections())
    await store.append([new(company="baidu")])
    await store.close()
    newer = schema.VERSION + 1
    database.sql(
        f"INSERT INTO schema_version (version, applied) VALUES ({newer}, '2030-01-01T00:00:00Z')"
    )
    with pytest.raises(SchemaMismatch) as refused:
        await open_store(database.url, projections=projections())
    assert f"version {newer}" in refused.value.detail
    assert f"schema version {schema.VERSION}" in refused.value.detail


async def test_a_database_of_version_3_has_its_projections_rebuilt(database: Database) -> None:
    """Version 4 keeps a span key per fact: a database of version 3 (no such column, the
    chronology's index of then) gets them at open, rebuilt from its log."""
    store = await open_store(database.url, projections=projections())
    try:
        await history(store)
        await store.append([new(company="baidu", occurred="2021~") for _ in range(3)])
        expected = await store.query("SELECT * FROM facts ORDER BY position, sys_from")
        page = [e.id for e in await _chronology(store)]
    finally:
        await store.close()
    # The schema of version 3, as its code made it.
    statements = [
        *_LOG_INDEXES_DROPPED,
        "DROP INDEX facts_span",
        "ALTER TABLE facts DROP COLUMN span",
        "CREATE INDEX facts_valid ON facts (lo, hi, position)",
        "UPDATE schema_version SET version = 3",
    ]
    if database.backend == "postgres":
        statements.append("DROP FUNCTION julianday(text)")
    for statement in statements:
        database.sql(statement)
    assert "span" not in _columns(database)

    store = await open_store(database.url, projections=projections())
    try:
        versions = await store.query("SELECT version FROM schema_version ORDER BY version")
        assert versions == [(v,) for v in range(3, schema.VERSION + 1)]
        assert await store.query("SELECT * FROM facts ORDER BY position, sys_from") == expected
        assert [e.id for e in await _chronology(store)] == page
        (appended,) = (await store.append([new(company="tencent", occurred="2023-Q3?")])).events
        assert appended.id in [e.id for e in await _chronology(store)]
    finally:
        await store.close()


async def test_a_database_of_version_4_gains_the_log_s_indexes(database: Database) -> None:
    """Version 5 indexes the log by (type, position) and (company, position), for filtered
    reads: a database of version 4 gets both at open, and reads as before."""
    store = await open_store(database.url, projections=projections())
    try:
        log = await mixed_log(store)
        facts = await store.query("SELECT * FROM facts ORDER BY position, sys_from")
    finally:
        await store.close()
    for statement in (*_LOG_INDEXES_DROPPED, "UPDATE schema_version SET version = 4"):
        database.sql(statement)
    assert not {"events_type", "events_company"} & _log_indexes(database)

    store = await open_store(database.url, projections=projections())
    try:
        versions = await store.query("SELECT version FROM schema_version ORDER BY version")
        assert versions == [(v,) for v in range(4, schema.VERSION + 1)]
        assert {"events_type", "events_company"} <= _log_indexes(database)
        assert await store.query("SELECT * FROM facts ORDER BY position, sys_from") == facts
        queries: list[dict[str, Any]] = [
            {"types": ["ceo.letter"]},
            {"types": ["model.launched", "team.formed"], "after": 40, "limit": 9},
            {"types": ["statement.made"], "amendments_follow": True, "until": 150},
            {"companies": ["baidu"], "after": 100},
            {"companies": ["baidu", "tencent"], "types": ["ceo.letter"], "limit": 3},
        ]
        for query in queries:
            assert await store.read(**query) == filtered(log, query), query
        assert await store.verify() is None
    finally:
        await store.close()


async def test_a_database_of_version_4_has_its_span_keys_rebuilt(database: Database) -> None:
    """Version 5 gives the facts beginning on the calendar's first day a span key of their
    own, which a company's chronology relies on: a database of version 4, whose such facts
    have the key of their length, gets them rebuilt at open."""
    store = await open_store(database.url, projections=projections())
    try:
        await history(store)
        await store.append(
            [new(company="baidu", occurred=text) for text in ("[..2023-06]", "0001", "2023-05")]
        )
        facts = await store.query("SELECT * FROM facts ORDER BY position, sys_from")
    finally:
        await store.close()
    # Version 4's keys of these ranges: by their length in months, or days (here, any other).
    statements = [
        *_LOG_INDEXES_DROPPED,
        f"UPDATE facts SET span = 22 WHERE span = {FROM_FIRST_DAY}",
        "UPDATE schema_version SET version = 4",
    ]
    for statement in statements:
        database.sql(statement)
    assert database.sql(f"SELECT COUNT(*) FROM facts WHERE span = {FROM_FIRST_DAY}") == [(0,)]

    store = await open_store(database.url, projections=projections())
    try:
        assert await store.query("SELECT * FROM facts ORDER BY position, sys_from") == facts
        head = (await store.head()).position
        found = await chronology_page(
            store,
            head,
            start=date(2023, 6, 1),
            end=date(2023, 6, 30),
            companies=("baidu",),
            types=(),
            after=None,
            limit=100,
        )
        assert [entry for entry in found if '"value":"[..2023-06]"' in entry.occurred_json]
    finally:
        await store.close()


def _log_indexes(database: Database) -> set[str]:
    if database.backend == "sqlite":
        rows = database.sql("SELECT name FROM sqlite_master WHERE tbl_name = 'events'")
    else:
        rows = database.sql(
            f"SELECT indexname FROM pg_indexes WHERE schemaname = '{database.schema}' "
            "AND tablename = 'events'"
        )
    return {str(name) for (name,) in rows}


async def _chronology(store: EventStore) -> list[LogEntry]:
    from datetime import date

    from projections.temporal.reads import chronology_page

    head = (await store.head()).position
    return await chronology_page(
        store,
        head,
        start=date(2023, 1, 1),
        end=None,
        companies=(),
        types=(),
        after=None,
        limit=100,
    )


def _columns(database: Database) -> set[str]:
    if database.backend == "sqlite":
        return {str(row[1]) for row in database.sql("PRAGMA table_info(facts)")}
    rows = database.sql(
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_schema = '{database.schema}' AND table_name = 'facts'"
    )
    return {str(name) for (name,) in rows}


async def test_a_database_of_version_3_is_not_migrated_without_its_projections(
    database: Database,
) -> None:
    store = await open_store(database.url, projections=projections())
    await store.append([new(company="baidu")])
    await store.close()
    for statement in (*_LOG_INDEXES_DROPPED, "UPDATE schema_version SET version = 3"):
        database.sql(statement)
    with pytest.raises(StoreError, match="open it with them"):
        await open_store(database.url)
    assert database.sql("SELECT version FROM schema_version") == [(3,)]  # nothing stamped
