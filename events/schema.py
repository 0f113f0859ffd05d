"""Schema versions: the log's own tables (log, tokens) carry a version, and forward-only
migrations bring an older database up to the code's at open. A database whose version is
newer than the code's is refused. The projections are not versioned: `timeline rebuild`
recreates them from the log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from events import subscriptions
from events.errors import NotFound, SchemaMismatch
from events.store import Projection, Transaction, timestamp

# The version of the schema this code writes. 1 is the schema of the releases before versions
# were kept (a SQLite file with a log and no schema_version table).
VERSION = 2

VERSION_TABLE = "CREATE TABLE schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL)"


@dataclass(frozen=True, slots=True)
class Migrations:
    """A backend's schema: `create` makes a fresh database at VERSION; `steps[n]` takes one
    at version n - 1 to n."""

    create: Sequence[str]
    steps: Mapping[int, Sequence[str]]


# The tables the store keeps for other modules, created with the log's: one statement list
# per owner, its SQL written there.
OTHER_TABLES = (*subscriptions.schema(),)


def migrate(
    tx: Transaction, migrations: Migrations, tables: set[str], *, create: bool = True
) -> tuple[int, int]:
    """Create (unless told not to) or migrate the schema in the caller's write transaction,
    given the tables the database has; returns (the version found, 0 when fresh; the version
    now)."""
    if "schema_version" in tables:
        found = int(tx.fetch("SELECT MAX(version) FROM schema_version")[0][0] or 1)
    elif "events" in tables:
        found = 1
        tx.execute(VERSION_TABLE)
    elif not create:
        raise NotFound("the database holds no log (it has no `events` table)")
    else:
        for statement in (*migrations.create, *OTHER_TABLES, VERSION_TABLE):
            tx.execute(statement)
        _stamp(tx, VERSION)
        return 0, VERSION
    if found > VERSION:
        raise SchemaMismatch(
            f"the database's schema is version {found}, newer than this version of timeline "
            f"knows (schema version {VERSION}): run a newer timeline on it"
        )
    for version in range(found + 1, VERSION + 1):
        for statement in migrations.steps[version]:
            tx.execute(statement)
        _stamp(tx, version)
    return found, VERSION


def _stamp(tx: Transaction, version: int) -> None:
    tx.execute(
        "INSERT INTO schema_version (version, applied) VALUES (?, ?)", (version, timestamp())
    )


def create_projections(
    tx: Transaction, projections: Sequence[Projection], tables: set[str]
) -> None:
    """Create the tables and indexes of every projection one of whose tables is missing (a
    role that may only read and write them never runs DDL)."""
    for projection in projections:
        if not set(projection.tables()) <= tables:
            for statement in (*projection.schema(), *projection.indexes()):
                tx.execute(statement)
