"""What clients send: EventIn, one per event type, and EventBatchIn (the pydantic models that
validate a body and describe it in the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from events import types as t

MAX_BATCH = 1000
DEFAULT_CONFIDENCE: t.Confidence = "reported"


class Source(BaseModel):
    """Where a fact comes from; `quote` is the sentence it rests on, verbatim."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    publisher: t.Name | None = None
    title: t.Name | None = None
    url: Annotated[str, Field(max_length=2048)] | None = None
    published: t.Name | None = None
    quote: t.Text | None = None


class EventInBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: t.EventId | None = Field(default=None, description="Idempotency key; made when absent")
    company: t.Slug
    occurred: t.Fuzzy = Field(
        description="Valid time: YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD or a decade YYYX, each "
        "optionally followed by ~ or ?; or [..F] (on or before F) or [F1..F2] (between)"
    )
    source: Source | None = None
    confidence: t.Confidence = DEFAULT_CONFIDENCE
    expected_version: Annotated[int, Field(ge=0)] | None = None


class CompanyRegisteredIn(EventInBase):
    type: Literal["company.registered"]
    data: t.CompanyRegistered


class TeamFormedIn(EventInBase):
    type: Literal["team.formed"]
    data: t.TeamFormed


class ModelLaunchedIn(EventInBase):
    type: Literal["model.launched"]
    data: t.ModelLaunched


class FilingPassedIn(EventInBase):
    type: Literal["filing.passed"]
    data: t.FilingPassed


class CeoLetterIn(EventInBase):
    type: Literal["ceo.letter"]
    data: t.CeoLetter


class FinancialReportIn(EventInBase):
    type: Literal["financial.report"]
    data: t.FinancialReport


class ProductIntegratedIn(EventInBase):
    type: Literal["product.integrated"]
    data: t.ProductIntegrated


class StatementMadeIn(EventInBase):
    type: Literal["statement.made"]
    data: t.StatementMade


class ExecutiveAppointedIn(EventInBase):
    type: Literal["executive.appointed"]
    data: t.ExecutiveAppointed


class ExecutiveDepartedIn(EventInBase):
    type: Literal["executive.departed"]
    data: t.ExecutiveDeparted


class EventCorrectedIn(EventInBase):
    type: Literal["event.corrected"]
    data: t.EventCorrected


class EventRetractedIn(EventInBase):
    type: Literal["event.retracted"]
    data: t.EventRetracted


class EventReinstatedIn(EventInBase):
    type: Literal["event.reinstated"]
    data: t.EventReinstated


EventIn = Annotated[
    CompanyRegisteredIn
    | TeamFormedIn
    | ModelLaunchedIn
    | FilingPassedIn
    | CeoLetterIn
    | FinancialReportIn
    | ProductIntegratedIn
    | StatementMadeIn
    | ExecutiveAppointedIn
    | ExecutiveDepartedIn
    | EventCorrectedIn
    | EventRetractedIn
    | EventReinstatedIn,
    Field(discriminator="type"),
]


class EventBatchIn(BaseModel):
    """A batch of events appended atomically: all or none."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]
