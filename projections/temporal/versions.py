"""The two shapes the temporal index keeps: a FactVersion (one version of an event's effective
form, open from sys_from to sys_to) and a CompanyTally (a company at the head)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from events.canonical import canonical
from events.dates import FuzzyDate
from events.entries import LogEntry
from projections.temporal.spans import span_key
from projections.temporal.tables import item_text


@dataclass(slots=True)
class FactVersion:
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

    def amended_by(self, amendment: LogEntry) -> FactVersion:
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
                row.lo, row.hi = occurred.lo, occurred.hi
                row.occurred = canonical(occurred.as_json())
            if "data" in change:
                row.data = canonical(change["data"])
            if "confidence" in change:
                row.confidence = change["confidence"]
        return row


@dataclass(slots=True)
class CompanyTally:
    """A company at the head: its live event count, first and last facts, and name."""

    company: str
    events: int = 0
    first: tuple[str, str, int, str] | None = None
    last: tuple[str, str, int, str] | None = None
    name: str | None = None
    name_key: tuple[str, str, int] | None = None

    def add(self, row: FactVersion) -> None:
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

    def remove(self, row: FactVersion) -> bool:
        """A fact leaves the live set; False when it held the first, last or name, which
        only a recount can replace."""
        self.events -= 1
        held = [self.first, self.last, self.name_key]
        return all(key is None or key[2] != row.position for key in held)

    def change(self, before: FactVersion | None, after: FactVersion) -> bool:
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
    def from_row(cls, row: Sequence[Any]) -> CompanyTally:
        company, events, *rest = row
        first = tuple(rest[0:4]) if rest[0] is not None else None
        last = tuple(rest[4:8]) if rest[4] is not None else None
        name_key = tuple(rest[9:12]) if rest[9] is not None else None
        return cls(company, events, first, last, rest[8], name_key)


def summarize(companies: Iterable[str], live: Iterable[Sequence[Any]]) -> dict[str, CompanyTally]:
    """The summaries of `companies`, counted from their live facts (rows of FACT_SELECT)."""
    summaries = {company: CompanyTally(company) for company in companies}
    for row in live:
        fact = FactVersion(*row)
        summaries[fact.company].add(fact)
    return summaries
