"""Response models of the HTTP API. Handlers render stored events as canonical JSON directly;
these models describe that JSON for /openapi.json, and the tests hold responses to them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from events.inputs import Source
from events.types import SLUG_PATTERN, Confidence


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The forms of what the server writes: a lowercase UUID, a day, a time it set (RFC 3339 UTC
# with microseconds), a chain value.
EVENT_ID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DAY = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
END_DAY = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}|10000-01-01)$"  # a range's hi
RECORDED = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
HASH = r"^[0-9a-f]{64}$"


class Occurred(_Out):
    """A fuzzy date expanded: its text, precision and half-open day range [lo, hi)."""

    value: str = Field(description="The text as sent")
    precision: Literal["year", "quarter", "month", "day", "decade", "on_or_before", "between"]
    lo: str = Field(pattern=DAY, description="First day of the range (ISO date)")
    hi: str = Field(
        pattern=END_DAY,
        description="Day after the range (ISO date), exclusive: 10000-01-01 after 9999-12-31",
    )


class RecordedEvent(_Out):
    """An entry of the log, exactly as hashed (plus `hash`)."""

    id: str = Field(pattern=EVENT_ID)
    type: str
    company: str = Field(pattern=SLUG_PATTERN)
    occurred: Occurred
    data: dict[str, Any]
    source: Source | None
    confidence: Confidence
    position: int = Field(ge=1)
    version: int = Field(ge=1)
    recorded: str = Field(pattern=RECORDED)
    hash: str = Field(pattern=HASH)


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

    position: int = Field(ge=0)
    hash: str = Field(pattern=HASH)
    recorded: str | None = Field(pattern=RECORDED, description="null on an empty log")


class Health(_Out):
    status: Literal["ok"]
    head: int = Field(ge=0, description="The database's last position")
    hub: int = Field(ge=0, description="The last position this process's live feed handed out")


class ErrorItem(_Out):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem document; some problems add keys (`company`, `current_version`)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(pattern=r"^urn:timeline:problem:[a-z-]+$")
    title: str = Field(min_length=1)
    status: int = Field(ge=400, le=599)
    detail: str = Field(min_length=1)
    errors: list[ErrorItem] | None = Field(
        default=None, description="What was wrong in a query or a body, and where"
    )


class KnownAt(_Out):
    """The point of transaction time an answer uses: log position S and its record time."""

    position: int = Field(ge=0)
    recorded: str | None = Field(pattern=RECORDED, description="null before the first event")


class Item(BaseModel):
    """A fact in a company's state: the event's id, occurred and confidence plus its data
    fields (`model`, `name`, `author`, `period`, `metrics`, ...)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(pattern=EVENT_ID)
    occurred: Occurred
    confidence: Confidence


class Departure(_Out):
    """A departure that would end an appointment but is only possible as of the date."""

    id: str = Field(pattern=EVENT_ID)
    occurred: Occurred
    confidence: Confidence


class ExecutiveItem(Item):
    """An appointment in force as of the date: `person`, `role`, `note` among its fields."""

    person: str
    role: str
    departure: Departure | None = Field(
        default=None, description="A matching departure that is only possible as of the date"
    )


class PossibleItem(Item):
    """A fact that may or may not have happened by `as_of` (its date range straddles it)."""

    type: str


class CompanyState(_Out):
    """A company as of a date (valid time), as known at a log position (transaction time)."""

    company: str = Field(pattern=SLUG_PATTERN)
    name: str
    aliases: list[str]
    as_of: str = Field(pattern=DAY)
    known_at: KnownAt
    version: int = Field(ge=0)
    models: list[Item]
    teams: list[Item]
    filings: list[Item]
    letters: list[Item]
    statements: list[Item]
    integrations: list[Item]
    financials: list[Item]
    executives: list[ExecutiveItem] = Field(
        description="Appointments definite as of the date and not ended by a definite departure"
    )
    possible: list[PossibleItem]


StateList = Literal[
    "models",
    "teams",
    "filings",
    "letters",
    "statements",
    "integrations",
    "financials",
    "executives",
    "possible",
]


class ListChange(_Out):
    """An item that is in a list of the state at one point and not at the other."""

    list: StateList = Field(description="The list of the state it is in")
    item: Item


class ListEdit(_Out):
    """An item in a list of the state at both points, different."""

    list: StateList
    before: Item
    after: Item


class CompanyChanges(_Out):
    """A company's state as of a date, known at `since` against known at `until`."""

    company: str = Field(pattern=SLUG_PATTERN)
    as_of: str = Field(pattern=DAY)
    since: KnownAt
    until: KnownAt
    added: list[ListChange]
    removed: list[ListChange]
    changed: list[ListEdit]


class LogChange(_Out):
    """A log entry between the two points, with its target's effective form around it."""

    position: int = Field(ge=1)
    kind: Literal["added", "corrected", "retracted", "reinstated"]
    event: RecordedEvent = Field(description="The entry as stored")
    target: str | None = Field(pattern=EVENT_ID, description="The amended event's id")
    before: RecordedEvent | None = Field(description="The target just before this entry")
    after: RecordedEvent | None = Field(description="Just after it (null: retracted)")


class ChangesPage(_Out):
    """The entries S1 < position <= S2, in position order; the cursor pins S2."""

    changes: list[LogChange]
    next_cursor: str | None
    since: KnownAt
    until: KnownAt = Field(description="S2, which the cursor pins")


class CompanySummary(_Out):
    company: str = Field(pattern=SLUG_PATTERN)
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
    as_of: str = Field(pattern=DAY)
    known_at: KnownAt


class ChronologyPage(_Out):
    """Effective events of every company in valid-time order (lo, hi, position)."""

    events: list[RecordedEvent]
    next_cursor: str | None
    known_at: KnownAt


class Webhook(_Out):
    """A webhook: where it POSTs which events, and the last position acknowledged."""

    id: str = Field(pattern=r"^wh_[0-9a-f]+$")
    url: str
    company: list[str]
    type: list[str]
    acknowledged: int = Field(ge=0, description="Last position delivered or skipped")
    disabled: str | None = Field(description="Why deliveries stopped (a 410 Gone), or null")
    created: str = Field(pattern=RECORDED)


class WebhookCreated(Webhook):
    """A new webhook with its signing secret, shown only here."""

    secret: str = Field(pattern=r"^whsec_")


class WebhookList(_Out):
    webhooks: list[Webhook]
