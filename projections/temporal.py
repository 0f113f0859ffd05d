"""The temporal index: every version of every event's effective form, with the span of log
positions [sys_from, sys_to) in which it was in effect, plus a per-company summary at the head.
"Company C as of D known at S" is then one index range scan of C's rows, not a replay."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import orjson

from events.canonical import canonical
from events.dates import FuzzyDate
from events.entries import LogEntry
from events.store import EventStore, Transaction
from events.types import AMENDMENTS

_FACT_COLUMNS = (
    "company, type, position, lo, hi, occurred, data, confidence, retracted, sys_from, sys_to, "
    "span, id, item"
)
# A fact's first version keeps NULL for occurred and data (they are the event's own): the
# table stays small, and readers take them from the log through this join.
_FACT_SELECT = (
    "e.id, f.company, f.type, f.position, f.lo, f.hi, COALESCE(f.occurred, e.occurred), "
    "COALESCE(f.data, e.data), f.confidence, f.retracted, f.sys_from, f.sys_to "
    "FROM facts f JOIN events e ON e.position = f.position"
)
_SUMMARY_COLUMNS = (
    "company, events, first_lo, first_hi, first_position, first_occurred, "
    "last_lo, last_hi, last_position, last_occurred, name, name_lo, name_hi, name_position"
)
Progress = Callable[[int, int], None]
# Company summaries a TemporalIndex keeps in memory between groups, at most.
MAX_CACHED = 100_000
# A fact's span key groups facts by the length of their range, so that the chronology finds
# those begun before a day D and still in effect on it with one ordered scan per key: every
# fact of a key in effect on D begins after one day, earliest(key, D), whatever the widest
# range. A range of days has the key of its class k = ceil(log2(days)) (class k: ranges of
# (2^(k-1), 2^k] days, begun after D - 2^k), so a scan passes over few facts that ended
# before D: those in (D - 2^k, D - days]. A range from a first of the month to another is
# counted in months, exactly up to EXACT_MONTHS (key MONTHS + m: begun after the first of
# D's month less m months, with no fact to pass over), then by class (MONTH_CLASSES +
# ceil(log2(m))). The calendar's ranges (month, quarter, year, widened, decade) are such,
# and thousands of facts share each one's first and last day: a bound of days would pass
# over all of those that ended on D, the commonest first day of a window.
MONTHS, EXACT_MONTHS, MONTH_CLASSES = 100, 120, 300
# The widest ranges, 0001-01-01 to 9999-12-31: days in class 22, months in class 17.
MAX_DAY_CLASS, MAX_MONTH_CLASS = 22, 17

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
_FACT_FIELDS = _FACT_COLUMNS.split(", ")
_SUMMARY_FIELDS = _SUMMARY_COLUMNS.split(", ")
_COMPANIES = "SELECT DISTINCT company FROM events"
_CLOSE_FACT = "UPDATE facts SET sys_to = ? WHERE position = ? AND sys_to IS NULL"
_AMENDMENTS = sorted(AMENDMENTS)


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def span_key(lo: str, hi: str) -> int:
    """The span key of the days [lo, hi) (see MONTHS)."""
    if lo.endswith("-01") and hi.endswith("-01"):
        months = int(hi[:4]) * 12 + int(hi[5:7]) - int(lo[:4]) * 12 - int(lo[5:7])
        if months <= EXACT_MONTHS:
            return MONTHS + months
        return MONTH_CLASSES + (months - 1).bit_length()
    days = date.fromisoformat(hi).toordinal() - date.fromisoformat(lo).toordinal()
    return (days - 1).bit_length()


def earliest(key: int, day: date) -> date | None:
    """The day after which every fact of span key `key` still in effect on `day` begins
    (None: before any date)."""
    if key < MONTHS:
        ordinal = day.toordinal() - 2**key
        return date.fromordinal(ordinal) if ordinal >= 1 else None
    months = key - MONTHS if key < MONTH_CLASSES else 2 ** (key - MONTH_CLASSES)
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1) if index >= 12 else None


def _class_of(column: str, low: int, high: int) -> str:
    """ceil(log2(column)) in SQL, for 1 <= column <= 2^high: a binary search of the bounds."""
    if low == high:
        return str(low)
    middle = (low + high) // 2
    below, above = _class_of(column, low, middle), _class_of(column, middle + 1, high)
    return f"CASE WHEN {column} <= {2**middle} THEN {below} ELSE {above} END"


# span_key in SQL, of the days the inner query of _first_versions counts. A range of whole
# months is within 4.4 days of as many mean months (30.436875 days: the Gregorian cycle's),
# so that rounding counts its months. Single days are tried before the search of the day
# classes: they are the commonest, and SQLite merges the inner query into the outer one, so
# that each mention of `days` counts them again.
_ALIGNED = "substr(lo, 9) = '01' AND substr(hi, 9) = '01'"
_MONTHS = "round(days / 30.436875)"
_SPAN_KEY = (
    f"CASE WHEN {_ALIGNED} THEN (CASE WHEN {_MONTHS} <= {EXACT_MONTHS} "
    f"THEN {MONTHS} + CAST({_MONTHS} AS INTEGER) "
    f"ELSE {MONTH_CLASSES} + {_class_of(_MONTHS, 0, MAX_MONTH_CLASS)} END) "
    f"WHEN days <= 1 THEN 0 ELSE {_class_of('days', 0, MAX_DAY_CLASS)} END"
)


# A fact's list item in company state as JSON text, after `{"id":"<id>",` (see live_items),
# put together once, when the version is written, from the texts the log stores: a request
# neither decodes nor encodes a fact, nor joins its log entry. Paired, in process, 300 facts
# of a 50,000-event SQLite log: 1.05 -> 0.75 ms p50, for a database 37% larger. (Every listed
# payload has a required field, but an empty `data` would still give valid JSON.)
_ITEM = (
    """'"occurred":' || occurred || ',"confidence":"' || confidence || '"' """
    """|| CASE WHEN data = '{}' THEN '}' ELSE ',' || substr(data, 2) END"""
)


def item_text(occurred: str, confidence: str, data: str) -> str:
    """_ITEM, of a version written from Python."""
    rest = "}" if data == "{}" else "," + data[1:]
    return f'"occurred":{occurred},"confidence":"{confidence}"{rest}'


def _first_versions(where: str) -> str:
    """Copy the first versions of the log entries `where` selects (at most `LIMIT ?` of
    them): their own lo, hi and confidence, occurred and data NULL, their span key, id and
    list item (_ITEM). The
    days of a range are counted in the inner query (julianday: SQLite's, which the PostgreSQL
    schema supplies too); its LIMIT keeps PostgreSQL from merging it into the outer one, which
    would count them again at every comparison of the span key's search."""
    return (
        f"INSERT INTO facts ({_FACT_COLUMNS}) "
        "SELECT company, type, position, lo, hi, NULL, NULL, confidence, 0, position, NULL, "
        f"{_SPAN_KEY}, id, {_ITEM} FROM (SELECT company, type, position, lo, hi, confidence, "
        "id, occurred, data, julianday(hi) - julianday(lo) AS days "
        f"FROM events WHERE {where} AND type NOT IN ({_marks(_AMENDMENTS)}) "
        "ORDER BY position LIMIT ?) AS first"
    )


