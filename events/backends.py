"""open_store(url): the backend for a database URL."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from events.sqlite import SQLiteEventStore, Synchronous
from events.store import EventStore, Projection

SQLITE_PREFIX = "sqlite:///"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def sqlite_path(url: str) -> str:
    """`sqlite:///relative.db` → `relative.db`; `sqlite:////abs/path.db` → `/abs/path.db`."""
    if not url.startswith(SQLITE_PREFIX) or url == SQLITE_PREFIX:
        raise ValueError(f"not a SQLite URL: {url!r} (expected sqlite:///path.db)")
    return url[len(SQLITE_PREFIX) :]


def redacted(url: str) -> str:
    """The URL as it may be shown: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def check_url(url: str) -> None:
    """Raise ValueError, saying what is expected, unless `url` names a database we open."""
    if url.startswith("sqlite:"):
        sqlite_path(url)
    elif not is_postgres(url):
        raise ValueError(
            f"unsupported database URL {url!r}: use sqlite:///path.db or "
            "postgresql://user@host:port/database"
        )


async def open_store(
    url: str,
    *,
    synchronous: Synchronous = "FULL",
    projections: Sequence[Projection] = (),
    create: bool = True,
) -> EventStore:
    """Open the store a URL names, with the projections it keeps; a database without a log
    gets one unless `create` is false (then it is NotFound). `synchronous` is SQLite's
    durability setting (PostgreSQL's is the server's own)."""
    check_url(url)
    if is_postgres(url):
        # Imported here: only a deployment on PostgreSQL loads its driver.
        from events.postgres import PostgresEventStore

        return await PostgresEventStore.open(url, projections=projections, create=create)
    return await SQLiteEventStore.open(
        sqlite_path(url), synchronous=synchronous, projections=projections, create=create
    )
