"""In-process append and as-of benchmark: our stores, and the `eventsourcing` library as a peer.

No HTTP: stores are driven directly. Each run of each --db URL gets a fresh database (SQLite: a
new file in a temporary directory beside PATH, which is not touched; PostgreSQL: a new schema as
the URL's search_path, dropped after), opened by `open_store(url, projections=projections())`
and preloaded to --log-size events (batches of 1000 by `store.append`, over 1000 companies and
300 facts of `giant`). It measures: batch: 10 batches of 1000 new events of one new company
each, `store.append` one after another (events/s); spread: the same with each batch over 1000
companies; single: 64 asyncio tasks appending one event at a time, 32 each, through one
`GroupWriter(store, linger_seconds=0.002)` (appends/s); as-of: `resolve(store, None)` then
`company_state` of `giant` at a random day, p50 of 300 calls after 20 (ms).

The peer (--peer-dsn) is an eventsourcing `Application` on its PostgreSQL persistence with an
`Aggregate` per company, in a fresh schema (POSTGRES_SCHEMA) per run, preloaded to the same
size by saves of 1000 events: batch: 10 saves of one new aggregate with 1000 pending events;
spread: 10 saves of 1000 new aggregates with one pending event each (events/s); single: 64
threads each saving one new event of its own aggregate per call, 32 each (events/s). Its
payloads match ours (model, stage, occurred).

Events are built (ours validated) before the clock starts; backends take turns run by run;
figures are medians of --runs runs; the output says whether the process is pinned (taskset).

    python bench/inprocess.py --db sqlite:///bench.db --db postgresql://postgres@127.0.0.1/test \
        --peer-dsn postgresql://postgres@127.0.0.1/test --log-size 100000 --runs 5
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

from events.backends import open_store, redacted, sqlite_path  # noqa: E402
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
    """One run or the medians: log size, events/s, single appends/s, as-of p50 ms (ours)."""

    log_size: int
    batch: float  # 1000 events of one company a batch
    spread: float  # 1000 events of 1000 companies a batch
    single: float
    asof_ms: float | None = None


def payload(n: int, rng: random.Random) -> dict[str, str]:
    day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    occurred = rng.choice([day.isoformat(), f"{day.year}-{day.month:02d}", f"{day.year}"])
    return {"model": f"Model {n:07d}", "stage": "public", "occurred": occurred}


def batch_of(
    start: int, size: int, rng: random.Random, every_giant: int = 0, company: str | None = None
) -> list[NewEvent]:
    """Validated model.launched events without ids (the store makes them), as clients send:
    of `company`, or spread over COMPANIES companies."""
    bodies = []
    for n in range(start, start + size):
        if company is not None:
            name = company
        else:
            name = GIANT if every_giant and n % every_giant == 0 else f"c{n % COMPANIES:04d}"
        data: dict[str, Any] = payload(n, rng)
        occurred = data.pop("occurred")
        bodies.append(dict(type="model.launched", company=name, occurred=occurred, data=data))
    return validate_body({"events": bodies})


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
        except ValueError as exc:  # e.g. a backend this version does not have
            raise Unavailable(str(exc)) from exc
        try:
            rng = random.Random(log_size)
            every_giant = max(1, log_size // GIANT_FACTS)
            for start in range(0, log_size, BATCH):
                await store.append(batch_of(start, min(BATCH, log_size - start), rng, every_giant))
            size = (await store.head()).position
            asof = await asof_p50(store, rng)
            preloaded, rates = size, []
            for one_company in (True, False):
                batches = [
                    batch_of(size + i * BATCH, BATCH, rng, company=f"b{i}" if one_company else None)
                    for i in range(BATCHES)
                ]
                started = time.perf_counter()
                for batch in batches:
                    await store.append(batch)
                rates.append(BATCH * BATCHES / (time.perf_counter() - started))
                size += BATCH * BATCHES
            return Figures(preloaded, rates[0], rates[1], await single_rate(store, rng), asof)
        finally:
            await store.close()


def run_ours(url: str, log_size: int) -> Figures:
    return asyncio.run(ours(url, log_size))


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
    events = [[batch_of(task, 1, rng)[0] for _ in range(PER_TASK)] for task in range(TASKS)]
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
    """The peer's aggregate, defined once: eventsourcing registers a class by its topic."""
    from eventsourcing.domain import Aggregate, event

    class Company(Aggregate):
        def __init__(self, name: str) -> None:
            self.name = name

        @event("FactRecorded")
        def record(self, data: dict[str, str]) -> None:
            pass

    return Company


