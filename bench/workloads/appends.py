"""Workloads 1-3: appends over HTTP, ours against the limit and the peer.

On fresh databases, three servers at once (only one has load at a time): ours, whose
`POST /bench/validate` is the limit (the same parsing and validation, nothing stored), and
the peer. Runs alternate between them. wrk sends new events (no ids; 100 companies):

1. single-event durable appends, 64 connections: ours >= 0.75 x the limit, >= 3 x the peer;
2. one client appending one event at a time: in process (no HTTP), our rate of sequential
   appends through the group writer (as the server makes them) against the peer's rate of
   sequential saves: >= 0.75 x; over HTTP (one connection), both servers' rates and p50s;
3. batches of 1000 events, 2 connections: ours >= 0.4 x the batch limit, >= 2 x the peer.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

from bench import peer as peer_module
from bench.data import fuzzy, payload
from bench.harness import Check, Context, Figure
from bench.machine import SERVER_CPU, Server, Wrk, WrkRun, on_cpu
from events.backends import open_store
from events.validation import validate_body
from events.writer import GroupWriter
from projections.rebuild import projections

DURABLE, LIMIT = "/v1/events", "/bench/validate"
SAVES = {"smoke": 200, "quick": 2_000, "full": 5_000}  # the peer's in-process saves


async def _sequential(url: str, count: int) -> float:
    """Events/s of appending one event at a time, each after the last was acknowledged,
    through a GroupWriter in front of the store, as the server appends; events validated
    before the clock (the peer's save_rate, ours)."""
    rng = random.Random(count)
    company = f"rate-{rng.getrandbits(48):012x}"
    batches = [
        validate_body(
            {
                "type": "model.launched",
                "company": company,
                "occurred": fuzzy(rng),
                "data": payload("model.launched", n),
            }
        )
        for n in range(count + 1)
    ]
    store = await open_store(url, projections=projections())
    writer = GroupWriter(store)
    writer.start()
    try:
        await writer.append(batches[0])
        started = time.perf_counter()
        for batch in batches[1:]:
            await writer.append(batch)
        return count / (time.perf_counter() - started)
    finally:
        await writer.stop()
        await store.close()


def _head(server: Server) -> int:
    return int(server.get_json("/healthz")["head"])


def _alternate(runs: int, loads: dict[str, Callable[[], WrkRun]]) -> dict[str, list[WrkRun]]:
    found: dict[str, list[WrkRun]] = {name: [] for name in loads}
    for _ in range(runs):
        for name, load in loads.items():
            found[name].append(load())
    return found


def _median(runs: list[WrkRun], what: str = "events_per_second") -> float:
    return statistics.median(getattr(run, what) for run in runs)


def _p50_ms(runs: list[WrkRun]) -> float:
    return statistics.median(run.latency_us["p50"] for run in runs) / 1000


def _disturbed(*groups: list[WrkRun]) -> int:
    return sum(run.cpu.disturbed for runs in groups for run in runs)


def _log(runs: list[WrkRun]) -> str:
    return f"{runs[0].log[0]:,}-{runs[-1].log[1]:,}"


def run(context: Context) -> list[Figure]:
    return context.each_pinning(_one_pinning)


def _one_pinning(context: Context, pin: bool) -> list[Figure]:
    sizes, label = context.sizes, "pinned" if pin else "unpinned"
    with ExitStack() as stack:
        url = stack.enter_context(context.database(f"appends-{label}"))
        peer_url, schema = stack.enter_context(context.peer_store(f"appends-{label}"))
        ours = stack.enter_context(context.ours(url, f"ours-{label}", pin))
        peer = stack.enter_context(context.peer(peer_url, schema, f"peer-{label}", pin))
        wrk = context.wrk(pin)

        def load(
            server: Server, path: str, connections: int, batch: int = 0
        ) -> Callable[[], WrkRun]:
            def go() -> WrkRun:
                before = _head(ours) if server is ours and path == DURABLE else 0
                result = _wrk(wrk, server, path, connections, sizes.seconds, batch)
                if server is ours and path == DURABLE:
                    result.log = (before, _head(ours))
                return result

            return go

        if sizes.warmup:
            for server, path in ((ours, DURABLE), (ours, LIMIT), (peer, DURABLE)):
                _wrk(wrk, server, path, 64, sizes.warmup, 0)
        single = _alternate(
            sizes.runs,
            {
                "ours": load(ours, DURABLE, 64),
                "limit": load(ours, LIMIT, 64),
                "peer": load(peer, DURABLE, 64),
            },
        )
        one = _alternate(
            sizes.runs, {"ours": load(ours, DURABLE, 1), "peer": load(peer, DURABLE, 1)}
        )
        batches = _alternate(
            sizes.runs,
            {
                "ours": load(ours, DURABLE, 2, 1000),
                "limit": load(ours, LIMIT, 2, 1000),
                "peer": load(peer, DURABLE, 2, 1000),
            },
        )
    saves, ours_saves = [], []
    cpu = SERVER_CPU if pin else None
    for run in range(sizes.runs):  # alternated, on fresh stores
        with context.peer_store(f"saves-{label}-{run}") as (peer_url, schema), on_cpu(cpu):
            saves.append(peer_module.save_rate(peer_url, schema, SAVES[sizes.name]))
        with context.database(f"saves-{label}-{run}") as url, on_cpu(cpu):
            ours_saves.append(asyncio.run(_sequential(url, SAVES[sizes.name])))
    save_rate, ours_save = statistics.median(saves), statistics.median(ours_saves)
    ours_single, limit_single, peer_single = (
        _median(single[name]) for name in ("ours", "limit", "peer")
    )
    ours_batch, limit_batch, peer_batch = (
        _median(batches[name]) for name in ("ours", "limit", "peer")
    )
    ours_one = _median(one["ours"])
    context.shared.setdefault("batch_rate", ours_batch)  # workload 4 compares with it
    common = {"pinned": pin, "runs": sizes.runs}
    return [
        Figure(
            "1 single appends, 64 conn.",
            "events/s",
            ours_single,
            limit_single,
            peer_single,
            [
                Check("ours/limit", ours_single / limit_single, ">=", 0.75),
                Check("ours/peer", ours_single / peer_single, ">=", 3.0),
            ],
            log=_log(single["ours"]),
            disturbed=_disturbed(*single.values()),
            note=f"p50 {_p50_ms(single['ours']):.2f} ms, peer {_p50_ms(single['peer']):.2f} ms",
            **common,
        ),
        Figure(
            "2 one at a time, in process",
            "events/s",
            ours_save,
            None,
            save_rate,
            [Check("ours/peer", ours_save / save_rate, ">=", 0.75)],
            log=f"0-{SAVES[sizes.name]:,}",
            **common,
        ),
        Figure(
            "2 one at a time, HTTP 1 conn.",
            "events/s",
            ours_one,
            None,
            _median(one["peer"]),
            log=_log(one["ours"]),
            disturbed=_disturbed(*one.values()),
            note=f"p50 {_p50_ms(one['ours']):.2f} ms, peer {_p50_ms(one['peer']):.2f} ms",
            **common,
        ),
        Figure(
            "3 batches of 1000, 2 conn.",
            "events/s",
            ours_batch,
            limit_batch,
            peer_batch,
            [
                Check("ours/limit", ours_batch / limit_batch, ">=", 0.4),
                Check("ours/peer", ours_batch / peer_batch, ">=", 2.0),
            ],
            log=_log(batches["ours"]),
            disturbed=_disturbed(*batches.values()),
            **common,
        ),
    ]


def _wrk(
    wrk: Wrk, server: Server, path: str, connections: int, seconds: float, batch: int
) -> WrkRun:
    script_args = ["batch", str(batch)] if batch else ["single"]
    return wrk.run(
        server,
        path,
        script="wrk.lua",
        script_args=script_args,
        connections=connections,
        seconds=seconds,
        events_per_request=batch or 1,
    )
