"""The `timeline` command: serve, verify, rebuild, token create."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from events.backends import open_store
from events.envelope import parse_json, validate_body
from events.store import EventStore
from projections.rebuild import projections, rebuild
from timeline.app import create_app
from timeline.auth import SCOPES, Scope, create_token, digest
from timeline.config import Settings

SEEDS = Path(__file__).resolve().parent.parent / "seeds" / "big-models-2023.ndjson"


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {"db": args.db, **extra}
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


async def _open(settings: Settings) -> EventStore:
    return await open_store(
        settings.db, synchronous=settings.sqlite_synchronous, projections=projections()
    )


async def _load_seeds(store: EventStore) -> int:
    """Append the seed timeline (NDJSON of EventIn, stable ids: loading twice is a no-op)."""
    lines = SEEDS.read_text(encoding="utf-8").splitlines()
    events = validate_body({"events": [parse_json(line) for line in lines if line.strip()]})
    await store.append(events)
    return len(events)


async def _first_run(settings: Settings, *, seed: bool) -> tuple[str | None, int]:
    """On a database with no token, make an `append` token (its secret is returned once);
    on an empty log, load the seed timeline unless told not to."""
    store = await _open(settings)
    try:
        if settings.bootstrap_token is not None:
            secret = settings.bootstrap_token.get_secret_value()
            await store.add_token(digest(secret), "admin", "bootstrap")
        seeded = await _load_seeds(store) if seed and (await store.head()).position == 0 else 0
        if await store.count_tokens() > 0:
            return None, seeded
        return await create_token(store, "append", "first run"), seeded
    finally:
        await store.close()


async def _serve(settings: Settings, *, seed: bool) -> None:
    token, seeded = await _first_run(settings, seed=seed)
    if seeded:
        print(f"Loaded the seed timeline: {seeded} events", flush=True)
    runner = web.AppRunner(
        create_app(settings), access_log=None, shutdown_timeout=settings.shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host, port = runner.addresses[0][:2]
    if token is not None:
        print(f"Append token (shown only this once): {token}", flush=True)
    print(f"Timeline is serving http://{host}:{port}/ (database {settings.db})", flush=True)
    print(f"Dashboard: http://{host}:{port}/", flush=True)
    try:
        await stop.wait()
    finally:
        print("Timeline is stopping", flush=True)
        await runner.cleanup()


def serve(args: argparse.Namespace) -> int:
    settings = _settings(args, host=args.host, port=args.port)
    asyncio.run(_serve(settings, seed=not args.no_seed))
    return 0


async def _verify(settings: Settings) -> int:
    store = await _open(settings)
    try:
        bad = await store.verify()
        head = await store.head()
    finally:
        await store.close()
    if bad is not None:
        print(f"chain broken: the first bad position is {bad}", file=sys.stderr)
        return 1
    print(f"chain holds: {head.position} events, head hash {head.hash}")
    return 0


def verify(args: argparse.Namespace) -> int:
    return asyncio.run(_verify(_settings(args)))


async def _rebuild(settings: Settings) -> int:
    store = await _open(settings)
    try:
        head = (await store.head()).position
        started = time.perf_counter()
        with Progress(
            TextColumn("rebuilding projections"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not sys.stderr.isatty(),
            console=Console(stderr=True),
        ) as bar:
            task = bar.add_task("rebuild", total=head)
            done = await rebuild(
                store, projections(), progress=lambda n, total: bar.update(task, completed=n)
            )
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    rate = f", {done / elapsed:,.0f} events/s" if done and elapsed > 0 else ""
    print(f"rebuilt the projections from {done} events in {elapsed:.1f} s{rate}")
    return 0


def rebuild_command(args: argparse.Namespace) -> int:
    return asyncio.run(_rebuild(_settings(args)))


async def _token_create(settings: Settings, scope: Scope, label: str | None) -> str:
    store = await _open(settings)
    try:
        return await create_token(store, scope, label)
    finally:
        await store.close()


def token_create(args: argparse.Namespace) -> int:
    print(asyncio.run(_token_create(_settings(args), args.scope, args.label)))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="timeline", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument("--db", help="database URL (default: $TIMELINE_DB or sqlite:///timeline.db)")

    run = commands.add_parser("serve", parents=[db], help="serve the HTTP API")
    run.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to listen on (default 8080; 0 = any free)")
    run.add_argument(
        "--no-seed", action="store_true", help="do not load the seed timeline into an empty log"
    )
    run.set_defaults(func=serve)

    check = commands.add_parser("verify", parents=[db], help="recompute the hash chain")
    check.set_defaults(func=verify)

    again = commands.add_parser(
        "rebuild", parents=[db], help="drop and rebuild every projection from the log"
    )
    again.set_defaults(func=rebuild_command)

    token = commands.add_parser("token", help="manage bearer tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", parents=[db], help="create a token")
    create.add_argument("--scope", choices=SCOPES, required=True)
    create.add_argument("--label", help="a note stored beside the token's hash")
    create.set_defaults(func=token_create)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ValueError as exc:
        print(f"timeline: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
