"""The database a command names: its settings from the options, its store opened and closed."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from events.backends import open_store, redacted, sqlite_path
from events.errors import NotFound
from events.store import EventStore
from projections.rebuild import projections
from timeline.config import Settings


def settings_of(args: argparse.Namespace, **extra: Any) -> Settings:
    """The settings, with --db and `extra` (those given) over the environment's."""
    overrides = {"db": getattr(args, "db", None), **extra}
    return Settings(**{key: value for key, value in overrides.items() if value is not None})


@contextlib.asynccontextmanager
async def opened(
    settings: Settings, *, url: str | None = None, create: bool = True
) -> AsyncIterator[EventStore]:
    """The store at `url` (default: the settings' database), closed when the block ends;
    with create=False, a database that holds no log is an error, not a new, empty one (a
    mistyped --db must not export or verify nothing and succeed)."""
    store = await _open(settings.db if url is None else url, settings, create=create)
    try:
        yield store
    finally:
        await store.close()


async def _open(url: str, settings: Settings, *, create: bool) -> EventStore:
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
