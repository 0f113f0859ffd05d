"""An event on its way into the log (NewEvent: validated, canonical parts computed) and as
the log keeps it (LogEntry: positioned, chained)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import orjson

from events import types as t
from events.canonical import canonical
from events.dates import END, LAST_DAY, FuzzyDate

# How versions before 5 stored the end of a range reaching LAST_DAY (see NewEvent.forms).
CUT_END = LAST_DAY.isoformat()


def amendment_target(type: str, data: dict[str, Any]) -> str | None:
    """The id an amendment's `data` targets; None for any other event."""
    target = data.get("target") if type in t.AMENDMENTS else None
    return target if isinstance(target, str) else None


@dataclass(slots=True)
class NewEvent:
    """A validated event ready for the store: defaults applied, canonical parts computed."""

    id: str
    type: str
    company: str
    occurred: FuzzyDate
    occurred_json: str
    data: dict[str, Any]
    data_json: str
    source_json: str | None
    confidence: str
    expected_version: int | None
    loc: tuple[str | int, ...]
    lo: str  # occurred's day range, as the log stores it
    hi: str
    # The server made the id just now (the client sent none): it cannot be stored already.
    fresh: bool = False

    @property
    def target(self) -> str | None:
        return amendment_target(self.type, self.data)

    def with_data(self, data: dict[str, Any]) -> NewEvent:
        return replace(self, data=data, data_json=canonical(data))

    def forms(self) -> list[NewEvent]:
        """The forms in which the log may hold this event: as validated now, and, for a range
        reaching the calendar's last day, as schema versions before 5 stored it, cut to end
        on that day (hi 9999-12-31). A stored entry is immutable: restoring, copying or
        retrying it compares it with both."""
        cut = CUT_END
        # Those versions refused the day 9999-12-31 itself, alone or as a range's last point.
        if self.hi != END or self.lo >= cut or self.occurred.value.endswith(f"..{cut}]"):
            return [self]
        occurred = {**orjson.loads(self.occurred_json), "hi": cut}
        return [self, replace(self, occurred_json=canonical(occurred), hi=cut)]

    def recorded_as(self, position: int, version: int, recorded: str) -> LogEntry:
        """This event as the log entry at `position`, chained to nothing yet (empty hash)."""
        # Positional, in LogEntry's field order: this runs once per appended event.
        return LogEntry(
            self.id,
            self.type,
            self.company,
            self.occurred_json,
            self.lo,
            self.hi,
            self.data_json,
            self.source_json,
            self.confidence,
            position,
            version,
            recorded,
            "",
        )


def content(event: NewEvent | LogEntry) -> tuple[str, str, str, str, str | None, str]:
    """What idempotency compares: every EventIn field but `expected_version`."""
    return (
        event.type,
        event.company,
        event.occurred_json,
        event.data_json,
        event.source_json,
        event.confidence,
    )


@dataclass(slots=True)
class LogEntry:
    """An entry of the log. Its JSON is assembled from canonical parts, so what a client reads
    is byte for byte what was hashed. Treated as immutable (not frozen: it is built per row on
    hot paths, and frozen dataclasses are several times slower to construct)."""

    id: str
    type: str
    company: str
    occurred_json: str
    lo: str
    hi: str
    data_json: str
    source_json: str | None
    confidence: str
    position: int
    version: int
    recorded: str
    hash: str

    def _json(self, hash_part: str, tail: str = "") -> str:
        return (
            f'{{"company":"{self.company}","confidence":"{self.confidence}",'
            f'"data":{self.data_json},{hash_part}"id":"{self.id}",'
            f'"occurred":{self.occurred_json},"position":{self.position},'
            f'"recorded":"{self.recorded}","source":{self.source_json or "null"},'
            f'"type":"{self.type}","version":{self.version}{tail}}}'
        )

    def hashed_json(self) -> str:
        """The canonical JSON of the hashed fields (everything but `hash`)."""
        return self._json("")

    def to_json(self) -> str:
        """The event as the API returns it: the hashed fields plus `hash`."""
        return self._json(f'"hash":"{self.hash}",')

    def to_json_with_status(self, status: str) -> str:
        """The event as a company's timeline returns it: to_json() and, last, its `status`."""
        return self._json(f'"hash":"{self.hash}",', f',"status":"{status}"')

    @property
    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.data_json)
        return value

    @property
    def target(self) -> str | None:
        return amendment_target(self.type, self.data) if self.type in t.AMENDMENTS else None

    @property
    def occurred(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.occurred_json)
        return value
