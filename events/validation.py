"""A request body → NewEvents, or ValidationFailed saying what is wrong where."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from events import types as t
from events.canonical import canonical, canonical_without_floats, parse_json
from events.dates import FuzzyDate
from events.entries import NewEvent
from events.errors import ValidationFailed
from events.ids import new_ids
from events.inputs import DEFAULT_CONFIDENCE, EventBatchIn, EventIn
from events.mirror import mirror, mirror_type

MAX_DATA_BYTES = 64 * 1024
M = TypeVar("M", bound=BaseModel)

_single = TypeAdapter[Any](EventIn)
_batch = TypeAdapter(EventBatchIn)
# The fast path: the same validation straight into dicts (see events/mirror.py). What it
# refuses goes to the models above, which accept it or say why not.
_fast_single = TypeAdapter[Any](mirror_type(EventIn))
_fast_batch = TypeAdapter[Any](mirror(EventBatchIn))


def validate_model(raw: bytes, model: type[M], what: str) -> M:
    """A JSON body → an instance of `model`, or ValidationFailed ("the body is not a valid
    `what`") with the errors of the JSON or of the model."""
    try:
        return model.model_validate(parse_json(raw))
    except ValidationError as exc:
        errors = validation_errors(exc, ["body"])
    except ValueError as exc:
        errors = [{"loc": ["body"], "msg": f"invalid JSON: {exc}"}]
    raise ValidationFailed(f"the body is not a valid {what}", errors=errors)


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
    made = iter(new_ids(sum(1 for event in dumped if not event.get("id"))))
    events = [
        prepare(event, loc, event.get("id") or next(made))
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
    return occurred, canonical(occurred.as_json()), occurred.lo, occurred.hi


def prepare(event: dict[str, Any], loc: tuple[str | int, ...], event_id: str) -> NewEvent:
    """Apply defaults and compute the canonical parts of one validated, dumped EventIn;
    `event_id` is its own or one made for it."""
    occurred, occurred_json, lo, hi = _occurred(event["occurred"])
    data = event["data"]
    encode = canonical if event["type"] in t.MAY_HOLD_FLOATS else canonical_without_floats
    source = event.get("source")
    return NewEvent(
        id=event_id,
        type=event["type"],
        company=event["company"],
        occurred=occurred,
        occurred_json=occurred_json,
        data=data,
        data_json=_checked_data(encode(data), loc),
        source_json=canonical_without_floats(source) if source is not None else None,
        confidence=event.get("confidence", DEFAULT_CONFIDENCE),
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
