"""The event types and their payloads, validated strictly: unknown keys are rejected,
required fields enforced, strings and lists capped."""

from __future__ import annotations

import functools
import uuid
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    model_validator,
)

from events.dates import FuzzyDate

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


@functools.lru_cache(maxsize=4096)
def _fuzzy(value: str) -> str:
    FuzzyDate.parse(value)
    return value


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("expected a UUID") from None


def _integral(value: float) -> float:
    # The hash covers the JSON text, so 3.0 and 3 must be one number: integers are written bare.
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=20_000)]
Fuzzy = Annotated[str, StringConstraints(max_length=32), AfterValidator(_fuzzy)]
EventId = Annotated[str, StringConstraints(max_length=45), AfterValidator(_uuid)]
Number = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_integral)]
Names = Annotated[list[Name], Field(max_length=100)]
Confidence = Literal["confirmed", "reported", "rumored"]


class Payload(BaseModel):
    """Base of every `data` model: strict, closed, and written without nulls."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class CompanyRegistered(Payload):
    name: Name
    aliases: Names | None = None
    parent: Slug | None = None
    country: Name | None = None
    description: Text | None = None


class TeamFormed(Payload):
    name: Name
    location: Name | None = None
    focus: Names | None = None
    headcount: Annotated[int, Field(ge=0, le=10_000_000)] | None = None


class ModelLaunched(Payload):
    model: Name
    aliases: Names | None = None
    stage: Literal["announced", "internal_test", "public"] | None = None
    parameters: Name | None = None
    modality: Names | None = None


class FilingPassed(Payload):
    model: Name | None = None
    authority: Name | None = None
    note: Text | None = None


class CeoLetter(Payload):
    author: Name
    role: Name | None = None
    title: Name | None = None
    summary: Text


class Metric(Payload):
    name: Name
    value: Number
    unit: Name | None = None
    yoy_pct: Number | None = None


class FinancialReport(Payload):
    period: Fuzzy
    metrics: Annotated[list[Metric], Field(max_length=500)]
    highlights: Annotated[list[Text], Field(max_length=200)] | None = None


class ProductIntegrated(Payload):
    product: Name
    model: Name


class StatementMade(Payload):
    speaker: Name
    role: Name | None = None
    venue: Name | None = None
    summary: Text


class ExecutiveAppointed(Payload):
    person: Name
    role: Name
    note: Text | None = None


class ExecutiveDeparted(Payload):
    person: Name
    role: Name
    successor: Name | None = None
    note: Text | None = None


class EventCorrected(Payload):
    target: EventId
    occurred: Fuzzy | None = None
    data: dict[str, JsonValue] | None = None
    confidence: Confidence | None = None

    @model_validator(mode="after")
    def _corrects_something(self) -> EventCorrected:
        if self.occurred is None and self.data is None and self.confidence is None:
            raise ValueError("a correction needs at least one of occurred, data, confidence")
        return self


class EventRetracted(Payload):
    target: EventId
    reason: Text


class EventReinstated(Payload):
    target: EventId
    reason: Text | None = None


PAYLOADS: dict[str, type[Payload]] = {
    "company.registered": CompanyRegistered,
    "team.formed": TeamFormed,
    "model.launched": ModelLaunched,
    "filing.passed": FilingPassed,
    "ceo.letter": CeoLetter,
    "financial.report": FinancialReport,
    "product.integrated": ProductIntegrated,
    "statement.made": StatementMade,
    "executive.appointed": ExecutiveAppointed,
    "executive.departed": ExecutiveDeparted,
    "event.corrected": EventCorrected,
    "event.retracted": EventRetracted,
    "event.reinstated": EventReinstated,
}
# The only payloads with a float anywhere in them (Number fields, free-form corrections).
MAY_HOLD_FLOATS = frozenset({"financial.report", "event.corrected"})
AMENDMENTS = frozenset({"event.corrected", "event.retracted", "event.reinstated"})
EVENT_TYPES = frozenset(PAYLOADS)
