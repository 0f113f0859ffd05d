"""Two `timeline serve` processes on one PostgreSQL database behave as one service: one log,
and every subscriber of either sees every event once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import signal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from httpx_sse import aconnect_sse

from tests.databases import Database, fresh, needs_postgres
from tests.factories import event_in
from tests.timeline.test_cli import Server, run, start

ADMIN = "tl_processes-admin"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
COMPANIES = ["alibaba", "baidu", "tencent", "huawei"]


class Reader:
    """An SSE subscriber that keeps what it receives, checking order on the way. `cut` tells
    that its stream ended with the process that served it."""

    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.seen: list[dict[str, Any]] = []
        self.last = 0  # the last id received, a checkpoint's too
        self.cut = False
        self.arrived = asyncio.Event()
        self.task = asyncio.create_task(self._read(http, url))

    async def _read(self, http: httpx.AsyncClient, url: str) -> None:
        try:
            await self._stream(http, url)
        except httpx.TransportError:  # the process was killed under it
            self.cut = True

    async def _stream(self, http: httpx.AsyncClient, url: str) -> None:
        headers = {"Last-Event-ID": str(self.last)} if self.last else {}
        async with aconnect_sse(http, "GET", url, headers=headers) as source:
            assert source.response.status_code == 200, await source.response.aread()
            async for sse in source.aiter_sse():
                if not sse.id:
                    continue
                position = int(sse.id)
                assert position > self.last, "positions only go up, never repeat"
                self.last = position
                if sse.event != "checkpoint":
                    self.seen.append(json.loads(sse.data))
                    self.arrived.set()

    async def until(self, count: int) -> list[int]:
        """The positions received, once there are `count` of them (or the stream ended)."""
        while len(self.seen) < count and not self.task.done():
            await self.arrived.wait()
            self.arrived.clear()
        if self.task.done():
            self.task.result()  # raises what went wrong
        self.task.cancel()
        return self.positions()

    def positions(self) -> list[int]:
        return [event["position"] for event in self.seen]


class Resuming(Reader):
    """A dashboard's subscriber: when the process serving it dies, it resumes from its last id
    on whichever process is up."""

    def __init__(self, http: httpx.AsyncClient, servers: list[Server], query: str) -> None:
        self.servers, self.resumed = servers, 0
        super().__init__(http, query)

    async def _read(self, http: httpx.AsyncClient, query: str) -> None:
        while True:
            up = [server for server in self.servers if server.process.returncode is None]
            with contextlib.suppress(httpx.TransportError):
                await self._stream(http, f"{random.choice(up).url}v1/stream?{query}")
            self.resumed += 1
            await asyncio.sleep(0.05)  # both may be down at once: not in a tight loop


EVENTS, WRITERS = 5_000, 8


def _bodies(rng: random.Random, mine: str, version: int) -> list[dict[str, Any]]:
    """The next append of writer `mine` whose own company is at `version`: every third a
    single with expected_version, the others batches of 1-20 over shared companies, led by
    one of its own (so that its own company's count stays exact)."""
    if version % 3 == 0:
        return [event_in(company=mine, expected_version=version)]
    bodies = [event_in(company=rng.choice(COMPANIES)) for _ in range(rng.randint(1, 20))]
    bodies[0]["company"] = mine
    return bodies


async def _writer(http: httpx.AsyncClient, base: str, n: int, events: int) -> list[dict[str, Any]]:
    """Appends `events` events or a few more through one process: every append must succeed."""
    rng, stored, version = random.Random(n), [], 0
    while len(stored) < events:
        body = {"events": _bodies(rng, f"writer-{n}", version)}
        response = await http.post(f"{base}v1/events", json=body, headers=HEADERS)
        assert response.status_code == 201, response.text
        stored += response.json()["events"]
        version += 1
    return stored


async def _log(http: httpx.AsyncClient, base: str) -> list[dict[str, Any]]:
    """The whole log as one process returns it, page by page."""
    events: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        page = (await http.get(f"{base}v1/events?after={after}&limit=1000")).json()
        events += page["events"]
        after = page["next"]
    return events


async def _two_processes(database: Database) -> None:
    env = {"TIMELINE_BOOTSTRAP_TOKEN": ADMIN}
    servers: list[Server] = [await start(database.url, "--no-seed", env=env)]
    servers.append(await start(database.url, "--no-seed", env=env))
    bases = [server.url for server in servers]
    total = 0
    async with httpx.AsyncClient(timeout=60) as http:
        try:
            readers = [
                Reader(http, f"{base}v1/stream?after=0{query}")
                for base in bases
                for query in ("", "&company=baidu")
            ]
            stored = await asyncio.gather(
                *(_writer(http, bases[n % 2], n, EVENTS // WRITERS) for n in range(WRITERS))
            )
            appended = sorted((e for events in stored for e in events), key=lambda e: e["position"])
            total = len(appended)
            assert total >= EVENTS
            assert [e["position"] for e in appended] == list(range(1, total + 1))
            everything = [e["position"] for e in appended]
            baidu = [e["position"] for e in appended if e["company"] == "baidu"]
            for index, reader in enumerate(readers):
                expected = everything if index % 2 == 0 else baidu
                assert await asyncio.wait_for(reader.until(len(expected)), 60) == expected
            for base in bases:  # each process's feed has reached the database's head
                health = (await http.get(f"{base}healthz")).json()
                assert health == {"status": "ok", "head": total, "hub": total}
            logs = [await _log(http, base) for base in bases]
            assert logs[0] == logs[1] == appended
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


class Proxy:
    """A TCP relay to PostgreSQL that the test can cut and restore: the database goes away
    for the service behind it, and comes back, without touching the server."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.links):
            writer.transport.abort()
        await self.server.wait_closed()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.links.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.transport.abort()
                self.links.discard(sink)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@needs_postgres
async def test_health_turns_503_while_the_database_is_away_and_back_after() -> None:
    with fresh("postgres") as database:
        parts = urlsplit(database.url)
        proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.open()
        url = database.url.replace(f"@{parts.hostname}:{parts.port}", f"@127.0.0.1:{proxy.port}")
        assert str(proxy.port) in url
        server = await start(url, "--no-seed", env={"TIMELINE_BOOTSTRAP_TOKEN": ADMIN})
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                body = {"events": [event_in(company="baidu")]}
                response = await http.post(f"{server.url}v1/events", json=body, headers=HEADERS)
                assert response.status_code == 201
                assert (await http.get(f"{server.url}healthz")).json()["head"] == 1
                await proxy.cut()
                health = await http.get(f"{server.url}healthz")
                assert health.status_code == 503
                assert health.headers["content-type"].startswith("application/problem+json")
                assert health.json()["type"] == "urn:timeline:problem:unavailable"
                await proxy.open()  # the same port: the database is back
                health = await http.get(f"{server.url}healthz")
                assert health.status_code == 200, health.text
                response = await http.post(f"{server.url}v1/events", json=body, headers=HEADERS)
                assert response.status_code == 200  # the same event again: a retry
                more = {"events": [event_in(company="baidu")]}
                response = await http.post(f"{server.url}v1/events", json=more, headers=HEADERS)
                assert response.status_code == 201, response.text
                assert response.json()["events"][0]["position"] == 2
        finally:
            server.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.process.wait(), 30) == 0
            await proxy.cut()


@needs_postgres
async def test_a_listen_connection_killed_by_the_database_is_re_established() -> None:
    with fresh("postgres") as database:
        env = {"TIMELINE_BOOTSTRAP_TOKEN": ADMIN}
        servers = [await start(database.url, "--no-seed", env=env) for _ in range(2)]
        listening = (
            "SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN timeline' "
            "AND datname = current_database()"
        )
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                while len(database.sql(listening)) < 2:  # noqa: ASYNC110 (state in the server)
                    await asyncio.sleep(0.05)
                before = {pid for (pid,) in database.sql(listening)}
                reader = Reader(http, f"{servers[1].url}v1/stream?after=0")
                database.sql(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query = 'LISTEN timeline' AND datname = current_database()"
                )
                # Both processes listen again, on new connections.
                while True:
                    now = {pid for (pid,) in database.sql(listening)}
                    if len(now) == 2 and not now & before:
                        break
                    await asyncio.sleep(0.05)
                appended = []
                for _ in range(5):
                    body = {"events": [event_in(company="baidu")]}
                    response = await http.post(
                        f"{servers[0].url}v1/events", json=body, headers=HEADERS
                    )
                    appended.append(response.json()["events"][0]["position"])
                assert await asyncio.wait_for(reader.until(5), 30) == appended
        finally:
            for server in servers:
                server.process.send_signal(signal.SIGTERM)
            for server in servers:
                assert await asyncio.wait_for(server.process.wait(), 30) == 0


class Receiver:
    """A webhook receiver: records each delivery's `webhook-id`, answers 204."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.ids.append(int(request.headers["webhook-id"]))
        self.arrived.set()
        return web.Response(status=204)


async def _append_somewhere(
    http: httpx.AsyncClient, servers: list[Server], first: int, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """Append through process `first`, or whichever answers (a retry of the same body is
    idempotent: it answers 200 with what the first attempt stored)."""
    while True:
        for server in servers[first:] + servers[:first]:
            if server.process.returncode is not None:
                continue
            try:
                response = await http.post(f"{server.url}v1/events", json=body, headers=HEADERS)
            except httpx.TransportError:
                continue
            if response.status_code in (200, 201):
                events: list[dict[str, Any]] = response.json()["events"]
                return events
            assert response.status_code == 503, response.text  # its database session went
        await asyncio.sleep(0.05)  # both down at once: try again


class Load:
    """Eight writers appending through two processes that are SIGKILLed and started again."""

    def __init__(self, http: httpx.AsyncClient, servers: list[Server]) -> None:
        self.http, self.servers = http, servers
        self.answered: dict[int, dict[str, Any]] = {}  # position -> event, from 200s and 201s
        self.going = True

    async def writer(self, n: int) -> None:
        rng, version = random.Random(n), 0
        while self.going or len(self.answered) < EVENTS:
            body = {"events": _bodies(rng, f"writer-{n}", version)}
            for event in await _append_somewhere(self.http, self.servers, n % 2, body):
                self.answered[event["position"]] = event
            version += 1


@needs_postgres
async def test_sigkills_under_load_lose_nothing_and_webhooks_go_out_once() -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    target = TestServer(app, host="127.0.0.1")
    await target.start_server()
    rng = random.Random(12)
    with fresh("postgres") as database:
        env = {"TIMELINE_BOOTSTRAP_TOKEN": ADMIN, "TIMELINE_WEBHOOK_BACKOFF_SECONDS": "0.05"}
        servers: list[Server] = []
        readers: list[tuple[Server, Reader, str]] = []  # each process's own subscribers

        async def launch() -> Server:
            server = await start(database.url, "--no-seed", env=env)
            server.drain()
            for company in ("", "baidu"):
                query = f"&company={company}" if company else ""
                readers.append(
                    (server, Reader(http, f"{server.url}v1/stream?after=0{query}"), company)
                )
            return server

        async with httpx.AsyncClient(timeout=30) as http:
            servers += [await launch(), await launch()]
            try:
                created = await http.post(
                    f"{servers[0].url}v1/webhooks",
                    json={"url": f"http://127.0.0.1:{target.port}/hook", "after": 0},
                    headers=HEADERS,
                )
                assert created.status_code == 201, created.text
                hopping = [
                    Resuming(http, servers, "after=0"),
                    Resuming(http, servers, "after=0&company=baidu"),
                ]
                load = Load(http, servers)
                writers = asyncio.gather(*(load.writer(n) for n in range(WRITERS)))
                for _ in range(6):  # at random moments, one of the two (possibly mid-commit)
                    await asyncio.sleep(rng.uniform(0.2, 1.0))
                    victim = rng.randrange(2)
                    servers[victim].process.kill()
                    await servers[victim].process.wait()
                    servers[victim] = await launch()
                load.going = False
                await asyncio.wait_for(writers, 120)
                head = (await http.get(f"{servers[0].url}v1/digest")).json()["position"]
                log = await _log(http, servers[0].url)
                # Every append answered 200 or 201 is in the log, and the log holds nothing else.
                assert sorted(load.answered) == list(range(1, head + 1))
                assert [e["id"] for e in log] == [load.answered[e["position"]]["id"] for e in log]
                everything = list(range(1, head + 1))
                baidu = [e["position"] for e in log if e["company"] == "baidu"]
                # Resumed on the other process each time, it has every event once, in order.
                for reader, expected in zip(hopping, (everything, baidu), strict=True):
                    assert await asyncio.wait_for(reader.until(len(expected)), 60) == expected
                    assert reader.resumed > 0
                for server, reader, company in readers:
                    expected = baidu if company else everything
                    if server.process.returncode is None:  # a survivor's subscriber
                        assert await asyncio.wait_for(reader.until(len(expected)), 60) == expected
                    else:  # cut with its process: what it got is a prefix, without a gap
                        assert reader.cut or reader.task.done()
                        assert reader.positions() == expected[: len(reader.positions())]
                while not receiver.ids or receiver.ids[-1] < head:
                    receiver.arrived.clear()
                    await asyncio.wait_for(receiver.arrived.wait(), 60)
                digests = [(await http.get(f"{s.url}v1/digest")).json() for s in servers]
                assert digests[0] == digests[1]
                code, out, err = run("verify", "--db", database.url)
                assert code == 0, err
                assert out.startswith(f"chain holds: {head} events")
            finally:
                for server in servers:
                    if server.process.returncode is None:
                        server.process.send_signal(signal.SIGTERM)
                        assert await asyncio.wait_for(server.process.wait(), 30) == 0
                await target.close()
    # In order, each once; a delivery in flight at a kill may come again, with its id.
    once = [p for i, p in enumerate(receiver.ids) if i == 0 or p != receiver.ids[i - 1]]
    assert once == list(range(1, head + 1))


def test_workers_above_one_are_refused_on_sqlite(tmp_path: Path) -> None:
    code, _, err = run("serve", "--workers", "2", "--db", f"sqlite:///{tmp_path / 'one.db'}")
    assert code == 2
    assert "--workers above 1 needs PostgreSQL" in err
    assert not (tmp_path / "one.db").exists()


@needs_postgres
async def test_workers_share_a_port_are_restarted_and_stop_together() -> None:
    with fresh("postgres") as database:
        env = {"TIMELINE_BOOTSTRAP_TOKEN": ADMIN}
        server = await start(database.url, "--no-seed", "--workers", "2", env=env)
        found = re.findall(r"worker (\d+) is serving \(pid (\d+)\)", server.output)
        workers = {int(number): int(pid) for number, pid in found}
        assert sorted(workers) == [1, 2] and "with 2 workers" in server.output
        pids = [workers[1], workers[2]]
        assert server.process.stdout is not None
        try:
            # No keep-alive: each request a new connection, which a live worker accepts.
            limits = httpx.Limits(max_keepalive_connections=0)
            async with httpx.AsyncClient(timeout=30, limits=limits) as http:
                os.kill(pids[0], signal.SIGKILL)
                # The supervisor starts the lost one again. (Connections the kernel had queued
                # for the killed one are reset: clients retry those.)
                line = ""
                while "worker 1 is serving" not in line:
                    raw = await asyncio.wait_for(server.process.stdout.readline(), 30)
                    assert raw, "the supervisor exited"
                    line = raw.decode()
                restarted = int(re.findall(r"pid (\d+)", line)[0])
                assert restarted not in pids
                positions = []
                for _ in range(40):  # fresh connections: the kernel spreads them over both
                    response = await http.post(
                        f"{server.url}v1/events",
                        json={"events": [event_in(company="baidu")]},
                        headers={**HEADERS, "Connection": "close"},
                    )
                    assert response.status_code == 201, response.text
                    positions.append(response.json()["events"][0]["position"])
                assert positions == list(range(1, 41))
        finally:
            server.process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(server.process.wait(), 30) == 0
        for pid in (pids[1], restarted):  # every worker stopped with the supervisor
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)


async def test_what_was_appended_through_one_process_is_readable_at_once_through_the_other(
    database: Database,
) -> None:
    # On SQLite (two processes on one file) nothing tells the other process of a commit, and
    # with this poll it would not look for an hour: only the read itself can find it.
    env = {"TIMELINE_BOOTSTRAP_TOKEN": ADMIN, "TIMELINE_FEED_POLL_SECONDS": "3600"}
    servers = [await start(database.url, "--no-seed", env=env) for _ in range(2)]
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(20):
                body = {"events": [event_in(company="baidu")]}
                response = await http.post(f"{servers[0].url}v1/events", json=body, headers=HEADERS)
                position = response.json()["events"][0]["position"]
                other = servers[1].url
                state = await http.get(f"{other}v1/companies/baidu?known_at={position}")
                assert state.status_code == 200, state.text
                assert state.json()["known_at"]["position"] == position
                # A stream from the new head: no 409, although this process may not have
                # heard of that position yet.
                async with aconnect_sse(http, "GET", f"{other}v1/stream?after={position}") as s:
                    assert s.response.status_code == 200, await s.response.aread()
    finally:
        for server in servers:
            server.process.send_signal(signal.SIGTERM)
        for server in servers:
            assert await asyncio.wait_for(server.process.wait(), 30) == 0
