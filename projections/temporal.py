"""The temporal index: every version of every event's effective form, with the span of log
positions [sys_from, sys_to) in which it was in effect, plus a per-company summary at the head.
"Company C as of D known at S" is then one index range scan of C's rows, not a replay."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from events.dates import FuzzyDate
from events.envelope import RecordedEvent, canonical
from events.store import Transaction
from events.types import AMENDMENTS

FACT_COLUMNS = (
    "event_id, company, type, position, lo, hi, occurred, data, confidence, retracted, "
    "sys_from, sys_to"
)
SUMMARY_COLUMNS = (
    "company, events, first_lo, first_hi, first_position, first_occurred, "
    "last_lo, last_hi, last_position, last_occurred, name, name_lo, name_hi, name_position"
)
# A widened year ("2023~") spans three years: the widest range a fuzzy date can have.
MAX_SPAN_DAYS = 3 * 366 + 1

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS facts (
        event_id   TEXT NOT NULL,
        company    TEXT NOT NULL,
        type       TEXT NOT NULL,
        position   BIGINT NOT NULL,
        lo         TEXT NOT NULL,
        hi         TEXT NOT NULL,
        occurred   TEXT NOT NULL,
        data       TEXT NOT NULL,
        confidence TEXT NOT NULL,
        retracted  INTEGER NOT NULL,
        sys_from   BIGINT NOT NULL,
        sys_to     BIGINT,
        PRIMARY KEY (event_id, sys_from)
    )""",
    "CREATE INDEX IF NOT EXISTS facts_company ON facts (company, lo, hi, position)",
    "CREATE INDEX IF NOT EXISTS facts_valid ON facts (lo, hi, position)",
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
_INSERT_FACT = f"INSERT INTO facts ({FACT_COLUMNS}) VALUES ({', '.join('?' * 12)})"
_CLOSE_FACT = "UPDATE facts SET sys_to = ? WHERE event_id = ? AND sys_to IS NULL"
_UPSERT_SUMMARY = (
    f"INSERT INTO companies ({SUMMARY_COLUMNS}) VALUES ({', '.join('?' * 14)}) "
    "ON CONFLICT (company) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in SUMMARY_COLUMNS.split(", ")[1:])
)


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
        return (
            self.event_id,
            self.company,
            self.type,
            self.position,
            self.lo,
            self.hi,
            self.occurred,
            self.data,
            self.confidence,
            self.retracted,
            self.sys_from,
            self.sys_to,
        )

    @classmethod
    def of(cls, event: RecordedEvent) -> FactRow:
        return cls(
            event.id,
            event.company,
            event.type,
            event.position,
            event.lo,
            event.hi,
            event.occurred_json,
            event.data_json,
            event.confidence,
            0,
            event.position,
        )

    def amended_by(self, amendment: RecordedEvent) -> FactRow:
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
        key = (row.lo, row.hi, row.position, row.occurred)
        self.events += 1
        if self.first is None or key[:3] < self.first[:3]:
            self.first = key
        if self.last is None or key[:3] > self.last[:3]:
            self.last = key
        if row.type == "company.registered" and (self.name_key is None or key[:3] > self.name_key):
            self.name, self.name_key = orjson.loads(row.data)["name"], key[:3]

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


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


class TemporalIndex:
    """The Projection keeping `facts` (versions of effective events) and `companies`."""

    def schema(self) -> Sequence[str]:
        return SCHEMA

    def drop(self) -> Sequence[str]:
        return ("DROP TABLE IF EXISTS facts", "DROP TABLE IF EXISTS companies")

    async def apply(self, tx: Transaction, events: Sequence[RecordedEvent]) -> None:
        rows: list[FactRow] = []
        current: dict[str, FactRow] = {}
        for event in events:
            if event.type not in AMENDMENTS:
                row = FactRow.of(event)
                rows.append(row)
                current[event.id] = row
        amendments = [event for event in events if event.type in AMENDMENTS]
        closes: list[tuple[int, str]] = []
        if amendments:
            stored = await self._open_rows(
                tx, {e.data["target"] for e in amendments} - current.keys()
            )
            current.update(stored)
            for amendment in amendments:
                target = amendment.data["target"]
                before = current[target]
                if stored.get(target) is before:
                    closes.append((amendment.position, target))  # a row already in the table
                else:
                    before.sys_to = amendment.position
                after = before.amended_by(amendment)
                rows.append(after)
                current[target] = after
        if closes:
            await tx.executemany(_CLOSE_FACT, closes)
        await tx.executemany(_INSERT_FACT, [row.values() for row in rows])
        await self._summarize(tx, events, rows, amended={a.company for a in amendments})

    @staticmethod
    async def _open_rows(tx: Transaction, ids: Iterable[str]) -> dict[str, FactRow]:
        wanted = sorted(ids)
        if not wanted:
            return {}
        found = await tx.fetch(
            f"SELECT {FACT_COLUMNS} FROM facts "
            f"WHERE sys_to IS NULL AND event_id IN ({_marks(wanted)})",
            wanted,
        )
        return {row[0]: FactRow(*row) for row in found}

    @staticmethod
    async def _summarize(
        tx: Transaction,
        events: Sequence[RecordedEvent],
        rows: Sequence[FactRow],
        amended: set[str],
    ) -> None:
        touched = sorted({event.company for event in events})
        summaries = {company: Summary(company) for company in touched}
        kept = [company for company in touched if company not in amended]
        if kept:
            stored = await tx.fetch(
                f"SELECT {SUMMARY_COLUMNS} FROM companies WHERE company IN ({_marks(kept)})", kept
            )
            summaries.update((row[0], Summary.from_row(row)) for row in stored)
            for row in rows:
                if row.company not in amended and row.sys_from == row.position:
                    summaries[row.company].add(row)
        if amended:
            # An amendment can move a company's first, last or name: recount it from its facts.
            recount = sorted(amended)
            live = await tx.fetch(
                f"SELECT {FACT_COLUMNS} FROM facts WHERE sys_to IS NULL AND retracted = 0 "
                f"AND company IN ({_marks(recount)})",
                recount,
            )
            for values in live:
                summaries[values[1]].add(FactRow(*values))
        await tx.executemany(_UPSERT_SUMMARY, [s.values() for s in summaries.values()])
