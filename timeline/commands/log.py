"""The commands on a whole log: verify, migrate, rebuild, import, export and copy."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from typing import IO

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

from events.errors import TimelineError
from projections.rebuild import projections, rebuild
from timeline.commands.database import opened, settings_of
from timeline.config import Settings
from timeline.transfer import Format, Importer, copy, export


async def _verify(settings: Settings) -> int:
    async with opened(settings, create=False) as store:
        bad = await store.verify()
        head = await store.head()
    if bad is not None:
        print(f"chain broken: the first bad position is {bad}", file=sys.stderr)
        return 1
    print(f"chain holds: {head.position} events, head hash {head.hash}")
    return 0


def verify(args: argparse.Namespace) -> int:
    return asyncio.run(_verify(settings_of(args)))


async def _migrate(settings: Settings) -> int:
    async with opened(settings) as store:
        version = await store.schema_version()
        head = (await store.head()).position
    print(f"the schema is at version {version} ({head} events in the log)")
    return 0


def migrate_command(args: argparse.Namespace) -> int:
    return asyncio.run(_migrate(settings_of(args)))


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
    async with opened(settings, create=False) as store:
        head = (await store.head()).position
        started = time.perf_counter()
        with _bar("rebuilding projections", MofNCompleteColumn()) as bar:
            task = bar.add_task("rebuild", total=head)
            done = await rebuild(
                store, projections(), progress=lambda n, total: bar.update(task, completed=n)
            )
        elapsed = time.perf_counter() - started
    print(f"rebuilt the projections from {done} events in {elapsed:.1f} s{_rate(done, elapsed)}")
    return 0


def rebuild_command(args: argparse.Namespace) -> int:
    return asyncio.run(_rebuild(settings_of(args)))


async def _import(settings: Settings, source: IO[bytes], name: str, batch: int) -> int:
    size = os.fstat(source.fileno()).st_size if source.seekable() else None
    async with opened(settings) as store:
        importer = Importer(store, batch=batch)
        started = time.perf_counter()
        with _bar(f"importing {name}", DownloadColumn()) as bar:
            task = bar.add_task("import", total=size)
            report = await importer.run(source, lambda done: bar.update(task, completed=done))
        elapsed = time.perf_counter() - started
        head = (await store.head()).position
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
        return asyncio.run(
            _import(settings_of(args), sys.stdin.buffer, "standard input", args.batch)
        )
    with open(args.file, "rb") as source:
        return asyncio.run(_import(settings_of(args), source, args.file, args.batch))


async def _export(settings: Settings, out: IO[bytes], style: Format, after: int) -> range:
    async with opened(settings, create=False) as store:
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


def _output(path: str | None) -> contextlib.AbstractContextManager[IO[bytes]]:
    return open(path, "wb") if path else contextlib.nullcontext(sys.stdout.buffer)


def export_command(args: argparse.Namespace) -> int:
    settings = settings_of(args)
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


async def _copy(settings: Settings, source_url: str, target_url: str, batch: int) -> int:
    async with (
        opened(settings, url=source_url, create=False) as source,
        opened(settings, url=target_url) as target,
    ):
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
        return asyncio.run(_copy(settings_of(args), args.source, args.target, args.batch))
    except TimelineError as error:
        print(f"timeline copy: {error.detail}", file=sys.stderr)
        return 1
