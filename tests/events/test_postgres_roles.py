"""The role set-up of docs/postgresql-roles.sql, run as written: the service's role appends and
reads, and the database refuses it any change to the log."""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from events.backends import open_store
from projections.rebuild import projections
from tests.databases import PG_DSN, needs_postgres, pg_url
from tests.factories import new
from tests.timeline.test_cli import run

ROLES = Path(__file__).resolve().parents[2] / "docs" / "postgresql-roles.sql"


def _as(dsn: str, user: str, schema: str) -> str:
    parts = urlsplit(dsn)
    netloc = f"{user}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return pg_url(parts._replace(netloc=netloc).geturl(), schema)


def _steps(suffix: str) -> tuple[str, str]:
    """The document's SQL before and after its `timeline migrate` step, with unique names."""
    text = ROLES.read_text()
    for name in ("timeline_owner", "timeline_service"):
        text = text.replace(name, f"{name}_{suffix}")
    text = re.sub(r"\btimeline(?=[\s.;])", f"timeline_{suffix}", text)  # the schema
    before, after = text.split("\n-- 3.")
    return before, "--" + after


@needs_postgres
def test_the_service_role_appends_and_cannot_change_the_log() -> None:
    assert PG_DSN is not None
    suffix = secrets.token_hex(4)
    owner, service, schema = (f"timeline_owner_{suffix}", f"timeline_service_{suffix}",
                              f"timeline_{suffix}")  # fmt: skip
    before, after = _steps(suffix)
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        try:
            admin.execute(before.encode())
            code, out, err = run("migrate", "--db", _as(PG_DSN, owner, schema))
            assert code == 0, err
            assert "the schema is at version" in out
            admin.execute(after.encode())
            asyncio.run(_as_service(_as(PG_DSN, service, schema)))
            # The owner rebuilds (DDL); the service goes on appending to the new tables.
            code, out, err = run("rebuild", "--db", _as(PG_DSN, owner, schema))
            assert code == 0, err
            asyncio.run(_append_once(_as(PG_DSN, service, schema)))
        finally:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE".encode())
            for role in (owner, service):
                if admin.execute(b"SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchall():
                    admin.execute(f"DROP OWNED BY {role}".encode())
                    admin.execute(f"DROP ROLE {role}".encode())


async def _as_service(url: str) -> None:
    store = await open_store(url, projections=projections())
    try:
        await store.append([new(company="baidu"), new(company="alibaba")])
        await store.add_token("ab" * 32, "read", "by the service")
        assert await store.token_scope("ab" * 32) == "read"
        assert [e.position for e in await store.read()] == [1, 2]
        assert await store.verify() is None
    finally:
        await store.close()
    with psycopg.connect(url, autocommit=True) as db:
        for sql in ("UPDATE events SET company = 'x'", "DELETE FROM events", "TRUNCATE events"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(sql.encode())
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(b"INSERT INTO schema_version (version, applied) VALUES (99, 'now')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.execute(b"CREATE TABLE other (a int)")


async def _append_once(url: str) -> None:
    store = await open_store(url, projections=projections())
    try:
        (event,) = (await store.append([new(company="baidu")])).events
        assert event.position == 3
    finally:
        await store.close()
