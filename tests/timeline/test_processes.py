"""Two `timeline serve` processes on one PostgreSQL database behave as one service: one log,
and every subscriber of either sees every event once, in order."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from tests.databases import Database, fresh, needs_postgres
from tests.factories import event_in
from tests.timeline.test_cli import Server, run, start

ADMIN = "tl_processes-admin"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
COMPANIES = ["alibaba", "baidu", "tencent", "huawei"]


class Reader:
    """An SSE subscriber that keeps what it receives, checking order on the way."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.seen: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._read(http, url))

    async def _read(self, http: httpx.AsyncClient, url: str) -> None:
        last = 0
        async with aconnect_sse(http, "GET", url) as source:
            async for sse in source.aiter_sse():
                if not sse.id:
                    continue
                position = int(sse.id)
                assert position > last, "positions only go up, never repeat"
                last = position
                if sse.event != "checkpoint":
                    self.seen.append(json.loads(sse.data))
                    self.arrived.set()

    async def until(self, count: int) -> list[int]:
        """The positions received, once there are `count` of them (or the stream failed)."""
        while len(self.seen) < count and not self.task.done():
            await self.arrived.wait()
            self.arrived.clear()
        if self.task.done():
            self.task.result()  # raises what went wrong
        self.task.cancel()
        return [event["position"] for event in self.seen]


async def _writer(http: httpx.AsyncClient, base: str, n: int, appends: int) -> list[dict[str, Any]]:
    """Singles and batches of 1-5 over shared companies, and its own company with
    expected_version: every append must succeed."""
    rng = random.Random(n)
    mine, stored = f"writer-{n}", []
    for version in range(appends):
        if version % 3 == 0:
            bodies = [event_in(company=mine, expected_version=version)]
        else:
            bodies = [event_in(company=rng.choice(COMPANIES)) for _ in range(rng.randint(1, 5))]
            bodies[0]["company"] = mine  # keeps the count of its own company exact
        response = await http.post(f"{base}v1/events", json={"events": bodies}, headers=HEADERS)
        assert response.status_code == 201, response.text
        stored += response.json()["events"]
    return stored


async def _two_processes(database: Database) -> None:
    env = {"TIMELINE_BOOTSTRAP_TOKEN": ADMIN}
    servers: list[Server] = [await start(database.url, "--no-seed", env=env)]
    servers.append(await start(database.url, "--no-seed", env=env))
    bases = [server.url for server in servers]
    writers, appends = 8, 40
    total = 0
    async with httpx.AsyncClient(timeout=60) as http:
        try:
            readers = [
                Reader(http, f"{base}v1/stream?after=0{query}")
                for base in bases
                for query in ("", "&company=baidu")
            ]
            stored = await asyncio.gather(
                *(_writer(http, bases[n % 2], n, appends) for n in range(writers))
            )
            appended = sorted((e for events in stored for e in events), key=lambda e: e["position"])
            total = len(appended)
            assert [e["position"] for e in appended] == list(range(1, total + 1))
            everything = [e["position"] for e in appended]
            baidu = [e["position"] for e in appended if e["company"] == "baidu"]
            for index, reader in enumerate(readers):
                expected = everything if index % 2 == 0 else baidu
                assert await asyncio.wait_for(reader.until(len(expected)), 60) == expected
            digests = [(await http.get(f"{base}v1/digest")).json() for base in bases]
            assert digests[0] == digests[1]
            assert digests[0]["position"] == total
        finally:
            for server in servers:
                server.process.send_signal(signal.SIGTERM)
            for server in servers:
                assert await asyncio.wait_for(server.process.wait(), 30) == 0
    code, out, err = run("verify", "--db", database.url)
    assert code == 0, err
    assert out.startswith(f"chain holds: {total} events")


@needs_postgres
async def test_two_processes_serve_one_log_and_one_feed() -> None:
    with fresh("postgres") as database:
        await _two_processes(database)
