"""Thin handlers, each declared with what /openapi.json says of it: parse the parameters
(timeline.params), call the store, the writer or a projection, render (timeline.render).
Their guard (timeline.endpoints) has checked the token and the parameter names before they
run. Here: the log's endpoints and the service's, and ENDPOINTS, the list of all of them;
those that answer from the projections are timeline.projection_routes'."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from events.entries import NewEvent
from events.errors import NotFound, TooLarge
from events.inputs import EventBatchIn, EventIn
from events.store import Appended
from events.validation import validate_json_body
from projections import state
from timeline import __version__, feed, metrics, models, projection_routes
from timeline.config import MAX_BODY_BYTES
from timeline.endpoints import Endpoints
from timeline.hooks import WebhookIn
from timeline.keys import HUB, METRICS, SETTINGS, STORE, WEBHOOKS, WRITER
from timeline.limits import stream_slot
from timeline.openapi import document
from timeline.params import (
    AFTER,
    COMPANY,
    ID,
    INCLUDE,
    LAST_EVENT_ID,
    LIMIT,
    STREAM_AFTER,
    TYPE,
    WEBHOOK_ID,
    bad_query,
    event_id_param,
    query_companies,
    query_int,
    query_optional_int,
    query_types,
)
from timeline.render import event_list, json_response, orjson_response

ENDPOINTS = Endpoints()


async def read_events(request: web.Request) -> list[NewEvent]:
    """An append's body, validated: 413 before 422, as API.md orders them."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise TooLarge("the request body is larger than 1 MiB", limit=MAX_BODY_BYTES)
    return validate_json_body(await request.read())


def created_response(result: Appended) -> web.Response:
    return json_response(
        '{"events":' + event_list(result.events) + "}", 201 if result.created else 200
    )


@ENDPOINTS.add(
    "POST",
    "/v1/events",
    "Append one event or an atomic batch",
    {201: models.EventsCreated, 200: models.EventsCreated},
    body=EventIn | EventBatchIn,
    scope="append",
    errors=(401, 403, 409, 413, 422),
)
async def post_events(request: web.Request) -> web.Response:
    events = await read_events(request)
    return created_response(await request.app[WRITER].append(events))


@ENDPOINTS.add(
    "GET",
    "/v1/events",
    "Read the log in position order",
    {200: models.EventsPage},
    params=(AFTER, LIMIT, COMPANY, TYPE),
    scope="read",
)
async def get_events(request: web.Request) -> web.Response:
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


@ENDPOINTS.add(
    "GET",
    "/v1/events/{id}",
    "One event, its effective form and its amendments",
    {200: models.EventDetail},
    params=(ID,),
    scope="read",
    errors=(404,),
)
async def get_event(request: web.Request) -> web.Response:
    store = request.app[STORE]
    event_id = event_id_param(request)
    event = await store.get(event_id) if event_id is not None else None
    if event is None:
        raise NotFound(f"no event with id {request.match_info['id']!r}")
    effective, amendments = await state.event_detail(store, event)
    return json_response(
        f'{{"event":{event.to_json()},'
        f'"effective":{"null" if effective is None else effective.to_json()},'
        f'"amendments":{event_list(amendments)}}}'
    )


ENDPOINTS.extend(projection_routes.ENDPOINTS)


@ENDPOINTS.add(
    "GET",
    "/v1/stream",
    "Server-Sent Events: history after a position, then live, no gap, no duplicate",
    {200: None},
    params=(STREAM_AFTER, COMPANY, TYPE, INCLUDE, LAST_EVENT_ID),
    scope="read",
    errors=(409,),
    content_type="text/event-stream",
)
async def get_stream(request: web.Request) -> web.StreamResponse:
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


@ENDPOINTS.add(
    "GET", "/v1/digest", "The head of the hash chain", {200: models.Digest}, scope="read"
)
async def get_digest(request: web.Request) -> web.Response:
    head = await request.app[STORE].head()
    return web.json_response(
        {"position": head.position, "hash": head.hash, "recorded": head.recorded}
    )


@ENDPOINTS.add(
    "GET",
    "/healthz",
    "Liveness and the head position (503 while the database cannot be read)",
    {200: models.Health},
    errors=(503,),
)
async def get_health(request: web.Request) -> web.Response:
    # The database's head (503 when it cannot be read), and how far this process's live feed
    # has got: below the head only for the moment another process's commit takes to arrive.
    head = await request.app[STORE].head()
    return web.json_response({"status": "ok", "head": head.position, "hub": request.app[HUB].head})


@ENDPOINTS.add(
    "POST",
    "/v1/webhooks",
    "Subscribe a URL to signed deliveries of matching events (the secret is shown once)",
    {201: models.WebhookCreated},
    body=WebhookIn,
    scope="admin",
    errors=(401, 403, 409, 413, 422),
)
async def post_webhook(request: web.Request) -> web.Response:
    spec = WebhookIn.from_json(await request.read())
    hook = await request.app[WEBHOOKS].create(spec)
    return orjson_response(hook.public(with_secret=True), 201)


@ENDPOINTS.add("GET", "/v1/webhooks", "Every webhook", {200: models.WebhookList}, scope="admin")
async def get_webhooks(request: web.Request) -> web.Response:
    hooks = await request.app[WEBHOOKS].all()
    return orjson_response({"webhooks": [hook.public() for hook in hooks]})


@ENDPOINTS.add(
    "GET",
    "/v1/webhooks/{id}",
    "A webhook and its acknowledged position",
    {200: models.Webhook},
    params=(WEBHOOK_ID,),
    scope="admin",
    errors=(404,),
)
async def get_webhook(request: web.Request) -> web.Response:
    hook = await request.app[WEBHOOKS].get(request.match_info["id"])
    return orjson_response(hook.public())


@ENDPOINTS.add(
    "DELETE",
    "/v1/webhooks/{id}",
    "Stop and remove a webhook",
    {204: None},
    params=(WEBHOOK_ID,),
    scope="admin",
    errors=(404,),
)
async def delete_webhook(request: web.Request) -> web.Response:
    await request.app[WEBHOOKS].delete(request.match_info["id"])
    return web.Response(status=204)


@ENDPOINTS.add(
    "GET", "/metrics", "Prometheus metrics", {200: None}, scope="read", content_type="text/plain"
)
async def get_metrics(request: web.Request) -> web.Response:
    return metrics.render(request.app[METRICS])


@functools.cache
def openapi_document() -> dict[str, Any]:
    return document(ENDPOINTS, title="Timeline", version=__version__)


@ENDPOINTS.add("GET", "/openapi.json", "This document", {200: dict[str, Any]})
async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())
