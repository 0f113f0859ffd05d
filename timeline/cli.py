"""The `timeline` command: serve, verify, rebuild, import, export, copy, migrate, and token
create, list and revoke."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from aiohttp import web
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from events.backends import is_postgres, open_store, redacted, sqlite_path
from events.canonical import parse_json
from events.errors import ChainBroken, NotFound, TimelineError
from events.inputs import MAX_BATCH
from events.store import EventStore
from events.validation import validate_body
from projections.rebuild import projections, rebuild
from timeline import logs, workers
from timeline.app import create_app
from timeline.auth import SCOPES, create_token, digest
from timeline.config import Settings
from timeline.runner import Runner
from timeline.transfer import FORMATS, Format, Importer, copy, export

SEEDS = Path(__file__).resolve().parent.parent / "seeds" / "big-models-2023.ndjson"


T = TypeVar("T")


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {"db": getattr(args, "db", None), **extra}
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


async def _open(settings: Settings, *, create: bool = True) -> EventStore:
    """The store; with create=False, a database that holds no log is an error, not a new,
    empty one (a mistyped --db must not export or verify nothing and succeed)."""
    return await _open_url(settings.db, settings, create=create)


async def _open_url(url: str, settings: Settings, *, create: bool = True) -> EventStore:
    if not create and url.startswith("sqlite:"):
        path = sqlite_path(url)
        if path != ":memory:" and not Path(path).is_file():  # noqa: ASYNC240 (at start-up)
            raise FileNotFoundError(f"no database at {path} (--db {url})")
    try:
        return await open_store(
            url, synchronous=settings.sqlite_synchronous, projections=projections(), create=create
        )
    except NotFound as missing:  # a database with no log: as for a file that is not there
        raise FileNotFoundError(f"{missing.detail} (--db {redacted(url)})") from None


async def _load_seeds(store: EventStore) -> int:
    """Append the seed timeline (NDJSON of EventIn, stable ids: loading twice is a no-op)."""
    lines = SEEDS.read_text(encoding="utf-8").splitlines()
    events = validate_body({"events": [parse_json(line) for line in lines if line.strip()]})
    await store.append(events)
    return len(events)


# Serving starts only if the chain holds over this many of the log's last entries.
VERIFY_ON_START = 10_000


async def _first_run(
    settings: Settings, *, seed: bool, check: bool = True
) -> tuple[str | None, int]:
    """Check the chain over the log's last entries (unless told not to); on a database with
    no token, make an `append` token (its secret is returned once); on an empty log, load the
    seed timeline unless told not to."""
    store = await _open(settings)
    try:
        bad = await store.verify(last=VERIFY_ON_START) if check else None
        if bad is not None:
            raise ChainBroken(
                f"the log's hash chain is broken at position {bad} (checked the last "
                f"{VERIFY_ON_START:,} entries): the database was changed outside timeline. "
                "Run `timeline verify` for the whole log; `serve --no-verify` serves it anyway"
            )
        if settings.bootstrap_token is not None:
            secret = settings.bootstrap_token.get_secret_value()
            await store.add_token(digest(secret), "admin", "bootstrap")
        seeded = await _load_seeds(store) if seed and (await store.head()).position == 0 else 0
        if await store.count_tokens() > 0:
            return None, seeded
        return await create_token(store, "append", "first run"), seeded
    finally:
        await store.close()


async def _serve(
    settings: Settings, *, seed: bool, check: bool = True, worker: bool = False
) -> None:
    logs.configure(settings.log_format)  # on standard error; the lines below are printed
    token, seeded = (None, 0) if worker else await _first_run(settings, seed=seed, check=check)
    if seeded:
        print(f"Loaded the seed timeline: {seeded} events", flush=True)
    runner = Runner(
        create_app(settings),
        access_log_class=logs.AccessLogger,
        access_log=logs.ACCESS if settings.access_log else None,
        shutdown_timeout=settings.shutdown_timeout,
        header_timeout=settings.header_timeout_seconds,
    )
    await runner.setup()
    # A worker shares its port with the others (the kernel spreads the connections).
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=worker or None)
    await site.start()
    # What start-up made (modules, schemas, the app) lives as long as the process: move it out
    # of the collector's way, so that full collections scan only what serving creates. With
    # 1,000 open streams this cut the longest pause of the event loop from 42 ms to 11 ms.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host, port = runner.addresses[0][:2]
    if token is not None:
        print(f"Append token (shown only this once): {token}", flush=True)
    print(
        f"Timeline is serving http://{host}:{port}/ (database {redacted(settings.db)})", flush=True
    )
    if not worker:
        print(f"Dashboard: http://{host}:{port}/", flush=True)
    try:
        await stop.wait()
    finally:
        print("Timeline is stopping", flush=True)
        await runner.cleanup()


def serve(args: argparse.Namespace) -> int:
    settings = _settings(args, host=args.host, port=args.port)
    seed, check = not args.no_seed, not args.no_verify
    if args.workers > 1:
        return _serve_workers(settings, args.workers, seed=seed, check=check)
    asyncio.run(_serve(settings, seed=seed, check=check, worker=args.worker))
    return 0


def _serve_workers(settings: Settings, count: int, *, seed: bool, check: bool) -> int:
    if not is_postgres(settings.db):
        raise ValueError(
            "--workers above 1 needs PostgreSQL: a SQLite file has one writer process, and "
            "several would queue behind its lock instead of adding throughput "
            "(use --db postgresql://..., or --workers 1)"
        )
    token, seeded = asyncio.run(_first_run(settings, seed=seed, check=check))
    if seeded:
        print(f"Loaded the seed timeline: {seeded} events", flush=True)
    if token is not None:
        print(f"Append token (shown only this once): {token}", flush=True)
    print(f"Database {redacted(settings.db)}", flush=True)
    command = [sys.executable, "-m", "timeline.cli", "serve", "--worker", "--no-seed"]
    command += ["--db", settings.db, "--host", settings.host]
    return asyncio.run(workers.supervise(command, count, settings.host, settings.port))


async def _verify(settings: Settings) -> int:
    store = await _open(settings, create=False)
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


def _bar(label: str, count: ProgressColumn) -> Progress:
    """A progress bar on standard error, shown only when that is a terminal."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        count,
        TimeRemainingColumn(),
        disable=not sys.stderr.isatty(),
        console=Console(stderr=True),
    )


