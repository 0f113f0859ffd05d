"""Races over HTTP: many appends sent at once to a real server, on each backend, both in this
process (the app on an aiohttp test server) and as a `timeline serve` process. Where they
compete for one version or one id, exactly one wins, the others get the answer API.md names,
and the log holds the winner once. (tests/events/test_store_contract.py races the store and the
group writer directly; these go through routes, the writer's groups and the answers.)"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.api import AiohttpClient, make_api
from tests.databases import Database
from tests.factories import event_in
from tests.timeline.servers import serve

ADMIN = "tl_races-admin"
Event = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: Any


@dataclass
class Target:
    """A real server and a client with an `append` (or better) token."""

    http: aiohttp.ClientSession
    base: str
    headers: dict[str, str]

    async def post(self, body: Any) -> Answer:
        url = f"{self.base}v1/events"
        async with self.http.post(url, json=body, headers=self.headers) as response:
            return Answer(response.status, response.content_type, await response.json())

    async def append(self, body: Any) -> list[Event]:
        answer = await self.post(body)
        assert answer.status == 201, answer.body
        events: list[Event] = answer.body["events"]
        return events

    async def at_once(self, bodies: list[Any]) -> list[Answer]:
        """Send every body at the same moment, each on a connection of its own already open
        (so that none waits for a connect), and return the answers in the same order."""

        async def health() -> None:
            async with self.http.get(f"{self.base}healthz") as response:
                assert response.status == 200
                await response.read()

        await asyncio.gather(*(health() for _ in bodies))  # that many idle keep-alive sockets
        return list(await asyncio.gather(*(self.post(body) for body in bodies)))

    async def log(self) -> list[Event]:
        async with self.http.get(f"{self.base}v1/events?limit=1000") as response:
            page = await response.json()
        assert page["next"] is None
        events: list[Event] = page["events"]
        return events


@pytest.fixture(params=["in-process", "process"])
async def target(
    request: pytest.FixtureRequest, database: Database, aiohttp_client: AiohttpClient
) -> AsyncIterator[Target]:
    connector = aiohttp.TCPConnector(limit=0)  # no cap: all requests at once, really
    async with aiohttp.ClientSession(connector=connector) as http:
        if request.param == "in-process":
            api = await make_api(aiohttp_client, database.url)
            yield Target(http, str(api.client.make_url("/")), api.auth("append"))
            return
        server = await serve(database.url, "--no-seed", env={"TIMELINE_BOOTSTRAP_TOKEN": ADMIN})
        server.drain()
        try:
            yield Target(http, server.url, {"Authorization": f"Bearer {ADMIN}"})
        finally:
            server.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await server.process.wait() == 0, server.output


def version_conflict(answer: Answer, company: str, current: int, event_id: str) -> None:
    assert answer.status == 409, answer.body
    assert answer.content_type == "application/problem+json"
    assert answer.body["type"] == "urn:timeline:problem:version-conflict"
    assert (answer.body["company"], answer.body["current_version"]) == (company, current)
    assert answer.body["id"] == event_id  # the loser's own event, named


def id_conflict(answer: Answer) -> None:
    assert answer.status == 409, answer.body
    assert answer.content_type == "application/problem+json"
    assert answer.body["type"] == "urn:timeline:problem:id-conflict"


async def test_fifty_writers_on_one_expected_version_one_wins(target: Target) -> None:
    before = await target.append(
        {"events": [event_in(company="baidu"), event_in(company="tencent"), event_in("baidu")]}
    )
    # On a stream at version 2, and on one that does not exist yet (version 0).
    for company, version in (("baidu", 2), ("moonshot", 0)):
        bodies = [event_in(company=company, expected_version=version) for _ in range(50)]
        answers = await target.at_once(bodies)
        assert Counter(a.status for a in answers) == {201: 1, 409: 49}, answers
        (winner,) = [i for i, answer in enumerate(answers) if answer.status == 201]
        (stored,) = answers[winner].body["events"]
        assert (stored["id"], stored["version"]) == (bodies[winner]["id"], version + 1)
        for body, answer in zip(bodies, answers, strict=True):
            if answer.status == 409:
                version_conflict(answer, company, version + 1, body["id"])
        log = await target.log()
        assert log[len(before) :] == [stored]  # one new entry: the winner's
        before = log


async def test_fifty_batches_on_one_expected_version_one_wins_whole(target: Target) -> None:
    await target.append({"events": [event_in(company="baidu") for _ in range(3)]})
    contenders = [
        [
            event_in(company=f"side-{n}"),
            event_in(company="baidu", expected_version=3),
            event_in(company="tencent"),
        ]
        for n in range(50)
    ]
    answers = await target.at_once([{"events": bodies} for bodies in contenders])
    assert Counter(a.status for a in answers) == {201: 1, 409: 49}, answers
    (winner,) = [i for i, answer in enumerate(answers) if answer.status == 201]
    stored = answers[winner].body["events"]
    assert [e["id"] for e in stored] == [b["id"] for b in contenders[winner]]
    assert [(e["position"], e["version"]) for e in stored] == [(4, 1), (5, 4), (6, 1)]
    for bodies, answer in zip(contenders, answers, strict=True):
        if answer.status == 409:
            version_conflict(answer, "baidu", 4, bodies[1]["id"])
    # The losers' other events are not stored either: nothing of a refused batch is.
    assert (await target.log())[3:] == stored


async def test_twenty_identical_appends_at_once_store_one_event(target: Target) -> None:
    await target.append(event_in(company="baidu"))
    # expected_version is right for the first to commit and stale for those after: still a
    # retry for them, answered with what is stored.
    body = event_in(company="baidu", expected_version=1)
    answers = await target.at_once([body] * 20)
    assert Counter(a.status for a in answers) == {201: 1, 200: 19}, answers
    (stored,) = answers[0].body["events"]
    assert all(answer.body == answers[0].body for answer in answers)  # position, hash, ...
    assert (stored["id"], stored["position"], stored["version"]) == (body["id"], 2, 2)
    log = await target.log()
    assert log[1:] == [stored]


async def test_a_batch_sent_twenty_times_at_once_is_stored_once(target: Target) -> None:
    await target.append(event_in(company="baidu"))
    launch = event_in(company="tencent", occurred="2023-09")
    bodies = [
        event_in(company="baidu", expected_version=1),
        launch,
        event_in(company="baidu"),
        event_in(
            company="tencent",
            type="event.corrected",
            data={"target": launch["id"], "occurred": "2023-09-07"},
        ),
        event_in(company="alibaba", type="team.formed", data={"name": "通义"}),
    ]
    answers = await target.at_once([{"events": bodies}] * 20)
    assert Counter(a.status for a in answers) == {201: 1, 200: 19}, answers
    assert all(answer.body == answers[0].body for answer in answers)
    stored = answers[0].body["events"]
    assert [e["id"] for e in stored] == [b["id"] for b in bodies]
    assert [e["position"] for e in stored] == [2, 3, 4, 5, 6]
    assert (await target.log())[1:] == stored


async def test_one_id_with_two_contents_at_once_stores_one(target: Target) -> None:
    first = event_in(company="baidu", occurred="2023-04")
    other = {**first, "occurred": "2023-05"}
    bodies = [first if n % 2 == 0 else other for n in range(20)]
    answers = await target.at_once(bodies)
    (stored,) = await target.log()
    won = first if stored["occurred"]["value"] == "2023-04" else other
    assert stored["id"] == first["id"]
    # The content stored first is created once and found by its twins; the other is refused.
    same = [a for body, a in zip(bodies, answers, strict=True) if body is won]
    assert Counter(a.status for a in same) == {201: 1, 200: 9}, same
    assert all(answer.body == {"events": [stored]} for answer in same)
    for body, answer in zip(bodies, answers, strict=True):
        if body is not won:
            id_conflict(answer)


async def test_overlapping_batches_at_once_one_is_stored_whole(target: Target) -> None:
    shared = event_in(company="baidu")
    left = [event_in(company="tencent"), shared]
    right = [shared, event_in(company="alibaba")]
    bodies = [{"events": left if n % 2 == 0 else right} for n in range(20)]
    answers = await target.at_once(bodies)
    log = await target.log()
    won = left if log[0]["id"] == left[0]["id"] else right
    # Once one is stored, the other mixes a stored id with a new one: refused, nothing stored.
    assert [e["id"] for e in log] == [b["id"] for b in won]
    same = [a for body, a in zip(bodies, answers, strict=True) if body["events"] is won]
    assert Counter(a.status for a in same) == {201: 1, 200: 9}, same
    assert all(answer.body == {"events": log} for answer in same)
    for body, answer in zip(bodies, answers, strict=True):
        if body["events"] is not won:
            id_conflict(answer)
