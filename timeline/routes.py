"""Thin handlers: parse the request, call the store or the writer, render."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, cast

import orjson
from aiohttp import web
from pydantic import ValidationError

from events.canonical import parse_json
from events.entries import LogEntry, NewEvent
from events.errors import BadRequest, NotFound, TooLarge, ValidationFailed
from events.inputs import EventBatchIn, EventIn
from events.store import Appended, natural
from events.types import EVENT_TYPES, SLUG_PATTERN
from events.validation import validate_json_body, validation_errors
from projections import state
from projections.chronology import Cursor, chronology
from timeline import __version__, feed, metrics, models
from timeline.auth import Scope
from timeline.config import MAX_BODY_BYTES
from timeline.keys import HUB, METRICS, SETTINGS, STORE, TOKENS, WEBHOOKS, WRITER
from timeline.limits import stream_slot
from timeline.openapi import Endpoint, Handler, Param, document
from timeline.webhooks import WebhookIn

_SLUG = re.compile(SLUG_PATTERN)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def bad_query(name: str, message: str) -> BadRequest:
    return BadRequest(
        f"query parameter {name!r}: {message}", errors=[{"loc": ["query", name], "msg": message}]
    )


# A GET may carry its bearer token in the query (the dashboard's EventSource: timeline.dashboard).
TOKEN_PARAM = "access_token"


def strict_query(endpoint: Endpoint) -> Handler:
    """The endpoint's handler, refusing (400) a query parameter the endpoint does not take:
    a mistyped filter (`?compnay=baidu`) must not be answered as if there were none."""
    known = {param.name for param in endpoint.params if param.where == "query"}
    if endpoint.method == "GET":
        known.add(TOKEN_PARAM)
    handler = endpoint.handler

    scope = cast(Scope, endpoint.scope or "read")

    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        unknown = [name for name in request.query if name not in known]
        if unknown:
            await authorize(request, scope)  # as for any bad request: 401 and 403 first
            takes = ", ".join(sorted(known - {TOKEN_PARAM})) or "none"
            message = f"this endpoint takes no such parameter (it takes: {takes})"
            raise bad_query(unknown[0], message)
        return await handler(request)

    return checked if endpoint.path.startswith("/v1/") else handler


def query_int(request: web.Request, name: str, default: int, lo: int, hi: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        raise bad_query(name, "expected a non-negative integer")
    value = natural(raw)
    if value < lo or (hi is not None and value > hi):
        bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise bad_query(name, f"must be {bounds}")
    return value


def query_optional_int(request: web.Request, name: str) -> int | None:
    return query_int(request, name, 0, 0) if name in request.query else None


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


def orjson_response(value: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(value), content_type="application/json")


def event_list(events: Iterable[LogEntry]) -> str:
    return "[" + ",".join(event.to_json() for event in events) + "]"


async def authorize(request: web.Request, scope: Scope) -> None:
    """The request's token must grant `scope`. Reads are open unless TIMELINE_READ_AUTH is
    set, but a credential sent with one is checked all the same: a malformed or unknown token
    is a client's mistake to hear of (401), not to be ignored."""
    authorization = request.headers.get("Authorization")
    if scope == "read" and not request.app[SETTINGS].read_auth and authorization is None:
        return
    await request.app[TOKENS].require(authorization, scope)


async def read_events(request: web.Request) -> list[NewEvent]:
    """Authorize an append and validate its body, in the order API.md gives."""
    await authorize(request, "append")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise TooLarge("the request body is larger than 1 MiB", limit=MAX_BODY_BYTES)
    return validate_json_body(await request.read())


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
    store = request.app[STORE]
    event = await store.get(event_id) if _UUID.fullmatch(event_id) else None
    if event is None:
        raise NotFound(f"no event with id {request.match_info['id']!r}")
    effective, amendments = await state.event_detail(store, event)
    return json_response(
        f'{{"event":{event.to_json()},'
        f'"effective":{"null" if effective is None else effective.to_json()},'
        f'"amendments":{event_list(amendments)}}}'
    )


