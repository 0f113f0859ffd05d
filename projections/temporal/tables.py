"""The tables of the temporal index, `facts` and `companies`, and the SQL that every module
of this package shares: columns, the list item, the first versions, the effective form.

`facts` holds every version of every event's effective form, with the span of log positions
[sys_from, sys_to) in which it was in effect; `companies` a summary of each company at the
head. The projection reads the log's own table, `events`, in the same transaction (see
events/store.py, Projection): a first version is copied from it by the database itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.dates import END, LAST_DAY
from events.entries import LogEntry
from events.store import marks
from events.types import AMENDMENTS
from projections.temporal.spans import SPAN_KEY_SQL

FACT_COLUMNS = (
    "company, type, position, lo, hi, occurred, data, confidence, retracted, sys_from, sys_to, "
    "span, id, item"
)
# A fact's first version keeps NULL for occurred and data (they are the event's own): the
# table stays small, and readers take them from the log through this join.
FACT_SELECT = (
    "e.id, f.company, f.type, f.position, f.lo, f.hi, COALESCE(f.occurred, e.occurred), "
    "COALESCE(f.data, e.data), f.confidence, f.retracted, f.sys_from, f.sys_to "
    "FROM facts f JOIN events e ON e.position = f.position"
)
SUMMARY_COLUMNS = (
    "company, events, first_lo, first_hi, first_position, first_occurred, "
    "last_lo, last_hi, last_position, last_occurred, name, name_lo, name_hi, name_position"
)
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS facts (
        company    TEXT NOT NULL,
        type       TEXT NOT NULL,
        position   BIGINT NOT NULL,
        lo         TEXT NOT NULL,
        hi         TEXT NOT NULL,
        occurred   TEXT,
        data       TEXT,
        confidence TEXT NOT NULL,
        retracted  INTEGER NOT NULL,
        sys_from   BIGINT NOT NULL,
        sys_to     BIGINT,
        span       INTEGER NOT NULL,
        id         TEXT NOT NULL,
        item       TEXT NOT NULL,
        PRIMARY KEY (position, sys_from)
    )""",
    """CREATE TABLE IF NOT EXISTS companies (
        company        TEXT PRIMARY KEY,
        events         BIGINT NOT NULL,
        first_lo       TEXT,
        first_hi       TEXT,
        first_position BIGINT,
        first_occurred TEXT,
        last_lo        TEXT,
        last_hi        TEXT,
        last_position  BIGINT,
        last_occurred  TEXT,
        name           TEXT,
        name_lo        TEXT,
        name_hi        TEXT,
        name_position  BIGINT
    )""",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS facts_company ON facts (company, lo, hi, position)",
    # The chronology's: facts in (lo, hi, position) order, span key by span key.
    "CREATE INDEX IF NOT EXISTS facts_span ON facts (span, lo, hi, position)",
)
FACT_FIELDS = FACT_COLUMNS.split(", ")
SUMMARY_FIELDS = SUMMARY_COLUMNS.split(", ")
AMENDMENT_TYPES = sorted(AMENDMENTS)


# A fact's list item in company state as JSON text, after `{"id":"<id>",` (see reads.live_items),
# put together once, when the version is written, from the texts the log stores: a request
# neither decodes nor encodes a fact, nor joins its log entry. Paired, in process, 300 facts
# of a 50,000-event SQLite log: 1.05 -> 0.75 ms p50, for a database 37% larger. (Every listed
# payload has a required field, but an empty `data` would still give valid JSON.)
ITEM_SQL = (
    """'"occurred":' || occurred || ',"confidence":"' || confidence || '"' """
    """|| CASE WHEN data = '{}' THEN '}' ELSE ',' || substr(data, 2) END"""
)


def item_text(occurred: str, confidence: str, data: str) -> str:
    """ITEM_SQL, of a version written from Python."""
    rest = "}" if data == "{}" else "," + data[1:]
    return f'"occurred":{occurred},"confidence":"{confidence}"{rest}'


# The days of [lo, hi) (END is no date to julianday: the day after LAST_DAY).
_DAYS = (
    f"CASE hi WHEN '{END}' THEN julianday('{LAST_DAY.isoformat()}') + 1 ELSE julianday(hi) END "
    "- julianday(lo)"
)


def first_versions(where: str) -> str:
    """Copy the first versions of the log entries `where` selects (at most `LIMIT ?` of
    them): their own lo, hi and confidence, occurred and data NULL, their span key, id and
    list item (ITEM_SQL). The
    days of a range are counted in the inner query (julianday: SQLite's, which the PostgreSQL
    schema supplies too); its LIMIT keeps PostgreSQL from merging it into the outer one, which
    would count them again at every comparison of the span key's search."""
    return (
        f"INSERT INTO facts ({FACT_COLUMNS}) "
        "SELECT company, type, position, lo, hi, NULL, NULL, confidence, 0, position, NULL, "
        f"{SPAN_KEY_SQL}, id, {ITEM_SQL} FROM (SELECT company, type, position, lo, hi, confidence, "
        f"id, occurred, data, {_DAYS} AS days "
        f"FROM events WHERE {where} AND type NOT IN ({marks(AMENDMENT_TYPES)}) "
        "ORDER BY position LIMIT ?) AS first"
    )


# The effective form of an event: the log entry with its fact's occurred, data and confidence.
_EFFECTIVE_COLUMNS = (
    "e.id, e.type, e.company, COALESCE(f.occurred, e.occurred), f.lo, f.hi, "
    "COALESCE(f.data, e.data), e.source, f.confidence, e.position, e.version, e.recorded, e.hash"
)
_FACTS_AND_ENTRIES = "FROM facts f JOIN events e ON e.position = f.position"
EFFECTIVE = f"SELECT {_EFFECTIVE_COLUMNS} {_FACTS_AND_ENTRIES}"
# Each version's span and whether it is retracted, before its effective form.
VERSIONS = f"SELECT f.sys_from, f.sys_to, f.retracted, {_EFFECTIVE_COLUMNS} {_FACTS_AND_ENTRIES}"
LIVE_AT = "f.retracted = 0 AND f.sys_from <= ? AND (f.sys_to IS NULL OR f.sys_to > ?)"


def effective(row: Sequence[Any]) -> LogEntry:
    (event_id, type_, company, occurred, lo, hi, data, source, confidence, position, version,
     recorded, hash_) = row  # fmt: skip
    return LogEntry(
        id=event_id,
        type=type_,
        company=company,
        occurred_json=occurred,
        lo=lo,
        hi=hi,
        data_json=data,
        source_json=source,
        confidence=confidence,
        position=position,
        version=version,
        recorded=recorded,
        hash=hash_,
    )