# An event's first version, for the entries of one group: positions [?, ?].
_FIRST_VERSIONS = _first_versions("position BETWEEN ? AND ?")


@dataclass(slots=True)
class FactRow:
    """One version of an event's effective form."""

    event_id: str
    company: str
    type: str
    position: int
    lo: str
    hi: str
    occurred: str
    data: str
    confidence: str
    retracted: int
    sys_from: int
    sys_to: int | None = None

    def values(self) -> tuple[Any, ...]:
        original = self.sys_from == self.position
        return (
            self.company,
            self.type,
            self.position,
            self.lo,
            self.hi,
            None if original else self.occurred,
            None if original else self.data,
            self.confidence,
            self.retracted,
            self.sys_from,
            self.sys_to,
            span_key(self.lo, self.hi),
            self.event_id,
            item_text(self.occurred, self.confidence, self.data),
        )

    def amended_by(self, amendment: LogEntry) -> FactRow:
        """The next version, opened by an amendment at its position."""
        change = amendment.data
        row = replace(self, sys_from=amendment.position, sys_to=None)
        if amendment.type == "event.retracted":
            row.retracted = 1
        elif amendment.type == "event.reinstated":
            row.retracted = 0
        else:
            if "occurred" in change:
                occurred = FuzzyDate.parse(change["occurred"])
                row.lo, row.hi = occurred.lo.isoformat(), occurred.hi.isoformat()
                row.occurred = canonical(occurred.as_json())
            if "data" in change:
                row.data = canonical(change["data"])
            if "confidence" in change:
                row.confidence = change["confidence"]
        return row