def _rate(events: int, elapsed: float) -> str:
    return f", {events / elapsed:,.0f} events/s" if events and elapsed > 0 else ""


async def _rebuild(settings: Settings) -> int:
    store = await _open(settings, create=False)
    try:
        head = (await store.head()).position
        started = time.perf_counter()
        with _bar("rebuilding projections", MofNCompleteColumn()) as bar:
            task = bar.add_task("rebuild", total=head)
            done = await rebuild(
                store, projections(), progress=lambda n, total: bar.update(task, completed=n)
            )
        elapsed = time.perf_counter() - started
    finally:
        await store.close()
    print(f"rebuilt the projections from {done} events in {elapsed:.1f} s{_rate(done, elapsed)}")
    return 0


def rebuild_command(args: argparse.Namespace) -> int:
    return asyncio.run(_rebuild(_settings(args)))


async def _import(settings: Settings, source: IO[bytes], name: str, batch: int) -> int:
    size = os.fstat(source.fileno()).st_size if source.seekable() else None
    importer = Importer(await _open(settings), batch=batch)
    try:
        started = time.perf_counter()
        with _bar(f"importing {name}", DownloadColumn()) as bar:
            task = bar.add_task("import", total=size)
            report = await importer.run(source, lambda done: bar.update(task, completed=done))
        elapsed = time.perf_counter() - started
        head = (await importer.store.head()).position
    finally:
        await importer.store.close()
    done = f"{report.stored} events stored, {report.present} already present"
    if report.error is None:
        rate = _rate(report.stored, elapsed)
        print(f"imported {name}: {done}; the log's head is {head} ({elapsed:.1f} s{rate})")
        return 0
    print(f"timeline import: {name}: {report.error}", file=sys.stderr)
    kept = report.committed_line
    before = f"nothing from line {kept + 1} on was stored; lines 1 to {kept} were ({done})"
    advice = (
        "An export is the log as it was: export the original again (what is already "
        "restored is skipped)."
        if report.kind == "entries"
        else "Correct the file and import it again: what is already stored is skipped."
    )
    print(
        f"stopped at line {report.error.line}: {before if kept else 'nothing was stored'}; "
        f"the log's head is {head}. {advice}",
        file=sys.stderr,
    )
    return 1


