"""The peer: our application's HTTP front, with the `eventsourcing` library storing the events.

What a Python user would pick instead of Timeline is the `eventsourcing` library (v9) on its
SQLite or PostgreSQL persistence. This serves it the way its users would, behind the very
application `timeline serve` runs, so that the two servers differ only in what stores the
events: `create_app(settings)` builds the app (the same middlewares, the same `POST
/v1/events` route, guard and handler: token check, then size limit, JSON parsing, pydantic
validation by `timeline.routes.read_events`, then the 201 rendered by `created_response`),
and only what sits behind the handler is swapped: our store, writer, feed and webhooks are
never opened; `app[WRITER]` is a `Peer`, whose `append` saves the validated events through
an eventsourcing `Application`. Bearer tokens are checked by our `Tokens` against the
TIMELINE_BOOTSTRAP_TOKEN (kept in memory here instead of our token table; both cache a
token's scope for 5 s). `/healthz` answers the notification log's head; the read endpoints
are not served (they need our store).

The domain model: one `Company` aggregate per company named in the events (its id a UUID5 of
the slug). Every fact is one aggregate event holding the validated event's fields (event_id,
type, company, occurred as sent, data, source, confidence): the first fact of a company is
its created event, so a single-event request saves 1 pending event and a batch of 1000 saves
1000, in one `Application.save` (one transaction) of the aggregates it touches. The answer is
201 with our body: position = the library's notification id, version = the aggregate's
version (the company's fact count), recorded = the event's timestamp, and a made-up hash of
the right size (the library has no chain).

Aggregates are kept in memory (a dict, slug -> aggregate) so that a save never replays a
company's history: the first time a process sees a company it asks the repository once
(`repository.get`, which replays what a previous run stored), and creates the aggregate if
there is none. Not the library's aggregate cache (AGGREGATE_CACHE_MAXSIZE): its `get`
deep-copies the cached aggregate and, with fast-forwarding on (the default), selects the
aggregate's newer events on every call; the dict is the peer's best case. A failed save
drops the aggregates it touched (they are ahead of the database), to be read again.

Concurrency: saves of one company must not overlap (optimistic concurrency would reject the
second: both would insert the same version), so each company has an asyncio.Lock, a request
holding those of all its companies (taken in sorted order: batches cannot deadlock) while its
save runs in a worker thread (the library is synchronous). SQLite: one worker thread; the
library's pool lets one writer connection out at a time (a process-wide lock, 5 s timeout),
so more threads would only queue there, and SQLite allows one writer anyway. PostgreSQL:
several threads (--threads, default 4, and as many pooled connections), so that one save's
encoding and round trips may overlap another's commit; each insert transaction takes
`LOCK TABLE ... IN EXCLUSIVE MODE`, so commits are serialised in the database anyway. Measured
here (pinned to one core, 64 connections): 1, 2, 4 and 8 threads gave the same rates within
the noise, as the peer's process is CPU-bound (about 1 ms of its CPU per single-event save).

Durability. PostgreSQL: the server's settings, as for ours (synchronous_commit on by default:
each save's commit is flushed). SQLite: the library opens the file in WAL mode and sets no
`synchronous`, so it runs with the SQLite build's default, FULL on Debian's and Python's
builds (SQLITE_DEFAULT_WAL_SYNCHRONOUS=2): the WAL is fsynced at every commit, as ours with
its default synchronous=FULL. The library has no setting for it, so this checks it on one of
the library's own connections, and refuses to run where it is not FULL.

    python -m bench.peer --db sqlite:///peer.db
    python -m bench.peer --db postgresql://postgres@127.0.0.1:5432/test --schema peer

It listens on 127.0.0.1 only, prints `port <n>` once it listens, and stops on SIGTERM/SIGINT
or when the process that started it goes away. For the harness, in process (no HTTP):
`save_rate` (one event per save, one after another, one aggregate), `load` (fill a store
quickly) and `rebuild_rate` (read the notification log into domain events and fold them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
from aiohttp import web
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import Recording

from bench.server import serve_app
from events.backends import sqlite_path
from events.entries import LogEntry, NewEvent
from events.inputs import MAX_BATCH
from events.store import Appended, EventStore, Head
from events.validation import validate_body
from events.values import timestamp
from timeline.app import create_app
from timeline.auth import Tokens, digest
from timeline.config import Settings
from timeline.hub import Hub
from timeline.keys import HUB, STORE, TOKENS, WRITER

PAGE = 1000  # notifications `rebuild_rate` selects at once
PG_THREADS = 4
_FAKE_HASH = "f" * 64
_NAMESPACE = uuid.UUID("6f1d3c5e-2b7a-4e0c-9a51-8c2f4d6b9e13")  # company slug -> aggregate id


def company_id(company: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, company)


class Company(Aggregate):
    """A company's facts: one event each. What it keeps is what saving needs (its version)
    and a little state; the facts themselves are in the events."""

    @event("FirstFactRecorded")
    def __init__(
        self,
        company: str,
        event_id: str,
        type: str,
        occurred: str,
        data: dict[str, Any],
        source: dict[str, Any] | None,
        confidence: str,
    ) -> None:
        self.company = company
        self.facts = 1
        self.last_occurred = occurred

    @staticmethod
    def create_id(company: str) -> uuid.UUID:
        return company_id(company)

    @event("FactRecorded")
    def record(
        self,
        company: str,
        event_id: str,
        type: str,
        occurred: str,
        data: dict[str, Any],
        source: dict[str, Any] | None,
        confidence: str,
    ) -> None:
        self.facts += 1
        self.last_occurred = occurred


def fact(new: NewEvent) -> dict[str, Any]:
    """The fields of a validated event, as the aggregate event records them."""
    return {
        "company": new.company,
        "event_id": new.id,
        "type": new.type,
        "occurred": new.occurred.value,
        "data": new.data,
        "source": orjson.loads(new.source_json) if new.source_json is not None else None,
        "confidence": new.confidence,
    }


# -- persistence ---------------------------------------------------------------------------


def persistence_env(db_url: str, schema: str | None, threads: int = 1) -> dict[str, str]:
    """The library's settings for a `--db` URL: sqlite:///PATH or postgresql://... (with
    `schema`, which must exist, or else the URL's search_path; the library creates only its
    tables)."""
    if db_url.startswith("sqlite:"):
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": sqlite_path(db_url)}
    parts = urlsplit(db_url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a SQLite or PostgreSQL URL: {db_url!r}")
    if not schema:
        options = parse_qs(parts.query).get("options", [""])[0]
        schema = options.partition("search_path=")[2].split(",")[0].split()[0] if options else ""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),  # required, even if empty
        "POSTGRES_SCHEMA": schema or "public",
        "POSTGRES_POOL_SIZE": str(threads + 1),  # the savers, and /healthz
    }


def sqlite_durability(app: Application[Any]) -> tuple[str, int]:
    """(journal_mode, synchronous) of one of the library's own SQLite connections."""
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA journal_mode")
        mode = str(cursor.fetchone()[0])
        cursor.execute("PRAGMA synchronous")
        synchronous = int(cursor.fetchone()[0])
    return mode, synchronous


