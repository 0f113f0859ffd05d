"""Schema versions: the store's own tables (the log, tokens, webhook subscriptions) carry a
version, and forward-only migrations bring an older database up to the code's at open. A
database whose version is newer than the code's is refused. The projections are not
versioned on their own: `timeline rebuild` recreates them from the log, and so does a
migration across a version at which what they keep changed (PROJECTIONS_CHANGED)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from events import subscriptions
from events.errors import NotFound, SchemaMismatch, StoreError
from events.store import Projection, Transaction
from events.values import timestamp

# The version of the schema this code writes. 1 is the schema of the releases before versions
# were kept (a SQLite file with a log and no schema_version table).
VERSION = 5
# Version 3: a token records when it was last used and when it was revoked (both backends).
TOKEN_STEPS = (
    "ALTER TABLE tokens ADD COLUMN last_used TEXT",
    "ALTER TABLE tokens ADD COLUMN revoked TEXT",
)
# Version 5: the log's entries by type and by company, each in position order, so that a
# filtered read walks only the entries it returns (see LogStore.read) (both backends).
LOG_INDEXES = (
    "CREATE INDEX events_type ON events (type, position)",
    "CREATE INDEX events_company ON events (company, position)",
)
# The versions at which the projections' tables changed (4: each fact keeps its span key,
# for the chronology; 5: a fact whose range begins on the calendar's first day has a span key
# of its own): a database migrating across one has its projections dropped and
# rebuilt from the log in the migrating transaction, so that no append or read meets a
# projection of the older shape. (Their owners' SQL does it: none of it is written here.)
PROJECTIONS_CHANGED = frozenset({4, 5})

VERSION_TABLE = "CREATE TABLE schema_version (version INTEGER NOT NULL, applied TEXT NOT NULL)"
# The columns a log has had since version 1: a table `events` without them is not a log.
LOG_COLUMNS = frozenset(
    [
        "position",
        "id",
        "company",
        "version",
        "type",
        "occurred",
        "lo",
        "hi",
        "data",
        "source",
        "confidence",
        "recorded",
        "hash",
    ]
)
# The tables the store keeps for other modules, created with the log's (their SQL is their
# owner's), and the steps that brought them in.
OTHER_TABLES = (*subscriptions.schema(),)
OTHER_STEPS: Mapping[int, Sequence[str]] = {2: subscriptions.schema()}


@dataclass(frozen=True, slots=True)
class Migrations:
    """A backend's schema: `create` makes a fresh database at VERSION; `steps[n]` takes one
    at version n - 1 to n (with OTHER_STEPS[n]); `legacy`: whether a log of version 1, from
    before versions, can be found on this backend."""

    create: Sequence[str]
    steps: Mapping[int, Sequence[str]] = field(default_factory=dict)
    legacy: bool = False


@dataclass(frozen=True, slots=True)
class Found:
    """What a database holds: its tables, and the columns of its table `events`."""

    tables: set[str]
    log_columns: set[str]


def migrate(
    tx: Transaction, migrations: Migrations, found: Found, *, create: bool = True
) -> tuple[int, int]:
    """Create (unless told not to) or migrate the schema in the caller's write transaction;
    returns (the version found, 0 when fresh; the version now)."""
    if "schema_version" in found.tables:
        version = int(tx.fetch("SELECT MAX(version) FROM schema_version")[0][0] or 1)
    elif "events" in found.tables:
        if not migrations.legacy or not found.log_columns >= LOG_COLUMNS:
            raise NotFound(
                "the database has a table `events` that is not a Timeline log (no schema "
                "version, other columns): give a database or schema of its own"
            )
        version = 1
        tx.execute(VERSION_TABLE)
    elif not create:
        raise NotFound("the database holds no log (it has no `events` table)")
    else:
        for statement in (*migrations.create, *OTHER_TABLES, VERSION_TABLE):
            tx.execute(statement)
        _stamp(tx, VERSION)
        return 0, VERSION
    if version > VERSION:
        raise SchemaMismatch(
            f"the database's schema is version {version}, newer than this version of timeline "
            f"knows (schema version {VERSION}): run a newer timeline on it"
        )
    for step in range(version + 1, VERSION + 1):
        for statement in (*migrations.steps.get(step, ()), *OTHER_STEPS.get(step, ())):
            tx.execute(statement)
        _stamp(tx, step)
    return version, VERSION


def _stamp(tx: Transaction, version: int) -> None:
    tx.execute(
        "INSERT INTO schema_version (version, applied) VALUES (?, ?)", (version, timestamp())
    )


def projections_changed(found: int) -> bool:
    """Whether the projections of a database found at version `found` (0: a fresh one) are of
    an older shape than the code's."""
    return any(0 < found < version <= VERSION for version in PROJECTIONS_CHANGED)


def create_projections(
    tx: Transaction, projections: Sequence[Projection], tables: set[str], *, found: int = 0
) -> None:
    """Create the tables and indexes of every projection one of whose tables is missing (a
    role that may only read and write them never runs DDL); given the version the database
    was found at, rebuild them all when they are of an older shape."""
    if projections_changed(found):
        if not projections:
            # Their tables are not this module's to change: stamping the version without
            # them would leave tables of the older shape under the newer version.
            raise StoreError(
                f"the database's projections are of schema version {found}: open it with "
                "them to migrate it (timeline migrate)"
            )
        rebuild_projections(tx, projections)
        return
    for projection in projections:
        if not set(projection.tables()) <= tables:
            for statement in (*projection.schema(), *projection.indexes()):
                tx.execute(statement)


def rebuild_projections(
    tx: Transaction,
    projections: Sequence[Projection],
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Drop and refill every projection from the log, in the caller's transaction."""
    for projection in projections:
        for statement in (*projection.drop(), *projection.schema()):
            tx.execute(statement)
        projection.rebuild(tx, progress)
