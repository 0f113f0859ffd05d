"""Workload 4: `timeline import` of the benchmark's log, against the same log over HTTP.

The log (bench/data.py) is imported into a fresh database by `timeline import` (wall clock
of the whole command, interpreter start included; on CPU 0 when pinned), and posted to our
server on another fresh database in batches of 1000 by two connections (this process, on
CPU 1, sending prebuilt bodies). Target: the import at least as fast as the HTTP batches of
the same log, as it skips HTTP. The imported database is the log the reads and the rebuild
workloads then use (made here on first use, whichever of them runs first).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from bench.data import Log, write_log
from bench.harness import Check, Context, Figure
from bench.machine import CLIENT_CPU, BenchError, on_cpu, watched

BATCH = 1000


@dataclass(frozen=True)
class Imported:
    url: str
    log: Log
    seconds: float


def imported(context: Context) -> Imported:
    """The benchmark's log, imported once per harness run, kept until it ends. A failed
    import fails every workload that needs the log, without a second try."""
    if "imported" not in context.shared:
        context.shared["imported"] = BenchError("the import of the log failed")
        sizes = context.sizes
        log = write_log(context.scratch / "log.ndjson", sizes.log, sizes.giant, sizes.companies)
        url = context.stack.enter_context(context.database("log"))
        seconds = context.command(["timeline.cli", "import", str(log.path), "--db", url])
        context.shared["imported"] = Imported(url, log, seconds)
    found = context.shared["imported"]
    if isinstance(found, BenchError):
        raise found
    assert isinstance(found, Imported)
    return found


async def post_batches(url: str, token: str, bodies: list[bytes], connections: int) -> float:
    """Seconds to post every body, `connections` at a time; each must be answered 201."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    pending = iter(bodies)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def sender() -> None:
            for body in pending:
                async with http.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    if response.status != 201:
                        raise BenchError(
                            f"a batch was answered {response.status}: {answer[:300]!r}"
                        )

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(connections)))
        return time.perf_counter() - started


def _bodies(log: Log) -> list[bytes]:
    lines = log.path.read_bytes().splitlines()
    return [
        b'{"events":[' + b",".join(lines[start : start + BATCH]) + b"]}"
        for start in range(0, len(lines), BATCH)
    ]


def run(context: Context) -> list[Figure]:
    done = imported(context)
    rate = done.log.events / done.seconds
    bodies = _bodies(done.log)
    with context.database("http-log") as url, context.ours(url, "http-log") as server:
        with on_cpu(CLIENT_CPU), watched(server.pids) as cpu:
            seconds = asyncio.run(post_batches(server.url("/v1/events"), context.token, bodies, 2))
        server.check_alive()
        head = int(server.get_json("/healthz")["head"])
    if head != done.log.events:
        raise BenchError(f"the log posted over HTTP holds {head} events, not {done.log.events}")
    http_rate = done.log.events / seconds
    return [
        Figure(
            "4 import of the log",
            "events/s",
            rate,
            limit=http_rate,
            checks=[Check("import/HTTP batches", rate / http_rate, ">=", 1.0)],
            log=f"0-{done.log.events:,}",
            disturbed=int(cpu[0].disturbed),
            note=f"{done.seconds:.1f} s, start included; limit: the log over HTTP, 2 conn.",
        )
    ]
