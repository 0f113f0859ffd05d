"""The `timeline` command, run as a user would: a real process on a real database."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.databases import Database, needs_postgres
from tests.databases import fresh as fresh_database
from tests.factories import event_in

TIMELINE = [sys.executable, "-m", "timeline.cli"]
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
    import subprocess

    done = subprocess.run(
        [*TIMELINE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


class Server:
    def __init__(self, process: asyncio.subprocess.Process, url: str, token: str | None) -> None:
        self.process, self.url, self.token = process, url, token
        self.db = self.output = ""
        self.drained: asyncio.Task[None] | None = None

    def drain(self) -> None:
        """Keep reading what the server prints, so that a long run never fills the pipe (and
        blocks the server on its next log line); it is kept in `output`."""

        async def read() -> None:
            assert self.process.stdout is not None
            while line := await self.process.stdout.readline():
                self.output += line.decode()

        self.drained = asyncio.create_task(read())


async def start(db: str, *extra: str, env: dict[str, str] | None = None) -> Server:
    process = await asyncio.create_subprocess_exec(
        *TIMELINE,
        "serve",
        "--db",
        db,
        "--port",
        "0",
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    token, lines = None, []
    while True:  # the token, if any, comes before the "serving" line
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert line, "the server exited before it was ready"
        lines.append(line)
        if found := re.search(r"(tl_[A-Za-z0-9_-]+)", line):
            token = found.group(1)
        if found := re.search(r"serving (http://127\.0\.0\.1:\d+/)", line):
            server = Server(process, found.group(1), token)
            server.output = "".join(lines)
            return server


@pytest.fixture
async def fresh(database: Database) -> AsyncIterator[Server]:
    server = await start(database.url)
    server.db = database.url
    yield server
    if server.process.returncode is None:
        server.process.kill()
        await server.process.wait()


async def test_first_run_prints_a_token_that_appends(fresh: Server) -> None:
    assert fresh.token is not None
    body = event_in(company="baidu", occurred="2023-03-16", data={"model": "ERNIE Bot"})
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {fresh.token}"}
        async with http.post(fresh.url + "v1/events", json=body, headers=headers) as response:
            assert response.status == 201
        async with http.get(fresh.url + "v1/events?limit=1000") as response:
            page = await response.json()
        async with http.get(fresh.url + "v1/companies/alibaba?as_of=2023-09-12") as response:
            alibaba = await response.json()
    # An empty database starts with the seed timeline; the new event follows it.
    seeds = len((ROOT / "seeds" / "big-models-2023.ndjson").read_text().splitlines())
    assert [e["id"] for e in page["events"]][seeds:] == [body["id"]]
    assert page["head"] == seeds + 1
    assert [letter["author"] for letter in alibaba["letters"]] == ["Wu Yongming"]
    fresh.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(fresh.process.wait(), 20) == 0
    code, out, err = run("verify", "--db", fresh.db)
    assert code == 0, err
    assert out.startswith(f"chain holds: {seeds + 1} events")


async def test_a_second_start_prints_no_new_token(database: Database) -> None:
    db = database.url
    first = await start(db)
    first.process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(first.process.wait(), 20) == 0
    second = await start(db)
    assert second.token is None
    async with aiohttp.ClientSession() as http, http.get(second.url + "healthz") as response:
        seeded = (await response.json())["head"]
    assert seeded > 50  # loaded once, on the first start only
    second.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.process.wait(), 20) == 0


def test_verify_and_a_tampered_file(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    db = f"sqlite:///{path}"
    code, _, err = run("verify", "--db", db)
    assert code == 2 and f"no database at {path}" in err and not path.exists()

    async def fill(count: int) -> None:
        from events.sqlite import SQLiteEventStore
        from tests.factories import new

        store = await SQLiteEventStore.open(path)
        for i in range(count):
            await store.append([new(company="tencent", data={"model": f"Hunyuan-{i}"})])
        await store.close()

    asyncio.run(fill(0))
    code, out, _ = run("verify", "--db", db)
    assert (code, out.strip()) == (0, f"chain holds: 0 events, head hash {'0' * 64}")
    asyncio.run(fill(4))
    code, out, _ = run("verify", "--db", db)
    assert code == 0
    assert out.startswith("chain holds: 4 events")
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"Hunyuan-2", b"Hunyuan-9"))
    code, _, err = run("verify", "--db", db)
    assert code == 1
    assert "first bad position is 3" in err
    # The server checks the chain's last entries before it serves, and refuses this log ...
    code, out, err = run("serve", "--db", db, "--port", "0", "--no-seed")
    assert code == 2, out + err
    assert "hash chain is broken at position 3" in err and "--no-verify" in err
    assert "serving" not in out

    # ... unless told to serve it anyway.
    async def serve_anyway() -> None:
        server = await start(db, "--no-seed", "--no-verify")
        try:
            async with aiohttp.ClientSession() as http, http.get(server.url + "healthz") as r:
                assert (await r.json())["head"] == 4
        finally:
            server.process.kill()
            await server.process.wait()

    asyncio.run(serve_anyway())


def test_token_create_and_read_auth(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'tokens.db'}"
    assert run("migrate", "--db", db)[0] == 0  # token create needs a database: it makes none
    code, out, err = run("token", "create", "--scope", "read", "--db", db)
    token = out.strip()
    assert code == 0, err
    assert token.startswith("tl_")
    with sqlite3.connect(tmp_path / "tokens.db") as conn:
        stored = conn.execute("SELECT digest, scope FROM tokens").fetchall()
    assert len(stored) == 1
    assert stored[0][1] == "read"
    assert token not in stored[0][0]

    async def read_with(token: str) -> tuple[int, int]:
        server = await start(db, env={"TIMELINE_READ_AUTH": "1"})
        assert server.token is None  # the database already has a token
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "v1/events") as anonymous:
                without = anonymous.status
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(server.url + "v1/events", headers=headers) as response:
                with_token = response.status
        server.process.send_signal(signal.SIGTERM)
        await server.process.wait()
        return without, with_token

    assert asyncio.run(read_with(token)) == (401, 200)


def test_bad_database_url(tmp_path: Path) -> None:
    code, _, err = run("verify", "--db", "mysql://nope")
    assert code == 2
    assert "unsupported database URL" in err


def test_rebuild_gives_the_same_answers(tmp_path: Path) -> None:
    path = tmp_path / "rebuild.db"

    async def fill_and_read() -> list[object]:
        from events.sqlite import SQLiteEventStore
        from projections.rebuild import projections
        from tests.factories import batch

        store = await SQLiteEventStore.open(path, projections=projections())
        first = event_in(company="kuaishou", occurred="2023-08", data={"model": "Kuaiyi"})
        await store.append(batch(first, event_in(company="meituan", occurred="2023-Q4")))
        await store.append(
            batch(
                event_in(
                    company="kuaishou",
                    type="event.corrected",
                    data={"target": first["id"], "occurred": "2023-08-20"},
                )
            )
        )
        registered = event_in(
            company="kuaishou",
            type="company.registered",
            occurred="2011",
            data={"name": "Kuaishou"},
        )
        await store.append(
            batch(
                registered,
                event_in(
                    company="kuaishou",
                    type="event.retracted",
                    data={"target": first["id"], "reason": "wrong date"},
                ),
                event_in(
                    company="kuaishou",
                    type="event.reinstated",
                    data={"target": first["id"], "reason": "right after all"},
                ),
                event_in(
                    company="kuaishou",
                    type="event.retracted",
                    data={"target": registered["id"], "reason": "duplicate"},
                ),
            )
        )
        facts = await store.query("SELECT * FROM facts ORDER BY position, sys_from")
        summary = await store.query("SELECT * FROM companies ORDER BY company")
        await store.close()
        return [facts, summary]

    before = asyncio.run(fill_and_read())
    code, out, _ = run("rebuild", "--db", f"sqlite:///{path}")
    assert code == 0
    assert out.startswith("rebuilt the projections from 7 events")

    async def read() -> list[object]:
        from events.sqlite import SQLiteEventStore

        store = await SQLiteEventStore.open(path)
        facts = await store.query("SELECT * FROM facts ORDER BY position, sys_from")
        summary = await store.query("SELECT * FROM companies ORDER BY company")
        await store.close()
        return [facts, summary]

    assert asyncio.run(read()) == before


@needs_postgres
def test_reading_commands_refuse_a_postgresql_schema_with_no_log() -> None:
    with fresh_database("postgres") as database:
        for command in ("verify", "export", "rebuild"):
            code, _, err = run(command, "--db", database.url)
            assert code == 2, (command, err)
            assert "holds no log" in err
        assert (
            database.sql(
                "SELECT table_name FROM information_schema.tables "
                f"WHERE table_schema = '{database.schema}'"
            )
            == []
        )
        code, _, err = run("verify", "--db", "postgresql://nobody@127.0.0.1:1/none")
        assert code == 2
        assert "cannot reach PostgreSQL" in err


@needs_postgres
async def test_serve_never_prints_the_database_password() -> None:
    with fresh_database("postgres") as database:
        url = database.url.replace("://postgres@", "://postgres:hunter2@")
        assert "hunter2" in url
        server = await start(url, "--no-seed")
        try:
            assert "hunter2" not in server.output
            assert "postgres:***@" in server.output
        finally:
            server.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.process.wait(), 20) == 0
