"""In-process append and as-of benchmark: our stores, and the `eventsourcing` library as a peer.

No HTTP: this drives `EventStore`s directly. For each --db URL (sqlite:///PATH or
postgresql://...), each run uses a fresh database (SQLite: a new file in a temporary directory
made beside PATH, which is never touched; PostgreSQL: a new schema, as the search_path of the
URL, dropped after), opened with `open_store(url, projections=projections())`, and preloaded
to --log-size events (batches of 1000 through `store.append`, spread over 1000 companies, plus
300 facts of the company `giant`). Then it measures:

- batch: 10 batches of 1000 new events, `store.append` one after another: events/s;
- single: 64 asyncio tasks, each appending one event at a time (32 each, 2048 in all) through
  one `GroupWriter(store, linger_seconds=0.002)`: appends/s;
- as-of: `resolve(store, None)` then `company_state(...)` for `giant` at a random day,
  p50 of 300 calls (after 20 for warm-up), in ms.

The peer (--peer-dsn, and --peer-sqlite for its SQLite persistence): an eventsourcing
`Application` with one `Aggregate` per company, each run in a fresh schema (POSTGRES_SCHEMA)
or file, preloaded to the same size by saves of 1000 events; batch: 10 saves of one aggregate
with 1000 pending events: events/s; single: 64 threads, each saving one new event of its own
aggregate per call (32 each): events/s. Its events carry a payload like ours (model name,
stage, occurred text). Events are built (ours validated) before the clock starts. The backends
take turns run by run; figures are medians over --runs runs.

    python bench/inprocess.py --db sqlite:///bench.db \
        --peer-dsn postgresql://postgres@127.0.0.1:5432/test --log-size 100000 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from events.backends import open_store, sqlite_path  # noqa: E402
from events.envelope import NewEvent, validate_body  # noqa: E402
from events.store import EventStore  # noqa: E402
from events.writer import GroupWriter  # noqa: E402
from projections.rebuild import projections  # noqa: E402
from projections.state import company_state, resolve  # noqa: E402

BATCH, BATCHES = 1000, 10
TASKS, PER_TASK = 64, 32
COMPANIES, GIANT, GIANT_FACTS = 1000, "giant", 300
ASOF_CALLS, ASOF_WARMUP = 300, 20
FIRST_DAY, DAYS = date(2019, 1, 1), 7 * 365
_schemas = itertools.count(1)


class Unavailable(Exception):
    """The backend a URL names cannot be opened here."""


@dataclass(frozen=True)
class Figures:
    """One run: log size when measured, batch events/s, single appends/s, as-of p50 ms."""

    log_size: int
    batch: float
    single: float
    asof_ms: float | None = None


def occurred(rng: random.Random) -> str:
    day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    return rng.choice([day.isoformat(), f"{day.year}-{day.month:02d}", f"{day.year}"])


def payload(n: int, rng: random.Random) -> dict[str, str]:
    return {"model": f"Model {n:07d}", "stage": "public", "occurred": occurred(rng)}


def body(company: str, n: int, rng: random.Random) -> dict[str, Any]:
    data = payload(n, rng)
    return {"type": "model.launched", "company": company, "occurred": data.pop("occurred"),
            "data": data}  # fmt: skip


def batch_of(start: int, size: int, every_giant: int, rng: random.Random) -> list[NewEvent]:
    companies = [
        GIANT if n % every_giant == 0 else f"c{n % COMPANIES:04d}"
        for n in range(start, start + size)
    ]
    return validate_body({"events": [body(c, start + i, rng) for i, c in enumerate(companies)]})


@contextlib.contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    """A new PostgreSQL schema for one run, dropped with all it holds afterwards."""
    import psycopg  # only PostgreSQL runs need it

    schema = f"bench_{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield schema
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@contextlib.contextmanager
def fresh_url(url: str) -> Iterator[str]:
    """The URL of a fresh, empty database of the kind `url` names."""
    if url.startswith("sqlite:"):
        path = Path(sqlite_path(url))
        with tempfile.TemporaryDirectory(prefix="inprocess-", dir=path.parent) as directory:
            yield f"sqlite:///{Path(directory).resolve() / path.name}"
        return
    with fresh_schema(url) as schema:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


async def ours(url: str, log_size: int) -> Figures:
    with fresh_url(url) as fresh:
        try:
            store = await open_store(fresh, projections=projections())
        except ValueError as exc:
            raise Unavailable(str(exc)) from exc
        try:
            rng = random.Random(log_size)
            every_giant = max(1, log_size // GIANT_FACTS)
            for start in range(0, log_size, BATCH):
                await store.append(batch_of(start, min(BATCH, log_size - start), every_giant, rng))
            size = (await store.head()).position
            asof = await asof_p50(store, rng)
            batches = [batch_of(size + i * BATCH, BATCH, sys.maxsize, rng) for i in range(BATCHES)]
            started = time.perf_counter()
            for batch in batches:
                await store.append(batch)
            batch_rate = BATCH * BATCHES / (time.perf_counter() - started)
            return Figures(size, batch_rate, await single_rate(store, rng), asof)
        finally:
            await store.close()


async def asof_p50(store: EventStore, rng: random.Random) -> float:
    latencies = []
    for i in range(ASOF_WARMUP + ASOF_CALLS):
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        started = time.perf_counter()
        known = await resolve(store, None)
        await company_state(store, GIANT, day, known, include_possible=False)
        if i >= ASOF_WARMUP:
            latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000


async def single_rate(store: EventStore, rng: random.Random) -> float:
    events = [
        [validate_body(body(f"c{task:04d}", n, rng))[0] for n in range(PER_TASK)]
        for task in range(TASKS)
    ]
    writer = GroupWriter(store, linger_seconds=0.002)
    writer.start()

    async def appender(mine: list[NewEvent]) -> None:
        for event in mine:
            await writer.append([event])

    try:
        started = time.perf_counter()
        await asyncio.gather(*(appender(mine) for mine in events))
        elapsed = time.perf_counter() - started
    finally:
        await writer.stop()
    return TASKS * PER_TASK / elapsed


@functools.cache
def company_class() -> type[Any]:
    """The peer's aggregate (defined once: eventsourcing registers each class by its topic)."""
    from eventsourcing.domain import Aggregate, event

    class Company(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name

        @event("FactRecorded")
        def record(self, data: dict[str, str]) -> None:
            pass

    return Company


def peer(kind: str, target: str, log_size: int) -> Figures:
    """One run of the eventsourcing library: kind "postgres" (target a DSN) or "sqlite"
    (target a file path whose directory holds the temporary database)."""
    from eventsourcing.application import Application

    Company = company_class()

    def company(name: str, facts: int, rng: random.Random) -> Any:
        aggregate = Company(name)  # its creation is one of the pending events
        for n in range(facts - 1):
            aggregate.record(payload(n, rng))
        return aggregate

    with contextlib.ExitStack() as stack:
        if kind == "postgres":
            parts = urlsplit(target)
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
                "POSTGRES_HOST": parts.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
                "POSTGRES_SCHEMA": stack.enter_context(fresh_schema(target)),
            }
        else:
            directory = stack.enter_context(tempfile.TemporaryDirectory(dir=target))
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(Path(directory) / "peer.db"),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        app: Application[Any] = Application(env=env)
        stack.callback(app.close)
        rng = random.Random(log_size)
        for start in range(0, log_size, BATCH):
            app.save(company(f"p{start}", min(BATCH, log_size - start), rng))
        aggregates = [company(f"b{i}", BATCH, rng) for i in range(BATCHES)]
        started = time.perf_counter()
        for aggregate in aggregates:
            app.save(aggregate)
        batch_rate = BATCH * BATCHES / (time.perf_counter() - started)
        writers = [company(f"s{i}", 1, rng) for i in range(TASKS)]
        for aggregate in writers:
            app.save(aggregate)
        ready = threading.Barrier(TASKS + 1)

        def appender(aggregate: Any) -> None:
            ready.wait()
            for n in range(PER_TASK):
                aggregate.record(payload(n, rng))
                app.save(aggregate)

        with ThreadPoolExecutor(TASKS) as pool:
            done = [pool.submit(appender, aggregate) for aggregate in writers]
            ready.wait()
            started = time.perf_counter()
            for future in done:
                future.result()
            single_rate = TASKS * PER_TASK / (time.perf_counter() - started)
        return Figures(log_size, batch_rate, single_rate)


