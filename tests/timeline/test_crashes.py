"""Crashes: one `timeline serve` process is SIGKILLed at random moments while 8 writers append
through it, and started again on the same database each time. Nothing acknowledged is lost,
nothing nobody sent is stored, no batch is stored in part, positions and versions stay
gapless, the chain verifies, and the projections built across the crashes answer exactly as a
rebuild from the log does. Run on both backends (a SQLite file, a PostgreSQL schema)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import httpx

from tests.databases import Database
from tests.factories import event_in
from tests.timeline.servers import serve
from tests.timeline.test_cli import Server, run

KILLS = 20  # SIGKILLs under load; one more, with the load stopped, comes before the rebuild
WRITERS = 8
SEED = 20_231
BOUND = 60.0  # seconds: the longest any one wait of this test may take
ADMIN = "tl_crashes-admin"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
SHARED = ["alibaba", "baidu", "tencent", "huawei"]
AMENDMENTS = ("event.corrected", "event.retracted", "event.reinstated")
FACTS = (
    "model.launched",
    "team.formed",
    "ceo.letter",
    "financial.report",
    "statement.made",
    "company.registered",
    "filing.passed",
    "product.integrated",
)
DATES = (
    "2023",
    "2023-Q2",
    "2023-05",
    "2023-05-17",
    "2023-08~",
    "2023-Q3?",
    "2023-11-02",
    "2022-12-31",
    "2024-Q1~",
)
AS_OF = ("2023-06-30", "2024-12-31")  # explicit: the default (today) could move between reads

Event = dict[str, Any]


def _fact(rng: random.Random, company: str) -> Event:
    """A non-amendment EventIn of a random type, with a random fuzzy date."""
    kind, n = rng.choice(FACTS), rng.randrange(10_000)
    model = f"Model-{n}"
    payloads: dict[str, dict[str, Any]] = {
        "model.launched": {"model": model, "stage": rng.choice(["announced", "public"])},
        "team.formed": {"name": f"Team {n}", "location": "杭州", "headcount": rng.randint(5, 500)},
        "ceo.letter": {"author": "Eddie Wu", "role": "CEO", "summary": f"Letter {n}: 用户为先"},
        "financial.report": {
            "period": rng.choice(["2023-Q1", "2023-Q2", "2023"]),
            "metrics": [{"name": "revenue", "value": round(rng.uniform(1, 500), 2), "unit": "bn"}],
        },
        "statement.made": {"speaker": "Robin Li", "summary": f"Statement {n}"},
        "company.registered": {"name": f"{company.title()} {n}", "aliases": [f"{company}-{n}"]},
        "filing.passed": {"model": model, "authority": "CAC"},
        "product.integrated": {"product": f"Product {n}", "model": model},
    }
    data = payloads[kind]
    fields: dict[str, Any] = {}
    if rng.random() < 0.5:
        fields["confidence"] = rng.choice(["confirmed", "reported", "rumored"])
    if rng.random() < 0.3:
        fields["source"] = {
            "publisher": "新华社",
            "title": f"Report {n}",
            "url": f"https://x.cn/{n}",
        }
    return event_in(company=company, type=kind, occurred=rng.choice(DATES), data=data, **fields)


def _amendment(rng: random.Random, company: str, target: str) -> Event:
    kind = rng.choice(AMENDMENTS)
    data: dict[str, Any] = {"target": target}
    if kind == "event.corrected":
        data["occurred"] = rng.choice(DATES)
        if rng.random() < 0.5:
            data["confidence"] = rng.choice(["confirmed", "rumored"])
    else:
        data["reason"] = "denied" if kind == "event.retracted" else "confirmed after all"
    return event_in(company=company, type=kind, occurred=rng.choice(DATES), data=data)


def _bodies(
    rng: random.Random, mine: str, version: int, originals: dict[str, list[str]]
) -> list[Event]:
    """The next append of the writer whose own company is `mine`, at `version`: a single or a
    batch of 1-20 over its own and the shared companies, some of them amendments of its
    acknowledged events (or of earlier ones in the batch). The first event is its own
    company's, with `expected_version`: a 409 would show an acknowledged event gone."""
    count = 1 if rng.random() < 0.3 else rng.randint(1, 20)
    bodies: list[Event] = []
    for index in range(count):
        company = mine if index == 0 else rng.choice([mine, *SHARED])
        earlier = [b["id"] for b in bodies if b["company"] == company and b["type"] in FACTS]
        targets = originals.get(company, []) + earlier
        if targets and rng.random() < 0.15:
            bodies.append(_amendment(rng, company, rng.choice(targets)))
        else:
            bodies.append(_fact(rng, company))
    bodies[0]["expected_version"] = version
    return bodies


