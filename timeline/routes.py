"""Thin handlers: parse the request, call the store or the writer, render."""

from __future__ import annotations

import re
from collections.abc import Iterable

from aiohttp import web

from events.envelope import (
    EventBatchIn,
    EventIn,
    NewEvent,
    RecordedEvent,
    parse_json,
    validate_body,
)
from events.errors import BadRequest, NotFound, TooLarge, ValidationFailed
from events.store import Appended
from events.types import EVENT_TYPES, SLUG_PATTERN
from timeline import models
from timeline.auth import Scope
from timeline.config import MAX_BODY_BYTES
from timeline.keys import SETTINGS, STORE, TOKENS, WRITER
from timeline.openapi import Endpoint, Param

_SLUG = re.compile(SLUG_PATTERN)
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def bad_query(name: str, message: str) -> BadRequest:
    return BadRequest(
        f"query parameter {name!r}: {message}", errors=[{"loc": ["query", name], "msg": message}]
    )


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise bad_query(name, "expected a non-negative integer")
    value = int(raw)
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise bad_query(name, f"must be {bounds}")
    return value


def query_companies(request: web.Request) -> list[str]:
    values = request.query.getall("company", [])
    for value in values:
        if _SLUG.fullmatch(value) is None:
            raise bad_query("company", f"{value!r} is not a company slug")
    return values


def query_types(request: web.Request) -> list[str]:
    values = request.query.getall("type", [])
    for value in values:
        if value not in EVENT_TYPES:
            raise bad_query("type", f"{value!r} is not an event type")
    return values


def json_response(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, body=text.encode(), content_type="application/json")


def event_list(events: Iterable[RecordedEvent]) -> str:
    return "[" + ",".join(event.to_json() for event in events) + "]"


async def authorize(request: web.Request, scope: Scope) -> None:
    if scope == "read" and not request.app[SETTINGS].read_auth:
        return
    await request.app[TOKENS].require(request.headers.get("Authorization"), scope)


async def read_events(request: web.Request) -> list[NewEvent]:
    """Authorize an append and validate its body, in the order API.md gives."""
    await authorize(request, "append")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise TooLarge("the request body is larger than 1 MiB", limit=MAX_BODY_BYTES)
    raw = await request.read()
    try:
        body = parse_json(raw)
    except ValueError as exc:
        raise ValidationFailed(
            "the request body is not valid JSON",
            errors=[{"loc": ["body"], "msg": f"invalid JSON: {exc}"}],
        ) from None
    return validate_body(body)


def created_response(result: Appended) -> web.Response:
    return json_response(
        '{"events":' + event_list(result.events) + "}", 201 if result.created else 200
    )


async def post_events(request: web.Request) -> web.Response:
    events = await read_events(request)
    return created_response(await request.app[WRITER].append(events))


async def get_events(request: web.Request) -> web.Response:
    await authorize(request, "read")
    after = query_int(request, "after", 0, 0)
    limit = query_int(request, "limit", 100, 1, 1000)
    store = request.app[STORE]
    events = await store.read(
        after=after,
        limit=limit + 1,
        companies=query_companies(request),
        types=query_types(request),
    )
    head = await store.head()
    more = len(events) > limit
    events = events[:limit]
    next_position = str(events[-1].position) if more else "null"
    return json_response(
        f'{{"events":{event_list(events)},"next":{next_position},"head":{head.position}}}'
    )


async def get_event(request: web.Request) -> web.Response:
    await authorize(request, "read")
    event_id = request.match_info["id"].lower()
    event = await request.app[STORE].get(event_id) if _UUID.fullmatch(event_id) else None
    if event is None:
        raise NotFound(f"no event with id {request.match_info['id']!r}")
    effective = "null" if event.type.startswith("event.") else event.to_json()
    return json_response(f'{{"event":{event.to_json()},"effective":{effective},"amendments":[]}}')


async def get_digest(request: web.Request) -> web.Response:
    await authorize(request, "read")
    head = await request.app[STORE].head()
    return web.json_response(
        {"position": head.position, "hash": head.hash, "recorded": head.recorded}
    )


async def get_health(request: web.Request) -> web.Response:
    head = await request.app[STORE].head()
    return web.json_response({"status": "ok", "head": head.position})


async def get_openapi(request: web.Request) -> web.Response:
    from timeline.app import openapi_document

    return web.json_response(openapi_document())


_AFTER = Param("after", {"type": "integer", "minimum": 0}, "Only positions greater than this")
_LIMIT = Param(
    "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size"
)
_COMPANY = Param("company", {"type": "string", "pattern": SLUG_PATTERN}, "Company filter", True)
_TYPE = Param("type", {"type": "string", "enum": sorted(EVENT_TYPES)}, "Event type filter", True)
_ID = Param("id", {"type": "string", "format": "uuid"}, "Event id", where="path")

ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/events",
        post_events,
        "Append one event or an atomic batch",
        body=EventIn | EventBatchIn,
        responses={201: models.EventsCreated, 200: models.EventsCreated},
        scope="append",
        errors=(401, 403, 409, 413, 422, 503),
    ),
    Endpoint(
        "GET",
        "/v1/events",
        get_events,
        "Read the log in position order",
        responses={200: models.EventsPage},
        params=(_AFTER, _LIMIT, _COMPANY, _TYPE),
        errors=(400,),
    ),
    Endpoint(
        "GET",
        "/v1/events/{id}",
        get_event,
        "One event, its effective form and its amendments",
        responses={200: models.EventDetail},
        params=(_ID,),
        errors=(404,),
    ),
    Endpoint("GET", "/v1/digest", get_digest, "The head of the hash chain", {200: models.Digest}),
    Endpoint("GET", "/healthz", get_health, "Liveness and the head position", {200: models.Health}),
    Endpoint("GET", "/openapi.json", get_openapi, "This document", {200: None}),
]
