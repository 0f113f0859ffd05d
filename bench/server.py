"""The benchmark's server: the real application plus one route that only the benchmark has.

`POST /bench/validate` runs exactly what `POST /v1/events` runs before the store (token,
size, JSON parsing, pydantic validation and defaults: `timeline.endpoints.authorize`, then
`timeline.routes.read_events`) and
answers 201 with a body shaped and sized like the real one, but stores nothing: it is the
upper bound ("the limit") that a durable append could reach on this machine.

Run by the append workloads (bench/workloads/appends.py; several on one port with
--reuse-port, as `timeline serve --workers` does); it prints `port <n>` once it listens on
127.0.0.1, and stops on SIGTERM/SIGINT or when the process that started it goes away. The
admin token comes from TIMELINE_BOOTSTRAP_TOKEN, like `timeline serve`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from typing import cast, get_args

from aiohttp import web

from events.entries import LogEntry, NewEvent
from events.sqlite import Synchronous
from events.store import Appended
from events.values import timestamp
from events.waits import set_within
from timeline import logs
from timeline.app import create_app
from timeline.config import Settings
from timeline.endpoints import authorize
from timeline.routes import created_response, read_events
from timeline.runner import Runner

_FAKE_HASH = "f" * 64


def _fake_recorded(events: list[NewEvent]) -> list[LogEntry]:
    """What the store would answer, minus the store: the same entries, rendered the same way,
    with a made-up position, version and hash instead of the log's."""
    now = timestamp()
    entries = []
    for index, event in enumerate(events, start=1):
        entry = event.recorded_as(index, index, now)
        object.__setattr__(entry, "hash", _FAKE_HASH)  # a plain set, frozen dataclass or not
        entries.append(entry)
    return entries


async def post_validate(request: web.Request) -> web.Response:
    await authorize(request, "append")
    events = await read_events(request)
    return created_response(Appended(_fake_recorded(events), created=True))


async def _watch_parent(parent: int, stop: asyncio.Event) -> None:
    """Stop when the benchmark that started this server is gone (even if it was killed)."""
    while os.getppid() == parent:
        if await set_within(stop, 1):
            return
    stop.set()


async def serve(db: str, synchronous: Synchronous, port: int, reuse_port: bool) -> None:
    settings = Settings(db=db, host="127.0.0.1", port=port, sqlite_synchronous=synchronous)
    app = create_app(settings)
    app.router.add_post("/bench/validate", post_validate)
    await serve_app(app, settings, port, reuse_port=reuse_port)


async def serve_app(
    app: web.Application, settings: Settings, port: int, *, reuse_port: bool = False
) -> None:
    """Serve `app` on 127.0.0.1, logged as `timeline serve` logs (TIMELINE_ACCESS_LOG=0 turns
    the access line off); print `port <n>` once listening; stop on SIGTERM/SIGINT or when the
    process that started this one is gone."""
    logs.configure(settings.log_format)
    runner = Runner(
        app,
        access_log_class=logs.AccessLogger,
        access_log=logs.ACCESS if settings.access_log else None,
        shutdown_timeout=settings.shutdown_timeout,
        header_timeout=settings.header_timeout_seconds,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_port=reuse_port or None)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        watcher = asyncio.create_task(_watch_parent(os.getppid(), stop))
        print(f"port {runner.addresses[0][1]}", flush=True)
        try:
            await stop.wait()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    finally:
        await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="database URL, e.g. sqlite:////tmp/b.db")
    parser.add_argument("--synchronous", choices=get_args(Synchronous), default="FULL")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--reuse-port", action="store_true", help="share the port with other servers (workers)"
    )
    args = parser.parse_args()
    if not os.environ.get("TIMELINE_BOOTSTRAP_TOKEN"):
        print("TIMELINE_BOOTSTRAP_TOKEN must be set", file=sys.stderr)
        return 2
    asyncio.run(serve(args.db, cast(Synchronous, args.synchronous), args.port, args.reuse_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