class Service:
    """One `timeline serve` on one database, SIGKILLed and started again on it by the test.
    `up` is set while the current process serves and the checks after its start have passed;
    `generation` counts the starts."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.server: Server | None = None
        self.generation = 0
        self.kills = 0
        self.up = asyncio.Event()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    async def launch(self) -> None:
        env = {"TIMELINE_BOOTSTRAP_TOKEN": ADMIN}
        self.server = await serve(self.database.url, "--no-seed", env=env)
        self.server.drain()
        self.generation += 1

    async def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed, no transaction is ended."""
        assert self.server is not None
        self.up.clear()  # before the kill: every request it cuts finds the service down
        self.server.process.kill()
        async with asyncio.timeout(BOUND):
            await self.server.process.wait()
            if self.server.drained is not None:
                await self.server.drained  # its output, up to the kill
        self.kills += 1

    async def stop(self) -> None:
        if self.server is not None and self.server.process.returncode is None:
            await self.kill()


@dataclass
class Batch:
    """One append as a writer sent it (and sends it again until it is answered)."""

    writer: int
    bodies: list[Event]

    @property
    def ids(self) -> list[str]:
        return [body["id"] for body in self.bodies]


class Load:
    """Eight writers appending through the service, each retrying the same body after a
    connection error until it is answered: a 201, or a 200 when the cut attempt had been
    committed."""

    def __init__(self, http: httpx.AsyncClient, service: Service) -> None:
        self.http, self.service = http, service
        self.sent: list[Batch] = []
        self.bodies: dict[str, Event] = {}  # id -> the EventIn sent
        self.acked: dict[str, Event] = {}  # id -> the RecordedEvent of a 200 or 201
        self.appends = 0  # appends answered
        self.going = True
        self.in_flight = 0
        self.started = asyncio.Event()  # a request went out
        self.progress = asyncio.Event()  # an append was answered
        self.cut = 0  # attempts cut by a kill
        self.replayed = 0  # retries answered 200: the cut attempt had been committed
        self.unavailable = 0  # 503 answers (retried)
        self.dropped: list[str] = []  # connection errors while the server was up
        self.unexpected: list[str] = []  # any other answer: the writer stops
        self.tasks: list[asyncio.Task[None]] = []

    def run(self) -> None:
        self.tasks = [asyncio.create_task(self._writer(n)) for n in range(WRITERS)]

    async def _writer(self, n: int) -> None:
        rng, mine, version = random.Random(SEED * 100 + n), f"writer-{n}", 0
        originals: dict[str, list[str]] = {}  # company -> this writer's acknowledged facts
        while self.going:
            batch = Batch(n, _bodies(rng, mine, version, originals))
            self.sent.append(batch)
            self.bodies.update(zip(batch.ids, batch.bodies, strict=True))
            single = len(batch.bodies) == 1 and rng.random() < 0.7
            events = await self._append(
                batch, batch.bodies[0] if single else {"events": batch.bodies}
            )
            if events is None:
                return
            for body in batch.bodies:
                if body["type"] in FACTS:
                    originals.setdefault(body["company"], []).append(body["id"])
            version += sum(body["company"] == mine for body in batch.bodies)

    async def _append(self, batch: Batch, payload: Event) -> list[Event] | None:
        attempts = 0  # attempts that may have been committed unanswered
        while True:
            async with asyncio.timeout(BOUND):
                await self.service.up.wait()
            url, generation = self.service.url, self.service.generation
            self.in_flight += 1
            self.started.set()
            try:
                response = await self.http.post(f"{url}v1/events", json=payload, headers=HEADERS)
            except httpx.TransportError as error:
                if self.service.up.is_set() and self.service.generation == generation:
                    self.dropped.append(f"writer {batch.writer}: {error!r}")
                else:
                    self.cut += 1
                attempts += 1
                continue  # the same body, once the service is back
            finally:
                self.in_flight -= 1
            if response.status_code == 503:  # refused for now (never seen so far): again
                self.unavailable += 1
                attempts += 1
                await asyncio.sleep(0.05)  # a back-off, as Retry-After asks
                continue
            # A first attempt stores new events (201); a retry finds them stored (200) or not.
            if response.status_code not in ((201,) if attempts == 0 else (200, 201)):
                self.unexpected.append(
                    f"writer {batch.writer}, attempt {attempts + 1} of {batch.ids}: "
                    f"{response.status_code} {response.text[:1000]}"
                )
                return None
            events: list[Event] = response.json()["events"]
            if [event["id"] for event in events] != batch.ids:
                self.unexpected.append(f"answered {[e['id'] for e in events]} for {batch.ids}")
                return None
            self.replayed += response.status_code == 200
            self.acked.update((event["id"], event) for event in events)
            self.appends += 1
            self.progress.set()
            return events

    def raise_failures(self) -> None:
        """Fail at once if a writer has had an unexpected answer or has crashed."""
        assert not self.unexpected, self.unexpected
        for task in self.tasks:
            if task.done():
                task.result()
                raise AssertionError("a writer stopped while the load was going")

    async def until(self, count: int) -> None:
        """Wait until `count` events are acknowledged."""
        async with asyncio.timeout(BOUND):
            while len(self.acked) < count:
                self.raise_failures()
                self.progress.clear()
                await self.progress.wait()

    async def requests_out(self) -> None:
        """Wait until at least one request is in flight."""
        async with asyncio.timeout(BOUND):
            while self.in_flight == 0:
                self.raise_failures()
                self.started.clear()
                await self.started.wait()

    async def stop(self) -> None:
        self.going = False
        async with asyncio.timeout(BOUND):
            await asyncio.gather(*self.tasks)
        assert not self.unexpected, self.unexpected


