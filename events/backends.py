"""open_store(url): the backend for a database URL."""

from __future__ import annotations

from collections.abc import Sequence

from events.sqlite import SQLiteEventStore, Synchronous
from events.store import EventStore, Projection

SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> str:
    """`sqlite:///relative.db` → `relative.db`; `sqlite:////abs/path.db` → `/abs/path.db`."""
    if not url.startswith(SQLITE_PREFIX) or url == SQLITE_PREFIX:
        raise ValueError(f"not a SQLite URL: {url!r} (expected sqlite:///path.db)")
    return url[len(SQLITE_PREFIX) :]


async def open_store(
    url: str, *, synchronous: Synchronous = "FULL", projections: Sequence[Projection] = ()
) -> EventStore:
    """Open (creating if needed) the store a URL names, with the projections it keeps."""
    if url.startswith("sqlite:"):
        return await SQLiteEventStore.open(
            sqlite_path(url), synchronous=synchronous, projections=projections
        )
    if url.startswith(("postgresql:", "postgres:")):
        raise ValueError("the PostgreSQL backend is not available in this version; use sqlite:///")
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path.db")
