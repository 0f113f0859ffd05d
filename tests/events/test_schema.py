"""Schema versions: an older database migrates at open and serves; a newer one is refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from events import schema
from events.backends import open_store
from events.errors import SchemaMismatch
from projections.rebuild import projections
from tests.api import AiohttpClient, make_api
from tests.databases import Database
from tests.factories import event_in, new

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


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
