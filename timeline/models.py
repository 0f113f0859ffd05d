"""Response models of the HTTP API. Handlers render stored events as canonical JSON directly;
these models describe that JSON for /openapi.json, and the tests hold responses to them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from events.envelope import Source
from events.types import Confidence


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Occurred(_Out):
    """A fuzzy date expanded: its text, precision and half-open day range [lo, hi)."""

    value: str
    precision: Literal["year", "quarter", "month", "day"]
    lo: str = Field(description="First day of the range (ISO date)")
    hi: str = Field(description="Day after the range (ISO date), exclusive")


class RecordedEvent(_Out):
    """An entry of the log, exactly as hashed (plus `hash`)."""

    id: str
    type: str
    company: str
    occurred: Occurred
    data: dict[str, Any]
    source: Source | None
    confidence: Confidence
    position: int = Field(ge=1)
    version: int = Field(ge=1)
    recorded: str
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class EventsCreated(_Out):
    """The stored events of an append, in request order."""

    events: list[RecordedEvent]


class EventsPage(_Out):
    """A page of the log in position order."""

    events: list[RecordedEvent]
    next: int | None = Field(description="Last returned position, or null when nothing follows")
    head: int = Field(description="The log's last position")


class EventDetail(_Out):
    """One event with its effective form and the amendments that target it."""

    event: RecordedEvent
    effective: RecordedEvent | None
    amendments: list[RecordedEvent]


class Digest(_Out):
    """The head of the hash chain."""

    position: int
    hash: str
    recorded: str | None


class Health(_Out):
    status: Literal["ok"]
    head: int
    hub: int


class ErrorItem(_Out):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document; some problems add keys (`company`, `current_version`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[ErrorItem] | None = None


class KnownAt(_Out):
    """The point of transaction time an answer uses: log position S and its record time."""

    position: int
    recorded: str | None


class Item(BaseModel):
    """A fact in a company's state: the event's id, occurred and confidence plus its data
    fields (`model`, `name`, `author`, `period`, `metrics`, ...)."""

    model_config = ConfigDict(extra="allow")

    id: str
    occurred: Occurred
    confidence: Confidence


class PossibleItem(Item):
    """A fact that may or may not have happened by `as_of` (its date range straddles it)."""

    type: str


class CompanyState(_Out):
    """A company as of a date (valid time), as known at a log position (transaction time)."""

    company: str
    name: str
    aliases: list[str]
    as_of: str
    known_at: KnownAt
    version: int
    models: list[Item]
    teams: list[Item]
    filings: list[Item]
    letters: list[Item]
    statements: list[Item]
    integrations: list[Item]
    financials: list[Item]
    possible: list[PossibleItem]


class CompanySummary(_Out):
    company: str
    name: str
    events: int = Field(description="Effective, non-retracted, non-amendment events")
    first: Occurred | None
    last: Occurred | None


class CompanyList(_Out):
    """Every company with an entry known at S."""

    companies: list[CompanySummary]
    known_at: KnownAt


class TimelineEvent(RecordedEvent):
    """An event in effective form (corrections applied) with its status as of the date."""

    status: Literal["definite", "possible"]


class CompanyTimeline(_Out):
    events: list[TimelineEvent]
    as_of: str
    known_at: KnownAt


class ChronologyPage(_Out):
    """Effective events of every company in valid-time order (lo, hi, position)."""

    events: list[RecordedEvent]
    next_cursor: str | None
    known_at: KnownAt