def open_application(db_url: str, schema: str | None, threads: int = 1) -> Application[Any]:
    """The peer's eventsourcing Application on the store the URL names (tables made if need
    be). SQLite must commit durably, as ours does: WAL with synchronous FULL (2)."""
    app: Application[Any] = Application(env=persistence_env(db_url, schema, threads))
    if db_url.startswith("sqlite:"):
        mode, synchronous = sqlite_durability(app)
        if mode.lower() != "wal" or synchronous != 2:
            app.close()
            raise RuntimeError(
                f"the library's SQLite connections run journal_mode={mode}, synchronous="
                f"{synchronous}, not WAL with FULL (2) as ours: the comparison would not be fair"
            )
    return app


def _stored(app: Application[Any], company: str) -> Company | None:
    try:
        return cast(Company, app.repository.get(company_id(company)))
    except AggregateNotFoundError:
        return None


def stage(
    app: Application[Any], known: dict[str, Company], batch: Sequence[NewEvent]
) -> tuple[dict[str, Company], list[Any]]:
    """Trigger one aggregate event per validated event, on the aggregates of `known` (or read
    once from the repository, or created by their first fact): the aggregates touched, and the
    domain event of each event of the batch, in order."""
    touched: dict[str, Company] = {}
    domain_events = []
    try:
        for new in batch:
            name = new.company
            aggregate = touched.get(name)
            if aggregate is None:
                aggregate = known.get(name)
                if aggregate is None:
                    aggregate = _stored(app, name)
            if aggregate is None:
                aggregate = Company(**fact(new))
            else:
                aggregate.record(**fact(new))
            touched[name] = aggregate
            domain_events.append(aggregate.pending_events[-1])
    except BaseException:
        for name in touched:  # changed but not saved: read again next time
            known.pop(name, None)
        raise
    return touched, domain_events