async def read_log(http: httpx.AsyncClient, base: str, after: int = 0) -> tuple[list[Event], int]:
    """The log after position `after`, page by page, and the head."""
    events: list[Event] = []
    following: int | None = after
    head = 0
    while following is not None:
        response = await http.get(f"{base}v1/events", params={"after": following, "limit": 1000})
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["events"]
        following, head = page["next"], page["head"]
    return events, head


class Log:
    """The log as read back after each start, entry by entry."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.by_id: dict[str, Event] = {}

    async def catch_up(self, http: httpx.AsyncClient, base: str) -> None:
        """Read what follows the part already read; its last entry must read as before (with
        the chain, the same hash at that position means the same log up to it)."""
        fetched, head = await read_log(http, base, max(len(self.events) - 1, 0))
        if self.events:
            assert fetched, "the log is shorter than it was"
            assert fetched.pop(0) == self.events[-1], "an entry read before has changed"
        self.events += fetched
        self.by_id.update((event["id"], event) for event in fetched)
        assert len(self.by_id) == len(self.events), "an id stored twice"
        assert len(self.events) == head

    def problems(self, load: Load) -> list[str]:
        """What is wrong with the log as the writers know it: lost acknowledged events, events
        nobody sent, batches stored in part, gaps in positions or versions."""
        found: list[str] = []
        positions = [event["position"] for event in self.events]
        if positions != list(range(1, len(positions) + 1)):
            found.append("positions are not 1..head without a gap")
        versions: dict[str, list[int]] = defaultdict(list)
        for event in self.events:
            versions[event["company"]].append(event["version"])
        for company, seen in versions.items():
            if seen != list(range(1, len(seen) + 1)):
                found.append(f"versions of {company} are not 1..{len(seen)}: {seen[:50]}")
        lost = [i for i, event in load.acked.items() if self.by_id.get(i) != event]
        if lost:
            found.append(f"{len(lost)} acknowledged events lost or changed, e.g. {lost[:5]}")
        for event in self.events:
            body = load.bodies.get(event["id"])
            if body is None:
                found.append(f"position {event['position']} was sent by no writer")
            elif (event["type"], event["company"], event["occurred"]["value"]) != (
                body["type"],
                body["company"],
                body["occurred"],
            ) or (event["type"] in FACTS and event["data"] != body["data"]):
                found.append(f"position {event['position']} is not what was sent: {event}")
        for batch in load.sent:
            stored = [self.by_id[i]["position"] for i in batch.ids if i in self.by_id]
            if stored and len(stored) != len(batch.ids):
                # A half-stored batch: the atomicity promise broken.
                found.append(f"batch {batch.ids} half stored: {len(stored)} of {len(batch.ids)}")
            elif stored != sorted(stored):
                found.append(f"batch {batch.ids} stored out of request order: {stored}")
        return found


async def answers(
    http: httpx.AsyncClient, base: str, known_at: int, ids: list[str]
) -> dict[str, tuple[int, bytes]]:
    """What the projections answer, by path and query: each company's state and timeline at
    two dates, at the head and at an earlier position, the listing, chronology pages and
    event details. Compared byte for byte."""
    got: dict[str, tuple[int, bytes]] = {}

    async def get(path: str, **params: str | int) -> httpx.Response:
        response = await http.get(f"{base}{path}", params=params)
        got[response.url.raw_path.decode()] = (response.status_code, response.content)
        # Before the first event of a company a known_at read is a 404; nothing else fails.
        status = response.status_code
        assert status == 200 or ("known_at" in params and status == 404), response.text
        return response

    listing = await get("v1/companies")
    await get("v1/companies", known_at=known_at)
    await get("v1/digest")
    companies = [item["company"] for item in listing.json()["companies"]]
    assert sorted(companies) == sorted([*SHARED, *(f"writer-{n}" for n in range(WRITERS))])
    for company in companies:
        for as_of in AS_OF:
            for extra in ({}, {"known_at": known_at}):
                await get(f"v1/companies/{company}", as_of=as_of, **extra)
                await get(f"v1/companies/{company}/timeline", as_of=as_of, **extra)
            await get(f"v1/companies/{company}", as_of=as_of, include_possible="true")
    listed = 0
    for window in ({}, {"from": "2023-04-01", "to": "2023-06-30"}, {"company": "baidu"}):
        cursor: str | None = None
        while True:
            page = await get(
                "v1/chronology", limit=500, **window, **({"cursor": cursor} if cursor else {})
            )
            listed += len(page.json()["events"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
    assert listed > 0
    for event_id in ids:
        await get(f"v1/events/{event_id}")
    return got


async def test_sigkills_under_load_lose_nothing_and_the_projections_equal_a_rebuild(
    database: Database,
) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    service, log = Service(database), Log()
    in_flight_at_kills: list[int] = []
    async with httpx.AsyncClient(timeout=30) as http:
        load = Load(http, service)

        async def started() -> None:
            """After a start: the service answers, and its log is the one the writers know.
            Only then are the writers let in again."""
            health = await http.get(f"{service.url}healthz")
            assert health.status_code == 200, health.text
            await log.catch_up(http, service.url)
            assert health.json()["head"] == len(log.events)
            problems = log.problems(load)
            assert not problems, f"after kill {service.kills}: {problems[:20]}"
            service.up.set()

        try:
            await service.launch()
            await started()
            load.run()
            for _ in range(KILLS):
                await load.until(len(load.acked) + rng.randint(1, 150))
                await asyncio.sleep(rng.uniform(0, 0.05))  # only to pick a moment at random
                await load.requests_out()
                in_flight_at_kills.append(load.in_flight)
                await service.kill()
                await service.launch()  # on the same database: it opens and serves
                await started()
            await load.until(len(load.acked) + 100)  # it appends on after the last kill
            await load.stop()
            assert not load.dropped, load.dropped  # a live server never dropped a request

            # Every append was answered in the end: the log is exactly what was sent.
            await log.catch_up(http, service.url)
            problems = log.problems(load)
            assert not problems, problems[:20]
            assert set(log.by_id) == set(load.acked) == set(load.bodies)
            head = len(log.events)
            digest = (await http.get(f"{service.url}v1/digest")).json()
            assert (digest["position"], digest["hash"]) == (head, log.events[-1]["hash"])

            # The projections, built incrementally across the kills, against a rebuild.
            targets = [e["data"]["target"] for e in log.events if e["type"] in AMENDMENTS]
            details = list(dict.fromkeys(targets))[:40] + targets[-1:]
            before = await answers(http, service.url, head // 2, details)
            await service.kill()  # once more, idle: then nothing writes during the rebuild
            if database.path is not None:  # the file SQLite itself opens, and finds sound
                with contextlib.closing(sqlite3.connect(database.path)) as db:
                    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            code, out, err = run("verify", "--db", database.url)
            assert code == 0, err
            assert out.startswith(f"chain holds: {head} events, head hash {digest['hash']}")
            code, out, err = run("rebuild", "--db", database.url)
            assert code == 0, err
            assert out.startswith(f"rebuilt the projections from {head} events")
            await service.launch()
            await started()
            after = await answers(http, service.url, head // 2, details)
            # In the same order (a changed page changes the next page's cursor, its path).
            differing = [
                path
                for (path, answer), again in zip(before.items(), after.items(), strict=False)
                if (path, answer) != again
            ]
            assert not differing, f"{len(differing)} answers changed by a rebuild: {differing[:5]}"
            assert list(after) == list(before)
        finally:
            for task in load.tasks:
                task.cancel()
            await asyncio.gather(*load.tasks, return_exceptions=True)
            await service.stop()
    assert len(in_flight_at_kills) == KILLS
    assert min(in_flight_at_kills) >= 1
    print(  # the figures of this run, shown with -s
        f"\n{database.backend}: {service.kills} SIGKILLs ({KILLS} under load with "
        f"{sum(in_flight_at_kills)} requests in flight, one idle before the rebuild, one at "
        f"the end), {len(load.acked)} events acknowledged in {load.appends} appends, "
        f"{load.cut} attempts cut, {load.replayed} retries answered 200 (committed, then "
        f"killed before answering), {load.unavailable} answered 503, {len(before)} answers "
        f"compared with a rebuild; {time.monotonic() - began:.1f} s"
    )
