"""GET /v1/stream through a real server, read by an independent SSE client (httpx-sse)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestServer
from httpx_sse import aconnect_sse

from events.entries import LogEntry
from tests.databases import Database
from tests.factories import event_in
from timeline.app import create_app
from timeline.config import Settings
from timeline.filters import EventFilter
from timeline.hub import Hub
from timeline.keys import HUB, STORE

TOKEN = "tl_feed"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
COMPANIES = ["alibaba", "baidu", "tencent", "huawei", "meituan"]
TYPES = ["model.launched", "team.formed", "statement.made"]


class Live:
    def __init__(self, server: TestServer, http: httpx.AsyncClient) -> None:
        self.server, self.http = server, http
        self.base = f"http://127.0.0.1:{server.port}"

    async def append(self, body: Any) -> list[dict[str, Any]]:
        response = await self.http.post(self.base + "/v1/events", json=body, headers=HEADERS)
        assert response.status_code in (200, 201), response.text
        events: list[dict[str, Any]] = response.json()["events"]
        return events


async def start(database: Database, **settings: Any) -> Live:
    app = create_app(Settings(db=database.url, bootstrap_token=TOKEN, **settings))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return Live(server, httpx.AsyncClient(timeout=30))


@pytest.fixture
async def live(database: Database) -> AsyncIterator[Live]:
    running = await start(database)
    yield running
    await running.http.aclose()
    await running.server.close()


def varied(n: int, rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(TYPES)
    data = {
        "model.launched": {"model": f"M{n}"},
        "team.formed": {"name": f"T{n}"},
        "statement.made": {"speaker": f"S{n}", "summary": "s"},
    }[kind]
    return event_in(company=rng.choice(COMPANIES), type=kind, occurred="2023-05", data=data)


async def test_twenty_subscribers_resume_without_gap_or_duplicate(live: Live) -> None:
    rng = random.Random(20)
    total = 10_000
    plans = []
    for _ in range(20):
        companies = rng.sample(COMPANIES, rng.randint(1, 3)) if rng.random() < 0.7 else []
        types = rng.sample(TYPES, rng.randint(1, 2)) if rng.random() < 0.4 else []
        plans.append((companies, types, random.Random(rng.random())))

    async def subscribe(companies: list[str], types: list[str], dice: random.Random) -> Any:
        seen: list[int] = []
        last = 0
        query = "".join(f"&company={c}" for c in companies) + "".join(f"&type={t}" for t in types)
        while last < total:
            budget = dice.randint(1, 2000)  # disconnect after this many messages
            headers = {"Last-Event-ID": str(last)} if last else {}
            url = f"{live.base}/v1/stream?after=0{query}"
            async with aconnect_sse(live.http, "GET", url, headers=headers) as source:
                assert source.response.headers["content-type"].startswith("text/event-stream")
                async for sse in source.aiter_sse():
                    if not sse.id:
                        continue  # the retry block, pings
                    position = int(sse.id)
                    assert position > last, "positions only go up, never repeat"
                    last = position
                    if sse.event != "checkpoint":
                        event = json.loads(sse.data)
                        assert event["position"] == position
                        assert sse.event == event["type"]
                        seen.append(position)
                    budget -= 1
                    if budget == 0 or last >= total:
                        break
        return seen

    readers = [asyncio.create_task(subscribe(*plan)) for plan in plans]
    appended: list[dict[str, Any]] = []
    for start_at in range(0, total, 100):
        batch = [varied(n, rng) for n in range(start_at, start_at + 100)]
        appended += await live.append({"events": batch})
        await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(*readers), 300)
    assert [e["position"] for e in appended] == list(range(1, total + 1))
    for (companies, types, _), seen in zip(plans, results, strict=True):
        expected = [
            e["position"]
            for e in appended
            if (not companies or e["company"] in companies) and (not types or e["type"] in types)
        ]
        assert seen == expected


async def test_a_slow_reader_is_cut_off_and_resumes(database: Database) -> None:
    live = await start(database, feed_queue_size=2)
    try:
        big = "x" * 19_000
        async with live.http.stream("GET", live.base + "/v1/stream?after=0") as stalled:
            assert stalled.status_code == 200
            # Never read: the server's writes back up, its queue fills, and it must cut us off.
            for n in range(300):
                await live.append(
                    event_in(
                        company="baidu",
                        type="statement.made",
                        data={"speaker": f"S{n}", "summary": big},
                    )
                )
                if live.server.app[HUB].dropped:
                    break
            assert live.server.app[HUB].dropped == 1
            ids: list[int] = []

            async def drain() -> None:
                async for line in stalled.aiter_lines():
                    if line.startswith("id: "):
                        ids.append(int(line[4:]))

            with pytest.raises(httpx.RemoteProtocolError):  # the server closed the connection
                await drain()
        head = (await live.http.get(live.base + "/healthz")).json()["head"]
        scraped = (await live.http.get(live.base + "/metrics")).text
        assert "timeline_feed_dropped_subscribers_total 1.0" in scraped
        assert f"timeline_appended_events_total {head}.0" in scraped
        last = ids[-1] if ids else 0
        async with aconnect_sse(
            live.http, "GET", live.base + "/v1/stream", headers={"Last-Event-ID": str(last)}
        ) as source:
            async for sse in source.aiter_sse():
                if sse.id:
                    ids.append(int(sse.id))
                    if int(sse.id) == head:
                        break
        assert ids == list(range(1, head + 1))
    finally:
        await live.http.aclose()
        await live.server.close()


async def test_shutdown_with_open_streams_finishes_cleanly(database: Database) -> None:
    live = await start(database)
    await live.append(event_in(company="baidu"))
    started = [asyncio.Event() for _ in range(5)]

    async def follow(ready: asyncio.Event) -> list[str]:
        ids = []
        async with aconnect_sse(live.http, "GET", live.base + "/v1/stream?after=0") as source:
            async for sse in source.aiter_sse():
                ids.append(sse.id)
                if sse.id == "1":
                    ready.set()
        return ids

    readers = [asyncio.create_task(follow(ready)) for ready in started]
    for ready in started:
        await asyncio.wait_for(ready.wait(), 30)
    await asyncio.wait_for(live.server.close(), 30)
    for ids in await asyncio.wait_for(asyncio.gather(*readers), 30):
        assert "1" in ids  # the replayed event, then a clean end of stream
    await live.http.aclose()


async def test_headers_retry_ping_and_included_state(database: Database) -> None:
    live = await start(database, feed_ping_seconds=0.2)
    try:
        (first,) = await live.append(event_in(company="tencent", occurred="2023-05-01"))
        async with live.http.stream("GET", live.base + "/v1/stream?after=0&include=state") as r:
            assert r.headers["cache-control"] == "no-store"
            assert r.headers["x-accel-buffering"] == "no"
            lines: list[str] = []
            async for line in r.aiter_lines():
                lines.append(line)
                if line == ": ping":
                    break
        assert lines[:2] == ["retry: 3000", ""]
        data = json.loads(next(line for line in lines if line.startswith("data: "))[6:])
        assert data["event"]["id"] == first["id"]
        assert data["state"]["known_at"]["position"] == 1
        assert [m["model"] for m in data["state"]["models"]] == [first["data"]["model"]]
    finally:
        await live.http.aclose()
        await live.server.close()


async def test_bad_parameters_are_refused_before_the_stream(live: Live) -> None:
    await live.append(event_in(company="baidu"))
    for query, headers, status, where in [
        ("after=-1", {}, 400, ["query", "after"]),
        ("after=soon", {}, 400, ["query", "after"]),
        ("company=Bad_Slug", {}, 400, ["query", "company"]),
        ("type=rumor", {}, 400, ["query", "type"]),
        ("include=everything", {}, 400, ["query", "include"]),
        ("", {"Last-Event-ID": "x"}, 400, ["header", "Last-Event-ID"]),
        ("after=2", {}, 409, None),
        ("", {"Last-Event-ID": "5"}, 409, None),
    ]:
        response = await live.http.get(f"{live.base}/v1/stream?{query}", headers=headers)
        assert response.status_code == status, query
        assert response.headers["content-type"].startswith("application/problem+json")
        if where is not None:
            assert response.json()["errors"][0]["loc"] == where


async def _raw_stream(live: Live, version: str, until: bytes) -> bytes:
    """GET /v1/stream over a bare socket; everything received until `until` has arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", live.server.port)
    writer.write(f"GET /v1/stream?after=0 HTTP/{version}\r\nHost: t\r\n\r\n".encode())
    received = b""
    try:
        async with asyncio.timeout(10):
            while until not in received:
                chunk = await reader.read(65536)
                assert chunk, f"connection closed; received {received!r}"
                received += chunk
                if b"retry:" in received and b"id: " not in received:
                    await live.append({"events": [event_in(company="baidu") for _ in range(3)]})
    finally:
        writer.close()
    return received