@dataclass(slots=True)
class Summary:
    """A company at the head: its live event count, first and last facts, and name."""

    company: str
    events: int = 0
    first: tuple[str, str, int, str] | None = None
    last: tuple[str, str, int, str] | None = None
    name: str | None = None
    name_key: tuple[str, str, int] | None = None

    def add(self, row: FactRow) -> None:
        """A fact enters the live set."""
        self.add_fact(row.lo, row.hi, row.position, row.occurred, row.type, row.data)

    def add_fact(
        self, lo: str, hi: str, position: int, occurred: str, type: str, data: str
    ) -> None:
        """A fact enters the live set, given by its fields."""
        self.events += 1
        first, last = self.first, self.last
        if first is None or (lo, hi, position) < first[:3]:
            self.first = (lo, hi, position, occurred)
        if last is None or (lo, hi, position) > last[:3]:
            self.last = (lo, hi, position, occurred)
        if type == "company.registered" and (
            self.name_key is None or (lo, hi, position) > self.name_key
        ):
            self.name, self.name_key = orjson.loads(data)["name"], (lo, hi, position)

    def remove(self, row: FactRow) -> bool:
        """A fact leaves the live set; False when it held the first, last or name, which
        only a recount can replace."""
        self.events -= 1
        held = [self.first, self.last, self.name_key]
        return all(key is None or key[2] != row.position for key in held)

    def change(self, before: FactRow | None, after: FactRow) -> bool:
        """Fold one transition of a fact; False when the company must be recounted."""
        if before is not None and not before.retracted and not self.remove(before):
            return False
        if not after.retracted:
            self.add(after)
        return True

    def values(self) -> tuple[Any, ...]:
        first = self.first or (None, None, None, None)
        last = self.last or (None, None, None, None)
        name_key = self.name_key or (None, None, None)
        return (self.company, self.events, *first, *last, self.name, *name_key)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Summary:
        company, events, *rest = row
        first = tuple(rest[0:4]) if rest[0] is not None else None
        last = tuple(rest[4:8]) if rest[4] is not None else None
        name_key = tuple(rest[9:12]) if rest[9] is not None else None
        return cls(company, events, first, last, rest[8], name_key)