def peer(dsn: str, log_size: int) -> Figures:
    """One run of the eventsourcing library on PostgreSQL, in a fresh schema."""
    from eventsourcing.application import Application

    company = company_class()
    rng = random.Random(log_size)

    def pending(name: str, facts: int) -> Any:
        aggregate = company(name)  # its creation is one of the pending events
        for n in range(facts - 1):
            aggregate.record(payload(n, rng))
        return aggregate

    parts = urlsplit(dsn)
    with fresh_schema(dsn) as schema:
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),  # required, even if empty
            "POSTGRES_SCHEMA": schema,  # it must exist: the library creates only its tables
        }
        app: Application[Any] = Application(env=env)
        try:
            for start in range(0, log_size, BATCH):
                app.save(pending(f"p{start}", min(BATCH, log_size - start)))
            aggregates = [pending(f"b{i}", BATCH) for i in range(BATCHES)]
            started = time.perf_counter()
            for aggregate in aggregates:
                app.save(aggregate)
            batch_rate = BATCH * BATCHES / (time.perf_counter() - started)
            spread = [[pending(f"m{i}-{n}", 1) for n in range(BATCH)] for i in range(BATCHES)]
            started = time.perf_counter()
            for group in spread:
                app.save(*group)
            spread_rate = BATCH * BATCHES / (time.perf_counter() - started)
            writers = [pending(f"s{i}", 1) for i in range(TASKS)]
            app.save(*writers)
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
        finally:
            app.close()
    return Figures(log_size, batch_rate, spread_rate, single_rate)


def pinning() -> str:
    cpus, total = sorted(os.sched_getaffinity(0)), os.cpu_count() or 0
    if len(cpus) < total:
        return f"pinned to CPU {','.join(map(str, cpus))} of {total} (taskset); servers are not"
    return f"not pinned (affinity: all {total} CPUs)"


def median(runs: list[Figures]) -> Figures:
    asof = [run.asof_ms for run in runs if run.asof_ms is not None]
    return Figures(
        runs[0].log_size,
        statistics.median(run.batch for run in runs),
        statistics.median(run.spread for run in runs),
        statistics.median(run.single for run in runs),
        statistics.median(asof) if asof else None,
    )


def row(name: str, width: int, m: Figures | str) -> str:
    if isinstance(m, str):
        return f"{name:<{width}} | unavailable: {m}"
    asof = f"{m.asof_ms:12.2f}" if m.asof_ms is not None else f"{'-':>12}"
    return (
        f"{name:<{width}} | {m.log_size:>8,} | {m.batch:>14,.0f} | {m.spread:>14,.0f} "
        f"| {m.single:>16,.0f} | {asof}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", action="append", default=[], help="sqlite:///PATH or postgresql://...")
    p.add_argument("--peer-dsn", help="postgresql://... for the eventsourcing peer")
    p.add_argument("--log-size", type=int, default=100_000, help="events preloaded per run")
    p.add_argument("--runs", type=int, default=5, help="runs per backend (medians)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.log_size < 0 or not (args.db or args.peer_dsn):
        p.error("give --db and/or --peer-dsn, --runs >= 1 and --log-size >= 0")
    targets: dict[str, Callable[[], Figures]] = {
        f"ours {redacted(url)}": functools.partial(run_ours, url, args.log_size) for url in args.db
    }
    ours_pg = next((f"ours {redacted(url)}" for url in args.db if url.startswith("postgres")), "")
    peer_pg = f"peer eventsourcing {redacted(args.peer_dsn)}" if args.peer_dsn else ""
    if peer_pg:
        targets[peer_pg] = functools.partial(peer, args.peer_dsn, args.log_size)
    print(f"in-process benchmark: {args.runs} runs, log preloaded to {args.log_size:,} events")
    print(f"process {pinning()}; Python {sys.version.split()[0]}")
    width = max(map(len, targets))
    header = (
        f"{'backend':<{width}} | log size | batch events/s | spread events/s "
        "| single appends/s | as-of p50 ms"
    )
    print(f"\neach run:\n{header}")
    runs: dict[str, list[Figures]] = {name: [] for name in targets}
    results: dict[str, Figures | str] = {}
    for _ in range(args.runs):
        for name, measure in targets.items():
            if isinstance(results.get(name), str):
                continue
            try:
                runs[name].append(measure())
                results[name] = median(runs[name])
            except Unavailable as exc:
                results[name] = str(exc)
            print(row(name, width, runs[name][-1] if runs[name] else results[name]))
    print(f"\nmedians of {args.runs} runs:\n{header}")
    for name, m in results.items():
        print(row(name, width, m))
    ours_m, peer_m = results.get(ours_pg), results.get(peer_pg)
    if isinstance(ours_m, Figures) and isinstance(peer_m, Figures):
        print(
            "ratios ours-PG / peer-PG (this invocation): "
            f"batch {ours_m.batch / peer_m.batch:.2f}, spread {ours_m.spread / peer_m.spread:.2f}, "
            f"single {ours_m.single / peer_m.single:.2f}"
        )
    else:
        print("ratio ours-PG batch / peer-PG batch: n/a (needs both measured on PostgreSQL)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