def shown(url: str) -> str:
    """A URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def pinning() -> str:
    cpus, total = sorted(os.sched_getaffinity(0)), os.cpu_count() or 0
    if len(cpus) < total:
        return f"pinned to CPU {','.join(map(str, cpus))} of {total} (taskset); servers are not"
    return f"not pinned (may run on all {total} CPUs)"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", action="append", default=[], help="sqlite:///PATH or postgresql://")
    p.add_argument("--peer-dsn", help="postgresql:// DSN for the eventsourcing peer")
    p.add_argument("--peer-sqlite", help="directory for the peer's SQLite runs (optional)")
    p.add_argument("--log-size", type=int, default=100_000, help="events preloaded per run")
    p.add_argument("--runs", type=int, default=5, help="runs per backend (figures are medians)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.log_size < 0:
        p.error("--runs must be >= 1 and --log-size >= 0")
    targets: dict[str, Callable[[], Figures]] = {}
    for url in args.db:
        targets[f"ours {shown(url)}"] = lambda url=url: asyncio.run(ours(url, args.log_size))
    if args.peer_dsn:
        name = f"peer eventsourcing {shown(args.peer_dsn)}"
        targets[name] = lambda: peer("postgres", args.peer_dsn, args.log_size)
    if args.peer_sqlite:
        targets["peer eventsourcing sqlite"] = lambda: peer(
            "sqlite", args.peer_sqlite, args.log_size
        )
    if not targets:
        p.error("nothing to measure: give --db and/or --peer-dsn")
    print(f"in-process benchmark: {args.runs} runs, log preloaded to {args.log_size:,} events")
    print(f"process {pinning()}; {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    runs: dict[str, list[Figures]] = {name: [] for name in targets}
    missing: dict[str, str] = {}
    for run in range(args.runs):
        for name, measure in targets.items():
            if name in missing:
                continue
            try:
                figures = measure()
            except Unavailable as exc:
                missing[name] = str(exc)
                continue
            runs[name].append(figures)
            asof = f", as-of {figures.asof_ms:.2f} ms" if figures.asof_ms is not None else ""
            print(f"  run {run + 1} {name}: batch {figures.batch:,.0f}/s, single "
                  f"{figures.single:,.0f}/s{asof}")  # fmt: skip
    width = max(map(len, targets))
    print(f"\n{'backend':<{width}} | log size | batch events/s | single appends/s | as-of p50 ms")
    medians: dict[str, Figures] = {}
    for name in targets:
        if name in missing:
            print(f"{name:<{width}} | unavailable: {missing[name]}")
            continue
        got = runs[name]
        asof = [f.asof_ms for f in got if f.asof_ms is not None]
        medians[name] = m = Figures(
            got[0].log_size,
            statistics.median(f.batch for f in got),
            statistics.median(f.single for f in got),
            statistics.median(asof) if asof else None,
        )
        asof_text = f"{m.asof_ms:12.2f}" if m.asof_ms is not None else f"{'-':>12}"
        print(f"{name:<{width}} | {m.log_size:>8,} | {m.batch:>14,.0f} | {m.single:>16,.0f} | "
              f"{asof_text}")  # fmt: skip
    ours_pg = [m for n, m in medians.items() if n.startswith("ours postgres")]
    peer_pg = [m for n, m in medians.items() if n.startswith("peer eventsourcing postgres")]
    if ours_pg and peer_pg:
        ratio = ours_pg[0].batch / peer_pg[0].batch
        print(f"ratio ours-PG batch / peer-PG batch (this invocation): {ratio:.2f}")
    else:
        print(
            "ratio ours-PG batch / peer-PG batch: n/a (needs a postgresql:// --db and --peer-dsn)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