def import_command(args: argparse.Namespace) -> int:
    if args.file == "-":
        return asyncio.run(_import(_settings(args), sys.stdin.buffer, "standard input", args.batch))
    with open(args.file, "rb") as source:
        return asyncio.run(_import(_settings(args), source, args.file, args.batch))


async def _export(settings: Settings, out: IO[bytes], style: Format, after: int) -> range:
    store = await _open(settings, create=False)
    try:
        total = max(0, (await store.head()).position - after)
        with _bar("exporting", MofNCompleteColumn()) as bar:
            task = bar.add_task("export", total=total)
            return await export(
                store,
                out,
                format=style,
                after=after,
                progress=lambda done: bar.update(task, completed=done),
            )
    finally:
        await store.close()


def _output(path: str | None) -> contextlib.AbstractContextManager[IO[bytes]]:
    return open(path, "wb") if path else contextlib.nullcontext(sys.stdout.buffer)


def export_command(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        with _output(args.output) as out:
            written = asyncio.run(_export(settings, out, args.format, args.after))
    except TimelineError as error:
        print(f"timeline export: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (`timeline export | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    span = f" (positions {written.start} to {written.stop - 1})" if written else ""
    print(
        f"exported {len(written)} events{span} as {args.format} "
        f"to {args.output or 'standard output'}",
        file=sys.stderr,
    )
    return 0


async def _migrate(settings: Settings) -> int:
    store = await _open(settings)
    try:
        version = await store.schema_version()
        head = (await store.head()).position
    finally:
        await store.close()
    print(f"the schema is at version {version} ({head} events in the log)")
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    return asyncio.run(_migrate(_settings(args)))


async def _copy(settings: Settings, source_url: str, target_url: str, batch: int) -> int:
    source = await _open_url(source_url, settings, create=False)
    try:
        target = await _open_url(target_url, settings)
        try:
            total = (await source.head()).position
            started = time.perf_counter()
            with _bar("copying", MofNCompleteColumn()) as bar:
                task = bar.add_task("copy", total=total)
                copied = await copy(
                    source,
                    target,
                    batch=batch,
                    progress=lambda done: bar.update(task, completed=done),
                )
            elapsed = time.perf_counter() - started
        finally:
            await target.close()
    finally:
        await source.close()
    if copied.source != copied.target:
        print(
            f"timeline copy: the digests differ: the source's head is position "
            f"{copied.source.position} ({copied.source.hash}), the target's "
            f"{copied.target.position} ({copied.target.hash})",
            file=sys.stderr,
        )
        return 1
    print(
        f"copied {copied.stored} events ({copied.present} already present"
        f"{_rate(copied.stored, elapsed)}); both digests are position "
        f"{copied.target.position}, hash {copied.target.hash}"
    )
    return 0


def copy_command(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_copy(_settings(args), args.source, args.target, args.batch))
    except TimelineError as error:
        print(f"timeline copy: {error.detail}", file=sys.stderr)
        return 1


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        with contextlib.suppress(ValueError):
            value = int(text)
            if low <= value and (high is None or value <= high):
                return value
        upper = f" to {high}" if high is not None else " or more"
        raise argparse.ArgumentTypeError(f"expected an integer, {low}{upper}: {text!r}")

    return parse


async def _on_log(settings: Settings, work: Callable[[EventStore], Awaitable[T]]) -> T:
    """`work` on the store of a database that holds a log: the token commands refuse to make
    a new, empty database (a mistyped --db would get tokens that no server reads)."""
    store = await _open(settings, create=False)
    try:
        return await work(store)
    finally:
        await store.close()


def token_create(args: argparse.Namespace) -> int:
    async def create(store: EventStore) -> str:
        return await create_token(store, args.scope, args.label)

    print(asyncio.run(_on_log(_settings(args), create)))
    return 0


def token_list(args: argparse.Namespace) -> int:
    """One line per token: id, scope, created, last used, revoked, label (never a secret)."""
    tokens = asyncio.run(_on_log(_settings(args), lambda store: store.tokens()))
    print(f"{'id':<12}  {'scope':<6}  {'created':<27}  {'last used':<27}  {'revoked':<27}  label")
    for token in tokens:
        print(
            f"{token.id:<12}  {token.scope:<6}  {token.created:<27}  "
            f"{token.last_used or '-':<27}  {token.revoked or '-':<27}  {token.label or ''}"
        )
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    revoked = asyncio.run(_on_log(_settings(args), lambda store: store.revoke_token(args.id)))
    if revoked is None:
        print(
            f"timeline: no token has the id {args.id!r} (`timeline token list` shows them)",
            file=sys.stderr,
        )
        return 2
    print(f"revoked token {revoked.id} ({revoked.scope}) at {revoked.revoked}")
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
        "--workers",
        type=_bounded(1, 64),
        default=1,
        help="serving processes sharing the port (PostgreSQL only; default 1)",
    )
    run.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    run.add_argument(
        "--no-seed", action="store_true", help="do not load the seed timeline into an empty log"
    )
    run.add_argument(
        "--no-verify",
        action="store_true",
        help=f"start even if the chain over the last {VERIFY_ON_START:,} entries is broken",
    )
    run.set_defaults(func=serve)

    check = commands.add_parser("verify", parents=[db], help="recompute the hash chain")
    check.set_defaults(func=verify)

    schema_command = commands.add_parser(
        "migrate",
        parents=[db],
        help="create the database's tables or migrate them to this version, then exit",
        description="Create the log's tables in an empty database, or bring an older schema "
        "up to this version (every command does this when it opens a database; this one does "
        "only that, e.g. as the tables' owner before the service's role starts).",
    )
    schema_command.set_defaults(func=migrate_command)

    again = commands.add_parser(
        "rebuild", parents=[db], help="drop and rebuild every projection from the log"
    )
    again.set_defaults(func=rebuild_command)

    load = commands.add_parser(
        "import",
        parents=[db],
        help="append EventIn lines, or restore an export, from NDJSON",
        description="Import NDJSON: EventIn lines are appended; the lines of `timeline export` "
        "(either format) restore the log exactly. Blank lines are skipped.",
    )
    load.add_argument("file", metavar="FILE", help="the NDJSON file; - reads standard input")
    load.add_argument(
        "--batch",
        type=_bounded(1, MAX_BATCH),
        default=MAX_BATCH,
        help=f"events per transaction, 1 to {MAX_BATCH} (default {MAX_BATCH})",
    )
    load.set_defaults(func=import_command)

    dump = commands.add_parser(
        "export", parents=[db], help="write the log as NDJSON, in position order"
    )
    dump.add_argument(
        "--format",
        choices=FORMATS,
        default="ndjson",
        help="ndjson: each event as GET /v1/events returns it; cloudevents: CloudEvents 1.0 JSON",
    )
    dump.add_argument("--output", metavar="FILE", help="write here instead of standard output")
    dump.add_argument(
        "--after",
        type=_bounded(0),
        default=0,
        metavar="N",
        help="only the events after position N (to continue an earlier export)",
    )
    dump.set_defaults(func=export_command)

    move = commands.add_parser(
        "copy",
        help="copy a whole log to another database, of either backend",
        description="Restore every entry of the log at --from into the database at --to "
        "(created if needed), exactly as stored, then check that both digests are equal. "
        "An interrupted copy goes on where it stopped.",
    )
    move.add_argument("--from", dest="source", required=True, metavar="URL", help="source URL")
    move.add_argument("--to", dest="target", required=True, metavar="URL", help="target URL")
    move.add_argument(
        "--batch",
        type=_bounded(1, 100_000),
        default=MAX_BATCH,
        help=f"entries per transaction (default {MAX_BATCH})",
    )
    move.set_defaults(func=copy_command)

    token = commands.add_parser("token", help="manage bearer tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", parents=[db], help="create a token")
    create.add_argument("--scope", choices=SCOPES, required=True)
    create.add_argument("--label", help="a note stored beside the token's hash")
    create.set_defaults(func=token_create)
    listing = token_commands.add_parser("list", parents=[db], help="list the tokens")
    listing.set_defaults(func=token_list)
    revoke = token_commands.add_parser(
        "revoke", parents=[db], help="revoke a token: servers refuse it within 5 seconds"
    )
    revoke.add_argument("id", help="the token's id, as `timeline token list` shows it")
    revoke.set_defaults(func=token_revoke)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (ValueError, OSError) as exc:
        print(f"timeline: {exc}", file=sys.stderr)
        return 2
    except TimelineError as error:  # e.g. an unreachable database, a schema too new
        print(f"timeline: {error.detail}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
