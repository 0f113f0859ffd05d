"""EventIn as clients send it, RecordedEvent as the log keeps it, canonical JSON and the chain."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

import orjson
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from events import types as t
from events.dates import FuzzyDate
from events.errors import ValidationFailed
from events.mirror import mirror, mirror_type

MAX_DATA_BYTES = 64 * 1024
MAX_BATCH = 1000
GENESIS = "0" * 64


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> str:
    """The one JSON text of a value: keys sorted at every level, no spaces, UTF-8 as is."""
    return _CANONICAL.encode(value)


def canonical_without_floats(value: Any) -> str:
    """canonical(), ten times faster, for values known to hold no float: orjson writes strings,
    integers and sorted keys exactly as the json module does, but floats differently."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def new_id() -> str:
    """A time-ordered (version 7, RFC 9562) UUID, lowercase and hyphenated. Ids made in
    order land at the end of the id index instead of all over it."""
    return new_ids(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` ids as `new_id` makes them, with one clock reading and one call for randomness
    (os.urandom is a system call: one per id cost a batch of 1000 about a millisecond)."""
    millis = (time.time_ns() // 1_000_000).to_bytes(6, "big").hex()
    random = os.urandom(10 * count).hex()
    ids = []
    for start in range(0, 20 * count, 20):
        r = random[start : start + 20]
        # version 7 in the 13th hex digit, variant 10xx in the 17th
        ids.append(f"{millis[:8]}-{millis[8:]}-7{r[1:4]}-{_VARIANT[r[4]]}{r[5:8]}-{r[8:]}")
    return ids


_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def chain(previous: str, entry: str) -> str:
    """hash_n = SHA-256(hash_{n-1} || SHA-256(entry_n)), written as lowercase hex."""
    entry_hash = hashlib.sha256(entry.encode()).digest()
    return hashlib.sha256(bytes.fromhex(previous) + entry_hash).hexdigest()


def chain_many(previous: str, entries: Iterable[RecordedEvent]) -> str:
    """Chain entries in order from `previous`, setting each one's `hash`; returns the last.
    The same values as `chain`, without converting each link from hex and back."""
    link = bytes.fromhex(previous)
    sha256 = hashlib.sha256
    for entry in entries:
        digest = sha256(link + sha256(entry.hashed_json().encode()).digest())
        link = digest.digest()
        entry.hash = digest.hexdigest()
    return link.hex()


class Source(BaseModel):
    """Where a fact comes from; `quote` is the sentence it rests on, verbatim."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    publisher: t.Name | None = None
    title: t.Name | None = None
    url: Annotated[str, Field(max_length=2048)] | None = None
    published: t.Name | None = None
    quote: t.Text | None = None


class _EventInBase(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: t.EventId | None = Field(default=None, description="Idempotency key; made when absent")
    company: t.Slug
    occurred: t.Fuzzy = Field(description="Valid time: YYYY, YYYY-Qn, YYYY-MM or YYYY-MM-DD, ~/?")
    source: Source | None = None
    confidence: t.Confidence = "reported"
    expected_version: Annotated[int, Field(ge=0)] | None = None


class CompanyRegisteredIn(_EventInBase):
    type: Literal["company.registered"]
    data: t.CompanyRegistered


class TeamFormedIn(_EventInBase):
    type: Literal["team.formed"]
    data: t.TeamFormed


class ModelLaunchedIn(_EventInBase):
    type: Literal["model.launched"]
    data: t.ModelLaunched


class FilingPassedIn(_EventInBase):
    type: Literal["filing.passed"]
    data: t.FilingPassed


class CeoLetterIn(_EventInBase):
    type: Literal["ceo.letter"]
    data: t.CeoLetter


class FinancialReportIn(_EventInBase):
    type: Literal["financial.report"]
    data: t.FinancialReport


class ProductIntegratedIn(_EventInBase):
    type: Literal["product.integrated"]
    data: t.ProductIntegrated


class StatementMadeIn(_EventInBase):
    type: Literal["statement.made"]
    data: t.StatementMade


class EventCorrectedIn(_EventInBase):
    type: Literal["event.corrected"]
    data: t.EventCorrected


class EventRetractedIn(_EventInBase):
    type: Literal["event.retracted"]
    data: t.EventRetracted


class EventReinstatedIn(_EventInBase):
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
    | EventCorrectedIn
    | EventRetractedIn
    | EventReinstatedIn,
    Field(discriminator="type"),
]


class EventBatchIn(BaseModel):
    """A batch of events appended atomically: all or none."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_BATCH)]


_single = TypeAdapter[Any](EventIn)
_batch = TypeAdapter(EventBatchIn)
# The fast path: the same validation straight into dicts (see events/mirror.py). What it
# refuses goes to the models above, which accept it or say why not.
_fast_single = TypeAdapter[Any](mirror_type(EventIn))
_fast_batch = TypeAdapter[Any](mirror(EventBatchIn))
_DEFAULT_CONFIDENCE = _EventInBase.model_fields["confidence"].default


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

    def recorded_as(self, position: int, version: int, recorded: str) -> RecordedEvent:
        """This event as the log entry at `position`, chained to nothing yet (empty hash)."""
        # Positional, in RecordedEvent's field order: this runs once per appended event.
        return RecordedEvent(
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


def content(event: NewEvent | RecordedEvent) -> tuple[str, str, str, str, str | None, str]:
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
class RecordedEvent:
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

    def _json(self, hash_part: str) -> str:
        return (
            f'{{"company":"{self.company}","confidence":"{self.confidence}",'
            f'"data":{self.data_json},{hash_part}"id":"{self.id}",'
            f'"occurred":{self.occurred_json},"position":{self.position},'
            f'"recorded":"{self.recorded}","source":{self.source_json or "null"},'
            f'"type":"{self.type}","version":{self.version}}}'
        )

    def hashed_json(self) -> str:
        """The canonical JSON of the hashed fields (everything but `hash`)."""
        return self._json("")

    def to_json(self) -> str:
        """The event as the API returns it: the hashed fields plus `hash`."""
        return self._json(f'"hash":"{self.hash}",')

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


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_json(body: bytes | str) -> Any:
    """Strict JSON: NaN and Infinity are refused; every failure is a ValueError.

    pydantic-core's parser goes first (faster than the json module, and unlike orjson it
    keeps integers beyond 64 bits exact). What it refuses (a lone surrogate, a byte order
    mark, nesting past 200 levels, NaN) goes to the json module, which decides; what it
    accepts, it reads to the same values (tests/events/test_envelope.py checks both)."""
    try:
        return pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError:
        pass
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _clean_loc(loc: tuple[str | int, ...]) -> list[str | int]:
    # A discriminated union puts the tag in the location; a client knows its own type.
    return [part for part in loc if not (isinstance(part, str) and part in t.EVENT_TYPES)]


def validation_errors(exc: ValidationError, prefix: Sequence[str | int]) -> list[dict[str, Any]]:
    found = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = _clean_loc(error["loc"])
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")
        found.append({"loc": [*prefix, *loc], "msg": error["msg"]})
    return found


def _validated(body: Any, is_batch: bool) -> list[dict[str, Any]]:
    """The events of a body as dicts: defaults not applied, nulls dropped."""
    fast, model = (_fast_batch, _batch) if is_batch else (_fast_single, _single)
    try:
        value = fast.validate_python(body)
    except ValidationError:
        # Refused by the mirror: the model accepts it (a null, a correction) or explains why not.
        try:
            value = model.dump_python(model.validate_python(body), exclude_none=True)
        except ValidationError as exc:
            raise ValidationFailed(
                "the request body is not a valid event or batch",
                errors=validation_errors(exc, ["body"]),
            ) from None
    events: list[dict[str, Any]] = value["events"] if is_batch else [value]
    return events


def validate_json_body(raw: bytes) -> list[NewEvent]:
    """`validate_body(parse_json(raw))`, with the common case read straight from the JSON
    text: a mirror validates bytes in one pass, without building the parsed body first.
    Whatever it refuses (invalid JSON included) takes the general path, which decides."""
    is_batch = b'"events"' in raw
    fast = _fast_batch if is_batch else _fast_single
    try:
        value = fast.validate_json(raw)
    except ValidationError:
        try:
            body = parse_json(raw)
        except ValueError as exc:
            raise ValidationFailed(
                "the request body is not valid JSON",
                errors=[{"loc": ["body"], "msg": f"invalid JSON: {exc}"}],
            ) from None
        return validate_body(body)
    return _prepared(value["events"] if is_batch else [value], is_batch)


def validate_body(body: Any) -> list[NewEvent]:
    """One EventIn or {"events": [...]} → the NewEvents, or ValidationFailed (422)."""
    is_batch = isinstance(body, dict) and "events" in body
    return _prepared(_validated(body, is_batch), is_batch)


def _prepared(dumped: list[dict[str, Any]], is_batch: bool) -> list[NewEvent]:
    locs: list[tuple[str | int, ...]] = (
        [("body", "events", i) for i in range(len(dumped))] if is_batch else [("body",)]
    )
    ids = iter(new_ids(sum(1 for event in dumped if not event.get("id"))))
    events = [
        prepare(event, loc, None if event.get("id") else next(ids))
        for event, loc in zip(dumped, locs, strict=True)
    ]
    seen: set[str] = set()
    for event in events:
        if event.id in seen:
            raise ValidationFailed(
                f"event id {event.id} appears twice in the batch",
                errors=[{"loc": [*event.loc, "id"], "msg": "duplicate id in batch"}],
            )
        seen.add(event.id)
    return events


def _checked_data(data_json: str, loc: tuple[str | int, ...]) -> str:
    try:
        size = len(data_json.encode())
    except UnicodeEncodeError:
        # Free-form JSON (a correction's data) can smuggle a lone surrogate in via "\ud800".
        message = "strings must be valid Unicode (no lone surrogates)"
        raise ValidationFailed(message, errors=[{"loc": [*loc, "data"], "msg": message}]) from None
    if size > MAX_DATA_BYTES:
        message = "at most 65536 bytes as canonical JSON"
        raise ValidationFailed(
            "event data is larger than 64 KiB", errors=[{"loc": [*loc, "data"], "msg": message}]
        )
    return data_json


@functools.lru_cache(maxsize=4096)
def _occurred(text: str) -> tuple[FuzzyDate, str, str, str]:
    occurred = FuzzyDate.parse(text)
    return occurred, canonical(occurred.as_json()), occurred.lo.isoformat(), occurred.hi.isoformat()


def prepare(
    event: dict[str, Any], loc: tuple[str | int, ...], made_id: str | None = None
) -> NewEvent:
    """Apply defaults and compute the canonical parts of one validated, dumped EventIn."""
    occurred, occurred_json, lo, hi = _occurred(event["occurred"])
    data = event["data"]
    encode = canonical if event["type"] in t.MAY_HOLD_FLOATS else canonical_without_floats
    source = event.get("source")
    return NewEvent(
        id=event.get("id") or made_id or new_id(),
        type=event["type"],
        company=event["company"],
        occurred=occurred,
        occurred_json=occurred_json,
        data=data,
        data_json=_checked_data(encode(data), loc),
        source_json=canonical_without_floats(source) if source is not None else None,
        confidence=event.get("confidence", _DEFAULT_CONFIDENCE),
        expected_version=event.get("expected_version"),
        loc=loc,
        lo=lo,
        hi=hi,
        fresh=not event.get("id"),
    )


def correct_against(event: NewEvent, target_type: str) -> NewEvent:
    """Validate a correction's replacement `data` against its target's type and normalize it."""
    replacement = event.data.get("data")
    if replacement is None:
        return event
    try:
        normalized = t.PAYLOADS[target_type].model_validate(replacement)
    except ValidationError as exc:
        raise ValidationFailed(
            f"the correction's data is not valid for a {target_type} event",
            errors=validation_errors(exc, [*event.loc, "data", "data"]),
        ) from None
    data = {**event.data, "data": normalized.model_dump(exclude_none=True)}
    fixed = event.with_data(data)
    _checked_data(fixed.data_json, event.loc)
    return fixed
