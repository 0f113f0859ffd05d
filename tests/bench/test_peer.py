"""bench/peer.py: the peer (`eventsourcing` behind our HTTP front), served as its users would
serve it (`python -m bench.peer`), on SQLite and on PostgreSQL, with no mocks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

pytest.importorskip("eventsourcing")  # the `bench` extra

from bench import peer
from tests.api import ADMIN, AiohttpClient, make_api
from tests.databases import Database, fresh
from timeline import models

ROOT = Path(__file__).resolve().parents[2]
START_SECONDS = 60.0
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _event(company: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "model.launched",
        "company": company,
        "occurred": "2023-05",
        "data": {"model": f"Model {n}", "stage": "public"},
        **extra,
    }


def _args(database: Database) -> list[str]:
    if database.schema is None:
        return ["--db", database.url]
    return ["--db", database.url.partition("?")[0], "--schema", database.schema]


@pytest.fixture
def store(backend_name: str, tmp_path: Path) -> Iterator[Database]:
    """A fresh store of each backend for the peer: a SQLite file, or a new PostgreSQL schema
    (dropped afterwards)."""
    with fresh(backend_name, tmp_path) as database:
        yield database


class Peer:
    """`python -m bench.peer` on a free port, stopped by `stop` (SIGTERM) whatever happens."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(30):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        return self.process.returncode if self.process.returncode is not None else -1


@contextlib.asynccontextmanager
async def running(database: Database) -> AsyncIterator[Peer]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.peer",
        *_args(database),
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "TIMELINE_BOOTSTRAP_TOKEN": ADMIN, "TIMELINE_ACCESS_LOG": "0"},
    )
    assert process.stdout is not None
    server = None
    try:
        async with asyncio.timeout(START_SECONDS):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("port "), f"the peer printed {line!r} (exit {process.returncode})"
        server = Peer(process, int(line.split()[1]))
        yield server
    finally:
        if server is not None:
            await server.stop()
        elif process.returncode is None:
            process.kill()
            await process.wait()


async def test_appends_over_http_then_rebuild(
    store: Database, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    ours = await make_api(aiohttp_client, tmp_path)  # our server, for what it answers
    async with running(store) as server, aiohttp.ClientSession(server.url) as http:
        single = _event("acme", 1, source={"publisher": "Bench Daily"}, confidence="confirmed")
        response = await http.post("/v1/events", json=single, headers=AUTH)
        assert response.status == 201, await response.text()
        body = await response.json()
        models.EventsCreated.model_validate(body)
        [first] = body["events"]
        ours_body = await (await ours.client.post("/v1/events", json=single, headers=AUTH)).json()
        assert set(first) == set(ours_body["events"][0])  # shaped like ours
        assert (first["company"], first["version"], first["position"]) == ("acme", 1, 1)
        assert first["data"] == single["data"]
        assert first["source"] == {"publisher": "Bench Daily"}
        assert first["confidence"] == "confirmed"
        assert first["occurred"]["value"] == "2023-05"

        batch = {"events": [_event("acme", 2), _event("beta", 3), _event("acme", 4)]}
        response = await http.post("/v1/events", json=batch, headers=AUTH)
        assert response.status == 201, await response.text()
        body = await response.json()
        models.EventsCreated.model_validate(body)
        events = body["events"]
        assert [e["company"] for e in events] == ["acme", "beta", "acme"]  # request order
        assert [e["data"]["model"] for e in events] == ["Model 2", "Model 3", "Model 4"]
        assert [e["version"] for e in events] == [2, 1, 3]
        assert sorted(e["position"] for e in events) == [2, 3, 4]

        # What fails validation (or the token check) is answered as ours answers it.
        refused = [
            ({"type": "model.launched", "company": "acme"}, AUTH),  # no occurred, no data
            ({"events": []}, AUTH),
            (_event("Not A Slug", 5), AUTH),
            (_event("acme", 6), {"Authorization": "Bearer tl_unknown"}),
            (_event("acme", 7), {}),
        ]
        for bad, headers in refused:
            theirs = await http.post("/v1/events", json=bad, headers=headers)
            mine = await ours.client.post("/v1/events", json=bad, headers=headers)
            assert 400 <= mine.status < 500
            assert theirs.status == mine.status, await theirs.text()
            assert (await theirs.json())["type"] == (await mine.json())["type"]
        response = await http.get("/healthz")
        assert (await response.json())["head"] == 4
        assert await server.stop() == 0  # SIGTERM: a clean exit

    read, rate = await asyncio.to_thread(peer.rebuild_rate, *_store_args(store))
    assert read == 4
    assert rate > 0


def _store_args(database: Database) -> tuple[str, str | None]:
    args = _args(database)
    return args[1], args[3] if len(args) > 2 else None


def test_load_save_rate_and_rebuild(store: Database) -> None:
    url, schema = _store_args(store)
    peer.load(url, schema, 2_500, 7)  # saves of 1000, 1000 and 500 events over 7 companies
    assert peer.rebuild_rate(url, schema)[0] == 2_500
    assert peer.save_rate(url, schema, 20) > 0
    assert peer.rebuild_rate(url, schema)[0] == 2_500 + 21  # the saves' aggregate, created