def save_staged(
    app: Application[Any], known: dict[str, Company], touched: dict[str, Company]
) -> list[Recording[Any]]:
    """One `save` (one transaction) of the aggregates touched, remembered if it commits."""
    try:
        recordings = app.save(*touched.values())
    except BaseException:
        for name in touched:  # ahead of the database now: read again next time
            known.pop(name, None)
        raise
    known.update(touched)
    return recordings


# -- the server ----------------------------------------------------------------------------


class Peer:
    """What `app[WRITER]` and `app[STORE]` are in the peer: saves through the Application,
    the notification log's head, and the bootstrap token."""

    def __init__(self, app: Application[Any], threads: int, token: str | None) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="peer-save")
        self.aggregates: dict[str, Company] = {}
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._token_key = digest(token) if token else None

    async def append(self, batch: Sequence[NewEvent]) -> Appended:
        async with contextlib.AsyncExitStack() as held:
            for name in sorted({new.company for new in batch}):
                await held.enter_async_context(self.locks[name])
            future = asyncio.get_running_loop().run_in_executor(self.executor, self._save, batch)
            try:
                return await asyncio.shield(future)
            finally:
                if not future.done():  # cancelled: the save goes on, its companies stay locked
                    await asyncio.wait({future})

    def _save(self, batch: Sequence[NewEvent]) -> Appended:
        touched, domain_events = stage(self.app, self.aggregates, batch)
        recordings = save_staged(self.app, self.aggregates, touched)
        notifications = {id(r.domain_event): r.notification for r in recordings}
        entries: list[LogEntry] = []
        for new, domain_event in zip(batch, domain_events, strict=True):
            notification = notifications[id(domain_event)]
            entry = new.recorded_as(
                notification.id, notification.originator_version, timestamp(domain_event.timestamp)
            )
            entry.hash = _FAKE_HASH
            entries.append(entry)
        return Appended(entries, created=True)

    async def head(self) -> Head:
        return Head(await asyncio.to_thread(self.app.recorder.max_notification_id) or 0)

    async def token_scope(self, key: str) -> str | None:
        return "admin" if key == self._token_key else None

    async def token_used(self, key: str, moment: str) -> None:
        pass

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.app.close()


def peer_app(settings: Settings, db_url: str, schema: str | None, threads: int) -> web.Application:
    """`timeline serve`'s application with the peer in place of our store."""
    app = create_app(settings)
    app.cleanup_ctx.clear()  # our store, writer, feed and webhooks: none of them here

    async def storage(app: web.Application) -> AsyncIterator[None]:
        application = await asyncio.to_thread(open_application, db_url, schema, threads)
        token = settings.bootstrap_token
        peer = Peer(application, threads, token.get_secret_value() if token else None)
        store = cast(EventStore, peer)  # what the handlers use of a store: head and tokens
        app[STORE], app[WRITER], app[TOKENS] = store, cast(Any, peer), Tokens(store)
        app[HUB] = Hub((await peer.head()).position)  # /healthz reads its head; no feed
        try:
            yield
        finally:
            await asyncio.to_thread(peer.close)

    app.cleanup_ctx.append(storage)
    return app


async def serve(db_url: str, schema: str | None, port: int, threads: int) -> None:
    settings = Settings(db=db_url, host="127.0.0.1", port=port)
    await serve_app(peer_app(settings, db_url, schema, threads), settings, port)


# -- in process, for the harness -----------------------------------------------------------