def query_date(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if _DATE.fullmatch(raw) is None:
        raise bad_query(name, "expected a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise bad_query(name, f"{raw!r} is not a calendar date") from None


def query_as_of(request: web.Request) -> date:
    return query_date(request, "as_of") or datetime.now(UTC).date()


def query_known_at(request: web.Request) -> int | datetime | None:
    raw = request.query.get("known_at")
    if raw is None:
        return None
    if raw.isascii() and raw.isdigit():
        return natural(raw)
    if _TIME.fullmatch(raw) is None:
        raise bad_query("known_at", "expected a log position or an RFC 3339 time with offset")
    try:
        moment = datetime.fromisoformat(raw.upper().replace(" ", "T"))
    except ValueError:
        raise bad_query("known_at", f"{raw!r} is not a valid time") from None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within a day of the calendar's ends: before or after any entry
        return (
            datetime.min.replace(tzinfo=UTC)
            if moment.year == 1
            else datetime.max.replace(tzinfo=UTC)
        )


def query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise bad_query(name, "expected true or false")
    return raw in ("true", "1")


def company_param(request: web.Request) -> str:
    company = request.match_info["company"]
    if _SLUG.fullmatch(company) is None:
        raise NotFound(f"no company {company!r}: company names are slugs like 'alibaba'")
    return company


async def get_companies(request: web.Request) -> web.Response:
    await authorize(request, "read")
    known, found = await state.companies(request.app[STORE], query_known_at(request))
    return orjson_response({"companies": found, "known_at": known.as_json()})


async def company_query(request: web.Request) -> tuple[str, date, state.KnownAt]:
    """The company, as_of and resolved known_at of a company endpoint."""
    await authorize(request, "read")
    company, as_of = company_param(request), query_as_of(request)
    known = await state.resolve(request.app[STORE], query_known_at(request))
    return company, as_of, known


def unknown_company(company: str, known: state.KnownAt) -> NotFound:
    return NotFound(f"no event of company {company!r} is known at position {known.position}")


async def get_company(request: web.Request) -> web.Response:
    company, as_of, known = await company_query(request)
    include_possible = query_bool(request, "include_possible")
    found = await state.company_state(
        request.app[STORE], company, as_of, known, include_possible=include_possible
    )
    if found is None:
        raise unknown_company(company, known)
    return json_response(found)


async def get_company_timeline(request: web.Request) -> web.Response:
    company, as_of, known = await company_query(request)
    found = await state.timeline(request.app[STORE], company, as_of, known)
    if found is None:
        raise unknown_company(company, known)
    events = ",".join(f'{event.to_json()[:-1]},"status":"{status}"}}' for event, status in found)
    return json_response(
        f'{{"events":[{events}],"as_of":"{as_of.isoformat()}",'
        f'"known_at":{orjson.dumps(known.as_json()).decode()}}}'
    )


async def get_chronology(request: web.Request) -> web.Response:
    await authorize(request, "read")
    start, end = query_date(request, "from"), query_date(request, "to")
    if start is not None and end is not None and start > end:
        raise bad_query("from", "from is after to")
    limit = query_int(request, "limit", 100, 1, 1000)
    companies, types = query_companies(request), query_types(request)
    store = request.app[STORE]
    raw_cursor = request.query.get("cursor")
    cursor = Cursor.decode(raw_cursor) if raw_cursor is not None else None
    if cursor is None:
        known = await state.resolve(store, query_known_at(request))
    elif cursor.known_at > (await store.head()).position:
        raise bad_query("cursor", "the cursor is not one this server issued")
    else:
        known = await state.resolve(store, cursor.known_at)
        asked = query_known_at(request)
        # A known_at beside the cursor must be the one the cursor pins, not silently ignored.
        if asked is not None and (await state.resolve(store, asked)).position != known.position:
            raise bad_query("known_at", "the cursor pins another known_at; drop one of them")
    events, following = await chronology(
        store,
        known,
        start=start,
        end=end,
        companies=companies,
        types=types,
        limit=limit,
        after=cursor,
    )
    next_cursor = "null" if following is None else f'"{following.encode()}"'
    return json_response(
        f'{{"events":{event_list(events)},"next_cursor":{next_cursor},'
        f'"known_at":{orjson.dumps(known.as_json()).decode()}}}'
    )


async def get_digest(request: web.Request) -> web.Response:
    await authorize(request, "read")
    head = await request.app[STORE].head()
    return web.json_response(
        {"position": head.position, "hash": head.hash, "recorded": head.recorded}
    )


async def get_health(request: web.Request) -> web.Response:
    # The database's head (503 when it cannot be read), and how far this process's live feed
    # has got: below the head only for the moment another process's commit takes to arrive.
    head = await request.app[STORE].head()
    return web.json_response({"status": "ok", "head": head.position, "hub": request.app[HUB].head})


async def get_stream(request: web.Request) -> web.StreamResponse:
    await authorize(request, "read")
    include = request.query.getall("include", [])
    for value in include:
        if value != "state":
            raise bad_query("include", f"{value!r} is not something a stream can include")
    after = feed.parse_last_event_id(request.headers.get("Last-Event-ID"))
    params = feed.StreamRequest(
        after=after if after is not None else query_optional_int(request, "after"),
        companies=query_companies(request),
        types=query_types(request),
        include_state="state" in include,
    )
    settings = request.app[SETTINGS]
    with stream_slot(request):
        return await feed.stream(
            request, request.app[STORE], request.app[HUB], params, settings.feed_ping_seconds
        )


async def post_webhook(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    try:
        body = parse_json(await request.read())
        spec = WebhookIn.model_validate(body)
    except ValueError as exc:
        errors = (
            validation_errors(exc, ["body"])
            if isinstance(exc, ValidationError)
            else [{"loc": ["body"], "msg": f"invalid JSON: {exc}"}]
        )
        raise ValidationFailed("the body is not a valid webhook", errors=errors) from None
    hook = await request.app[WEBHOOKS].create(spec)
    return orjson_response(hook.public(with_secret=True), 201)


async def get_webhooks(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    hooks = await request.app[WEBHOOKS].all()
    return orjson_response({"webhooks": [hook.public() for hook in hooks]})


async def get_webhook(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    hook = await request.app[WEBHOOKS].get(request.match_info["id"])
    return orjson_response(hook.public())


async def delete_webhook(request: web.Request) -> web.Response:
    await authorize(request, "admin")
    await request.app[WEBHOOKS].delete(request.match_info["id"])
    return web.Response(status=204)


async def get_metrics(request: web.Request) -> web.Response:
    await authorize(request, "read")
    return metrics.render(request.app[METRICS])


@functools.cache
def openapi_document() -> dict[str, Any]:
    return document(ENDPOINTS, title="Timeline", version=__version__)


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


_AFTER = Param("after", {"type": "integer", "minimum": 0}, "Only positions greater than this")
_LIMIT = Param(
    "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "Page size"
)
_COMPANY = Param("company", {"type": "string", "pattern": SLUG_PATTERN}, "Company filter", True)
_TYPE = Param("type", {"type": "string", "enum": sorted(EVENT_TYPES)}, "Event type filter", True)
_ID = Param("id", {"type": "string", "format": "uuid"}, "Event id", where="path")
_COMPANY_PATH = Param(
    "company", {"type": "string", "pattern": SLUG_PATTERN}, "Company", where="path"
)
_AS_OF = Param("as_of", {"type": "string", "format": "date"}, "Valid time (default: today, UTC)")
_KNOWN_AT = Param(
    "known_at",
    {"oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "format": "date-time"}]},
    "Transaction time: a log position or an RFC 3339 time (default: the head)",
)
_POSSIBLE = Param("include_possible", {"type": "boolean"}, "Fold possible events into the lists")
_FROM = Param("from", {"type": "string", "format": "date"}, "Events whose range meets [from, to]")
_TO = Param("to", {"type": "string", "format": "date"}, "Events whose range meets [from, to]")
_CURSOR = Param("cursor", {"type": "string"}, "next_cursor of the previous page")

ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/events",
        post_events,
        "Append one event or an atomic batch",
        body=EventIn | EventBatchIn,
        responses={201: models.EventsCreated, 200: models.EventsCreated},
        scope="append",
        errors=(401, 403, 409, 413, 422),
    ),
    Endpoint(
        "GET",
        "/v1/events",
        get_events,
        "Read the log in position order",
        responses={200: models.EventsPage},
        params=(_AFTER, _LIMIT, _COMPANY, _TYPE),
        scope="read",
    ),
    Endpoint(
        "GET",
        "/v1/events/{id}",
        get_event,
        "One event, its effective form and its amendments",
        responses={200: models.EventDetail},
        params=(_ID,),
        scope="read",
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/v1/companies",
        get_companies,
        "Every company known at S, with its event count and first and last dates",
        responses={200: models.CompanyList},
        params=(_KNOWN_AT,),
        scope="read",
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/v1/companies/{company}",
        get_company,
        "A company's state as of a date, as known at a time or position",
        responses={200: models.CompanyState},
        params=(_COMPANY_PATH, _AS_OF, _KNOWN_AT, _POSSIBLE),
        scope="read",
        errors=(404, 409),
    ),
    Endpoint(
        "GET",
        "/v1/companies/{company}/timeline",
        get_company_timeline,
        "A company's effective events begun by as_of, in valid-time order",
        responses={200: models.CompanyTimeline},
        params=(_COMPANY_PATH, _AS_OF, _KNOWN_AT),
        scope="read",
        errors=(404, 409),
    ),
    Endpoint(
        "GET",
        "/v1/chronology",
        get_chronology,
        "Every company's effective events in valid-time order, paged",
        responses={200: models.ChronologyPage},
        params=(_FROM, _TO, _COMPANY, _TYPE, _KNOWN_AT, _LIMIT, _CURSOR),
        scope="read",
        errors=(409,),
    ),
    Endpoint(
        "GET",
        "/v1/stream",
        get_stream,
        "Server-Sent Events: history after a position, then live, no gap, no duplicate",
        responses={200: None},
        params=(
            Param("after", {"type": "integer", "minimum": 0}, "Start after (default: head)"),
            _COMPANY,
            _TYPE,
            Param("include", {"type": "string", "enum": ["state"]}, "Add company state"),
            Param(
                "Last-Event-ID",
                {"type": "integer", "minimum": 0},
                "Wins over after",
                where="header",
            ),
        ),
        scope="read",
        errors=(409,),
        content_type="text/event-stream",
    ),
    Endpoint(
        "GET",
        "/v1/digest",
        get_digest,
        "The head of the hash chain",
        {200: models.Digest},
        scope="read",
    ),
    Endpoint(
        "GET",
        "/healthz",
        get_health,
        "Liveness and the head position (503 while the database cannot be read)",
        {200: models.Health},
        errors=(503,),
    ),
    Endpoint(
        "POST",
        "/v1/webhooks",
        post_webhook,
        "Subscribe a URL to signed deliveries of matching events (the secret is shown once)",
        body=WebhookIn,
        responses={201: models.WebhookCreated},
        scope="admin",
        errors=(401, 403, 409, 413, 422),
    ),
    Endpoint(
        "GET",
        "/v1/webhooks",
        get_webhooks,
        "Every webhook",
        {200: models.WebhookList},
        scope="admin",
    ),
    Endpoint(
        "GET",
        "/v1/webhooks/{id}",
        get_webhook,
        "A webhook and its acknowledged position",
        {200: models.Webhook},
        params=(Param("id", {"type": "string"}, "Webhook id", where="path"),),
        scope="admin",
        errors=(404,),
    ),
    Endpoint(
        "DELETE",
        "/v1/webhooks/{id}",
        delete_webhook,
        "Stop and remove a webhook",
        {204: None},
        params=(Param("id", {"type": "string"}, "Webhook id", where="path"),),
        scope="admin",
        errors=(404,),
    ),
    Endpoint(
        "GET",
        "/metrics",
        get_metrics,
        "Prometheus metrics",
        {200: None},
        scope="read",
        content_type="text/plain",
    ),
    Endpoint("GET", "/openapi.json", get_openapi, "This document", {200: dict[str, Any]}),
]