def _dechunk(body: bytes) -> bytes:
    """HTTP/1.1 chunked framing, parsed strictly: every chunk's size matches its bytes."""
    payload = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        payload += rest[:size]
        assert rest[size : size + 2] == b"\r\n", "a chunk is not followed by CRLF"
        body = rest[size + 2 :]
    return payload


@pytest.mark.parametrize("version", ["1.1", "1.0"])
async def test_live_commits_are_framed_for_the_client_s_http_version(
    live: Live, version: str
) -> None:
    await live.append(event_in(company="alibaba"))  # replayed; positions 2..4 arrive live
    received = await _raw_stream(live, version, until=b"id: 4\n")
    head, _, body = received.partition(b"\r\n\r\n")
    if version == "1.1":
        assert b"transfer-encoding: chunked" in head.lower()
        text = _dechunk(body)
    else:
        assert b"transfer-encoding" not in head.lower()
        text = body
    messages = [m for m in text.decode().split("\n\n") if m.startswith("id: ")]
    assert [m.splitlines()[0] for m in messages] == [f"id: {n}" for n in range(1, 5)]
    assert text.startswith(b"retry: 3000\n\n")


async def test_commits_close_together_are_fanned_out_together() -> None:
    def entry(position: int) -> LogEntry:
        return LogEntry(
            f"id-{position}", "model.launched", "baidu", '{"value":"2023"}', "2023-01-01",
            "2024-01-01", "{}", None, "reported", position, position, "2023-01-01T00:00:00.000000Z",
            "0" * 64,
        )  # fmt: skip

    hub = Hub(0, coalesce_seconds=0.05, spacing=1e9)  # as if each fan-out took ages
    subscriber, head = hub.subscribe(EventFilter())
    assert head == 0
    hub.publish([entry(1)])  # the first after a quiet spell goes out at once
    hub.publish([entry(2)])
    hub.publish([entry(3), entry(4)])  # these two commits ride together, a little later
    assert hub.head == 4
    first = subscriber.queue.get_nowait()
    assert [event.position for event, _ in first] == [1]
    assert subscriber.queue.empty()
    async with asyncio.timeout(30):
        later = await subscriber.queue.get()
    assert [event.position for event, _ in later] == [2, 3, 4]
    assert b"".join(message for _, message in later) in later.chunk()
    hub.publish([entry(5)])
    hub.close()  # what is due is fanned out before the streams end
    assert [event.position for event, _ in subscriber.queue.get_nowait()] == [5]  # type: ignore[union-attr]
    assert subscriber.queue.get_nowait() is None

    cheap = Hub(0, coalesce_seconds=0.05, spacing=0)  # as if fan-outs cost nothing
    subscriber, _ = cheap.subscribe(EventFilter())
    for position in (1, 2, 3):
        cheap.publish([entry(position)])
    assert [len(subscriber.queue.get_nowait()) for _ in range(3)] == [1, 1, 1]