@contextlib.contextmanager
def _opened(db_url: str, schema: str | None) -> Iterator[Application[Any]]:
    app = open_application(db_url, schema)
    try:
        yield app
    finally:
        app.close()


def _validated(bodies: list[dict[str, Any]]) -> list[NewEvent]:
    """The bodies validated as a client's batches would be (of at most MAX_BATCH each)."""
    return [
        new
        for start in range(0, len(bodies), MAX_BATCH)
        for new in validate_body({"events": bodies[start : start + MAX_BATCH]})
    ]


def save_rate(db_url: str, schema: str | None, count: int) -> float:
    """Events/s of saving one event at a time, one save after another, to one aggregate (a new
    company), in process. The events are validated and their fields built before the clock."""
    from bench.data import fuzzy, payload

    rng = random.Random(count)
    name = f"rate-{uuid.uuid4().hex[:12]}"
    bodies = [
        {
            "type": "model.launched",
            "company": name,
            "occurred": fuzzy(rng),
            "data": payload("model.launched", n),
        }
        for n in range(count + 1)
    ]
    facts = [fact(new) for new in _validated(bodies)]
    with _opened(db_url, schema) as app:
        aggregate = Company(**facts[0])
        app.save(aggregate)
        started = time.perf_counter()
        for fields in facts[1:]:
            aggregate.record(**fields)
            app.save(aggregate)
        return count / (time.perf_counter() - started)


def load(db_url: str, schema: str | None, events: int, companies: int) -> None:
    """Fill the peer's store with `events` events of the benchmark's log (bench/data.py:
    its types, fuzzy dates and amendments) over `companies` companies, in saves of up to 1000
    pending events."""
    from bench.data import event as body_of

    rng = random.Random(events)
    earlier: dict[str, list[str]] = {}
    known: dict[str, Company] = {}
    with _opened(db_url, schema) as app:
        for start in range(0, events, MAX_BATCH):
            bodies = []
            for n in range(start, min(events, start + MAX_BATCH)):
                name = f"c{n % companies:05d}"
                bodies.append(body_of(rng, name, n, earlier.setdefault(name, [])))
            touched, _ = stage(app, known, _validated(bodies))
            save_staged(app, known, touched)


def rebuild_rate(db_url: str, schema: str | None) -> tuple[int, float]:
    """What a peer user does to rebuild a projection: read the whole notification log in
    pages, turn each notification into its domain event and fold the events into per-company
    state (facts, last `occurred`). Returns (events read, events/s)."""
    with _opened(db_url, schema) as app:
        state: dict[str, list[Any]] = {}
        read, last = 0, 0
        started = time.perf_counter()
        while True:
            page = app.recorder.select_notifications(last, PAGE, inclusive_of_start=False)
            if not page:
                break
            for notification in page:
                domain_event: Any = app.mapper.to_domain_event(notification)
                found = state.get(domain_event.company)
                if found is None:
                    state[domain_event.company] = [1, domain_event.occurred]
                else:
                    found[0] += 1
                    found[1] = domain_event.occurred
            read += len(page)
            last = page[-1].id
        elapsed = time.perf_counter() - started
    return read, read / elapsed if elapsed > 0 else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="sqlite:///PATH or postgresql://...")
    parser.add_argument("--schema", help="PostgreSQL: the (existing) schema of the tables")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--threads",
        type=int,
        default=PG_THREADS,
        help=f"PostgreSQL: threads saving at once (default {PG_THREADS}); SQLite: always 1",
    )
    args = parser.parse_args(argv)
    if not os.environ.get("TIMELINE_BOOTSTRAP_TOKEN"):
        print("TIMELINE_BOOTSTRAP_TOKEN must be set", file=sys.stderr)
        return 2
    threads = 1 if args.db.startswith("sqlite:") else max(1, args.threads)
    asyncio.run(serve(args.db, args.schema, args.port, threads))
    return 0


if __name__ == "__main__":
    # The aggregate's events are stored under their topic, `bench.peer:Company...`: defined
    # here they would be `__main__:...`, which no other process (the harness reading the log
    # back) could resolve.
    from bench.peer import main as _main

    sys.exit(_main())