class TemporalIndex:
    """The Projection keeping `facts` (versions of effective events) and `companies`."""

    def __init__(self) -> None:
        self._summaries: dict[str, Summary] = {}
        self._summaries_at: int | None = None  # the log position they are the summaries at

    def tables(self) -> Sequence[str]:
        return ("facts", "companies")

    def rolled_back(self) -> None:
        # The summaries may hold facts of the group that failed (at its COMMIT, say), and
        # another writer may since have brought the log to the position they claim.
        self._summaries_at = None

    def schema(self) -> Sequence[str]:
        return SCHEMA

    def indexes(self) -> Sequence[str]:
        return INDEXES

    def drop(self) -> Sequence[str]:
        return ("DROP TABLE IF EXISTS facts", "DROP TABLE IF EXISTS companies")

    def apply(self, tx: Transaction, events: Sequence[LogEntry]) -> None:
        # The entries are in the log already (same transaction, consecutive positions): their
        # first versions are copied by SQLite itself, with nothing built or bound in Python.
        first, last = events[0].position, events[-1].position
        tx.execute(_FIRST_VERSIONS, (first, last, *_AMENDMENTS, last - first + 1))
        amendments = [event for event in events if event.type in AMENDMENTS]
        transitions: list[tuple[FactRow | None, FactRow]] = []
        if amendments:
            # Every target's open version is in the table now, those of this group included.
            stored = self._open_rows(tx, {e.data["target"] for e in amendments})
            current = dict(stored)
            closes: list[tuple[int, int]] = []
            rows: list[FactRow] = []
            for amendment in amendments:
                target = amendment.data["target"]
                before = current[target]
                if stored.get(target) is before:  # a row in the table
                    closes.append((amendment.position, before.position))
                else:
                    before.sys_to = amendment.position
                after = before.amended_by(amendment)
                rows.append(after)
                transitions.append((before, after))
                current[target] = after
            tx.executemany(_CLOSE_FACT, closes)
            # A version opened and closed within this group is inserted closed.
            tx.insert("facts", _FACT_FIELDS, [row.values() for row in rows])
        self._summarize(tx, events, transitions)

    def rebuild(self, tx: Transaction, progress: Progress | None = None) -> None:
        """Refill from the log in bulk: every event's first version in one INSERT ... SELECT,
        then the amendments' versions in log order, then the indexes, then the summaries in
        one pass. Gives the same rows as the appends built one group at a time."""
        self._summaries_at = None
        total = tx.fetch("SELECT COUNT(*) FROM events")[0][0]
        amendments = _AMENDMENTS
        tx.execute(_first_versions("position > 0"), (*amendments, total))
        if progress is not None:
            progress(total // 2, total)
        current: dict[str, FactRow] = {}
        closes: list[tuple[int, int]] = []
        rows: list[FactRow] = []
        after = 0
        while page := tx.events(after, 10_000, types=amendments):
            after = page[-1].position
            wanted = {e.data["target"] for e in page} - current.keys()
            current.update(self._open_rows(tx, wanted))
            for amendment in page:
                target = amendment.data["target"]
                before = current[target]
                if before.sys_from == before.position:  # the first version, in the table
                    closes.append((amendment.position, before.position))
                else:
                    before.sys_to = amendment.position
                current[target] = before.amended_by(amendment)
                rows.append(current[target])
        tx.executemany(_CLOSE_FACT, closes)
        tx.insert("facts", _FACT_FIELDS, [row.values() for row in rows])
        for statement in INDEXES:
            tx.execute(statement)
        if progress is not None:
            progress(total * 9 // 10, total)
        summaries = {name: Summary(name) for (name,) in tx.fetch(_COMPANIES)}
        for row in tx.fetch(f"SELECT {_FACT_SELECT} WHERE f.sys_to IS NULL AND f.retracted = 0"):
            summaries[row[1]].add(FactRow(*row))
        tx.insert(
            "companies",
            _SUMMARY_FIELDS,
            [summary.values() for summary in summaries.values()],
            upsert_on="company",
        )
        if progress is not None:
            progress(total, total)

    @staticmethod
    def _open_rows(tx: Transaction, ids: Iterable[str]) -> dict[str, FactRow]:
        wanted = sorted(ids)
        if not wanted:
            return {}
        found = tx.fetch(
            f"SELECT {_FACT_SELECT} WHERE f.sys_to IS NULL AND e.id IN ({_marks(wanted)})",
            wanted,
        )
        return {row[0]: FactRow(*row) for row in found}

    def _summarize(
        self,
        tx: Transaction,
        events: Sequence[LogEntry],
        transitions: Sequence[tuple[FactRow | None, FactRow]],
    ) -> None:
        """Fold the group's new facts, then its amendments' transitions, into the summaries."""
        # Summaries stay in memory from one group to the next while this projection wrote the
        # group just before: a failed transaction, a rebuild or another process's appends
        # leave the log at another position, and the table is read again.
        if self._summaries_at != events[0].position - 1 or len(self._summaries) > MAX_CACHED:
            self._summaries = {}
        self._summaries_at = None  # until this group's summaries are complete
        summaries = self._summaries
        touched = sorted({event.company for event in events})
        missing = [company for company in touched if company not in summaries]
        if missing:
            stored = tx.fetch(
                f"SELECT {_SUMMARY_COLUMNS} FROM companies WHERE company IN ({_marks(missing)})",
                missing,
            )
            summaries.update((row[0], Summary.from_row(row)) for row in stored)
            for company in missing:
                if company not in summaries:
                    summaries[company] = Summary(company)
        for event in events:
            if event.type not in AMENDMENTS:
                summaries[event.company].add_fact(
                    event.lo,
                    event.hi,
                    event.position,
                    event.occurred_json,
                    event.type,
                    event.data_json,
                )
        recount: set[str] = set()
        for before, after in transitions:
            if after.company not in recount and not summaries[after.company].change(before, after):
                recount.add(after.company)
        for company in recount:
            summaries[company] = Summary(company)
        self._recount(tx, sorted(recount), summaries)
        tx.insert(
            "companies",
            _SUMMARY_FIELDS,
            [summaries[company].values() for company in touched],
            upsert_on="company",
        )
        self._summaries_at = events[-1].position

    @staticmethod
    def _recount(tx: Transaction, companies: list[str], into: dict[str, Summary]) -> None:
        for start in range(0, len(companies), 500):
            chunk = companies[start : start + 500]
            live = tx.fetch(
                f"SELECT {_FACT_SELECT} WHERE f.sys_to IS NULL AND f.retracted = 0 "
                f"AND f.company IN ({_marks(chunk)})",
                chunk,
            )
            for values in live:
                into[values[1]].add(FactRow(*values))


# The named queries: the only reads of `facts` and `companies` outside this projection.

# The effective form of an event: the log entry with its fact's occurred, data and confidence.
_EFFECTIVE = (
    "SELECT e.id, e.type, e.company, COALESCE(f.occurred, e.occurred), f.lo, f.hi, "
    "COALESCE(f.data, e.data), e.source, f.confidence, e.position, e.version, e.recorded, "
    "e.hash FROM facts f JOIN events e ON e.position = f.position"
)
_LIVE_AT = "f.retracted = 0 AND f.sys_from <= ? AND (f.sys_to IS NULL OR f.sys_to > ?)"


def _effective(row: Sequence[Any]) -> LogEntry:
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


async def live_items(
    store: EventStore, company: str, as_of: str, known_at: int
) -> list[tuple[str, str, str, str]]:
    """The company's facts in effect at position `known_at` that begin by `as_of`, as the
    state renders them: for each, in (lo, hi, position) order, its id, type, hi and the rest
    of its item's JSON text (_ITEM). From the facts alone: no log entry is read."""
    rows = await store.query(
        "SELECT f.id, f.type, f.hi, f.item FROM facts f "
        f"WHERE f.company = ? AND f.lo <= ? AND {_LIVE_AT} ORDER BY f.lo, f.hi, f.position",
        (company, as_of, known_at, known_at),
    )
    return rows


async def timeline_rows(
    store: EventStore, company: str, as_of: str, known_at: int
) -> list[LogEntry]:
    """The company's events in their effective form at `known_at`, begun by `as_of`."""
    rows = await store.query(
        f"{_EFFECTIVE} WHERE f.company = ? AND f.lo <= ? AND {_LIVE_AT} "
        "ORDER BY f.lo, f.hi, f.position",
        (company, as_of, known_at, known_at),
    )
    return [_effective(row) for row in rows]


# Bounds no day reaches, in the byte order of ISO days: "" sorts before every one, "~" after.
_BEFORE_ANY, _AFTER_ANY = "", "~"
# A fact's columns in a page, before its log entry is joined.
_PAGE = "f.lo, f.hi, f.position, f.occurred, f.data, f.confidence"
_PAGE_EFFECTIVE = (
    "SELECT e.id, e.type, e.company, COALESCE(page.occurred, e.occurred), page.lo, page.hi, "
    "COALESCE(page.data, e.data), e.source, page.confidence, e.position, e.version, "
    "e.recorded, e.hash FROM ({}) AS page JOIN events e ON e.position = page.position "
    "ORDER BY page.lo, page.hi, page.position"
)
_MEETS = "(f.lo, f.hi, f.position) > (?, ?, ?) AND f.lo <= ? AND f.hi > ?"
# The span keys in use: one look-up of `facts_span` per key, each for the next one. In
# passing, whether the database has a boolean type (only PostgreSQL: SQLite answers 1 = 1
# with 1), which tells how to have it merge the scans of the keys (see _ordered_scans).
_KEYS = (
    "WITH RECURSIVE used(span) AS (SELECT MIN(span) FROM facts UNION ALL "
    "SELECT (SELECT MIN(f.span) FROM facts f WHERE f.span > used.span) FROM used "
    "WHERE used.span IS NOT NULL) SELECT span, 1 = 1 FROM used WHERE span IS NOT NULL"
)
_ORDER = "ORDER BY f.lo, f.hi, f.position"


def _ordered_scans(scans: Sequence[str], limited: bool) -> str:
    """The first rows (LIMIT ?) of the ordered scans `scans`, merged: one pass over each,
    in index order, reading no further than the page needs. SQLite merges a UNION ALL of the
    scans themselves; PostgreSQL merges only scans it plans on their own, for their first
    rows (`limited`: a subquery with its own ORDER BY and LIMIT ?), where SQLite would read
    and sort each one's first rows in full."""
    if limited:
        scans = [f"SELECT * FROM ({scan} {_ORDER} LIMIT ?) AS k{n}" for n, scan in enumerate(scans)]
    # In a query of its own: PostgreSQL merges only a UNION ALL it flattens.
    return f"SELECT * FROM ({' UNION ALL '.join(scans)}) AS scans ORDER BY lo, hi, position LIMIT ?"


def _lower_bound(
    start: date | None, key: int, after: tuple[str, str, int] | None
) -> tuple[str, str, int]:
    """Where a scan of (lo, hi, position) begins: past `after`, and past the facts of span
    key `key` that end by `start`."""
    bound = after if after is not None else (_BEFORE_ANY, _BEFORE_ANY, 0)
    first = earliest(key, start) if start is not None else None
    if first is None:
        return bound
    return max(bound, (first.isoformat(), _AFTER_ANY, 0))  # lo > first


async def chronology_page(
    store: EventStore,
    known_at: int,
    *,
    start: date | None,
    end: date | None,
    companies: Sequence[str],
    types: Sequence[str],
    after: tuple[str, str, int] | None,
    limit: int,
) -> list[LogEntry]:
    """Up to `limit` effective events at `known_at` meeting the days [start, end], after the
    (lo, hi, position) `after`, in that order.

    Without a company, one ordered scan of `facts_span` per span key in use, merged: each
    begins at the first fact of its key that could still be in effect at `start` (see
    MONTHS), so that it passes over few that are not, however wide the widest range. A
    company's facts are few: one scan of `facts_company` serves, from the bound of the
    widest key in use."""
    meets = [end.isoformat() if end is not None else _AFTER_ANY]
    meets.append(start.isoformat() if start is not None else _BEFORE_ANY)
    filters, chosen = "", list[object]()
    if companies:
        filters += f" AND f.company IN ({_marks(companies)})"
        chosen += companies
    if types:
        filters += f" AND f.type IN ({_marks(types)})"
        chosen += types
    where = f"{_MEETS} AND {_LIVE_AT}{filters}"
    used = await store.query(_KEYS)
    if not used:
        return []
    keys = [key for key, _ in used]
    if companies:
        # One scan, from the earliest day a fact of a key in use could begin and still be in
        # effect at `start` (the bound of the widest key).
        bound = min(_lower_bound(start, key, after) for key in keys)
        sql = f"SELECT {_PAGE} FROM facts f WHERE {where} {_ORDER} LIMIT ?"
        params = [*bound, *meets, known_at, known_at, *chosen, limit]
    else:
        limited = isinstance(used[0][1], bool)
        scans = [f"SELECT {_PAGE} FROM facts f WHERE f.span = {key} AND {where}" for key in keys]
        sql = _ordered_scans(scans, limited)
        params = []
        for key in keys:
            params += [*_lower_bound(start, key, after), *meets, known_at, known_at, *chosen]
            params += [limit] if limited else []
        params.append(limit)
    rows = await store.query(_PAGE_EFFECTIVE.format(sql), params)
    return [_effective(row) for row in rows]


async def summaries_at_head(store: EventStore) -> tuple[int, str | None, list[Summary]]:
    """The summaries kept at the head, read with the head they are of (one statement)."""
    rows = await store.query(
        "SELECT (SELECT position FROM events ORDER BY position DESC LIMIT 1), "
        "(SELECT recorded FROM events ORDER BY position DESC LIMIT 1), "
        f"{_SUMMARY_COLUMNS} FROM companies ORDER BY company"
    )
    if not rows:
        return 0, None, []
    return rows[0][0], rows[0][1], [Summary.from_row(row[2:]) for row in rows]


async def summaries_at(store: EventStore, known_at: int) -> list[Summary]:
    """The summaries as they stood at `known_at`, recounted from the facts in effect then."""
    summaries = {name: Summary(name) for name in await store.companies_at(known_at)}
    live = await store.query(f"SELECT {_FACT_SELECT} WHERE {_LIVE_AT}", (known_at, known_at))
    for row in live:
        fact = FactRow(*row)
        summaries[fact.company].add(fact)
    return list(summaries.values())


async def fact_versions(store: EventStore, position: int) -> list[FactRow]:
    """Every version of the event at `position`, oldest first (none for an amendment)."""
    rows = await store.query(
        f"SELECT {_FACT_SELECT} WHERE f.position = ? ORDER BY f.sys_from", (position,)
    )
    return [FactRow(*row) for row in rows]


async def is_built(store: EventStore) -> bool:
    """Whether the projection holds any row (a log from before it existed has none)."""
    return bool(await store.query("SELECT 1 FROM facts LIMIT 1"))
