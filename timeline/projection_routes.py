"""The endpoints that answer from the projections: the companies, a company's state and
timeline, the chronology, and what changed between two points of transaction time."""

from __future__ import annotations

from datetime import date

from aiohttp import web

from events.errors import NotFound
from projections import changes, state
from projections.changes import ChangesCursor
from projections.chronology import Cursor, chronology
from timeline import models
from timeline.endpoints import Endpoints
from timeline.keys import STORE
from timeline.params import (
    AS_OF,
    COMPANY,
    COMPANY_PATH,
    CURSOR,
    FROM,
    KNOWN_AT,
    LIMIT,
    POSSIBLE,
    SINCE,
    TO,
    TYPE,
    UNTIL,
    bad_query,
    company_param,
    query_as_of,
    query_bool,
    query_companies,
    query_date,
    query_int,
    query_known_at,
    query_since,
    query_types,
)
from timeline.render import event_list, json_response, known_json, orjson_response

ENDPOINTS = Endpoints()


@ENDPOINTS.add(
    "GET",
    "/v1/companies",
    "Every company known at S, with its event count and first and last dates",
    {200: models.CompanyList},
    params=(KNOWN_AT,),
    scope="read",
    errors=(409,),
)
async def get_companies(request: web.Request) -> web.Response:
    known, found = await state.companies(request.app[STORE], query_known_at(request))
    return orjson_response({"companies": found, "known_at": known.as_json()})


async def company_query(request: web.Request) -> tuple[str, date, state.LogPoint]:
    """The company, as_of and resolved known_at of a company endpoint."""
    company, as_of = company_param(request), query_as_of(request)
    known = await state.resolve(request.app[STORE], query_known_at(request))
    return company, as_of, known


def unknown_company(company: str, known: state.LogPoint) -> NotFound:
    return NotFound(f"no event of company {company!r} is known at position {known.position}")


@ENDPOINTS.add(
    "GET",
    "/v1/companies/{company}",
    "A company's state as of a date, as known at a time or position",
    {200: models.CompanyState},
    params=(COMPANY_PATH, AS_OF, KNOWN_AT, POSSIBLE),
    scope="read",
    errors=(404, 409),
)
async def get_company(request: web.Request) -> web.Response:
    company, as_of, known = await company_query(request)
    include_possible = query_bool(request, "include_possible")
    found = await state.company_state(
        request.app[STORE], company, as_of, known, include_possible=include_possible
    )
    if found is None:
        raise unknown_company(company, known)
    return json_response(found)


@ENDPOINTS.add(
    "GET",
    "/v1/companies/{company}/timeline",
    "A company's effective events begun by as_of, in valid-time order",
    {200: models.CompanyTimeline},
    params=(COMPANY_PATH, AS_OF, KNOWN_AT),
    scope="read",
    errors=(404, 409),
)
async def get_company_timeline(request: web.Request) -> web.Response:
    company, as_of, known = await company_query(request)
    found = await state.timeline(request.app[STORE], company, as_of, known)
    if found is None:
        raise unknown_company(company, known)
    events = ",".join(event.to_json_with_status(status) for event, status in found)
    return json_response(
        f'{{"events":[{events}],"as_of":"{as_of.isoformat()}","known_at":{known_json(known)}}}'
    )


@ENDPOINTS.add(
    "GET",
    "/v1/chronology",
    "Every company's effective events in valid-time order, paged",
    {200: models.ChronologyPage},
    params=(FROM, TO, COMPANY, TYPE, KNOWN_AT, LIMIT, CURSOR),
    scope="read",
    errors=(409,),
)
async def get_chronology(request: web.Request) -> web.Response:
    start, end = query_date(request, "from"), query_date(request, "to", last=True)
    if start is not None and end is not None and start > end:
        raise bad_query("from", "from is after to")
    limit = query_int(request, "limit", 100, 1, 1000)
    companies, types = query_companies(request), query_types(request)
    store = request.app[STORE]
    raw_cursor = request.query.get("cursor")
    cursor = Cursor.decode(raw_cursor) if raw_cursor is not None else None
    pinned = cursor.known_at if cursor is not None else None
    known = await _pinned(request, pinned, "known_at")
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
        f'"known_at":{known_json(known)}}}'
    )


async def _pinned(request: web.Request, pinned: int | None, name: str) -> state.LogPoint:
    """The point of transaction time a page answers as of: the one its cursor pins, or else
    the query's `name` (what known_at takes; default: the head). A `name` beside a cursor must
    be the one the cursor pins, not silently ignored."""
    store = request.app[STORE]
    asked = query_known_at(request, name)
    if pinned is None:
        return await state.resolve(store, asked)
    if pinned > (await store.head()).position:
        raise bad_query("cursor", "the cursor is not one this server issued")
    known = await state.resolve(store, pinned)
    if asked is not None and (await state.resolve(store, asked)).position != known.position:
        raise bad_query(name, f"the cursor pins another {name}; drop one of them")
    return known


@ENDPOINTS.add(
    "GET",
    "/v1/companies/{company}/changes",
    "What changed in a company's state as of a date between two points of transaction time",
    {200: models.CompanyChanges},
    params=(COMPANY_PATH, SINCE, UNTIL, AS_OF),
    scope="read",
    errors=(404, 409),
)
async def get_company_changes(request: web.Request) -> web.Response:
    company, as_of, since = company_param(request), query_as_of(request), query_since(request)
    until = query_known_at(request, "until")
    store = request.app[STORE]
    first, last = await state.resolve(store, since), await state.resolve(store, until)
    found = await changes.company_changes(store, company, as_of, first, last)
    if found is None:
        raise unknown_company(company, last)
    return orjson_response(found)


@ENDPOINTS.add(
    "GET",
    "/v1/changes",
    "The log's entries between two points of transaction time, each with its target's "
    "effective form before and after it",
    {200: models.ChangesPage},
    params=(SINCE, UNTIL, COMPANY, TYPE, LIMIT, CURSOR),
    scope="read",
    errors=(409,),
)
async def get_changes(request: web.Request) -> web.Response:
    since = query_since(request)
    limit = query_int(request, "limit", 100, 1, 1000)
    companies, types = query_companies(request), query_types(request)
    raw_cursor = request.query.get("cursor")
    cursor = ChangesCursor.decode(raw_cursor) if raw_cursor is not None else None
    until = await _pinned(request, cursor.until if cursor is not None else None, "until")
    first = await state.resolve(request.app[STORE], since)
    found, following = await changes.log_changes(
        request.app[STORE],
        first,
        until,
        companies=companies,
        types=types,
        limit=limit,
        after=cursor,
    )
    next_cursor = "null" if following is None else f'"{following.encode()}"'
    return json_response(
        f'{{"changes":[{",".join(found)}],"next_cursor":{next_cursor},'
        f'"since":{known_json(first)},"until":{known_json(until)}}}'
    )