async def _messages_until(
    live: Live, query: str, last_id: str, passed: tuple[str, asyncio.Event] | None = None
) -> list[str]:
    """The ids of the events a stream sends (checkpoints aside), until the event `last_id`;
    `passed`: an id, and the event to set once it has been sent."""
    ids: list[str] = []
    async with aconnect_sse(live.http, "GET", f"{live.base}/v1/stream?{query}") as source:
        async for sse in source.aiter_sse():
            if sse.id and sse.event != "checkpoint":
                ids.append(json.loads(sse.data)["id"])
                if passed is not None and ids[-1] == passed[0]:
                    passed[1].set()
                if ids[-1] == last_id:
                    return ids
    raise AssertionError(f"the stream ended before {last_id}; it sent {ids}")


def _amend(kind: str, target: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {"target": target["id"]}
    data.update({"event.corrected": {"occurred": "2023-06"}}.get(kind, {"reason": "why"}))
    return event_in(company=target["company"], type=kind, data=data)


async def test_a_type_filter_passes_the_amendments_of_what_it_passes(live: Live) -> None:
    """A dashboard that follows only launches must hear of their corrections, retractions and
    reinstatements (whose own type it does not ask for), in the replay and live alike, and of
    nothing that amends what it does not follow."""
    launch, team = await live.append(
        {
            "events": [
                event_in(company="baidu", type="model.launched", data={"model": "ERNIE"}),
                event_in(company="baidu", type="team.formed", data={"name": "Lab"}),
            ]
        }
    )
    (corrected,) = await live.append(_amend("event.corrected", launch))
    await live.append(_amend("event.retracted", team))
    (hello,) = await live.append(event_in(company="baidu", type="model.launched"))
    end = event_in(company="baidu", type="model.launched")
    end_tencent = event_in(company="tencent", type="model.launched")
    queries = [
        "after=0&type=model.launched",
        "after=0&type=model.launched&company=baidu",
        "after=0&type=model.launched&type=statement.made",
    ]
    replayed = [asyncio.Event() for _ in queries]
    readers = [
        asyncio.create_task(_messages_until(live, query, end["id"], (hello["id"], done)))
        for query, done in zip(queries, replayed, strict=True)
    ]
    elsewhere = asyncio.create_task(
        _messages_until(live, "after=0&type=model.launched&company=tencent", end_tencent["id"])
    )
    # What follows goes out live: every reader has had the replay, up to `hello`.
    async with asyncio.timeout(30):
        for done in replayed:
            await done.wait()
    (retracted,) = await live.append(_amend("event.retracted", launch))
    await live.append(_amend("event.corrected", team))
    (reinstated,) = await live.append(_amend("event.reinstated", launch))
    await live.append({"events": [end, end_tencent]})
    expected = [launch["id"], corrected["id"], hello["id"], retracted["id"], reinstated["id"]]
    for reader in readers:
        assert await asyncio.wait_for(reader, 30) == [*expected, end["id"]]
    assert await asyncio.wait_for(elsewhere, 30) == [end_tencent["id"]]


async def test_an_amendment_holding_a_nul_still_passes_a_type_filter(live: Live) -> None:
    """Finding an amendment's target must not decode its other strings: PostgreSQL's JSON
    functions refuse \\u0000, and one such entry, forever in the log, stopped every filtered
    replay (and webhook) that reached it."""
    (launch,) = await live.append(event_in(company="baidu", type="model.launched"))
    nul = event_in(
        company="baidu",
        type="event.corrected",
        data={"target": launch["id"], "data": {"model": "a\u0000b"}},
    )
    (correction,) = await live.append(nul)
    (retraction,) = await live.append(_amend("event.retracted", launch))
    ids = await _messages_until(live, "after=0&type=model.launched", retraction["id"])
    assert ids == [launch["id"], correction["id"], retraction["id"]]


async def test_live_commits_wait_behind_a_target_look_up(live: Live) -> None:
    """While a stream's task looks up an amendment's target, the commits after it must queue
    behind it, not be written to the socket first (the amendment would then be skipped as
    already passed). The look-up is held until a later commit has been published."""
    (launch,) = await live.append(event_in(company="baidu", type="model.launched"))
    store = live.server.app[STORE]
    real_get = store.get
    asked, release = asyncio.Event(), asyncio.Event()

    async def held_get(event_id: str) -> LogEntry | None:
        asked.set()
        await release.wait()
        return await real_get(event_id)

    store.get = held_get  # type: ignore[method-assign]
    end = event_in(company="baidu", type="model.launched")
    reader = asyncio.create_task(_messages_until(live, "type=model.launched", end["id"]))
    async with asyncio.timeout(30):
        while not live.server.app[HUB].subscribers:  # noqa: ASYNC110 (the hub has no event)
            await asyncio.sleep(0.01)
        (retraction,) = await live.append(_amend("event.retracted", launch))
        await asked.wait()  # the stream's task is in its look-up
        await live.append(end)  # published while the look-up is held
        release.set()
        assert await reader == [retraction["id"], end["id"]]
